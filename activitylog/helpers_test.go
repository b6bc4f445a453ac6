package activitylog_test

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/gin-gonic/gin"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/lockstep/lockstep/activitylog"
	"github.com/lockstep/lockstep/auth"
	"github.com/lockstep/lockstep/bus"
	"github.com/lockstep/lockstep/cmd/lockstep/app/apptest"
	"github.com/lockstep/lockstep/domain"
	"github.com/lockstep/lockstep/web"
)

const testSecret = "activitylog-test-secret-0123456789abcdef"

func newTokens(t testing.TB) *auth.Tokens {
	t.Helper()
	tok, err := auth.NewTokens(auth.Config{Secret: []byte(testSecret), AccessTTL: time.Hour, RefreshTTL: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

func token(t testing.TB, tok *auth.Tokens, id int64, role domain.Role) string {
	t.Helper()
	s, err := tok.Issue(domain.Actor{UserID: id, Role: role})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// newRouter is the engine as the app builds it: the global 1 MiB body limit
// everywhere but the batch route, which has its own.
func newRouter(tok *auth.Tokens, h *activitylog.Handler) *gin.Engine {
	gin.SetMode(gin.ReleaseMode)
	r := gin.New()
	limit := web.BodyLimit(1 << 20)
	r.Use(func(c *gin.Context) {
		if c.Request.URL.Path == activitylog.BatchPath {
			return
		}
		limit(c)
	})
	h.Routes(r, tok.Authenticate())
	return r
}

// recorder is a Publisher that keeps what it is given.
type recorder struct {
	mu   sync.Mutex
	msgs []*message.Message
	fail error
}

func (r *recorder) Publish(_ context.Context, topic string, msgs ...*message.Message) error {
	if topic != bus.TopicActivityLogs {
		panic("unexpected topic " + topic)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.fail != nil {
		return r.fail
	}
	r.msgs = append(r.msgs, msgs...)
	return nil
}

func (r *recorder) logs(t testing.TB) []activitylog.Log {
	t.Helper()
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []activitylog.Log
	for _, m := range r.msgs {
		l, err := activitylog.DecodeMessage(m)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, l...)
	}
	return out
}

type response struct {
	Status int
	Body   []byte
}

func (r response) json(t testing.TB) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(r.Body, &m); err != nil {
		t.Fatalf("body is not a JSON object: %v: %s", err, r.Body)
	}
	return m
}

func (r response) errorDetails(t testing.TB) (string, map[string]any) {
	t.Helper()
	var e struct {
		Error struct {
			Code    string         `json:"code"`
			Details map[string]any `json:"details"`
		} `json:"error"`
	}
	if err := json.Unmarshal(r.Body, &e); err != nil {
		t.Fatalf("not an error body: %s", r.Body)
	}
	return e.Error.Code, e.Error.Details
}

// post sends body (marshalled unless []byte or string) to h.
func post(t testing.TB, h http.Handler, path, tok string, body any) response {
	t.Helper()
	var data []byte
	switch b := body.(type) {
	case []byte:
		data = b
	case string:
		data = []byte(b)
	default:
		var err error
		if data, err = json.Marshal(b); err != nil {
			t.Fatal(err)
		}
	}
	req := httptest.NewRequest(http.MethodPost, path, bytes.NewReader(data))
	req.Header.Set("Content-Type", "application/json")
	if tok != "" {
		req.Header.Set("Authorization", "Bearer "+tok)
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	return response{Status: rec.Code, Body: rec.Body.Bytes()}
}

// joinSession puts user into a session of the sessions read model.
func joinSession(t testing.TB, pool *pgxpool.Pool, sessionID, userID int64, status string) {
	t.Helper()
	ctx := context.Background()
	_, err := pool.Exec(ctx, `
		INSERT INTO live_sessions (session_id, session_code, title, lecture_id, lecture_title, instructor_id, status, created_at, position)
		VALUES ($1, 'ABCDEF', 'class', 1, 'lecture', 99, $2, now(), 1)
		ON CONFLICT (session_id) DO UPDATE SET status = EXCLUDED.status`, sessionID, status)
	if err != nil {
		t.Fatal(err)
	}
	_, err = pool.Exec(ctx, `
		INSERT INTO session_participants (session_id, user_id, participant_id, lecture_id, status, joined_at)
		VALUES ($1::bigint, $2::bigint, $1::bigint * 1000 + $2::bigint, 1, 'ACTIVE', now()) ON CONFLICT DO NOTHING`, sessionID, userID)
	if err != nil {
		t.Fatal(err)
	}
}

// addSubtask puts a subtask of lecture into the lectures read model.
func addSubtask(t testing.TB, pool *pgxpool.Pool, id, lecture int64) {
	t.Helper()
	_, err := pool.Exec(context.Background(), `
		INSERT INTO rm_lecture_subtasks (id, task_id, lecture_id, title, description, order_index, target_action,
			target_element_hint, guide_text, voice_guide_text, created_at, updated_at)
		VALUES ($1, $1, $2, 'step', '', 1, 'CLICK', '', '', '', now(), now())`, id, lecture)
	if err != nil {
		t.Fatal(err)
	}
}

func countRows(t testing.TB, pool *pgxpool.Pool, where string, args ...any) int {
	t.Helper()
	var n int
	if err := pool.QueryRow(context.Background(), `SELECT count(*) FROM activity_logs WHERE `+where, args...).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

// startWriter runs a log writer until the test ends.
func startWriter(t testing.TB, b *bus.Bus, store activitylog.Store) {
	t.Helper()
	sub, err := b.Subscriber(activitylog.WriterGroup)
	if err != nil {
		t.Fatal(err)
	}
	w := activitylog.NewWriter(activitylog.WriterConfig{Subscriber: sub, Store: store, Logger: apptest.QuietLogger(),
		MinBackoff: 10 * time.Millisecond, MaxBackoff: 50 * time.Millisecond})
	ctx, cancel := context.WithCancel(context.Background())
	if err := w.Subscribe(ctx); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { defer close(done); _ = w.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
}
