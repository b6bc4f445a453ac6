package commands

import (
	"context"
	"time"

	"github.com/lockstep/lockstep/domain"
	"github.com/lockstep/lockstep/eventstore"
)

// CreateLecture creates a lecture owned by the actor (POST /api/lectures).
type CreateLecture struct {
	Actor                            domain.Actor
	Title, Description, ThumbnailURL string
	Meta                             eventstore.Metadata
}

func (c CreateLecture) toDomain(at time.Time, id int64) domain.CreateLecture {
	return domain.CreateLecture{
		Actor: c.Actor, At: at, LectureID: id,
		Title: c.Title, Description: c.Description, ThumbnailURL: c.ThumbnailURL,
	}
}

// CreateLectureHandler handles CreateLecture.
type CreateLectureHandler struct{ l *Lectures }

// Handle allocates a lecture id and creates the lecture. Refusals: FORBIDDEN
// (not an INSTRUCTOR or ADMIN), INVALID_REQUEST.
func (h CreateLectureHandler) Handle(ctx context.Context, cmd CreateLecture) (domain.Lecture, error) {
	if cmd.Actor.Role != domain.RoleInstructor && !cmd.Actor.IsAdmin() {
		return domain.Lecture{}, domain.Forbidden("only instructors create lectures")
	}
	id, err := h.l.nextID(ctx, "lecture_ids")
	if err != nil {
		return domain.Lecture{}, err
	}
	res, err := h.l.execLecture(ctx, id, cmd.toDomain(h.l.now(), id), cmd.Meta)
	return res.State, err
}

// UpdateLecture changes the fields of a lecture that are not nil.
type UpdateLecture struct {
	Actor                            domain.Actor
	LectureID                        int64
	Title, Description, ThumbnailURL *string
	IsActive                         *bool
	Meta                             eventstore.Metadata
}

func (c UpdateLecture) toDomain(at time.Time) domain.UpdateLecture {
	return domain.UpdateLecture{
		Actor: c.Actor, At: at,
		Title: c.Title, Description: c.Description, ThumbnailURL: c.ThumbnailURL, IsActive: c.IsActive,
	}
}

// UpdateLectureHandler handles UpdateLecture.
type UpdateLectureHandler struct{ l *Lectures }

// Handle updates the lecture. Refusals: NOT_FOUND, FORBIDDEN, INVALID_REQUEST.
func (h UpdateLectureHandler) Handle(ctx context.Context, cmd UpdateLecture) (domain.Lecture, error) {
	res, err := h.l.execLecture(ctx, cmd.LectureID, cmd.toDomain(h.l.now()), cmd.Meta)
	return res.State, err
}

// DeactivateLecture deactivates a lecture (DELETE /api/lectures/{id}).
type DeactivateLecture struct {
	Actor     domain.Actor
	LectureID int64
	Meta      eventstore.Metadata
}

// DeactivateLectureHandler handles DeactivateLecture.
type DeactivateLectureHandler struct{ l *Lectures }

// Handle deactivates the lecture. Refusals: NOT_FOUND, FORBIDDEN.
func (h DeactivateLectureHandler) Handle(ctx context.Context, cmd DeactivateLecture) (domain.Lecture, error) {
	res, err := h.l.execLecture(ctx, cmd.LectureID, domain.DeactivateLecture{Actor: cmd.Actor, At: h.l.now()}, cmd.Meta)
	return res.State, err
}

// Enroll enrolls UserID (0: the actor) in a lecture. SessionID is the
// session whose join enrolls the student (0 for an explicit enrollment); it
// goes into the event and its metadata.
type Enroll struct {
	Actor     domain.Actor
	LectureID int64
	UserID    int64
	SessionID int64
	Meta      eventstore.Metadata
}

// Enrollment is a student's enrollment in a lecture.
type Enrollment struct {
	EnrollmentID int64     `json:"enrollment_id"`
	LectureID    int64     `json:"lecture_id"`
	UserID       int64     `json:"user_id"`
	EnrolledAt   time.Time `json:"enrolled_at"`
	// Position is the global position of the StudentEnrolled event (0 when
	// the student was already enrolled); the read models reflect it on return.
	Position uint64 `json:"-"`
}

// Enrolled is what Enroll did.
type Enrolled struct {
	Enrollment
	// Created is false when the student was already enrolled: the
	// enrollment is then the existing one and no event was appended.
	Created bool
}

// EnrollHandler handles Enroll.
type EnrollHandler struct{ l *Lectures }

// Handle enrolls the student. An explicit enrollment (SessionID 0) in an
// inactive lecture is NOT_FOUND unless the actor may see inactive lectures
// (its owner, ANALYST, ADMIN); a session join enrolls whatever the lecture's
// state. Other refusals: INVALID_REQUEST (a user_id that is no user, asked
// by an ADMIN), NOT_FOUND (no such lecture), FORBIDDEN (not a STUDENT
// enrolling themself, nor an ADMIN). The command's meta is completed with
// the lecture, session and acting user.
func (h EnrollHandler) Handle(ctx context.Context, cmd Enroll) (Enrolled, error) {
	l, actor := h.l, cmd.Actor
	if err := checkUser(ctx, l.cfg.Pool, actor, cmd.UserID); err != nil {
		return Enrolled{}, err
	}
	lec, err := l.LoadLecture(ctx, cmd.LectureID)
	if err != nil {
		return Enrolled{}, err
	}
	if !lec.Exists() {
		return Enrolled{}, domain.NotFound("lecture")
	}
	if cmd.SessionID == 0 && !lec.IsActive() && !CanSeeInactiveLecture(actor, lec.InstructorID()) {
		return Enrolled{}, domain.NotFound("lecture")
	}
	userID := cmd.UserID
	if userID == 0 {
		userID = actor.UserID
	}
	stream := domain.ProgressStream(cmd.LectureID, userID)
	enroll := domain.Enroll{Actor: actor, At: l.now(), LectureID: cmd.LectureID, UserID: userID, SessionID: cmd.SessionID}
	state, _, err := Load(ctx, l.cfg.Store, stream, domain.ProgressDecider)
	if err != nil {
		return Enrolled{}, err
	}
	// Already enrolled: the decider still rules on who may ask (FORBIDDEN).
	if state.Enrolled() {
		if _, err := domain.ProgressDecider.Decide(state, enroll); err != nil {
			return Enrolled{}, err
		}
		return Enrolled{Enrollment: enrollmentOf(state, 0)}, nil
	}
	if enroll.EnrollmentID, err = l.nextID(ctx, "enrollment_ids"); err != nil {
		return Enrolled{}, err
	}
	meta := cmd.Meta
	if meta.UserID == 0 {
		meta.UserID = actor.UserID
	}
	meta.LectureID = cmd.LectureID
	if cmd.SessionID != 0 {
		meta.SessionID = cmd.SessionID
	}
	res, err := Execute(ctx, l.cfg.Store, stream, domain.ProgressDecider, domain.ProgressCommand(enroll), meta)
	if err != nil {
		return Enrolled{}, err
	}
	l.wait(ctx, res.Position)
	return Enrolled{Enrollment: enrollmentOf(res.State, res.Position), Created: len(res.Events) > 0}, nil
}

func enrollmentOf(p domain.Progress, position uint64) Enrollment {
	return Enrollment{EnrollmentID: p.EnrollmentID(), LectureID: p.LectureID(), UserID: p.UserID(), EnrolledAt: p.EnrolledAt().UTC(), Position: position}
}
