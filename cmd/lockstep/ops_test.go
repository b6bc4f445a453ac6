package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log"
	"net"
	"net/http"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/lockstep/lockstep/pgtest"
)

type httpAnswer struct {
	status int
	header http.Header
	body   string
}

func do(t *testing.T, method, url, token string, body any, header ...string) httpAnswer {
	t.Helper()
	var r io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		r = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, url, r)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	for i := 0; i+1 < len(header); i += 2 {
		if header[i] == "Host" {
			req.Host = header[i+1]
			continue
		}
		req.Header.Set(header[i], header[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return httpAnswer{resp.StatusCode, resp.Header, string(b)}
}

// nonLoopbackIP is an address of this machine that is not loopback.
func nonLoopbackIP() string {
	addrs, _ := net.InterfaceAddrs()
	for _, a := range addrs {
		if n, ok := a.(*net.IPNet); ok && !n.IP.IsLoopback() && n.IP.To4() != nil {
			return n.IP.String()
		}
	}
	return ""
}

// TestServeOperations: one server, the operator's view of it.
func TestServeOperations(t *testing.T) {
	db := pgtest.NewEmpty(t)
	port := strings.TrimPrefix(freeAddr(t), "127.0.0.1:")
	base := "http://127.0.0.1:" + port
	metricsAddr := freeAddr(t)
	metrics := "http://" + metricsAddr + "/metrics"
	c := startLockstep(t, []string{"DATABASE_URL=" + db.URL, "HTTP_ADDR=:" + port, "BUS=postgres", "METRICS_ADDR=" + metricsAddr,
		"LOG_LEVEL=info", "HTTP_READ_TIMEOUT=2s", "ADMIN_EMAIL=admin@example.com", "ADMIN_PASSWORD=admin-password"}, "serve")
	waitFor(t, c, base+"/readyz", 200)

	t.Run("405 with Allow on a known path", func(t *testing.T) {
		r := do(t, "PATCH", base+"/api/lectures", "", nil)
		var body struct {
			Error struct {
				Code    string         `json:"code"`
				Message string         `json:"message"`
				Details map[string]any `json:"details"`
			} `json:"error"`
		}
		_ = json.Unmarshal([]byte(r.body), &body)
		if r.status != 405 || body.Error.Code != "METHOD_NOT_ALLOWED" || body.Error.Message == "" || body.Error.Details == nil {
			t.Fatalf("PATCH /api/lectures: %d %s", r.status, r.body)
		}
		if allow := r.header.Get("Allow"); !strings.Contains(allow, "GET") || !strings.Contains(allow, "POST") {
			t.Errorf("Allow: %q, want GET and POST", allow)
		}
		if r := do(t, "GET", base+"/api/no-such-thing", "", nil); r.status != 404 {
			t.Errorf("unknown path: %d, want 404", r.status)
		}
	})

	t.Run("access log at info with the request id", func(t *testing.T) {
		do(t, "GET", base+"/healthz", "", nil, "X-Request-ID", "ops-test-rid-1")
		var line map[string]any
		deadline := time.Now().Add(5 * time.Second)
		for line == nil && time.Now().Before(deadline) {
			for _, l := range logLines(c.out.String(), "request") {
				if l["request_id"] == "ops-test-rid-1" {
					line = l
				}
			}
			time.Sleep(20 * time.Millisecond)
		}
		if line == nil {
			t.Fatalf("no access-log line with the request id:\n%s", c.out.String())
		}
		if line["level"] != "INFO" || line["method"] != "GET" || line["route"] != "/healthz" || line["status"] != float64(200) || line["duration_ms"] == nil {
			t.Errorf("access-log line: %v", line)
		}
		if r := do(t, "GET", base+"/healthz", "", nil); r.header.Get("X-Request-ID") == "" {
			t.Error("a request without X-Request-ID is not given one")
		}
	})

	t.Run("metrics on their own listener only", func(t *testing.T) {
		if r := do(t, "GET", base+"/metrics", "", nil); r.status != 404 {
			t.Errorf("GET /metrics on the API port = %d, want 404", r.status)
		}
		if r := do(t, "GET", metrics, "", nil); r.status != 200 || !strings.Contains(r.body, "go_goroutines") {
			t.Errorf("GET /metrics on METRICS_ADDR = %d", r.status)
		}
	})

	t.Run("metric labels are a fixed set", func(t *testing.T) {
		do(t, "BREWCOFFEE", base+"/healthz", "", nil)
		do(t, "PROPFINDX", base+"/nope/"+strings.Repeat("x", 20), "", nil)
		m := do(t, "GET", metrics, "", nil).body
		for _, bad := range []string{"BREWCOFFEE", "PROPFINDX", "/nope/"} {
			if strings.Contains(m, bad) {
				t.Errorf("/metrics carries a client-chosen label %q", bad)
			}
		}
		if !strings.Contains(m, `method="OTHER"`) {
			t.Errorf("unknown methods are not folded into OTHER")
		}
	})

	t.Run("bus lag per consumer group", func(t *testing.T) {
		m := do(t, "GET", metrics, "", nil).body
		var found []string
		for _, l := range strings.Split(m, "\n") {
			if strings.HasPrefix(l, "lockstep_bus_consumer_lag_messages{") {
				found = append(found, l)
			}
		}
		if len(found) == 0 || !strings.Contains(strings.Join(found, "\n"), `topic="lockstep.activity_logs"`) {
			t.Fatalf("no lockstep_bus_consumer_lag_messages series for the log writer:\n%s", strings.Join(found, "\n"))
		}
	})

	t.Run("a trickled body is cut", func(t *testing.T) {
		conn, err := net.Dial("tcp", "127.0.0.1:"+port)
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		start := time.Now()
		_, err = io.WriteString(conn, "POST /api/auth/login HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 64\r\n\r\n")
		closed := make(chan time.Duration, 1)
		go func() {
			_, _ = io.Copy(io.Discard, conn) // until the server closes
			closed <- time.Since(start)
		}()
		sent := 0
		for err == nil && sent < 10 {
			select {
			case d := <-closed:
				t.Logf("cut after %s and %d bytes", d.Round(time.Millisecond), sent)
				if d > 6*time.Second {
					t.Errorf("cut only after %s with HTTP_READ_TIMEOUT=2s", d)
				}
				return
			case <-time.After(3 * time.Second):
			}
			_, err = conn.Write([]byte("{"))
			sent++
		}
		if err == nil {
			t.Fatalf("a body trickled one byte every 3s was still being read after %s", time.Since(start))
		}
	})

	t.Run("links use the listen address, not a Host from the network", func(t *testing.T) {
		ip := nonLoopbackIP()
		if ip == "" {
			t.Skip("no non-loopback address on this machine")
		}
		login := do(t, "POST", base+"/api/auth/login", "", map[string]string{"email": "admin@example.com", "password": "admin-password"})
		var tok struct {
			AccessToken string `json:"access_token"`
		}
		if err := json.Unmarshal([]byte(login.body), &tok); err != nil || tok.AccessToken == "" {
			t.Fatalf("login: %d %s", login.status, login.body)
		}
		lec := do(t, "POST", base+"/api/lectures", tok.AccessToken, map[string]string{"title": "links"})
		var l struct {
			ID int64 `json:"id"`
		}
		if err := json.Unmarshal([]byte(lec.body), &l); err != nil || l.ID == 0 {
			t.Fatalf("create lecture: %d %s", lec.status, lec.body)
		}
		path := "/api/lectures/" + jsonInt(l.ID) + "/sessions"
		qr := func(url string, header ...string) string {
			r := do(t, "POST", url+path, tok.AccessToken, map[string]string{"title": "s"}, header...)
			var s struct {
				QR string `json:"qr_code_url"`
			}
			if err := json.Unmarshal([]byte(r.body), &s); err != nil || s.QR == "" {
				t.Fatalf("create session: %d %s", r.status, r.body)
			}
			return s.QR
		}
		if got := qr("http://"+ip+":"+port, "Host", "evil.example"); !strings.HasPrefix(got, "http://localhost:"+port+"/qr/") {
			t.Errorf("a request from %s with Host evil.example got qr_code_url %s; want the listen address http://localhost:%s", ip, got, port)
		}
		if got := qr(base, "Host", "127.0.0.1:"+port); !strings.HasPrefix(got, base+"/qr/") {
			t.Errorf("a request from this machine got qr_code_url %s; want its own host %s", got, base)
		}
	})

	if err := c.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case <-c.exited:
	case <-time.After(40 * time.Second):
		t.Fatal("serve did not stop")
	}
	assertJSONLines(t, c.out.String())
}

func jsonInt(n int64) string { b, _ := json.Marshal(n); return string(b) }

// TestEveryLoggerWritesJSON: the standard library's log package and the
// Redis client write through the process's JSON logger.
func TestEveryLoggerWritesJSON(t *testing.T) {
	var buf syncBuffer
	if _, err := newLogger(&buf, "info"); err != nil {
		t.Fatal(err)
	}
	log.Print("from the log package")
	rdb := redis.NewClient(&redis.Options{Addr: freeAddr(t), MaxRetries: -1, DialTimeout: 200 * time.Millisecond})
	defer rdb.Close()
	_ = rdb.Set(context.Background(), "k", "v", time.Microsecond).Err() // go-redis logs the truncated expiry
	out := buf.String()
	assertJSONLines(t, out)
	for _, want := range []string{"from the log package", "minimal supported value", `"component":"redis"`} {
		if !strings.Contains(out, want) {
			t.Errorf("JSON log lacks %q:\n%s", want, out)
		}
	}
}
