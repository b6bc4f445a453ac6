package app_test

import (
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/lockstep/lockstep/cmd/lockstep/app"
	"github.com/lockstep/lockstep/cmd/lockstep/app/apptest"
	"github.com/lockstep/lockstep/pgtest"
)

// A server that shuts down (as `lockstep serve` does on SIGTERM: Run ends,
// then Close) closes its open sockets with 1001 "going away" and a reason
// telling the client to reconnect with ?after=, not with a bare close (1005).
func TestShutdownClosesSocketsWithGoingAway(t *testing.T) {
	db := pgtest.NewEmpty(t)
	cfg := app.Config{
		HTTPAddr: "127.0.0.1:0", DatabaseURL: db.URL, EventStore: "postgres", Bus: "memory",
		JWTSecret: apptest.Secret, AccessTTL: 15 * time.Minute, RefreshTTL: time.Hour,
		AdminEmail: apptest.AdminEmail, AdminPassword: apptest.AdminPassword,
		LogLevel: "error", Env: "development", API: true, Projectors: true, Workers: true,
		LoginFailuresPerEmail: 10, LoginFailuresPerAddr: 1000, LoginWindow: 15 * time.Minute,
	}
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	a, err := app.New(ctx, cfg, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	closed := false
	defer func() {
		if !closed {
			a.Close()
		}
	}()
	if err := a.Listen(); err != nil {
		t.Fatal(err)
	}
	ran := make(chan error, 1)
	go func() { ran <- a.Run(ctx) }()
	s := &apptest.Server{URL: "http://" + a.Addr(), App: a, DB: db}
	admin := s.Admin(t)

	ws, _, err := websocket.DefaultDialer.Dial(s.WSURL("/ws/dashboard/help-requests/?token="+admin.Token), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer ws.Close()
	_ = ws.SetReadDeadline(time.Now().Add(10 * time.Second))
	if _, data, err := ws.ReadMessage(); err != nil || !strings.Contains(string(data), `"help_requests"`) {
		t.Fatalf("snapshot: %s, %v", data, err)
	}

	cancel()
	select {
	case err := <-ran:
		if err != nil {
			t.Fatalf("run: %v", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("server did not stop")
	}
	a.Close()
	closed = true
	_ = ws.SetReadDeadline(time.Now().Add(10 * time.Second))
	_, _, err = ws.ReadMessage()
	ce, ok := err.(*websocket.CloseError)
	if !ok || ce.Code != websocket.CloseGoingAway || !strings.HasPrefix(ce.Text, "server shutting down: reconnect") {
		t.Fatalf("socket ended with %v, want close 1001 \"server shutting down: reconnect…\"", err)
	}
}

// Every socket takes ?batch={ms}: out of 10–1000 it is refused before the
// upgrade with 400 naming the field; within, messages come in batch frames.
func TestSocketBatchOption(t *testing.T) {
	s := apptest.Start(t)
	admin := s.Admin(t)
	for _, bad := range []string{"5", "1001", "x"} {
		_, resp, err := websocket.DefaultDialer.Dial(s.WSURL("/ws/dashboard/help-requests/?batch="+bad+"&token="+admin.Token), nil)
		if err == nil || resp == nil || resp.StatusCode != http.StatusBadRequest {
			t.Fatalf("batch=%s: %v, want 400", bad, err)
		}
		var body struct {
			Error struct {
				Code    string            `json:"code"`
				Details map[string]string `json:"details"`
			} `json:"error"`
		}
		if err := json.NewDecoder(resp.Body).Decode(&body); err != nil || body.Error.Code != "INVALID_REQUEST" || body.Error.Details["batch"] == "" {
			t.Fatalf("batch=%s: answer %+v (%v), want INVALID_REQUEST naming batch", bad, body, err)
		}
	}
	ws, _, err := websocket.DefaultDialer.Dial(s.WSURL("/ws/dashboard/help-requests/?batch=20&token="+admin.Token), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer ws.Close()
	_ = ws.SetReadDeadline(time.Now().Add(10 * time.Second))
	var f struct {
		Type     string            `json:"type"`
		Messages []json.RawMessage `json:"messages"`
	}
	if err := ws.ReadJSON(&f); err != nil || f.Type != "batch" || len(f.Messages) != 1 || !strings.Contains(string(f.Messages[0]), `"help_requests"`) {
		t.Fatalf("first frame %+v (%v), want a batch with the snapshot", f, err)
	}
}
