package app_test

import (
	"errors"
	"fmt"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/lockstep/lockstep/cmd/lockstep/app"
	"github.com/lockstep/lockstep/cmd/lockstep/app/apptest"
)

// openHelpSocket opens the student's /ws/help/{id} socket on s and reads its
// snapshot.
func openHelpSocket(t *testing.T, s *apptest.Server, u apptest.User) *websocket.Conn {
	t.Helper()
	ws, _, err := websocket.DefaultDialer.Dial(s.WSURL(fmt.Sprintf("/ws/help/%d?token=%s", u.ID, u.Token)), nil)
	if err != nil {
		t.Fatalf("dial help socket of %d: %v", u.ID, err)
	}
	t.Cleanup(func() { ws.Close() })
	_ = ws.SetReadDeadline(time.Now().Add(10 * time.Second))
	if _, data, err := ws.ReadMessage(); err != nil || !strings.Contains(string(data), `"help_status"`) {
		t.Fatalf("snapshot of %d: %s, %v", u.ID, data, err)
	}
	return ws
}

// closedWith waits at most within for ws to be closed and checks the code.
func closedWith(t *testing.T, ws *websocket.Conn, within time.Duration, code int, reason string) {
	t.Helper()
	start := time.Now()
	_ = ws.SetReadDeadline(start.Add(within))
	for {
		_, data, err := ws.ReadMessage()
		if err == nil {
			continue // a pushed message; keep reading
		}
		var ce *websocket.CloseError
		if !errors.As(err, &ce) || ce.Code != code || ce.Text != reason {
			t.Fatalf("socket ended with %v after %v, want close %d %q within %v", err, time.Since(start), code, reason, within)
		}
		t.Logf("closed with %d %q after %v (data before: %s)", ce.Code, ce.Text, time.Since(start).Round(time.Millisecond), data)
		return
	}
}

// stillOpen checks that nothing closes ws for a while.
func stillOpen(t *testing.T, ws *websocket.Conn, wait time.Duration) {
	t.Helper()
	_ = ws.SetReadDeadline(time.Now().Add(wait))
	_, data, err := ws.ReadMessage()
	var ne net.Error
	if !errors.As(err, &ne) || !ne.Timeout() {
		t.Fatalf("socket should stay open, got %s, %v", data, err)
	}
}

// refusedSocket dials path on s and wants the socket refused with code (as a
// close frame right after the upgrade, or the matching HTTP status).
func refusedSocket(t *testing.T, s *apptest.Server, path string, code int) {
	t.Helper()
	ws, resp, err := websocket.DefaultDialer.Dial(s.WSURL(path), nil)
	if err != nil {
		if resp != nil && resp.StatusCode == code-4000 {
			return
		}
		t.Fatalf("dial %s: %v", path, err)
	}
	defer ws.Close()
	_ = ws.SetReadDeadline(time.Now().Add(10 * time.Second))
	_, data, err := ws.ReadMessage()
	var ce *websocket.CloseError
	if !errors.As(err, &ce) || ce.Code != code {
		t.Fatalf("new socket %s: got %s, %v; want close %d", path, data, err, code)
	}
}

// Two instances on one database: a role change and an account removal made
// through instance A close that user's sockets on instance B (4403, 4401)
// within 5 s, leave other users' sockets open, and the old tokens open no new
// socket on either instance; the removed user's tokens are refused on REST
// too and their refresh token no longer works.
func TestSocketsFollowTheAccountAcrossInstances(t *testing.T) {
	a := apptest.Start(t)
	b := apptest.Start(t, apptest.WithDB(a.DB))
	admin := a.Admin(t)
	changed := a.NewUser(t, "STUDENT", "Changed")
	removed := a.NewUser(t, "STUDENT", "Removed")
	other := a.NewUser(t, "STUDENT", "Other")

	changedWS := openHelpSocket(t, b, changed)
	changedWSA := openHelpSocket(t, a, changed)
	removedWS := openHelpSocket(t, b, removed)
	otherWS := openHelpSocket(t, b, other)

	if r := a.Patch(t, fmt.Sprintf("/api/admin/users/%d", changed.ID), admin.Token, map[string]any{"role": "INSTRUCTOR"}); r.Status != http.StatusOK {
		t.Fatalf("role change: %d %s", r.Status, r.Body)
	}
	closedWith(t, changedWS, 5*time.Second, 4403, "role changed: sign in again")
	closedWith(t, changedWSA, 5*time.Second, 4403, "role changed: sign in again")
	// The token still says STUDENT: no new socket on either instance.
	refusedSocket(t, b, fmt.Sprintf("/ws/help/%d?token=%s", changed.ID, changed.Token), 4401)
	refusedSocket(t, a, fmt.Sprintf("/ws/help/%d?token=%s", changed.ID, changed.Token), 4401)

	if r := a.Delete(t, fmt.Sprintf("/api/admin/users/%d", removed.ID), admin.Token); r.Status != http.StatusNoContent {
		t.Fatalf("remove: %d %s", r.Status, r.Body)
	}
	closedWith(t, removedWS, 5*time.Second, 4401, "account removed")
	refusedSocket(t, b, fmt.Sprintf("/ws/help/%d?token=%s", removed.ID, removed.Token), 4401)
	refusedSocket(t, a, fmt.Sprintf("/ws/help/%d?token=%s", removed.ID, removed.Token), 4401)
	// REST refuses the removed user's access token on both instances (B
	// heard the notification), and the refresh token is gone.
	for _, s := range []*apptest.Server{a, b} {
		deadline := time.Now().Add(5 * time.Second)
		for {
			r := s.Get(t, "/api/lectures", removed.Token)
			if r.Status == http.StatusUnauthorized && r.ErrorCode() == "UNAUTHORIZED" {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("removed user's token on %s: %d %s, want 401 UNAUTHORIZED", s.URL, r.Status, r.Body)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	if r := b.Post(t, "/api/auth/refresh", "", map[string]any{"refresh_token": removed.RefreshToken}); r.Status != http.StatusUnauthorized {
		t.Fatalf("removed user's refresh: %d %s", r.Status, r.Body)
	}

	// The other student's socket saw none of this.
	stillOpen(t, otherWS, 500*time.Millisecond)
	if r := b.Get(t, "/api/lectures", other.Token); r.Status != http.StatusOK {
		t.Fatalf("other student after the changes: %d %s", r.Status, r.Body)
	}
}

// DELETE /api/admin/users/{id}: ADMIN only, 404 for an unknown id, 409 for
// the last ADMIN or for an id that is no number; other roles get 403.
func TestRemoveUserRefusals(t *testing.T) {
	s := apptest.Start(t)
	admin := s.Admin(t)
	student := s.NewUser(t, "STUDENT", "Kim")
	cases := []struct {
		path, token string
		status      int
		code        string
	}{
		{fmt.Sprintf("/api/admin/users/%d", admin.ID), student.Token, 403, "FORBIDDEN"},
		{fmt.Sprintf("/api/admin/users/%d", student.ID), "", 401, "UNAUTHORIZED"},
		{"/api/admin/users/999999", admin.Token, 404, "NOT_FOUND"},
		{"/api/admin/users/abc", admin.Token, 404, "NOT_FOUND"},
		{fmt.Sprintf("/api/admin/users/%d", admin.ID), admin.Token, 409, "CONFLICT"},
	}
	for _, c := range cases {
		r := s.Delete(t, c.path, c.token)
		if r.Status != c.status || r.ErrorCode() != c.code {
			t.Errorf("DELETE %s: %d %s, want %d %s", c.path, r.Status, r.Body, c.status, c.code)
		}
	}
	if r := s.Get(t, "/api/auth/me", student.Token); r.Status != http.StatusOK {
		t.Fatalf("refusals changed something: %d %s", r.Status, r.Body)
	}
}

// An access token that expires keeps the socket it opened, but opens no new
// one (4401 "token expired").
func TestExpiredTokenKeepsItsSocketButOpensNoNewOne(t *testing.T) {
	s := apptest.Start(t, apptest.WithConfig(func(c *app.Config) { c.AccessTTL = 2 * time.Second }))
	u := s.NewUser(t, "STUDENT", "Lee")
	ws := openHelpSocket(t, s, u)
	time.Sleep(2500 * time.Millisecond)
	stillOpen(t, ws, 500*time.Millisecond)
	ws2, resp, err := websocket.DefaultDialer.Dial(s.WSURL(fmt.Sprintf("/ws/help/%d?token=%s", u.ID, u.Token)), nil)
	if err != nil {
		t.Fatalf("dial: %v (%v)", err, resp)
	}
	defer ws2.Close()
	_ = ws2.SetReadDeadline(time.Now().Add(10 * time.Second))
	_, data, err := ws2.ReadMessage()
	var ce *websocket.CloseError
	if !errors.As(err, &ce) || ce.Code != 4401 || ce.Text != "token expired" {
		t.Fatalf("new socket with an expired token: %s, %v; want close 4401 \"token expired\"", data, err)
	}
}
