package projections

import "context"

// DashboardFallbacks exposes how many progress runs the batch path handed
// back to Handle (dashboard_batch_test.go).
var DashboardFallbacks = &dashboardFallbacks

// SkipTo exposes Runner.skipTo (lazytx_test.go).
func SkipTo(ctx context.Context, r *Runner, prev, pos uint64) error { return r.skipTo(ctx, prev, pos) }

// ErrCheckpointMoved exposes errCheckpointMoved.
var ErrCheckpointMoved = errCheckpointMoved
