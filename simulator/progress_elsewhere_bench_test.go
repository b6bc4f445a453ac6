package simulator_test

import (
	"context"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/lockstep/lockstep/simulator"
)

// BenchmarkProgressBurstElsewhere is BenchmarkProgressBurst with the
// students' burst of POST /api/progress/update sent by a child process,
// each from its own loopback address (127.3.x.y) over its own keep-alive
// connection, so that the clients' work is not the server's. This process:
// the server, the instructor and the two instructor sockets whose
// freshness is measured (the clocks are the same machine's). Same metrics
// as BenchmarkProgressBurst. The students' own sockets are not open here: a
// process may hold 20,000 descriptors, and a class of 10,000
// (LOCKSTEP_BENCH_BIG=1) would need 20,000 in the server for their sockets
// and HTTP connections alone.
func BenchmarkProgressBurstElsewhere(b *testing.B) {
	n := burstSize()
	raiseFileLimit(b, n+500) // the server side of the students' connections
	srv, students := benchServers(b)
	ctx := context.Background()
	c, err := simulator.Setup(ctx, simulator.Config{Server: srv.URL, StudentServer: students.URL, Students: n, Steps: maxBursts, Accounts: fastAccounts(srv), NoSockets: true})
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()
	spec := helperSpec{BurstURL: students.URL + "/api/progress/update"}
	for _, s := range c.Students {
		spec.Tokens = append(spec.Tokens, s.Token)
	}
	h := startHelper(b, spec)
	defer h.stop()
	sessionCommand(b, srv.URL, c, "start", map[string]any{"first_subtask_id": c.Subtasks[0].ID})
	runBursts(b, srv, c, func(subtaskID int64) (start, end time.Time, took []time.Duration, failed int64) {
		h.send("BURST " + strconv.FormatInt(subtaskID, 10))
		for {
			select {
			case line, ok := <-h.lines:
				if !ok {
					b.Fatal("the student helper stopped")
				}
				f, ok := strings.CutPrefix(line, "BURST ")
				if !ok {
					continue // a STEP line
				}
				return parseBurst(b, f)
			case <-time.After(5 * time.Minute):
				b.Fatal("the burst did not end within 5 minutes")
			}
		}
	})
}

// parseBurst reads a helper's BURST line (after "BURST ").
func parseBurst(b *testing.B, line string) (start, end time.Time, took []time.Duration, failed int64) {
	f := strings.Fields(line)
	nums := make([]int64, len(f))
	for i, s := range f {
		v, err := strconv.ParseInt(s, 10, 64)
		if err != nil {
			b.Fatalf("helper BURST line: %v", err)
		}
		nums[i] = v
	}
	if len(nums) < 3 {
		b.Fatalf("helper BURST line: %q", line)
	}
	for _, t := range nums[3:] {
		took = append(took, time.Duration(t))
	}
	return time.Unix(0, nums[0]), time.Unix(0, nums[1]), took, nums[2]
}
