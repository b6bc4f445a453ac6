package app

import (
	"cmp"
	"context"
	"time"

	"github.com/lockstep/lockstep/commands"
	"github.com/lockstep/lockstep/domain"
	"github.com/lockstep/lockstep/presence"
	"github.com/lockstep/lockstep/projections"
	"github.com/lockstep/lockstep/readapi"
)

// SessionPresenceTimeout is how long a participant of a live session may
// have no student socket open before they become DISCONNECTED (the
// contract's 30 s). Tests shorten it before starting a server.
var SessionPresenceTimeout = 30 * time.Second

// wireSessions wires the live sessions: their commands, the "sessions"
// projector (read models and socket messages), the queries, the session
// sockets, the QR images and the presence tracker.
func (a *App) wireSessions(ctx context.Context) error {
	// The sessions projector alone feeds the session channels; the help
	// feature's student_help_request goes through it.
	a.addProjector(projections.NewSessions(a.announcer).
		WithInstructorMessage("HelpRequested", projections.StudentHelpRequestMessage))

	sessions := commands.NewSessions(commands.SessionsConfig{
		Store: a.store, Pool: a.pool, Waiter: a.group, PublicURL: a.cfg.PublicURL, Logger: a.log,
	})
	sessions.Routes(a.engine, a.authed, a.idem)

	tracker := presence.New(presence.Config{
		Store: a.store, Pool: a.pool, Timeout: cmp.Or(a.cfg.PresenceTimeout, SessionPresenceTimeout), Logger: a.log,
	})
	if a.cfg.API {
		// The presence heartbeat vouches for this instance's sockets.
		a.workers = append(a.workers, tracker.Run)
	}
	(&readapi.SessionQueries{
		Pool: a.pool, PublicURL: a.cfg.PublicURL, Hub: a.hub, Tokens: a.auth.Tokens(), Presence: tracker,
		Lookups:           sessions, // a lookup by code admits the student to join (CONTRACT "Admission")
		Producer:          projections.SessionsProjector,
		StudentsChannel:   projections.SessionStudentsChannel,
		InstructorChannel: projections.SessionInstructorChannel,
		Logger:            a.log,
		Joined: func(ctx context.Context, sessionID, userID int64) (bool, error) {
			evs, err := a.store.ReadStream(ctx, domain.ParticipantStream(sessionID, userID), 0, 1)
			return len(evs) > 0 && evs[0].Type == (domain.ParticipantJoined{}).EventType(), err
		},
	}).Routes(a.engine, a.authed)
	return nil
}
