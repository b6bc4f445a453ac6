package web_test

import (
	"net/http"
	"net/http/httptest"
	"strconv"
	"testing"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/lockstep/lockstep/web"
)

// TestRateLimitsRefillAndEvict: a bucket refills at PerMinute/60 a second,
// and buckets unused for over a minute are dropped (memory stays bounded).
func TestRateLimitsRefillAndEvict(t *testing.T) {
	now := time.Unix(1_000_000, 0)
	l := &web.RateLimits{
		Class: func(*gin.Context) string { return "logs" },
		User: func(c *gin.Context) (int64, bool) {
			id, err := strconv.ParseInt(c.GetHeader("X-User"), 10, 64)
			return id, err == nil
		},
		PerMinute: map[string]int{"logs": 60},
		Now:       func() time.Time { return now },
	}
	gin.SetMode(gin.ReleaseMode)
	r := gin.New()
	r.Use(l.Middleware())
	r.POST("/x", func(c *gin.Context) { c.Status(http.StatusCreated) })
	send := func(user string) *httptest.ResponseRecorder {
		w := httptest.NewRecorder()
		req := httptest.NewRequest(http.MethodPost, "/x", nil)
		req.Header.Set("X-User", user)
		r.ServeHTTP(w, req)
		return w
	}
	for i := range 60 {
		if w := send("1"); w.Code != http.StatusCreated {
			t.Fatalf("request %d under the limit: %d", i, w.Code)
		}
	}
	w := send("1")
	if w.Code != http.StatusTooManyRequests || w.Header().Get("Retry-After") != "1" {
		t.Fatalf("over the limit: %d Retry-After %q %s", w.Code, w.Header().Get("Retry-After"), w.Body)
	}
	now = now.Add(time.Second) // one token back
	if w := send("1"); w.Code != http.StatusCreated {
		t.Fatalf("after a second: %d", w.Code)
	}
	for u := 2; u < 1000; u++ {
		send(strconv.Itoa(u))
	}
	if l.Len() != 999 {
		t.Fatalf("%d buckets, want 999", l.Len())
	}
	now = now.Add(2 * time.Minute)
	send("1")
	if l.Len() != 1 {
		t.Errorf("%d buckets after two idle minutes, want 1", l.Len())
	}
}
