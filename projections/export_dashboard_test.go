package projections

import (
	"context"

	"github.com/jackc/pgx/v5"
)

// DashboardFallbacks exposes how many progress runs the batch path handed
// back to Handle (dashboard_batch_test.go).
var DashboardFallbacks = &dashboardFallbacks

// SkipTo moves r's checkpoint from prev to pos as a batch with nothing to
// write does (Runner.sendWhole).
func SkipTo(ctx context.Context, r *Runner, prev, pos uint64) error {
	_, err := r.sendWhole(ctx, prev, pos, nil)
	return err
}

// ErrCheckpointMoved exposes errCheckpointMoved.
var ErrCheckpointMoved = errCheckpointMoved

// SendWhole exposes Runner.sendWhole.
func SendWhole(ctx context.Context, r *Runner, prev, last uint64, writes *pgx.Batch) (handleErr, err error) {
	return r.sendWhole(ctx, prev, last, writes)
}
