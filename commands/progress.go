package commands

import (
	"context"
	"time"

	"github.com/lockstep/lockstep/domain"
	"github.com/lockstep/lockstep/eventstore"
)

// Progress handles the progress commands of the progress-{lectureId}-{userId}
// streams and serves POST /api/progress/update.
type Progress struct {
	lectures *Lectures
	// snaps keeps each student's folded progress stream between updates.
	snaps *Snapshots[domain.Progress]
	// SessionOf, when set, names the live session a student is in for a
	// lecture (0 when none), so that progress recorded without an explicit
	// session is still attributed to the classroom it happened in.
	SessionOf func(ctx context.Context, lectureID, userID int64) (int64, error)
}

// NewProgress returns the progress commands; they share the lecture commands'
// store, lookup tables, clock and read-model wait.
func NewProgress(lectures *Lectures) *Progress {
	if lectures == nil {
		panic("commands: NewProgress needs the lecture commands")
	}
	return &Progress{lectures: lectures, snaps: NewSnapshots[domain.Progress](maxProgressSnapshots)}
}

// maxProgressSnapshots bounds the kept progress streams (a few hundred
// bytes each): ten classes of ten thousand.
const maxProgressSnapshots = 100_000

// ProgressUpdate is the answer to a progress update: the student's status on
// the subtask after the command, and the subtask that follows it.
type ProgressUpdate struct {
	SubtaskID   int64                 `json:"subtask_id"`
	LectureID   int64                 `json:"lecture_id"`
	Status      domain.ProgressStatus `json:"status"`
	StartedAt   *time.Time            `json:"started_at,omitempty"`
	CompletedAt *time.Time            `json:"completed_at,omitempty"`
	NextSubtask *NextSubtask          `json:"next_subtask"`
	// Position is the global position of the new event (0 when the update
	// changed nothing); the read models reflect it on return.
	Position uint64 `json:"-"`
}

// NextSubtask is the subtask after another one in lecture order.
type NextSubtask struct {
	ID     int64  `json:"id"`
	TaskID int64  `json:"task_id"`
	Title  string `json:"title"`
}

// Update records the actor's progress on a subtask (status IN_PROGRESS or
// COMPLETED). The subtask's lecture is found through the write-side lookup
// table and its stream is folded, so the update never depends on projection
// lag. sessionID is the live session the student is in (0 = unknown; then
// SessionOf is asked). Completing a completed subtask (or starting a started
// one) appends nothing and answers the current state. Refusals: NOT_FOUND (no
// such live subtask), FORBIDDEN (not enrolled), INVALID_REQUEST (status).
func (p *Progress) Update(ctx context.Context, actor domain.Actor, subtaskID int64, status domain.ProgressStatus, sessionID int64, meta eventstore.Metadata) (ProgressUpdate, error) {
	lectureID, err := p.lectures.LectureOfSubtask(ctx, subtaskID)
	if err != nil {
		return ProgressUpdate{}, err
	}
	lec, err := p.lectures.LoadLecture(ctx, lectureID)
	if err != nil {
		return ProgressUpdate{}, err
	}
	st, ok := lec.Subtask(subtaskID)
	if !ok {
		return ProgressUpdate{}, domain.NotFound("subtask")
	}
	if sessionID == 0 && p.SessionOf != nil {
		if sessionID, err = p.SessionOf(ctx, lectureID, actor.UserID); err != nil {
			return ProgressUpdate{}, err
		}
	}
	if meta.UserID == 0 {
		meta.UserID = actor.UserID
	}
	meta.LectureID = lectureID
	if sessionID != 0 {
		meta.SessionID = sessionID
	}
	res, err := ExecuteCached(ctx, p.lectures.cfg.Store, p.snaps, domain.ProgressStream(lectureID, actor.UserID), domain.ProgressDecider,
		domain.ProgressCommand(domain.UpdateProgress{
			Actor: actor, At: p.lectures.now(), Subtask: st.Ref(), Status: status, SessionID: sessionID,
		}), meta)
	if err != nil {
		return ProgressUpdate{}, err
	}
	p.lectures.wait(ctx, res.Position)
	sp := res.State.Subtask(subtaskID)
	out := ProgressUpdate{SubtaskID: subtaskID, LectureID: lectureID, Status: sp.Status, Position: res.Position}
	if !sp.StartedAt.IsZero() {
		t := sp.StartedAt.UTC()
		out.StartedAt = &t
	}
	if !sp.CompletedAt.IsZero() {
		t := sp.CompletedAt.UTC()
		out.CompletedAt = &t
	}
	if next, ok := lec.NextSubtask(subtaskID); ok {
		out.NextSubtask = &NextSubtask{ID: next.ID, TaskID: next.TaskID, Title: next.Title}
	}
	return out, nil
}
