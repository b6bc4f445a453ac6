package analytics_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"

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

// frame is one received WebSocket message.
type frame struct {
	Type     string          `json:"type"`
	Data     json.RawMessage `json:"data"`
	Position uint64          `json:"position"`
	raw      []byte
}

// socket is a test WebSocket client that reads in the background.
type socket struct {
	conn   *websocket.Conn
	frames chan frame
	done   chan struct{}
	mu     sync.Mutex
	err    error
}

func dial(t testing.TB, srv *apptest.Server, path, token string) (*socket, error) {
	t.Helper()
	url := srv.WSURL(path)
	if token != "" {
		sep := "?"
		if strings.Contains(url, "?") {
			sep = "&"
		}
		url += sep + "token=" + token
	}
	d := websocket.Dialer{HandshakeTimeout: 10 * time.Second}
	conn, _, err := d.Dial(url, http.Header{})
	if err != nil {
		return nil, err
	}
	s := &socket{conn: conn, frames: make(chan frame, 4096), done: make(chan struct{})}
	go func() {
		defer close(s.done)
		for {
			_, data, err := conn.ReadMessage()
			if err != nil {
				s.mu.Lock()
				s.err = err
				s.mu.Unlock()
				return
			}
			var f frame
			if err := json.Unmarshal(data, &f); err != nil {
				s.mu.Lock()
				s.err = fmt.Errorf("not JSON: %s", data)
				s.mu.Unlock()
				return
			}
			f.raw = data
			s.frames <- f
		}
	}()
	t.Cleanup(func() { _ = conn.Close(); <-s.done })
	return s, nil
}

func mustDial(t testing.TB, srv *apptest.Server, path, token string) *socket {
	t.Helper()
	s, err := dial(t, srv, path, token)
	if err != nil {
		t.Fatalf("dial %s: %v", path, err)
	}
	return s
}

func (s *socket) send(t testing.TB, v any) {
	t.Helper()
	if err := s.conn.WriteJSON(v); err != nil {
		t.Fatal(err)
	}
}

func (s *socket) next(t testing.TB) frame {
	t.Helper()
	select {
	case f := <-s.frames:
		return f
	case <-s.done:
		select {
		case f := <-s.frames:
			return f
		default:
		}
		s.mu.Lock()
		defer s.mu.Unlock()
		t.Fatalf("socket closed while waiting for a message: %v", s.err)
	case <-time.After(15 * time.Second):
		t.Fatal("no message within 15s")
	}
	return frame{}
}

func (s *socket) expect(t testing.TB, typ string) frame {
	t.Helper()
	f := s.next(t)
	if f.Type != typ {
		t.Fatalf("got %s, want %s: %s", f.Type, typ, f.raw)
	}
	return f
}

// closeCode waits for the server to close the socket and returns the code.
func (s *socket) closeCode(t testing.TB) int {
	t.Helper()
	select {
	case <-s.done:
	case <-time.After(10 * time.Second):
		t.Fatal("socket not closed within 10s")
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	var ce *websocket.CloseError
	if errors.As(s.err, &ce) {
		return ce.Code
	}
	t.Fatalf("socket ended without a close frame: %v", s.err)
	return 0
}

// untilFinished reads replay frames up to replay_finished.
func (s *socket) untilFinished(t testing.TB) []frame {
	t.Helper()
	var out []frame
	for {
		f := s.next(t)
		if f.Type == "replay_finished" {
			return out
		}
		out = append(out, f)
	}
}
