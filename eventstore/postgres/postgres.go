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
// over pg_lock_status(), taken after S. An id is tied to its transaction's
// locks through the transaction's lock on its own id (same virtual
// transaction); that lock enters the lock table a moment after the id enters
// the snapshots, so an id whose own lock is not seen is tied to its backend
// instead, by pid, through the backend's status (backend_xid, set with the
// id). Prepared transactions in xip(S) count as appenders. Then, in a later
// statement, they read only events below B. Why no event below B can still
// appear, for an appender A with id a below B/65536:
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
// the bound query reads every backend's locks, so readers share it: at most
// one bound query runs at a time per Store, at most one per
// Config.ReadInterval (5ms) under load, and a caller gets the result of the
// first query that starts after its call — as fresh as if it had run it
// itself, read-your-writes included — whoever else waits for it.
// Subscriptions at the head of the log share more: the store keeps the newest
// visible events (the tail), advanced by one shared bound and one read per
// wake-up for all of them; a subscription behind the tail reads on its own,
// keeping one bound while its pages come back full. So the readers' queries
// per second do not grow with the number of readers.
//
// The bound may trail the commits slightly: a transaction that ended between
// the snapshot and the lock pass, or an unrelated transaction whose backend
// also locks events, holds it back until the next query.
//
// ReadStream is not held back that way: a command handler always sees its own
// and every committed write to the stream it is about to append to.
package postgres

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"slices"
	"strconv"
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

// positionsPerTxSQL is positionsPerTx as the SQL statements spell it.
var positionsPerTxSQL = strconv.Itoa(positionsPerTx)

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
	// SingleAppends turns group commit off (group.go): every append at an
	// exact version is then a transaction of its own. Benchmarks compare both.
	SingleAppends bool
	// ReadInterval is the least time between two starts of the queries the
	// store's readers share (the visible bound, the subscriptions' tail): a
	// reader waits at most this long for one, and readers cost appenders
	// little however many they are. Default 5ms; negative: no wait.
	ReadInterval time.Duration
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
	if c.ReadInterval == 0 {
		c.ReadInterval = 5 * time.Millisecond
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

	bounds shared    // the bound query, shared by every reader
	tailQ  shared    // the tail's advance, shared by subscriptions at the head
	tail   tailCache // guarded by tailMu
	tailMu sync.Mutex

	group committer // group.go
}

// shared runs a query for every caller that asks, at most one at a time: a
// caller gets the result of the first run that starts after its call, so the
// result is as fresh as if it had run the query itself. Guarded by Store.mu.
type shared struct {
	running, queued *sharedCall
	lastStart       time.Time // of the latest run (only runShared uses it)
	runs            int64     // how many runs started (tests read it)
}

// sharedCall is one run and the callers waiting for it.
type sharedCall struct {
	done chan struct{}
	val  int64
	err  error
	// gen is the wake-up generation when the run started (set under
	// Store.mu before it runs; see shareSince), notStarted until then.
	gen uint64
	// waiters is how many callers joined it (guarded by Store.mu).
	waiters int
}

// notStarted is the generation of a run that has not started: any caller
// may join it.
const notStarted = math.MaxUint64

// share waits for the first run of fn (in q) that starts after this call.
func (s *Store) share(ctx context.Context, q *shared, fn func(ctx context.Context) (int64, error)) (int64, error) {
	return s.shareSince(ctx, q, notStarted, fn)
}

// shareSince is share for a caller that needs only a run started at wake-up
// generation gen or later (see wakeup): it also joins the run in progress
// when that one started late enough.
func (s *Store) shareSince(ctx context.Context, q *shared, gen uint64, fn func(ctx context.Context) (int64, error)) (int64, error) {
	s.mu.Lock()
	if s.closed() {
		s.mu.Unlock()
		return 0, eventstore.ErrClosed
	}
	var c *sharedCall
	switch {
	case q.running != nil && q.running.gen >= gen:
		c = q.running // started late enough, or not started yet
	case q.queued != nil:
		c = q.queued // starts after the running one: late enough
	case q.running != nil:
		c = &sharedCall{done: make(chan struct{}), gen: notStarted}
		q.queued = c
	default:
		c = &sharedCall{done: make(chan struct{}), gen: notStarted}
		q.running = c
		s.wg.Add(1)
		go s.runShared(q, c, fn)
	}
	c.waiters++
	s.mu.Unlock()
	select {
	case <-c.done:
		return c.val, c.err
	case <-ctx.Done():
		return 0, ctx.Err()
	}
}

// runShared runs fn for c, then for the call queued meanwhile, and so on,
// with a context that ends when the store closes.
func (s *Store) runShared(q *shared, c *sharedCall, fn func(ctx context.Context) (int64, error)) {
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
		if wait := time.Until(q.lastStart.Add(s.cfg.ReadInterval)); wait > 0 {
			select {
			case <-time.After(wait):
			case <-ctx.Done():
			}
		}
		q.lastStart = time.Now()
		s.mu.Lock()
		q.runs++
		c.gen = s.wake.generation()
		s.mu.Unlock()
		qctx, qcancel := context.WithTimeout(ctx, sharedQueryTimeout)
		c.val, c.err = fn(qctx)
		qcancel()
		s.mu.Lock()
		close(c.done)
		c = q.queued
		q.running, q.queued = c, nil
		s.mu.Unlock()
	}
}

// sharedQueryTimeout bounds one shared query.
const sharedQueryTimeout = 30 * time.Second

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

var insertSQL = `
WITH inserted AS (
    INSERT INTO events (position, stream, version, event_id, type, schema_version, data, metadata, occurred_at, txid)
    SELECT $1::bigint * ` + positionsPerTxSQL + ` + u.i - 1, $2, $3::bigint + u.i, u.id, u.typ, u.sv, u.d::jsonb, u.m::jsonb, u.oa, pg_current_xact_id()
    FROM unnest($4::uuid[], $5::text[], $6::int[], $7::text[], $8::text[], $9::timestamptz[])
         WITH ORDINALITY AS u(id, typ, sv, d, m, oa, i)
    RETURNING 1
)
SELECT (SELECT count(*) FROM inserted)`

func (s *Store) tryAppend(ctx context.Context, stream string, expected eventstore.ExpectedVersion, r appendRows) (eventstore.AppendResult, error) {
	held := (s.cfg.BeforeCommit != nil || s.cfg.AfterLock != nil) && (s.cfg.HoldCommit == nil || s.cfg.HoldCommit(stream))
	if expected != eventstore.Any && !held {
		if s.cfg.SingleAppends {
			return s.appendOne(ctx, stream, int64(expected), r)
		}
		return s.appendGrouped(ctx, stream, int64(expected), r) // group.go
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
// backend holds a lock on events (or that is a prepared transaction), or the
// snapshot's xmax when there is none, times positionsPerTx.
//
// pg_lock_status() is read once (the locks CTE is materialized). An id is
// matched to its transaction's locks by virtual transaction, through the
// transaction's lock on its own id. That lock is taken a moment after the id
// enters the snapshots, so an id whose own lock is not seen (just taken, or
// just ended) is looked up in the backends' status instead:
// pg_stat_get_activity's backend_xid is set with the id, and the backend's pid
// names its locks. That lookup is the costly part, and runs only then; an
// empty in-progress set (a quiet server) reads no locks at all.
var boundSQL = `
WITH snap AS (SELECT pg_current_snapshot() AS s),
db AS (SELECT oid FROM pg_database WHERE datname = current_database()),
locks AS MATERIALIZED (
    SELECT l.virtualtransaction AS vxid, l.pid,
           l.locktype = 'relation' AS on_events,
           CASE WHEN l.locktype = 'transactionid' THEN l.transactionid END AS own_xid
    FROM pg_lock_status() l
    WHERE (l.locktype = 'relation' AND l.relation = 'events'::regclass AND l.database = (SELECT oid FROM db))
       OR (l.locktype = 'transactionid' AND l.mode = 'ExclusiveLock' AND l.granted)
),
seen AS (
    SELECT unnest(array_agg(own_xid) FILTER (WHERE own_xid IS NOT NULL)) AS xid, bool_or(on_events) AS appending
    FROM locks GROUP BY vxid
)
SELECT least(pg_snapshot_xmax(s), (
    SELECT min(x) FROM pg_snapshot_xip(s) AS x LEFT JOIN seen ON seen.xid = x::xid
    WHERE seen.appending
       OR (seen.xid IS NULL AND x::xid IN (
              SELECT a.backend_xid FROM pg_stat_get_activity(NULL) a
              WHERE a.pid IN (SELECT pid FROM locks WHERE on_events)
              UNION ALL
              SELECT p.transaction FROM pg_prepared_xact() p))
))::text::bigint * ` + positionsPerTxSQL + `
FROM snap`

// bound returns the exclusive upper bound of the positions a read that starts
// after this call may return. The query is shared: the caller waits for the
// first one that starts after this call (see the package doc).
func (s *Store) bound(ctx context.Context) (int64, error) {
	return s.share(ctx, &s.bounds, func(ctx context.Context) (int64, error) {
		var b int64
		if err := s.pool.QueryRow(ctx, boundSQL).Scan(&b); err != nil {
			return 0, fmt.Errorf("visible bound: %w", err)
		}
		return b, nil
	})
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
//
// A subscription behind the store's tail reads on its own (with a shared
// bound, kept while pages come back full); one at the head takes its events
// from the tail, which one query advances for all of them (see tailCache).
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
		bound     int64
		haveBound bool // a bound of an earlier full page, still to be read up to
	)
	fail := func(err error) error {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if errors.Is(err, eventstore.ErrClosed) {
			return err
		}
		return fmt.Errorf("subscribe: %w", err)
	}
	for {
		if err := ctx.Err(); err != nil {
			return err
		}
		if s.closed() {
			return eventstore.ErrClosed
		}
		// Before reading, so no notification is lost: the reads below start
		// after this, and see every append that fired earlier (gen).
		woken, gen := s.wake.wait()
		batch, atHead := s.tailAfter(pos, s.cfg.BatchSize)
		more := len(batch) > 0 // the tail may hold more
		if atHead && len(batch) == 0 && !haveBound {
			if err := s.advanceTail(ctx, gen); err != nil {
				return fail(err)
			}
			batch, atHead = s.tailAfter(pos, s.cfg.BatchSize)
			more = len(batch) == s.cfg.BatchSize
		}
		if !atHead && pos < math.MaxInt64 {
			if !haveBound {
				var err error
				if bound, err = s.bound(ctx); err != nil {
					return fail(err)
				}
			}
			var err error
			if batch, err = s.readBelow(ctx, pos, s.cfg.BatchSize, bound); err != nil {
				return fail(err)
			}
			// A backlog: the same bound serves until a page comes back short.
			haveBound = len(batch) == s.cfg.BatchSize
			more = haveBound
		}
		if len(batch) > 0 {
			if err := handle(ctx, batch); err != nil {
				return err
			}
			pos = batch[len(batch)-1].Position
		}
		if more {
			continue
		}
		haveBound = false
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

// tailCache holds the newest events readers may see, so that subscriptions
// at the head of the log share one read per wake-up instead of each querying:
// events holds, in order, every event with from < position < upto.
type tailCache struct {
	from   uint64
	upto   int64
	events []eventstore.Event
	inited bool
}

// tailCap is how many events the tail keeps, in batches.
const tailCap = 4

// tailAfter returns up to limit events after pos from the tail, and whether
// the tail covers pos (when it does not, the caller reads on its own). A
// subscription ahead of the tail moves the tail up to it.
func (s *Store) tailAfter(pos uint64, limit int) ([]eventstore.Event, bool) {
	s.tailMu.Lock()
	defer s.tailMu.Unlock()
	t := &s.tail
	if pos >= math.MaxInt64 {
		return nil, false
	}
	if !t.inited || int64(pos) >= t.upto {
		// Nothing is known after pos yet: the tail starts over there (no
		// position lies strictly between pos and pos+1).
		*t = tailCache{from: pos, upto: int64(pos) + 1, inited: true}
		return nil, true
	}
	if pos < t.from {
		return nil, false
	}
	i, _ := slices.BinarySearchFunc(t.events, pos, func(e eventstore.Event, p uint64) int { return cmp.Compare(e.Position, p+1) })
	n := min(limit, len(t.events)-i)
	if n <= 0 {
		return nil, true
	}
	return slices.Clone(t.events[i : i+n]), true
}

// advanceTail reads the events after the tail, below a fresh bound, for every
// subscription waiting: a caller gets the first advance that starts at wake-up
// generation gen or later. The subscriptions a wake-up wakes thus share one
// read, the one that started after it, instead of each after the first
// waiting for the next (at least ReadInterval later).
func (s *Store) advanceTail(ctx context.Context, gen uint64) error {
	_, err := s.shareSince(ctx, &s.tailQ, gen, func(ctx context.Context) (int64, error) {
		bound, err := s.bound(ctx)
		if err != nil {
			return 0, err
		}
		s.tailMu.Lock()
		upto := s.tail.upto
		s.tailMu.Unlock()
		if bound <= upto {
			return 0, nil
		}
		limit := tailCap * s.cfg.BatchSize
		rows, err := s.pool.Query(ctx, `SELECT `+eventColumns+` FROM events
			WHERE position >= $1 AND position < $3
			ORDER BY position LIMIT $2`, upto, limit, bound)
		if err != nil {
			return 0, fmt.Errorf("read the tail from %d: %w", upto, err)
		}
		events, err := collect(rows)
		if err != nil {
			return 0, fmt.Errorf("read the tail from %d: %w", upto, err)
		}
		s.tailMu.Lock()
		defer s.tailMu.Unlock()
		t := &s.tail
		if t.upto != upto {
			return 0, nil // moved meanwhile by a subscription ahead of it
		}
		t.events = append(t.events, events...)
		if len(events) == limit {
			t.upto = int64(events[len(events)-1].Position) + 1
		} else {
			t.upto = bound
		}
		if drop := len(t.events) - limit; drop > 0 {
			t.from = t.events[drop-1].Position
			t.events = slices.Clone(t.events[drop:])
		}
		return 0, nil
	})
	return err
}

// wakeup is a broadcast: wait returns a channel closed by the next fire,
// and how many fires came before it (the generation). A read that starts
// at generation g sees every append whose fire came before it.
type wakeup struct {
	mu  sync.Mutex
	ch  chan struct{}
	gen uint64
}

func (w *wakeup) wait() (<-chan struct{}, uint64) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.ch, w.gen
}

func (w *wakeup) generation() uint64 {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.gen
}

func (w *wakeup) fire() {
	w.mu.Lock()
	defer w.mu.Unlock()
	close(w.ch)
	w.ch = make(chan struct{})
	w.gen++
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
