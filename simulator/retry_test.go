package simulator

import (
	"context"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
)

// A request answered 503 (or 502 by a proxy) is sent again with the same
// Idempotency-Key and counted as sent again, not as an error; without
// Retries the 503 is an error.
func TestRetrySameKey(t *testing.T) {
	var mu sync.Mutex
	var keys []string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		keys = append(keys, r.Header.Get("Idempotency-Key"))
		n := len(keys)
		mu.Unlock()
		switch n {
		case 1:
			w.Header().Set("Retry-After", "0")
			w.WriteHeader(http.StatusServiceUnavailable)
			_, _ = w.Write([]byte(`{"error":{"code":"UNAVAILABLE","message":"the database is unavailable; retry"}}`))
		case 2:
			w.WriteHeader(http.StatusBadGateway) // a proxy without a backend
		default:
			w.WriteHeader(http.StatusCreated)
			_, _ = w.Write([]byte(`{"ok":true}`))
		}
	}))
	defer srv.Close()

	a := newAPI(srv.URL, nil, 3)
	var out struct{ OK bool }
	if err := a.call(context.Background(), http.MethodPost, "/api/progress/update", "t", map[string]any{"x": 1}, &out); err != nil || !out.OK {
		t.Fatalf("call: %v %+v", err, out)
	}
	if len(keys) != 3 || keys[0] == "" || keys[0] != keys[1] || keys[1] != keys[2] {
		t.Fatalf("keys %q: want three attempts with one key", keys)
	}
	if a.sentAgain["POST /api/progress/update → 503"] != 1 || a.sentAgain["POST /api/progress/update → 502"] != 1 || len(a.errors) != 0 {
		t.Fatalf("sent again %v, errors %v", a.sentAgain, a.errors)
	}

	keys = nil
	b := newAPI(srv.URL, nil, 0)
	if err := b.call(context.Background(), http.MethodPost, "/api/progress/update", "t", nil, nil); err == nil {
		t.Fatal("503 without retries: no error")
	}
	if b.errors["POST /api/progress/update → 503"] != 1 {
		t.Fatalf("errors %v", b.errors)
	}
}
