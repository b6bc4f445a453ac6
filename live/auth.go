package live

import (
	"errors"
	"net/http"

	"github.com/lockstep/lockstep/auth"
	"github.com/lockstep/lockstep/domain"
)

// Token is a WebSocket request's access token, read as every request's is
// (auth.RequestToken): the Authorization header's bearer token when that
// header is present (browsers cannot set it, apps can), else ?token= — and
// that only on a GET WebSocket upgrade of a /ws path. "" when there is none.
func Token(r *http.Request) string {
	tok, _ := auth.RequestToken(r)
	return tok
}

// UnauthorizedReason is the close reason for a socket whose token failed.
func UnauthorizedReason(err error) string {
	if errors.Is(err, domain.ErrTokenExpired) {
		return "token expired"
	}
	return "invalid or missing token"
}
