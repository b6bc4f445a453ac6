package readapi_test

import (
	"fmt"
	"testing"

	"github.com/twmb/franz-go/pkg/kfake"

	"github.com/lockstep/lockstep/cmd/lockstep/app"
	"github.com/lockstep/lockstep/cmd/lockstep/app/apptest"
	"github.com/lockstep/lockstep/domain"
)

// TestTwoInstances: two servers on one database; commands go to one, sockets
// hang on the other, and pushes cross over through the bus.
func TestTwoInstances(t *testing.T) {
	t.Parallel()
	for _, backend := range []string{"postgres", "kafka"} {
		t.Run(backend, func(t *testing.T) {
			cfg := func(c *app.Config) { c.Bus = backend }
			if backend == "kafka" {
				cluster, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.AllowAutoTopicCreation(), kfake.DefaultNumPartitions(4))
				if err != nil {
					t.Fatalf("kfake: %v", err)
				}
				t.Cleanup(cluster.Close)
				brokers := cluster.ListenAddrs()
				cfg = func(c *app.Config) { c.Bus, c.KafkaBrokers = backend, brokers }
			}
			a := apptest.Start(t, apptest.WithConfig(cfg))
			// B runs no projectors: everything B's sockets get was announced
			// by A and crossed the bus.
			b := apptest.Start(t, apptest.WithDB(a.DB), apptest.WithConfig(func(c *app.Config) { cfg(c); c.Projectors = false }))
			cl := newClassroom(t, a, 3)
			sess := cl.open(t)
			students := a.FastUsers(t, domain.RoleStudent, "학생", 2)
			base := fmt.Sprintf("/api/sessions/%d", sess.SessionID)

			// The instructor watches on A; a student joins through B.
			teacher := mustDial(t, a, fmt.Sprintf("/ws/session/%d/instructor/", sess.SessionID), cl.instructor.Token)
			teacher.Expect(t, "participants")
			apptest.Must(t, b.Post(t, base+"/join", students[0].Token, map[string]any{"session_code": sess.SessionCode}), 201)
			if f := teacher.Expect(t, "student_joined"); f.Position == 0 {
				t.Fatalf("student_joined: %s", f.Raw)
			}

			// The student listens on B; the instructor commands on A.
			apptest.Must(t, a.Post(t, base+"/join", students[1].Token, map[string]any{"session_code": sess.SessionCode}), 201)
			teacher.Expect(t, "student_joined")
			onB := mustDial(t, b, fmt.Sprintf("/ws/session/%d/student/", sess.SessionID), students[1].Token)
			onB.Expect(t, "session_state")
			apptest.Must(t, a.Post(t, base+"/start", cl.instructor.Token, nil), 200)
			onB.Expect(t, "session_started")
			apptest.Must(t, a.Post(t, base+"/next-step", cl.instructor.Token, nil), 200)
			var sc stepChanged
			onB.Expect(t, "step_changed").Decode(t, &sc)
			if sc.CurrentSubtask.ID != cl.subtasks[1].ID {
				t.Fatalf("step_changed on B: %+v", sc)
			}
			// And the other way round.
			apptest.Must(t, b.Post(t, base+"/next-step", cl.instructor.Token, nil), 200)
			onB.Expect(t, "step_changed")
			if c := getCurrent(t, a, sess.SessionID, students[1].Token); c.CurrentSubtask.ID != cl.subtasks[2].ID {
				t.Fatalf("current on A: %+v", c)
			}
		})
	}
}
