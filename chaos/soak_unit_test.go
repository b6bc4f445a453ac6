package chaos

import (
	"math"
	"strings"
	"testing"
	"time"
)

// The soak's verdict: a gauge that levels off passes, one that keeps
// climbing fails, and the p99 is read from the histogram's difference.
func TestGrowthVerdict(t *testing.T) {
	flat := make([]sample, 30)
	climbing := make([]sample, 30)
	for i := range flat {
		// warm-up in the first third, then flat with noise
		rss := int64(60+min(i, 10)*4+(i%3)) << 20
		flat[i] = sample{RSS: rss, Goroutines: 700 + i%5, FDs: 320, DBConns: 12, P99: 40 * time.Millisecond}
		climbing[i] = flat[i]
		climbing[i].Goroutines = 700 + 40*i
	}
	if g := growth(flat); len(g) != 0 {
		t.Fatalf("flat run judged growing: %v", g)
	}
	g := growth(climbing)
	if len(g) != 1 || !strings.HasPrefix(g[0], "goroutines") {
		t.Fatalf("climbing goroutines not caught: %v", g)
	}
	prev := map[float64]float64{0.01: 100, 0.1: 150, 1: 150, math.Inf(1): 150}
	cur := map[float64]float64{0.01: 100, 0.1: 1140, 1: 1150, math.Inf(1): 1150}
	if p, n := p99Since(prev, cur); p != 100*time.Millisecond || n != 1000 {
		t.Fatalf("p99 %s over %d, want 100ms over 1000", p, n)
	}
}
