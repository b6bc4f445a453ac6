package auth

import (
	"bytes"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/alexedwards/argon2id"
	"github.com/gin-gonic/gin"

	"github.com/lockstep/lockstep/domain"
	"github.com/lockstep/lockstep/pgtest"
	"github.com/lockstep/lockstep/web"
)

func TestMain(m *testing.M) {
	gin.SetMode(gin.TestMode)
	// Cheap hashes keep the race detector's runs short; TestHashPassword
	// checks the production parameters.
	passwordParams = &argon2id.Params{Memory: 64, Iterations: 1, Parallelism: 1, SaltLength: 16, KeyLength: 32}
	os.Exit(m.Run())
}

var testSecret = []byte("0123456789abcdef0123456789abcdef-test")

var t0 = time.Date(2025, 10, 28, 10, 0, 0, 0, time.UTC)

type testClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *testClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *testClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

// syncBuffer collects log output from concurrent handlers.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

type env struct {
	t      *testing.T
	db     *pgtest.DB
	clock  *testClock
	tokens *Tokens
	svc    *Service
	router *gin.Engine
	logs   *syncBuffer
}

const (
	accessTTL  = 15 * time.Minute
	refreshTTL = 24 * time.Hour
)

func newEnv(t *testing.T, opts ...Option) *env {
	t.Helper()
	db := pgtest.New(t)
	clk := &testClock{now: t0}
	tokens, err := NewTokens(Config{Secret: testSecret, AccessTTL: accessTTL, RefreshTTL: refreshTTL, Now: clk.Now})
	if err != nil {
		t.Fatal(err)
	}
	logs := &syncBuffer{}
	log := slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	svc := NewService(db.Pool, tokens, log, clk.Now, opts...)
	r := gin.New()
	r.Use(web.Logger(log), web.Recovery(log))
	svc.Routes(r)
	svc.AdminRoutes(r)
	whoami := func(c *gin.Context) {
		a := ActorFrom(c)
		c.JSON(200, gin.H{"user_id": a.UserID, "role": a.Role})
	}
	r.GET("/ws/test", tokens.Authenticate(), whoami)
	r.GET("/instructors-only", tokens.Authenticate(), Require(domain.RoleInstructor), whoami)
	return &env{t: t, db: db, clock: clk, tokens: tokens, svc: svc, router: r, logs: logs}
}

type resp struct {
	Code int
	Body map[string]any
	Raw  string
}

func (r resp) errCode() string {
	e, _ := r.Body["error"].(map[string]any)
	s, _ := e["code"].(string)
	return s
}

func (r resp) errMessage() string {
	e, _ := r.Body["error"].(map[string]any)
	s, _ := e["message"].(string)
	return s
}

func (r resp) details() map[string]any {
	e, _ := r.Body["error"].(map[string]any)
	d, _ := e["details"].(map[string]any)
	return d
}

func (r resp) str(key string) string {
	s, _ := r.Body[key].(string)
	return s
}

type reqOpt func(*http.Request)

func withBearer(tok string) reqOpt {
	return func(r *http.Request) { r.Header.Set("Authorization", "Bearer "+tok) }
}

func fromAddr(ip string) reqOpt {
	return func(r *http.Request) { r.RemoteAddr = ip + ":40000" }
}

func asUpgrade(r *http.Request) {
	r.Header.Set("Connection", "keep-alive, Upgrade")
	r.Header.Set("Upgrade", "websocket")
}

// call drives the router; body is marshalled unless it is a string (sent raw).
func (e *env) call(method, path string, body any, opts ...reqOpt) resp {
	e.t.Helper()
	var rd *strings.Reader
	switch b := body.(type) {
	case nil:
		rd = strings.NewReader("")
	case string:
		rd = strings.NewReader(b)
	default:
		data, err := json.Marshal(b)
		if err != nil {
			e.t.Fatal(err)
		}
		rd = strings.NewReader(string(data))
	}
	req := httptest.NewRequest(method, path, rd)
	req.Header.Set("Content-Type", "application/json")
	for _, o := range opts {
		o(req)
	}
	w := httptest.NewRecorder()
	e.router.ServeHTTP(w, req)
	out := resp{Code: w.Code, Raw: w.Body.String()}
	if w.Body.Len() > 0 {
		if err := json.Unmarshal(w.Body.Bytes(), &out.Body); err != nil {
			e.t.Fatalf("%s %s: answer is not a JSON object: %v: %s", method, path, err, w.Body.String())
		}
	}
	return out
}

func regBody(email, password string, extra ...any) map[string]any {
	b := map[string]any{"email": email, "password": password, "name": "김학생", "age": 65, "phone": "01012345678", "digital_level": "BEGINNER"}
	for i := 0; i+1 < len(extra); i += 2 {
		k := extra[i].(string)
		if extra[i+1] == nil {
			delete(b, k)
		} else {
			b[k] = extra[i+1]
		}
	}
	return b
}

// mustRegister registers a user over HTTP and returns its id.
func (e *env) mustRegister(email, password string, role domain.Role) int64 {
	e.t.Helper()
	r := e.call("POST", "/api/auth/register", regBody(email, password, "role", string(role)))
	if r.Code != 201 {
		e.t.Fatalf("register %s: %d %s", email, r.Code, r.Raw)
	}
	return int64(r.Body["id"].(float64))
}

func (e *env) login(email, password string, opts ...reqOpt) resp {
	e.t.Helper()
	return e.call("POST", "/api/auth/login", map[string]any{"email": email, "password": password}, opts...)
}

// mustLogin logs in and returns the access and refresh tokens.
func (e *env) mustLogin(email, password string) (string, string) {
	e.t.Helper()
	r := e.login(email, password)
	if r.Code != 200 {
		e.t.Fatalf("login %s: %d %s", email, r.Code, r.Raw)
	}
	return r.str("access_token"), r.str("refresh_token")
}

func expect(t *testing.T, r resp, status int, code string) {
	t.Helper()
	if r.Code != status || r.errCode() != code {
		t.Fatalf("want %d %s, got %d %s", status, code, r.Code, r.Raw)
	}
	if code != "" {
		e, _ := r.Body["error"].(map[string]any)
		if _, ok := e["message"].(string); !ok {
			t.Fatalf("error without message: %s", r.Raw)
		}
		if _, ok := e["details"].(map[string]any); !ok {
			t.Fatalf("error without details object: %s", r.Raw)
		}
	}
}

func (e *env) count(sql string, args ...any) int {
	e.t.Helper()
	var n int
	if err := e.db.Pool.QueryRow(e.t.Context(), sql, args...).Scan(&n); err != nil {
		e.t.Fatalf("%s: %v", sql, err)
	}
	return n
}

func email(i int) string { return fmt.Sprintf("user%d@example.com", i) }
