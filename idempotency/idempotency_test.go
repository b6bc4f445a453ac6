package idempotency

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/gin-gonic/gin"

	"github.com/lockstep/lockstep/eventstore"
	"github.com/lockstep/lockstep/pgtest"
)

// A first attempt left "in progress" (its connection cut before it could
// record or release the key) answers retries 409 with Retry-After until the
// lease runs out; then a retry takes the key over and runs, under the
// command key user:Idempotency-Key.
func TestInProgressKeyLeaseAndCommandKey(t *testing.T) {
	gin.SetMode(gin.TestMode)
	db := pgtest.New(t)
	var runs atomic.Int32
	var seen atomic.Value
	r := gin.New()
	r.POST("/cmd", Middleware(db.Pool, slog.New(slog.NewTextHandler(io.Discard, nil)), func(*gin.Context) int64 { return 7 }), func(c *gin.Context) {
		runs.Add(1)
		seen.Store(eventstore.CommandKey(c.Request.Context()))
		c.JSON(http.StatusCreated, gin.H{"ok": true})
	})
	send := func() *httptest.ResponseRecorder {
		w := httptest.NewRecorder()
		req := httptest.NewRequest(http.MethodPost, "/cmd", strings.NewReader(`{"a":1}`))
		req.Header.Set(Header, "k1")
		r.ServeHTTP(w, req)
		return w
	}
	sum := sha256.Sum256([]byte("POST /cmd\n" + `{"a":1}`))
	ctx := context.Background()
	if _, err := db.Pool.Exec(ctx, `INSERT INTO idempotency_keys (user_id, key, fingerprint) VALUES (7, 'k1', $1)`, hex.EncodeToString(sum[:])); err != nil {
		t.Fatal(err)
	}
	w := send()
	if w.Code != http.StatusConflict || w.Header().Get("Retry-After") != "1" || runs.Load() != 0 {
		t.Fatalf("within the lease: %d Retry-After %q, %d runs; want 409 with Retry-After, none", w.Code, w.Header().Get("Retry-After"), runs.Load())
	}
	if _, err := db.Pool.Exec(ctx, `UPDATE idempotency_keys SET created_at = now() - interval '1 minute'`); err != nil {
		t.Fatal(err)
	}
	if w := send(); w.Code != http.StatusCreated || runs.Load() != 1 {
		t.Fatalf("after the lease: %d, %d runs; want 201 and one run", w.Code, runs.Load())
	}
	if k, _ := seen.Load().(string); k != "7:k1" {
		t.Fatalf("command key %q, want 7:k1", k)
	}
	if w := send(); w.Code != http.StatusCreated || w.Header().Get("Idempotent-Replayed") != "true" || runs.Load() != 1 {
		t.Fatalf("sent again: %d replayed %q, %d runs", w.Code, w.Header().Get("Idempotent-Replayed"), runs.Load())
	}
}
