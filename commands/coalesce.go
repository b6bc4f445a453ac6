package commands

import (
	"context"
	"maps"
	"slices"
	"sync"
	"time"
)

// coalesced shares reads between concurrent commands. A thousand students
// completing a subtask together each asked the store whether the lecture
// changed and asked the sessions read model which class they are in: two
// thousand small queries for what one or two answer. With coalesced, a read
// runs at once when none is running (a quiet server waits no longer); the
// keys asked while one runs are read together, by the next one, as soon as
// it ends.
//
// Every answer comes from a read that started after its caller asked, so it
// is as fresh as a read of the caller's own: a command never decides on
// something older than its request.
type coalesced[K comparable, V any] struct {
	// load reads the keys; its answer for a key missing from the map is the
	// zero V.
	load func(ctx context.Context, keys []K) (map[K]V, error)

	mu      sync.Mutex
	next    *coalescedRead[K, V] // collecting keys while a read runs
	running bool
}

// coalescedRead is one read of many keys.
type coalescedRead[K comparable, V any] struct {
	ctx  context.Context
	keys map[K]struct{}
	done chan struct{}
	vals map[K]V
	err  error
}

// coalescedTimeout bounds one shared read: it runs for every caller that
// joined it, so no single caller's deadline governs it.
const coalescedTimeout = 30 * time.Second

// get returns key's value from a read that started after the call.
func (c *coalesced[K, V]) get(ctx context.Context, key K) (V, error) {
	c.mu.Lock()
	r := c.next
	if r == nil {
		r = &coalescedRead[K, V]{ctx: context.WithoutCancel(ctx), keys: map[K]struct{}{}, done: make(chan struct{})}
		c.next = r
	}
	r.keys[key] = struct{}{}
	start := !c.running
	if start {
		c.running, c.next = true, nil
	}
	c.mu.Unlock()
	if start {
		c.run(r)
	}
	select {
	case <-r.done:
	case <-ctx.Done():
		var zero V
		return zero, ctx.Err()
	}
	if r.err != nil {
		var zero V
		return zero, r.err
	}
	return r.vals[key], nil
}

// run does read r in the caller's goroutine, then hands the reads that
// queued meanwhile to a goroutine of their own.
func (c *coalesced[K, V]) run(r *coalescedRead[K, V]) {
	c.read(r)
	if next := c.take(); next != nil {
		go func() {
			for r := next; r != nil; r = c.take() {
				c.read(r)
			}
		}()
	}
}

func (c *coalesced[K, V]) read(r *coalescedRead[K, V]) {
	ctx, cancel := context.WithTimeout(r.ctx, coalescedTimeout)
	defer cancel()
	r.vals, r.err = c.load(ctx, slices.Collect(maps.Keys(r.keys)))
	close(r.done)
}

// take returns the read that collected keys meanwhile (nil: none, and no
// read runs any more).
func (c *coalesced[K, V]) take() *coalescedRead[K, V] {
	c.mu.Lock()
	defer c.mu.Unlock()
	r := c.next
	c.next = nil
	if r == nil {
		c.running = false
	}
	return r
}
