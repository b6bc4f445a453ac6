// Package postgres is the PostgreSQL event store, Lockstep's default.
//
// # Positions are commit-safe
//
// A bigserial position is taken when a row is inserted but becomes visible when
// its transaction commits, so a reader paging by "last position seen" could see
// position 11, move on, and miss position 10 committing a moment later. This
// store avoids that without a global lock.
//
// The append protocol (enforced by the triggers of migration 00060, so a
// seeder, a migration or a COPY import cannot break it):
//
//   - an append is a transaction that locks the events table (RowExclusiveLock)
//     while it has no transaction id yet, then takes its id (a 64-bit xid8)
//     and stores its events at position = txid*65536 + i, i being the event's
//     index in the append (so an append holds at most 65,535 events); it keeps
//     the lock until its commit is visible (PostgreSQL releases locks after it
//     removes a transaction from the running set);
//   - the one-statement append takes the lock when the statement is planned
//     and its id while it executes; the transactional one calls
//     events_begin_append(), which refuses a transaction that already has an
//     id, locks, and takes the id. A transaction that wrote another table
//     first is refused.
//
// Readers (ReadAll, Subscribe, HeadPosition) first compute a bound B, in one
// statement with one snapshot S:
//
//	B = least(xmax(S), min{x in xip(S) : x's transaction holds the events lock}) * 65536
//
// xip(S) and xmax(S) come from pg_current_snapshot() as full xid8 values (no
// epoch arithmetic: a running transaction's id is often at or above xmax,
// which is the latest completed id + 1); the lock holders come from one pass
// over pg_lock_status(), taken after S, matched by virtual transaction to the
// transaction-id locks. Then, in a later statement, they read only events
// below B. Why no event below B can still appear, for an appender A with id a
// below B/65536:
//
//   - a < xmax(S) and a not in xip(S): A had ended when S was taken; a later
//     statement sees its commit;
//   - a in xip(S) (it cannot be at or above xmax(S), since B <= xmax(S)*65536):
//     A was running at S and, by the protocol, already held its events lock,
//     which it holds until its commit is visible. pg_lock_status() is not an
//     atomic snapshot (fast-path locks are gathered backend by backend before
//     the shared lock table) but a lock held throughout the pass is seen in
//     one part or the other, so if A is not among the holders it ended before
//     the pass ended — before the later read, which therefore sees its
//     commit. If A is among them, a >= min and B <= a*65536: contradiction;
//   - a transaction that gets its id after S gets one >= xmax(S), so its
//     events are above B; one that had an id but did not hold the lock at S
//     can never append (the protocol refuses it).
//
// So once a reader has read up to position p < B, no event at or below p can
// appear: paging by the last position seen skips nothing. The argument holds
// for every read that starts after the bound was computed, however much later:
// a bound may be shared and reused, it only gets stale. Concurrent
// appenders do not wait for each other and share group commits, and — unlike
// a bound taken from the snapshot's xmin — an unrelated long transaction (a bus
// handler, a report, another database on the server) does not hold readers
// back; only a slow append does.
//
// # One bound for many readers
//
// Every projector, socket catch-up and report reads through the same store;
// reading pg_lock_status() takes every lock-manager partition lock, so they
// share the query: at most one bound query runs at a time per Store, and a
// caller gets the result of the first query that starts after its call (fresh
// enough to see everything committed before the call, read-your-writes
// included), whoever else is waiting for it. A subscription paging through a
// backlog keeps one bound until a page comes back short.
//
// ReadStream is not held back that way: a command handler always sees its own
// and every committed write to the stream it is about to append to.
package postgres

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"sync"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/lockstep/lockstep/eventstore"
)

// Channel is the LISTEN/NOTIFY channel every append notifies.
const Channel = "lockstep_events"

// MaxAppendEvents is the most events one Append may carry.
const MaxAppendEvents = 65535

// positionsPerTx is the room each transaction has in the position space.
const positionsPerTx = 65536

// streamLockClass is the first key of the advisory lock that serializes Any
// appends to one stream (the second key is hashtext(stream)).
const streamLockClass = 0x4c4b5354 // "LKST"

// Config configures a Store. The zero value is usable.
type Config struct {
	// BatchSize is how many events Subscribe reads and hands over at once,
	// and ReadAll's limit when it is given none. Default 500.
	BatchSize int
	// PollInterval is how often Subscribe re-reads when no notification
	// arrives: a reader can be held back by a transaction that sends none.
	// Default 250ms.
	PollInterval time.Duration
	// AnyRetries is how many times an Any append is retried after losing a
	// race for the stream's next version to an Exactly append. Default 5.
	AnyRetries int
	// Logger reports trouble with the notification listener. Default: discard.
	Logger *slog.Logger
	// BeforeCommit, when set, is called inside every append transaction just
	// before it commits, with the append's context and stream. Tests use it to
	// hold committers back; production leaves it nil.
	BeforeCommit func(ctx context.Context, stream string)
	// AfterLock, when set, is called inside every transactional append (the
	// ones BeforeCommit may hold) once it has locked the events table and
	// before it takes its transaction id. Tests use it to pause appenders.
	AfterLock func(ctx context.Context, stream string)
	// HoldCommit, with BeforeCommit or AfterLock, says which streams' appends
	// they may hold; the others take the one-statement path, so a test mixes
	// both paths. Nil: every append calls them.
	HoldCommit func(stream string) bool
	// Now is the clock for events without OccurredAt. Default time.Now.
	Now func() time.Time
}

func (c *Config) setDefaults() {
	if c.BatchSize == 0 {
		c.BatchSize = 500
	}
	if c.PollInterval == 0 {
		c.PollInterval = 250 * time.Millisecond
	}
	if c.AnyRetries == 0 {
		c.AnyRetries = 5
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	if c.Now == nil {
		c.Now = time.Now
	}
}

// Validate reports every problem of c at once (after defaults are applied,
// only negative values can be wrong).
func (c Config) Validate() error {
	var errs []error
	if c.BatchSize < 0 {
		errs = append(errs, fmt.Errorf("postgres event store: BatchSize %d < 0", c.BatchSize))
	}
	if c.PollInterval < 0 {
		errs = append(errs, fmt.Errorf("postgres event store: PollInterval %s < 0", c.PollInterval))
	}
	if c.AnyRetries < 0 {
		errs = append(errs, fmt.Errorf("postgres event store: AnyRetries %d < 0", c.AnyRetries))
	}
	return errors.Join(errs...)
}

// Store is the PostgreSQL event store. It uses the events table of
// migration 00001 and does not own the pool: Close leaves it open.
type Store struct {
	pool *pgxpool.Pool
	cfg  Config

	mu        sync.Mutex // guards listening and the closing of done
	done      chan struct{}
	listening bool
	wg        sync.WaitGroup
	wake      wakeup

	notifyOnce sync.Once
	notifyCh   chan struct{}

	// The shared bound (guarded by mu): at most one bound query runs at a
	// time; callers that come while it runs wait for the next one.
	boundRunning *boundCall
	boundQueued  *boundCall
}

// boundCall is one bound query and the callers waiting for it.
type boundCall struct {
	done  chan struct{}
	bound int64
	err   error
}

var _ eventstore.Store = (*Store)(nil)

// New returns a Store over pool. It panics on a nil pool or an invalid config
// (a programming error; call cfg.Validate first to handle it).
func New(pool *pgxpool.Pool, cfg Config) *Store {
	if pool == nil {
		panic("postgres event store: nil pool")
	}
	if err := cfg.Validate(); err != nil {
		panic(err)
	}
	cfg.setDefaults()
	return &Store{pool: pool, cfg: cfg, done: make(chan struct{}), wake: wakeup{ch: make(chan struct{})}, notifyCh: make(chan struct{}, 1)}
}

// appended wakes this process's subscriptions at once and asks the notifier
// to tell other processes. The NOTIFY is sent after the append committed, in
// a transaction of its own: a NOTIFY inside the append's transaction would
// take PostgreSQL's database-wide notify lock through that transaction's
// commit, serializing every appender's commit (and fsync) behind it.
func (s *Store) appended() {
	s.wake.fire()
	s.notifyOnce.Do(func() {
		s.mu.Lock()
		defer s.mu.Unlock()
		if s.closed() {
			return
		}
		s.wg.Add(1)
		go s.notifier()
	})
	select {
	case s.notifyCh <- struct{}{}:
	default: // a notification is already due; it covers this append too
	}
}

// notifier sends one NOTIFY per burst of appends.
func (s *Store) notifier() {
	defer s.wg.Done()
	for {
		select {
		case <-s.done:
			return
		case <-s.notifyCh:
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			if _, err := s.pool.Exec(ctx, `SELECT pg_notify($1, '')`, Channel); err != nil {
				s.cfg.Logger.Warn("event store notify failed; other processes poll", "error", err)
			}
			cancel()
		}
	}
}

// Close stops the store's notification listener and makes every method
// return eventstore.ErrClosed. Running subscriptions return ErrClosed.
func (s *Store) Close() {
	s.mu.Lock()
	if !s.closed() {
		close(s.done)
	}
	s.mu.Unlock()
	s.wg.Wait()
}

func (s *Store) closed() bool {
	select {
	case <-s.done:
		return true
	default:
		return false
	}
}

// Ping checks that the database answers.
func (s *Store) Ping(ctx context.Context) error {
	if s.closed() {
		return eventstore.ErrClosed
	}
	return s.pool.Ping(ctx)
}

// errVersion: the stream's version was not the expected one.
var errVersion = errors.New("version mismatch")

// Append appends events to stream atomically if its version matches
// expected.
//
// Idempotency: when every event id of the append is already stored in this
// stream, in the same order at consecutive versions, nothing is written and
// the result of that earlier append is returned (Version and Position of its
// last event), whatever expected says. When only some of the ids are stored,
// or they are stored in another stream or another order, the append fails
// with eventstore.ErrConcurrency.
func (s *Store) Append(ctx context.Context, stream string, expected eventstore.ExpectedVersion, events ...eventstore.EventData) (eventstore.AppendResult, error) {
	if s.closed() {
		return eventstore.AppendResult{}, eventstore.ErrClosed
	}
	if err := eventstore.ValidateAppend(stream, expected, events); err != nil {
		return eventstore.AppendResult{}, err
	}
	if len(events) > MaxAppendEvents {
		return eventstore.AppendResult{}, fmt.Errorf("%w: %d events in one append to %s (at most %d)", eventstore.ErrInvalidEvent, len(events), stream, MaxAppendEvents)
	}
	rows, err := s.rows(events)
	if err != nil {
		return eventstore.AppendResult{}, err
	}
	for attempt := 0; ; attempt++ {
		res, err := s.tryAppend(ctx, stream, expected, rows)
		if err == nil {
			s.appended()
			return res, nil
		}
		if !errors.Is(err, errVersion) && !isUniqueViolation(err) {
			return eventstore.AppendResult{}, fmt.Errorf("append to %s: %w", stream, err)
		}
		// Someone else wrote: either these very events (a retried append)
		// or other events of the stream.
		prior, stored, lerr := s.lookupStored(ctx, stream, rows.ids)
		if lerr != nil {
			return eventstore.AppendResult{}, fmt.Errorf("append to %s: %w", stream, lerr)
		}
		if stored {
			return prior, nil
		}
		if expected != eventstore.Any || attempt >= s.cfg.AnyRetries {
			return eventstore.AppendResult{}, fmt.Errorf("append to %s at expected version %d: %w", stream, expected, eventstore.ErrConcurrency)
		}
	}
}

// appendRows are an append's events as column arrays.
type appendRows struct {
	ids        []uuid.UUID
	types      []string
	schemas    []int32
	data       []string
	metadata   []string
	occurredAt []time.Time
}

func (s *Store) rows(events []eventstore.EventData) (appendRows, error) {
	now := s.cfg.Now()
	r := appendRows{
		ids:        make([]uuid.UUID, len(events)),
		types:      make([]string, len(events)),
		schemas:    make([]int32, len(events)),
		data:       make([]string, len(events)),
		metadata:   make([]string, len(events)),
		occurredAt: make([]time.Time, len(events)),
	}
	for i, e := range events {
		e = e.WithDefaults(now)
		if e.SchemaVersion > math.MaxInt32 {
			return r, fmt.Errorf("%w: schema version %d too large", eventstore.ErrInvalidEvent, e.SchemaVersion)
		}
		md, err := json.Marshal(e.Metadata)
		if err != nil {
			return r, fmt.Errorf("%w: metadata: %v", eventstore.ErrInvalidEvent, err)
		}
		r.ids[i], r.types[i], r.schemas[i] = e.ID, e.Type, int32(e.SchemaVersion)
		r.data[i], r.metadata[i], r.occurredAt[i] = string(e.Data), string(md), e.OccurredAt
	}
	return r, nil
}

const insertSQL = `
WITH inserted AS (
    INSERT INTO events (position, stream, version, event_id, type, schema_version, data, metadata, occurred_at, txid)
    SELECT $1::bigint * 65536 + u.i - 1, $2, $3::bigint + u.i, u.id, u.typ, u.sv, u.d::jsonb, u.m::jsonb, u.oa, pg_current_xact_id()
    FROM unnest($4::uuid[], $5::text[], $6::int[], $7::text[], $8::text[], $9::timestamptz[])
         WITH ORDINALITY AS u(id, typ, sv, d, m, oa, i)
    RETURNING 1
)
SELECT (SELECT count(*) FROM inserted)`

// appendOneSQL appends at an exact expected version in a single statement —
// one round trip, its own implicit transaction. The transaction id is taken
// in the statement that inserts, as in the explicit-transaction path: the
// position scheme is the same. $3 is the expected version; when the stream's
// version differs nothing is inserted and the current version is returned.
const appendOneSQL = `
WITH cur AS (
    SELECT coalesce(max(version), 0) AS v FROM events WHERE stream = $1
), inserted AS (
    INSERT INTO events (position, stream, version, event_id, type, schema_version, data, metadata, occurred_at, txid)
    SELECT pg_current_xact_id()::text::bigint * 65536 + u.i - 1, $1, cur.v + u.i, u.id, u.typ, u.sv, u.d::jsonb, u.m::jsonb, u.oa, pg_current_xact_id()
    FROM cur, unnest($3::uuid[], $4::text[], $5::int[], $6::text[], $7::text[], $8::timestamptz[])
         WITH ORDINALITY AS u(id, typ, sv, d, m, oa, i)
    WHERE cur.v = $2::bigint
    RETURNING position
)
SELECT (SELECT v FROM cur), (SELECT count(*) FROM inserted), (SELECT coalesce(max(position), 0) FROM inserted)`

func (s *Store) tryAppend(ctx context.Context, stream string, expected eventstore.ExpectedVersion, r appendRows) (eventstore.AppendResult, error) {
	held := (s.cfg.BeforeCommit != nil || s.cfg.AfterLock != nil) && (s.cfg.HoldCommit == nil || s.cfg.HoldCommit(stream))
	if expected != eventstore.Any && !held {
		var version, n, last int64
		err := s.pool.QueryRow(ctx, appendOneSQL, stream, int64(expected), r.ids, r.types, r.schemas, r.data, r.metadata, r.occurredAt).Scan(&version, &n, &last)
		if err != nil {
			return eventstore.AppendResult{}, err
		}
		if n == 0 {
			return eventstore.AppendResult{}, errVersion
		}
		if n != int64(len(r.ids)) {
			return eventstore.AppendResult{}, fmt.Errorf("inserted %d events of %d", n, len(r.ids))
		}
		return eventstore.AppendResult{Version: version + n, Position: uint64(last)}, nil
	}
	tx, err := s.pool.Begin(ctx)
	if err != nil {
		return eventstore.AppendResult{}, err
	}
	defer func() { _ = tx.Rollback(context.WithoutCancel(ctx)) }()
	// The table lock comes before the transaction id: readers take the
	// smallest id among the lock holders as their bound (see the package
	// doc). An Any append waits for its stream's turn before it takes an id,
	// so that waiting does not hold readers back.
	if _, err := tx.Exec(ctx, `LOCK TABLE events IN ROW EXCLUSIVE MODE`); err != nil {
		return eventstore.AppendResult{}, err
	}
	if s.cfg.AfterLock != nil {
		s.cfg.AfterLock(ctx, stream)
	}
	if expected == eventstore.Any {
		// Any appends to one stream take turns instead of racing for the
		// same version; the lock is released when the transaction ends.
		if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock($1, hashtext($2))`, int32(streamLockClass), stream); err != nil {
			return eventstore.AppendResult{}, err
		}
	}
	var txid, version int64
	// events_begin_append (migration 00060) checks that the transaction has
	// no id yet, locks events (already held: a no-op) and takes the id.
	err = tx.QueryRow(ctx, `SELECT events_begin_append()::text::bigint, coalesce(max(version), 0) FROM events WHERE stream = $1`, stream).Scan(&txid, &version)
	if err != nil {
		return eventstore.AppendResult{}, err
	}
	if expected != eventstore.Any && version != int64(expected) {
		return eventstore.AppendResult{}, errVersion
	}
	if txid >= math.MaxInt64/positionsPerTx {
		return eventstore.AppendResult{}, fmt.Errorf("transaction id %d out of the position range", txid)
	}
	var n int64
	err = tx.QueryRow(ctx, insertSQL, txid, stream, version, r.ids, r.types, r.schemas, r.data, r.metadata, r.occurredAt).Scan(&n)
	if err != nil {
		return eventstore.AppendResult{}, err
	}
	if n != int64(len(r.ids)) {
		return eventstore.AppendResult{}, fmt.Errorf("inserted %d events of %d", n, len(r.ids))
	}
	if s.cfg.BeforeCommit != nil {
		s.cfg.BeforeCommit(ctx, stream)
	}
	if err := tx.Commit(ctx); err != nil {
		return eventstore.AppendResult{}, err
	}
	return eventstore.AppendResult{
		Version:  version + int64(len(r.ids)),
		Position: uint64(txid)*positionsPerTx + uint64(len(r.ids)-1),
	}, nil
}

// lookupStored tells whether ids are all stored in stream, in order, at
// consecutive versions (stored == true, with that append's result), stored
// nowhere (false, nil), or anything else (ErrConcurrency).
func (s *Store) lookupStored(ctx context.Context, stream string, ids []uuid.UUID) (eventstore.AppendResult, bool, error) {
	rows, err := s.pool.Query(ctx, `SELECT event_id, stream, version, position FROM events WHERE event_id = ANY($1)`, ids)
	if err != nil {
		return eventstore.AppendResult{}, false, err
	}
	type where struct {
		stream   string
		version  int64
		position int64
	}
	found := map[uuid.UUID]where{}
	for rows.Next() {
		var id uuid.UUID
		var w where
		if err := rows.Scan(&id, &w.stream, &w.version, &w.position); err != nil {
			rows.Close()
			return eventstore.AppendResult{}, false, err
		}
		found[id] = w
	}
	if err := rows.Err(); err != nil {
		return eventstore.AppendResult{}, false, err
	}
	if len(found) == 0 {
		return eventstore.AppendResult{}, false, nil
	}
	first, ok := found[ids[0]]
	if len(found) != len(ids) || !ok || first.stream != stream {
		return eventstore.AppendResult{}, false, fmt.Errorf("%w: %d of %d event ids are already stored, not as this append to %s", eventstore.ErrConcurrency, len(found), len(ids), stream)
	}
	for i, id := range ids {
		w := found[id]
		if w.stream != stream || w.version != first.version+int64(i) {
			return eventstore.AppendResult{}, false, fmt.Errorf("%w: event ids already stored, not as this append to %s", eventstore.ErrConcurrency, stream)
		}
	}
	last := found[ids[len(ids)-1]]
	return eventstore.AppendResult{Version: last.version, Position: uint64(last.position)}, true, nil
}

func isUniqueViolation(err error) bool {
	var pgErr *pgconn.PgError
	return errors.As(err, &pgErr) && pgErr.Code == "23505"
}

const eventColumns = `position, stream, version, event_id, type, schema_version, data, metadata, occurred_at`

// ReadStream returns up to limit events of stream with a version above
// afterVersion, in version order (limit <= 0: all of them). It reads every
// committed event, without the readers' hold-back.
func (s *Store) ReadStream(ctx context.Context, stream string, afterVersion int64, limit int) ([]eventstore.Event, error) {
	if s.closed() {
		return nil, eventstore.ErrClosed
	}
	var lim any // NULL: no limit
	if limit > 0 {
		lim = limit
	}
	rows, err := s.pool.Query(ctx, `SELECT `+eventColumns+` FROM events WHERE stream = $1 AND version > $2 ORDER BY version LIMIT $3`, stream, afterVersion, lim)
	if err != nil {
		return nil, fmt.Errorf("read stream %s: %w", stream, err)
	}
	events, err := collect(rows)
	if err != nil {
		return nil, fmt.Errorf("read stream %s: %w", stream, err)
	}
	return events, nil
}

// boundSQL computes, from one snapshot, the exclusive upper bound of the
// positions a read that starts after it may return (see the package doc):
// the smallest in-progress transaction id of the statement's snapshot whose
// transaction holds a lock on events, or the snapshot's xmax when none does,
// times 65536. pg_lock_status() is read once: its rows are grouped by virtual
// transaction, so a lock holder's transaction-id lock names its id. An empty
// in-progress set (a quiet database) skips reading the locks.
const boundSQL = `
WITH snap AS (SELECT pg_current_snapshot() AS s),
appenders AS (
    SELECT unnest(array_agg(l.transactionid) FILTER (WHERE l.locktype = 'transactionid' AND l.mode = 'ExclusiveLock' AND l.granted)) AS xid
    FROM pg_lock_status() l
    GROUP BY l.virtualtransaction
    HAVING bool_or(l.locktype = 'relation' AND l.relation = 'events'::regclass
                   AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database()))
)
SELECT least(pg_snapshot_xmax(s),
             (SELECT min(x) FROM pg_snapshot_xip(s) AS x WHERE x::xid IN (SELECT xid FROM appenders))
       )::text::bigint * 65536
FROM snap`

// boundQueryTimeout bounds one shared bound query.
const boundQueryTimeout = 30 * time.Second

// bound returns the exclusive upper bound of the positions a read that starts
// after this call may return. The query is shared: the caller waits for the
// first one that starts after this call (see the package doc).
func (s *Store) bound(ctx context.Context) (int64, error) {
	s.mu.Lock()
	if s.closed() {
		s.mu.Unlock()
		return 0, eventstore.ErrClosed
	}
	c := s.boundQueued
	switch {
	case c != nil: // queued after the running query started: ours too
	case s.boundRunning != nil:
		c = &boundCall{done: make(chan struct{})}
		s.boundQueued = c
	default:
		c = &boundCall{done: make(chan struct{})}
		s.boundRunning = c
		s.wg.Add(1)
		go s.runBounds(c)
	}
	s.mu.Unlock()
	select {
	case <-c.done:
		return c.bound, c.err
	case <-ctx.Done():
		return 0, ctx.Err()
	}
}

// runBounds runs the bound query for c, then for every query queued
// meanwhile, one at a time, until none is queued.
func (s *Store) runBounds(c *boundCall) {
	defer s.wg.Done()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() {
		select {
		case <-s.done:
			cancel()
		case <-ctx.Done():
		}
	}()
	for c != nil {
		qctx, qcancel := context.WithTimeout(ctx, boundQueryTimeout)
		var b int64
		err := s.pool.QueryRow(qctx, boundSQL).Scan(&b)
		qcancel()
		s.mu.Lock()
		if err != nil {
			c.err = fmt.Errorf("visible bound: %w", err)
		} else {
			c.bound = b
		}
		close(c.done)
		c = s.boundQueued
		s.boundRunning, s.boundQueued = c, nil
		s.mu.Unlock()
	}
}

// ReadAll returns up to limit events with a position above after, in
// position (commit-safe) order; limit <= 0 means Config.BatchSize.
func (s *Store) ReadAll(ctx context.Context, after uint64, limit int) ([]eventstore.Event, error) {
	if s.closed() {
		return nil, eventstore.ErrClosed
	}
	if limit <= 0 {
		limit = s.cfg.BatchSize
	}
	if after >= math.MaxInt64 {
		return nil, nil
	}
	bound, err := s.bound(ctx)
	if err != nil {
		return nil, err
	}
	return s.readBelow(ctx, after, limit, bound)
}

// readBelow returns up to limit events with a position above after and below
// bound, in position order.
func (s *Store) readBelow(ctx context.Context, after uint64, limit int, bound int64) ([]eventstore.Event, error) {
	rows, err := s.pool.Query(ctx, `SELECT `+eventColumns+` FROM events
		WHERE position > $1 AND position < $3
		ORDER BY position LIMIT $2`, int64(after), limit, bound)
	if err != nil {
		return nil, fmt.Errorf("read all after %d: %w", after, err)
	}
	events, err := collect(rows)
	if err != nil {
		return nil, fmt.Errorf("read all after %d: %w", after, err)
	}
	return events, nil
}

// HeadPosition is the position of the newest event readers may see now.
func (s *Store) HeadPosition(ctx context.Context) (uint64, error) {
	if s.closed() {
		return 0, eventstore.ErrClosed
	}
	bound, err := s.bound(ctx)
	if err != nil {
		return 0, err
	}
	var head int64
	err = s.pool.QueryRow(ctx, `SELECT coalesce(max(position), 0) FROM events WHERE position < $1`, bound).Scan(&head)
	if err != nil {
		return 0, fmt.Errorf("head position: %w", err)
	}
	return uint64(head), nil
}

func collect(rows pgx.Rows) ([]eventstore.Event, error) {
	var events []eventstore.Event
	for rows.Next() {
		var (
			e        eventstore.Event
			position int64
			schema   int32
			data     []byte
		)
		if err := rows.Scan(&position, &e.Stream, &e.Version, &e.ID, &e.Type, &schema, &data, &e.Metadata, &e.OccurredAt); err != nil {
			rows.Close()
			return nil, err
		}
		e.Position, e.SchemaVersion, e.Data = uint64(position), int(schema), json.RawMessage(data)
		e.OccurredAt = e.OccurredAt.UTC()
		events = append(events, e)
	}
	return events, rows.Err()
}

// Subscribe delivers every event after position after, stored ones first and
// then live ones, in batches of at most Config.BatchSize. It wakes within
// milliseconds of an append (LISTEN/NOTIFY) and re-reads at least every
// PollInterval. It returns ctx.Err() when ctx is done, handle's error when
// handle fails, ErrClosed when the store is closed, or a read error.
func (s *Store) Subscribe(ctx context.Context, after uint64, handle eventstore.Handler) error {
	s.mu.Lock()
	if s.closed() {
		s.mu.Unlock()
		return eventstore.ErrClosed
	}
	if !s.listening {
		s.listening = true
		s.startListener()
	}
	s.mu.Unlock()
	timer := time.NewTimer(s.cfg.PollInterval)
	defer timer.Stop()
	pos := after
	var (
		woken <-chan struct{}
		bound int64
		fresh = true // the next read needs a new bound
	)
	for {
		if err := ctx.Err(); err != nil {
			return err
		}
		if s.closed() {
			return eventstore.ErrClosed
		}
		if fresh {
			// Before the bound, so no notification is lost: the bound query
			// starts after this, and sees every append that fired earlier.
			woken = s.wake.wait()
			var err error
			if bound, err = s.bound(ctx); err != nil {
				if ctx.Err() != nil {
					return ctx.Err()
				}
				return fmt.Errorf("subscribe: %w", err)
			}
		}
		var batch []eventstore.Event
		if pos < math.MaxInt64 {
			var err error
			if batch, err = s.readBelow(ctx, pos, s.cfg.BatchSize, bound); err != nil {
				if ctx.Err() != nil {
					return ctx.Err()
				}
				return fmt.Errorf("subscribe: %w", err)
			}
		}
		if len(batch) > 0 {
			if err := handle(ctx, batch); err != nil {
				return err
			}
			pos = batch[len(batch)-1].Position
			if len(batch) == s.cfg.BatchSize {
				// A backlog: the same bound serves until a page comes back short.
				fresh = false
				continue
			}
		}
		fresh = true
		timer.Reset(s.cfg.PollInterval)
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-s.done:
			return eventstore.ErrClosed
		case <-woken:
		case <-timer.C:
		}
	}
}

// wakeup is a broadcast: wait returns a channel closed by the next fire.
type wakeup struct {
	mu sync.Mutex
	ch chan struct{}
}

func (w *wakeup) wait() <-chan struct{} {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.ch
}

func (w *wakeup) fire() {
	w.mu.Lock()
	defer w.mu.Unlock()
	close(w.ch)
	w.ch = make(chan struct{})
}

// startListener runs one LISTEN connection (outside the pool) for every
// subscription of this store until Close, reconnecting after failures.
func (s *Store) startListener() {
	ctx, cancel := context.WithCancel(context.Background())
	s.wg.Add(2)
	go func() {
		defer s.wg.Done()
		<-s.done
		cancel()
	}()
	go func() {
		defer s.wg.Done()
		backoff := 100 * time.Millisecond
		for ctx.Err() == nil {
			err := s.listenOnce(ctx)
			if ctx.Err() != nil {
				return
			}
			s.cfg.Logger.Warn("event store listener failed; subscriptions poll until it is back", "error", err, "retry_in", backoff)
			s.wake.fire() // anything may have been missed
			select {
			case <-ctx.Done():
				return
			case <-time.After(backoff):
			}
			backoff = min(2*backoff, 5*time.Second)
		}
	}()
}

func (s *Store) listenOnce(ctx context.Context) error {
	conn, err := pgx.ConnectConfig(ctx, s.pool.Config().ConnConfig.Copy())
	if err != nil {
		return err
	}
	defer func() { _ = conn.Close(context.WithoutCancel(ctx)) }()
	if _, err := conn.Exec(ctx, "LISTEN "+Channel); err != nil {
		return err
	}
	s.wake.fire() // appends during (re)connection may have been missed
	for {
		if _, err := conn.WaitForNotification(ctx); err != nil {
			return err
		}
		s.wake.fire()
	}
}

// CountAfter counts the readable events after position after.
func (s *Store) CountAfter(ctx context.Context, after uint64) (int64, error) {
	if s.closed() {
		return 0, eventstore.ErrClosed
	}
	bound, err := s.bound(ctx)
	if err != nil {
		return 0, err
	}
	var n int64
	if err := s.pool.QueryRow(ctx, `SELECT count(*) FROM events WHERE position > $1 AND position < $2`, int64(after), bound).Scan(&n); err != nil {
		return 0, fmt.Errorf("count events after %d: %w", after, err)
	}
	return n, nil
}
