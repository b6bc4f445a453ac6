// Package analytics lets an analyst take any classroom that ever ran and see
// it again: its events in commit order (paged or streamed as NDJSON), the
// classroom as it was at any instant (folded from events, not from today's
// read models), a replay socket that re-emits what the live sockets showed
// with the original gaps, and an xAPI 1.0.3 export.
//
// It reads through the event store's optional filtered reads
// (eventstore.Querier: a classroom's events, its state at an instant) and,
// for a lecture's whole history only, pages the PostgreSQL event store's
// events table with SQL (its time range and its sessions' events that do not
// name the lecture are not Filter conditions yet), through the partial
// expression indexes of migrations/00050_analytics.sql on metadata.session_id
// and metadata.lecture_id, bounded by the store's HeadPosition so that a
// reader paging by position never skips an event committing late.
// Supported says why a store cannot serve analytics (EventStoreDB: no
// filtered reads); the endpoints are then not mounted.
package analytics

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strconv"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/lockstep/lockstep/domain"
	"github.com/lockstep/lockstep/eventstore"
)

// Head returns the position of the newest event a reader may see now
// (eventstore.Store.HeadPosition).
type Head func(ctx context.Context) (uint64, error)

// Reader reads classrooms and lectures from the event store: filtered reads
// through its eventstore.Querier, and pages of the PostgreSQL events table.
type Reader struct {
	pool  *pgxpool.Pool
	head  Head
	store eventstore.Store
}

// NewReader returns a Reader of store's events; it panics without a pool or
// a store (a wiring bug). A store that cannot do filtered reads gives a
// Reader whose reads fail with Supported's error: check Supported first.
func NewReader(pool *pgxpool.Pool, store eventstore.Store) *Reader {
	if pool == nil || store == nil {
		panic("analytics: NewReader needs a pool and a store")
	}
	return &Reader{pool: pool, head: store.HeadPosition, store: store}
}

// Supported tells why analytics (and lockstep replay) cannot run on store, or
// nil when they can: they need the store's filtered reads
// (eventstore.Querier), which the PostgreSQL store has and EventStoreDB has
// not.
func Supported(store eventstore.Store) error {
	if _, err := eventstore.AsQuerier(store); err != nil {
		return fmt.Errorf("analytics needs an event store with filtered reads: %w", err)
	}
	return nil
}

func (r *Reader) querier() (eventstore.Querier, error) {
	q, err := eventstore.AsQuerier(r.store)
	if err != nil {
		return nil, fmt.Errorf("analytics needs an event store with filtered reads: %w", err)
	}
	return q, nil
}

// Event is one stored event as the analytics endpoints show it. Metadata is
// the stored metadata with the event's id added as "event_id".
type Event struct {
	Position   uint64          `json:"position"`
	Stream     string          `json:"stream"`
	Version    int64           `json:"version"`
	Type       string          `json:"type"`
	Data       json.RawMessage `json:"data"`
	Metadata   json.RawMessage `json:"metadata"`
	OccurredAt time.Time       `json:"occurred_at"`
	// ID is the event's id (also in Metadata).
	ID uuid.UUID `json:"-"`
}

// shownMetadata is a stored event's metadata as the events table's jsonb
// prints it with the event's id added: keys shorter first, then in byte
// order, and the writers' omitempty (so the pages stay as they were when
// they were read with SQL).
type shownMetadata struct {
	UserID        int64     `json:"user_id,omitempty"`
	EventID       uuid.UUID `json:"event_id"`
	LectureID     int64     `json:"lecture_id,omitempty"`
	SessionID     int64     `json:"session_id,omitempty"`
	CausationID   string    `json:"causation_id,omitempty"`
	CorrelationID string    `json:"correlation_id,omitempty"`
}

// shown is a stored event as the analytics endpoints show it.
func shown(e eventstore.Event) (Event, error) {
	m := e.Metadata
	meta, err := json.Marshal(shownMetadata{UserID: m.UserID, EventID: e.ID, LectureID: m.LectureID, SessionID: m.SessionID,
		CausationID: m.CausationID, CorrelationID: m.CorrelationID})
	if err != nil {
		return Event{}, err
	}
	return Event{Position: e.Position, Stream: e.Stream, Version: e.Version, Type: e.Type, Data: e.Data, Metadata: meta,
		OccurredAt: e.OccurredAt.UTC(), ID: e.ID}, nil
}

// fetch reads a chunk of the events f selects in (after, upTo] through the
// store's Querier, as the endpoints show them; what names what it reads, for
// errors.
func (r *Reader) fetch(q eventstore.Querier, f eventstore.Filter, what string, id int64) func(ctx context.Context, after, upTo uint64, n int) ([]Event, error) {
	return func(ctx context.Context, after, upTo uint64, n int) ([]Event, error) {
		f.After, f.UpTo, f.Limit = after, upTo, n
		evs, err := q.Query(ctx, f)
		if err != nil {
			return nil, fmt.Errorf("read "+what+": %w", id, err)
		}
		out := make([]Event, len(evs))
		for i, e := range evs {
			if out[i], err = shown(e); err != nil {
				return nil, err
			}
		}
		return out, nil
	}
}

// firstEvent is stream's first event (ok false: the stream is empty), read
// by version through the store (the stream's index, not the global log).
func (r *Reader) firstEvent(ctx context.Context, stream string) (eventstore.Event, bool, error) {
	evs, err := r.store.ReadStream(ctx, stream, 0, 1)
	if err != nil || len(evs) == 0 || evs[0].Version != 1 {
		return eventstore.Event{}, false, err
	}
	return evs[0], true, nil
}

// Classroom is a live session as its own stream tells it, plus what
// attributing progress events to it needs.
type Classroom struct {
	SessionID    int64
	LectureID    int64
	LectureTitle string
	InstructorID int64
	Title        string
	OpenedAt     time.Time
	// OpenedPosition is the position of SessionOpened.
	OpenedPosition uint64

	// Attribution of progress events that do not name their session (see
	// attributed): when the class was live, who joined when, and the other
	// sessions of the lecture that could claim the same events.
	startPos, endPos uint64
	joins            map[int64]uint64
	rivals           []rival
}

// rival is another session of the lecture with a higher id: the sessions
// projector gives a progress event without a session to the newest live
// session the student joined, so such a session wins over this one.
type rival struct {
	startPos, endPos uint64
	joins            map[int64]uint64
}

// LoadClassroom reads session sessionID's opening and its attribution data;
// domain.ErrNotFound when there is no such session.
func (r *Reader) LoadClassroom(ctx context.Context, sessionID int64) (*Classroom, error) {
	first, ok, err := r.firstEvent(ctx, domain.SessionStream(sessionID))
	if err != nil {
		return nil, fmt.Errorf("load session %d: %w", sessionID, err)
	}
	if !ok || first.Type != (domain.SessionOpened{}).EventType() {
		return nil, domain.NotFound("session")
	}
	data, pos := first.Data, first.Position
	var o domain.SessionOpened
	if err := json.Unmarshal(data, &o); err != nil {
		return nil, fmt.Errorf("decode SessionOpened of session %d: %w", sessionID, err)
	}
	cl := &Classroom{
		SessionID: o.SessionID, LectureID: o.LectureID, LectureTitle: o.LectureTitle, InstructorID: o.InstructorID,
		Title: o.Title, OpenedAt: o.OpenedAt.UTC(), OpenedPosition: pos, joins: map[int64]uint64{},
	}
	if err := r.loadAttribution(ctx, cl); err != nil {
		return nil, err
	}
	return cl, nil
}

// lifecycleTypes are the starts, ends and joins of a lecture's sessions
// (the lecture index; few events per session).
var lifecycleTypes = []string{domain.SessionStarted{}.EventType(), domain.SessionEnded{}.EventType(), domain.ParticipantJoined{}.EventType()}

func (r *Reader) loadAttribution(ctx context.Context, cl *Classroom) error {
	q, err := r.querier()
	if err != nil {
		return err
	}
	// A lean read (these three types name their session and user in their
	// data) of this session and the newer ones (events_session_control_idx).
	evs, err := q.Query(ctx, eventstore.Filter{LectureID: cl.LectureID, SessionsFrom: cl.SessionID, Types: lifecycleTypes, Fields: []string{"session_id", "user_id"}})
	if err != nil {
		return fmt.Errorf("load sessions of lecture %d: %w", cl.LectureID, err)
	}
	others := map[int64]*rival{}
	for _, e := range evs {
		var d struct {
			SessionID int64 `json:"session_id"`
			UserID    int64 `json:"user_id"`
		}
		if err := json.Unmarshal(e.Data, &d); err != nil {
			return fmt.Errorf("decode %s at %d: %w", e.Type, e.Position, err)
		}
		sid, pos := d.SessionID, e.Position
		if sid < cl.SessionID {
			continue // sessions with a lower id cannot claim this one's events
		}
		start, end, joins := &cl.startPos, &cl.endPos, cl.joins
		if sid != cl.SessionID {
			o := others[sid]
			if o == nil {
				o = &rival{joins: map[int64]uint64{}}
				others[sid] = o
			}
			start, end, joins = &o.startPos, &o.endPos, o.joins
		}
		switch e.Type {
		case lifecycleTypes[0]:
			*start = pos
		case lifecycleTypes[1]:
			*end = pos
		case lifecycleTypes[2]:
			joins[d.UserID] = pos
		}
	}
	for _, o := range others {
		if o.startPos != 0 && len(o.joins) > 0 {
			cl.rivals = append(cl.rivals, *o)
		}
	}
	return nil
}

// liveAt reports whether a session with these bounds was IN_PROGRESS or
// PAUSED when the event at pos was projected (every lower position applied).
func liveAt(start, end, pos uint64) bool {
	return start != 0 && start < pos && (end == 0 || end > pos)
}

// attributed applies the sessions projector's rule to a progress event that
// names no session: it belongs to the newest session of its lecture that was
// live then and that the student had joined — this classroom, or a rival.
func (cl *Classroom) attributed(userID int64, pos uint64) bool {
	j, ok := cl.joins[userID]
	if !ok || j >= pos || !liveAt(cl.startPos, cl.endPos, pos) {
		return false
	}
	for _, o := range cl.rivals {
		if j, ok := o.joins[userID]; ok && j < pos && liveAt(o.startPos, o.endPos, pos) {
			return false
		}
	}
	return true
}

// source is one position-ordered query, read in chunks.
type source struct {
	fetch  func(ctx context.Context, after, upTo uint64, n int) ([]Event, error)
	keep   func(Event) bool
	after  uint64 // last raw position fetched
	upTo   uint64
	buf    []Event
	done   bool
	chunks int
}

func (s *source) peek(ctx context.Context, chunk int) (*Event, error) {
	for len(s.buf) == 0 && !s.done {
		evs, err := s.fetch(ctx, s.after, s.upTo, chunk)
		if err != nil {
			return nil, err
		}
		s.chunks++
		if len(evs) < chunk {
			s.done = true
		}
		if len(evs) > 0 {
			s.after = evs[len(evs)-1].Position
		}
		for _, e := range evs {
			if s.keep == nil || s.keep(e) {
				s.buf = append(s.buf, e)
			}
		}
	}
	if len(s.buf) == 0 {
		return nil, nil
	}
	return &s.buf[0], nil
}

// merge yields the events of every source in position order.
func merge(ctx context.Context, chunk int, sources []*source, yield func(Event) (bool, error)) error {
	for {
		if err := ctx.Err(); err != nil {
			return err
		}
		var best *source
		var bestEv *Event
		for _, s := range sources {
			e, err := s.peek(ctx, chunk)
			if err != nil {
				return err
			}
			if e != nil && (bestEv == nil || e.Position < bestEv.Position) {
				best, bestEv = s, e
			}
		}
		if best == nil {
			return nil
		}
		ev := *bestEv
		best.buf = best.buf[1:]
		more, err := yield(ev)
		if err != nil || !more {
			return err
		}
	}
}

// ClassroomEvents calls yield with every event of the classroom with a
// position in (after, upTo] (upTo 0: the store's head), in commit order,
// reading chunk events at a time, until yield returns false or an error:
// the session's and its participants' streams, the progress and help events
// recorded in it, and the progress events the sessions projector attributed
// to it although they name no session.
func (r *Reader) ClassroomEvents(ctx context.Context, cl *Classroom, after, upTo uint64, chunk int, yield func(Event) (bool, error)) error {
	if upTo == 0 {
		h, err := r.head(ctx)
		if err != nil {
			return fmt.Errorf("head position: %w", err)
		}
		upTo = h
	}
	if chunk <= 0 {
		chunk = 500
	}
	q, err := r.querier()
	if err != nil {
		return err
	}
	named := &source{after: after, upTo: upTo, fetch: r.fetch(q, eventstore.Filter{SessionID: cl.SessionID}, "session %d events", cl.SessionID)}
	sources := []*source{named}
	if cl.startPos != 0 && len(cl.joins) > 0 {
		lo, hi := max(after, cl.startPos), upTo
		if cl.endPos != 0 {
			hi = min(hi, cl.endPos)
		}
		if lo < hi {
			// Progress of the lecture that names no session, while the session
			// was live (events_unnamed_progress_idx), attributed in Go.
			unnamed := eventstore.Filter{LectureID: cl.LectureID, Types: progressTypes, NoSession: true}
			sources = append(sources, &source{after: lo, upTo: hi,
				fetch: r.fetch(q, unnamed, "lecture %d progress", cl.LectureID),
				keep: func(e Event) bool {
					var d struct {
						UserID    int64 `json:"user_id"`
						SessionID int64 `json:"session_id"`
					}
					return json.Unmarshal(e.Data, &d) == nil && d.SessionID == 0 && cl.attributed(d.UserID, e.Position)
				}})
		}
	}
	return merge(ctx, chunk, sources, yield)
}

// LectureOwner returns the lecture's instructor from its LectureCreated
// event; domain.ErrNotFound when there is no such lecture.
func (r *Reader) LectureOwner(ctx context.Context, lectureID int64) (int64, error) {
	first, ok, err := r.firstEvent(ctx, domain.LectureStream(lectureID))
	if err != nil {
		return 0, fmt.Errorf("load lecture %d: %w", lectureID, err)
	}
	if !ok {
		return 0, domain.NotFound("lecture")
	}
	var d struct {
		InstructorID int64 `json:"instructor_id"`
	}
	if err := json.Unmarshal(first.Data, &d); err != nil {
		return 0, fmt.Errorf("load lecture %d: %w", lectureID, err)
	}
	return d.InstructorID, nil
}

// TimeRange narrows a lecture's history by occurred_at: [Since, Until), a
// zero bound is open.
type TimeRange struct{ Since, Until time.Time }

// LectureEvents calls yield with every event of lecture lectureID's history
// with a position in (after, head] and an occurred_at in tr, in commit
// order: its content edits, enrollments, progress, every session with its
// participants, and every help request.
func (r *Reader) LectureEvents(ctx context.Context, lectureID int64, after uint64, tr TimeRange, chunk int, yield func(Event) (bool, error)) error {
	upTo, err := r.head(ctx)
	if err != nil {
		return fmt.Errorf("head position: %w", err)
	}
	if chunk <= 0 {
		chunk = 500
	}
	q, err := r.querier()
	if err != nil {
		return err
	}
	sessions, err := r.lectureSessions(ctx, lectureID, upTo)
	if err != nil {
		return fmt.Errorf("list sessions of lecture %d: %w", lectureID, err)
	}
	sources := []*source{{after: after, upTo: upTo,
		fetch: r.fetch(q, eventstore.Filter{LectureID: lectureID, Since: tr.Since, Before: tr.Until}, "lecture %d events", lectureID)}}
	if len(sessions) > 0 {
		// The presence tracker's reconnections and disconnections name only
		// their session.
		sources = append(sources, &source{after: after, upTo: upTo,
			fetch: r.fetch(q, eventstore.Filter{Sessions: sessions, NoLecture: true, Since: tr.Since, Before: tr.Until}, "lecture %d session events", lectureID)})
	}
	return merge(ctx, chunk, sources, yield)
}

// lectureSessions lists the sessions opened for the lecture up to position
// upTo (a lean read of its SessionOpened events).
func (r *Reader) lectureSessions(ctx context.Context, lectureID int64, upTo uint64) ([]int64, error) {
	q, err := r.querier()
	if err != nil {
		return nil, err
	}
	evs, err := q.Query(ctx, eventstore.Filter{LectureID: lectureID, Types: []string{domain.SessionOpened{}.EventType()}, UpTo: upTo, Fields: []string{"session_id"}})
	if err != nil {
		return nil, err
	}
	sessions := make([]int64, 0, len(evs))
	for _, e := range evs {
		var d struct {
			SessionID int64 `json:"session_id"`
		}
		if err := json.Unmarshal(e.Data, &d); err != nil {
			return nil, err
		}
		sessions = append(sessions, d.SessionID)
	}
	return sessions, nil
}

// Page collects up to limit events from an iteration (ClassroomEvents or
// LectureEvents bound to their arguments but after): next is the position to
// ask after for the following page, nil when this page reached the end.
func Page(ctx context.Context, limit int, iterate func(chunk int, yield func(Event) (bool, error)) error) (events []Event, next *uint64, err error) {
	events = make([]Event, 0, min(limit, 1000))
	err = iterate(limit+1, func(e Event) (bool, error) {
		events = append(events, e)
		return len(events) <= limit, nil
	})
	if err != nil {
		return nil, nil, err
	}
	if len(events) > limit {
		events = slices.Clip(events[:limit])
		p := events[limit-1].Position
		next = &p
	}
	return events, next, nil
}

func itoa(n int64) string { return strconv.FormatInt(n, 10) }
