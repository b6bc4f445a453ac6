package simulator

import (
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"
	"time"
)

// Summary is a latency distribution.
type Summary struct {
	Count         int
	P50, P99, Max time.Duration
}

// summarize summarizes sorted latencies (nearest-rank percentiles).
func summarize(sorted []time.Duration) Summary {
	n := len(sorted)
	if n == 0 {
		return Summary{}
	}
	rank := func(p float64) time.Duration {
		i := int(float64(n)*p+0.999999) - 1
		return sorted[min(max(i, 0), n-1)]
	}
	return Summary{Count: n, P50: rank(0.50), P99: rank(0.99), Max: sorted[n-1]}
}

// Summarize is the distribution of any latencies (not necessarily sorted).
func Summarize(d []time.Duration) Summary {
	s := slices.Clone(d)
	slices.Sort(s)
	return summarize(s)
}

// Report is what a simulated class measured.
type Report struct {
	Server      string
	Students    int
	Steps       int
	SessionID   int64
	SessionCode string
	// Instructor is the class's instructor account (to log in as, later).
	Instructor Account
	Setup      time.Duration // accounts, lecture, session, joins and sockets
	Duration   time.Duration // the whole run
	// Stopped says why the run ended before the class did ("" when the
	// instructor got through every step and ended the session).
	Stopped string

	// StepResults has one entry per instructor command: start, every next
	// step, end.
	StepResults []StepResult

	// Delivery checks: every student must get every step exactly once, in order.
	Expected  int // step messages that should have arrived
	Delivered int // step messages that arrived, in order
	// Missed counts the step messages that never arrived at a student whose
	// socket is open at the end. For a student without one (StudentsDown)
	// it is unknown: the server may well have them waiting for ?after=.
	Missed     int
	Duplicated int      // arrived again (or with a position going down)
	Problems   []string // the first few, per student

	// Sockets the server closed mid-class (the student's phone then reopens
	// it with ?after= and must get what it missed).
	SocketsClosed   int    // student sockets that closed mid-class
	Reconnected     int    // of those, reopened with ?after=
	ReconnectFailed int    // reopening attempts that failed
	CaughtUp        int    // students who reopened a socket and then had every step
	StudentsDown    int    // students without an open socket at the end (closed, not reopened)
	CloseReason     string // how a socket closed (the first one)
	ReconnectError  string // why reopening failed (the first failure)

	// What the students did.
	ProgressUpdates, Completed, LogBatches, Logs, HelpRequests int
	// HelpUnavailable says why help requests were skipped ("" when they were not).
	HelpUnavailable string

	// InstructorMessages counts the instructor socket's messages by type.
	InstructorMessages map[string]int
	// InstructorReconnected counts the instructor socket's reopenings with
	// ?after= after it closed mid-class (Config.ReconnectFor).
	InstructorReconnected int
	// HTTPErrors counts unexpected answers by request and status.
	HTTPErrors   map[string]int
	ErrorSamples []string
	// SentAgain counts the requests sent again (Config.Retries) by request
	// and what the previous attempt got ("503", "no answer").
	SentAgain map[string]int
	// Malformed holds retried error answers not in the contract's shape.
	Malformed []string
}

// Latency is the fan-out latency over every delivery of every step: from
// the instructor's HTTP call being sent to a student's message arriving.
func (r *Report) Latency() Summary {
	var all []time.Duration
	for _, s := range r.StepResults {
		all = append(all, s.Latencies...)
	}
	return Summarize(all)
}

// LastStudent is, over the steps, the distribution of the time to the last
// student's message.
func (r *Report) LastStudent() Summary {
	var last []time.Duration
	for _, s := range r.StepResults {
		if s.Received > 0 {
			last = append(last, s.Last())
		}
	}
	return Summarize(last)
}

// OK reports whether the class ran to its end, every student got every step
// exactly once, in order (sockets reopened with ?after= included), and
// nothing failed.
func (r *Report) OK() bool {
	return r.Stopped == "" && r.Missed == 0 && r.Duplicated == 0 && r.StudentsDown == 0 && r.ReconnectFailed == 0 &&
		len(r.Problems) == 0 && len(r.HTTPErrors) == 0 && len(r.Malformed) == 0
}

// Failure says in one line why the run is not OK ("" when it is).
func (r *Report) Failure() string {
	if r.OK() {
		return ""
	}
	var parts []string
	if r.Stopped != "" {
		parts = append(parts, "the run stopped before the class ended: "+r.Stopped)
	}
	if r.StudentsDown > 0 {
		parts = append(parts, fmt.Sprintf("%s closed mid-class and could not reconnect (messages missed: unknown)",
			plural(r.StudentsDown, "student socket", "student sockets")))
	}
	if r.Missed > 0 || r.Duplicated > 0 {
		parts = append(parts, fmt.Sprintf("%d of %d step messages missed, %d duplicated or out of order", r.Missed, r.Expected, r.Duplicated))
	}
	if len(r.Malformed) > 0 {
		parts = append(parts, plural(len(r.Malformed), "error answer", "error answers")+" not in the contract's shape")
	}
	if len(r.HTTPErrors) > 0 {
		n := 0
		for _, v := range r.HTTPErrors {
			n += v
		}
		parts = append(parts, plural(n, "unexpected HTTP answer", "unexpected HTTP answers"))
	}
	if len(parts) == 0 {
		parts = append(parts, plural(len(r.Problems), "delivery problem", "delivery problems"))
	}
	return strings.Join(parts, "; ") + "; see above"
}

// stop records why the run ended early, then finishes the report.
func (r *Report) stop(err error, c *Class, b *behaviour, began time.Time) *Report {
	if err != nil {
		r.Stopped = err.Error()
	}
	return r.finish(c, b, began)
}

// finish collects the delivery checks and the counters. A student whose
// socket is down (closed mid-class, not reopened, perhaps still trying)
// cannot say what it missed: its steps count as expected, not as missed.
func (r *Report) finish(c *Class, b *behaviour, began time.Time) *Report {
	r.Duration = time.Since(began)
	r.SessionCode, r.Instructor = c.SessionCode, c.Instructor
	sent := c.sentSteps()
	for _, s := range c.Students {
		s.mu.Lock()
		r.Expected += sent
		r.Delivered += len(s.arrivals)
		r.Duplicated += s.duplicates
		r.SocketsClosed += s.lost
		r.Reconnected += s.reconnected
		r.ReconnectFailed += s.reconnectFailed
		if r.CloseReason == "" {
			r.CloseReason = s.lostErr
		}
		if r.ReconnectError == "" {
			r.ReconnectError = s.reconnectErr
		}
		switch {
		case s.down:
			r.StudentsDown++
		case s.lost > 0 && len(s.arrivals) == sent:
			r.CaughtUp++
			fallthrough
		default:
			r.Missed += sent - len(s.arrivals)
		}
		for _, p := range s.problems {
			if len(r.Problems) < 20 {
				r.Problems = append(r.Problems, fmt.Sprintf("student %d (%s): %s", s.ID, s.Name, p))
			}
		}
		s.mu.Unlock()
	}
	if c.teacher != nil {
		c.teacher.mu.Lock()
		r.InstructorMessages = maps.Clone(c.teacher.counts)
		r.InstructorReconnected = c.teacher.reconnected
		r.Problems = append(r.Problems, c.teacher.problems...)
		c.teacher.mu.Unlock()
	}
	r.ProgressUpdates, r.Completed = int(b.progress.Load()), int(b.completed.Load())
	r.LogBatches, r.Logs, r.HelpRequests = int(b.logBatches.Load()), int(b.logs.Load()), int(b.help.Load())
	if b.helpGone.Load() {
		why, _ := b.helpGoneWhy.Load().(string)
		r.HelpUnavailable = "POST /api/help/request answered 404 " + why
	}
	c.api.mu.Lock()
	if len(c.api.sentAgain) > 0 {
		r.SentAgain = maps.Clone(c.api.sentAgain)
	}
	r.Malformed = slices.Clone(c.api.malformed)
	if len(c.api.errors) > 0 {
		r.HTTPErrors = maps.Clone(c.api.errors)
		r.ErrorSamples = slices.Clone(c.api.sample)
	}
	c.api.mu.Unlock()
	if r.HelpUnavailable != "" {
		// The skipped feature is not an error of the run.
		for k := range r.HTTPErrors {
			if strings.HasPrefix(k, "POST /api/help/request → 404") {
				delete(r.HTTPErrors, k)
			}
		}
		if len(r.HTTPErrors) == 0 {
			r.HTTPErrors, r.ErrorSamples = nil, nil
		}
	}
	return r
}

// ms prints a latency in milliseconds.
func ms(d time.Duration) string {
	v := float64(d) / float64(time.Millisecond)
	switch {
	case v >= 100:
		return fmt.Sprintf("%.0fms", v)
	case v >= 10:
		return fmt.Sprintf("%.1fms", v)
	}
	return fmt.Sprintf("%.2fms", v)
}

// plural is "1 help request", "2 help requests".
func plural(n int, one, many string) string {
	if n == 1 {
		return "1 " + one
	}
	return fmt.Sprintf("%d %s", n, many)
}

// Print writes the closing summary: what was measured, what went wrong
// (saying what is unknown rather than guessing), and where to look next.
func (r *Report) Print(w io.Writer) {
	if r.Stopped != "" {
		fmt.Fprintf(w, "\n✗ The run stopped before the class ended: %s\n", r.Stopped)
	}
	lat, last := r.Latency(), r.LastStudent()
	fmt.Fprintf(w, "\nFan-out latency (instructor's HTTP call → each student's message), %d deliveries over %d commands:\n",
		lat.Count, len(r.StepResults))
	fmt.Fprintf(w, "  every delivery:        p50 %-8s p99 %-8s max %s\n", ms(lat.P50), ms(lat.P99), ms(lat.Max))
	fmt.Fprintf(w, "  last student per step: p50 %-8s p99 %-8s max %s\n", ms(last.P50), ms(last.P99), ms(last.Max))

	fmt.Fprintf(w, "\nDelivery: %d/%d step messages", r.Delivered, r.Expected)
	switch {
	case r.Missed == 0 && r.Duplicated == 0 && len(r.Problems) == 0 && r.StudentsDown == 0:
		fmt.Fprintf(w, " — every student got every step exactly once, in order ✓\n")
	default:
		missed := fmt.Sprintf("%d missed", r.Missed)
		if r.StudentsDown > 0 {
			missed = fmt.Sprintf("missed: unknown for %s without a socket", plural(r.StudentsDown, "student", "students"))
			if r.Missed > 0 {
				missed += fmt.Sprintf(", %d missed by the others", r.Missed)
			}
		}
		fmt.Fprintf(w, "\n  ✗✗✗ DELIVERY PROBLEMS: %s, %d duplicated or out of order ✗✗✗\n", missed, r.Duplicated)
		for _, p := range r.Problems {
			fmt.Fprintf(w, "    %s\n", p)
		}
	}
	if r.SocketsClosed > 0 {
		line := fmt.Sprintf("  %s closed mid-class", plural(r.SocketsClosed, "student socket", "student sockets"))
		if r.CloseReason != "" {
			line += " (" + r.CloseReason + ")"
		}
		var what []string
		if r.Reconnected > 0 {
			what = append(what, fmt.Sprintf("%d reopened with ?after=", r.Reconnected))
		}
		if r.CaughtUp > 0 {
			what = append(what, fmt.Sprintf("%s then got every step", plural(r.CaughtUp, "student", "students")))
		}
		if r.ReconnectFailed > 0 {
			why := ""
			if r.ReconnectError != "" {
				why = ": " + r.ReconnectError
			}
			what = append(what, fmt.Sprintf("%d could not reconnect%s", r.ReconnectFailed, why))
		}
		if pending := r.StudentsDown - r.ReconnectFailed; pending > 0 {
			what = append(what, fmt.Sprintf("%d still reconnecting when the run ended", pending))
		}
		if len(what) > 0 {
			line += ": " + strings.Join(what, "; ")
		}
		fmt.Fprintln(w, line)
	}

	fmt.Fprintf(w, "\nStudents: %s (%s completed), %s (%s), %s\n",
		plural(r.ProgressUpdates, "progress update", "progress updates"), plural(r.Completed, "subtask", "subtasks"),
		plural(r.LogBatches, "log batch", "log batches"), plural(r.Logs, "log", "logs"), plural(r.HelpRequests, "help request", "help requests"))
	if r.HelpUnavailable != "" {
		fmt.Fprintf(w, "  help requests skipped: %s\n", r.HelpUnavailable)
	}
	if len(r.InstructorMessages) > 0 {
		var parts []string
		for _, k := range slices.Sorted(maps.Keys(r.InstructorMessages)) {
			parts = append(parts, fmt.Sprintf("%s %d", k, r.InstructorMessages[k]))
		}
		fmt.Fprintf(w, "Instructor socket: %s\n", strings.Join(parts, ", "))
		if r.InstructorReconnected > 0 {
			fmt.Fprintf(w, "  closed mid-class and reopened with ?after= %d time(s)\n", r.InstructorReconnected)
		}
	}
	if len(r.SentAgain) > 0 {
		fmt.Fprintf(w, "Sent again (same Idempotency-Key):\n")
		for _, k := range slices.Sorted(maps.Keys(r.SentAgain)) {
			fmt.Fprintf(w, "    %5d × %s\n", r.SentAgain[k], k)
		}
	}
	for _, m := range r.Malformed {
		fmt.Fprintf(w, "✗ error answer not in the contract's shape: %s\n", m)
	}
	if len(r.HTTPErrors) == 0 {
		fmt.Fprintf(w, "HTTP errors: none\n")
	} else {
		fmt.Fprintf(w, "✗ HTTP errors:\n")
		for _, k := range slices.Sorted(maps.Keys(r.HTTPErrors)) {
			fmt.Fprintf(w, "    %5d × %s\n", r.HTTPErrors[k], k)
		}
		for _, s := range r.ErrorSamples {
			fmt.Fprintf(w, "    e.g. %s\n", s)
		}
	}
	fmt.Fprintf(w, "Session %d; set-up %s, whole run %s.\n", r.SessionID, round(r.Setup), round(r.Duration))
	r.printNext(w)
}

// printNext says how to look at the class afterwards.
func (r *Report) printNext(w io.Writer) {
	if r.SessionID == 0 {
		return
	}
	fmt.Fprintf(w, "\nLook at it yourself:\n")
	if r.Instructor.Email != "" {
		login := r.Instructor.Email
		if r.Instructor.Password != "" {
			login += " / " + r.Instructor.Password
		}
		fmt.Fprintf(w, "  the instructor's login:  %s  (POST %s/api/auth/login)\n", login, r.Server)
	}
	fmt.Fprintf(w, "  the classroom's events:  lockstep replay --session %d\n", r.SessionID)
	fmt.Fprintf(w, "  what the phones got:     lockstep replay --session %d --format messages\n", r.SessionID)
	fmt.Fprintf(w, "  the class at an instant: GET %s/api/analytics/sessions/%d/state?at=<RFC 3339 time> (as the instructor)\n", r.Server, r.SessionID)
}
