package eventstoretest

import (
	"context"
	"errors"
	"math/rand/v2"
	"slices"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/lockstep/lockstep/eventstore"
)

// RunQuerier checks a store's eventstore.Querier against Filter.Matches on a
// small log of its own (unique stream names and session and lecture ids, so
// that a shared server's other events never match), and that AsQuerier finds
// it through a decorator. newStore is called once.
func RunQuerier(t *testing.T, newStore func(t *testing.T) eventstore.Store) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	st := newStore(t)
	q, err := eventstore.AsQuerier(wrapped{st})
	if err != nil {
		t.Fatalf("AsQuerier through a decorator: %v", err)
	}
	start, err := st.HeadPosition(ctx)
	if err != nil {
		t.Fatal(err)
	}
	prefix := "q" + uuid.NewString()[:8]
	session, lecture := 1_000_000+rand.Int64N(1<<40), 1_000_000+rand.Int64N(1<<40)
	t0 := time.Now().UTC().Truncate(time.Millisecond).Add(-time.Hour)
	var appended []eventstore.Event
	types := []string{"Opened", "Moved", "Progressed", "Closed"}
	for i := range 24 {
		stream := prefix + "-" + []string{"a", "b", "c"}[i%3]
		e := newEvent(types[i%4], i)
		// Occurrence times are not in append order: Latest goes by time.
		e.OccurredAt = t0.Add(time.Duration((i*7)%24) * time.Minute)
		switch {
		case i%2 == 0:
			e.Metadata.SessionID = session
		case i%4 == 1:
			e.Metadata.SessionID = session + 1 // a newer session
		case i%8 == 3:
			e.Metadata.SessionID = session - 1 // an older one
		}
		if i%3 != 2 {
			e.Metadata.LectureID = lecture
		}
		res := mustAppend(t, ctx, st, stream, eventstore.Any, e)
		appended = append(appended, eventstore.Event{Position: res.Position, Stream: stream, Type: e.Type, Metadata: e.Metadata, OccurredAt: e.OccurredAt, ID: e.ID})
	}
	last := appended[len(appended)-1].Position
	mine := eventstore.Filter{StreamPrefix: prefix + "-", After: start}
	cases := map[string]eventstore.Filter{
		"prefix":               mine,
		"streams":              {Streams: []string{prefix + "-a", prefix + "-c"}, After: start},
		"types":                {StreamPrefix: prefix + "-", Types: []string{"Moved", "Closed"}, After: start},
		"exclude types":        {StreamPrefix: prefix + "-", ExcludeTypes: []string{"Moved"}, After: start},
		"session":              {SessionID: session, After: start},
		"no session":           {StreamPrefix: prefix + "-", NoSession: true, After: start},
		"lecture":              {LectureID: lecture, After: start},
		"sessions from":        {SessionsFrom: session, After: start},
		"lecture+session":      {LectureID: lecture, SessionID: session, Types: []string{"Opened"}, After: start},
		"until":                {SessionID: session, Until: t0.Add(10 * time.Minute), After: start},
		"sessions":             {Sessions: []int64{session - 1, session + 1}, After: start},
		"sessions, no lecture": {Sessions: []int64{session, session + 1}, NoLecture: true, After: start},
		"since, before":        {LectureID: lecture, Since: t0.Add(7 * time.Minute), Before: t0.Add(21 * time.Minute), After: start},
		"positions":            {StreamPrefix: prefix + "-", After: appended[5].Position, UpTo: appended[17].Position},
		"head":                 {SessionID: session, After: start, UpTo: last},
	}
	for name, f := range cases {
		t.Run(name, func(t *testing.T) { checkQuery(ctx, t, q, f, appended) })
	}
	t.Run("limit", func(t *testing.T) {
		f := mine
		f.Limit = 5
		got, err := q.Query(ctx, f)
		if err != nil {
			t.Fatal(err)
		}
		want := []uuid.UUID{appended[0].ID, appended[1].ID, appended[2].ID, appended[3].ID, appended[4].ID}
		if !slices.Equal(ids(got), want) {
			t.Errorf("Query with Limit 5 = %v, want the first five %v", ids(got), want)
		}
	})
	t.Run("none", func(t *testing.T) {
		f := mine
		f.Types = []string{"NeverAppended"}
		if got, err := q.Query(ctx, f); err != nil || len(got) != 0 {
			t.Errorf("Query of an unknown type = %d events, %v; want none", len(got), err)
		}
		if _, ok, err := q.Latest(ctx, f); err != nil || ok {
			t.Errorf("Latest of an unknown type: ok %v, %v; want none", ok, err)
		}
	})
	t.Run("contradiction", func(t *testing.T) {
		for _, f := range []eventstore.Filter{{Sessions: []int64{session}, NoSession: true}, {LectureID: lecture, NoLecture: true}} {
			if _, err := q.Query(ctx, f); !errors.Is(err, eventstore.ErrInvalidFilter) {
				t.Errorf("Query(%+v): %v, want ErrInvalidFilter", f, err)
			}
		}
	})
	t.Run("invalid type", func(t *testing.T) {
		f := mine
		f.Types = []string{"x') OR true --"}
		if _, err := q.Query(ctx, f); !errors.Is(err, eventstore.ErrInvalidFilter) {
			t.Errorf("Query with a type that is not a name: %v, want ErrInvalidFilter", err)
		}
	})
}

// wrapped is a decorator that exposes what it wraps, as AsQuerier expects.
type wrapped struct{ eventstore.Store }

func (w wrapped) Unwrap() eventstore.Store { return w.Store }

// checkQuery compares Query and Latest for f with what Filter.Matches selects
// among the appended events.
func checkQuery(ctx context.Context, t *testing.T, q eventstore.Querier, f eventstore.Filter, appended []eventstore.Event) {
	got, err := q.Query(ctx, f)
	if err != nil {
		t.Fatal(err)
	}
	var want []uuid.UUID
	for _, e := range appended {
		if e.Position > f.After && (f.UpTo == 0 || e.Position <= f.UpTo) && f.Matches(e) {
			want = append(want, e.ID)
		}
	}
	if len(want) == 0 {
		t.Fatal("the case selects nothing: it proves nothing")
	}
	if !slices.Equal(ids(got), want) {
		t.Errorf("Query(%+v) = %v, want %v (position order)", f, ids(got), want)
	}
	for i, e := range got {
		if len(e.Data) == 0 || e.Version == 0 || (i > 0 && e.Position <= got[i-1].Position) {
			t.Errorf("event %d: data %q version %d position %d: want whole events in position order", i, e.Data, e.Version, e.Position)
		}
	}
	// Latest: the one that occurred last, the highest position among ties.
	latest, ok, err := q.Latest(ctx, f)
	if err != nil || !ok {
		t.Fatalf("Latest: %v %v", ok, err)
	}
	best := got[0]
	for _, e := range got[1:] {
		if !e.OccurredAt.Before(best.OccurredAt) {
			best = e
		}
	}
	if latest.ID != best.ID {
		t.Errorf("Latest = %s (occurred %s), want %s (occurred %s)", latest.ID, latest.OccurredAt, best.ID, best.OccurredAt)
	}
}
