package simulator_test

import (
	"bytes"
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/lockstep/lockstep/cmd/lockstep/app/apptest"
	"github.com/lockstep/lockstep/simulator"
)

// fastAccounts makes accounts without registering them
// (apptest.FastAccounts, with the test servers' key): registration hashes
// passwords, which is slow under -race.
func fastAccounts(srv *apptest.Server) simulator.AccountSource {
	return apptest.FastAccounts(srv.DB.Pool, apptest.Secret, 0)
}

// TestRunWholeClass runs the simulator's core against a real server: 20
// students, 3 steps, no human delays; every student gets every step once,
// in order, and the figures add up.
func TestRunWholeClass(t *testing.T) {
	t.Parallel()
	srv := apptest.Start(t)
	var out bytes.Buffer
	const students, steps = 20, 3
	r, err := simulator.Run(context.Background(), simulator.Config{
		Server: srv.URL, Students: students, Steps: steps, HelpRate: 0.3, LogRate: 0.5, Speed: 0, Seed: 7,
		Timeout: 2 * time.Minute, Out: &out, Accounts: fastAccounts(srv),
	})
	if err != nil {
		t.Fatalf("run: %v\n%s", err, out.String())
	}
	var summary bytes.Buffer
	r.Print(&summary)
	t.Logf("\n%s%s", out.String(), summary.String())
	if !r.OK() {
		t.Fatalf("report not OK: missed %d, duplicated %d, problems %v, HTTP errors %v %v",
			r.Missed, r.Duplicated, r.Problems, r.HTTPErrors, r.ErrorSamples)
	}
	// start + (steps-1) next-steps + end, each to every student.
	if len(r.StepResults) != steps+1 {
		t.Fatalf("%d step results, want %d", len(r.StepResults), steps+1)
	}
	wantKinds := []string{simulator.KindStart, simulator.KindNext, simulator.KindNext, simulator.KindEnd}
	for i, s := range r.StepResults {
		if s.Kind != wantKinds[i] || s.Received != students || len(s.Latencies) != students {
			t.Fatalf("step %d: kind %s, received %d/%d", i, s.Kind, s.Received, s.Expected)
		}
		if s.Latencies[0] <= 0 || s.Last() > time.Minute {
			t.Fatalf("step %d: latencies from %v to %v", i, s.Latencies[0], s.Last())
		}
	}
	if r.Expected != students*(steps+1) || r.Delivered != r.Expected {
		t.Fatalf("delivered %d of %d", r.Delivered, r.Expected)
	}
	lat := r.Latency()
	if lat.Count != students*(steps+1) || !(0 < lat.P50 && lat.P50 <= lat.P99 && lat.P99 <= lat.Max) {
		t.Fatalf("latency summary %+v", lat)
	}
	if last := r.LastStudent(); last.Count != steps+1 || last.Max != lat.Max {
		t.Fatalf("last-student summary %+v, overall max %v", last, lat.Max)
	}
	// Every student reported IN_PROGRESS and COMPLETED for every step.
	if r.ProgressUpdates != 2*students*steps || r.Completed != students*steps {
		t.Fatalf("progress updates %d, completed %d", r.ProgressUpdates, r.Completed)
	}
	if r.HelpRequests == 0 || r.LogBatches == 0 || r.Logs < 2*r.LogBatches || r.HelpUnavailable != "" {
		t.Fatalf("help %d (%q), log batches %d, logs %d", r.HelpRequests, r.HelpUnavailable, r.LogBatches, r.Logs)
	}
	if got := r.InstructorMessages["student_joined"]; got != students {
		t.Fatalf("instructor socket got %d student_joined, want %d", got, students)
	}
	// The server agrees: the session ended with every student completing.
	teacher := r.SessionID
	var current struct {
		Status string `json:"status"`
	}
	admin := srv.Admin(t)
	resp := srv.Get(t, fmt.Sprintf("/api/sessions/%d/current", teacher), admin.Token)
	if resp.Status != 200 {
		t.Fatalf("current: %d %s", resp.Status, resp.Body)
	}
	resp.Decode(t, &current)
	if current.Status != "REVIEW_MODE" {
		t.Fatalf("session status %s", current.Status)
	}
	if strings.Contains(out.String(), "\r") {
		t.Fatalf("carriage returns in output that is not a terminal:\n%q", out.String())
	}
	for _, want := range []string{"1/3 카카오톡 앱 열기", "20/20 got step_changed", "exactly once, in order", "p99", "lockstep replay --session"} {
		if !strings.Contains(out.String()+summary.String(), want) {
			t.Fatalf("output lacks %q:\n%s%s", want, out.String(), summary.String())
		}
	}
}

// TestRunRegistersOverHTTP: without an account source the simulator
// registers and logs in through the API, with unique emails per run.
func TestRunRegistersOverHTTP(t *testing.T) {
	t.Parallel()
	srv := apptest.Start(t)
	for range 2 { // a second run against the same server must not collide
		r, err := simulator.Run(context.Background(), simulator.Config{Server: srv.URL, Students: 2, Steps: 1, Timeout: time.Minute})
		if err != nil {
			t.Fatal(err)
		}
		if !r.OK() || r.Delivered != 2*2 {
			t.Fatalf("report: delivered %d/%d, problems %v, errors %v", r.Delivered, r.Expected, r.Problems, r.HTTPErrors)
		}
	}
}

func TestConfigValidate(t *testing.T) {
	t.Parallel()
	err := simulator.Config{Students: 0, Steps: 1000, HelpRate: 2, LogRate: -1, Speed: -1}.Validate()
	if err == nil {
		t.Fatal("no error")
	}
	for _, want := range []string{"students", "steps", "help rate", "log rate", "speed"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error lacks %q: %v", want, err)
		}
	}
	if err := (simulator.Config{Students: 10, Steps: 3, HelpRate: 0.1, Speed: 1}).Validate(); err != nil {
		t.Fatal(err)
	}
}
