package commands

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/lockstep/lockstep/domain"
	"github.com/lockstep/lockstep/eventstore"
)

var joinMessages = map[domain.SessionStatus]string{
	domain.SessionStatusWaiting:    "대기실에 입장했습니다. 강사가 수업을 시작할 때까지 기다려주세요.",
	domain.SessionStatusInProgress: "수업에 입장했습니다. 지금 진행 중인 단계부터 함께 따라해보세요.",
	domain.SessionStatusPaused:     "수업에 입장했습니다. 수업이 잠시 멈춰 있습니다.",
	domain.SessionStatusReviewMode: "복습 모드로 입장했습니다.",
}

// JoinSession makes UserID (0: the actor) a participant of a session.
// SessionCode, when not empty, is the session's code as the student typed it
// (matched ignoring case, spaces and hyphens): it admits them.
type JoinSession struct {
	Actor       domain.Actor
	SessionID   int64
	UserID      int64
	SessionCode string
	Meta        eventstore.Metadata
}

// Joined is what JoinSession did.
type Joined struct {
	Participant domain.Participant
	// SessionStatus is the session's status as the read models show it now.
	SessionStatus domain.SessionStatus
	// Created is true for a first join.
	Created bool
}

// JoinSessionHandler handles JoinSession.
type JoinSessionHandler struct{ s *Sessions }

// AdmissionWindow is how long looking a session up by its code admits the
// student to join it (CONTRACT "Admission").
const AdmissionWindow = time.Hour

// Handle joins (the first time) or answers the existing participant, and
// enrolls them in the lecture. A session id alone does not admit: the
// student must be enrolled in the lecture already, have looked the session
// up by its code within AdmissionWindow, or send its code. Refusals:
// NOT_FOUND, FORBIDDEN (not admitted; another user's id), INVALID_STATE.
func (h JoinSessionHandler) Handle(ctx context.Context, cmd JoinSession) (Joined, error) {
	s := h.s
	sess, err := s.loadSession(ctx, cmd.SessionID)
	if err != nil {
		return Joined{}, err
	}
	actor := cmd.Actor
	user := cmd.UserID
	if user == 0 {
		user = actor.UserID
	}
	if err := checkUser(ctx, s.cfg.Pool, actor, user); err != nil {
		return Joined{}, err
	}
	meta := cmd.Meta
	meta.UserID, meta.SessionID, meta.LectureID = actor.UserID, sess.ID(), sess.LectureID()
	stream := domain.ParticipantStream(sess.ID(), user)
	part, _, err := Load(ctx, s.cfg.Store, stream, domain.ParticipantDecider)
	if err != nil {
		return Joined{}, err
	}
	if !part.Joined() {
		if err := s.admit(ctx, actor, sess, user, cmd.SessionCode); err != nil {
			return Joined{}, err
		}
	}
	var participantID int64
	if !part.Joined() {
		if err := s.cfg.Pool.QueryRow(ctx, `SELECT nextval('participant_ids')`).Scan(&participantID); err != nil {
			return Joined{}, fmt.Errorf("allocate participant id: %w", err)
		}
	}
	res, err := Execute(ctx, s.cfg.Store, stream, domain.ParticipantDecider, domain.ParticipantCommand(domain.JoinSession{
		Actor: actor, At: s.now(), ParticipantID: participantID, SessionID: sess.ID(), LectureID: sess.LectureID(),
		UserID: user, SessionStatus: sess.Status(),
	}), meta)
	if err != nil {
		return Joined{}, err
	}
	pos, err := EnrollForSession(ctx, s.cfg.Store, s.cfg.Pool, actor, sess.LectureID(), user, sess.ID(), s.now(), meta)
	if err != nil {
		return Joined{}, err
	}
	s.wait(ctx, max(res.Position, pos))
	// The session may have moved on since it was loaded: show the status as
	// the read model (which the wait above caught up) says.
	sessStatus := sess.Status()
	var now string
	if err := s.cfg.Pool.QueryRow(ctx, `SELECT status FROM live_sessions WHERE session_id = $1`, sess.ID()).Scan(&now); err == nil {
		sessStatus = domain.SessionStatus(now)
	}
	return Joined{Participant: res.State, SessionStatus: sessStatus, Created: len(res.Events) > 0}, nil
}

// admit decides whether user may join sess for the first time (CONTRACT
// "Admission"): the server, an admin and the session's own instructor act
// for others and are not asked; a student is admitted when enrolled in the
// lecture, when they looked the session up by its code within
// AdmissionWindow, or when code is the session's code. Anyone else: FORBIDDEN.
func (s *Sessions) admit(ctx context.Context, actor domain.Actor, sess domain.Session, user int64, code string) error {
	if actor.IsAdmin() || actor.IsSystem() || sess.CanControl(actor) {
		return nil
	}
	if code != "" && domain.NormalizeSessionCode(code) == sess.Code() {
		return nil
	}
	prog, _, err := Load(ctx, s.cfg.Store, domain.ProgressStream(sess.LectureID(), user), domain.ProgressDecider)
	if err != nil {
		return err
	}
	if prog.Enrolled() {
		return nil
	}
	var looked bool
	if err := s.cfg.Pool.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM session_lookups
		WHERE user_id = $1 AND session_id = $2 AND looked_up_at > $3)`, user, sess.ID(), s.now().Add(-AdmissionWindow)).Scan(&looked); err != nil {
		return fmt.Errorf("look up admission of user %d to session %d: %w", user, sess.ID(), err)
	}
	if looked {
		return nil
	}
	return domain.Forbidden("join a session by its code: look it up or send session_code")
}

// RecordLookup records that userID looked sessionID up by its code now (GET
// /api/sessions/{session_code}): it admits them for AdmissionWindow.
func (s *Sessions) RecordLookup(ctx context.Context, userID, sessionID int64) error {
	if userID == 0 {
		return nil
	}
	_, err := s.cfg.Pool.Exec(ctx, `INSERT INTO session_lookups (user_id, session_id, looked_up_at) VALUES ($1, $2, $3)
		ON CONFLICT (user_id, session_id) DO UPDATE SET looked_up_at = EXCLUDED.looked_up_at`, userID, sessionID, s.now())
	if err != nil {
		return fmt.Errorf("record lookup of session %d: %w", sessionID, err)
	}
	return nil
}

// EnrollForSession enrolls userID in lectureID because they joined
// sessionID (joining enrolls implicitly). Enrolling again appends nothing.
// It returns the position of the new event (0 when already enrolled).
func EnrollForSession(ctx context.Context, es eventstore.Store, pool *pgxpool.Pool, actor domain.Actor, lectureID, userID, sessionID int64, at time.Time, meta eventstore.Metadata) (uint64, error) {
	stream := domain.ProgressStream(lectureID, userID)
	prog, _, err := Load(ctx, es, stream, domain.ProgressDecider)
	if err != nil {
		return 0, err
	}
	if prog.Enrolled() {
		return 0, nil
	}
	var enrollmentID int64
	if err := pool.QueryRow(ctx, `SELECT nextval('enrollment_ids')`).Scan(&enrollmentID); err != nil {
		return 0, fmt.Errorf("allocate enrollment id: %w", err)
	}
	res, err := Execute(ctx, es, stream, domain.ProgressDecider, domain.ProgressCommand(domain.Enroll{
		Actor: actor, At: at, EnrollmentID: enrollmentID, LectureID: lectureID, UserID: userID, SessionID: sessionID,
	}), meta)
	if err != nil {
		return 0, fmt.Errorf("enroll user %d in lecture %d: %w", userID, lectureID, err)
	}
	return res.Position, nil
}
