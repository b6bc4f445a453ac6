// Package eventstore defines Lockstep's event store: append-only streams with
// optimistic concurrency, and one global log in commit order that readers can
// follow from any position without ever skipping an event.
//
// Implementations live in subpackages (postgres, eventstoredb); every one of
// them runs the shared conformance suite in package eventstoretest.
package eventstore

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/google/uuid"
)

// ExpectedVersion is the optimistic-concurrency condition of an append: the
// number of events the stream must hold (its current version) for the append
// to succeed, or one of Any / NoStream.
type ExpectedVersion int64

const (
	// Any appends whatever the stream's version is.
	Any ExpectedVersion = -1
	// NoStream appends only if the stream has no events yet.
	NoStream ExpectedVersion = 0
)

// Exactly returns the condition "the stream holds exactly v events".
func Exactly(v int64) ExpectedVersion { return ExpectedVersion(v) }

// Errors every implementation returns (wrapped or not; match with errors.Is).
var (
	// ErrConcurrency: the stream's version was not the expected one.
	ErrConcurrency = errors.New("eventstore: wrong expected version")
	// ErrInvalidEvent: an event to append lacks an id or a type, or its data is not JSON.
	ErrInvalidEvent = errors.New("eventstore: invalid event")
	// ErrClosed: the store was closed.
	ErrClosed = errors.New("eventstore: closed")
)

// Metadata is the envelope every event carries besides its data.
type Metadata struct {
	CorrelationID string `json:"correlation_id,omitempty"`
	CausationID   string `json:"causation_id,omitempty"`
	// UserID is the acting user (0 for the server itself).
	UserID int64 `json:"user_id,omitempty"`
	// SessionID is the live session in which the action happened, if any.
	SessionID int64 `json:"session_id,omitempty"`
	// LectureID is the lecture the event belongs to, if any; it lets analytics
	// find a lecture's whole history without reading every stream.
	LectureID int64 `json:"lecture_id,omitempty"`
}

// EventData is an event to append.
type EventData struct {
	// ID identifies the event; appending an event whose ID is already stored
	// in the same stream at the same place is a no-op (idempotent retry).
	ID            uuid.UUID
	Type          string
	SchemaVersion int
	Data          json.RawMessage
	Metadata      Metadata
	// OccurredAt defaults to the store's clock when zero.
	OccurredAt time.Time
}

// Event is a stored event.
type Event struct {
	// Position is the event's place in the global log: strictly increasing in
	// commit order, not necessarily contiguous. Zero in ReadStream results of
	// stores that assign positions lazily never happens: positions are known at commit.
	Position      uint64          `json:"position"`
	Stream        string          `json:"stream"`
	Version       int64           `json:"version"` // 1 for a stream's first event
	ID            uuid.UUID       `json:"event_id"`
	Type          string          `json:"type"`
	SchemaVersion int             `json:"schema_version"`
	Data          json.RawMessage `json:"data"`
	Metadata      Metadata        `json:"metadata"`
	OccurredAt    time.Time       `json:"occurred_at"`
}

// AppendResult tells where an append landed.
type AppendResult struct {
	// Version is the stream's version after the append (its number of events).
	Version int64
	// Position is the global position of the last appended event.
	Position uint64
}

// Handler receives a batch of events in commit order. Returning an error
// stops the subscription with that error.
type Handler func(ctx context.Context, batch []Event) error

// Store is an event store.
type Store interface {
	// Append appends events to a stream atomically if the stream's version
	// matches expected. Errors: ErrConcurrency, ErrInvalidEvent, ErrClosed.
	Append(ctx context.Context, stream string, expected ExpectedVersion, events ...EventData) (AppendResult, error)

	// ReadStream returns up to limit events of one stream with a version
	// greater than afterVersion, in version order (limit <= 0: all).
	ReadStream(ctx context.Context, stream string, afterVersion int64, limit int) ([]Event, error)

	// ReadAll returns up to limit events of the global log with a position
	// greater than after, in commit order. It never returns an event while an
	// event with a lower position may still appear: a reader that pages with
	// the last position it got never skips one.
	ReadAll(ctx context.Context, after uint64, limit int) ([]Event, error)

	// Subscribe is a catch-up subscription to the global log: it delivers every
	// event after position after, first the stored ones and then live ones as
	// they commit, in batches, until ctx is done (returns ctx.Err()) or handle
	// fails (returns its error). A batch is handled before the next is read.
	Subscribe(ctx context.Context, after uint64, handle Handler) error

	// HeadPosition is the position of the newest event a reader may see now (0 if none).
	HeadPosition(ctx context.Context) (uint64, error)

	// Ping checks that the store answers.
	Ping(ctx context.Context) error

	Close()
}

// ValidateAppend checks an append's arguments the same way in every
// implementation: a non-empty stream, a known expected version, at least one
// event, and for each event a non-nil id unique within the append, a type, and
// data that is valid JSON. Errors wrap ErrInvalidEvent.
func ValidateAppend(stream string, expected ExpectedVersion, events []EventData) error {
	if stream == "" {
		return fmt.Errorf("%w: empty stream name", ErrInvalidEvent)
	}
	if expected < Any {
		return fmt.Errorf("%w: expected version %d", ErrInvalidEvent, expected)
	}
	if len(events) == 0 {
		return fmt.Errorf("%w: no events to append to %s", ErrInvalidEvent, stream)
	}
	seen := make(map[uuid.UUID]struct{}, len(events))
	for i, e := range events {
		switch {
		case e.ID == uuid.Nil:
			return fmt.Errorf("%w: event %d of %s has no id", ErrInvalidEvent, i, stream)
		case e.Type == "":
			return fmt.Errorf("%w: event %d of %s has no type", ErrInvalidEvent, i, stream)
		case !json.Valid(e.Data):
			return fmt.Errorf("%w: event %d (%s) of %s: data is not valid JSON", ErrInvalidEvent, i, e.Type, stream)
		case e.SchemaVersion < 0:
			return fmt.Errorf("%w: event %d (%s) of %s: negative schema version", ErrInvalidEvent, i, e.Type, stream)
		}
		if _, dup := seen[e.ID]; dup {
			return fmt.Errorf("%w: event id %s appears twice in one append to %s", ErrInvalidEvent, e.ID, stream)
		}
		seen[e.ID] = struct{}{}
	}
	return nil
}

// WithDefaults returns e with SchemaVersion 1 when it is zero and OccurredAt
// now when it is zero; OccurredAt is in UTC.
func (e EventData) WithDefaults(now time.Time) EventData {
	if e.SchemaVersion == 0 {
		e.SchemaVersion = 1
	}
	if e.OccurredAt.IsZero() {
		e.OccurredAt = now
	}
	e.OccurredAt = e.OccurredAt.UTC()
	return e
}
