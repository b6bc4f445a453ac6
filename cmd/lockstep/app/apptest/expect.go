package apptest

import (
	"io"
	"log/slog"
	"testing"
	"time"
)

// Must fails the test unless the answer has status; it returns r, so that
// calls chain: apptest.Must(t, s.Post(…), 201).ID(t, "id").
func Must(t testing.TB, r *Response, status int) *Response {
	t.Helper()
	if r.Status != status {
		t.Fatalf("status %d, want %d: %s", r.Status, status, r.Body)
	}
	return r
}

// MustError fails the test unless the answer has status and the contract's
// error code ("" for an answer that is not an error).
func MustError(t testing.TB, r *Response, status int, code string) *Response {
	t.Helper()
	if r.Status != status || r.ErrorCode() != code {
		t.Fatalf("got %d %q, want %d %q: %s", r.Status, r.ErrorCode(), status, code, r.Body)
	}
	return r
}

// Must is apptest.Must as a method.
func (r *Response) Must(t testing.TB, status int) *Response {
	t.Helper()
	return Must(t, r, status)
}

// ID is the positive number at key of the JSON object the body holds.
func (r *Response) ID(t testing.TB, key string) int64 {
	t.Helper()
	v, ok := r.JSON(t)[key].(float64)
	if !ok || v <= 0 {
		t.Fatalf("no %s in %s", key, r.Body)
	}
	return int64(v)
}

// Eventually polls cond every 10 ms until it holds, failing the test when
// timeout passes first.
func Eventually(t testing.TB, what string, timeout time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// QuietLogger discards everything (components under test that log their
// expected failures).
func QuietLogger() *slog.Logger {
	return slog.New(slog.NewTextHandler(io.Discard, nil))
}

// ID is r.ID as a function.
func ID(t testing.TB, r *Response, key string) int64 {
	t.Helper()
	return r.ID(t, key)
}

// GetOK GETs path with token, requires 200 and decodes the answer as a T.
func GetOK[T any](t testing.TB, s *Server, path, token string) T {
	t.Helper()
	var v T
	Must(t, s.Get(t, path, token), 200).Decode(t, &v)
	return v
}
