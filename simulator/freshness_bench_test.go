package simulator_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/lockstep/lockstep/cmd/lockstep/app/apptest"
	"github.com/lockstep/lockstep/simulator"
)

// loopbackClient is an HTTP client whose connections leave from their own
// loopback address (127.1.x.y), as a real student's phone would come from
// its own address: per-address limits and the kernel's per-address tables
// see N clients, not one.
func loopbackClient(i int) *http.Client {
	return loopbackClientFrom(net.IPv4(127, 1, byte(i/250), byte(i%250+1)))
}

// loopbackClientFrom is an HTTP client whose connections leave from ip.
func loopbackClientFrom(ip net.IP) *http.Client {
	d := &net.Dialer{LocalAddr: &net.TCPAddr{IP: ip}, Timeout: 10 * time.Second}
	return &http.Client{Timeout: 60 * time.Second, Transport: &http.Transport{
		Proxy: nil, DialContext: d.DialContext, MaxIdleConnsPerHost: 1, IdleConnTimeout: time.Minute,
	}}
}

// watchSocket reads a socket until it has seen want messages of type typ
// whose data.<statusField> is COMPLETED, and reports when.
type watchSocket struct {
	conn    *websocket.Conn
	seen    atomic.Int64
	done    chan time.Time
	closeMu sync.Mutex
	err     error
}

func openWatch(b *testing.B, url, typ, statusField string) *watchSocket {
	b.Helper()
	conn, _, err := websocket.DefaultDialer.Dial(url, nil)
	if err != nil {
		b.Fatalf("dial %s: %v", url, err)
	}
	w := &watchSocket{conn: conn, done: make(chan time.Time, 1)}
	go func() {
		var want int64 = -1
		for {
			_, data, err := conn.ReadMessage()
			if err != nil {
				w.closeMu.Lock()
				w.err = err
				w.closeMu.Unlock()
				return
			}
			var f struct {
				Type string                     `json:"type"`
				Data map[string]json.RawMessage `json:"data"`
			}
			if json.Unmarshal(data, &f) != nil || f.Type != typ || string(f.Data[statusField]) != `"COMPLETED"` {
				continue
			}
			n := w.seen.Add(1)
			if want = watchTarget.Load(); want > 0 && n == want {
				w.done <- time.Now()
			}
		}
	}()
	return w
}

// watchTarget is how many completions the watchers wait for (set per burst).
var watchTarget atomic.Int64

func burstSize() int {
	if os.Getenv("LOCKSTEP_BENCH_BIG") != "" {
		return 10_000
	}
	return 1000
}

// BenchmarkProgressBurst: N students (1,000; 10,000 with
// LOCKSTEP_BENCH_BIG=1), each from its own loopback address, complete the
// current subtask at the same moment with POST /api/progress/update through
// the production HTTP stack, while the instructor's session socket and the
// lecture dashboard socket are open and read. One op = one burst. Reported:
// the commands' p50/p99/max, commands/s, and freshness — from the burst's
// start until the instructor socket (student_progress) and the dashboard
// socket (progress_update) have shown every completion. The first burst's
// clients connect first (cold-p99-ms); the command figures are those of
// the later bursts, on open keep-alive connections. The raw limit
// beside it: the same N writers each doing one single-row INSERT (its own
// transaction, synchronous commit) through a pool on the same database
// (raw-p99-ms, raw-inserts/s). BUS=memory, one process.
func BenchmarkProgressBurst(b *testing.B) {
	n := burstSize()
	raiseFileLimit(b, 3*n+500)
	srv, students := benchServers(b)
	ctx := context.Background()
	c, err := simulator.Setup(ctx, simulator.Config{Server: srv.URL, StudentServer: students.URL, Students: n, Steps: maxBursts, Accounts: fastAccounts(srv), StepTimeout: time.Minute, Loopback: true})
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()
	if res, err := c.Start(ctx); err != nil || res.Received != n {
		b.Fatalf("start: %v, %d/%d received", err, res.Received, n)
	}
	clients := make([]*http.Client, n)
	for i := range clients {
		clients[i] = loopbackClient(i)
	}
	runBursts(b, srv, c, func(subtaskID int64) (start, end time.Time, took []time.Duration, failed int64) {
		body, _ := json.Marshal(map[string]any{"subtask_id": subtaskID, "status": "COMPLETED"})
		start = time.Now()
		took = make([]time.Duration, n)
		var failures atomic.Int64
		var wg sync.WaitGroup
		for k, s := range c.Students {
			wg.Go(func() {
				req, _ := http.NewRequestWithContext(ctx, http.MethodPost, students.URL+"/api/progress/update", bytes.NewReader(body))
				req.Header.Set("Authorization", "Bearer "+s.Token)
				req.Header.Set("Content-Type", "application/json")
				t0 := time.Now()
				resp, err := clients[k].Do(req)
				took[k] = time.Since(t0)
				if err != nil {
					failures.Add(1)
					return
				}
				_, _ = bytes.NewBuffer(nil).ReadFrom(resp.Body)
				resp.Body.Close()
				if resp.StatusCode != http.StatusOK {
					failures.Add(1)
				}
			})
		}
		wg.Wait()
		return start, time.Now(), took, failures.Load()
	})
}

// maxBursts: the class has this many subtasks, one burst each.
const maxBursts = 10

// runBursts is the measured part of the burst benchmarks: with the
// instructor's session socket and the lecture dashboard socket open and
// read, fire(subtask) sends one burst (every student completes it) and
// returns when it started and ended, each command's time and how many
// failed.
func runBursts(b *testing.B, srv *apptest.Server, c *simulator.Class, fire func(subtaskID int64) (start, end time.Time, took []time.Duration, failed int64)) {
	n := len(c.Students)
	instructor := openWatch(b, srv.WSURL(fmt.Sprintf("/ws/session/%d/instructor/?token=%s", c.SessionID, c.Instructor.Token)), "student_progress", "status")
	defer instructor.conn.Close()
	dashboard := openWatch(b, srv.WSURL(fmt.Sprintf("/ws/dashboard/lecture/%d/?token=%s", c.LectureID, c.Instructor.Token)), "progress_update", "new_status")
	defer dashboard.conn.Close()
	// lat: the bursts on open connections (a phone's, after it joined and
	// read the lesson over keep-alive); cold: the first burst, each student
	// connecting first.
	var lat, cold, fresh, dfresh []time.Duration
	var coldRate float64
	var rates []float64
	i := 0
	defer statementStats(b)()
	for b.Loop() {
		if i >= maxBursts {
			b.Fatalf("at most %d bursts (use -benchtime %dx)", maxBursts, maxBursts)
		}
		sub := c.Subtasks[i]
		i++
		watchTarget.Store(int64(n) * int64(i))
		stopProfile := profileBurst(b, i)
		start, end, took, failed := fire(sub.ID)
		stopProfile()
		elapsed := end.Sub(start)
		if failed > 0 {
			b.Fatalf("burst %d: %d of %d commands failed", i, failed, n)
		}
		if i == 1 {
			cold, coldRate = took, float64(n)/elapsed.Seconds()
		} else {
			lat = append(lat, took...)
			rates = append(rates, float64(n)/elapsed.Seconds())
		}
		if os.Getenv("LOCKSTEP_BENCH_VERBOSE") != "" {
			bl := simulator.Summarize(took)
			b.Logf("burst %d: %d commands in %v, p50 %v p99 %v max %v", i, n, elapsed.Round(time.Millisecond), bl.P50.Round(time.Millisecond), bl.P99.Round(time.Millisecond), bl.Max.Round(time.Millisecond))
		}
		for _, w := range []struct {
			s   *watchSocket
			out *[]time.Duration
			nm  string
		}{{instructor, &fresh, "instructor"}, {dashboard, &dfresh, "dashboard"}} {
			select {
			case at := <-w.s.done:
				*w.out = append(*w.out, at.Sub(start))
			case <-time.After(60 * time.Second):
				w.s.closeMu.Lock()
				err := w.s.err
				w.s.closeMu.Unlock()
				b.Fatalf("burst %d: %s socket showed %d of %d completions after 60 s (socket error: %v)", i, w.nm, w.s.seen.Load(), int64(n)*int64(i), err)
			}
		}
	}
	b.StopTimer()
	if lat == nil { // one burst: it is all there is
		lat, rates = cold, []float64{coldRate}
	}
	raw, rawRate := rawInserts(b, srv, n)
	l := simulator.Summarize(lat)
	b.ReportMetric(msOf(l.P50), "cmd-p50-ms")
	b.ReportMetric(msOf(l.P99), "cmd-p99-ms")
	b.ReportMetric(msOf(l.Max), "cmd-max-ms")
	b.ReportMetric(msOf(simulator.Summarize(cold).P99), "cold-p99-ms")
	var sum float64
	for _, r := range rates {
		sum += r
	}
	b.ReportMetric(sum/float64(len(rates)), "cmds/s")
	b.ReportMetric(msOf(simulator.Summarize(fresh).Max), "instructor-all-ms")
	b.ReportMetric(msOf(simulator.Summarize(dfresh).Max), "dashboard-all-ms")
	b.ReportMetric(msOf(raw.P99), "raw-p99-ms")
	b.ReportMetric(rawRate, "raw-inserts/s")
}

// rawInserts: n concurrent single-row INSERTs, one transaction each.
func rawInserts(b *testing.B, srv *apptest.Server, n int) (simulator.Summary, float64) {
	ctx := context.Background()
	if _, err := srv.DB.Pool.Exec(ctx, `CREATE TABLE IF NOT EXISTS bench_raw_insert (id bigserial PRIMARY KEY, data jsonb NOT NULL)`); err != nil {
		b.Fatal(err)
	}
	took := make([]time.Duration, n)
	var wg sync.WaitGroup
	start := time.Now()
	for k := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			t0 := time.Now()
			if _, err := srv.DB.Pool.Exec(ctx, `INSERT INTO bench_raw_insert (data) VALUES ($1)`, `{"subtask_id": 1, "status": "COMPLETED"}`); err != nil {
				b.Error(err)
			}
			took[k] = time.Since(t0)
		}()
	}
	wg.Wait()
	return simulator.Summarize(took), float64(n) / time.Since(start).Seconds()
}

// profileBurst, with LOCKSTEP_BENCH_PROFILE=DIR, writes CPU and block
// profiles of burst i alone (DIR/burst-<i>.cpu, .block): a whole-run
// profile is mostly the class's set-up.
func profileBurst(b *testing.B, i int) (stop func()) {
	dir := os.Getenv("LOCKSTEP_BENCH_PROFILE")
	if dir == "" {
		return func() {}
	}
	f, err := os.Create(filepath.Join(dir, fmt.Sprintf("burst-%d.cpu", i)))
	if err != nil {
		b.Fatal(err)
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		b.Fatal(err)
	}
	runtime.SetBlockProfileRate(int(time.Millisecond))
	return func() {
		pprof.StopCPUProfile()
		f.Close()
		runtime.SetBlockProfileRate(0)
		bf, err := os.Create(filepath.Join(dir, fmt.Sprintf("burst-%d.block", i)))
		if err != nil {
			b.Fatal(err)
		}
		defer bf.Close()
		if err := pprof.Lookup("block").WriteTo(bf, 0); err != nil {
			b.Fatal(err)
		}
	}
}
