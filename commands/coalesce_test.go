package commands

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// TestCoalescedReadsStartAfterTheCall: every caller writes, then reads
// through coalesced; it must see its own write (the read it shares started
// after it asked), and concurrent callers must share reads.
func TestCoalescedReadsStartAfterTheCall(t *testing.T) {
	var stored, loads atomic.Int64
	c := &coalesced[int, int64]{load: func(ctx context.Context, keys []int) (map[int]int64, error) {
		loads.Add(1)
		v := stored.Load()
		time.Sleep(2 * time.Millisecond) // a read takes a while: callers pile up
		out := map[int]int64{}
		for _, k := range keys {
			out[k] = v + int64(k)
		}
		return out, nil
	}}
	const callers = 300
	var wg sync.WaitGroup
	for i := range callers {
		wg.Go(func() {
			key := i % 3
			wrote := stored.Add(1)
			got, err := c.get(context.Background(), key)
			if err != nil {
				t.Error(err)
				return
			}
			if got-int64(key) < wrote {
				t.Errorf("caller %d read version %d, older than its own write %d", i, got-int64(key), wrote)
			}
		})
	}
	wg.Wait()
	if n := loads.Load(); n >= callers/2 {
		t.Errorf("%d callers made %d reads: they did not share them", callers, n)
	}
	// A quiet server reads at once, once per call.
	before := loads.Load()
	for range 3 {
		if _, err := c.get(context.Background(), 1); err != nil {
			t.Fatal(err)
		}
	}
	if n := loads.Load() - before; n != 3 {
		t.Errorf("3 calls one after another made %d reads, want 3", n)
	}
}

func TestCoalescedErrorsAndCancel(t *testing.T) {
	boom := errors.New("boom")
	block := make(chan struct{})
	c := &coalesced[int, int]{load: func(ctx context.Context, keys []int) (map[int]int, error) {
		<-block
		return nil, boom
	}}
	ctx, cancel := context.WithCancel(context.Background())
	errs := make(chan error, 2)
	go func() { _, err := c.get(context.Background(), 1); errs <- err }()
	time.Sleep(10 * time.Millisecond)
	go func() { _, err := c.get(ctx, 2); errs <- err }() // waits for the next read
	time.Sleep(10 * time.Millisecond)
	cancel()
	if err := <-errs; !errors.Is(err, context.Canceled) {
		t.Errorf("a cancelled caller got %v, want context.Canceled", err)
	}
	close(block)
	if err := <-errs; !errors.Is(err, boom) {
		t.Errorf("the reader got %v, want the read's error", err)
	}
}
