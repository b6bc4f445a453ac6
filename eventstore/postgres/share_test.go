package postgres_test

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"github.com/lockstep/lockstep/eventstore/postgres"
	"github.com/lockstep/lockstep/pgtest"
)

// TestTailReadSharedBySubscriptionsOneWakeUpWoke: a subscription woken by an
// append joins the tail read in progress when that read started after the
// append's wake-up (it sees the append), instead of waiting for the next
// one; a subscription woken by a later append does not join it.
func TestTailReadSharedBySubscriptionsOneWakeUpWoke(t *testing.T) {
	ctx := context.Background()
	db := pgtest.New(t)
	st := postgres.New(db.Pool, postgres.Config{})
	defer st.Close()

	postgres.Fire(st)
	woke := postgres.Generation(st) // what the woken subscriptions know
	var runs atomic.Int64
	started, release := make(chan struct{}), make(chan struct{})
	read := func(context.Context) (int64, error) {
		if runs.Add(1) == 1 {
			close(started)
			<-release
		}
		return runs.Load(), nil
	}
	first := make(chan int64)
	go func() {
		v, err := postgres.ShareTail(ctx, st, woke, read)
		if err != nil {
			t.Error(err)
		}
		first <- v
	}()
	<-started // the read runs, started at generation woke

	second := make(chan int64)
	go func() {
		v, _ := postgres.ShareTail(ctx, st, woke, read) // woken by the same append
		second <- v
	}()
	postgres.Fire(st) // a later append
	third := make(chan int64)
	go func() {
		v, _ := postgres.ShareTail(ctx, st, postgres.Generation(st), read)
		third <- v
	}()
	// Let both callers (and the first) wait before the read ends: a caller that
	// came after the end would start a read of its own either way.
	for postgres.TailWaiters(st) < 3 {
		time.Sleep(time.Millisecond)
	}
	close(release)
	if a, b := <-first, <-second; a != 1 || b != 1 {
		t.Fatalf("a subscription woken by the same append got read %d, the first %d: it should share the read in progress", b, a)
	}
	if c := <-third; c != 2 {
		t.Fatalf("a subscription woken by a later append got read %d: it must not share a read that started before its wake-up", c)
	}
}
