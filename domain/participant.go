package domain

import "time"

// ParticipantStatus is a participant's status as the API shows it.
type ParticipantStatus string

// The contract's participant statuses.
const (
	ParticipantStatusWaiting      ParticipantStatus = "WAITING"
	ParticipantStatusActive       ParticipantStatus = "ACTIVE"
	ParticipantStatusDisconnected ParticipantStatus = "DISCONNECTED"
)

// DisplayStatus derives the participant status the API shows from the
// participant's connection and the session's status, so that starting a
// session needs no event on every participant stream:
//
//   - disconnected (ParticipantDisconnected not yet followed by
//     ParticipantReconnected) → DISCONNECTED, whatever the session's status;
//   - otherwise WAITING while the session is WAITING, ACTIVE in every other
//     status (IN_PROGRESS, PAUSED and REVIEW_MODE).
//
// Projections apply the same rule: on SessionStarted every participant of the
// session that is not DISCONNECTED becomes ACTIVE.
func DisplayStatus(disconnected bool, session SessionStatus) ParticipantStatus {
	switch {
	case disconnected:
		return ParticipantStatusDisconnected
	case session == SessionStatusWaiting:
		return ParticipantStatusWaiting
	default:
		return ParticipantStatusActive
	}
}

// Participant is the state of a participant-{sessionId}-{userId} stream. The
// zero value is a user who never joined.
type Participant struct {
	participantID  int64
	sessionID      int64
	lectureID      int64
	userID         int64
	joinedAt       time.Time
	statusAtJoin   ParticipantStatus
	disconnected   bool
	disconnectedAt time.Time
	lastSeenAt     time.Time
}

// Joined reports whether the user has joined the session.
func (p Participant) Joined() bool { return p.participantID != 0 }

// ID is the participant id (0 before joining).
func (p Participant) ID() int64 { return p.participantID }

// SessionID is the session's id.
func (p Participant) SessionID() int64 { return p.sessionID }

// LectureID is the session's lecture.
func (p Participant) LectureID() int64 { return p.lectureID }

// UserID is the participant's user id.
func (p Participant) UserID() int64 { return p.userID }

// JoinedAt is when the user first joined.
func (p Participant) JoinedAt() time.Time { return p.joinedAt }

// StatusAtJoin is WAITING or ACTIVE: the status the join answered with.
func (p Participant) StatusAtJoin() ParticipantStatus { return p.statusAtJoin }

// Disconnected reports whether the participant is disconnected now.
func (p Participant) Disconnected() bool { return p.disconnected }

// DisconnectedAt is when the participant last disconnected.
func (p Participant) DisconnectedAt() time.Time { return p.disconnectedAt }

// LastSeenAt is the last time the server saw the participant's socket, as of
// their last disconnection (zero before any).
func (p Participant) LastSeenAt() time.Time { return p.lastSeenAt }

// Status is the participant's displayed status given the session's status
// (see DisplayStatus).
func (p Participant) Status(session SessionStatus) ParticipantStatus {
	return DisplayStatus(p.disconnected, session)
}

// ParticipantCommand is a command to the participant aggregate.
type ParticipantCommand interface{ participantCommand() }

// JoinSession makes UserID (0 = the actor) a participant. SessionStatus is the
// session's status, looked up by the application. A STUDENT joins as
// themself; an ADMIN may join anyone.
type JoinSession struct {
	Actor         Actor
	At            time.Time
	ParticipantID int64 // allocated by the application
	SessionID     int64
	LectureID     int64
	UserID        int64
	SessionStatus SessionStatus
}

// DisconnectParticipant records that the participant's socket has been gone
// long enough (the application's timer decides). Issued by the server
// (System), an admin, or the participant themself.
type DisconnectParticipant struct {
	Actor         Actor
	At            time.Time
	SessionStatus SessionStatus
	LastSeenAt    time.Time // when the server last saw the socket
}

// ReconnectParticipant records that a disconnected participant is back.
type ReconnectParticipant struct {
	Actor Actor
	At    time.Time
}

func (JoinSession) participantCommand()           {}
func (DisconnectParticipant) participantCommand() {}
func (ReconnectParticipant) participantCommand()  {}

// ParticipantJoined: a user joined a session (first join only).
type ParticipantJoined struct {
	ParticipantID int64             `json:"participant_id"`
	SessionID     int64             `json:"session_id"`
	LectureID     int64             `json:"lecture_id"`
	UserID        int64             `json:"user_id"`
	Status        ParticipantStatus `json:"status"`
	SessionStatus SessionStatus     `json:"session_status"`
	JoinedAt      time.Time         `json:"joined_at"`
}

// ParticipantDisconnected: a participant's socket was gone too long during a live class.
type ParticipantDisconnected struct {
	ParticipantID  int64     `json:"participant_id"`
	SessionID      int64     `json:"session_id"`
	LectureID      int64     `json:"lecture_id"`
	UserID         int64     `json:"user_id"`
	LastActiveAt   time.Time `json:"last_active_at"`
	DisconnectedAt time.Time `json:"disconnected_at"`
}

// ParticipantReconnected: a disconnected participant came back.
type ParticipantReconnected struct {
	ParticipantID int64     `json:"participant_id"`
	SessionID     int64     `json:"session_id"`
	LectureID     int64     `json:"lecture_id"`
	UserID        int64     `json:"user_id"`
	ReconnectedAt time.Time `json:"reconnected_at"`
}

// EventType implements Event.
func (ParticipantJoined) EventType() string { return "ParticipantJoined" }

// EventType implements Event.
func (ParticipantDisconnected) EventType() string { return "ParticipantDisconnected" }

// EventType implements Event.
func (ParticipantReconnected) EventType() string { return "ParticipantReconnected" }

func init() {
	RegisterEvent[ParticipantJoined]()
	RegisterEvent[ParticipantDisconnected]()
	RegisterEvent[ParticipantReconnected]()
}

// ParticipantDecider is the participant aggregate (stream
// participant-{sessionId}-{userId}).
//
// JoinSession: FORBIDDEN unless a STUDENT joining as themself or an ADMIN;
// already joined → no events (in any session status); a first join in
// REVIEW_MODE → INVALID_STATE; a first join in IN_PROGRESS or PAUSED is ACTIVE
// at once, in WAITING it is WAITING.
// DisconnectParticipant: NOT_FOUND before joining; FORBIDDEN unless System,
// ADMIN or the participant; INVALID_STATE unless the session is IN_PROGRESS
// or PAUSED; already disconnected → no events.
// ReconnectParticipant: NOT_FOUND before joining; FORBIDDEN as for
// disconnecting; not disconnected → no events.
var ParticipantDecider = Decider[Participant, ParticipantCommand]{
	Initial: func() Participant { return Participant{} },
	Decide:  decideParticipant,
	Evolve:  evolveParticipant,
}

func decideParticipant(p Participant, c ParticipantCommand) ([]Event, error) {
	switch c := c.(type) {
	case JoinSession:
		return p.join(c)
	case DisconnectParticipant:
		if err := p.guardConnection(c.Actor); err != nil {
			return nil, err
		}
		if !c.SessionStatus.Live() {
			return nil, InvalidState("a participant can only be disconnected during a live class, not in %s", c.SessionStatus)
		}
		if p.disconnected {
			return nil, nil
		}
		return []Event{ParticipantDisconnected{
			ParticipantID: p.participantID, SessionID: p.sessionID, LectureID: p.lectureID, UserID: p.userID,
			LastActiveAt: c.LastSeenAt, DisconnectedAt: c.At,
		}}, nil
	case ReconnectParticipant:
		if err := p.guardConnection(c.Actor); err != nil {
			return nil, err
		}
		if !p.disconnected {
			return nil, nil
		}
		return []Event{ParticipantReconnected{
			ParticipantID: p.participantID, SessionID: p.sessionID, LectureID: p.lectureID, UserID: p.userID,
			ReconnectedAt: c.At,
		}}, nil
	}
	return nil, errInternal("unknown participant command %T", c)
}

func (p Participant) join(c JoinSession) ([]Event, error) {
	user := c.UserID
	if user == 0 {
		user = c.Actor.UserID
	}
	if !c.Actor.IsAdmin() && (c.Actor.Role != RoleStudent || user != c.Actor.UserID) {
		return nil, Forbidden("only students join sessions, as themselves")
	}
	if p.Joined() {
		return nil, nil
	}
	if c.ParticipantID <= 0 || c.SessionID <= 0 || c.LectureID <= 0 || user <= 0 || !c.SessionStatus.Valid() {
		return nil, errInternal("JoinSession without participant, session, lecture or user id, or session status")
	}
	if c.SessionStatus == SessionStatusReviewMode {
		return nil, InvalidState("the session has ended; only its participants may come back to review")
	}
	return []Event{ParticipantJoined{
		ParticipantID: c.ParticipantID, SessionID: c.SessionID, LectureID: c.LectureID, UserID: user,
		Status: DisplayStatus(false, c.SessionStatus), SessionStatus: c.SessionStatus, JoinedAt: c.At,
	}}, nil
}

func (p Participant) guardConnection(a Actor) error {
	if !p.Joined() {
		return NotFound("participant")
	}
	if !a.IsSystem() && !a.IsAdmin() && a.UserID != p.userID {
		return Forbidden("only the server or the participant may change the connection")
	}
	return nil
}

func evolveParticipant(p Participant, ev Event) Participant {
	switch e := ev.(type) {
	case ParticipantJoined:
		p.participantID, p.sessionID, p.lectureID, p.userID = e.ParticipantID, e.SessionID, e.LectureID, e.UserID
		p.joinedAt, p.statusAtJoin = e.JoinedAt, e.Status
	case ParticipantDisconnected:
		p.disconnected, p.disconnectedAt, p.lastSeenAt = true, e.DisconnectedAt, e.LastActiveAt
	case ParticipantReconnected:
		p.disconnected = false
	}
	return p
}
