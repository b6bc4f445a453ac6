// Package eventstoredb is the event store over EventStoreDB / KurrentDB
// (EventStore-Client-Go/v4).
//
// Mapping:
//   - a Lockstep stream is an EventStoreDB stream of the same name; an event's
//     Version is its stream revision + 1;
//   - expected versions: NoStream → esdb.NoStream{}, Exactly(n>0) →
//     esdb.Revision(n-1), Any → esdb.Any{};
//   - an event's Position is the commit position of its place in $all, which
//     the server assigns per event in commit order (strictly increasing);
//   - the envelope (schema version, occurred_at, correlation/causation/user/
//     session/lecture ids) travels as the event's JSON user metadata; the
//     server adds its own system metadata (type, content-type, created) —
//     the client library calls log.Fatalf when a read event lacks `created`,
//     which only a non-EventStoreDB server could cause;
//   - system events (types or streams starting with `$`) never reach ReadAll,
//     HeadPosition or Subscribe.
//
// Limitation: servers that read streams from their index without positions
// return events with Position 0 from ReadStream; ReadAll and Subscribe always
// carry positions.
package eventstoredb

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"strings"
	"sync/atomic"
	"time"

	"github.com/EventStore/EventStore-Client-Go/v4/esdb"
	"github.com/google/uuid"

	"github.com/lockstep/lockstep/eventstore"
)

// Config configures a Store.
type Config struct {
	// URL is the connection string, e.g. esdb://127.0.0.1:2113?tls=false.
	URL string
	// BatchSize is the most events Subscribe hands over at once, and
	// ReadAll's limit when it is given none. Default 500.
	BatchSize int
	// Logger receives the client library's warnings and errors (at debug
	// level: the library is noisy). Default: discard.
	Logger *slog.Logger
	// Now is the clock for events without OccurredAt. Default time.Now.
	Now func() time.Time
}

func (c *Config) setDefaults() {
	if c.BatchSize == 0 {
		c.BatchSize = 500
	}
	if c.Now == nil {
		c.Now = time.Now
	}
}

// Validate reports every problem of c at once.
func (c Config) Validate() error {
	var errs []error
	if c.URL == "" {
		errs = append(errs, errors.New("eventstoredb: URL is required"))
	}
	if c.BatchSize < 0 {
		errs = append(errs, fmt.Errorf("eventstoredb: BatchSize %d < 0", c.BatchSize))
	}
	return errors.Join(errs...)
}

// Store is the EventStoreDB event store.
type Store struct {
	client *esdb.Client
	cfg    Config
	closed atomic.Bool
}

var _ eventstore.Store = (*Store)(nil)

// New connects a Store (lazily: the first call reaches the server; use Ping
// to check it answers).
func New(cfg Config) (*Store, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg.setDefaults()
	conf, err := esdb.ParseConnectionString(cfg.URL)
	if err != nil {
		return nil, fmt.Errorf("eventstoredb: connection string: %w", err)
	}
	conf.Logger = esdb.NoopLogging()
	if cfg.Logger != nil {
		log := cfg.Logger
		conf.Logger = func(level esdb.LogLevel, format string, args ...any) {
			log.Debug("eventstoredb client: "+fmt.Sprintf(format, args...), "level", level)
		}
	}
	client, err := esdb.NewClient(conf)
	if err != nil {
		return nil, fmt.Errorf("eventstoredb: %w", err)
	}
	return &Store{client: client, cfg: cfg}, nil
}

// Close closes the client; every method then returns eventstore.ErrClosed.
func (s *Store) Close() {
	if s.closed.CompareAndSwap(false, true) {
		_ = s.client.Close()
	}
}

// Ping reads the newest event of $all.
func (s *Store) Ping(ctx context.Context) error {
	if s.closed.Load() {
		return eventstore.ErrClosed
	}
	rs, err := s.client.ReadAll(ctx, esdb.ReadAllOptions{Direction: esdb.Backwards, From: esdb.End{}}, 1)
	if err != nil {
		return fmt.Errorf("eventstoredb ping: %w", err)
	}
	defer rs.Close()
	if _, err := rs.Recv(); err != nil && !errors.Is(err, io.EOF) {
		return fmt.Errorf("eventstoredb ping: %w", err)
	}
	return nil
}

// envelope is the user metadata stored with each event.
type envelope struct {
	eventstore.Metadata
	SchemaVersion int       `json:"schema_version"`
	OccurredAt    time.Time `json:"occurred_at"`
}

func expectedRevision(v eventstore.ExpectedVersion) esdb.ExpectedRevision {
	switch {
	case v == eventstore.Any:
		return esdb.Any{}
	case v == eventstore.NoStream:
		return esdb.NoStream{}
	default:
		return esdb.Revision(uint64(v) - 1)
	}
}

func isWrongVersion(err error) bool {
	var esErr *esdb.Error
	return errors.As(err, &esErr) && esErr.Code() == esdb.ErrorCodeWrongExpectedVersion
}

func isNotFound(err error) bool {
	var esErr *esdb.Error
	return errors.As(err, &esErr) && esErr.Code() == esdb.ErrorCodeResourceNotFound
}

// Append appends events to stream if its version matches expected.
//
// Idempotency: when every event id is already stored in this stream, in
// order at consecutive versions, nothing is written and the earlier append's
// result is returned (its Position may be 0 on servers without positions in
// stream reads). When only some are, the append fails with ErrConcurrency.
// Ids stored in another stream are not detected (EventStoreDB has no lookup
// by id): such an append is written again.
func (s *Store) Append(ctx context.Context, stream string, expected eventstore.ExpectedVersion, events ...eventstore.EventData) (eventstore.AppendResult, error) {
	if s.closed.Load() {
		return eventstore.AppendResult{}, eventstore.ErrClosed
	}
	if err := eventstore.ValidateAppend(stream, expected, events); err != nil {
		return eventstore.AppendResult{}, err
	}
	now := s.cfg.Now()
	data := make([]esdb.EventData, len(events))
	ids := make([]uuid.UUID, len(events))
	for i, e := range events {
		e = e.WithDefaults(now)
		md, err := json.Marshal(envelope{Metadata: e.Metadata, SchemaVersion: e.SchemaVersion, OccurredAt: e.OccurredAt})
		if err != nil {
			return eventstore.AppendResult{}, fmt.Errorf("%w: metadata: %v", eventstore.ErrInvalidEvent, err)
		}
		data[i] = esdb.EventData{EventID: e.ID, EventType: e.Type, ContentType: esdb.ContentTypeJson, Data: e.Data, Metadata: md}
		ids[i] = e.ID
	}
	wr, err := s.client.AppendToStream(ctx, stream, esdb.AppendToStreamOptions{ExpectedRevision: expectedRevision(expected)}, data...)
	if err != nil {
		if !isWrongVersion(err) {
			return eventstore.AppendResult{}, fmt.Errorf("append to %s: %w", stream, err)
		}
		prior, stored, lerr := s.lookupStored(ctx, stream, ids)
		if lerr != nil {
			return eventstore.AppendResult{}, fmt.Errorf("append to %s: %w", stream, lerr)
		}
		if stored {
			return prior, nil
		}
		return eventstore.AppendResult{}, fmt.Errorf("append to %s at expected version %d: %w", stream, expected, eventstore.ErrConcurrency)
	}
	res := eventstore.AppendResult{Version: int64(wr.NextExpectedVersion) + 1, Position: wr.CommitPosition}
	// The server acknowledges an idempotent retry as a success without
	// writing (and without a position); then the result does not describe
	// these events. Check whenever that may be so (Any: always, since the
	// new version is not known in advance).
	if expected == eventstore.Any || wr.CommitPosition == 0 || res.Version != int64(expected)+int64(len(events)) {
		prior, stored, lerr := s.lookupStored(ctx, stream, ids)
		if lerr != nil {
			return eventstore.AppendResult{}, fmt.Errorf("append to %s: %w", stream, lerr)
		}
		if !stored {
			return eventstore.AppendResult{}, fmt.Errorf("append to %s: the server acknowledged events it did not store", stream)
		}
		if prior.Version == res.Version && prior.Position == 0 {
			prior.Position = res.Position
		}
		return prior, nil
	}
	return res, nil
}

// lookupStored reads stream to tell whether ids are stored in it in order at
// consecutive versions (true, with that append's result), not at all (false,
// nil), or partly (ErrConcurrency).
func (s *Store) lookupStored(ctx context.Context, stream string, ids []uuid.UUID) (eventstore.AppendResult, bool, error) {
	evs, err := s.ReadStream(ctx, stream, 0, 0)
	if err != nil {
		return eventstore.AppendResult{}, false, err
	}
	at := map[uuid.UUID]int{}
	for i, e := range evs {
		at[e.ID] = i
	}
	first, ok := at[ids[0]]
	n := 0
	for _, id := range ids {
		if _, ok := at[id]; ok {
			n++
		}
	}
	if n == 0 {
		return eventstore.AppendResult{}, false, nil
	}
	if !ok || n != len(ids) {
		return eventstore.AppendResult{}, false, fmt.Errorf("%w: %d of %d event ids are already stored in %s", eventstore.ErrConcurrency, n, len(ids), stream)
	}
	for i, id := range ids {
		if at[id] != first+i {
			return eventstore.AppendResult{}, false, fmt.Errorf("%w: event ids already stored in %s in another order", eventstore.ErrConcurrency, stream)
		}
	}
	last := evs[first+len(ids)-1]
	return eventstore.AppendResult{Version: last.Version, Position: last.Position}, true, nil
}

// ReadStream returns up to limit events of stream with a version above
// afterVersion, in version order (limit <= 0: all).
func (s *Store) ReadStream(ctx context.Context, stream string, afterVersion int64, limit int) ([]eventstore.Event, error) {
	if s.closed.Load() {
		return nil, eventstore.ErrClosed
	}
	count := uint64(math.MaxInt64)
	if limit > 0 {
		count = uint64(limit)
	}
	from := esdb.StreamPosition(esdb.Start{})
	if afterVersion > 0 {
		from = esdb.Revision(uint64(afterVersion)) // revision = version - 1
	}
	rs, err := s.client.ReadStream(ctx, stream, esdb.ReadStreamOptions{Direction: esdb.Forwards, From: from}, count)
	if err != nil {
		if isNotFound(err) {
			return nil, nil
		}
		return nil, fmt.Errorf("read stream %s: %w", stream, err)
	}
	defer rs.Close()
	var out []eventstore.Event
	for {
		re, err := rs.Recv()
		if errors.Is(err, io.EOF) {
			return out, nil
		}
		if err != nil {
			if isNotFound(err) {
				return nil, nil
			}
			return nil, fmt.Errorf("read stream %s: %w", stream, err)
		}
		if re.Event == nil {
			continue
		}
		e := toEvent(re.Event)
		if e.Position == math.MaxUint64 {
			e.Position = 0 // not known from the stream index
		}
		out = append(out, e)
	}
}

func isSystem(ev *esdb.RecordedEvent) bool {
	return strings.HasPrefix(ev.EventType, "$") || strings.HasPrefix(ev.StreamID, "$")
}

func toEvent(r *esdb.RecordedEvent) eventstore.Event {
	e := eventstore.Event{
		Position: r.Position.Commit,
		Stream:   r.StreamID,
		Version:  int64(r.EventNumber) + 1,
		ID:       r.EventID,
		Type:     r.EventType,
		Data:     json.RawMessage(r.Data),
	}
	var env envelope
	if len(r.UserMetadata) > 0 && json.Unmarshal(r.UserMetadata, &env) == nil {
		e.Metadata, e.SchemaVersion, e.OccurredAt = env.Metadata, env.SchemaVersion, env.OccurredAt.UTC()
	}
	if e.SchemaVersion == 0 {
		e.SchemaVersion = 1
	}
	if e.OccurredAt.IsZero() {
		e.OccurredAt = r.CreatedDate.UTC()
	}
	return e
}

func allFrom(after uint64) esdb.AllPosition {
	if after == 0 {
		return esdb.Start{}
	}
	return esdb.Position{Commit: after, Prepare: after}
}

// ReadAll returns up to limit non-system events with a position above
// after, in commit order; limit <= 0 means Config.BatchSize.
func (s *Store) ReadAll(ctx context.Context, after uint64, limit int) ([]eventstore.Event, error) {
	if s.closed.Load() {
		return nil, eventstore.ErrClosed
	}
	if limit <= 0 {
		limit = s.cfg.BatchSize
	}
	var out []eventstore.Event
	from := after
	for len(out) < limit {
		// System events are skipped here, so a page may yield fewer than asked.
		page := uint64(limit - len(out) + 1)
		rs, err := s.client.ReadAll(ctx, esdb.ReadAllOptions{Direction: esdb.Forwards, From: allFrom(from)}, page)
		if err != nil {
			return nil, fmt.Errorf("read all after %d: %w", after, err)
		}
		read, last := uint64(0), from
		for len(out) < limit {
			re, err := rs.Recv()
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil {
				rs.Close()
				return nil, fmt.Errorf("read all after %d: %w", after, err)
			}
			read++
			if re.Event == nil || re.Event.Position.Commit <= from {
				continue // the read starts at from, inclusive
			}
			last = re.Event.Position.Commit
			if !isSystem(re.Event) {
				out = append(out, toEvent(re.Event))
			}
		}
		rs.Close()
		if read < page || last == from {
			break // end of the log
		}
		from = last
	}
	return out, nil
}

// HeadPosition is the position of the newest non-system event (0 if none).
func (s *Store) HeadPosition(ctx context.Context) (uint64, error) {
	if s.closed.Load() {
		return 0, eventstore.ErrClosed
	}
	const page = 100
	var from esdb.AllPosition = esdb.End{}
	var prev uint64
	for {
		rs, err := s.client.ReadAll(ctx, esdb.ReadAllOptions{Direction: esdb.Backwards, From: from}, page)
		if err != nil {
			return 0, fmt.Errorf("head position: %w", err)
		}
		n := 0
		for {
			re, err := rs.Recv()
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil {
				rs.Close()
				return 0, fmt.Errorf("head position: %w", err)
			}
			n++
			if re.Event == nil {
				continue
			}
			if !isSystem(re.Event) {
				rs.Close()
				return re.Event.Position.Commit, nil
			}
			prev = re.Event.Position.Commit
			from = re.Event.Position
		}
		rs.Close()
		if n < page || prev == 0 {
			return 0, nil
		}
	}
}

// Subscribe is a catch-up subscription to $all, without system events, from
// position after. Events that arrive together are handed over in one batch
// of at most Config.BatchSize. A dropped subscription returns its error.
func (s *Store) Subscribe(ctx context.Context, after uint64, handle eventstore.Handler) error {
	if s.closed.Load() {
		return eventstore.ErrClosed
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	sub, err := s.client.SubscribeToAll(ctx, esdb.SubscribeToAllOptions{
		From:   allFrom(after),
		Filter: esdb.ExcludeSystemEventsFilter(),
	})
	if err != nil {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		return fmt.Errorf("subscribe to $all after %d: %w", after, err)
	}
	defer func() { _ = sub.Close() }()

	type item struct {
		ev  *esdb.RecordedEvent
		err error
	}
	items := make(chan item, s.cfg.BatchSize)
	go func() {
		defer close(items)
		for {
			se := sub.Recv()
			var it item
			switch {
			case se.SubscriptionDropped != nil:
				it.err = se.SubscriptionDropped.Error
				if it.err == nil {
					it.err = errors.New("subscription dropped")
				}
			case se.EventAppeared != nil && se.EventAppeared.Event != nil:
				it.ev = se.EventAppeared.Event
			default:
				continue // checkpoints, caught up, fell behind
			}
			select {
			case items <- it:
			case <-ctx.Done():
				return
			}
			if it.err != nil {
				return
			}
		}
	}()

	last := after
	for {
		var batch []eventstore.Event
		var failure error
		select {
		case <-ctx.Done():
			return ctx.Err()
		case it, ok := <-items:
			if !ok {
				return ctx.Err()
			}
			failure = s.add(&batch, &last, it.ev, it.err)
		}
		// Take whatever else has already arrived.
	drain:
		for failure == nil && len(batch) < s.cfg.BatchSize {
			select {
			case it, ok := <-items:
				if !ok {
					break drain
				}
				failure = s.add(&batch, &last, it.ev, it.err)
			default:
				break drain
			}
		}
		if len(batch) > 0 {
			if err := handle(ctx, batch); err != nil {
				return err
			}
		}
		if failure != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			if s.closed.Load() {
				return eventstore.ErrClosed
			}
			return fmt.Errorf("subscription to $all dropped after %d: %w", last, failure)
		}
	}
}

// add appends ev to batch unless it is a system event or not after last.
func (s *Store) add(batch *[]eventstore.Event, last *uint64, ev *esdb.RecordedEvent, err error) error {
	if err != nil {
		return err
	}
	if ev == nil || isSystem(ev) || ev.Position.Commit <= *last {
		return nil
	}
	*last = ev.Position.Commit
	*batch = append(*batch, toEvent(ev))
	return nil
}
