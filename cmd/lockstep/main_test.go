package main

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
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/lockstep/lockstep/pgtest"
)

// The test binary doubles as the lockstep binary: a child started with
// LOCKSTEP_BE_MAIN=1 runs main() with its own arguments, so every test here
// goes through the real flag parsing, start-up, logging and exit code.
func TestMain(m *testing.M) {
	if os.Getenv("LOCKSTEP_BE_MAIN") == "1" {
		main()
		os.Exit(0)
	}
	http.DefaultClient.Timeout = 20 * time.Second // a hung server fails a test, not the run
	os.Exit(m.Run())
}

// child is a running `lockstep` process.
type child struct {
	cmd    *exec.Cmd
	out    *syncBuffer // stdout and stderr
	exited chan struct{}
	err    error // Wait's result, after exited
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// baseEnv is the parent's environment without any Lockstep setting, so a
// developer's own DATABASE_URL or PUBLIC_URL cannot change a test.
func baseEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		name, _, _ := strings.Cut(kv, "=")
		switch name {
		case "DATABASE_URL", "HTTP_ADDR", "PUBLIC_URL", "EVENT_STORE", "EVENTSTORE_URL", "BUS", "KAFKA_BROKERS",
			"REDIS_URL", "JWT_SECRET", "ADMIN_EMAIL", "ADMIN_PASSWORD", "LOCKSTEP_ENV", "LOG_LEVEL",
			"ROLE_API", "ROLE_PROJECTORS", "ROLE_WORKERS", "SHUTDOWN_TIMEOUT", "HTTP_READ_TIMEOUT", "HTTP_IDLE_TIMEOUT",
			"METRICS_ADDR", "ANALYTICS", "RATE_LIMITS", "RATE_LIMIT_LOGS", "RATE_LIMIT_HELP", "RATE_LIMIT_COMMANDS":
			continue
		}
		env = append(env, kv)
	}
	// No metrics listener unless a test asks for one (METRICS_ADDR later
	// in the list wins): parallel children must not clash on 127.0.0.1:9090.
	return append(env, "LOCKSTEP_BE_MAIN=1", "METRICS_ADDR=off")
}

func startLockstep(t *testing.T, env []string, args ...string) *child {
	t.Helper()
	bin := os.Args[0]
	if b := os.Getenv("LOCKSTEP_TEST_BIN"); b != "" {
		bin = b // another lockstep binary (e.g. an older build, to see these tests fail on it)
	}
	c := &child{cmd: exec.Command(bin, args...), out: &syncBuffer{}, exited: make(chan struct{})}
	c.cmd.Env = append(baseEnv(), env...)
	c.cmd.Stdout, c.cmd.Stderr = c.out, c.out
	if err := c.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { c.err = c.cmd.Wait(); close(c.exited) }()
	t.Cleanup(func() {
		select {
		case <-c.exited:
		default:
			_ = c.cmd.Process.Kill()
			<-c.exited
		}
	})
	return c
}

// runLockstep runs lockstep to its end and returns its output and exit code.
func runLockstep(t *testing.T, env []string, args ...string) (string, int) {
	t.Helper()
	c := startLockstep(t, env, args...)
	select {
	case <-c.exited:
	case <-time.After(90 * time.Second):
		_ = c.cmd.Process.Kill()
		t.Fatalf("lockstep %v did not exit within 90s:\n%s", args, c.out.String())
	}
	return c.out.String(), c.cmd.ProcessState.ExitCode()
}

// freeAddr is a loopback address nothing listens on.
func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr
}

// waitFor polls url until it answers want.
func waitFor(t *testing.T, c *child, url string, want int) {
	t.Helper()
	deadline := time.Now().Add(90 * time.Second)
	for {
		resp, err := http.Get(url)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == want {
				return
			}
		}
		select {
		case <-c.exited:
			t.Fatalf("lockstep exited before %s answered %d:\n%s", url, want, c.out.String())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s never answered %d:\n%s", url, want, c.out.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// assertOneLineFailure checks a failed start: exit status 1, no panic or
// stack trace, every log line JSON and exactly one plain line, the error,
// containing every want.
func assertOneLineFailure(t *testing.T, out string, code int, want ...string) {
	t.Helper()
	if code != 1 {
		t.Errorf("exit status %d, want 1", code)
	}
	for _, bad := range []string{"panic", "goroutine ", "runtime error", "USAGE:"} {
		if strings.Contains(out, bad) {
			t.Errorf("output has %q:\n%s", bad, out)
		}
	}
	var plain []string
	for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
		if !json.Valid([]byte(line)) {
			plain = append(plain, line)
		}
	}
	if len(plain) != 1 || !strings.HasPrefix(plain[0], "lockstep: ") {
		t.Fatalf("want exactly one plain line \"lockstep: …\", got %d:\n%s", len(plain), out)
	}
	for _, w := range want {
		if !strings.Contains(plain[0], w) {
			t.Errorf("error line lacks %q: %s", w, plain[0])
		}
	}
}

func TestStartupFailuresAreOneClearLine(t *testing.T) {
	db := pgtest.NewEmpty(t)
	closed := freeAddr(t)
	cases := []struct {
		name string
		args []string
		env  []string
		want []string
	}{
		{"database port closed", []string{"serve"}, []string{"DATABASE_URL=postgres://postgres@" + closed + "/x?sslmode=disable"},
			[]string{"cannot connect to PostgreSQL on " + closed, "connection refused", "DATABASE_URL"}},
		{"database url not a url", []string{"serve"}, []string{"DATABASE_URL=not a url"},
			[]string{"DATABASE_URL is not a PostgreSQL URL", "postgres://"}},
		{"database host unknown", []string{"serve"}, []string{"DATABASE_URL=postgres://postgres@no-such-host.invalid:5432/x"},
			[]string{"no-such-host.invalid", "DATABASE_URL"}},
		{"kafka unreachable", []string{"serve"}, []string{"DATABASE_URL=" + db.URL, "BUS=kafka", "KAFKA_BROKERS=" + closed},
			[]string{"cannot reach Kafka at " + closed, "KAFKA_BROKERS"}},
		{"short admin password", []string{"serve"}, []string{"DATABASE_URL=" + db.URL, "ADMIN_EMAIL=root@example.com", "ADMIN_PASSWORD=short"},
			[]string{"ADMIN_PASSWORD must have 8 to 128 characters"}},
		{"admin email alone", []string{"serve"}, []string{"DATABASE_URL=" + db.URL, "ADMIN_EMAIL=root@example.com"},
			[]string{"ADMIN_EMAIL and ADMIN_PASSWORD go together"}},
		{"role not a boolean", []string{"serve"}, []string{"DATABASE_URL=" + db.URL, "ROLE_API=maybe"},
			[]string{"ROLE_API"}},
		{"unknown bus", []string{"serve"}, []string{"DATABASE_URL=" + db.URL, "BUS=rabbit"},
			[]string{"BUS must be postgres, kafka or memory"}},
		{"production without public url", []string{"serve"}, []string{"DATABASE_URL=" + db.URL, "LOCKSTEP_ENV=production", "JWT_SECRET=" + strings.Repeat("s", 32)},
			[]string{"PUBLIC_URL is required in production"}},
		{"port taken", []string{"serve"}, nil, nil}, // filled below
		{"replay database port closed", []string{"replay", "--session", "1"}, []string{"DATABASE_URL=postgres://postgres@" + closed + "/x"},
			[]string{"cannot connect to PostgreSQL on " + closed}},
		{"rebuild database port closed", []string{"rebuild"}, []string{"DATABASE_URL=postgres://postgres@" + closed + "/x"},
			[]string{"cannot connect to PostgreSQL on " + closed}},
		{"replay bad log level", []string{"replay", "--session", "1"}, []string{"LOG_LEVEL=loud"},
			[]string{"LOG_LEVEL must be debug, info, warn or error"}},
	}
	taken, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer taken.Close()
	for i := range cases {
		if cases[i].name == "port taken" {
			cases[i].env = []string{"DATABASE_URL=" + db.URL, "BUS=memory", "HTTP_ADDR=" + taken.Addr().String()}
			cases[i].want = []string{"listen on " + taken.Addr().String()}
		}
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			out, code := runLockstep(t, tc.env, tc.args...)
			assertOneLineFailure(t, out, code, tc.want...)
		})
	}
}

// TestReplayAndRebuildCreateNothing: a typo in DATABASE_URL must fail, not
// create (and migrate) a new database; an unmigrated one is not migrated.
// TestReplayWithAStoreWithoutFilteredReads: replay reads a classroom through
// the store's filtered reads (as analytics does); with EventStoreDB, which
// has none, it fails at once with the store's own reason — nothing needs to
// answer at EVENTSTORE_URL for that.
func TestReplayWithAStoreWithoutFilteredReads(t *testing.T) {
	db := pgtest.New(t)
	out, code := runLockstep(t, []string{"DATABASE_URL=" + db.URL, "EVENT_STORE=eventstoredb", "EVENTSTORE_URL=esdb://127.0.0.1:1?tls=false"}, "replay", "--session", "1")
	assertOneLineFailure(t, out, code, "EVENT_STORE=eventstoredb", "does not support filtered reads", "metadata")
}

func TestReplayAndRebuildCreateNothing(t *testing.T) {
	empty := pgtest.NewEmpty(t)
	name := fmt.Sprintf("lockstep_typo_%d", time.Now().UnixNano())
	typo := strings.Replace(empty.URL, "/"+empty.Pool.Config().ConnConfig.Database, "/"+name, 1)
	for _, args := range [][]string{{"replay", "--session", "1"}, {"rebuild"}} {
		out, code := runLockstep(t, []string{"DATABASE_URL=" + typo}, args...)
		assertOneLineFailure(t, out, code, `database "`+name+`" does not exist`)
		if strings.Contains(out, "JWT_SECRET") {
			t.Errorf("%s warns about JWT_SECRET, which it does not use:\n%s", args[0], out)
		}
		var n int
		if err := empty.Pool.QueryRow(t.Context(), `SELECT count(*) FROM pg_database WHERE datname = $1`, name).Scan(&n); err != nil {
			t.Fatal(err)
		}
		if n != 0 {
			_, _ = empty.Pool.Exec(context.Background(), `DROP DATABASE `+name)
			t.Fatalf("%s created database %s", args[0], name)
		}

		out, code = runLockstep(t, []string{"DATABASE_URL=" + empty.URL}, args...)
		assertOneLineFailure(t, out, code, "is not migrated", "lockstep migrate")
		var tables int
		if err := empty.Pool.QueryRow(t.Context(), `SELECT count(*) FROM pg_tables WHERE schemaname = 'public'`).Scan(&tables); err != nil {
			t.Fatal(err)
		}
		if tables != 0 {
			t.Fatalf("%s created %d tables in an unmigrated database", args[0], tables)
		}
	}
}

func TestCLIFlagsAndUsageErrors(t *testing.T) {
	help := func(args ...string) string {
		out, code := runLockstep(t, nil, append(args, "--help")...)
		if code != 0 {
			t.Fatalf("%v --help: status %d\n%s", args, code, out)
		}
		return out
	}
	for _, cmd := range []string{"replay", "rebuild", "migrate", "simulate"} {
		out := help(cmd)
		for _, serveOnly := range []string{"--jwt-secret", "--http-addr", "--admin-password", "--kafka-brokers", "--stuck-interval", "--login-window"} {
			if strings.Contains(out, serveOnly) {
				t.Errorf("lockstep %s --help lists serve's %s:\n%s", cmd, serveOnly, out)
			}
		}
	}
	serve := help("serve")
	if strings.Contains(serve, "--dev") {
		t.Errorf("serve --help mentions a --dev flag that does not exist:\n%s", serve)
	}
	for _, b := range []string{"--api ", "--projectors ", "--workers ", "--stuck-detector "} {
		i := strings.Index(serve, b)
		if i < 0 || !strings.Contains(strings.SplitN(serve[i:], "\n", 2)[0], "(default: true)") {
			t.Errorf("serve --help: %s does not show its default", b)
		}
	}
	for _, c := range newCLI().Commands {
		for _, f := range c.Flags {
			if u, ok := f.(interface{ GetUsage() string }); !ok || strings.TrimSpace(u.GetUsage()) == "" {
				t.Errorf("lockstep %s --%s has no description", c.Name, f.Names()[0])
			}
		}
	}

	out, code := runLockstep(t, nil, "replay")
	if code != 1 || strings.TrimSpace(out) != `lockstep: Required flag "session" not set (see: lockstep replay --help)` {
		t.Errorf("replay without --session: status %d, output:\n%s", code, out)
	}
}

// TestServeWithUnreachableEventStore: nothing answers at EVENTSTORE_URL. The
// server waits for it with a clear log line, /readyz names the address, the
// API answers 503 (not 500), and SIGTERM ends the process within the
// shutdown timeout.
func TestServeWithUnreachableEventStore(t *testing.T) {
	db := pgtest.NewEmpty(t)
	addr, esdb := freeAddr(t), freeAddr(t)
	c := startLockstep(t, []string{"DATABASE_URL=" + db.URL, "HTTP_ADDR=" + addr, "BUS=memory",
		"EVENT_STORE=eventstoredb", "EVENTSTORE_URL=esdb://" + esdb + "?tls=false", "SHUTDOWN_TIMEOUT=3s"}, "serve")
	base := "http://" + addr
	waitFor(t, c, base+"/healthz", 200)

	get := func(method, path, body string) (int, string) {
		req, _ := http.NewRequest(method, base+path, strings.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		resp, err := (&http.Client{Timeout: 10 * time.Second}).Do(req)
		if err != nil {
			return 0, err.Error()
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	if status, body := get("GET", "/readyz", ""); status != 503 || !strings.Contains(body, "EventStoreDB at "+esdb) {
		t.Errorf("/readyz: %d %s; want 503 naming EventStoreDB at %s", status, body, esdb)
	}
	if status, body := get("POST", "/api/auth/login", `{"email":"a@b.c","password":"whatever1"}`); status != 503 || !strings.Contains(body, `"UNAVAILABLE"`) {
		t.Errorf("API before the event store answers: %d %s; want 503 UNAVAILABLE", status, body)
	}
	deadline := time.Now().Add(10 * time.Second)
	for !strings.Contains(c.out.String(), "waiting for it") && time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond)
	}
	if !strings.Contains(c.out.String(), "event store does not answer; waiting for it") {
		t.Errorf("no log line says it waits for the event store:\n%s", c.out.String())
	}

	start := time.Now()
	if err := c.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case <-c.exited:
	case <-time.After(3*time.Second + 4*time.Second):
		t.Fatalf("still running %s after SIGTERM with a 3s shutdown timeout:\n%s", time.Since(start), c.out.String())
	}
	t.Logf("stopped %s after SIGTERM", time.Since(start).Round(time.Millisecond))
	assertJSONLines(t, c.out.String())
}

// TestServeStopsGracefullyOnSIGTERM runs `lockstep serve`, waits until it is
// ready, sends SIGTERM and expects a clean exit.
func TestServeStopsGracefullyOnSIGTERM(t *testing.T) {
	db := pgtest.NewEmpty(t)
	addr := freeAddr(t)
	c := startLockstep(t, []string{"DATABASE_URL=" + db.URL, "HTTP_ADDR=" + addr, "BUS=memory", "LOG_LEVEL=info"}, "serve")
	waitFor(t, c, "http://"+addr+"/readyz", 200)
	if err := c.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case <-c.exited:
		if c.err != nil {
			t.Fatalf("serve exited with %v after SIGTERM:\n%s", c.err, c.out.String())
		}
	case <-time.After(40 * time.Second):
		t.Fatalf("serve did not stop within 40s of SIGTERM:\n%s", c.out.String())
	}
	log := c.out.String()
	for _, want := range []string{"shutting down", `"msg":"stopped"`, "JWT_SECRET is not set"} {
		if !strings.Contains(log, want) {
			t.Errorf("serve's log lacks %q:\n%s", want, log)
		}
	}
	if _, err := http.Get("http://" + addr + "/healthz"); err == nil {
		t.Error("still answering after it stopped")
	}
}

// assertJSONLines: every line the server wrote is a JSON object.
func assertJSONLines(t *testing.T, out string) {
	t.Helper()
	sc := bufio.NewScanner(strings.NewReader(out))
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		if line := sc.Text(); line != "" && !json.Valid([]byte(line)) {
			t.Errorf("log line is not JSON: %s", line)
		}
	}
}

// logLines returns the JSON log lines whose msg is msg.
func logLines(out, msg string) []map[string]any {
	var found []map[string]any
	for _, line := range strings.Split(out, "\n") {
		var m map[string]any
		if json.Unmarshal([]byte(line), &m) == nil && m["msg"] == msg {
			found = append(found, m)
		}
	}
	return found
}
