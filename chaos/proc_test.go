package chaos

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/lockstep/lockstep/pgtest"
)

var (
	buildOnce sync.Once
	binPath   string
	buildErr  error
	buildDir  string
)

// lockstepBinary builds ./cmd/lockstep once per test binary run.
func lockstepBinary(t testing.TB) string {
	t.Helper()
	buildOnce.Do(func() {
		buildDir, buildErr = os.MkdirTemp("", "lockstep-chaos-")
		if buildErr != nil {
			return
		}
		binPath = filepath.Join(buildDir, "lockstep")
		out, err := exec.Command("go", "build", "-o", binPath, "../cmd/lockstep").CombinedOutput()
		if err != nil {
			buildErr = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return binPath
}

// freeAddr is a free 127.0.0.1 port.
func freeAddr(t testing.TB) string {
	t.Helper()
	return freeAddrs(t, 1)[0]
}

// freeAddrs is n different free 127.0.0.1 ports: each is held until all are
// picked, since the kernel may hand a port just closed out again.
func freeAddrs(t testing.TB, n int) []string {
	t.Helper()
	var addrs []string
	for range n {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		defer l.Close()
		addrs = append(addrs, l.Addr().String())
	}
	return addrs
}

// server is one `lockstep serve` process.
type server struct {
	Addr, MetricsAddr string
	cmd               *exec.Cmd
	log               *bytes.Buffer
	mu                sync.Mutex
	done              chan struct{}
}

func (s *server) URL() string { return "http://" + s.Addr }

// metricsURL is where /metrics answers: METRICS_ADDR when this build
// serves it there, else the API address.
func (s *server) metricsURL() string {
	for _, a := range []string{s.MetricsAddr, s.Addr} {
		resp, err := http.Get("http://" + a + "/metrics")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				return "http://" + a + "/metrics"
			}
		}
	}
	return "http://" + s.Addr + "/metrics"
}

// startServer runs the binary with env (added to DATABASE_URL, HTTP_ADDR,
// METRICS_ADDR) and waits for /readyz.
func startServer(t testing.TB, databaseURL string, env ...string) *server {
	t.Helper()
	addrs := freeAddrs(t, 2)
	s := &server{Addr: addrs[0], MetricsAddr: addrs[1], log: new(bytes.Buffer), done: make(chan struct{})}
	s.cmd = exec.Command(lockstepBinary(t), "serve")
	s.cmd.Env = append(os.Environ(),
		"DATABASE_URL="+databaseURL, "HTTP_ADDR="+s.Addr, "METRICS_ADDR="+s.MetricsAddr,
		"LOG_LEVEL=warn", "RATE_LIMITS=off", "JWT_SECRET="+jwtSecret)
	s.cmd.Env = append(s.cmd.Env, env...)
	pr, pw, _ := os.Pipe()
	s.cmd.Stdout, s.cmd.Stderr = pw, pw
	if err := s.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	pw.Close()
	go func() {
		sc := bufio.NewScanner(pr)
		sc.Buffer(make([]byte, 64<<10), 1<<20)
		for sc.Scan() {
			s.mu.Lock()
			if s.log.Len() < 1<<20 {
				s.log.Write(sc.Bytes())
				s.log.WriteByte('\n')
			}
			s.mu.Unlock()
		}
	}()
	go func() { _ = s.cmd.Wait(); close(s.done) }()
	t.Cleanup(func() {
		s.stop()
		if t.Failed() {
			t.Logf("server %s output (tail):\n%s", s.Addr, s.tail(4000))
		}
	})
	deadline := time.Now().Add(60 * time.Second)
	for {
		resp, err := http.Get(s.URL() + "/readyz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				return s
			}
		}
		select {
		case <-s.done:
			t.Fatalf("server exited before ready:\n%s", s.tail(4000))
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("server not ready after 60 s:\n%s", s.tail(4000))
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func (s *server) tail(n int) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	b := s.log.Bytes()
	if len(b) > n {
		b = b[len(b)-n:]
	}
	return string(b)
}

// kill sends SIGKILL and waits for the exit.
func (s *server) kill() {
	_ = s.cmd.Process.Kill()
	<-s.done
}

// stop sends SIGTERM and waits (SIGKILL after 20 s).
func (s *server) stop() {
	select {
	case <-s.done:
		return
	default:
	}
	_ = s.cmd.Process.Signal(os.Interrupt)
	select {
	case <-s.done:
	case <-time.After(20 * time.Second):
		s.kill()
	}
}

// procStatus reads VmRSS (bytes) and the open fds of pid.
func procStatus(pid int) (rss int64, fds int, err error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, 0, err
	}
	for _, line := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(line, "VmRSS:") {
			f := strings.Fields(line)
			kb, _ := strconv.ParseInt(f[1], 10, 64)
			rss = kb << 10
		}
	}
	ents, err := os.ReadDir(fmt.Sprintf("/proc/%d/fd", pid))
	return rss, len(ents), err
}

var _ = context.Background

// classSize is the class a chaos test runs: small in make test, the issue's
// size with -chaos.long.
func classSize() (students, steps int, speed float64) {
	if *long {
		return 300, 15, 1
	}
	return 100, 6, 4.0
}

// adminPool is a pool of the test's own on the app's database: a killer's
// connections are spared (its pid is the caller's), and the checks read
// through it. Closed when the test ends.
func adminPool(t *testing.T, db *pgtest.DB) *pgxpool.Pool {
	t.Helper()
	pool, err := pgxpool.New(context.Background(), db.URL)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	return pool
}
