package projections

import (
	"context"

	"github.com/jackc/pgx/v5"
)

// DashboardFallbacks exposes how many progress runs the batch path handed
// back to Handle (dashboard_batch_test.go).
var DashboardFallbacks = &dashboardFallbacks

// SkipTo exposes Runner.skipTo (lazytx_test.go).
func SkipTo(ctx context.Context, r *Runner, prev, pos uint64) error { return r.skipTo(ctx, prev, pos) }

// ErrCheckpointMoved exposes errCheckpointMoved.
var ErrCheckpointMoved = errCheckpointMoved

// SendWhole exposes Runner.sendWhole.
func SendWhole(ctx context.Context, r *Runner, prev, last uint64, writes *pgx.Batch) (handleErr, err error) {
	return r.sendWhole(ctx, prev, last, writes)
}
