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
		name, url, header, want string
	}{
		{"query_only", "/ws?token=q", "", "q"},
		{"header_wins_over_query", "/ws?token=q", "Bearer h", "h"},
		{"bearer_case_insensitive", "/ws", "bearer h", "h"},
		{"other_scheme_is_no_token", "/ws?token=q", "Basic abc", ""},
		{"neither", "/ws", "", ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := httptest.NewRequest("GET", c.url, nil)
			if c.header != "" {
				r.Header.Set("Authorization", c.header)
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
