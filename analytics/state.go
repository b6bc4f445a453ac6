package analytics

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/lockstep/lockstep/domain"
)

// State is a classroom as it was at an instant, folded from its events.
type State struct {
	SessionID        int64              `json:"session_id"`
	At               time.Time          `json:"at"`
	Position         uint64             `json:"position"`
	Status           *string            `json:"status"`
	CurrentSubtask   *Subtask           `json:"current_subtask"`
	Participants     []ParticipantState `json:"participants"`
	OpenHelpRequests []HelpState        `json:"open_help_requests"`
}

// Subtask is a subtask as the session showed it (title and guide texts as they were).
type Subtask struct {
	ID             int64  `json:"id"`
	Title          string `json:"title"`
	GuideText      string `json:"guide_text"`
	VoiceGuideText string `json:"voice_guide_text"`
}

// ParticipantState is one participant at the instant.
type ParticipantState struct {
	UserID              int64   `json:"user_id"`
	Name                string  `json:"name"`
	Status              string  `json:"status"`
	CompletedSubtaskIDs []int64 `json:"completed_subtask_ids"`
}

// HelpState is a help request open (ANALYZING or ESCALATED) at the instant.
type HelpState struct {
	HelpRequestID int64  `json:"help_request_id"`
	UserID        int64  `json:"user_id"`
	SubtaskID     int64  `json:"subtask_id"`
	Status        string `json:"status"`
}

// stateSQL reads only what the fold needs from the classroom's control,
// participant and help events (events_session_control_idx: the students'
// progress, most of a class, is not read): no data document is decoded in
// Go except the current subtask of a step.
const stateSQL = `
SELECT position, type, occurred_at,
       coalesce((data->>'user_id')::bigint, 0),
       coalesce((data->>'subtask_id')::bigint, 0),
       coalesce((data->>'help_request_id')::bigint, 0),
       CASE WHEN type IN ('SessionStarted', 'StepChanged') THEN data->'current_subtask' END
FROM events
WHERE metadata ? 'session_id' AND (metadata->>'session_id')::bigint = $1
  AND type NOT IN ('SubtaskStarted', 'SubtaskCompleted', 'StudentEnrolled')
  AND position <= $2
ORDER BY position`

// lastSQL finds the classroom's last event at or before an instant (the one
// that occurred last; the highest position among ties): one probe of
// events_session_time_idx.
const lastSQL = `
SELECT position, occurred_at FROM events
WHERE metadata ? 'session_id' AND (metadata->>'session_id')::bigint = $1
  AND occurred_at <= $2 AND position <= $3
ORDER BY occurred_at DESC, position DESC LIMIT 1`

type leanEvent struct {
	pos                 uint64
	typ                 string
	at                  time.Time
	user, subtask, help int64
	current             []byte
}

// StateAt folds the classroom's events up to instant at. Position is the
// position of the classroom's last event at or before at (the one that
// occurred last, the highest position among ties), and the fold covers every
// classroom event up to that position (a prefix of the log). Status is nil when the session had not been opened yet. A
// participant's completed_subtask_ids are the subtasks of the lecture they
// had completed by at (their progress stream, in or out of this class), in
// the order they completed them.
func (r *Reader) StateAt(ctx context.Context, cl *Classroom, at time.Time) (State, error) {
	at = at.UTC()
	st := State{SessionID: cl.SessionID, At: at, Participants: []ParticipantState{}, OpenHelpRequests: []HelpState{}}
	head, err := r.head(ctx)
	if err != nil {
		return st, fmt.Errorf("head position: %w", err)
	}
	var lastPos int64
	var lastAt time.Time
	err = r.pool.QueryRow(ctx, lastSQL, cl.SessionID, at, int64(head)).Scan(&lastPos, &lastAt)
	if err != nil && !errors.Is(err, pgx.ErrNoRows) {
		return st, fmt.Errorf("find the last event of session %d at %s: %w", cl.SessionID, at, err)
	}
	st.Position = uint64(lastPos)
	// Progress attributed to the class without naming it counts too.
	if p, pAt, err := r.lastUnnamedProgress(ctx, cl, at, head); err != nil {
		return st, err
	} else if p != 0 && (st.Position == 0 || pAt.After(lastAt) || (pAt.Equal(lastAt) && p > st.Position)) {
		st.Position = p
	}
	if st.Position == 0 {
		return st, nil // the session did not exist yet
	}
	rows, err := r.pool.Query(ctx, stateSQL, cl.SessionID, int64(st.Position))
	if err != nil {
		return st, fmt.Errorf("read session %d: %w", cl.SessionID, err)
	}
	var evs []leanEvent
	for rows.Next() {
		var e leanEvent
		var pos int64
		if err := rows.Scan(&pos, &e.typ, &e.at, &e.user, &e.subtask, &e.help, &e.current); err != nil {
			rows.Close()
			return st, err
		}
		e.pos = uint64(pos)
		evs = append(evs, e)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return st, fmt.Errorf("read session %d: %w", cl.SessionID, err)
	}

	type part struct {
		user         int64
		disconnected bool
	}
	var (
		status  domain.SessionStatus
		current *Subtask
		parts   []*part
		byUser  = map[int64]*part{}
		helps   = map[int64]*HelpState{}
		order   []int64
	)
	for _, e := range evs {
		switch e.typ {
		case "SessionOpened":
			status = domain.SessionStatusWaiting
		case "SessionStarted", "StepChanged":
			if e.typ == "SessionStarted" {
				status = domain.SessionStatusInProgress
			}
			var s Subtask
			if err := json.Unmarshal(e.current, &s); err != nil {
				return st, fmt.Errorf("decode %s at %d: %w", e.typ, e.pos, err)
			}
			s.VoiceGuideText = domain.SpokenText(s.VoiceGuideText, s.GuideText, s.Title)
			current = &s
		case "SessionPaused":
			status = domain.SessionStatusPaused
		case "SessionResumed":
			status = domain.SessionStatusInProgress
		case "SessionEnded":
			status = domain.SessionStatusReviewMode
		case "ParticipantJoined":
			if byUser[e.user] == nil {
				p := &part{user: e.user}
				byUser[e.user] = p
				parts = append(parts, p)
			}
		case "ParticipantDisconnected":
			if p := byUser[e.user]; p != nil {
				p.disconnected = true
			}
		case "ParticipantReconnected":
			if p := byUser[e.user]; p != nil {
				p.disconnected = false
			}
		case "HelpRequested":
			helps[e.help] = &HelpState{HelpRequestID: e.help, UserID: e.user, SubtaskID: e.subtask, Status: string(domain.HelpStatusAnalyzing)}
			order = append(order, e.help)
		case "HelpEscalated":
			if h := helps[e.help]; h != nil {
				h.Status = string(domain.HelpStatusEscalated)
			}
		case "HelpProvided":
			if h := helps[e.help]; h != nil {
				h.Status = string(domain.HelpStatusResolved)
			}
		}
	}
	if status != "" {
		s := string(status)
		st.Status = &s
	}
	st.CurrentSubtask = current
	for _, id := range order {
		if h := helps[id]; domain.HelpStatus(h.Status).Open() {
			st.OpenHelpRequests = append(st.OpenHelpRequests, *h)
		}
	}
	if len(parts) == 0 {
		return st, nil
	}
	users := make([]int64, len(parts))
	for i, p := range parts {
		users[i] = p.user
	}
	names, err := r.names(ctx, users)
	if err != nil {
		return st, err
	}
	done, err := r.completions(ctx, cl.LectureID, users, at, head)
	if err != nil {
		return st, err
	}
	for _, p := range parts {
		ids := done[p.user]
		if ids == nil {
			ids = []int64{}
		}
		st.Participants = append(st.Participants, ParticipantState{
			UserID: p.user, Name: names[p.user], Status: string(domain.DisplayStatus(p.disconnected, status)), CompletedSubtaskIDs: ids,
		})
	}
	return st, nil
}

// lastUnnamedProgress is the position and time of the last progress event
// attributed to the classroom without naming it that occurred by at (0: none).
func (r *Reader) lastUnnamedProgress(ctx context.Context, cl *Classroom, at time.Time, head uint64) (uint64, time.Time, error) {
	if cl.startPos == 0 || len(cl.joins) == 0 {
		return 0, time.Time{}, nil
	}
	hi := head
	if cl.endPos != 0 {
		hi = min(hi, cl.endPos)
	}
	rows, err := r.pool.Query(ctx, `SELECT position, occurred_at, coalesce((data->>'user_id')::bigint, 0) FROM events
		WHERE (metadata->>'lecture_id')::bigint = $1
		  AND type IN ('SubtaskStarted', 'SubtaskCompleted') AND NOT metadata ? 'session_id'
		  AND position > $2 AND position <= $3 AND occurred_at <= $4 AND NOT data ? 'session_id'
		ORDER BY occurred_at DESC, position DESC`, cl.LectureID, int64(cl.startPos), int64(hi), at)
	if err != nil {
		return 0, time.Time{}, fmt.Errorf("read lecture %d progress: %w", cl.LectureID, err)
	}
	defer rows.Close()
	for rows.Next() {
		var pos, user int64
		var t time.Time
		if err := rows.Scan(&pos, &t, &user); err != nil {
			return 0, time.Time{}, err
		}
		if cl.attributed(user, uint64(pos)) {
			return uint64(pos), t, nil
		}
	}
	return 0, time.Time{}, rows.Err()
}

func (r *Reader) names(ctx context.Context, users []int64) (map[int64]string, error) {
	rows, err := r.pool.Query(ctx, `SELECT id, name FROM users WHERE id = ANY($1)`, users)
	if err != nil {
		return nil, fmt.Errorf("read user names: %w", err)
	}
	defer rows.Close()
	out := make(map[int64]string, len(users))
	for rows.Next() {
		var id int64
		var name string
		if err := rows.Scan(&id, &name); err != nil {
			return nil, err
		}
		out[id] = name
	}
	return out, rows.Err()
}

// completions reads, from each user's progress stream of the lecture, the
// subtasks they had completed by at, in completion order.
func (r *Reader) completions(ctx context.Context, lectureID int64, users []int64, at time.Time, head uint64) (map[int64][]int64, error) {
	streams := make([]string, len(users))
	for i, u := range users {
		streams[i] = domain.ProgressStream(lectureID, u)
	}
	rows, err := r.pool.Query(ctx, `SELECT (data->>'user_id')::bigint, (data->>'subtask_id')::bigint FROM events
		WHERE stream = ANY($1) AND type = 'SubtaskCompleted' AND occurred_at <= $2 AND position <= $3
		ORDER BY position`, streams, at, int64(head))
	if err != nil {
		return nil, fmt.Errorf("read completions in lecture %d: %w", lectureID, err)
	}
	defer rows.Close()
	out := map[int64][]int64{}
	for rows.Next() {
		var u, s int64
		if err := rows.Scan(&u, &s); err != nil {
			return nil, err
		}
		if !slices.Contains(out[u], s) {
			out[u] = append(out[u], s)
		}
	}
	return out, rows.Err()
}
