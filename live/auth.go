package live

import (
	"errors"
	"net/http"
	"strings"

	"github.com/lockstep/lockstep/domain"
)

// Token is a WebSocket request's access token: the Authorization header's
// bearer token when that header is present (browsers cannot set it, apps
// can), else ?token=.
func Token(r *http.Request) string {
	if h := r.Header.Get("Authorization"); h != "" {
		scheme, tok, found := strings.Cut(h, " ")
		if found && strings.EqualFold(scheme, "Bearer") {
			return strings.TrimSpace(tok)
		}
		return ""
	}
	return r.URL.Query().Get("token")
}

// UnauthorizedReason is the close reason for a socket whose token failed.
func UnauthorizedReason(err error) string {
	if errors.Is(err, domain.ErrTokenExpired) {
		return "token expired"
	}
	return "invalid or missing token"
}
