package chaos

import (
	"bufio"
	"context"
	"flag"
	"fmt"
	"math"
	"net/http"
	"os"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/lockstep/lockstep/pgtest"
	"github.com/lockstep/lockstep/simulator"
)

var (
	soak         = flag.Bool("chaos.soak", false, "run the soak: back-to-back classes against one server process for -chaos.soak.duration")
	soakDuration = flag.Duration("chaos.soak.duration", 30*time.Minute, "length of the soak")
	soakStudents = flag.Int("chaos.soak.students", 300, "class size of the soak")
	soakSteps    = flag.Int("chaos.soak.steps", 20, "steps of every soak class")
	soakEvery    = flag.Duration("chaos.soak.every", time.Minute, "sampling interval of the soak")
)

// sample is one soak measurement of the server process.
type sample struct {
	At         time.Duration
	RSS        int64 // bytes
	Goroutines int
	FDs        int
	DBConns    int
	P99        time.Duration // of the POST requests answered since the previous sample
	Requests   int
}

// TestSoak runs classes of -chaos.soak.students students (steps, progress,
// help, logs at human speed) one after another against one `lockstep serve`
// for -chaos.soak.duration, samples the process every -chaos.soak.every and
// fails on growth that does not level off. `make soak` runs it.
func TestSoak(t *testing.T) {
	if !*soak {
		t.Skip("the soak runs with -chaos.soak (make soak)")
	}
	db := pgtest.New(t)
	srv := startServer(t, db.URL, "BUS=postgres")
	metricsURL := srv.metricsURL()
	pid := srv.cmd.Process.Pid

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var (
		mu       sync.Mutex
		samples  []sample
		prevHist map[float64]float64
	)
	began := time.Now()
	take := func() {
		s := sample{At: time.Since(began).Round(time.Second)}
		var err error
		if s.RSS, s.FDs, err = procStatus(pid); err != nil {
			t.Errorf("proc: %v", err)
		}
		g, hist, err := scrape(metricsURL)
		if err != nil {
			t.Errorf("metrics: %v", err)
		}
		s.Goroutines = g
		s.P99, s.Requests = p99Since(prevHist, hist)
		prevHist = hist
		s.DBConns = dbConns(ctx, db.Pool, db.Name)
		mu.Lock()
		samples = append(samples, s)
		mu.Unlock()
		fmt.Printf("soak %s\n", s.row())
	}
	stopSampling := make(chan struct{})
	sampled := make(chan struct{})
	go func() {
		defer close(sampled)
		take()
		tk := time.NewTicker(*soakEvery)
		defer tk.Stop()
		for {
			select {
			case <-stopSampling:
				take()
				return
			case <-tk.C:
				take()
			}
		}
	}()

	classes, failures := 0, 0
	var totals simulator.Report
	// The class running when the time is up is cut there: the soak's
	// length is the duration, not a whole number of classes.
	classCtx, stopClasses := context.WithTimeout(ctx, *soakDuration)
	defer stopClasses()
	for classCtx.Err() == nil {
		r, err := simulator.Run(classCtx, simulator.Config{
			Server: srv.URL(), Students: *soakStudents, Steps: *soakSteps, HelpRate: 0.1, LogRate: 0.3,
			Speed: 1, Timeout: 20 * time.Minute, Seed: int64(classes + 1),
		})
		classes++
		if classCtx.Err() != nil {
			fmt.Printf("soak class %d cut at the end of the soak\n", classes)
			break
		}
		if err != nil || !r.OK() {
			failures++
			msg := fmt.Sprint(err)
			if r != nil {
				msg += " " + r.Failure()
			}
			t.Errorf("class %d: %s", classes, msg)
		}
		if r != nil {
			totals.ProgressUpdates += r.ProgressUpdates
			totals.LogBatches += r.LogBatches
			totals.Logs += r.Logs
			totals.HelpRequests += r.HelpRequests
			totals.Expected += r.Expected
			totals.Delivered += r.Delivered
			fmt.Printf("soak class %d done at %s: %d/%d step messages, fan-out p99 %s\n",
				classes, time.Since(began).Round(time.Second), r.Delivered, r.Expected, r.Latency().P99)
		}
	}
	close(stopSampling)
	<-sampled

	mu.Lock()
	defer mu.Unlock()
	var b strings.Builder
	fmt.Fprintf(&b, "soak: %d classes of %d students (%d steps, speed 1) in %s against one server (BUS=postgres)\n",
		classes, *soakStudents, *soakSteps, time.Since(began).Round(time.Second))
	fmt.Fprintf(&b, "  %d progress updates, %d log batches (%d logs), %d help requests, %d/%d step messages delivered\n",
		totals.ProgressUpdates, totals.LogBatches, totals.Logs, totals.HelpRequests, totals.Delivered, totals.Expected)
	fmt.Fprintf(&b, "  %s\n", header())
	for _, s := range samples {
		fmt.Fprintf(&b, "  %s\n", s.row())
	}
	for _, g := range growth(samples) {
		fmt.Fprintf(&b, "  growth: %s\n", g)
		t.Errorf("does not level off: %s", g)
	}
	fmt.Print(b.String())
	if f := os.Getenv("SOAK_REPORT"); f != "" {
		_ = os.WriteFile(f, []byte(b.String()), 0o644)
	}
}

func header() string {
	return fmt.Sprintf("%8s %9s %10s %6s %8s %9s %8s", "time", "RSS MiB", "goroutines", "fds", "DB conns", "POST p99", "POSTs")
}

func (s sample) row() string {
	p99 := s.P99.Round(time.Millisecond).String()
	if s.P99 == time.Duration(math.MaxInt64) {
		p99 = ">5s"
	}
	return fmt.Sprintf("%8s %9.1f %10d %6d %8d %9s %8d", s.At, float64(s.RSS)/(1<<20), s.Goroutines, s.FDs, s.DBConns, p99, s.Requests)
}

// growth compares the last third of the samples with the middle third (the
// first third is warm-up): a gauge whose mean grew past the tolerance did
// not level off.
func growth(ss []sample) []string {
	if len(ss) < 6 {
		return nil
	}
	n := len(ss) / 3
	mid, last := ss[n:2*n], ss[len(ss)-n:]
	type gauge struct {
		name       string
		v          func(sample) float64
		ratio, abs float64
	}
	gauges := []gauge{
		{"RSS (MiB)", func(s sample) float64 { return float64(s.RSS) / (1 << 20) }, 1.25, 24},
		{"goroutines", func(s sample) float64 { return float64(s.Goroutines) }, 1.25, 100},
		{"open fds", func(s sample) float64 { return float64(s.FDs) }, 1.25, 50},
		{"DB connections", func(s sample) float64 { return float64(s.DBConns) }, 1.25, 5},
		{"POST p99 (ms)", func(s sample) float64 { return float64(s.P99) / float64(time.Millisecond) }, 2, 100},
	}
	var out []string
	for _, g := range gauges {
		m, l := mean(mid, g.v), mean(last, g.v)
		if l > m*g.ratio && l-m > g.abs {
			out = append(out, fmt.Sprintf("%s: middle third %.1f, last third %.1f (tolerance ×%g and +%g)", g.name, m, l, g.ratio, g.abs))
		}
	}
	return out
}

func mean(ss []sample, v func(sample) float64) float64 {
	t := 0.0
	for _, s := range ss {
		t += v(s)
	}
	return t / float64(len(ss))
}

// scrape reads go_goroutines and the cumulative POST latency histogram
// (le → count, summed over routes) from a Prometheus text page.
func scrape(url string) (int, map[float64]float64, error) {
	resp, err := http.Get(url)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	g := 0
	hist := map[float64]float64{}
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if strings.HasPrefix(line, "go_goroutines ") {
			f, _ := strconv.ParseFloat(strings.Fields(line)[1], 64)
			g = int(f)
		}
		if !strings.HasPrefix(line, "lockstep_http_request_duration_seconds_bucket{") || !strings.Contains(line, `method="POST"`) {
			continue
		}
		i := strings.Index(line, `le="`)
		j := strings.LastIndex(line, " ")
		if i < 0 || j < 0 {
			continue
		}
		leS := line[i+4:]
		leS = leS[:strings.IndexByte(leS, '"')]
		le := math.Inf(1)
		if leS != "+Inf" {
			le, _ = strconv.ParseFloat(leS, 64)
		}
		c, _ := strconv.ParseFloat(line[j+1:], 64)
		hist[le] += c
	}
	return g, hist, sc.Err()
}

// p99Since is the 99th percentile (upper bucket bound) of the requests
// between two cumulative histograms, and their number.
func p99Since(prev, cur map[float64]float64) (time.Duration, int) {
	les := make([]float64, 0, len(cur))
	for le := range cur {
		les = append(les, le)
	}
	sort.Float64s(les)
	if len(les) == 0 {
		return 0, 0
	}
	total := cur[math.Inf(1)] - prev[math.Inf(1)]
	if total <= 0 {
		return 0, 0
	}
	for _, le := range les {
		if cur[le]-prev[le] >= 0.99*total {
			if math.IsInf(le, 1) {
				return time.Duration(math.MaxInt64), int(total)
			}
			return time.Duration(le * float64(time.Second)), int(total)
		}
	}
	return 0, int(total)
}

// dbConns counts the server connections to database name.
func dbConns(ctx context.Context, pool *pgxpool.Pool, name string) int {
	var n int
	_ = pool.QueryRow(ctx, `SELECT count(*) FROM pg_stat_activity WHERE datname = $1 AND pid <> pg_backend_pid()`, name).Scan(&n)
	return n
}
