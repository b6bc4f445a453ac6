// Package simulator runs a synthetic Lockstep class against a running
// server: an instructor and N students register, the instructor creates a
// lecture and opens a session, the students join and open their sockets, the
// instructor goes through every step while the students follow, report
// progress with human-like delays, send activity logs and sometimes ask for
// help. It measures the fan-out latency of every step (the instructor's
// HTTP call → each student's message) and checks that every student got
// every step exactly once, in order.
//
// It is both the demo of `lockstep simulate` and the load tool behind the
// fan-out benchmark (Setup, Class.Start, Class.Next).
package simulator

import (
	"context"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"net/http"
	"sync"
	"sync/atomic"
	"time"
)

// Run simulates a whole class and returns its report. The error is for a
// run that could not go on (server unreachable, a refused command); delivery
// problems are in the report (Report.OK).
func Run(ctx context.Context, cfg Config) (*Report, error) {
	cfg.setDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(ctx, cfg.Timeout)
	defer cancel()
	began := time.Now()
	speed := "no delays"
	if cfg.Speed > 0 {
		speed = fmt.Sprintf("speed %g×", cfg.Speed)
	}
	fmt.Fprintf(cfg.Out, "Lockstep class simulation → %s\n  %s, %s, %s, help rate %g, log rate %g\n",
		cfg.Server, plural(cfg.Students, "student", "students"), plural(cfg.Steps, "step", "steps"), speed, cfg.HelpRate, cfg.LogRate)
	c, err := Setup(ctx, cfg)
	if err != nil {
		return nil, err
	}
	defer c.Close()
	r := &Report{Server: cfg.Server, Students: cfg.Students, Steps: cfg.Steps, SessionID: c.SessionID, Setup: time.Since(began)}
	seed := uint64(cfg.Seed)
	if seed == 0 {
		seed = rand.Uint64()
	}
	b := &behaviour{c: c, seed: seed, sem: make(chan struct{}, 64)}

	fmt.Fprintf(cfg.Out, "\n  %-*s %s\n", 28, "step", "delivered to students · fan-out latency │ what the students did")
	for i := range c.Subtasks {
		var res StepResult
		if i == 0 {
			res, err = c.Start(ctx)
		} else {
			res, err = c.Next(ctx, i)
		}
		if err != nil {
			return r.stop(err, c, b, began), err
		}
		r.StepResults = append(r.StepResults, res)
		act := b.step(ctx, res.Index, c.Subtasks[i])
		b.printLine(res, act)
	}
	res, err := c.End(ctx)
	if err != nil {
		return r.stop(err, c, b, began), err
	}
	r.StepResults = append(r.StepResults, res)
	b.printLine(res, nil)
	b.wg.Wait()
	// Give the instructor socket a moment to receive what the last
	// requests caused (its counts are informative, not checked).
	deadline := time.Now().Add(2 * time.Second)
	for c.teacher.count("student_joined") < len(c.Students) && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	return r.finish(c, b, began), nil
}

// behaviour plays the students between two instructor commands.
type behaviour struct {
	c    *Class
	seed uint64
	sem  chan struct{} // bounds concurrent student requests
	wg   sync.WaitGroup

	progress, completed, logBatches, logs, help atomic.Int64
	helpGone                                    atomic.Bool
	helpGoneWhy                                 atomic.Value // string
}

// activity is what the students did during one step.
type activity struct {
	total, completed, help, logs int
	waited                       time.Duration
}

// human is a human delay around median (log-normal), divided by the speed.
func (b *behaviour) human(rng *rand.Rand, median time.Duration) time.Duration {
	if b.c.cfg.Speed <= 0 {
		return 0
	}
	f := math.Exp(0.5 * rng.NormFloat64())
	f = min(max(f, 0.3), 4)
	return time.Duration(float64(median) * f / b.c.cfg.Speed)
}

func sleep(ctx context.Context, d time.Duration) bool {
	if d <= 0 {
		return ctx.Err() == nil
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}

func (b *behaviour) post(ctx context.Context, path, token string, body, out any) error {
	select {
	case b.sem <- struct{}{}:
	case <-ctx.Done():
		return ctx.Err()
	}
	defer func() { <-b.sem }()
	return b.c.api.call(ctx, http.MethodPost, path, token, body, out)
}

// step lets every student who got step i work on subtask sub, and returns
// once all of them completed it or the instructor's patience ran out.
func (b *behaviour) step(ctx context.Context, i int, sub Subtask) *activity {
	c := b.c
	var done sync.WaitGroup
	var completed, help, logs atomic.Int64
	n := 0
	for _, s := range c.Students {
		if _, ok := s.arrival(i); !ok {
			continue
		}
		n++
		done.Add(1)
		b.wg.Add(1)
		rng := rand.New(rand.NewPCG(b.seed, uint64(s.index)<<16|uint64(i)))
		go func() {
			defer b.wg.Done()
			defer done.Done()
			if !sleep(ctx, b.human(rng, time.Second)) {
				return
			}
			if b.post(ctx, "/api/progress/update", s.Token, map[string]any{"subtask_id": sub.ID, "status": "IN_PROGRESS"}, nil) == nil {
				b.progress.Add(1)
			}
			if rng.Float64() < c.cfg.LogRate {
				if !sleep(ctx, b.human(rng, time.Second)) {
					return
				}
				if k, err := b.sendLogs(ctx, rng, s, sub); err == nil {
					logs.Add(1)
					b.logBatches.Add(1)
					b.logs.Add(int64(k))
				}
			}
			if rng.Float64() < c.cfg.HelpRate && !b.helpGone.Load() {
				if !sleep(ctx, b.human(rng, 1500*time.Millisecond)) {
					return
				}
				if b.askHelp(ctx, rng, s, sub) {
					help.Add(1)
				}
			}
			if !sleep(ctx, b.human(rng, 2500*time.Millisecond)) {
				return
			}
			if b.post(ctx, "/api/progress/update", s.Token, map[string]any{"subtask_id": sub.ID, "status": "COMPLETED"}, nil) == nil {
				b.progress.Add(1)
				b.completed.Add(1)
				completed.Add(1)
			}
		}()
	}
	began := time.Now()
	all := make(chan struct{})
	go func() { done.Wait(); close(all) }()
	patience := time.Duration(math.MaxInt64)
	if c.cfg.Speed > 0 {
		patience = time.Duration(float64(15*time.Second) / c.cfg.Speed)
	}
	t := time.NewTimer(patience)
	defer t.Stop()
	select {
	case <-all:
	case <-t.C:
	case <-ctx.Done():
	}
	return &activity{total: n, completed: int(completed.Load()), help: int(help.Load()), logs: int(logs.Load()), waited: time.Since(began)}
}

func (b *behaviour) sendLogs(ctx context.Context, rng *rand.Rand, s *Student, sub Subtask) (int, error) {
	k := 2 + rng.IntN(5)
	entries := make([]map[string]any, k)
	now := time.Now().UTC()
	for j := range entries {
		entries[j] = map[string]any{
			"user_id": s.ID, "session_id": b.c.SessionID, "subtask_id": sub.ID,
			"event_type":  logEvents[rng.IntN(len(logEvents))],
			"event_data":  map[string]any{"x": rng.IntN(1080), "y": rng.IntN(2200), "element": "Button", "text": "확인"},
			"screen_info": map[string]any{"package_name": "com.kakao.talk", "activity_name": "MainActivity", "screen_title": "친구 목록"},
			"timestamp":   now.Add(time.Duration(j-k) * 700 * time.Millisecond).Format(time.RFC3339Nano),
		}
	}
	return k, b.post(ctx, "/api/logs/batch", s.Token, map[string]any{"logs": entries}, nil)
}

// askHelp asks for help; a server without the help feature (404) turns it
// off for the rest of the run.
func (b *behaviour) askHelp(ctx context.Context, rng *rand.Rand, s *Student, sub Subtask) bool {
	err := b.post(ctx, "/api/help/request", s.Token, map[string]any{
		"user_id": s.ID, "subtask_id": sub.ID, "request_type": "MANUAL",
		"context_data": map[string]any{
			"current_screen": "com.kakao.talk.MainActivity", "recent_actions": []string{"CLICK", "SCROLL", "BACK"},
			"stuck_duration_seconds": 20 + rng.IntN(60),
		},
	}, nil)
	var se *statusError
	if errors.As(err, &se) && se.Status == http.StatusNotFound {
		if b.helpGone.CompareAndSwap(false, true) {
			b.helpGoneWhy.Store(se.Body)
		}
		return false
	}
	if err == nil {
		b.help.Add(1)
	}
	return err == nil
}

func (b *behaviour) printLine(res StepResult, act *activity) {
	c := b.c
	label := "end"
	if res.Kind != KindEnd {
		label = fmt.Sprintf("%2d/%d %s", res.Index+1, len(c.Subtasks), res.Title)
	}
	mark := "✓"
	if res.Received < res.Expected {
		mark = "✗"
	}
	line := fmt.Sprintf("  %s %s %d/%d got %s", pad(label, 28), mark, res.Received, res.Expected, kindMessage[res.Kind])
	if res.Received > 0 {
		s := summarize(res.Latencies)
		line += fmt.Sprintf(" · last %s, p50 %s", ms(s.Max), ms(s.P50))
	}
	if act != nil {
		line += fmt.Sprintf(" │ %d/%d done", act.completed, act.total)
		if act.help > 0 {
			line += fmt.Sprintf(", %d asked for help", act.help)
		}
		if act.logs > 0 {
			line += fmt.Sprintf(", %d sent logs", act.logs)
		}
		if c.cfg.Speed > 0 {
			line += fmt.Sprintf(" (%s)", act.waited.Round(100*time.Millisecond))
		}
	}
	fmt.Fprintln(c.cfg.Out, line)
}

// pad pads s to width terminal columns (Hangul and other wide runes take two).
func pad(s string, width int) string {
	w := 0
	for _, r := range s {
		if r >= 0x1100 && (r <= 0x115f || (r >= 0x2e80 && r <= 0xa4cf) || (r >= 0xac00 && r <= 0xd7a3) || (r >= 0xf900 && r <= 0xfaff) || (r >= 0xff00 && r <= 0xff60)) {
			w += 2
		} else {
			w++
		}
	}
	for ; w < width; w++ {
		s += " "
	}
	return s
}
