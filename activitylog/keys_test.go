package activitylog_test

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/lockstep/lockstep/activitylog"
	"github.com/lockstep/lockstep/cmd/lockstep/app/apptest"
	"github.com/lockstep/lockstep/pgtest"
)

// cuttingProxy forwards TCP connections to target. While cut is set, it
// reads the server's whole answer to the first request of a connection
// (so the server has committed and answered) and then closes the client's
// connection without passing one byte of it on: the client sees its answer
// lost, as after a timeout.
type cuttingProxy struct {
	ln      net.Listener
	target  string
	cut     atomic.Bool
	answers chan int // statuses the proxy swallowed
	wg      sync.WaitGroup
}

func newCuttingProxy(t *testing.T, target string) *cuttingProxy {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &cuttingProxy{ln: ln, target: target, answers: make(chan int, 16)}
	p.wg.Add(1)
	go func() {
		defer p.wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			p.wg.Add(1)
			go func() { defer p.wg.Done(); p.serve(c) }()
		}
	}()
	t.Cleanup(func() { ln.Close(); p.wg.Wait() })
	return p
}

func (p *cuttingProxy) serve(client net.Conn) {
	defer client.Close()
	server, err := net.Dial("tcp", p.target)
	if err != nil {
		return
	}
	defer server.Close()
	go func() { _, _ = io.Copy(server, client) }()
	if !p.cut.Load() {
		_, _ = io.Copy(client, server)
		return
	}
	resp, err := http.ReadResponse(bufio.NewReader(server), nil)
	if err != nil {
		return
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	p.answers <- resp.StatusCode
	// client.Close (deferred) drops the answer.
}

// send posts through the proxy on a fresh connection (no keep-alive, so
// net/http cannot retry on its own).
func send(p *cuttingProxy, path, token, key, body string) (int, map[string]any, error) {
	req, _ := http.NewRequest(http.MethodPost, "http://"+p.ln.Addr().String()+path, strings.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+token)
	if key != "" {
		req.Header.Set("Idempotency-Key", key)
	}
	client := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
	resp, err := client.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	var m map[string]any
	_ = json.Unmarshal(data, &m)
	return resp.StatusCode, m, nil
}

// TestRetryAfterLostAnswerStoresOnce: the server commits a batch (and a
// single log), the answer is lost on the way back, the client retries with
// the same Idempotency-Key: every log is stored once and the retry answers
// what the first answered.
func TestRetryAfterLostAnswerStoresOnce(t *testing.T) {
	t.Parallel()
	s := apptest.Start(t)
	student := s.NewUser(t, "STUDENT", "Kim")
	p := newCuttingProxy(t, strings.TrimPrefix(s.URL, "http://"))

	var entries []string
	for i := range 100 {
		entries = append(entries, fmt.Sprintf(`{"event_type": "SCROLL", "event_data": {"i": %d}}`, i))
	}
	batch := `{"logs": [` + strings.Join(entries, ",") + `]}`
	single := `{"event_type": "CLICK"}`

	p.cut.Store(true)
	if _, _, err := send(p, "/api/logs/batch", student.Token, "batch-1", batch); err == nil {
		t.Fatal("the proxy did not cut the batch's answer")
	}
	if got := <-p.answers; got != http.StatusCreated {
		t.Fatalf("the lost batch answer was %d, want 201", got)
	}
	if _, _, err := send(p, "/api/logs/activity", student.Token, "single-1", single); err == nil {
		t.Fatal("the proxy did not cut the single log's answer")
	}
	if got := <-p.answers; got != http.StatusCreated {
		t.Fatalf("the lost single answer was %d, want 201", got)
	}
	// Let the writer store the first attempts before the retries arrive.
	apptest.Eventually(t, "the first attempts stored", 20*time.Second, func() bool {
		return countRows(t, s.DB.Pool, "user_id = $1", student.ID) >= 101
	})
	var firstSingle int64
	if err := s.DB.Pool.QueryRow(t.Context(), `SELECT log_id FROM activity_logs WHERE user_id = $1 AND event_type = 'CLICK'`, student.ID).Scan(&firstSingle); err != nil {
		t.Fatal(err)
	}

	p.cut.Store(false)
	status, body, err := send(p, "/api/logs/batch", student.Token, "batch-1", batch)
	if err != nil || status != http.StatusCreated || body["accepted"] != float64(100) {
		t.Fatalf("batch retry: %d %v %v", status, body, err)
	}
	status, body, err = send(p, "/api/logs/activity", student.Token, "single-1", single)
	if err != nil || status != http.StatusCreated {
		t.Fatalf("single retry: %d %v %v", status, body, err)
	}
	if got := int64(body["log_id"].(float64)); got != firstSingle {
		t.Errorf("the retry answered log_id %d, the first stored %d", got, firstSingle)
	}
	// A key reused for another body is refused and stores nothing.
	status, body, _ = send(p, "/api/logs/activity", student.Token, "single-1", `{"event_type": "OTHER"}`)
	if status != http.StatusConflict || body["error"].(map[string]any)["code"] != "CONFLICT" {
		t.Errorf("key reused for another log: %d %v", status, body)
	}
	// A marker sent after the retries: once it is stored, so are they.
	if status, _, err := send(p, "/api/logs/activity", student.Token, "", `{"event_type": "MARKER"}`); err != nil || status != http.StatusCreated {
		t.Fatalf("marker: %d %v", status, err)
	}
	apptest.Eventually(t, "the marker stored", 20*time.Second, func() bool {
		return countRows(t, s.DB.Pool, "user_id = $1 AND event_type = 'MARKER'", student.ID) == 1
	})
	time.Sleep(200 * time.Millisecond)
	if n := countRows(t, s.DB.Pool, "user_id = $1 AND event_type = 'SCROLL'", student.ID); n != 100 {
		t.Errorf("the batch sent twice with one key is stored as %d rows, want 100", n)
	}
	if n := countRows(t, s.DB.Pool, "user_id = $1 AND event_type = 'CLICK'", student.ID); n != 1 {
		t.Errorf("the log sent twice with one key is stored as %d rows, want 1", n)
	}
	if n := countRows(t, s.DB.Pool, "user_id = $1 AND event_type = 'OTHER'", student.ID); n != 0 {
		t.Errorf("the refused log is stored as %d rows", n)
	}
}

// TestPruneKeys: housekeeping drops keys past KeyRetention and keeps the rest.
// It runs on a bare migrated database: a server's own housekeeping would
// race the call under test for the old key.
func TestPruneKeys(t *testing.T) {
	t.Parallel()
	db := pgtest.New(t)
	ctx := t.Context()
	for _, q := range []string{
		`INSERT INTO activity_log_keys (user_id, key, fingerprint, log_ids, received_at, created_at) VALUES (1, 'old', 'f', '{1}', now(), now() - interval '25 hours')`,
		`INSERT INTO activity_log_keys (user_id, key, fingerprint, log_ids, received_at, created_at) VALUES (1, 'recent', 'f', '{2}', now(), now() - interval '23 hours')`,
	} {
		if _, err := db.Pool.Exec(ctx, q); err != nil {
			t.Fatal(err)
		}
	}
	if n, err := activitylog.PruneKeys(ctx, db.Pool, time.Now()); err != nil || n != 1 {
		t.Fatalf("pruned %d (%v), want 1", n, err)
	}
	var left string
	if err := db.Pool.QueryRow(ctx, `SELECT string_agg(key, ',') FROM activity_log_keys`).Scan(&left); err != nil || left != "recent" {
		t.Fatalf("keys left: %q %v", left, err)
	}
}
