// Package stuck is the stuck detector: it watches the students of live
// sessions and raises an AUTO help request for a student who shows stuck
// signals (analyzer.Detect: another app in the foreground, BACK again and
// again, rapid taps on one spot, a long idle) on the session's current step.
//
// It polls rather than consuming the activity-log topic: the strongest signal,
// a long idle, is the absence of logs, which no message announces; a poll
// needs no per-student state in memory (nothing lost on restart, any number
// of instances), and it reads logs only once the log writer made them
// durable, joined in one query with the session, completion and help read
// models. One query per tick finds the candidates, one more reads their logs.
//
// At most one open request per student and step: a student with an open
// (ANALYZING or ESCALATED) request on the step is skipped, and the guard
// table help_auto_raised is updated conditionally (only when the last AUTO
// request for that student and step is older than Cooldown), so that of
// several instances — or of two ticks racing the help projector — only one
// raises. After a request, signals are looked for only in what happened since.
package stuck

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/lockstep/lockstep/analyzer"
	"github.com/lockstep/lockstep/commands"
	"github.com/lockstep/lockstep/domain"
	"github.com/lockstep/lockstep/eventstore"
)

// Name is the detector's name (logs, correlation ids).
const Name = "stuck-detector"

// Documented defaults.
const (
	DefaultInterval  = 5 * time.Second
	DefaultCooldown  = 2 * time.Minute
	DefaultIdleAfter = 2 * time.Minute
)

// Raiser opens help requests (commands.Help's RequestHelp handler).
type Raiser interface {
	Handle(ctx context.Context, cmd commands.RequestHelp) (domain.HelpRequest, error)
}

// ActivityReader reads several students' recent logs (pgactivity.Source).
type ActivityReader interface {
	Since(ctx context.Context, userIDs []int64, since, until time.Time, perUser int) (map[int64][]analyzer.Activity, error)
}

// Config configures the detector. Zero durations take the defaults.
type Config struct {
	Pool     *pgxpool.Pool
	Help     Raiser
	Activity ActivityReader
	// Thresholds of the stuck signals; zero fields take analyzer.DefaultThresholds,
	// except IdleAfter, whose default here is DefaultIdleAfter (2m: a
	// classroom step takes a while, and idle is the weakest signal).
	Thresholds analyzer.Thresholds
	// Interval between two looks (default 5s).
	Interval time.Duration
	// Cooldown: the least time between two AUTO requests for one student and
	// step (default 2m).
	Cooldown time.Duration
	// Lookback bounds how far back logs are read (default 10m).
	Lookback time.Duration
	Now      func() time.Time
	Logger   *slog.Logger
}

// Detector raises AUTO help requests.
type Detector struct {
	cfg Config
}

// New returns a detector; it panics without a pool or raiser (a wiring bug).
func New(cfg Config) *Detector {
	if cfg.Pool == nil || cfg.Help == nil {
		panic("stuck: New needs a Pool and a Help raiser")
	}
	if cfg.Interval <= 0 {
		cfg.Interval = DefaultInterval
	}
	if cfg.Cooldown <= 0 {
		cfg.Cooldown = DefaultCooldown
	}
	if cfg.Lookback <= 0 {
		cfg.Lookback = 10 * time.Minute
	}
	if cfg.Thresholds.IdleAfter <= 0 {
		cfg.Thresholds.IdleAfter = DefaultIdleAfter
	}
	cfg.Thresholds = cfg.Thresholds.WithDefaults()
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	return &Detector{cfg: cfg}
}

// Run looks every Interval until ctx ends. A failed look is logged, not fatal.
func (d *Detector) Run(ctx context.Context) error {
	t := time.NewTicker(d.cfg.Interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
		if _, err := d.Tick(ctx); err != nil && ctx.Err() == nil {
			d.cfg.Logger.Error("stuck detector tick", "error", err)
		}
	}
}

type candidate struct {
	sessionID, userID, lectureID int64
	subtask                      analyzer.Subtask
	since                        time.Time
}

// Tick looks once and returns the help requests it raised.
func (d *Detector) Tick(ctx context.Context) ([]int64, error) {
	now := d.cfg.Now().UTC()
	cands, err := d.candidates(ctx, now)
	if err != nil || len(cands) == 0 {
		return nil, err
	}
	logs := map[int64][]analyzer.Activity{}
	if d.cfg.Activity != nil {
		users := make([]int64, 0, len(cands))
		oldest := now
		for _, c := range cands {
			users = append(users, c.userID)
			oldest = minTime(oldest, c.since)
		}
		if logs, err = d.cfg.Activity.Since(ctx, users, oldest, now, 200); err != nil {
			return nil, err
		}
	}
	var raised []int64
	for _, c := range cands {
		if err := ctx.Err(); err != nil {
			return raised, err
		}
		var acts []analyzer.Activity
		for _, a := range logs[c.userID] {
			if !a.At.Before(c.since) {
				acts = append(acts, a)
			}
		}
		req := analyzer.Request{UserID: c.userID, RequestType: domain.HelpAuto, Subtask: c.subtask, StuckDuration: now.Sub(c.since), RecentActivity: acts, Now: now}
		signals := analyzer.Detect(req, d.cfg.Thresholds)
		if len(signals) == 0 {
			continue
		}
		id, err := d.raise(ctx, c, req, signals, now)
		if err != nil {
			d.cfg.Logger.Error("raise AUTO help request", "user_id", c.userID, "subtask_id", c.subtask.ID, "error", err)
			continue
		}
		if id != 0 {
			raised = append(raised, id)
		}
	}
	return raised, nil
}

// candidates: active participants of sessions in progress who have not
// completed the current step, have no open help request on it, and got no
// AUTO request for it within the cooldown.
func (d *Detector) candidates(ctx context.Context, now time.Time) ([]candidate, error) {
	rows, err := d.cfg.Pool.Query(ctx, `SELECT p.session_id, p.user_id, s.lecture_id, s.current_subtask_id,
			coalesce(st.title, s.current_title, ''), coalesce(st.target_action, 'OTHER'), coalesce(st.target_element_hint, ''),
			coalesce(st.guide_text, s.current_guide_text, ''),
			coalesce((SELECT max(sc.occurred_at) FROM session_step_control sc WHERE sc.session_id = s.session_id AND sc.to_subtask_id = s.current_subtask_id),
				s.started_at, s.created_at),
			a.raised_at
		FROM session_participants p
		JOIN live_sessions s USING (session_id)
		LEFT JOIN rm_lecture_subtasks st ON st.id = s.current_subtask_id
		LEFT JOIN help_auto_raised a ON a.user_id = p.user_id AND a.subtask_id = s.current_subtask_id
		WHERE s.status = 'IN_PROGRESS' AND p.status = 'ACTIVE' AND s.current_subtask_id IS NOT NULL
		  AND (a.raised_at IS NULL OR a.raised_at < $1)
		  AND NOT EXISTS (SELECT 1 FROM session_completions c
			WHERE c.lecture_id = s.lecture_id AND c.user_id = p.user_id AND c.subtask_id = s.current_subtask_id)
		  AND NOT EXISTS (SELECT 1 FROM rm_help_requests h
			WHERE h.user_id = p.user_id AND h.subtask_id = s.current_subtask_id AND h.status IN ('ANALYZING', 'ESCALATED'))
		ORDER BY p.session_id, p.user_id`, now.Add(-d.cfg.Cooldown))
	if err != nil {
		return nil, fmt.Errorf("find stuck candidates: %w", err)
	}
	return pgx.CollectRows(rows, func(r pgx.CollectableRow) (candidate, error) {
		var c candidate
		var action string
		var raised *time.Time
		err := r.Scan(&c.sessionID, &c.userID, &c.lectureID, &c.subtask.ID, &c.subtask.Title, &action, &c.subtask.TargetElementHint,
			&c.subtask.GuideText, &c.since, &raised)
		c.subtask.TargetAction = domain.TargetAction(action)
		c.since = c.since.UTC()
		if raised != nil && raised.After(c.since) {
			c.since = raised.UTC()
		}
		if lb := now.Add(-d.cfg.Lookback); c.since.Before(lb) {
			// Only the lookback's worth of logs is read; an idle that long counts from there.
			c.since = lb
		}
		return c, err
	})
}

// raise claims the guard row and opens the request; 0 when another tick or
// instance claimed it first.
func (d *Detector) raise(ctx context.Context, c candidate, req analyzer.Request, signals []analyzer.Signal, now time.Time) (int64, error) {
	tag, err := d.cfg.Pool.Exec(ctx, `INSERT INTO help_auto_raised (user_id, subtask_id, help_request_id, session_id, raised_at)
		VALUES ($1, $2, 0, $3, $4)
		ON CONFLICT (user_id, subtask_id) DO UPDATE SET help_request_id = 0, session_id = EXCLUDED.session_id, raised_at = EXCLUDED.raised_at
		WHERE help_auto_raised.raised_at < $5`, c.userID, c.subtask.ID, c.sessionID, now, now.Add(-d.cfg.Cooldown))
	if err != nil {
		return 0, fmt.Errorf("claim the AUTO request guard: %w", err)
	}
	if tag.RowsAffected() == 0 {
		return 0, nil
	}
	contextData, err := json.Marshal(autoContext(req, signals))
	if err != nil {
		return 0, err
	}
	stuck := int(req.StuckDuration / time.Second)
	hr, err := d.cfg.Help.Handle(ctx, commands.RequestHelp{
		Actor: domain.System,
		HelpRequestInput: commands.HelpRequestInput{
			UserID: c.userID, SubtaskID: c.subtask.ID, RequestType: domain.HelpAuto, ContextData: contextData,
			StuckDurationSeconds: &stuck, SessionID: c.sessionID,
		},
		Meta: eventstore.Metadata{CorrelationID: Name},
	})
	if err != nil {
		var de *domain.Error
		if errors.As(err, &de) {
			// Refused for good (not enrolled, step removed): the guard keeps
			// the detector from asking again before the cooldown.
			d.cfg.Logger.Warn("AUTO help request refused", "user_id", c.userID, "subtask_id", c.subtask.ID, "error", err)
			return 0, nil
		}
		return 0, err
	}
	if _, err := d.cfg.Pool.Exec(ctx, `UPDATE help_auto_raised SET help_request_id = $3 WHERE user_id = $1 AND subtask_id = $2`,
		c.userID, c.subtask.ID, hr.ID()); err != nil {
		return 0, err
	}
	kinds := make([]string, len(signals))
	for i, s := range signals {
		kinds[i] = string(s.Kind)
	}
	d.cfg.Logger.Info("AUTO help request raised", "help_request_id", hr.ID(), "user_id", c.userID, "session_id", c.sessionID,
		"subtask_id", c.subtask.ID, "signals", kinds)
	return hr.ID(), nil
}

type autoContextData struct {
	DetectedBy           string            `json:"detected_by"`
	Signals              []analyzer.Signal `json:"signals"`
	CurrentScreen        string            `json:"current_screen,omitempty"`
	RecentActions        []string          `json:"recent_actions"`
	StuckDurationSeconds int               `json:"stuck_duration_seconds"`
}

func autoContext(req analyzer.Request, signals []analyzer.Signal) autoContextData {
	c := autoContextData{DetectedBy: Name, Signals: signals, RecentActions: []string{}, StuckDurationSeconds: int(req.StuckDuration / time.Second)}
	acts := req.RecentActivity
	for i := max(len(acts)-10, 0); i < len(acts); i++ {
		c.RecentActions = append(c.RecentActions, acts[i].EventType)
	}
	for i := len(acts) - 1; i >= 0; i-- {
		if acts[i].Package != "" {
			c.CurrentScreen = acts[i].Package
			if acts[i].Screen != "" {
				c.CurrentScreen += "." + acts[i].Screen
			}
			break
		}
	}
	return c
}

func minTime(a, b time.Time) time.Time {
	if b.Before(a) {
		return b
	}
	return a
}
