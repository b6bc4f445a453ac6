package analytics_test

import (
	"testing"

	"github.com/lockstep/lockstep/cmd/lockstep/app/apptest"
)

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
