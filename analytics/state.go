package analytics

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/lockstep/lockstep/domain"
	"github.com/lockstep/lockstep/eventstore"
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

// progressTypes are the students' progress events: most of a class, and not
// what the classroom's control fold reads.
var progressTypes = []string{domain.SubtaskStarted{}.EventType(), domain.SubtaskCompleted{}.EventType()}

// controlExcluded keeps the students' progress and enrollments out of the
// control fold (the events_session_control_idx predicate).
var controlExcluded = append(slices.Clone(progressTypes), domain.StudentEnrolled{}.EventType())

// classroomFold folds a classroom's control events with the domain's own
// deciders: its session stream, each participant stream and each help stream
// is the aggregate the command side folds, evolved the same way.
type classroomFold struct {
	sessionStream string
	session       domain.Session
	participants  map[string]domain.Participant
	joinOrder     []string
	helps         map[string]domain.HelpRequest
	helpOrder     []string
}

func newClassroomFold(sessionID int64) *classroomFold {
	return &classroomFold{sessionStream: domain.SessionStream(sessionID),
		participants: map[string]domain.Participant{}, helps: map[string]domain.HelpRequest{}}
}

// apply evolves the aggregate whose stream e belongs to; events of other
// streams naming the session (none today) are ignored.
func (f *classroomFold) apply(e eventstore.Event) error {
	ev, err := domain.DecodeEvent(e.Type, e.Data)
	if err != nil {
		return fmt.Errorf("decode %s at %d: %w", e.Type, e.Position, err)
	}
	switch {
	case e.Stream == f.sessionStream:
		f.session = domain.SessionDecider.Evolve(f.session, ev)
	case strings.HasPrefix(e.Stream, "participant-"):
		p, seen := f.participants[e.Stream]
		if !seen {
			f.joinOrder = append(f.joinOrder, e.Stream)
		}
		f.participants[e.Stream] = domain.ParticipantDecider.Evolve(p, ev)
	case strings.HasPrefix(e.Stream, "help-"):
		h, seen := f.helps[e.Stream]
		if !seen {
			f.helpOrder = append(f.helpOrder, e.Stream)
		}
		f.helps[e.Stream] = domain.HelpDecider.Evolve(h, ev)
	}
	return nil
}

// state writes the fold into st (participants without names and completions).
func (f *classroomFold) state(st *State) (joined []domain.Participant) {
	if f.session.Exists() {
		s := string(f.session.Status())
		st.Status = &s
	}
	if c, ok := f.session.CurrentSubtask(); ok {
		st.CurrentSubtask = &Subtask{ID: c.ID, Title: c.Title, GuideText: c.GuideText,
			VoiceGuideText: domain.SpokenText(c.VoiceGuideText, c.GuideText, c.Title)}
	}
	for _, stream := range f.helpOrder {
		if h := f.helps[stream]; h.Exists() && h.Status().Open() {
			st.OpenHelpRequests = append(st.OpenHelpRequests, HelpState{
				HelpRequestID: h.ID(), UserID: h.UserID(), SubtaskID: h.Subtask().ID, Status: string(h.Status())})
		}
	}
	for _, stream := range f.joinOrder {
		if p := f.participants[stream]; p.Joined() {
			joined = append(joined, p)
		}
	}
	return joined
}

// StateAt folds the classroom's events up to instant at. Position is the
// position of the classroom's last event at or before at (the one that
// occurred last, the highest position among ties), and the fold covers every
// classroom event up to that position (a prefix of the log). Status is nil
// when the session had not been opened yet. A participant's
// completed_subtask_ids are the subtasks of the lecture they had completed by
// at (their progress stream, in or out of this class), in the order they
// completed them.
func (r *Reader) StateAt(ctx context.Context, cl *Classroom, at time.Time) (State, error) {
	at = at.UTC()
	st := State{SessionID: cl.SessionID, At: at, Participants: []ParticipantState{}, OpenHelpRequests: []HelpState{}}
	q, err := r.querier()
	if err != nil {
		return st, err
	}
	head, err := r.head(ctx)
	if err != nil {
		return st, fmt.Errorf("head position: %w", err)
	}
	if err := r.lastPosition(ctx, q, cl, at, head, &st); err != nil || st.Position == 0 {
		return st, err // an error, or the session did not exist yet
	}
	control, err := q.Query(ctx, eventstore.Filter{SessionID: cl.SessionID, ExcludeTypes: controlExcluded, UpTo: st.Position})
	if err != nil {
		return st, fmt.Errorf("read session %d: %w", cl.SessionID, err)
	}
	fold := newClassroomFold(cl.SessionID)
	for _, e := range control {
		if err := fold.apply(e); err != nil {
			return st, err
		}
	}
	joined := fold.state(&st)
	if len(joined) == 0 {
		return st, nil
	}
	return st, r.participants(ctx, q, cl, at, head, joined, &st)
}

// lastPosition sets st.Position to the position of the classroom's last event
// at or before at: its own, or progress attributed to it without naming it.
func (r *Reader) lastPosition(ctx context.Context, q eventstore.Querier, cl *Classroom, at time.Time, head uint64, st *State) error {
	last, ok, err := q.Latest(ctx, eventstore.Filter{SessionID: cl.SessionID, Until: at, UpTo: head})
	if err != nil {
		return fmt.Errorf("find the last event of session %d at %s: %w", cl.SessionID, at, err)
	}
	if ok {
		st.Position = last.Position
	}
	p, pAt, err := r.lastUnnamedProgress(ctx, q, cl, at, head)
	if err != nil {
		return err
	}
	if p != 0 && (!ok || pAt.After(last.OccurredAt) || (pAt.Equal(last.OccurredAt) && p > st.Position)) {
		st.Position = p
	}
	return nil
}

// participants names the joined participants and lists what each had
// completed by at.
func (r *Reader) participants(ctx context.Context, q eventstore.Querier, cl *Classroom, at time.Time, head uint64, joined []domain.Participant, st *State) error {
	users := make([]int64, len(joined))
	for i, p := range joined {
		users[i] = p.UserID()
	}
	names, err := r.names(ctx, users)
	if err != nil {
		return err
	}
	done, err := completions(ctx, q, cl.LectureID, users, at, head)
	if err != nil {
		return err
	}
	status := domain.SessionStatus("")
	if st.Status != nil {
		status = domain.SessionStatus(*st.Status)
	}
	for _, p := range joined {
		ids := done[p.UserID()]
		if ids == nil {
			ids = []int64{}
		}
		st.Participants = append(st.Participants, ParticipantState{
			UserID: p.UserID(), Name: names[p.UserID()], Status: string(domain.DisplayStatus(p.Disconnected(), status)), CompletedSubtaskIDs: ids,
		})
	}
	return nil
}

// lastUnnamedProgress is the position and time of the last progress event
// attributed to the classroom without naming it that occurred by at (0: none).
func (r *Reader) lastUnnamedProgress(ctx context.Context, q eventstore.Querier, cl *Classroom, at time.Time, head uint64) (uint64, time.Time, error) {
	if cl.startPos == 0 || len(cl.joins) == 0 {
		return 0, time.Time{}, nil
	}
	hi := head
	if cl.endPos != 0 {
		hi = min(hi, cl.endPos)
	}
	if hi <= cl.startPos {
		return 0, time.Time{}, nil
	}
	evs, err := q.Query(ctx, eventstore.Filter{LectureID: cl.LectureID, Types: progressTypes, NoSession: true, After: cl.startPos, UpTo: hi, Until: at,
		Fields: []string{"user_id", "session_id"}})
	if err != nil {
		return 0, time.Time{}, fmt.Errorf("read lecture %d progress: %w", cl.LectureID, err)
	}
	var best *eventstore.Event
	for i := range evs {
		e := &evs[i]
		var d struct {
			UserID    int64 `json:"user_id"`
			SessionID int64 `json:"session_id"`
		}
		if json.Unmarshal(e.Data, &d) != nil || d.SessionID != 0 || !cl.attributed(d.UserID, e.Position) {
			continue
		}
		if best == nil || !e.OccurredAt.Before(best.OccurredAt) {
			best = e
		}
	}
	if best == nil {
		return 0, time.Time{}, nil
	}
	return best.Position, best.OccurredAt, nil
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
func completions(ctx context.Context, q eventstore.Querier, lectureID int64, users []int64, at time.Time, head uint64) (map[int64][]int64, error) {
	streams := make([]string, len(users))
	for i, u := range users {
		streams[i] = domain.ProgressStream(lectureID, u)
	}
	evs, err := q.Query(ctx, eventstore.Filter{Streams: streams, Types: []string{domain.SubtaskCompleted{}.EventType()}, Until: at, UpTo: head,
		Fields: []string{"user_id", "subtask_id"}})
	if err != nil {
		return nil, fmt.Errorf("read completions in lecture %d: %w", lectureID, err)
	}
	out := map[int64][]int64{}
	for _, e := range evs {
		var d struct {
			UserID    int64 `json:"user_id"`
			SubtaskID int64 `json:"subtask_id"`
		}
		if err := json.Unmarshal(e.Data, &d); err != nil {
			return nil, fmt.Errorf("decode %s at %d: %w", e.Type, e.Position, err)
		}
		if !slices.Contains(out[d.UserID], d.SubtaskID) {
			out[d.UserID] = append(out[d.UserID], d.SubtaskID)
		}
	}
	return out, nil
}
