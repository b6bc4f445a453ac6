package web

import (
	"math"
	"strconv"
	"sync"
	"time"

	"github.com/gin-gonic/gin"
	"golang.org/x/time/rate"

	"github.com/lockstep/lockstep/domain"
)

// RateLimits limits requests per user with one token bucket per (class,
// user): a class allows PerMinute requests a minute, all of them at once
// at most. A request over the limit answers 429 RATE_LIMITED with
// Retry-After (whole seconds) and reaches no handler, so it changes
// nothing. Buckets live in this process only: the limits are per instance.
// A bucket unused for a minute is full again and is dropped, so memory is
// bounded by the users active in the last minute or two.
type RateLimits struct {
	// Class names the limit class of a request ("" : not limited).
	Class func(*gin.Context) string
	// User returns the caller's id from its token (false: not
	// authenticated; the route's own authentication answers).
	User func(*gin.Context) (int64, bool)
	// PerMinute is each class's limit.
	PerMinute map[string]int
	// Now is the clock (default time.Now).
	Now func() time.Time

	mu        sync.Mutex
	buckets   map[bucketKey]*bucket
	lastSweep time.Time
}

type bucketKey struct {
	class string
	user  int64
}

type bucket struct {
	lim  *rate.Limiter
	used time.Time
}

// idleAfter is how long an unused bucket is kept (after a minute it is full).
const idleAfter = time.Minute

// Middleware is the gin middleware; it runs after routing (it reads
// c.FullPath() through Class).
func (l *RateLimits) Middleware() gin.HandlerFunc {
	return func(c *gin.Context) {
		class := l.Class(c)
		n := l.PerMinute[class]
		if class == "" || n <= 0 {
			return
		}
		user, ok := l.User(c)
		if !ok {
			return
		}
		if wait := l.take(class, user, n); wait > 0 {
			secs := int(math.Ceil(wait.Seconds()))
			c.Header("Retry-After", strconv.Itoa(max(secs, 1)))
			Error(c, &domain.Error{Code: domain.CodeRateLimited,
				Message: "too many requests; retry after " + strconv.Itoa(max(secs, 1)) + " s",
				Details: map[string]any{"limit": class, "per_minute": n, "retry_after_seconds": max(secs, 1)}})
			return
		}
	}
}

// take spends a token of (class, user), or returns how long until one is there.
func (l *RateLimits) take(class string, user int64, perMinute int) time.Duration {
	now := time.Now()
	if l.Now != nil {
		now = l.Now()
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.buckets == nil {
		l.buckets = map[bucketKey]*bucket{}
	}
	if now.Sub(l.lastSweep) > idleAfter {
		for k, b := range l.buckets {
			if now.Sub(b.used) > idleAfter {
				delete(l.buckets, k)
			}
		}
		l.lastSweep = now
	}
	k := bucketKey{class, user}
	b := l.buckets[k]
	if b == nil {
		b = &bucket{lim: rate.NewLimiter(rate.Limit(float64(perMinute)/60), perMinute)}
		l.buckets[k] = b
	}
	b.used = now
	r := b.lim.ReserveN(now, 1)
	if !r.OK() {
		return time.Minute
	}
	if d := r.DelayFrom(now); d > 0 {
		r.CancelAt(now)
		return d
	}
	return 0
}

// Len is how many buckets are held (for tests of the eviction).
func (l *RateLimits) Len() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.buckets)
}
