// Package presence tracks the student sockets of live sessions across every
// API instance, in PostgreSQL, and turns their absence into participant
// events (DISCONNECTED after the timeout, back to ACTIVE on reconnect). It
// is a worker of the write side, not an HTTP handler: readapi's session
// socket tells it when a student socket opens and closes.
package presence

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync/atomic"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/lockstep/lockstep/commands"
	"github.com/lockstep/lockstep/domain"
	"github.com/lockstep/lockstep/eventstore"
)

// Config configures Tracker.
type Config struct {
	Store eventstore.Store
	Pool  *pgxpool.Pool
	// Timeout is how long a participant of a live session may have no
	// student socket open before they become DISCONNECTED (default 30s).
	Timeout time.Duration
	Logger  *slog.Logger
}

// Tracker tracks the student sockets of live sessions across every API
// instance, in PostgreSQL, and turns their absence into participant events:
// ParticipantDisconnected when a participant of an IN_PROGRESS or PAUSED
// session has had no socket open for Timeout, ParticipantReconnected when a
// disconnected participant opens one again (on any instance).
//
// Each instance heartbeats a row; the sockets of an instance whose heartbeat
// stopped (a crash) stop counting as open after three heartbeat intervals.
type Tracker struct {
	cfg      Config
	log      *slog.Logger
	instance string
	interval time.Duration
	stale    time.Duration
	sockets  atomic.Int64
	stopped  atomic.Bool
}

// New returns a Tracker; it panics without a store or a pool.
func New(cfg Config) *Tracker {
	if cfg.Store == nil || cfg.Pool == nil {
		panic("presence: New needs a Store and a Pool")
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = 30 * time.Second
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	interval := min(max(cfg.Timeout/4, 50*time.Millisecond), 5*time.Second)
	return &Tracker{
		cfg: cfg, log: cfg.Logger, instance: uuid.NewString(),
		interval: interval, stale: 3 * interval,
	}
}

// Opened records an open student socket of userID in sessionID, and
// reconnects the participant if they were disconnected. It returns the
// socket's id for Closed.
func (p *Tracker) Opened(ctx context.Context, sessionID, userID int64) (int64, error) {
	if p.stopped.Load() {
		return 0, nil
	}
	id := p.sockets.Add(1)
	b := &pgx.Batch{}
	b.Queue(`WITH i AS (INSERT INTO session_instances (instance_id) VALUES ($1) ON CONFLICT (instance_id) DO NOTHING)
		INSERT INTO session_sockets (instance_id, socket_id, session_id, user_id) VALUES ($1, $2, $3, $4)`, p.instance, id, sessionID, userID)
	b.Queue(`INSERT INTO session_last_seen (session_id, user_id, last_seen_at) VALUES ($1, $2, now())
		ON CONFLICT (session_id, user_id) DO UPDATE SET last_seen_at = now()`, sessionID, userID)
	if err := p.cfg.Pool.SendBatch(ctx, b).Close(); err != nil {
		return 0, fmt.Errorf("record socket of user %d in session %d: %w", userID, sessionID, err)
	}
	return id, p.reconnect(ctx, sessionID, userID)
}

// Closed records that a socket Opened returned is gone. After Run returned
// (the instance is shutting down and has already let go of its sockets) it
// does nothing.
func (p *Tracker) Closed(ctx context.Context, sessionID, userID, socketID int64) error {
	if p.stopped.Load() || socketID == 0 {
		return nil
	}
	b := &pgx.Batch{}
	b.Queue(`DELETE FROM session_sockets WHERE instance_id = $1 AND socket_id = $2`, p.instance, socketID)
	b.Queue(`INSERT INTO session_last_seen (session_id, user_id, last_seen_at) VALUES ($1, $2, now())
		ON CONFLICT (session_id, user_id) DO UPDATE SET last_seen_at = now()`, sessionID, userID)
	if err := p.cfg.Pool.SendBatch(ctx, b).Close(); err != nil {
		return fmt.Errorf("record closed socket of user %d in session %d: %w", userID, sessionID, err)
	}
	return nil
}

// meta is the metadata of the server's own participant events: the session
// and its lecture, so that both histories find them.
func (p *Tracker) meta(ctx context.Context, sessionID int64) eventstore.Metadata {
	m := eventstore.Metadata{SessionID: sessionID, CorrelationID: uuid.NewString()}
	_ = p.cfg.Pool.QueryRow(ctx, `SELECT lecture_id FROM live_sessions WHERE session_id = $1`, sessionID).Scan(&m.LectureID)
	return m
}

func (p *Tracker) reconnect(ctx context.Context, sessionID, userID int64) error {
	_, err := commands.Execute(ctx, p.cfg.Store, domain.ParticipantStream(sessionID, userID), domain.ParticipantDecider,
		domain.ParticipantCommand(domain.ReconnectParticipant{Actor: domain.System, At: time.Now().UTC().Truncate(time.Microsecond)}),
		p.meta(ctx, sessionID))
	if errors.Is(err, domain.ErrNotFound) {
		return nil // not a participant (an instructor or admin watching)
	}
	return err
}

// Run heartbeats this instance and disconnects absent participants until
// ctx ends.
func (p *Tracker) Run(ctx context.Context) error {
	t := time.NewTicker(p.interval)
	defer t.Stop()
	for {
		if err := p.Tick(ctx); err != nil && ctx.Err() == nil {
			p.log.Error("presence check failed", "error", err)
		}
		select {
		case <-ctx.Done():
			p.stopped.Store(true)
			p.release(context.WithoutCancel(ctx))
			return nil
		case <-t.C:
		}
	}
}

// Tick heartbeats once, forgets dead instances, and disconnects every
// participant whose absence exceeded the timeout.
func (p *Tracker) Tick(ctx context.Context) error {
	_, err := p.cfg.Pool.Exec(ctx, `INSERT INTO session_instances (instance_id) VALUES ($1)
		ON CONFLICT (instance_id) DO UPDATE SET heartbeat_at = now()`, p.instance)
	if err != nil {
		return fmt.Errorf("heartbeat: %w", err)
	}
	if err := p.forgetDead(ctx); err != nil {
		return err
	}
	rows, err := p.cfg.Pool.Query(ctx, `
		SELECT p.session_id, p.user_id, s.status, greatest(p.joined_at, s.started_at, ls.last_seen_at, dead.heartbeat_at)
		FROM live_sessions s
		JOIN session_participants p ON p.session_id = s.session_id
		LEFT JOIN session_last_seen ls ON ls.session_id = p.session_id AND ls.user_id = p.user_id
		LEFT JOIN LATERAL (
			SELECT max(i.heartbeat_at) AS heartbeat_at FROM session_sockets k JOIN session_instances i USING (instance_id)
			WHERE k.session_id = p.session_id AND k.user_id = p.user_id) dead ON true
		WHERE s.status IN ('IN_PROGRESS', 'PAUSED') AND p.status <> 'DISCONNECTED'
		  AND NOT EXISTS (SELECT 1 FROM session_sockets k JOIN session_instances i USING (instance_id)
		                  WHERE k.session_id = p.session_id AND k.user_id = p.user_id
		                    AND i.heartbeat_at > now() - make_interval(secs => $1))
		  AND greatest(p.joined_at, s.started_at, ls.last_seen_at, dead.heartbeat_at) < now() - make_interval(secs => $2)`,
		p.stale.Seconds(), p.cfg.Timeout.Seconds())
	if err != nil {
		return fmt.Errorf("find absent participants: %w", err)
	}
	type absent struct {
		sessionID, userID int64
		status            string
		seen              time.Time
	}
	var found []absent
	for rows.Next() {
		var a absent
		if err := rows.Scan(&a.sessionID, &a.userID, &a.status, &a.seen); err != nil {
			rows.Close()
			return err
		}
		found = append(found, a)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return err
	}
	for _, a := range found {
		if err := p.disconnect(ctx, a.sessionID, a.userID, domain.SessionStatus(a.status), a.seen); err != nil {
			p.log.Error("disconnect participant", "session_id", a.sessionID, "user_id", a.userID, "error", err)
		}
	}
	return nil
}

func (p *Tracker) disconnect(ctx context.Context, sessionID, userID int64, status domain.SessionStatus, seen time.Time) error {
	res, err := commands.Execute(ctx, p.cfg.Store, domain.ParticipantStream(sessionID, userID), domain.ParticipantDecider,
		domain.ParticipantCommand(domain.DisconnectParticipant{
			Actor: domain.System, At: time.Now().UTC().Truncate(time.Microsecond), SessionStatus: status, LastSeenAt: seen.UTC(),
		}), p.meta(ctx, sessionID))
	if errors.Is(err, domain.ErrInvalidState) {
		return nil // the session ended meanwhile
	}
	if err != nil || len(res.Events) == 0 {
		return err
	}
	// A socket opened while we decided would have reconnected before our
	// append: it is in the table now, so reconnect on its behalf.
	var open bool
	if err := p.cfg.Pool.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM session_sockets k JOIN session_instances i USING (instance_id)
		WHERE k.session_id = $1 AND k.user_id = $2 AND i.heartbeat_at > now() - make_interval(secs => $3))`,
		sessionID, userID, p.stale.Seconds()).Scan(&open); err != nil {
		return err
	}
	if open {
		return p.reconnect(ctx, sessionID, userID)
	}
	return nil
}

// release lets go of this instance's sockets when it stops: they count as
// seen now, and closed.
func (p *Tracker) release(ctx context.Context) {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	_, err := p.cfg.Pool.Exec(ctx, `
		WITH i AS (DELETE FROM session_instances WHERE instance_id = $1),
		     gone AS (DELETE FROM session_sockets WHERE instance_id = $1 RETURNING session_id, user_id)
		INSERT INTO session_last_seen (session_id, user_id, last_seen_at)
		SELECT DISTINCT session_id, user_id, now() FROM gone
		ON CONFLICT (session_id, user_id) DO UPDATE SET last_seen_at = now()`, p.instance)
	if err != nil {
		p.log.Warn("release this instance's sockets", "error", err)
	}
}

// forgetDead removes instances that stopped heartbeating long ago, keeping
// their last heartbeat as their sockets' last sighting.
func (p *Tracker) forgetDead(ctx context.Context) error {
	horizon := max(10*p.stale, 2*p.cfg.Timeout).Seconds()
	return pgx.BeginFunc(ctx, p.cfg.Pool, func(tx pgx.Tx) error {
		_, err := tx.Exec(ctx, `
			WITH dead AS (DELETE FROM session_instances WHERE heartbeat_at < now() - make_interval(secs => $1) RETURNING instance_id, heartbeat_at),
			     gone AS (DELETE FROM session_sockets k USING dead WHERE k.instance_id = dead.instance_id
			              RETURNING k.session_id, k.user_id, dead.heartbeat_at)
			INSERT INTO session_last_seen (session_id, user_id, last_seen_at)
			SELECT session_id, user_id, max(heartbeat_at) FROM gone GROUP BY session_id, user_id
			ON CONFLICT (session_id, user_id) DO UPDATE SET last_seen_at = greatest(session_last_seen.last_seen_at, EXCLUDED.last_seen_at)`, horizon)
		return err
	})
}
