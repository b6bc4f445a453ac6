package simulator_test

import (
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/lockstep/lockstep/simulator"
)

// BenchmarkFanOutElsewhere is BenchmarkFanOut with the students' sockets in
// a child process, each from its own loopback address (127.2.x.y): a
// process may hold only so many descriptors (20,000 here), and a class of
// 10,000 needs two per socket when both ends are in one process. The child
// reports when every socket got a step; one op = one next-step, from the
// HTTP call until the last student's step_changed (the clocks are the same
// machine's). Also reported: the server's peak RSS (this process: the
// server and the instructor). Sizes: 1,000, and 10,000 with
// LOCKSTEP_BENCH_BIG=1. LOCKSTEP_BENCH_STEP_GAP (a duration) pauses before
// each step, as an instructor explaining does: the system is idle when the
// step comes (its pollers backed off).
func BenchmarkFanOutElsewhere(b *testing.B) {
	sizes := []int{1000}
	if os.Getenv("LOCKSTEP_BENCH_BIG") != "" {
		sizes = append(sizes, 10_000)
	}
	for _, n := range sizes {
		b.Run(fmt.Sprintf("students=%d", n), func(b *testing.B) {
			raiseFileLimit(b, n+500)
			gap, err := time.ParseDuration(cmp.Or(os.Getenv("LOCKSTEP_BENCH_STEP_GAP"), "0s"))
			if err != nil {
				b.Fatalf("LOCKSTEP_BENCH_STEP_GAP: %v", err)
			}
			srv, students := benchServers(b)
			ctx := context.Background()
			c, err := simulator.Setup(ctx, simulator.Config{
				Server: srv.URL, StudentServer: students.URL, Students: n, Steps: 2, Accounts: fastAccounts(srv), NoSockets: true,
			})
			if err != nil {
				b.Fatal(err)
			}
			defer c.Close()
			spec := helperSpec{URL: students.WSURL(fmt.Sprintf("/ws/session/%d/student/", c.SessionID)), Steps: true}
			for _, s := range c.Students {
				spec.Tokens = append(spec.Tokens, s.Token)
			}
			stop, steps := openSocketsWatched(b, spec)
			defer stop()
			command := func(action string, body map[string]any) time.Time { return sessionCommand(b, srv.URL, c, action, body) }
			arrived := func(sent time.Time) (first, last time.Duration) {
				select {
				case line, ok := <-steps:
					if !ok {
						b.Fatal("the socket helper stopped")
					}
					f := strings.Fields(line) // STEP position first last
					fn, _ := strconv.ParseInt(f[2], 10, 64)
					ln, _ := strconv.ParseInt(f[3], 10, 64)
					return time.Unix(0, fn).Sub(sent), time.Unix(0, ln).Sub(sent)
				case <-time.After(2 * time.Minute):
					b.Fatal("not every student got the step within 2 minutes")
				}
				return 0, 0
			}
			arrived(command("start", map[string]any{"first_subtask_id": c.Subtasks[0].ID}))
			var lasts, firsts []time.Duration
			i := 0
			for b.Loop() {
				i++
				time.Sleep(gap)
				first, last := arrived(command("next-step", map[string]any{"next_subtask_id": c.Subtasks[i%2].ID}))
				firsts, lasts = append(firsts, first), append(lasts, last)
			}
			l := simulator.Summarize(lasts)
			b.ReportMetric(msOf(l.P50), "last-p50-ms")
			b.ReportMetric(msOf(l.P99), "last-p99-ms")
			b.ReportMetric(msOf(l.Max), "last-max-ms")
			b.ReportMetric(msOf(simulator.Summarize(firsts).P50), "first-p50-ms")
			b.ReportMetric(float64(peakRSS())/(1<<20), "server-peak-rss-MiB")
		})
	}
}

// peakRSS is this process's peak resident set (VmHWM), in bytes.
func peakRSS() int64 {
	data, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(data), "\n") {
		if rest, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			f := strings.Fields(rest)
			if len(f) > 0 {
				kb, _ := strconv.ParseInt(f[0], 10, 64)
				return kb << 10
			}
		}
	}
	return 0
}

// sessionCommand sends the instructor's session command action (start,
// next-step, …) and returns when it was sent.
func sessionCommand(b *testing.B, server string, c *simulator.Class, action string, body map[string]any) time.Time {
	b.Helper()
	data, _ := json.Marshal(body)
	req, _ := http.NewRequestWithContext(context.Background(), http.MethodPost, fmt.Sprintf("%s/api/sessions/%d/%s", server, c.SessionID, action), bytes.NewReader(data))
	req.Header.Set("Authorization", "Bearer "+c.Instructor.Token)
	req.Header.Set("Content-Type", "application/json")
	sent := time.Now()
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		b.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b.Fatalf("%s: HTTP %d", action, resp.StatusCode)
	}
	return sent
}
