package app_test

import (
	"context"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/lockstep/lockstep/cmd/lockstep/app"
	"github.com/lockstep/lockstep/cmd/lockstep/app/apptest"
	"github.com/lockstep/lockstep/pgtest"
)

func TestOperationsEndpoints(t *testing.T) {
	s := apptest.Start(t)

	if r := s.Get(t, "/healthz", ""); r.Status != http.StatusOK {
		t.Fatalf("healthz = %d", r.Status)
	}
	r := s.Get(t, "/readyz", "")
	if r.Status != http.StatusOK {
		t.Fatalf("readyz = %d %s", r.Status, r.Body)
	}
	checks := r.JSON(t)["checks"].(map[string]any)
	for _, k := range []string{"database", "event_store", "bus"} {
		if checks[k] != "ok" {
			t.Errorf("readyz check %s = %v", k, checks[k])
		}
	}

	// A request, so that the latency histogram has a sample for its route.
	u := s.NewUser(t, "STUDENT", "김학생")
	if r := s.Get(t, "/api/auth/me", u.Token); r.Status != http.StatusOK {
		t.Fatalf("me = %d %s", r.Status, r.Body)
	}
	m := string(getMetrics(t, s))
	for _, want := range []string{
		`lockstep_http_request_duration_seconds_count{method="GET",route="/api/auth/me",status="200"}`,
		"go_goroutines",
	} {
		if !strings.Contains(m, want) {
			t.Errorf("metrics lack %s", want)
		}
	}
}

// getMetrics reads /metrics from the server's metrics listener.
func getMetrics(t *testing.T, s *apptest.Server) string {
	t.Helper()
	if s.MetricsURL == "" {
		t.Fatal("the test server has no metrics listener")
	}
	r, err := http.Get(s.MetricsURL + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer r.Body.Close()
	b, _ := io.ReadAll(r.Body)
	if r.StatusCode != http.StatusOK {
		t.Fatalf("GET /metrics on the metrics listener = %d", r.StatusCode)
	}
	return string(b)
}

// TestMetricsOnlyOnTheirListener: /metrics is not public on the API port.
func TestMetricsOnlyOnTheirListener(t *testing.T) {
	s := apptest.Start(t)
	if r := s.Get(t, "/metrics", ""); r.Status != http.StatusNotFound || r.ErrorCode() != "NOT_FOUND" {
		t.Errorf("GET /metrics on the API port = %d %s, want 404 NOT_FOUND", r.Status, r.Body)
	}
	if m := getMetrics(t, s); !strings.Contains(m, "go_goroutines") {
		t.Errorf("the metrics listener serves no metrics")
	}
	off := apptest.Start(t, apptest.WithConfig(func(c *app.Config) { c.MetricsAddr = "" }))
	if off.MetricsURL != "" || off.App.MetricsAddr() != "" {
		t.Errorf("METRICS_ADDR off still listens on %q", off.App.MetricsAddr())
	}
}

func TestUnknownRouteAnswersContractError(t *testing.T) {
	s := apptest.Start(t)
	r := s.Get(t, "/api/nope", "")
	if r.Status != http.StatusNotFound || r.ErrorCode() != "NOT_FOUND" {
		t.Fatalf("unknown route = %d %s", r.Status, r.Body)
	}
}

func TestReadyzReportsADeadDatabase(t *testing.T) {
	s := apptest.Start(t)
	// Terminate every connection of the test database and forbid new ones.
	admin, err := pgx.Connect(t.Context(), pgtest.ServerURL())
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close(context.Background())
	if _, err := admin.Exec(t.Context(), `ALTER DATABASE `+s.DB.Name+` ALLOW_CONNECTIONS false`); err != nil {
		t.Fatal(err)
	}
	defer func() {
		_, _ = admin.Exec(context.Background(), `ALTER DATABASE `+s.DB.Name+` ALLOW_CONNECTIONS true`)
	}()
	if _, err := admin.Exec(t.Context(), `SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1 AND pid <> pg_backend_pid()`, s.DB.Name); err != nil {
		t.Fatal(err)
	}
	r := s.Get(t, "/readyz", "")
	if r.Status != http.StatusServiceUnavailable {
		t.Fatalf("readyz with the database gone = %d %s", r.Status, r.Body)
	}
	if !strings.Contains(string(r.Body), `"database"`) {
		t.Fatalf("readyz does not say which check failed: %s", r.Body)
	}

	// The database comes back: the same process recovers, reads and writes.
	if _, err := admin.Exec(t.Context(), `ALTER DATABASE `+s.DB.Name+` ALLOW_CONNECTIONS true`); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(30 * time.Second)
	for s.Get(t, "/readyz", "").Status != http.StatusOK {
		if time.Now().After(deadline) {
			t.Fatal("readyz never recovered after the database came back")
		}
		time.Sleep(100 * time.Millisecond)
	}
	u := s.NewUser(t, "INSTRUCTOR", "박강사")
	if r := s.Post(t, "/api/lectures", u.Token, map[string]any{"title": "복구 후 강의"}); r.Status != http.StatusCreated {
		t.Fatalf("create after recovery = %d %s", r.Status, r.Body)
	}
}

func TestConfigValidateReportsEveryProblem(t *testing.T) {
	cfg := app.Config{EventStore: "mongo", Bus: "kafka", JWTSecret: "short", Env: "production", LogLevel: "loud", AdminEmail: "a@b.c"}
	err := cfg.Validate()
	if err == nil {
		t.Fatal("invalid config accepted")
	}
	for _, want := range []string{"DATABASE_URL", "EVENT_STORE", "KAFKA_BROKERS", "JWT_SECRET", "LOG_LEVEL", "ADMIN_PASSWORD", "TOKEN_TTL"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("Validate() does not mention %s: %v", want, err)
		}
	}
}
