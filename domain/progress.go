package domain

import (
	"maps"
	"time"
)

// ProgressStatus is a student's status on one subtask.
type ProgressStatus string

// The contract's progress statuses. NOT_STARTED is only ever read, never a
// target of UpdateProgress.
const (
	ProgressStatusNotStarted ProgressStatus = "NOT_STARTED"
	ProgressStatusInProgress ProgressStatus = "IN_PROGRESS"
	ProgressStatusCompleted  ProgressStatus = "COMPLETED"
)

// SubtaskProgress is a student's progress on one subtask.
type SubtaskProgress struct {
	SubtaskID   int64
	TaskID      int64
	Title       string
	Status      ProgressStatus
	StartedAt   time.Time // zero when completed without being started
	CompletedAt time.Time // zero unless completed
}

// Progress is the state of a progress-{lectureId}-{userId} stream: one
// student's enrollment in one lecture and their progress on its subtasks.
// The zero value is "not enrolled".
type Progress struct {
	enrollmentID int64
	lectureID    int64
	userID       int64
	enrolledAt   time.Time
	subtasks     map[int64]SubtaskProgress
}

// Enrolled reports whether the student is enrolled.
func (p Progress) Enrolled() bool { return p.enrollmentID != 0 }

// EnrollmentID is the enrollment's id (0 when not enrolled).
func (p Progress) EnrollmentID() int64 { return p.enrollmentID }

// LectureID is the lecture's id.
func (p Progress) LectureID() int64 { return p.lectureID }

// UserID is the student's user id.
func (p Progress) UserID() int64 { return p.userID }

// EnrolledAt is when the student enrolled.
func (p Progress) EnrolledAt() time.Time { return p.enrolledAt }

// Subtask returns the student's progress on subtaskID; a subtask never
// touched reports NOT_STARTED.
func (p Progress) Subtask(subtaskID int64) SubtaskProgress {
	if sp, ok := p.subtasks[subtaskID]; ok {
		return sp
	}
	return SubtaskProgress{SubtaskID: subtaskID, Status: ProgressStatusNotStarted}
}

// Status is the student's status on subtaskID.
func (p Progress) Status(subtaskID int64) ProgressStatus { return p.Subtask(subtaskID).Status }

// CompletedIDs returns the ids of every subtask the student completed (any
// order is possible; sort if you need one). Removed subtasks are included:
// count against the lecture's plan when computing a completion rate.
func (p Progress) CompletedIDs() []int64 {
	var out []int64
	for id, sp := range p.subtasks {
		if sp.Status == ProgressStatusCompleted {
			out = append(out, id)
		}
	}
	return out
}

// ProgressCommand is a command to the progress aggregate.
type ProgressCommand interface{ progressCommand() }

// Enroll enrolls UserID (0 = the actor) in LectureID. A STUDENT enrolls
// themself; an ADMIN may enroll anyone (joining a session on a student's
// behalf enrolls them). Enrolling again decides no events.
type Enroll struct {
	Actor        Actor
	At           time.Time
	EnrollmentID int64 // allocated by the application
	LectureID    int64
	UserID       int64
	SessionID    int64 // the session whose join enrolled the student, if any
}

// UpdateProgress records the enrolled student's progress on one subtask.
// Status is IN_PROGRESS or COMPLETED. Subtask is looked up by the
// application (zero when there is no such live subtask).
type UpdateProgress struct {
	Actor     Actor
	At        time.Time
	Subtask   SubtaskRef
	Status    ProgressStatus
	SessionID int64 // the live session the student is in, if any
}

func (Enroll) progressCommand()         {}
func (UpdateProgress) progressCommand() {}

// StudentEnrolled: a student enrolled in a lecture.
type StudentEnrolled struct {
	EnrollmentID int64     `json:"enrollment_id"`
	LectureID    int64     `json:"lecture_id"`
	UserID       int64     `json:"user_id"`
	SessionID    int64     `json:"session_id,omitempty"`
	EnrolledAt   time.Time `json:"enrolled_at"`
}

// SubtaskStarted: a student started a subtask.
type SubtaskStarted struct {
	LectureID    int64     `json:"lecture_id"`
	UserID       int64     `json:"user_id"`
	TaskID       int64     `json:"task_id"`
	SubtaskID    int64     `json:"subtask_id"`
	SubtaskTitle string    `json:"subtask_title"`
	SessionID    int64     `json:"session_id,omitempty"`
	StartedAt    time.Time `json:"started_at"`
}

// SubtaskCompleted: a student completed a subtask (possibly without a
// SubtaskStarted before it).
type SubtaskCompleted struct {
	LectureID    int64     `json:"lecture_id"`
	UserID       int64     `json:"user_id"`
	TaskID       int64     `json:"task_id"`
	SubtaskID    int64     `json:"subtask_id"`
	SubtaskTitle string    `json:"subtask_title"`
	SessionID    int64     `json:"session_id,omitempty"`
	CompletedAt  time.Time `json:"completed_at"`
}

// EventType implements Event.
func (StudentEnrolled) EventType() string { return "StudentEnrolled" }

// EventType implements Event.
func (SubtaskStarted) EventType() string { return "SubtaskStarted" }

// EventType implements Event.
func (SubtaskCompleted) EventType() string { return "SubtaskCompleted" }

func init() {
	RegisterEvent[StudentEnrolled]()
	RegisterEvent[SubtaskStarted]()
	RegisterEvent[SubtaskCompleted]()
}

// ProgressDecider is the progress aggregate (stream progress-{lectureId}-{userId}).
//
// Enroll: FORBIDDEN unless a STUDENT enrolling themself or an ADMIN; again → no events.
// UpdateProgress: FORBIDDEN when not enrolled or not the enrolled student
// (an ADMIN may act for them); INVALID_REQUEST for a status other than
// IN_PROGRESS/COMPLETED; NOT_FOUND when the subtask is not in this lecture.
// Starting a started or completed subtask, or completing a completed one,
// decides no events; completing an unstarted subtask decides SubtaskCompleted
// only (its StartedAt stays zero).
var ProgressDecider = Decider[Progress, ProgressCommand]{
	Initial: func() Progress { return Progress{} },
	Decide:  decideProgress,
	Evolve:  evolveProgress,
}

func decideProgress(p Progress, c ProgressCommand) ([]Event, error) {
	switch c := c.(type) {
	case Enroll:
		return p.enroll(c)
	case UpdateProgress:
		return p.update(c)
	}
	return nil, errInternal("unknown progress command %T", c)
}

func (p Progress) enroll(c Enroll) ([]Event, error) {
	user := c.UserID
	if user == 0 {
		user = c.Actor.UserID
	}
	if !c.Actor.IsAdmin() && (c.Actor.Role != RoleStudent || user != c.Actor.UserID) {
		return nil, Forbidden("only students enroll themselves in lectures")
	}
	if p.Enrolled() {
		return nil, nil
	}
	if c.EnrollmentID <= 0 || c.LectureID <= 0 || user <= 0 {
		return nil, errInternal("Enroll without enrollment, lecture or user id")
	}
	return []Event{StudentEnrolled{
		EnrollmentID: c.EnrollmentID, LectureID: c.LectureID, UserID: user,
		SessionID: c.SessionID, EnrolledAt: c.At,
	}}, nil
}

func (p Progress) update(c UpdateProgress) ([]Event, error) {
	if !p.Enrolled() {
		return nil, Forbidden("only students enrolled in the lecture record progress")
	}
	if c.Actor.UserID != p.userID && !c.Actor.IsAdmin() {
		return nil, Forbidden("only the enrolled student records their progress")
	}
	if c.Status != ProgressStatusInProgress && c.Status != ProgressStatusCompleted {
		return nil, Invalid("invalid request", map[string]string{
			"status": "must be IN_PROGRESS or COMPLETED (NOT_STARTED cannot be set)",
		})
	}
	if c.Subtask.ID == 0 || c.Subtask.LectureID != p.lectureID {
		return nil, NotFound("subtask")
	}
	current := p.Status(c.Subtask.ID)
	s := c.Subtask
	switch {
	case current == ProgressStatusCompleted:
		return nil, nil
	case c.Status == ProgressStatusInProgress && current == ProgressStatusInProgress:
		return nil, nil
	case c.Status == ProgressStatusInProgress:
		return []Event{SubtaskStarted{
			LectureID: p.lectureID, UserID: p.userID, TaskID: s.TaskID, SubtaskID: s.ID,
			SubtaskTitle: s.Title, SessionID: c.SessionID, StartedAt: c.At,
		}}, nil
	default:
		return []Event{SubtaskCompleted{
			LectureID: p.lectureID, UserID: p.userID, TaskID: s.TaskID, SubtaskID: s.ID,
			SubtaskTitle: s.Title, SessionID: c.SessionID, CompletedAt: c.At,
		}}, nil
	}
}

func evolveProgress(p Progress, ev Event) Progress {
	switch e := ev.(type) {
	case StudentEnrolled:
		p.enrollmentID, p.lectureID, p.userID, p.enrolledAt = e.EnrollmentID, e.LectureID, e.UserID, e.EnrolledAt
	case SubtaskStarted:
		p.subtasks = maps.Clone(p.subtasks)
		if p.subtasks == nil {
			p.subtasks = map[int64]SubtaskProgress{}
		}
		p.subtasks[e.SubtaskID] = SubtaskProgress{
			SubtaskID: e.SubtaskID, TaskID: e.TaskID, Title: e.SubtaskTitle,
			Status: ProgressStatusInProgress, StartedAt: e.StartedAt,
		}
	case SubtaskCompleted:
		sp := p.Subtask(e.SubtaskID)
		p.subtasks = maps.Clone(p.subtasks)
		if p.subtasks == nil {
			p.subtasks = map[int64]SubtaskProgress{}
		}
		sp.TaskID, sp.Title, sp.Status, sp.CompletedAt = e.TaskID, e.SubtaskTitle, ProgressStatusCompleted, e.CompletedAt
		p.subtasks[e.SubtaskID] = sp
	}
	return p
}
