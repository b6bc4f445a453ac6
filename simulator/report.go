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
	Server    string
	Students  int
	Steps     int
	SessionID int64
	Setup     time.Duration // accounts, lecture, session, joins and sockets
	Duration  time.Duration // the whole run

	// StepResults has one entry per instructor command: start, every next
	// step, end.
	StepResults []StepResult

	// Delivery checks: every student must get every step exactly once, in order.
	Expected   int      // step messages that should have arrived
	Delivered  int      // step messages that arrived, in order
	Missed     int      // expected but never arrived
	Duplicated int      // arrived again (or with a position going down)
	Reconnects int      // sockets that closed mid-class and reconnected with ?after=
	Problems   []string // the first few, per student

	// What the students did.
	ProgressUpdates, Completed, LogBatches, Logs, HelpRequests int
	// HelpUnavailable says why help requests were skipped ("" when they were not).
	HelpUnavailable string

	// InstructorMessages counts the instructor socket's messages by type.
	InstructorMessages map[string]int
	// HTTPErrors counts unexpected answers by request and status.
	HTTPErrors   map[string]int
	ErrorSamples []string
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

// OK reports whether every student got every step exactly once, in order,
// and nothing failed.
func (r *Report) OK() bool {
	return r.Missed == 0 && r.Duplicated == 0 && len(r.Problems) == 0 && len(r.HTTPErrors) == 0
}

// finish collects the delivery checks and the counters.
func (r *Report) finish(c *Class, b *behaviour, began time.Time) *Report {
	r.Duration = time.Since(began)
	sent := c.sentSteps()
	for _, s := range c.Students {
		s.mu.Lock()
		r.Expected += sent
		r.Delivered += len(s.arrivals)
		r.Missed += sent - len(s.arrivals)
		r.Duplicated += s.duplicates
		r.Reconnects += s.reconnects
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

// Print writes the closing summary.
func (r *Report) Print(w io.Writer) {
	lat, last := r.Latency(), r.LastStudent()
	fmt.Fprintf(w, "\nFan-out latency (instructor's HTTP call → each student's message), %d deliveries over %d commands:\n",
		lat.Count, len(r.StepResults))
	fmt.Fprintf(w, "  every delivery:        p50 %-8s p99 %-8s max %s\n", ms(lat.P50), ms(lat.P99), ms(lat.Max))
	fmt.Fprintf(w, "  last student per step: p50 %-8s p99 %-8s max %s\n", ms(last.P50), ms(last.P99), ms(last.Max))

	fmt.Fprintf(w, "\nDelivery: %d/%d step messages", r.Delivered, r.Expected)
	if r.Missed == 0 && r.Duplicated == 0 && len(r.Problems) == 0 {
		fmt.Fprintf(w, " — every student got every step exactly once, in order ✓\n")
	} else {
		fmt.Fprintf(w, "\n  ✗✗✗ DELIVERY PROBLEMS: %d missed, %d duplicated or out of order ✗✗✗\n", r.Missed, r.Duplicated)
		for _, p := range r.Problems {
			fmt.Fprintf(w, "    %s\n", p)
		}
	}
	if r.Reconnects > 0 {
		fmt.Fprintf(w, "  %d sockets closed mid-class and caught up with ?after=\n", r.Reconnects)
	}

	fmt.Fprintf(w, "\nStudents: %d progress updates (%d subtasks completed), %d log batches (%d logs), %d help requests\n",
		r.ProgressUpdates, r.Completed, r.LogBatches, r.Logs, r.HelpRequests)
	if r.HelpUnavailable != "" {
		fmt.Fprintf(w, "  help requests skipped: %s\n", r.HelpUnavailable)
	}
	if len(r.InstructorMessages) > 0 {
		var parts []string
		for _, k := range slices.Sorted(maps.Keys(r.InstructorMessages)) {
			parts = append(parts, fmt.Sprintf("%s %d", k, r.InstructorMessages[k]))
		}
		fmt.Fprintf(w, "Instructor socket: %s\n", strings.Join(parts, ", "))
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
}
