package live_test

import (
	"errors"
	"fmt"
	"net/http/httptest"
	"testing"

	"github.com/lockstep/lockstep/domain"
	"github.com/lockstep/lockstep/live"
)

func TestToken(t *testing.T) {
	cases := []struct {
		name, method, url, header string
		upgrade                   bool
		want                      string
	}{
		{"query_on_socket_upgrade", "GET", "/ws/session/1/student/?token=q", "", true, "q"},
		{"query_on_bare_ws_upgrade", "GET", "/ws?token=q", "", true, "q"},
		{"header_wins_over_query", "GET", "/ws/x?token=q", "Bearer h", true, "h"},
		{"bearer_case_insensitive", "GET", "/ws/x", "bearer h", false, "h"},
		{"other_scheme_is_no_token", "GET", "/ws/x?token=q", "Basic abc", true, ""},
		{"neither", "GET", "/ws/x", "", true, ""},
		// ?token= is read only on a GET WebSocket upgrade of a /ws path.
		{"query_without_upgrade", "GET", "/ws/x?token=q", "", false, ""},
		{"query_on_post_upgrade", "POST", "/ws/x?token=q", "", true, ""},
		{"query_off_socket_path", "GET", "/api/lectures?token=q", "", true, ""},
		{"query_on_ws_lookalike", "GET", "/wsx?token=q", "", true, ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := httptest.NewRequest(c.method, c.url, nil)
			if c.header != "" {
				r.Header.Set("Authorization", c.header)
			}
			if c.upgrade {
				r.Header.Set("Connection", "Upgrade")
				r.Header.Set("Upgrade", "websocket")
			}
			if got := live.Token(r); got != c.want {
				t.Fatalf("Token = %q, want %q", got, c.want)
			}
		})
	}
	if got := live.UnauthorizedReason(fmt.Errorf("verify: %w", domain.ErrTokenExpired)); got != "token expired" {
		t.Errorf("expired reason = %q", got)
	}
	if got := live.UnauthorizedReason(errors.New("bad signature")); got != "invalid or missing token" {
		t.Errorf("invalid reason = %q", got)
	}
}
