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
	stored, err := es.ReadStream(ctx, stream, 0, 0)
	if err != nil {
		var zero S
		return zero, 0, fmt.Errorf("read %s: %w", stream, err)
	}
	state := d.Initial()
	var version int64
	for _, ev := range stored {
		payload, err := domain.DecodeEvent(ev.Type, ev.Data)
		if err != nil {
			var zero S
			return zero, 0, fmt.Errorf("%s v%d: %w", stream, ev.Version, err)
		}
		state = d.Evolve(state, payload)
		version = ev.Version
	}
	return state, version, nil
}

// Execute runs cmd against the aggregate in stream: load, decide, append with
// the expected version; on a concurrency conflict it starts over, up to
// MaxAttempts times. A refusal from Decide is returned as is (*domain.Error).
func Execute[S, C any](ctx context.Context, es eventstore.Store, stream string, d domain.Decider[S, C], cmd C, meta eventstore.Metadata) (Result[S], error) {
	var lastErr error
	for range MaxAttempts {
		state, version, err := Load(ctx, es, stream, d)
		if err != nil {
			return Result[S]{}, err
		}
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
