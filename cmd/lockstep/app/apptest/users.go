package apptest

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

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
		u := User{Name: fmt.Sprintf("%s%02d", prefix, i), Role: string(role)}
		u.Email = fmt.Sprintf("%s-%d-%d-%d@lockstep.test", strings.ToLower(string(role)), userSeq.Add(1), i, time.Now().UnixNano())
		if err := s.DB.Pool.QueryRow(context.Background(), `INSERT INTO users (email, password_hash, name, role) VALUES ($1, 'x', $2, $3) RETURNING id`,
			u.Email, u.Name, string(role)).Scan(&u.ID); err != nil {
			t.Fatal(err)
		}
		if u.Token, err = tokens.Issue(domain.Actor{UserID: u.ID, Role: role}); err != nil {
			t.Fatal(err)
		}
		out[i] = u
	}
	return out
}
