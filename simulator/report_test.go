package simulator

import (
	"bytes"
	"errors"
	"strings"
	"testing"
	"time"
)

// reportOf builds a class of students whose sockets went as given, finishes
// its report and prints it.
func reportOf(t *testing.T, sent int, students []*Student, stopped error) (*Report, string) {
	t.Helper()
	c := &Class{api: newAPI("http://127.0.0.1:8080", nil, 0), SessionID: 42, SessionCode: "UG8YN4",
		Instructor: Account{Email: "sim-t-1@lockstep.example", Password: "simulated-pass-1"}}
	for i := range sent {
		c.steps = append(c.steps, &step{index: i, kind: KindNext, done: make(chan struct{})})
	}
	for _, s := range students {
		s.class = c
	}
	c.Students = students
	b := &behaviour{c: c}
	b.help.Store(1)
	b.progress.Store(1)
	b.completed.Store(1)
	b.logBatches.Store(1)
	b.logs.Store(1)
	r := (&Report{Server: "http://127.0.0.1:8080", SessionID: 42}).stop(stopped, c, b, time.Now())
	var out bytes.Buffer
	r.Print(&out)
	return r, out.String()
}

func arrived(n int) []time.Time { return make([]time.Time, n) }

func TestReportSaysWhatHappenedToClosedSockets(t *testing.T) {
	t.Parallel()
	t.Run("reopened_and_caught_up", func(t *testing.T) {
		r, text := reportOf(t, 3, []*Student{
			{arrivals: arrived(3), lost: 1, reconnected: 1, lostErr: "close 1006"},
			{arrivals: arrived(3), lost: 1, reconnected: 1},
			{arrivals: arrived(3)},
		}, nil)
		if !r.OK() || r.CaughtUp != 2 || r.Missed != 0 || r.Failure() != "" {
			t.Fatalf("report %+v, failure %q", r, r.Failure())
		}
		for _, want := range []string{"every student got every step exactly once", "2 student sockets closed mid-class (close 1006): 2 reopened with ?after=; 2 students then got every step"} {
			if !strings.Contains(text, want) {
				t.Errorf("report lacks %q:\n%s", want, text)
			}
		}
	})
	t.Run("reopened_but_behind", func(t *testing.T) {
		r, text := reportOf(t, 3, []*Student{{arrivals: arrived(2), lost: 1, reconnected: 1}, {arrivals: arrived(3)}}, nil)
		if r.OK() || r.CaughtUp != 0 || r.Missed != 1 {
			t.Fatalf("report %+v", r)
		}
		if !strings.Contains(text, "1 missed") || strings.Contains(text, "then got every step") || !strings.Contains(r.Failure(), "1 of 6 step messages missed") {
			t.Errorf("report:\n%s\nfailure %q", text, r.Failure())
		}
	})
	t.Run("server_gone", func(t *testing.T) {
		r, text := reportOf(t, 2, []*Student{
			{arrivals: arrived(2), lost: 1, reconnectFailed: 1, down: true, lostErr: "close 1001: server shutting down", reconnectErr: "connection refused"},
			{arrivals: arrived(2), lost: 1, down: true}, // still trying when the run ended
		}, errors.New("instructor: dial tcp 127.0.0.1:8080: connection refused"))
		if r.OK() || r.StudentsDown != 2 || r.Missed != 0 {
			t.Fatalf("report %+v", r)
		}
		for _, want := range []string{
			"✗ The run stopped before the class ended: instructor: dial tcp",
			"missed: unknown for 2 students without a socket",
			"2 student sockets closed mid-class (close 1001: server shutting down): 1 could not reconnect: connection refused; 1 still reconnecting when the run ended",
		} {
			if !strings.Contains(text, want) {
				t.Errorf("report lacks %q:\n%s", want, text)
			}
		}
		if strings.Contains(text, "0 missed") || strings.Contains(text, "caught up") || strings.Contains(text, "then got every step") {
			t.Errorf("report claims what did not happen:\n%s", text)
		}
		if f := r.Failure(); !strings.Contains(f, "stopped before the class ended") || !strings.Contains(f, "2 student sockets closed mid-class and could not reconnect (messages missed: unknown)") || strings.Contains(f, "0 of") {
			t.Errorf("failure %q", f)
		}
	})
}

func TestReportPluralsAndNextSteps(t *testing.T) {
	t.Parallel()
	_, text := reportOf(t, 1, []*Student{{arrivals: arrived(1)}}, nil)
	for _, want := range []string{
		"Students: 1 progress update (1 subtask completed), 1 log batch (1 log), 1 help request\n",
		"the instructor's login:  sim-t-1@lockstep.example / simulated-pass-1",
		"lockstep replay --session 42\n",
		"lockstep replay --session 42 --format messages",
		"GET http://127.0.0.1:8080/api/analytics/sessions/42/state?at=",
	} {
		if !strings.Contains(text, want) {
			t.Errorf("report lacks %q:\n%s", want, text)
		}
	}
	for _, s := range []string{"1 help requests", "1 progress updates", "1 log batches"} {
		if strings.Contains(text, s) {
			t.Errorf("report says %q", s)
		}
	}
	if got := plural(2, "help request", "help requests"); got != "2 help requests" {
		t.Errorf("plural(2) = %q", got)
	}
	if got := plural(0, "help request", "help requests"); got != "0 help requests" {
		t.Errorf("plural(0) = %q", got)
	}
}

// The set-up's progress: a bar redrawn with \r on a terminal, plain lines
// (no \r) otherwise.
func TestProgressOnlyRedrawsOnATerminal(t *testing.T) {
	t.Parallel()
	if got := progressBar("joining", 6, 24, "joined"); got != "    joining [██████░░░░░░░░░░░░░░░░░░] 6/24 joined" {
		t.Errorf("bar %q", got)
	}
	if got := progressBar("joining", 0, 0, "joined"); !strings.Contains(got, "[░░░░░░░░░░░░░░░░░░░░░░░░] 0/0") {
		t.Errorf("empty bar %q", got)
	}
	var out bytes.Buffer
	c := &Class{cfg: Config{Out: &out, Terminal: true}}
	stop := c.progress(func() string { return "bar" })
	time.Sleep(300 * time.Millisecond)
	stop()
	stop() // idempotent
	if s := out.String(); !strings.HasPrefix(s, "\r\x1b[Kbar") || !strings.HasSuffix(s, "\r\x1b[K") || strings.Contains(s, "\n") {
		t.Errorf("terminal output %q", s)
	}
}
