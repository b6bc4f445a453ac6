package app_test

import (
	"context"
	"fmt"
	"net/http"
	"strconv"
	"testing"
	"time"

	"github.com/lockstep/lockstep/cmd/lockstep/app"
	"github.com/lockstep/lockstep/cmd/lockstep/app/apptest"
)

// TestRateLimits: past its per-minute limit a user's log, help and session
// command requests answer 429 RATE_LIMITED with Retry-After, change
// nothing, and another user is unaffected.
func TestRateLimits(t *testing.T) {
	s := apptest.Start(t, apptest.WithConfig(func(c *app.Config) {
		c.RateLimitsOff, c.RateLogsPerMin, c.RateHelpPerMin, c.RateCommandsPerMin = false, 3, 2, 2
	}))
	kim := s.NewUser(t, "STUDENT", "Kim")
	lee := s.NewUser(t, "STUDENT", "Lee")
	limited := func(what string, r *apptest.Response) {
		t.Helper()
		if r.Status != http.StatusTooManyRequests || r.ErrorCode() != "RATE_LIMITED" {
			t.Fatalf("%s over the limit: %d %s", what, r.Status, r.Body)
		}
		if secs, err := strconv.Atoi(r.Header.Get("Retry-After")); err != nil || secs < 1 || secs > 60 {
			t.Errorf("%s: Retry-After %q", what, r.Header.Get("Retry-After"))
		}
		e := r.JSON(t)["error"].(map[string]any)
		if e["message"] == "" || e["details"] == nil {
			t.Errorf("%s: error without message or details: %s", what, r.Body)
		}
	}

	for i := range 3 {
		if r := s.Post(t, "/api/logs/activity", kim.Token, map[string]any{"event_type": "CLICK"}); r.Status != http.StatusCreated {
			t.Fatalf("log %d: %d %s", i, r.Status, r.Body)
		}
	}
	limited("log", s.Post(t, "/api/logs/activity", kim.Token, map[string]any{"event_type": "FLOOD"}))
	limited("batch", s.Post(t, "/api/logs/batch", kim.Token, map[string]any{"logs": []any{map[string]any{"event_type": "FLOOD"}}}))
	if r := s.Post(t, "/api/logs/activity", lee.Token, map[string]any{"event_type": "CLICK"}); r.Status != http.StatusCreated {
		t.Fatalf("another user's log: %d %s", r.Status, r.Body)
	}

	// Session commands: an instructor creating sessions.
	inst := s.NewUser(t, "INSTRUCTOR", "Park")
	r := s.Post(t, "/api/lectures", inst.Token, map[string]any{"title": "기초"})
	if r.Status != http.StatusCreated {
		t.Fatalf("lecture: %d %s", r.Status, r.Body)
	}
	lecture := int64(r.JSON(t)["id"].(float64))
	path := fmt.Sprintf("/api/lectures/%d/sessions", lecture)
	for i := range 2 {
		if r := s.Post(t, path, inst.Token, map[string]any{}); r.Status != http.StatusCreated {
			t.Fatalf("session %d: %d %s", i, r.Status, r.Body)
		}
	}
	limited("session command", s.Post(t, path, inst.Token, map[string]any{}))

	// Help: two requests pass (whatever they answer), the third is limited.
	for range 2 {
		if r := s.Post(t, "/api/help/request", lee.Token, map[string]any{}); r.Status == http.StatusTooManyRequests {
			t.Fatalf("help under the limit: %s", r.Body)
		}
	}
	limited("help request", s.Post(t, "/api/help/request", lee.Token, map[string]any{}))
	if r := s.Post(t, "/api/help/request", kim.Token, map[string]any{}); r.Status == http.StatusTooManyRequests {
		t.Errorf("another user's help request is limited")
	}

	// The limited requests stored nothing.
	time.Sleep(500 * time.Millisecond)
	var flood, sessions int
	ctx := context.Background()
	if err := s.DB.Pool.QueryRow(ctx, `SELECT count(*) FROM activity_logs WHERE event_type = 'FLOOD'`).Scan(&flood); err != nil {
		t.Fatal(err)
	}
	if flood != 0 {
		t.Errorf("%d limited logs stored", flood)
	}
	if err := s.DB.Pool.QueryRow(ctx, `SELECT count(*) FROM events WHERE type = 'SessionOpened'`).Scan(&sessions); err != nil {
		t.Fatal(err)
	}
	if sessions != 2 {
		t.Errorf("%d sessions created, want the 2 under the limit", sessions)
	}
}
