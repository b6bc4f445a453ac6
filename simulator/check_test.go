package simulator

import (
	"strings"
	"testing"
	"time"
)

// TestDeliveryChecks: a duplicated, a missed and an out-of-order message
// are each reported, and a clean sequence is not.
func TestDeliveryChecks(t *testing.T) {
	t.Parallel()
	sub := func(id int64) frame {
		var f frame
		f.Data.CurrentSubtask = &struct {
			ID int64 `json:"id"`
		}{id}
		return f
	}
	msg := func(typ string, pos uint64, id int64) frame {
		f := sub(id)
		f.Type, f.Position = typ, pos
		return f
	}
	setup := func() (*Class, *Student) {
		c := &Class{}
		for i, k := range []string{KindStart, KindNext, KindNext, KindEnd} {
			st := &step{index: i, kind: k, subtaskID: int64(10 + i), done: make(chan struct{})}
			if k == KindEnd {
				st.subtaskID = 0
			}
			st.remaining.Store(1)
			c.steps = append(c.steps, st)
		}
		s := &Student{class: c, lastPos: 5}
		c.Students = []*Student{s}
		return c, s
	}
	now := time.Now()

	c, s := setup()
	for _, f := range []frame{msg("session_started", 6, 10), msg("step_changed", 7, 11), msg("session_paused", 8, 0), msg("step_changed", 9, 12), msg("session_ended", 10, 0)} {
		s.handle(f, now)
	}
	if len(s.arrivals) != 4 || s.duplicates != 0 || len(s.problems) != 0 {
		t.Fatalf("clean run: %d arrivals, %d duplicates, %v", len(s.arrivals), s.duplicates, s.problems)
	}
	for i, st := range c.steps {
		select {
		case <-st.done:
		default:
			t.Fatalf("step %d not marked done", i)
		}
	}

	_, s = setup()
	s.handle(msg("session_started", 6, 10), now)
	s.handle(msg("session_started", 6, 10), now) // duplicate
	s.handle(msg("step_changed", 9, 12), now)    // step 2 (subtask 11) missed
	if s.duplicates != 1 || len(s.arrivals) != 1 || len(s.problems) != 2 ||
		!strings.Contains(s.problems[0], "duplicate") || !strings.Contains(s.problems[1], "missed or out of order") {
		t.Fatalf("duplicates %d, arrivals %d, problems %v", s.duplicates, len(s.arrivals), s.problems)
	}

	_, s = setup()
	s.handle(msg("step_changed", 6, 11), now) // before session_started
	if len(s.arrivals) != 0 || len(s.problems) != 1 {
		t.Fatalf("out of order: arrivals %d, problems %v", len(s.arrivals), s.problems)
	}
}
