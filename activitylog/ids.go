package activitylog

import (
	"context"
	"fmt"
	"sync"

	"github.com/jackc/pgx/v5/pgxpool"
)

// IDBlockSize is how many log ids one nextval('activity_log_ids') reserves;
// it must equal the sequence's INCREMENT BY (migration 00030).
const IDBlockSize = 10000

// IDs hands out log ids from blocks of the activity_log_ids sequence: one
// database round trip per IDBlockSize ids, unique across every instance
// (each block belongs to the instance that fetched it). Ids left in a block
// when the process stops are never used. Safe for concurrent use.
type IDs struct {
	pool *pgxpool.Pool

	mu        sync.Mutex
	next, end int64 // the current block is [next, end)
}

// NewIDs returns an allocator over pool's activity_log_ids sequence.
func NewIDs(pool *pgxpool.Pool) *IDs {
	if pool == nil {
		panic("activitylog: NewIDs needs a pool")
	}
	return &IDs{pool: pool}
}

// Take returns n fresh log ids in increasing order.
func (a *IDs) Take(ctx context.Context, n int) ([]int64, error) {
	ids := make([]int64, 0, n)
	a.mu.Lock()
	defer a.mu.Unlock()
	for len(ids) < n {
		if a.next == a.end {
			blocks := (n - len(ids) + IDBlockSize - 1) / IDBlockSize
			rows, err := a.pool.Query(ctx, `SELECT nextval('activity_log_ids') FROM generate_series(1, $1)`, blocks)
			if err != nil {
				return nil, fmt.Errorf("reserve log ids: %w", err)
			}
			var starts []int64
			for rows.Next() {
				var s int64
				if err := rows.Scan(&s); err != nil {
					rows.Close()
					return nil, fmt.Errorf("reserve log ids: %w", err)
				}
				starts = append(starts, s)
			}
			if err := rows.Err(); err != nil {
				return nil, fmt.Errorf("reserve log ids: %w", err)
			}
			// Blocks from one call may not be adjacent (other instances
			// take blocks too): hand out all but the last at once.
			for _, s := range starts[:len(starts)-1] {
				for id := s; id < s+IDBlockSize && len(ids) < n; id++ {
					ids = append(ids, id)
				}
			}
			last := starts[len(starts)-1]
			a.next, a.end = last, last+IDBlockSize
		}
		for ; a.next < a.end && len(ids) < n; a.next++ {
			ids = append(ids, a.next)
		}
	}
	return ids, nil
}
