package commands

import (
	"context"
	"errors"
	"fmt"
	"sync"

	"github.com/lockstep/lockstep/domain"
	"github.com/lockstep/lockstep/eventstore"
)

// Snapshots keeps, per stream, the state and version the last command on it
// left, so that the next command on that stream need not read and fold the
// whole stream first. A student's progress stream grows with every subtask
// of a class, and each progress update read it all; with a snapshot the
// update is decided on the kept state and appended at the kept version. The
// append's expected-version check is what keeps it right: when another
// writer (another instance, a retried request) moved the stream, the append
// fails with a conflict and the command starts over from the store, as
// Execute does. A command decided to change nothing is confirmed against the
// store (one read of any newer event) before it is answered.
//
// States must be values that Evolve never changes in place (the domain's
// deciders copy their maps before writing).
type Snapshots[S any] struct {
	mu  sync.Mutex
	m   map[string]snapshot[S]
	max int

	// firsts shares the first loads of streams without a snapshot (prime).
	firstsOnce sync.Once
	firsts     coalesced[string, primed[S]]
}

// primed is one stream's answer of a shared first load.
type primed[S any] struct {
	snap snapshot[S]
	ok   bool
}

type snapshot[S any] struct {
	state   S
	version int64
}

// NewSnapshots keeps at most max streams' snapshots (past it an arbitrary
// one is dropped).
func NewSnapshots[S any](max int) *Snapshots[S] {
	return &Snapshots[S]{m: map[string]snapshot[S]{}, max: max}
}

func (s *Snapshots[S]) get(stream string) (snapshot[S], bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	v, ok := s.m[stream]
	return v, ok
}

func (s *Snapshots[S]) put(stream string, state S, version int64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if old, ok := s.m[stream]; ok && old.version > version {
		return
	}
	if _, ok := s.m[stream]; !ok && len(s.m) >= s.max {
		for k := range s.m {
			delete(s.m, k)
			break
		}
	}
	s.m[stream] = snapshot[S]{state: state, version: version}
}

func (s *Snapshots[S]) drop(stream string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.m, stream)
}

// ExecuteCached is Execute starting from the stream's snapshot when there is
// one. A command under a command key (a request with an Idempotency-Key)
// always goes through Execute: telling its retry from a new command needs
// the stream's events.
func ExecuteCached[S, C any](ctx context.Context, es eventstore.Store, snaps *Snapshots[S], stream string, d domain.Decider[S, C], cmd C, meta eventstore.Metadata) (Result[S], error) {
	if snaps == nil || eventstore.CommandScope(ctx, stream) != "" {
		return Execute(ctx, es, stream, d, cmd, meta)
	}
	snap, ok := snaps.get(stream)
	if !ok {
		var err error
		if snap, ok, err = snaps.prime(ctx, es, stream, d.Initial, d.Evolve); err != nil {
			return Result[S]{}, err
		}
	}
	if ok {
		res, done, err := fromSnapshot(ctx, es, snap, stream, d, cmd, meta)
		if err != nil {
			return res, err
		}
		if done {
			snaps.put(stream, res.State, res.Version)
			return res, nil
		}
		snaps.drop(stream)
	}
	res, err := Execute(ctx, es, stream, d, cmd, meta)
	if err == nil && res.Version > 0 {
		snaps.put(stream, res.State, res.Version)
	}
	return res, err
}

// fromSnapshot decides cmd on snap and appends at its version; done is false
// when the snapshot turned out stale (the caller starts over from the store).
func fromSnapshot[S, C any](ctx context.Context, es eventstore.Store, snap snapshot[S], stream string, d domain.Decider[S, C], cmd C, meta eventstore.Metadata) (Result[S], bool, error) {
	events, err := d.Decide(snap.state, cmd)
	if err != nil {
		// A refusal may come from a stale state: confirm it from the store.
		return Result[S]{}, false, nil
	}
	if len(events) == 0 {
		newer, err := es.ReadStream(ctx, stream, snap.version, 1)
		if err != nil {
			return Result[S]{}, false, fmt.Errorf("read %s: %w", stream, err)
		}
		return Result[S]{State: snap.state, Version: snap.version}, len(newer) == 0, nil
	}
	data, err := Encode(events, meta)
	if err != nil {
		return Result[S]{}, false, err
	}
	res, err := es.Append(ctx, stream, eventstore.Exactly(snap.version), data...)
	if errors.Is(err, eventstore.ErrConcurrency) {
		return Result[S]{}, false, nil
	}
	if err != nil {
		return Result[S]{}, false, fmt.Errorf("append to %s: %w", stream, err)
	}
	state := snap.state
	for _, e := range events {
		state = d.Evolve(state, e)
	}
	return Result[S]{State: state, Events: events, Version: res.Version, Position: res.Position}, true, nil
}

// prime folds a stream that has no snapshot yet. The first progress of a
// class comes from every student at once, each on a stream not seen before:
// concurrent primes share one filtered read of all their streams (the
// store's Querier; without one, ok is false and Execute reads the stream).
// The read sees what ReadAll may return, so the fold may miss the newest
// event: its append then fails the version check and the command starts
// over from the store, as with any stale snapshot.
func (s *Snapshots[S]) prime(ctx context.Context, es eventstore.Store, stream string, initial func() S, evolve func(S, domain.Event) S) (snapshot[S], bool, error) {
	q, err := eventstore.AsQuerier(es)
	if err != nil {
		return snapshot[S]{}, false, nil
	}
	s.firstsOnce.Do(func() {
		s.firsts.load = func(ctx context.Context, streams []string) (map[string]primed[S], error) {
			evs, err := q.Query(ctx, eventstore.Filter{Streams: streams})
			if err != nil {
				return nil, fmt.Errorf("read %d streams: %w", len(streams), err)
			}
			out := make(map[string]primed[S], len(streams))
			for _, st := range streams {
				out[st] = primed[S]{snapshot[S]{state: initial()}, true}
			}
			for _, ev := range evs {
				p := out[ev.Stream]
				payload, err := domain.DecodeEvent(ev.Type, ev.Data)
				if !p.ok || err != nil || ev.Version != p.snap.version+1 {
					// Not foldable here (Execute will say why).
					out[ev.Stream] = primed[S]{}
					continue
				}
				out[ev.Stream] = primed[S]{snapshot[S]{state: evolve(p.snap.state, payload), version: ev.Version}, true}
			}
			return out, nil
		}
	})
	p, err := s.firsts.get(ctx, stream)
	if err != nil {
		return snapshot[S]{}, false, err
	}
	return p.snap, p.ok, nil
}
