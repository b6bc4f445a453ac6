package commands_test

import (
	"context"
	"testing"

	"github.com/lockstep/lockstep/commands"
	"github.com/lockstep/lockstep/domain"
	"github.com/lockstep/lockstep/eventstore"
	"github.com/lockstep/lockstep/eventstore/postgres"
	"github.com/lockstep/lockstep/pgtest"
)

// ticked is a test event: every tick command appends one, whatever the
// state — like "next step", a command that is not idempotent by itself.
type ticked struct {
	N int `json:"n"`
}

func (ticked) EventType() string { return "CommandKeyTestTicked" }

func init() { domain.RegisterEvent[ticked]() }

var ticker = domain.Decider[int, struct{}]{
	Initial: func() int { return 0 },
	Decide: func(n int, _ struct{}) ([]domain.Event, error) {
		return []domain.Event{ticked{N: n + 1}, ticked{N: n + 2}}, nil
	},
	Evolve: func(_ int, e domain.Event) int { return e.(ticked).N },
}

// A command sent again under the same command key after its first attempt
// committed is not applied twice: Execute returns the first attempt's
// result. Without a key, or under another key, it runs again.
func TestCommandKeyAppliesACommandOnce(t *testing.T) {
	db := pgtest.New(t)
	store := postgres.New(db.Pool, postgres.Config{})
	ctx := context.Background()
	keyed := eventstore.WithCommandKey(ctx, "7:retry-me")

	first, err := commands.Execute(keyed, store, "ticks-1", ticker, struct{}{}, eventstore.Metadata{})
	if err != nil {
		t.Fatal(err)
	}
	again, err := commands.Execute(keyed, store, "ticks-1", ticker, struct{}{}, eventstore.Metadata{})
	if err != nil {
		t.Fatal(err)
	}
	if again.Version != 2 || again.State != 2 || len(again.Events) != 2 || again.Position != first.Position {
		t.Fatalf("sent again: %+v, first %+v: want the first attempt's result", again, first)
	}
	evs, err := store.ReadStream(ctx, "ticks-1", 0, 0)
	if err != nil || len(evs) != 2 {
		t.Fatalf("stream has %d events (%v), want 2", len(evs), err)
	}

	other, err := commands.Execute(eventstore.WithCommandKey(ctx, "7:another"), store, "ticks-1", ticker, struct{}{}, eventstore.Metadata{})
	if err != nil || other.Version != 4 || other.State != 4 {
		t.Fatalf("another key: %+v %v, want version 4", other, err)
	}
	// The same key in another stream is another command.
	if r, err := commands.Execute(keyed, store, "ticks-2", ticker, struct{}{}, eventstore.Metadata{}); err != nil || r.Version != 2 {
		t.Fatalf("same key, other stream: %+v %v", r, err)
	}
	for range 2 {
		if _, err := commands.Execute(ctx, store, "ticks-1", ticker, struct{}{}, eventstore.Metadata{}); err != nil {
			t.Fatal(err)
		}
	}
	if evs, _ := store.ReadStream(ctx, "ticks-1", 0, 0); len(evs) != 8 {
		t.Fatalf("without a key: %d events, want 8", len(evs))
	}
}
