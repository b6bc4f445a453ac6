package apptest

import (
	"context"
	"fmt"
	"testing"

	"github.com/lockstep/lockstep/auth"
	"github.com/lockstep/lockstep/domain"
)

// FastUsers makes n users of role without registering them or hashing a
// password: rows inserted directly, tokens signed with the test servers'
// key (Secret). For tests that need many users quickly; they cannot log in.
func (s *Server) FastUsers(t testing.TB, role domain.Role, prefix string, n int) []User {
	t.Helper()
	tokens, err := auth.NewTokens(auth.Config{Secret: []byte(Secret)})
	if err != nil {
		t.Fatal(err)
	}
	out := make([]User, n)
	for i := range n {
		if out[i], err = insertUser(context.Background(), s.DB.Pool, tokens, role, fmt.Sprintf("%s%02d", prefix, i), i); err != nil {
			t.Fatal(err)
		}
	}
	return out
}
