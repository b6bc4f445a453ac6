package projections

import (
	"context"
	"sync"
	"time"
)

// observe returns the runner's state and a channel closed at its next change.
func (r *Runner) observe() (State, <-chan struct{}) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.changed == nil {
		r.changed = make(chan struct{})
	}
	return r.state, r.changed
}

// behind reports whether a command waiting for position must wait for r.
func behind(r *Runner, s State, position uint64) bool {
	return awaited(r) && s.Status == StatusRunning && s.Position < position
}

// waitLocal waits for runners of this process: a waiter sleeps on the
// change channel of the first runner still behind, so a burst of a thousand
// waiting commands costs one wake-up per waiter per batch the runner
// commits, not a timer each every few milliseconds.
func (g *Group) waitLocal(ctx context.Context, position uint64) error {
	for _, r := range g.runners {
		for {
			s, changed := r.observe()
			if !behind(r, s, position) {
				break
			}
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-changed:
			}
		}
	}
	return nil
}

// remoteFrontier is what an API-only instance knows of the projectors that
// run elsewhere: the lowest checkpoint among the awaited running ones, read
// from the database by one poller shared by every waiting command (it runs
// only while some command waits).
type remoteFrontier struct {
	mu       sync.Mutex
	waiters  int
	position uint64 // lowest awaited running checkpoint; max when none
	known    bool
	changed  chan struct{}
	err      error
}

// remotePoll is how often the shared poller reads the checkpoints.
const remotePoll = 2 * time.Millisecond

func (g *Group) waitRemote(ctx context.Context, position uint64) error {
	f := &g.remote
	f.mu.Lock()
	f.waiters++
	if f.waiters == 1 {
		f.known = false
		go g.pollRemote()
	}
	defer func() {
		f.mu.Lock()
		f.waiters--
		f.mu.Unlock()
	}()
	for {
		if f.changed == nil {
			f.changed = make(chan struct{})
		}
		done, err, changed := f.known && f.position >= position, f.err, f.changed
		f.mu.Unlock()
		if done {
			return nil
		}
		if err != nil {
			return err
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-changed:
		}
		f.mu.Lock()
	}
}

// pollRemote reads the frontier until no command waits any more.
func (g *Group) pollRemote() {
	f := &g.remote
	names := make([]string, 0, len(g.runners))
	for _, r := range g.runners {
		if awaited(r) {
			names = append(names, r.Name())
		}
	}
	t := time.NewTicker(remotePoll)
	defer t.Stop()
	for {
		var low *int64
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		err := g.pool.QueryRow(ctx, `SELECT min(position) FROM projection_checkpoints WHERE name = ANY($1) AND status = 'running'`, names).Scan(&low)
		cancel()
		f.mu.Lock()
		f.err = err
		if err == nil {
			f.known = true
			f.position = ^uint64(0)
			if low != nil {
				f.position = uint64(*low)
			}
		}
		if f.changed != nil {
			close(f.changed)
			f.changed = nil
		}
		stop := f.waiters == 0
		f.mu.Unlock()
		if stop {
			return
		}
		<-t.C
	}
}
