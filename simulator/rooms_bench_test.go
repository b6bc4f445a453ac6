package simulator_test

import (
	"context"
	"os"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/lockstep/lockstep/simulator"
)

// BenchmarkRooms: many classrooms on one server at once. Every iteration,
// all the rooms' instructors press next-step at the same moment; a room's
// figure is from its next-step to its last student's step_changed (real
// WebSockets, each student from its own loopback address). Reported over
// every room of every iteration: p50/p99/max. LOCKSTEP_BENCH_ROOMS and
// LOCKSTEP_BENCH_ROOM_SIZE set the shape (default 30 rooms × 33 students).
func BenchmarkRooms(b *testing.B) {
	rooms, size := envInt("LOCKSTEP_BENCH_ROOMS", 30), envInt("LOCKSTEP_BENCH_ROOM_SIZE", 33)
	raiseFileLimit(b, 2*rooms*(size+1)+500)
	srv, students := benchServers(b)
	ctx := context.Background()
	classes := make([]*simulator.Class, rooms)
	for i := range classes {
		c, err := simulator.Setup(ctx, simulator.Config{
			Server: srv.URL, StudentServer: students.URL, Students: size, Steps: 2, Accounts: fastAccounts(srv), StepTimeout: time.Minute, Loopback: true,
		})
		if err != nil {
			b.Fatal(err)
		}
		defer c.Close()
		if res, err := c.Start(ctx); err != nil || res.Received != size {
			b.Fatalf("room %d start: %v, %d/%d received", i, err, res.Received, size)
		}
		classes[i] = c
	}
	var last, first, answered []time.Duration
	step := 0
	for b.Loop() {
		step++
		results := make([]simulator.StepResult, rooms)
		errs := make([]error, rooms)
		var wg sync.WaitGroup
		start := make(chan struct{})
		for i, c := range classes {
			wg.Add(1)
			go func() {
				defer wg.Done()
				<-start
				results[i], errs[i] = c.Next(ctx, step%2)
			}()
		}
		close(start)
		wg.Wait()
		for i := range classes {
			if errs[i] != nil {
				b.Fatalf("room %d step %d: %v", i, step, errs[i])
			}
			if results[i].Received != size {
				b.Fatalf("room %d step %d: %d/%d students got it", i, step, results[i].Received, size)
			}
			last = append(last, results[i].Last())
			first = append(first, results[i].Latencies[0])
			answered = append(answered, results[i].Answered)
		}
	}
	s := simulator.Summarize(last)
	b.ReportMetric(msOf(s.P50), "room-last-p50-ms")
	b.ReportMetric(msOf(s.P99), "room-last-p99-ms")
	b.ReportMetric(msOf(s.Max), "room-last-max-ms")
	// Where the time goes: the HTTP answer (the command and its
	// read-your-writes wait) and a room's first student (command,
	// projection, announce) against its last (plus the room's fan-out).
	b.ReportMetric(msOf(simulator.Summarize(answered).P50), "http-p50-ms")
	b.ReportMetric(msOf(simulator.Summarize(first).P50), "first-p50-ms")
	b.ReportMetric(float64(rooms*size), "students")
}

func envInt(name string, def int) int {
	if v, err := strconv.Atoi(os.Getenv(name)); err == nil && v > 0 {
		return v
	}
	return def
}
