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
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/lockstep/lockstep/domain"
	"github.com/lockstep/lockstep/eventstore"
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

// Status of a projector.
const (
	StatusRunning = "running"
	StatusParked  = "parked"
	StatusStopped = "stopped"
)

// Config configures a Runner.
type Config struct {
	Store     eventstore.Store
	Pool      *pgxpool.Pool
	Projector Projector
	Logger    *slog.Logger
	// MaxFailures is how many times in a row a batch may fail before the
	// projector is parked (default 5).
	MaxFailures int
	// Backoff is the first retry delay, doubled on each failure (default 100ms, max 10s).
	Backoff time.Duration
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
	if c.Backoff <= 0 {
		c.Backoff = 100 * time.Millisecond
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
}

// Runner runs one projector.
type Runner struct {
	cfg Config
	log *slog.Logger

	mu    sync.Mutex
	state State
	wake  chan struct{}
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

// Run applies events until ctx is done. A batch in progress when ctx is
// cancelled is finished (or rolled back) before Run returns, so the projector
// stops at a batch boundary. A batch that keeps failing is retried with
// backoff; after MaxFailures in a row the projector is parked — it applies
// nothing more and reports the error — until Unpark or Rebuild.
func (r *Runner) Run(ctx context.Context) error {
	failures := 0
	delay := r.cfg.Backoff
	// The database may be away for a while (a restart, a failover): wait for
	// it rather than stop the process.
	for {
		err := r.ensureRow(ctx)
		if err == nil {
			break
		}
		if ctx.Err() != nil {
			r.setState(func(s *State) { s.Status = StatusStopped })
			return nil
		}
		r.log.Error("projector cannot reach its checkpoint; retrying", "error", err, "retry_in", delay.String())
		r.setState(func(s *State) { s.LastError = err.Error() })
		sleep(ctx, delay)
		delay = min(delay*2, 10*time.Second)
	}
	delay = r.cfg.Backoff
	for ctx.Err() == nil {
		pos, status, err := r.loadCheckpoint(ctx)
		if err != nil {
			if ctx.Err() != nil {
				break
			}
			r.log.Error("load checkpoint", "error", err)
			sleep(ctx, delay)
			continue
		}
		if status == StatusParked {
			r.setState(func(s *State) { s.Status = StatusParked; s.Position = pos })
			select {
			case <-ctx.Done():
			case <-r.wake:
			}
			continue
		}
		r.setState(func(s *State) { s.Status = StatusRunning; s.Position = pos })
		var prev atomic.Uint64
		prev.Store(pos)
		subCtx, cancelSub := context.WithCancel(ctx)
		watched := make(chan struct{})
		go func() { defer close(watched); r.watch(subCtx, cancelSub, &prev) }()
		err = r.cfg.Store.Subscribe(subCtx, pos, func(_ context.Context, batch []eventstore.Event) error {
			if err := r.apply(ctx, prev.Load(), batch); err != nil {
				return err
			}
			if len(batch) > 0 {
				prev.Store(batch[len(batch)-1].Position)
			}
			failures, delay = 0, r.cfg.Backoff
			return nil
		})
		restarted := subCtx.Err() != nil
		cancelSub()
		<-watched
		if ctx.Err() != nil {
			break
		}
		if restarted {
			continue // a rebuild, an unpark or another runner moved the checkpoint
		}
		if errors.Is(err, errCheckpointMoved) {
			continue
		}
		failures++
		r.log.Error("projection batch failed", "error", err, "failures", failures)
		r.setState(func(s *State) { s.LastError = err.Error(); s.Failures = failures })
		if failures >= r.cfg.MaxFailures {
			r.park(ctx, err)
			failures, delay = 0, r.cfg.Backoff
			continue
		}
		sleep(ctx, delay)
		delay = min(delay*2, 10*time.Second)
	}
	r.setState(func(s *State) { s.Status = StatusStopped })
	return nil
}

// apply runs one batch in one transaction with the checkpoint update, provided
// the checkpoint is still prev (else another runner or a rebuild moved it and
// the caller must re-read it). It does not stop half-way when ctx is
// cancelled: the batch commits or rolls back whole.
func (r *Runner) apply(ctx context.Context, prev uint64, batch []eventstore.Event) error {
	if len(batch) == 0 {
		return nil
	}
	bctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), r.cfg.BatchTimeout)
	defer cancel()
	records := decode(batch)
	name := r.Name()
	last := batch[len(batch)-1]
	err := pgx.BeginFunc(bctx, r.cfg.Pool, func(tx pgx.Tx) error {
		var cur int64
		if err := tx.QueryRow(bctx, `SELECT position FROM projection_checkpoints WHERE name = $1 FOR UPDATE`, name).Scan(&cur); err != nil {
			return fmt.Errorf("lock checkpoint: %w", err)
		}
		if uint64(cur) != prev {
			return errCheckpointMoved
		}
		if err := handleAll(bctx, r.cfg.Projector, tx, records); err != nil {
			return err
		}
		_, err := tx.Exec(bctx, `UPDATE projection_checkpoints SET position = $2, status = 'running', last_error = '', failures = 0, updated_at = now() WHERE name = $1`, name, int64(last.Position))
		return err
	})
	if err != nil {
		return err
	}
	r.setState(func(s *State) {
		s.Position, s.Status, s.LastError, s.Failures, s.LastEventAt = last.Position, StatusRunning, "", 0, last.OccurredAt
	})
	if ac, ok := r.cfg.Projector.(AfterCommitter); ok {
		ac.AfterCommit(bctx, records)
	}
	return nil
}

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

func (r *Runner) park(ctx context.Context, cause error) {
	r.log.Error("projector parked after repeated failures: it applies nothing until rebuilt or unparked", "error", cause)
	_, err := r.cfg.Pool.Exec(context.WithoutCancel(ctx),
		`UPDATE projection_checkpoints SET status = 'parked', last_error = $2, failures = $3, updated_at = now() WHERE name = $1`,
		r.Name(), cause.Error(), r.cfg.MaxFailures)
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
		_, err := tx.Exec(ctx, `UPDATE projection_checkpoints SET position = 0, status = 'running', last_error = '', failures = 0, updated_at = now() WHERE name = $1`, r.Name())
		return err
	})
	if err != nil {
		return fmt.Errorf("rebuild %s: %w", r.Name(), err)
	}
	r.poke()
	return nil
}

// CatchUp applies every event up to the store's head now and returns; used by
// the rebuild command and tests.
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
		if err := r.apply(ctx, pos, batch); err != nil && !errors.Is(err, errCheckpointMoved) {
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

func (r *Runner) loadCheckpoint(ctx context.Context) (uint64, string, error) {
	var pos int64
	var status string
	err := r.cfg.Pool.QueryRow(ctx, `SELECT position, status FROM projection_checkpoints WHERE name = $1`, r.Name()).Scan(&pos, &status)
	if err != nil {
		return 0, "", fmt.Errorf("load checkpoint %s: %w", r.Name(), err)
	}
	return uint64(pos), status, nil
}

func (r *Runner) setState(f func(*State)) {
	r.mu.Lock()
	f(&r.state)
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
