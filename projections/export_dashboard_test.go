package projections

// DashboardFallbacks exposes how many progress runs the batch path handed
// back to Handle (dashboard_batch_test.go).
var DashboardFallbacks = &dashboardFallbacks
