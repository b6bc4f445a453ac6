package simulator_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/lockstep/lockstep/cmd/lockstep/app/apptest"
	"github.com/lockstep/lockstep/simulator"
)

// benchSizes are the class sizes of the fan-out benchmarks; 5,000 only with
// LOCKSTEP_BENCH_BIG=1 (its set-up alone takes about a minute on 2 cores).
func benchSizes() []int {
	sizes := []int{100, 1000}
	if os.Getenv("LOCKSTEP_BENCH_BIG") != "" {
		sizes = append(sizes, 5000)
	}
	return sizes
}

// raiseFileLimit lifts the soft open-file limit to the hard one: every
// client and every server socket of the benchmark is a descriptor.
func raiseFileLimit(b *testing.B, need int) {
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		b.Fatal(err)
	}
	if lim.Cur < lim.Max {
		lim.Cur = lim.Max
		if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
			b.Logf("raise open-file limit: %v", err)
		}
	}
	if lim.Cur < uint64(need) {
		b.Skipf("open-file limit %d < %d needed", lim.Cur, need)
	}
}

// BenchmarkFanOut: N students with real WebSockets on loopback, one
// in-process server. One op = one next-step: from the HTTP call being sent
// until the LAST student's step_changed arrived. Reported: the p50/p99 of
// that time over the steps (last-p50-ms, last-p99-ms), of every single
// delivery (each-p50-ms, each-p99-ms), of the first student's message
// (first-p50-ms: command → projection → announce, before the fan-out) and of
// the HTTP answer (http-p50-ms). Clients and server share the CPUs.
func BenchmarkFanOut(b *testing.B) {
	for _, n := range benchSizes() {
		b.Run(fmt.Sprintf("students=%d", n), func(b *testing.B) {
			raiseFileLimit(b, 2*n+500)
			srv, students := benchServers(b)
			ctx := context.Background()
			c, err := simulator.Setup(ctx, simulator.Config{
				Server: srv.URL, StudentServer: students.URL, Students: n, Steps: 2, Accounts: fastAccounts(srv), StepTimeout: time.Minute, Loopback: true,
			})
			if err != nil {
				b.Fatal(err)
			}
			defer c.Close()
			if res, err := c.Start(ctx); err != nil || res.Received != n {
				b.Fatalf("start: %v, %d/%d received", err, res.Received, n)
			}
			var first, last, each, answered []time.Duration
			i := 0
			for b.Loop() {
				i++
				// Back and forth between the two subtasks: any subtask of
				// the lecture may be the next one.
				res, err := c.Next(ctx, i%2)
				if err != nil {
					b.Fatal(err)
				}
				if res.Received != n {
					b.Fatalf("step %d: %d/%d students got it", i, res.Received, n)
				}
				first = append(first, res.Latencies[0])
				last = append(last, res.Last())
				answered = append(answered, res.Answered)
				each = append(each, res.Latencies...)
			}
			l, e := simulator.Summarize(last), simulator.Summarize(each)
			b.ReportMetric(msOf(l.P50), "last-p50-ms")
			b.ReportMetric(msOf(l.P99), "last-p99-ms")
			b.ReportMetric(msOf(e.P50), "each-p50-ms")
			b.ReportMetric(msOf(e.P99), "each-p99-ms")
			// Where the time goes: the first student's message is the
			// command, projection and announce path; the rest is fan-out.
			b.ReportMetric(msOf(simulator.Summarize(first).P50), "first-p50-ms")
			b.ReportMetric(msOf(simulator.Summarize(answered).P50), "http-p50-ms")
		})
	}
}

func msOf(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// BenchmarkMemoryPerConnection: the server's memory growth per connected
// student socket. The students join in-process; their sockets are opened by
// a child process (TestHelperSockets), so that only the server's side is
// measured: Go heap and goroutine stacks in use after a GC (B/conn, split
// into heap-B/conn and stack-B/conn; the process's RSS says little here, as
// the heap reuses what set-up freed).
func BenchmarkMemoryPerConnection(b *testing.B) {
	for _, n := range benchSizes() {
		b.Run(fmt.Sprintf("students=%d", n), func(b *testing.B) {
			raiseFileLimit(b, n+500)
			srv := apptest.Start(b)
			ctx := context.Background()
			c, err := simulator.Setup(ctx, simulator.Config{
				Server: srv.URL, Students: n, Steps: 1, Accounts: fastAccounts(srv), NoSockets: true,
			})
			if err != nil {
				b.Fatal(err)
			}
			defer c.Close()
			spec := helperSpec{URL: srv.WSURL(fmt.Sprintf("/ws/session/%d/student/", c.SessionID))}
			for _, s := range c.Students {
				spec.Tokens = append(spec.Tokens, s.Token)
			}
			for b.Loop() {
				before := serverMemory()
				stop := openSocketsElsewhere(b, spec)
				after := serverMemory()
				stop()
				// Let the closed sockets' goroutines end before the next round.
				for deadline := time.Now().Add(15 * time.Second); runtime.NumGoroutine() > before.goroutines+10 && time.Now().Before(deadline); {
					time.Sleep(20 * time.Millisecond)
				}
				b.ReportMetric(float64(after.heap-before.heap+after.stack-before.stack)/float64(n), "B/conn")
				b.ReportMetric(float64(after.heap-before.heap)/float64(n), "heap-B/conn")
				b.ReportMetric(float64(after.stack-before.stack)/float64(n), "stack-B/conn")
				b.ReportMetric(float64(after.goroutines-before.goroutines)/float64(n), "goroutines/conn")
			}
		})
	}
}

type memory struct {
	heap, stack int64
	goroutines  int
}

func serverMemory() memory {
	runtime.GC()
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return memory{heap: int64(m.HeapInuse), stack: int64(m.StackInuse), goroutines: runtime.NumGoroutine()}
}

type helperSpec struct {
	// URL: the student socket each token opens ("": none).
	URL    string   `json:"url"`
	Tokens []string `json:"tokens"`
	// Steps: report each step_changed (and session_started) once every socket got it, as
	// "STEP <position> <first arrival> <last arrival>" (Unix nanoseconds);
	// the sockets leave from their own loopback addresses.
	Steps bool `json:"steps"`
	// BurstURL: on each stdin line "BURST <subtask id>", every student
	// POSTs {"subtask_id", "status": "COMPLETED"} there at once, each from
	// its own loopback address (127.3.x.y) over its own keep-alive
	// connection, and the helper prints "BURST <start> <end> <failed>
	// <latency>…" (Unix nanoseconds; latencies in nanoseconds).
	BurstURL string `json:"burst_url"`
}

// openSocketsElsewhere starts the helper process, waits until it has every
// socket open (each got its session_state) and the server counts them, and
// returns a function that closes them.
func openSocketsElsewhere(b *testing.B, spec helperSpec) (stop func()) {
	h := startHelper(b, spec)
	return h.stop
}

// helper is the child process of the Elsewhere benchmarks.
type helper struct {
	stop func()
	// lines: its STEP and BURST lines.
	lines <-chan string
	// send writes a line to its stdin.
	send func(line string)
}

// openSocketsWatched is openSocketsElsewhere that also hands over the
// helper's STEP lines (spec.Steps).
func openSocketsWatched(b *testing.B, spec helperSpec) (stop func(), steps <-chan string) {
	h := startHelper(b, spec)
	return h.stop, h.lines
}

// startHelper starts the helper process and waits until it has every socket
// open (each got its session_state) and the server counts them.
func startHelper(b *testing.B, spec helperSpec) helper {
	b.Helper()
	f, err := os.CreateTemp(b.TempDir(), "spec-*.json")
	if err != nil {
		b.Fatal(err)
	}
	if err := json.NewEncoder(f).Encode(spec); err != nil {
		b.Fatal(err)
	}
	f.Close()
	cmd := exec.Command(os.Args[0], "-test.run=^TestHelperSockets$", "-test.v")
	cmd.Env = append(os.Environ(), "LOCKSTEP_SOCKETS_SPEC="+f.Name())
	cmd.Stderr = os.Stderr
	stdin, err := cmd.StdinPipe()
	if err != nil {
		b.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		b.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	ready := make(chan string, 1)
	stepLines := make(chan string, 1024)
	go func() {
		defer close(stepLines)
		sc := bufio.NewScanner(stdout)
		sc.Buffer(make([]byte, 1<<20), 1<<24)
		for sc.Scan() {
			if strings.HasPrefix(sc.Text(), "SOCKETS ") {
				ready <- sc.Text()
			} else if strings.HasPrefix(sc.Text(), "STEP ") || strings.HasPrefix(sc.Text(), "BURST ") {
				stepLines <- sc.Text()
			} else if !strings.HasPrefix(sc.Text(), "=== RUN") {
				fmt.Fprintln(os.Stderr, "helper:", sc.Text())
			}
		}
		close(ready)
		_, _ = io.Copy(io.Discard, stdout)
	}()
	select {
	case line, ok := <-ready:
		if !ok || line != fmt.Sprintf("SOCKETS %d", len(spec.Tokens)) {
			_ = cmd.Process.Kill()
			_ = cmd.Wait()
			b.Fatalf("helper: %q", line)
		}
	case <-time.After(5 * time.Minute):
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		b.Fatal("helper did not open its sockets within 5 minutes")
	}
	return helper{
		stop: func() {
			stdin.Close()
			_ = cmd.Wait()
		},
		lines: stepLines,
		send: func(line string) {
			if _, err := io.WriteString(stdin, line+"\n"); err != nil {
				b.Fatalf("helper: %v", err)
			}
		},
	}
}

// TestHelperSockets is not a test: it is the child process of
// BenchmarkMemoryPerConnection, which opens the sockets the spec names,
// prints "SOCKETS n" once each got its first message, and holds them open
// until its stdin closes.
func TestHelperSockets(t *testing.T) {
	path := os.Getenv("LOCKSTEP_SOCKETS_SPEC")
	if path == "" {
		t.Skip("helper process of BenchmarkMemoryPerConnection; runs only when it starts it")
	}
	var spec helperSpec
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(data, &spec); err != nil {
		t.Fatal(err)
	}
	var lim syscall.Rlimit
	if syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim) == nil {
		lim.Cur = lim.Max
		_ = syscall.Setrlimit(syscall.RLIMIT_NOFILE, &lim)
	}
	d := websocket.Dialer{HandshakeTimeout: time.Minute, ReadBufferSize: 1024, WriteBufferSize: 256}
	conns := make([]*websocket.Conn, len(spec.Tokens))
	if spec.URL == "" { // no sockets: the students only send bursts
		conns = nil
	}
	var wg sync.WaitGroup
	sem := make(chan struct{}, 32)
	errs := make(chan error, len(spec.Tokens))
	for i, tok := range spec.Tokens[:len(conns)] {
		wg.Add(1)
		go func() {
			defer wg.Done()
			sem <- struct{}{}
			defer func() { <-sem }()
			dd := d
			if spec.Steps {
				dd.NetDialContext = (&net.Dialer{LocalAddr: &net.TCPAddr{IP: net.IPv4(127, 2, byte(i/250), byte(i%250+1))}}).DialContext
			}
			conn, _, err := dd.Dial(spec.URL+"?token="+tok, nil)
			if err != nil {
				errs <- err
				return
			}
			if _, _, err := conn.ReadMessage(); err != nil { // session_state
				errs <- err
				return
			}
			conns[i] = conn
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatalf("socket: %v", err)
	}
	arrivals := newArrivals(len(conns))
	for _, c := range conns {
		go func() { // keep answering pings
			for {
				_, data, err := c.ReadMessage()
				if err != nil {
					return
				}
				if spec.Steps {
					arrivals.add(data, time.Now())
				}
			}
		}()
	}
	fmt.Printf("SOCKETS %d\n", len(spec.Tokens))
	in := bufio.NewScanner(os.Stdin)
	var clients []*http.Client
	for in.Scan() {
		subtask, ok := strings.CutPrefix(in.Text(), "BURST ")
		if !ok || spec.BurstURL == "" {
			continue
		}
		if clients == nil {
			clients = make([]*http.Client, len(spec.Tokens))
			for i := range clients {
				clients[i] = loopbackClientFrom(net.IPv4(127, 3, byte(i/250), byte(i%250+1)))
			}
		}
		fmt.Println(burst(spec.BurstURL, subtask, spec.Tokens, clients))
	}
	for _, c := range conns {
		c.Close()
	}
}

// burst is the helper's BURST: every token POSTs a completion of subtask
// at once; it returns the BURST line.
func burst(url, subtask string, tokens []string, clients []*http.Client) string {
	body := []byte(`{"subtask_id": ` + subtask + `, "status": "COMPLETED"}`)
	took := make([]int64, len(tokens))
	var failed atomic.Int64
	var wg sync.WaitGroup
	start := time.Now()
	for i, tok := range tokens {
		wg.Go(func() {
			req, _ := http.NewRequest(http.MethodPost, url, bytes.NewReader(body))
			req.Header.Set("Authorization", "Bearer "+tok)
			req.Header.Set("Content-Type", "application/json")
			t0 := time.Now()
			resp, err := clients[i].Do(req)
			if err == nil {
				_, _ = io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if resp.StatusCode != http.StatusOK {
					err = fmt.Errorf("HTTP %d", resp.StatusCode)
				}
			}
			took[i] = int64(time.Since(t0))
			if err != nil {
				failed.Add(1)
			}
		})
	}
	wg.Wait()
	end := time.Now()
	var line strings.Builder
	fmt.Fprintf(&line, "BURST %d %d %d", start.UnixNano(), end.UnixNano(), failed.Load())
	for _, t := range took {
		fmt.Fprintf(&line, " %d", t)
	}
	return line.String()
}

// arrivals counts a step's step_changed over the helper's sockets and prints
// its STEP line once all of them got it.
type arrivals struct {
	mu    sync.Mutex
	n     int
	steps map[uint64]*stepArrival
}

type stepArrival struct {
	count       int
	first, last time.Time
}

func newArrivals(n int) *arrivals { return &arrivals{n: n, steps: map[uint64]*stepArrival{}} }

func (a *arrivals) add(frame []byte, at time.Time) {
	var m struct {
		Type     string `json:"type"`
		Position uint64 `json:"position"`
	}
	if json.Unmarshal(frame, &m) != nil || (m.Type != "step_changed" && m.Type != "session_started") {
		return
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	s := a.steps[m.Position]
	if s == nil {
		s = &stepArrival{first: at}
		a.steps[m.Position] = s
	}
	s.count++
	s.last = at
	if s.count == a.n {
		fmt.Printf("STEP %d %d %d\n", m.Position, s.first.UnixNano(), s.last.UnixNano())
		delete(a.steps, m.Position)
	}
}
