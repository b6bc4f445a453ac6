package commands_test

import (
	"testing"

	"github.com/lockstep/lockstep/cmd/lockstep/app"
	"github.com/lockstep/lockstep/cmd/lockstep/app/apptest"
)

// Two instances control one session. Each keeps the session's folded stream
// between commands; when the other instance moved the session, the kept
// snapshot is stale, and a command decided on it must come out as if the
// stream had been read: refused when the session is paused there, accepted
// when it was resumed there.
func TestSessionControlAcrossInstances(t *testing.T) {
	a := apptest.Start(t)
	b := apptest.Start(t, apptest.WithDB(a.DB), apptest.WithConfig(func(c *app.Config) { c.Projectors = false }))
	f := newFixture(t, a, 3)
	id := f.open(t)
	apptest.MustError(t, a.Post(t, path(id, "start"), f.instructor.Token, nil), 200, "")
	apptest.MustError(t, a.Post(t, path(id, "next-step"), f.instructor.Token, nil), 200, "") // a keeps the session at step 2

	apptest.MustError(t, b.Post(t, path(id, "pause"), f.instructor.Token, nil), 200, "")
	apptest.MustError(t, a.Post(t, path(id, "next-step"), f.instructor.Token, nil), 409, "INVALID_STATE")
	apptest.MustError(t, a.Post(t, path(id, "pause"), f.instructor.Token, nil), 409, "INVALID_STATE")

	apptest.MustError(t, b.Post(t, path(id, "resume"), f.instructor.Token, nil), 200, "")
	r := apptest.MustError(t, a.Post(t, path(id, "next-step"), f.instructor.Token, nil), 200, "")
	if cur, _ := r.JSON(t)["current_subtask"].(map[string]any); cur == nil || cur["id"] != float64(f.subtasks[2]) {
		t.Errorf("next-step after the other instance's pause and resume = %s, want subtask %d", r.Body, f.subtasks[2])
	}
}
