package readapi_test

import (
	"context"
	"fmt"
	"testing"

	"github.com/lockstep/lockstep/cmd/lockstep/app/apptest"
	"github.com/lockstep/lockstep/domain"
)

// A student whose join was answered connects before the read models show
// the join (the projector lags under load): the socket is still accepted,
// because the participant's stream says they joined. Someone who never
// joined is still refused.
func TestStudentSocketAcceptedBeforeTheReadModelShowsTheJoin(t *testing.T) {
	t.Parallel()
	srv := apptest.Start(t)
	cl := newClassroom(t, srv, 2)
	sess := cl.open(t)
	users := srv.FastUsers(t, domain.RoleStudent, "김학생", 2)
	joined, stranger := users[0], users[1]
	apptest.Must(t, srv.Post(t, fmt.Sprintf("/api/sessions/%d/join", sess.SessionID), joined.Token, map[string]any{"session_code": sess.SessionCode}), 201)

	// Make the read model lag: it no longer shows the participant.
	tag, err := srv.DB.Pool.Exec(context.Background(), `DELETE FROM session_participants WHERE session_id = $1 AND user_id = $2`, sess.SessionID, joined.ID)
	if err != nil || tag.RowsAffected() != 1 {
		t.Fatalf("delete participant row: %v (%d rows)", err, tag.RowsAffected())
	}

	path := fmt.Sprintf("/ws/session/%d/student/", sess.SessionID)
	s := mustDial(t, srv, path, joined.Token)
	s.Expect(t, "session_state")
	s.Close()

	refused := mustDial(t, srv, path, stranger.Token)
	if code := refused.CloseCode(t); code != 4403 {
		t.Fatalf("a student who never joined got close %d, want 4403", code)
	}
}
