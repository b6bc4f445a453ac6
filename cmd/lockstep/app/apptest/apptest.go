// Package apptest starts the whole Lockstep backend in-process, on port 0,
// over a fresh PostgreSQL database, for black-box HTTP and WebSocket tests.
package apptest

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"sync/atomic"
	"testing"
	"time"

	"github.com/lockstep/lockstep/cmd/lockstep/app"
	"github.com/lockstep/lockstep/pgtest"
)

// Admin credentials every test server ensures.
const (
	AdminEmail    = "admin@lockstep.test"
	AdminPassword = "admin-password-1"
	// Secret is the JWT key of test servers (shared, so two instances accept each other's tokens).
	Secret = "test-secret-test-secret-test-secret!"
)

// Server is a running backend.
type Server struct {
	URL string
	// MetricsURL is the base URL of the /metrics listener (METRICS_ADDR on
	// port 0), e.g. MetricsURL+"/metrics"; empty when a test turned it off.
	MetricsURL string
	App        *app.App
	DB         *pgtest.DB
	t          testing.TB
}

// Option changes a test server's configuration.
type Option func(*options)

type options struct {
	db  *pgtest.DB
	cfg func(*app.Config)
}

// WithDB runs the server on an existing test database (two instances, one database).
func WithDB(db *pgtest.DB) Option { return func(o *options) { o.db = db } }

// WithConfig edits the configuration before the server starts.
func WithConfig(f func(*app.Config)) Option { return func(o *options) { o.cfg = f } }

// Start runs a server until the test ends.
func Start(t testing.TB, opts ...Option) *Server {
	t.Helper()
	var o options
	for _, f := range opts {
		f(&o)
	}
	if o.db == nil {
		o.db = pgtest.NewEmpty(t)
	}
	cfg := app.Config{
		HTTPAddr:              "127.0.0.1:0",
		MetricsAddr:           "127.0.0.1:0",
		RateLimitsOff:         true, // tests of the limits turn them on
		DatabaseURL:           o.db.URL,
		EventStore:            "postgres",
		Bus:                   "memory",
		JWTSecret:             Secret,
		AccessTTL:             15 * time.Minute,
		RefreshTTL:            720 * time.Hour,
		AdminEmail:            AdminEmail,
		AdminPassword:         AdminPassword,
		LogLevel:              "error",
		Env:                   "development",
		API:                   true,
		Projectors:            true,
		Workers:               true,
		LoginFailuresPerEmail: 10,
		LoginFailuresPerAddr:  100000,
		LoginWindow:           15 * time.Minute,
	}
	if o.cfg != nil {
		o.cfg(&cfg)
	}
	if err := cfg.Validate(); err != nil {
		t.Fatalf("test server config: %v", err)
	}
	level := slog.LevelError
	if os.Getenv("LOCKSTEP_TEST_LOG") != "" {
		level = slog.LevelDebug
	}
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level}))
	ctx, cancel := context.WithCancel(context.Background())
	a, err := app.New(ctx, cfg, log)
	if err != nil {
		cancel()
		t.Fatalf("start test server: %v", err)
	}
	if err := a.Listen(); err != nil {
		cancel()
		a.Close()
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- a.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("server stopped with %v", err)
			}
		case <-time.After(30 * time.Second):
			t.Errorf("server did not stop within 30s")
		}
		a.Close()
	})
	srv := &Server{URL: "http://" + a.Addr(), App: a, DB: o.db, t: t}
	if m := a.MetricsAddr(); m != "" {
		srv.MetricsURL = "http://" + m
	}
	return srv
}

// Response is an HTTP answer with its body read.
type Response struct {
	Status int
	Header http.Header
	Body   []byte
}

// JSON decodes the body into a generic map (fails the test if it is not an object).
func (r *Response) JSON(t testing.TB) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(r.Body, &m); err != nil {
		t.Fatalf("response body is not a JSON object: %v\n%s", err, r.Body)
	}
	return m
}

// Decode decodes the body into v.
func (r *Response) Decode(t testing.TB, v any) {
	t.Helper()
	if err := json.Unmarshal(r.Body, v); err != nil {
		t.Fatalf("decode response: %v\n%s", err, r.Body)
	}
}

// ErrorCode is the contract error's code ("" if the body is not an error).
func (r *Response) ErrorCode() string {
	var e struct {
		Error struct {
			Code string `json:"code"`
		} `json:"error"`
	}
	_ = json.Unmarshal(r.Body, &e)
	return e.Error.Code
}

// Request is a request to send; Body is marshalled to JSON unless it is []byte or string.
type Request struct {
	Method string
	Path   string
	Token  string
	Body   any
	Header map[string]string
	// Unchecked: the request is not checked against openapi.yaml (fuzzing
	// sends bodies the document refuses and the server may still accept,
	// ignoring unknown fields); the answer still is.
	Unchecked bool
}

// Do sends a request and reads the whole answer.
func (s *Server) Do(t testing.TB, req Request) *Response {
	t.Helper()
	var body io.Reader
	switch b := req.Body.(type) {
	case nil:
	case []byte:
		body = bytes.NewReader(b)
	case string:
		body = bytes.NewReader([]byte(b))
	default:
		data, err := json.Marshal(b)
		if err != nil {
			t.Fatal(err)
		}
		body = bytes.NewReader(data)
	}
	hr, err := http.NewRequest(req.Method, s.URL+req.Path, body)
	if err != nil {
		t.Fatal(err)
	}
	if body != nil {
		hr.Header.Set("Content-Type", "application/json")
	}
	if req.Token != "" {
		hr.Header.Set("Authorization", "Bearer "+req.Token)
	}
	for k, v := range req.Header {
		hr.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(hr)
	if err != nil {
		t.Fatalf("%s %s: %v", req.Method, req.Path, err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	out := &Response{Status: resp.StatusCode, Header: resp.Header, Body: data}
	s.checkHTTP(t, hr, out, !req.Unchecked) // against apidocs' openapi.yaml (docs.go)
	return out
}

// Get, Post, Put, Patch and Delete are shorthands for Do.
func (s *Server) Get(t testing.TB, path, token string) *Response {
	t.Helper()
	return s.Do(t, Request{Method: http.MethodGet, Path: path, Token: token})
}

// Post sends a JSON body.
func (s *Server) Post(t testing.TB, path, token string, body any) *Response {
	t.Helper()
	return s.Do(t, Request{Method: http.MethodPost, Path: path, Token: token, Body: body})
}

// Put sends a JSON body.
func (s *Server) Put(t testing.TB, path, token string, body any) *Response {
	t.Helper()
	return s.Do(t, Request{Method: http.MethodPut, Path: path, Token: token, Body: body})
}

// Patch sends a JSON body.
func (s *Server) Patch(t testing.TB, path, token string, body any) *Response {
	t.Helper()
	return s.Do(t, Request{Method: http.MethodPatch, Path: path, Token: token, Body: body})
}

// Delete sends a DELETE.
func (s *Server) Delete(t testing.TB, path, token string) *Response {
	t.Helper()
	return s.Do(t, Request{Method: http.MethodDelete, Path: path, Token: token})
}

// User is a registered, logged-in user.
type User struct {
	ID           int64
	Email        string
	Name         string
	Role         string
	Token        string
	RefreshToken string
}

var userSeq atomic.Int64

// NewUser registers a user with the role (STUDENT or INSTRUCTOR) and logs in.
func (s *Server) NewUser(t testing.TB, role, name string) User {
	t.Helper()
	n := userSeq.Add(1)
	email := fmt.Sprintf("%s-%d-%d@lockstep.test", role, n, time.Now().UnixNano())
	resp := s.Post(t, "/api/auth/register", "", map[string]any{
		"email": email, "password": "password-123", "name": name, "role": role, "age": 67, "phone": "01012345678", "digital_level": "BEGINNER",
	})
	if resp.Status != http.StatusCreated {
		t.Fatalf("register %s: %d %s", role, resp.Status, resp.Body)
	}
	return s.Login(t, email, "password-123")
}

// Login logs in with email and password.
func (s *Server) Login(t testing.TB, email, password string) User {
	t.Helper()
	resp := s.Post(t, "/api/auth/login", "", map[string]any{"email": email, "password": password})
	if resp.Status != http.StatusOK {
		t.Fatalf("login %s: %d %s", email, resp.Status, resp.Body)
	}
	var out struct {
		AccessToken  string `json:"access_token"`
		RefreshToken string `json:"refresh_token"`
		User         struct {
			ID    int64  `json:"id"`
			Email string `json:"email"`
			Name  string `json:"name"`
			Role  string `json:"role"`
		} `json:"user"`
	}
	resp.Decode(t, &out)
	return User{ID: out.User.ID, Email: out.User.Email, Name: out.User.Name, Role: out.User.Role, Token: out.AccessToken, RefreshToken: out.RefreshToken}
}

// Admin logs in as the ensured ADMIN account.
func (s *Server) Admin(t testing.TB) User {
	t.Helper()
	return s.Login(t, AdminEmail, AdminPassword)
}

// WSURL is the WebSocket URL of path on this server.
func (s *Server) WSURL(path string) string {
	return "ws" + s.URL[len("http"):] + path
}

// Cast registers the users most tests start with: an instructor (박강사),
// another instructor (최강사) and a student (김학생).
func (s *Server) Cast(t testing.TB) (owner, other, student User) {
	t.Helper()
	return s.NewUser(t, "INSTRUCTOR", "박강사"), s.NewUser(t, "INSTRUCTOR", "최강사"), s.NewUser(t, "STUDENT", "김학생")
}

// Pagination is the pagination object of the contract's list answers.
type Pagination struct {
	Page       int   `json:"page"`
	PageSize   int   `json:"page_size"`
	TotalCount int64 `json:"total_count"`
	TotalPages int64 `json:"total_pages"`
}
