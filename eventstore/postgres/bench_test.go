package postgres_test

import (
	"context"
	"encoding/json"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/lockstep/lockstep/eventstore"
	"github.com/lockstep/lockstep/eventstore/postgres"
	"github.com/lockstep/lockstep/pgtest"
)

func benchEvent(n int) eventstore.EventData {
	return eventstore.EventData{
		ID:       uuid.New(),
		Type:     "SubtaskCompleted",
		Data:     json.RawMessage(fmt.Sprintf(`{"subtask_id": %d, "user_id": 42, "lecture_id": 7}`, n)),
		Metadata: eventstore.Metadata{CorrelationID: "bench", UserID: 42, SessionID: 3, LectureID: 7},
	}
}

func benchStore(b *testing.B, maxConns int32) (*postgres.Store, *pgtest.DB) {
	b.Helper()
	db := pgtest.New(b)
	cfg, err := pgxpool.ParseConfig(db.URL)
	if err != nil {
		b.Fatal(err)
	}
	cfg.MaxConns = maxConns
	pool, err := pgxpool.NewWithConfig(context.Background(), cfg)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(pool.Close)
	st := postgres.New(pool, postgres.Config{})
	b.Cleanup(st.Close)
	return st, db
}

// BenchmarkAppend: each append is one event to its own new stream.
func BenchmarkAppend(b *testing.B) {
	for _, writers := range []int{1, 8} {
		b.Run(fmt.Sprintf("writers=%d", writers), func(b *testing.B) {
			st, _ := benchStore(b, int32(writers+1))
			b.ResetTimer()
			elapsed := appendEach(b, st, writers)
			b.ReportMetric(float64(b.N)/elapsed.Seconds(), "events/s")
		})
	}
}

// BenchmarkCatchUp seeds events with 100-event appends, then times a
// catch-up subscription from position 0 to the head.
func BenchmarkCatchUp(b *testing.B) {
	const seed, perAppend = 100_000, 100
	st, _ := benchStore(b, 4)
	ctx := context.Background()
	for i := 0; i < seed/perAppend; i++ {
		evs := make([]eventstore.EventData, perAppend)
		for j := range evs {
			evs[j] = benchEvent(j)
		}
		if _, err := st.Append(ctx, fmt.Sprintf("session-%d", i), eventstore.NoStream, evs...); err != nil {
			b.Fatal(err)
		}
	}
	b.ResetTimer()
	start := time.Now()
	for range b.N {
		sctx, cancel := context.WithCancel(ctx)
		got := 0
		err := st.Subscribe(sctx, 0, func(_ context.Context, batch []eventstore.Event) error {
			got += len(batch)
			if got >= seed {
				cancel()
			}
			return nil
		})
		cancel()
		if got != seed {
			b.Fatalf("caught up %d events of %d (%v)", got, seed, err)
		}
	}
	b.ReportMetric(float64(seed*b.N)/time.Since(start).Seconds(), "events/s")
}

// BenchmarkAppendWithReaders: 8 appenders (one event to a new stream each
// append), alone and with 20 subscriptions following the log in the same
// process, as projectors and socket catch-ups do. The readers share the bound
// query and the tail read (at most one of each per Config.ReadInterval,
// however many readers), so append throughput with them should stay within
// 10% of the throughput without them; bounds/s and tail-reads/s show the
// readers' queries. Every reader must get every event, in order.
func BenchmarkAppendWithReaders(b *testing.B) {
	const writers = 8
	for _, readers := range []int{0, 20} {
		b.Run(fmt.Sprintf("writers=%d/readers=%d", writers, readers), func(b *testing.B) {
			st, _ := benchStore(b, int32(writers+readers+2))
			ctx, cancel := context.WithCancel(context.Background())
			var subs sync.WaitGroup
			var delivered atomic.Int64
			for range readers {
				subs.Go(func() {
					var last uint64
					err := st.Subscribe(ctx, 0, func(_ context.Context, batch []eventstore.Event) error {
						for _, e := range batch {
							if e.Position <= last {
								return fmt.Errorf("position %d after %d", e.Position, last)
							}
							last = e.Position
						}
						delivered.Add(int64(len(batch)))
						return nil
					})
					if ctx.Err() == nil {
						b.Errorf("subscription ended: %v", err)
					}
				})
			}
			defer func() {
				cancel()
				subs.Wait()
			}()
			b.ResetTimer()
			elapsed := appendEach(b, st, writers)
			b.StopTimer()
			b.ReportMetric(float64(b.N)/elapsed.Seconds(), "events/s")
			bounds, tails := postgres.SharedRuns(st)
			b.ReportMetric(float64(bounds)/elapsed.Seconds(), "bounds/s")
			b.ReportMetric(float64(tails)/elapsed.Seconds(), "tail-reads/s")
			if readers > 0 {
				// Every reader gets every event (shortly after the last append).
				deadline := time.Now().Add(30 * time.Second)
				for delivered.Load() < int64(readers*b.N) && time.Now().Before(deadline) {
					time.Sleep(10 * time.Millisecond)
				}
				if got := delivered.Load(); got != int64(readers*b.N) {
					b.Fatalf("readers got %d events, want %d", got, readers*b.N)
				}
			}
		})
	}
}

// appendEach has writers append b.N events between them, one event to its own
// new stream per append, and returns how long it took.
func appendEach(b *testing.B, st eventstore.Store, writers int) time.Duration {
	ctx := context.Background()
	var next atomic.Int64
	var wg sync.WaitGroup
	start := time.Now()
	for range writers {
		wg.Go(func() {
			for {
				n := next.Add(1)
				if n > int64(b.N) {
					return
				}
				if _, err := st.Append(ctx, fmt.Sprintf("progress-%d", n), eventstore.NoStream, benchEvent(int(n))); err != nil {
					b.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
	return time.Since(start)
}
