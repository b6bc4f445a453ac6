package analytics_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/lockstep/lockstep/auth"
	"github.com/lockstep/lockstep/cmd/lockstep/app/apptest"
	"github.com/lockstep/lockstep/domain"
)

// users makes n users of role without password hashing: rows inserted
// directly, tokens signed with the test servers' key.
func users(t testing.TB, srv *apptest.Server, role domain.Role, prefix string, n int) []apptest.User {
	t.Helper()
	tokens, err := auth.NewTokens(auth.Config{Secret: []byte(apptest.Secret)})
	if err != nil {
		t.Fatal(err)
	}
	out := make([]apptest.User, n)
	for i := range n {
		u := apptest.User{Name: fmt.Sprintf("%s%02d", prefix, i), Role: string(role)}
		u.Email = fmt.Sprintf("%s-%s-%d-%d@lockstep.test", strings.ToLower(string(role)), prefix, i, time.Now().UnixNano())
		if err := srv.DB.Pool.QueryRow(context.Background(), `INSERT INTO users (email, password_hash, name, role) VALUES ($1, 'x', $2, $3) RETURNING id`,
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

// The test socket client is apptest's.
type (
	socket = apptest.Socket
	frame  = apptest.Frame
)

func dial(t testing.TB, srv *apptest.Server, path, token string) (*socket, error) {
	t.Helper()
	s, _, err := srv.Dial(t, path, token)
	return s, err
}

func mustDial(t testing.TB, srv *apptest.Server, path, token string) *socket {
	t.Helper()
	return srv.MustDial(t, path, token)
}

// untilFinished reads replay frames up to replay_finished.
func untilFinished(t testing.TB, s *socket) []frame {
	t.Helper()
	var out []frame
	for {
		f := s.Next(t)
		if f.Type == "replay_finished" {
			return out
		}
		out = append(out, f)
	}
}
