package eventstore

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"slices"
	"time"
)

// Filter selects events of the global log for a Querier. Every set field
// narrows the selection (they combine with AND; a list matches any of its
// entries); the zero Filter selects every event a reader may see.
type Filter struct {
	// Streams: only these streams.
	Streams []string
	// StreamPrefix: only streams whose name starts with it.
	StreamPrefix string
	// Types: only these event types. ExcludeTypes: none of these.
	Types, ExcludeTypes []string
	// SessionID, LectureID: only events whose metadata names this session
	// or lecture. NoSession: only events whose metadata names no session.
	SessionID, LectureID int64
	NoSession            bool
	// SessionsFrom: only events whose metadata names a session with an id
	// of at least this one (a session and the newer ones of its lecture).
	SessionsFrom int64
	// Sessions: only events whose metadata names one of these sessions.
	Sessions []int64
	// NoLecture: only events whose metadata names no lecture.
	NoLecture bool
	// After, UpTo: only positions in (After, UpTo]; UpTo 0 is the store's head
	// (Query never returns an event a ReadAll reader could not see yet).
	After, UpTo uint64
	// Until: only events that occurred at or before it (zero: no bound).
	Until time.Time
	// Since, Before: only events that occurred in [Since, Before) (a zero
	// bound is open).
	Since, Before time.Time
	// Limit: at most this many events (<= 0: all of them).
	Limit int
	// Fields makes a lean read: each event's Data holds only these top-level
	// fields of its data (a missing one is null), and Metadata is left zero.
	// Nil: whole events.
	Fields []string
}

// Querier is an optional capability of a Store: filtered reads of the global
// log, done where the events are (an index, a server-side filter) rather than
// by reading every event. Both methods see only what ReadAll may return.
type Querier interface {
	// Query returns the events that match f, in position order.
	Query(ctx context.Context, f Filter) ([]Event, error)
	// Latest returns the matching event that occurred last (by OccurredAt,
	// the highest position among ties); ok is false when none matches.
	Latest(ctx context.Context, f Filter) (e Event, ok bool, err error)
}

// ErrNoQuerier: the store cannot do filtered reads (see AsQuerier).
var ErrNoQuerier = errors.New("eventstore: the store does not support filtered reads")

// ErrInvalidFilter: a Filter names an event type or field that is not a plain
// name, or asks for a session (or sessions) and for none.
var ErrInvalidFilter = errors.New("eventstore: invalid filter")

// AsQuerier returns store's Querier, looking through decorators that expose
// what they wrap with Unwrap() Store; ErrNoQuerier (wrapped, with the reason
// when the store gives one through QuerierUnsupported) when there is none.
func AsQuerier(store Store) (Querier, error) {
	for store != nil {
		if q, ok := store.(Querier); ok {
			return q, nil
		}
		if u, ok := store.(interface{ QuerierUnsupported() string }); ok {
			return nil, fmt.Errorf("%w: %s", ErrNoQuerier, u.QuerierUnsupported())
		}
		w, ok := store.(interface{ Unwrap() Store })
		if !ok {
			break
		}
		store = w.Unwrap()
	}
	return nil, fmt.Errorf("%w: %T", ErrNoQuerier, store)
}

var typeName = regexp.MustCompile(`^[A-Za-z0-9_.:-]+$`)

// Validate checks that every type and field the filter names is a plain name
// (letters, digits, "_", ".", ":", "-"): stores may spell them into their query.
func (f Filter) Validate() error {
	for _, ts := range [][]string{f.Types, f.ExcludeTypes, f.Fields} {
		for _, t := range ts {
			if !typeName.MatchString(t) {
				return fmt.Errorf("%w: name %q", ErrInvalidFilter, t)
			}
		}
	}
	if (f.SessionID != 0 || f.SessionsFrom != 0 || len(f.Sessions) > 0) && f.NoSession {
		return fmt.Errorf("%w: a session and NoSession together", ErrInvalidFilter)
	}
	if f.LectureID != 0 && f.NoLecture {
		return fmt.Errorf("%w: LectureID and NoLecture together", ErrInvalidFilter)
	}
	return nil
}

// Matches reports whether e passes f's field conditions (not its position
// bounds or limit): what a store that filters on its side must agree with.
func (f Filter) Matches(e Event) bool {
	switch {
	case len(f.Streams) > 0 && !contains(f.Streams, e.Stream),
		f.StreamPrefix != "" && (len(e.Stream) < len(f.StreamPrefix) || e.Stream[:len(f.StreamPrefix)] != f.StreamPrefix),
		len(f.Types) > 0 && !contains(f.Types, e.Type),
		contains(f.ExcludeTypes, e.Type),
		f.SessionID != 0 && e.Metadata.SessionID != f.SessionID,
		f.SessionsFrom != 0 && (e.Metadata.SessionID == 0 || e.Metadata.SessionID < f.SessionsFrom),
		len(f.Sessions) > 0 && (e.Metadata.SessionID == 0 || !slices.Contains(f.Sessions, e.Metadata.SessionID)),
		f.NoSession && e.Metadata.SessionID != 0,
		f.LectureID != 0 && e.Metadata.LectureID != f.LectureID,
		f.NoLecture && e.Metadata.LectureID != 0,
		!f.Until.IsZero() && e.OccurredAt.After(f.Until),
		!f.Since.IsZero() && e.OccurredAt.Before(f.Since),
		!f.Before.IsZero() && !e.OccurredAt.Before(f.Before):
		return false
	}
	return true
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}
