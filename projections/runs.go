package projections

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5"
)

// applyRuns is a batch-aware projector's HandleBatch: runEnd(records, i) is
// the end of the run of events it folds from i (i itself when records[i] is
// not one); a run of two or more goes to run, every other event, in order,
// to handle.
func applyRuns(ctx context.Context, tx pgx.Tx, records []Record, runEnd func([]Record, int) int,
	run func(context.Context, pgx.Tx, []Record) error, handle func(context.Context, pgx.Tx, Record) error) error {
	for i := 0; i < len(records); {
		j := runEnd(records, i)
		if j-i >= minRun {
			if err := run(ctx, tx, records[i:j]); err != nil {
				return fmt.Errorf("progress run at positions %d..%d: %w", records[i].Position, records[j-1].Position, err)
			}
			i = j
			continue
		}
		if j == i {
			j = i + 1
		}
		for _, r := range records[i:j] {
			if err := handle(ctx, tx, r); err != nil {
				return fmt.Errorf("%s at position %d (%s): %w", r.Type, r.Position, r.Stream, err)
			}
		}
		i = j
	}
	return nil
}

// minRun: shorter runs cost fewer statements event by event.
const minRun = 2
