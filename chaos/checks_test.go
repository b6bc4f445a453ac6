package chaos

import (
	"context"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/lockstep/lockstep/simulator"
)

var long = flag.Bool("chaos.long", false, "run the long versions of the chaos tests (make chaos)")

// classOK fails t unless the class ran to its end with every student at
// every step exactly once, and every answer that was not 2xx was a 503 in
// the contract's shape (or no answer at all, where a process died) that a
// retry then got through; a retry may meet a 409 "in progress" with
// Retry-After while its first attempt still holds the Idempotency-Key.
func classOK(t *testing.T, r *simulator.Report, err error, allowNoAnswer bool) {
	t.Helper()
	if r == nil {
		t.Fatalf("class: %v", err)
	}
	var b strings.Builder
	r.Print(&b)
	t.Logf("class report:\n%s", b.String())
	if err != nil {
		t.Fatalf("class: %v", err)
	}
	if !r.OK() {
		t.Fatalf("class not OK: %s", r.Failure())
	}
	for k, n := range r.SentAgain {
		switch {
		case strings.HasSuffix(k, "→ 503"):
		case strings.HasSuffix(k, "→ 409"):
			// Only with Retry-After (else it is an error, not sent again):
			// the retry of a request whose first attempt still held its
			// Idempotency-Key, which the next retry got through.
		case allowNoAnswer && (strings.HasSuffix(k, "→ no answer") || strings.HasSuffix(k, "→ 502")):
		default:
			t.Errorf("%d answers %s: only 2xx and 503 are allowed", n, k)
		}
	}
}

// eventsOK checks the event store after a class: every stream's versions
// are 1..n with no gap or double, the session stream has exactly the
// instructor's commands once each, and the help requests, logs and
// progress are there once per acknowledged request.
func eventsOK(t *testing.T, pool *pgxpool.Pool, r *simulator.Report) {
	t.Helper()
	ctx := context.Background()
	var bad []string
	rows, err := pool.Query(ctx, `SELECT stream, count(*), min(version), max(version) FROM events GROUP BY stream
		HAVING count(*) <> max(version) OR min(version) <> 1 OR count(DISTINCT version) <> count(*)`)
	if err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
		var s string
		var n, lo, hi int64
		_ = rows.Scan(&s, &n, &lo, &hi)
		bad = append(bad, fmt.Sprintf("%s: %d events, versions %d..%d", s, n, lo, hi))
	}
	rows.Close()
	if len(bad) > 0 {
		t.Errorf("streams with a gap or a double: %v", bad)
	}
	counts := map[string]int{}
	rows, err = pool.Query(ctx, `SELECT type, count(*) FROM events WHERE stream = $1 GROUP BY type`, fmt.Sprintf("session-%d", r.SessionID))
	if err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
		var typ string
		var n int
		_ = rows.Scan(&typ, &n)
		counts[typ] = n
	}
	rows.Close()
	want := map[string]int{"SessionOpened": 1, "SessionStarted": 1, "StepChanged": r.Steps - 1, "SessionEnded": 1}
	for typ, n := range want {
		if counts[typ] != n {
			t.Errorf("session stream has %d %s events, want %d (all: %v)", counts[typ], typ, n, counts)
		}
	}
	// The test database holds this one class (the stuck detector is off).
	var help int
	if err := pool.QueryRow(ctx, `SELECT count(*) FROM events WHERE type = 'HelpRequested' AND data->>'request_type' = 'MANUAL'`).Scan(&help); err != nil {
		t.Fatal(err)
	}
	if help != r.HelpRequests {
		t.Errorf("%d MANUAL help requests in the events, the students had %d acknowledged", help, r.HelpRequests)
	}
	var logs int
	deadline := time.Now().Add(30 * time.Second)
	for {
		if err := pool.QueryRow(ctx, `SELECT count(*) FROM activity_logs WHERE session_id = $1`, r.SessionID).Scan(&logs); err != nil {
			t.Fatal(err)
		}
		if logs >= r.Logs || time.Now().After(deadline) {
			break
		}
		time.Sleep(200 * time.Millisecond)
	}
	if logs != r.Logs {
		t.Errorf("%d activity logs stored, %d acknowledged", logs, r.Logs)
	}
}

// caughtUp waits (up to a minute) until every projector of srv has no lag
// and none is parked, from its /metrics.
func caughtUp(t *testing.T, srv *server) {
	t.Helper()
	url := srv.metricsURL()
	var last string
	for deadline := time.Now().Add(time.Minute); time.Now().Before(deadline); time.Sleep(500 * time.Millisecond) {
		resp, err := http.Get(url)
		if err != nil {
			continue
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		behind := false
		last = ""
		seen := false
		for _, line := range strings.Split(string(b), "\n") {
			if strings.HasPrefix(line, "lockstep_projection_lag_positions{") || strings.HasPrefix(line, "lockstep_projection_parked{") {
				seen = true
				if f := strings.Fields(line); f[len(f)-1] != "0" {
					behind = true
					last += line + "; "
				}
			}
		}
		if seen && !behind {
			return
		}
	}
	t.Fatalf("the projectors did not catch up within a minute: %s", last)
}

// readModels dumps every read-model table (rows as JSON, sorted).
func readModels(t *testing.T, pool *pgxpool.Pool) map[string]string {
	t.Helper()
	ctx := context.Background()
	rows, err := pool.Query(ctx, `SELECT table_name FROM information_schema.tables WHERE table_schema = 'public'
		AND table_type = 'BASE TABLE' AND (table_name LIKE 'rm\_%' OR table_name LIKE 'dash\_%' OR table_name LIKE 'session\_%'
		OR table_name = 'live_sessions') ORDER BY 1`)
	if err != nil {
		t.Fatal(err)
	}
	names, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]string{}
	for _, n := range names {
		var dump string
		if err := pool.QueryRow(ctx, `SELECT coalesce(string_agg(j, E'\n' ORDER BY j), '') FROM (SELECT to_jsonb(t)::text AS j FROM `+
			pgx.Identifier{n}.Sanitize()+` t) x`).Scan(&dump); err != nil {
			t.Fatal(err)
		}
		out[n] = dump
	}
	return out
}

// projectionsOK stops nothing: the caller has stopped every server. It
// dumps the read models, rebuilds them all from event zero with
// `lockstep rebuild`, and compares.
func projectionsOK(t *testing.T, pool *pgxpool.Pool, databaseURL string) {
	t.Helper()
	// The projectors were stopped with the server; their read models are
	// final. Let a slow last batch land: wait until two dumps agree.
	before := readModels(t, pool)
	for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); {
		time.Sleep(2 * time.Second)
		again := readModels(t, pool)
		if fmt.Sprint(again) == fmt.Sprint(before) {
			break
		}
		before = again
	}
	cmd := exec.Command(lockstepBinary(t), "rebuild")
	cmd.Env = append(cmd.Environ(), "DATABASE_URL="+databaseURL, "LOG_LEVEL=warn")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("lockstep rebuild: %v\n%s", err, out)
	}
	after := readModels(t, pool)
	rowsSeen := 0
	for name, b := range before {
		rowsSeen += strings.Count(b, "\n") + 1
		if a := after[name]; a != b {
			t.Errorf("read model %s differs from a clean rebuild:\n%s", name, firstDiff(b, a))
		}
	}
	if len(before) < 5 || rowsSeen < 100 {
		t.Fatalf("only %d read-model tables, %d rows: the comparison saw too little", len(before), rowsSeen)
	}
}

func firstDiff(a, b string) string {
	al, bl := strings.Split(a, "\n"), strings.Split(b, "\n")
	for i := 0; i < max(len(al), len(bl)); i++ {
		var x, y string
		if i < len(al) {
			x = al[i]
		}
		if i < len(bl) {
			y = bl[i]
		}
		if x != y {
			return fmt.Sprintf("  live:    %.400s\n  rebuilt: %.400s", x, y)
		}
	}
	return ""
}

// terminate ends every connection of the database but the caller's.
func terminate(t *testing.T, pool *pgxpool.Pool, dbName string) int {
	t.Helper()
	var n int
	err := pool.QueryRow(context.Background(), `SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity
		WHERE datname = $1 AND pid <> pg_backend_pid() AND backend_type = 'client backend'`, dbName).Scan(&n)
	if err != nil {
		t.Fatal(err)
	}
	return n
}
