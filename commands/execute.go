// Package commands is Lockstep's write side: application command handlers
// that load an aggregate's stream, fold it with its decider's Evolve, Decide,
// and append the new events with the expected version — retrying a bounded
// number of times when another writer got there first. Handlers take the
// acting user from their command and know nothing of HTTP; the thin gin
// adapters of the write endpoints are the http_*.go files beside them.
package commands

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/google/uuid"

	"github.com/lockstep/lockstep/domain"
	"github.com/lockstep/lockstep/eventstore"
)

// MaxAttempts bounds the retries of a command whose append lost a race.
const MaxAttempts = 5

// Result is what executing a command produced.
type Result[S any] struct {
	// State is the aggregate's state after the new events.
	State S
	// Events are the new events (none when the command was a no-op).
	Events []domain.Event
	// Version is the stream's version after the append.
	Version int64
	// Position is the global position of the last new event (0 if none).
	Position uint64
}

// Load reads a stream and folds it; it returns the state and the stream's version.
func Load[S, C any](ctx context.Context, es eventstore.Store, stream string, d domain.Decider[S, C]) (S, int64, error) {
	l, err := load(ctx, es, stream, d, "")
	return l.state, l.version, err
}

// loaded is a folded stream; with a command scope, done is the result of
// that command's first attempt when its events are already in the stream.
type loaded[S any] struct {
	state   S
	version int64
	done    *Result[S]
}

func load[S, C any](ctx context.Context, es eventstore.Store, stream string, d domain.Decider[S, C], scope string) (loaded[S], error) {
	var l loaded[S]
	stored, err := es.ReadStream(ctx, stream, 0, 0)
	if err != nil {
		return l, fmt.Errorf("read %s: %w", stream, err)
	}
	var first uuid.UUID
	if scope != "" {
		first = eventstore.CommandEventID(scope, 0)
	}
	l.state = d.Initial()
	n := -1 // index of the next event of the first attempt, -1 before it
	for _, ev := range stored {
		payload, err := domain.DecodeEvent(ev.Type, ev.Data)
		if err != nil {
			return loaded[S]{}, fmt.Errorf("%s v%d: %w", stream, ev.Version, err)
		}
		l.state = d.Evolve(l.state, payload)
		l.version = ev.Version
		switch {
		case scope != "" && n < 0 && ev.ID == first:
			n = 0
		case n > 0 && ev.ID != eventstore.CommandEventID(scope, n):
			n = -2 // the first attempt's events end here
		}
		if n >= 0 {
			if l.done == nil {
				l.done = &Result[S]{}
			}
			l.done.State, l.done.Version, l.done.Position = l.state, ev.Version, ev.Position
			l.done.Events = append(l.done.Events, payload)
			n++
		}
	}
	return l, nil
}

// Execute runs cmd against the aggregate in stream: load, decide, append with
// the expected version; on a concurrency conflict it starts over, up to
// MaxAttempts times. A refusal from Decide is returned as is (*domain.Error).
//
// Under a command key (eventstore.WithCommandKey: a request with an
// Idempotency-Key) the events' ids derive from the key and the stream, and
// a command whose events are already in the stream — its first attempt
// committed, and the client sent it again — is not decided again: the first
// attempt's result is returned.
func Execute[S, C any](ctx context.Context, es eventstore.Store, stream string, d domain.Decider[S, C], cmd C, meta eventstore.Metadata) (Result[S], error) {
	var lastErr error
	scope := eventstore.CommandScope(ctx, stream)
	for range MaxAttempts {
		l, err := load(ctx, es, stream, d, scope)
		if err != nil {
			return Result[S]{}, err
		}
		if l.done != nil {
			return *l.done, nil
		}
		state, version := l.state, l.version
		events, err := d.Decide(state, cmd)
		if err != nil {
			return Result[S]{}, err
		}
		if len(events) == 0 {
			return Result[S]{State: state, Version: version}, nil
		}
		data, err := Encode(events, meta)
		if err != nil {
			return Result[S]{}, err
		}
		if scope != "" {
			for i := range data {
				data[i].ID = eventstore.CommandEventID(scope, i)
			}
		}
		res, err := es.Append(ctx, stream, eventstore.Exactly(version), data...)
		if errors.Is(err, eventstore.ErrConcurrency) {
			lastErr = err
			continue
		}
		if err != nil {
			return Result[S]{}, fmt.Errorf("append to %s: %w", stream, err)
		}
		for _, e := range events {
			state = d.Evolve(state, e)
		}
		return Result[S]{State: state, Events: events, Version: res.Version, Position: res.Position}, nil
	}
	return Result[S]{}, fmt.Errorf("%s: gave up after %d conflicting attempts: %w", stream, MaxAttempts, lastErr)
}

type answerKey struct{}

// WithReadModelsBehind returns ctx carrying mark, which a command handler
// calls when it answers before the read models caught up with its events
// (the HTTP adapter sets ReadYourWritesHeader from it).
func WithReadModelsBehind(ctx context.Context, mark func()) context.Context {
	return context.WithValue(ctx, answerKey{}, mark)
}

// readModelsBehind marks the answer to the request of ctx (if any) as sent
// before the read models caught up.
func readModelsBehind(ctx context.Context) {
	if mark, ok := ctx.Value(answerKey{}).(func()); ok {
		mark()
	}
}

// Encode turns domain events into events to append, each with a new id and
// the given metadata.
func Encode(events []domain.Event, meta eventstore.Metadata) ([]eventstore.EventData, error) {
	out := make([]eventstore.EventData, len(events))
	for i, e := range events {
		data, err := json.Marshal(e)
		if err != nil {
			return nil, fmt.Errorf("encode %s: %w", e.EventType(), err)
		}
		out[i] = eventstore.EventData{ID: uuid.New(), Type: e.EventType(), SchemaVersion: 1, Data: data, Metadata: meta}
	}
	return out, nil
}
