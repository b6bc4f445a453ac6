package commands_test

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/lockstep/lockstep/cmd/lockstep/app/apptest"
	"github.com/lockstep/lockstep/domain"
)

// sessionCode is the code of session id, as its instructor sees it.
func sessionCode(t *testing.T, srv *apptest.Server, id int64) string {
	t.Helper()
	var code string
	if err := srv.DB.Pool.QueryRow(context.Background(), `SELECT code FROM session_codes WHERE session_id = $1`, id).Scan(&code); err != nil {
		t.Fatal(err)
	}
	return code
}

// TestJoinAdmission covers CONTRACT "Admission" through the whole app: a
// session's numeric id alone admits no one (ids are sequential, so they can
// be guessed); being enrolled, having looked the session up by its code
// within the hour, or sending the code in the body does.
func TestJoinAdmission(t *testing.T) {
	srv := apptest.Start(t)
	f := newFixture(t, srv, 2)
	id := f.open(t)
	code := sessionCode(t, srv, id)

	t.Run("guessed_id_is_refused", func(t *testing.T) {
		guesser := user(t, srv, domain.RoleStudent, "추측학생")
		apptest.MustError(t, srv.Post(t, path(id, "join"), guesser.Token, nil), 403, "FORBIDDEN")
		apptest.MustError(t, srv.Post(t, path(id, "join"), guesser.Token, map[string]any{"session_code": "ZZZZZZ"}), 403, "FORBIDDEN")
		// Refused, they were neither joined nor enrolled.
		apptest.MustError(t, srv.Post(t, "/api/progress/update", guesser.Token, map[string]any{"subtask_id": f.subtasks[0], "status": "IN_PROGRESS"}), 403, "FORBIDDEN")
		var n int
		if err := srv.DB.Pool.QueryRow(context.Background(), `SELECT count(*) FROM events WHERE stream = $1`, domain.ParticipantStream(id, guesser.ID)).Scan(&n); err != nil {
			t.Fatal(err)
		}
		if n != 0 {
			t.Fatalf("a refused join appended %d participant events", n)
		}
		// Another session's lookup does not admit to this one.
		other := f.open(t)
		apptest.MustError(t, srv.Get(t, "/api/sessions/"+sessionCode(t, srv, other), guesser.Token), 200, "")
		apptest.MustError(t, srv.Post(t, path(id, "join"), guesser.Token, nil), 403, "FORBIDDEN")
	})

	t.Run("code_in_body", func(t *testing.T) {
		s := user(t, srv, domain.RoleStudent, "코드학생")
		// Matched ignoring case, spaces and hyphens, like the lookup.
		typed := strings.ToLower(code[:3]) + " - " + code[3:]
		apptest.MustError(t, srv.Post(t, path(id, "join"), s.Token, map[string]any{"session_code": typed}), 201, "")
	})

	t.Run("looked_up_by_code", func(t *testing.T) {
		s := user(t, srv, domain.RoleStudent, "조회학생")
		apptest.MustError(t, srv.Get(t, "/api/sessions/"+code, s.Token), 200, "")
		apptest.MustError(t, srv.Post(t, path(id, "join"), s.Token, nil), 201, "")
	})

	t.Run("lookup_older_than_an_hour", func(t *testing.T) {
		s := user(t, srv, domain.RoleStudent, "어제학생")
		apptest.MustError(t, srv.Get(t, "/api/sessions/"+code, s.Token), 200, "")
		if _, err := srv.DB.Pool.Exec(context.Background(), `UPDATE session_lookups SET looked_up_at = looked_up_at - interval '61 minutes' WHERE user_id = $1`, s.ID); err != nil {
			t.Fatal(err)
		}
		apptest.MustError(t, srv.Post(t, path(id, "join"), s.Token, nil), 403, "FORBIDDEN")
		apptest.MustError(t, srv.Get(t, "/api/sessions/"+code, s.Token), 200, "") // looking again admits again
		apptest.MustError(t, srv.Post(t, path(id, "join"), s.Token, nil), 201, "")
	})

	t.Run("enrolled", func(t *testing.T) {
		s := user(t, srv, domain.RoleStudent, "수강학생")
		apptest.MustError(t, srv.Post(t, fmt.Sprintf("/api/lectures/%d/enroll", f.lectureID), s.Token, nil), 201, "")
		apptest.MustError(t, srv.Post(t, path(id, "join"), s.Token, nil), 201, "")
		// A participant coming back needs nothing more.
		apptest.MustError(t, srv.Post(t, path(id, "join"), s.Token, nil), 200, "")
	})
}
