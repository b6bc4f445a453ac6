// Package projections builds Lockstep's read models from the global event log.
// A Runner feeds one Projector every event after its checkpoint, and commits
// the projector's read-model changes together with the new checkpoint in one
// transaction per batch, so each event takes effect exactly once.
package projections

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/lockstep/lockstep/domain"
	"github.com/lockstep/lockstep/eventstore"
	"github.com/lockstep/lockstep/outbox"
	"github.com/lockstep/lockstep/pgdb"
)

// Record is a stored event with its decoded domain payload (nil when the
// event's type is not a domain event).
type Record struct {
	eventstore.Event
	Payload domain.Event
}

// Projector maintains read models. Its name is a constant: it is the
// checkpoint key, and renaming it replays everything.
type Projector interface {
	Name() string
	// Handle applies one event inside the batch's transaction.
	Handle(ctx context.Context, tx pgx.Tx, r Record) error
	// Reset empties the projector's read models (for a rebuild from zero).
	Reset(ctx context.Context, tx pgx.Tx) error
}

// AfterCommitter is implemented by projectors that announce what they applied
// (e.g. to push WebSocket messages) once the batch's transaction committed.
type AfterCommitter interface {
	AfterCommit(ctx context.Context, batch []Record)
}

// Status of a projector, always in lower case (admin API, metrics, the
// checkpoint table).
const (
	StatusRunning = "running"
	StatusParked  = "parked"
	StatusStopped = "stopped"
	// StatusRebuilding is reported (State.Reported) while an online rebuild
	// of the projector is in progress; the live projector keeps running.
	StatusRebuilding = "rebuilding"
)

// Statuses lists every status word a projector reports.
var Statuses = []string{StatusRunning, StatusParked, StatusRebuilding, StatusStopped}

// Config configures a Runner.
type Config struct {
	Store     eventstore.Store
	Pool      *pgxpool.Pool
	Projector Projector
	Logger    *slog.Logger
	// MaxFailures is how many times in a row the projector's Handle may fail
	// on the same batch before the batch is applied event by event and the
	// events that still fail on their own are quarantined (default 5).
	// Failures to read the log or reach the database are not counted: the
	// runner waits for them to pass, however long.
	MaxFailures int
	// MaxQuarantined is how many quarantined events a projector may hold
	// before it parks instead of quarantining more (default 25): when that
	// many fail, the projector itself is more likely broken than the events.
	MaxQuarantined int
	// Backoff is the first retry delay, doubled on each failure up to
	// MaxBackoff (defaults 100ms and 10s).
	Backoff    time.Duration
	MaxBackoff time.Duration
	// BatchTimeout bounds one batch's transaction (default 30s).
	BatchTimeout time.Duration
	// CheckInterval is how often a running runner checks that its checkpoint
	// was not reset by a rebuild elsewhere (default 1s).
	CheckInterval time.Duration
}

func (c *Config) setDefaults() {
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	if c.MaxFailures <= 0 {
		c.MaxFailures = 5
	}
	if c.MaxQuarantined <= 0 {
		c.MaxQuarantined = 25
	}
	if c.Backoff <= 0 {
		c.Backoff = 100 * time.Millisecond
	}
	if c.MaxBackoff < c.Backoff {
		c.MaxBackoff = max(c.Backoff, 10*time.Second)
	}
	if c.CheckInterval <= 0 {
		c.CheckInterval = time.Second
	}
	if c.BatchTimeout <= 0 {
		c.BatchTimeout = 30 * time.Second
	}
}

// Validate reports every missing dependency.
func (c Config) Validate() error {
	var errs []error
	if c.Store == nil {
		errs = append(errs, errors.New("projections: Store is required"))
	}
	if c.Pool == nil {
		errs = append(errs, errors.New("projections: Pool is required"))
	}
	if c.Projector == nil {
		errs = append(errs, errors.New("projections: Projector is required"))
	}
	return errors.Join(errs...)
}

// State is a snapshot of a runner, for metrics and the admin API.
type State struct {
	Name      string
	Position  uint64
	Status    string
	LastError string
	Failures  int
	// LastEventAt is when the last applied event occurred (zero if none yet).
	LastEventAt time.Time
	// Quarantined is how many events are set aside for this projector.
	Quarantined int64
	// RebuildStartedAt is when the online rebuild in progress started (zero
	// when none is).
	RebuildStartedAt time.Time
}

// Reported is the status to show: StatusRebuilding while an online rebuild
// is in progress, else Status.
func (s State) Reported() string {
	if !s.RebuildStartedAt.IsZero() {
		return StatusRebuilding
	}
	return s.Status
}

// Runner runs one projector.
type Runner struct {
	cfg Config
	log *slog.Logger

	mu    sync.Mutex
	state State
	wake  chan struct{}
	// changed is closed (and replaced) on every state change: read-your-writes
	// waiters sleep on it instead of polling (waiters.go).
	changed chan struct{}
}

// NewRunner returns a Runner; it panics on an invalid Config (a wiring bug).
func NewRunner(cfg Config) *Runner {
	cfg.setDefaults()
	if err := cfg.Validate(); err != nil {
		panic(err)
	}
	return &Runner{
		cfg:   cfg,
		log:   cfg.Logger.With("projector", cfg.Projector.Name()),
		state: State{Name: cfg.Projector.Name(), Status: StatusStopped},
		wake:  make(chan struct{}, 1),
	}
}

// Name is the projector's name.
func (r *Runner) Name() string { return r.cfg.Projector.Name() }

// State returns the runner's current state.
func (r *Runner) State() State {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.state
}

var errCheckpointMoved = errors.New("checkpoint moved by another runner")

// HandleError is a failure of the projector's own Handle on a batch (as
// opposed to reading the log or reaching the database): the only kind of
// failure that counts towards quarantine and parking.
type HandleError struct {
	// From is the checkpoint the failing batch started after.
	From uint64
	// Park is set when quarantining the failing events would exceed
	// MaxQuarantined: the projector parks instead.
	Park bool
	Err  error
}

func (e *HandleError) Error() string { return e.Err.Error() }
func (e *HandleError) Unwrap() error { return e.Err }

// Run applies events until ctx is done. A batch in progress when ctx is
// cancelled is finished (or rolled back) before Run returns, so the projector
// stops at a batch boundary.
//
// Failures are told apart. When the log cannot be read, the subscription
// drops or the database cannot be reached, Run waits with backoff and goes on
// by itself, however long that takes; the projector stays running. When the
// projector's own Handle fails on a batch MaxFailures times in a row, the
// batch is applied once more in halves under savepoints, down to single
// events, and every event that still fails on its own is quarantined for
// this projector (projection_quarantine) and skipped: the events after it
// are applied. The projector parks — applies nothing more until Unpark or a
// rebuild — only when quarantining would exceed MaxQuarantined, or when even
// the isolating attempts keep failing.
func (r *Runner) Run(ctx context.Context) error {
	if r.reachCheckpoint(ctx) {
		l := &runLoop{delay: r.cfg.Backoff}
		for ctx.Err() == nil {
			r.round(ctx, l)
		}
	}
	r.setState(func(s *State) { s.Status = StatusStopped })
	return nil
}

// reachCheckpoint makes sure the projector's checkpoint row exists. The
// database may be away for a while (a restart, a failover): it waits for it
// rather than stop the process; false when ctx ended first.
func (r *Runner) reachCheckpoint(ctx context.Context) bool {
	delay := r.cfg.Backoff
	for {
		err := r.ensureRow(ctx)
		if err == nil {
			return true
		}
		if ctx.Err() != nil {
			return false
		}
		r.log.Error("projector cannot reach its checkpoint; retrying", "error", err, "retry_in", delay.String())
		r.setState(func(s *State) { s.LastError = err.Error() })
		sleep(ctx, delay)
		delay = r.grow(delay)
	}
}

// runLoop is what Run carries from one round to the next.
type runLoop struct {
	delay time.Duration // before the next retry
	// failing counts the Handle failures in a row of the batch after
	// failing.at; from MaxFailures on, that batch is isolated.
	failing struct {
		at uint64
		n  int
	}
}

// round is one turn of Run: from the stored checkpoint, wait while parked,
// else follow the log until something stops it, then see to why.
func (r *Runner) round(ctx context.Context, l *runLoop) {
	pos, status, err := r.loadCheckpoint(ctx)
	if err != nil {
		if ctx.Err() == nil {
			r.waitInfra(ctx, err, l.delay)
			l.delay = r.grow(l.delay)
		}
		return
	}
	if status == StatusParked {
		r.setState(func(s *State) { s.Status = StatusParked; s.Position = pos })
		select {
		case <-ctx.Done():
		case <-r.wake:
		}
		return
	}
	if l.failing.at != pos {
		l.failing.at, l.failing.n = pos, 0
	}
	r.setState(func(s *State) {
		s.Status, s.Position = StatusRunning, pos
		if strings.HasPrefix(s.LastError, waitingPrefix) {
			s.LastError = "" // the database answered; a store still down says so again
		}
	})
	restarted, err := r.follow(ctx, pos, l)
	if ctx.Err() != nil || restarted || errors.Is(err, errCheckpointMoved) {
		return // stopping; or a rebuild, an unpark or another runner moved the checkpoint
	}
	r.stopped(ctx, err, l)
}

// follow applies the log after pos until the subscription ends; restarted
// says the watch ended it (the checkpoint moved under it).
func (r *Runner) follow(ctx context.Context, pos uint64, l *runLoop) (restarted bool, err error) {
	var prev atomic.Uint64
	prev.Store(pos)
	subCtx, cancelSub := context.WithCancel(ctx)
	watched := make(chan struct{})
	go func() { defer close(watched); r.watch(subCtx, cancelSub, &prev) }()
	err = r.cfg.Store.Subscribe(subCtx, pos, func(_ context.Context, batch []eventstore.Event) error {
		from := prev.Load()
		isolate := l.failing.at == from && l.failing.n >= r.cfg.MaxFailures
		if err := r.apply(ctx, from, batch, isolate); err != nil {
			return err
		}
		if len(batch) > 0 {
			prev.Store(batch[len(batch)-1].Position)
		}
		l.delay = r.cfg.Backoff
		return nil
	})
	restarted = subCtx.Err() != nil
	cancelSub()
	<-watched
	return restarted, err
}

// stopped sees to a subscription that ended with err: an infrastructure
// error is waited out; the projector's own failure is retried, then its
// batch isolated, then the projector parked.
func (r *Runner) stopped(ctx context.Context, err error, l *runLoop) {
	var herr *HandleError
	if !errors.As(err, &herr) {
		if err == nil {
			err = errors.New("subscription ended")
		}
		r.waitInfra(ctx, err, l.delay)
		l.delay = r.grow(l.delay)
		return
	}
	if l.failing.at != herr.From {
		l.failing.at, l.failing.n = herr.From, 0
	}
	l.failing.n++
	n := l.failing.n
	r.log.Error("projection batch failed", "error", err, "failures", n, "after_position", herr.From)
	r.setState(func(s *State) { s.LastError = err.Error(); s.Failures = n })
	if herr.Park || n >= 2*r.cfg.MaxFailures {
		r.park(ctx, err, n)
		l.failing.n = 0
		l.delay = r.cfg.Backoff
		return
	}
	sleep(ctx, l.delay)
	l.delay = r.grow(l.delay)
}

// waitingPrefix starts LastError while the runner waits out a failure that
// is not the projector's.
const waitingPrefix = "waiting: "

func (r *Runner) grow(d time.Duration) time.Duration { return min(d*2, r.cfg.MaxBackoff) }

// waitInfra waits out a failure that is not the projector's: the projector
// stays running and resumes by itself.
func (r *Runner) waitInfra(ctx context.Context, err error, delay time.Duration) {
	r.log.Warn("projector waiting for the event log or the database", "error", err, "retry_in", delay.String())
	r.setState(func(s *State) { s.LastError = waitingPrefix + err.Error() })
	sleep(ctx, delay)
}

// apply runs one batch in one transaction with the checkpoint update, provided
// the checkpoint is still prev (else another runner or a rebuild moved it and
// the caller must re-read it). It does not stop half-way when ctx is
// cancelled: the batch commits or rolls back whole. With isolate, the events
// that fail on their own are quarantined in the same transaction and the rest
// applied. A failure of the projector's Handle is returned as *HandleError;
// any other error is the infrastructure's.
func (r *Runner) apply(ctx context.Context, prev uint64, batch []eventstore.Event, isolate bool) error {
	if len(batch) == 0 {
		return nil
	}
	bctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), r.cfg.BatchTimeout)
	defer cancel()
	records := decode(batch)
	// Applied whole or not at all, the batch's outbox messages can be
	// delivered as recorded (announceBatch); isolating rolls parts back, and
	// its messages are read back instead.
	actx := bctx
	if !isolate {
		actx, _ = outbox.Collecting(bctx)
	}
	name := r.Name()
	last := batch[len(batch)-1]
	var handleErr error
	var park bool
	var quarantined int64
	var err error
	if !isolate {
		handleErr, err = r.applyWhole(bctx, actx, prev, records)
	} else {
		err = pgx.BeginFunc(bctx, r.cfg.Pool, func(tx pgx.Tx) error {
			if err := r.startBatch(bctx, tx, prev, last.Position); err != nil {
				return err
			}
			var held int64
			if err := tx.QueryRow(bctx, `SELECT count(*) FROM projection_quarantine WHERE projector = $1`, name).Scan(&held); err != nil {
				return err
			}
			var failed []failedEvent
			if err := r.bisect(bctx, tx, records, &failed, int(int64(r.cfg.MaxQuarantined)-held)); err != nil {
				if errors.Is(err, errTooManyFailing) {
					handleErr, park = fmt.Errorf("%d events of the batch after position %d fail, more than the %d quarantined events allowed (first: %w)", len(failed), prev, r.cfg.MaxQuarantined, failed[0].err), true
					return handleErr
				}
				if bctx.Err() != nil {
					handleErr = err
				}
				return err
			}
			for _, f := range failed {
				if err := quarantine(bctx, tx, name, f.rec, f.err.Error(), 1); err != nil {
					return err
				}
				r.log.Error("event quarantined: the projector skips it and goes on", "position", f.rec.Position, "stream", f.rec.Stream, "type", f.rec.Type, "error", f.err)
			}
			quarantined = held + int64(len(failed))
			return nil
		})
	}
	if err != nil {
		if handleErr != nil && (park || r.ownFailure(bctx, handleErr)) {
			return &HandleError{From: prev, Park: park, Err: handleErr}
		}
		return err
	}
	r.setState(func(s *State) {
		s.Position, s.Status, s.LastError, s.Failures, s.LastEventAt = last.Position, StatusRunning, "", 0, last.OccurredAt
		if isolate {
			s.Quarantined = quarantined
		}
	})
	if ac, ok := r.cfg.Projector.(AfterCommitter); ok {
		ac.AfterCommit(actx, records)
	}
	return nil
}

// startBatch starts a batch's transaction (queueMove), in one round trip.
func (r *Runner) startBatch(ctx context.Context, tx pgx.Tx, prev, last uint64) error {
	b := &pgx.Batch{}
	queueMove(b, r.Name(), prev, last)
	if err := tx.SendBatch(ctx, b).Close(); err != nil {
		return r.moveFailed(err, last)
	}
	return nil
}

// applyWhole applies records in one transaction that moves the checkpoint
// from prev to the batch's last position. The transaction begins only when
// the projector reads (lazyTx): the writes of a Pipelined projector that
// only writes, and a batch the projector passes over, are sent with the
// checkpoint's move in one round trip (sendWhole). handleErr is the
// projector's Handle failure; err is any failure.
func (r *Runner) applyWhole(bctx, actx context.Context, prev uint64, records []Record) (handleErr, err error) {
	last := records[len(records)-1].Position
	lt := &lazyTx{ctx: bctx, begin: func(ctx context.Context) (pgx.Tx, error) {
		tx, err := r.cfg.Pool.Begin(ctx)
		if err != nil {
			return nil, err
		}
		if err := r.startBatch(ctx, tx, prev, last); err != nil {
			_ = tx.Rollback(ctx)
			return nil, err
		}
		return tx, nil
	}}
	defer lt.rollback(bctx)
	tx, pipe := pipelineFor(r.cfg.Projector, lt, true)
	fail := func(err error) (error, error) {
		if lt.err != nil {
			return nil, lt.err // it could not begin: not the projector's failure
		}
		return err, err
	}
	if err := dispatch(actx, r.cfg.Projector, tx, records); err != nil {
		return fail(err)
	}
	if !lt.begun() {
		var queued *pgx.Batch
		if pipe != nil {
			queued = pipe.batch
		}
		return r.sendWhole(bctx, prev, last, queued)
	}
	if pipe != nil {
		if err := pipe.flush(bctx); err != nil {
			return fail(fmt.Errorf("batch of %d events ending at position %d: %w", len(records), last, err))
		}
	}
	if err := lt.tx.Commit(bctx); err != nil {
		return nil, err
	}
	lt.tx = nil
	return nil, nil
}

// queueMove queues the start of a batch's transaction. A batch's read models
// and its checkpoint commit together, and both derive from the durable log:
// a crash that loses the last batches loses them together, and the runner
// applies them again. So the commit need not wait for its WAL flush (the
// appends still do). And the checkpoint moves from prev to last, locked
// until the end (projection_checkpoint_move, migration 00066: it fails with
// LS409 when the checkpoint no longer says prev, as after a rebuild or
// another runner's batch).
func queueMove(b *pgx.Batch, name string, prev, last uint64) {
	b.Queue(`SET LOCAL synchronous_commit = off`)
	b.Queue(`SELECT projection_checkpoint_move($1, $2, $3)`, name, int64(prev), int64(last))
}

// checkpointMovedCode is the SQLSTATE projection_checkpoint_move raises.
const checkpointMovedCode = "LS409"

// moveFailed is errCheckpointMoved for a batch failing because the
// checkpoint moved; else err, said so.
func (r *Runner) moveFailed(err error, to uint64) error {
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) && pgErr.Code == checkpointMovedCode {
		return errCheckpointMoved
	}
	return fmt.Errorf("batch of %s ending at position %d: %w", r.Name(), to, err)
}

// sendWhole sends a batch's writes (queued; nil for none) in one round
// trip, in a transaction that moves the checkpoint from prev to last
// first: BEGIN, queueMove, the writes, COMMIT. Any failure but a moved
// checkpoint is returned as handleErr too, as the pipelined writes'
// failures are (apply tells the database's from the projector's): pgx
// fails the whole batch, from its first statement on, when one write's
// arguments cannot be encoded.
func (r *Runner) sendWhole(ctx context.Context, prev, last uint64, queued *pgx.Batch) (handleErr, err error) {
	conn, err := r.cfg.Pool.Acquire(ctx)
	if err != nil {
		return nil, err
	}
	defer conn.Release()
	b := &pgx.Batch{}
	b.Queue(`BEGIN`)
	queueMove(b, r.Name(), prev, last)
	opening := len(b.QueuedQueries)
	writes := 0
	if queued != nil {
		writes = len(queued.QueuedQueries)
		b.QueuedQueries = append(b.QueuedQueries, queued.QueuedQueries...)
	}
	b.Queue(`COMMIT`)
	br := conn.SendBatch(ctx, b)
	abort := func() {
		_ = br.Close()
		if conn.Conn().PgConn().TxStatus() != 'I' {
			_, _ = conn.Exec(context.WithoutCancel(ctx), `ROLLBACK`)
		}
	}
	failed := func(err error) (error, error) {
		abort()
		if err = r.moveFailed(err, last); errors.Is(err, errCheckpointMoved) {
			return nil, err
		}
		return err, err
	}
	for range opening {
		if _, err := br.Exec(); err != nil {
			return failed(err)
		}
	}
	for i := range writes {
		if _, err := br.Exec(); err != nil {
			return failed(fmt.Errorf("pipelined statement %d of %d: %w", i+1, writes, err))
		}
	}
	if _, err := br.Exec(); err != nil {
		return failed(err)
	}
	if err := br.Close(); err != nil {
		return failed(err)
	}
	return nil, nil
}

// ownFailure tells whether err, returned by the projector's Handle, is the
// projector's own failure rather than the database's: the error is not a
// connection, shutdown, resource or concurrency error, and the database
// answers. (Whether the connection is still open says nothing: pgx closes
// it on some encoding errors of its own.) A batch that ran out of time
// counts as the projector's when the database answers.
func (r *Runner) ownFailure(bctx context.Context, err error) bool {
	if bctx.Err() == nil && infrastructure(err) {
		return false
	}
	pctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	return r.cfg.Pool.Ping(pctx) == nil
}

// infrastructure reports errors that say nothing about the event being
// applied (pgdb.Transient).
func infrastructure(err error) bool { return pgdb.Transient(err) }

// decode pairs stored events with their domain payloads.
func decode(batch []eventstore.Event) []Record {
	records := make([]Record, len(batch))
	for i, ev := range batch {
		records[i] = Record{Event: ev}
		if p, err := domain.DecodeEvent(ev.Type, ev.Data); err == nil {
			records[i].Payload = p
		}
	}
	return records
}

func (r *Runner) park(ctx context.Context, cause error, failures int) {
	r.log.Error("projector parked: it applies nothing until rebuilt or unparked", "error", cause)
	_, err := r.cfg.Pool.Exec(context.WithoutCancel(ctx),
		`UPDATE projection_checkpoints SET status = 'parked', last_error = $2, failures = $3, updated_at = now() WHERE name = $1`,
		r.Name(), cause.Error(), failures)
	if err != nil {
		r.log.Error("record parked status", "error", err)
	}
	r.setState(func(s *State) { s.Status = StatusParked; s.LastError = cause.Error() })
}

// Unpark lets a parked projector try again from its checkpoint.
func (r *Runner) Unpark(ctx context.Context) error {
	_, err := r.cfg.Pool.Exec(ctx, `UPDATE projection_checkpoints SET status = 'running', failures = 0, updated_at = now() WHERE name = $1`, r.Name())
	if err != nil {
		return fmt.Errorf("unpark %s: %w", r.Name(), err)
	}
	r.poke()
	return nil
}

// Rebuild empties the projector's read models and sets its checkpoint back to
// zero in one transaction; a running Run notices and replays from the start.
func (r *Runner) Rebuild(ctx context.Context) error {
	if err := r.ensureRow(ctx); err != nil {
		return err
	}
	err := pgx.BeginFunc(ctx, r.cfg.Pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `SELECT 1 FROM projection_checkpoints WHERE name = $1 FOR UPDATE`, r.Name()); err != nil {
			return err
		}
		if err := r.cfg.Projector.Reset(ctx, tx); err != nil {
			return err
		}
		// The replay quarantines again whatever still fails.
		if _, err := tx.Exec(ctx, `DELETE FROM projection_quarantine WHERE projector = $1`, r.Name()); err != nil {
			return err
		}
		_, err := tx.Exec(ctx, `UPDATE projection_checkpoints SET position = 0, status = 'running', last_error = '', failures = 0, updated_at = now() WHERE name = $1`, r.Name())
		return err
	})
	if err != nil {
		return fmt.Errorf("rebuild %s: %w", r.Name(), err)
	}
	r.setState(func(s *State) { s.Quarantined = 0 })
	r.poke()
	return nil
}

// CatchUp applies every event up to the store's head now and returns (tests
// and benchmarks). A batch the projector fails on is applied again at once,
// isolated: its failing events are quarantined as Run does.
func (r *Runner) CatchUp(ctx context.Context) error {
	if err := r.ensureRow(ctx); err != nil {
		return err
	}
	for {
		pos, _, err := r.loadCheckpoint(ctx)
		if err != nil {
			return err
		}
		batch, err := r.cfg.Store.ReadAll(ctx, pos, 1000)
		if err != nil {
			return err
		}
		if len(batch) == 0 {
			return nil
		}
		err = r.apply(ctx, pos, batch, false)
		var herr *HandleError
		if errors.As(err, &herr) && !herr.Park {
			err = r.apply(ctx, pos, batch, true)
		}
		if err != nil && !errors.Is(err, errCheckpointMoved) {
			return err
		}
	}
}

// watch ends the subscription (cancel) when the checkpoint row no longer says
// what this runner applied — a rebuild, possibly from another instance — or
// when poked locally.
func (r *Runner) watch(ctx context.Context, cancel context.CancelFunc, prev *atomic.Uint64) {
	t := time.NewTicker(r.cfg.CheckInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-r.wake:
			cancel()
			return
		case <-t.C:
			before := prev.Load()
			pos, status, err := r.loadCheckpoint(ctx)
			if err != nil {
				continue
			}
			if status != StatusRunning || (pos != before && pos != prev.Load()) {
				cancel()
				return
			}
		}
	}
}

func (r *Runner) poke() {
	select {
	case r.wake <- struct{}{}:
	default:
	}
}

func (r *Runner) ensureRow(ctx context.Context) error {
	_, err := r.cfg.Pool.Exec(ctx, `INSERT INTO projection_checkpoints (name) VALUES ($1) ON CONFLICT (name) DO NOTHING`, r.Name())
	if err != nil {
		return fmt.Errorf("checkpoint row for %s: %w", r.Name(), err)
	}
	return nil
}

// loadCheckpoint reads the checkpoint row, and refreshes the count of
// quarantined events (which an operator or another instance may change).
func (r *Runner) loadCheckpoint(ctx context.Context) (uint64, string, error) {
	var pos, held int64
	var status string
	err := r.cfg.Pool.QueryRow(ctx, `SELECT position, status,
		(SELECT count(*) FROM projection_quarantine WHERE projector = $1)
		FROM projection_checkpoints WHERE name = $1`, r.Name()).Scan(&pos, &status, &held)
	if err != nil {
		return 0, "", fmt.Errorf("load checkpoint %s: %w", r.Name(), err)
	}
	r.setState(func(s *State) { s.Quarantined = held })
	return uint64(pos), status, nil
}

func (r *Runner) setState(f func(*State)) {
	r.mu.Lock()
	f(&r.state)
	if r.changed != nil {
		close(r.changed)
		r.changed = nil
	}
	r.mu.Unlock()
}

func sleep(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-t.C:
	}
}
