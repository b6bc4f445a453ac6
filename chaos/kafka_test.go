package chaos

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/twmb/franz-go/pkg/kfake"

	"github.com/lockstep/lockstep/pgtest"
)

// broker is a kfake Kafka broker (labelled so in every figure: not a real
// Kafka) that keeps its log on disk and can be stopped and started again on
// the same port with its data, like a restarted broker.
type broker struct {
	port int
	dir  string
	c    *kfake.Cluster
}

func startBroker(t *testing.T) *broker {
	t.Helper()
	_, p, _ := net.SplitHostPort(freeAddr(t))
	port, _ := strconv.Atoi(p)
	b := &broker{port: port, dir: t.TempDir()}
	b.start(t)
	t.Cleanup(func() { b.c.Close() })
	return b
}

func (b *broker) start(t *testing.T) {
	t.Helper()
	var err error
	for range 50 { // the old listener's port may take a moment to free
		b.c, err = kfake.NewCluster(kfake.NumBrokers(1), kfake.Ports(b.port), kfake.DataDir(b.dir), kfake.SyncWrites(),
			kfake.AllowAutoTopicCreation(), kfake.DefaultNumPartitions(4))
		if err == nil {
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatalf("kfake on port %d: %v", b.port, err)
}

func (b *broker) restart(t *testing.T, down time.Duration) {
	t.Helper()
	b.c.Close()
	time.Sleep(down)
	b.start(t)
}

// TestKafkaBrokerRestarted ingests activity logs with BUS=kafka while the
// broker (kfake) is restarted twice: every log acknowledged with 201 is
// stored exactly once. Clients send again with the same Idempotency-Key
// when an answer is not 201 (a 503 while the broker is away) or lost.
func TestKafkaBrokerRestarted(t *testing.T) {
	clients, perClient := 4, 60
	if *long {
		clients, perClient = 8, 600
	}
	db := pgtest.New(t)
	admin, err := pgxpool.New(context.Background(), db.URL)
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close()
	k := startBroker(t)
	srv := startServer(t, db.URL, "BUS=kafka", fmt.Sprintf("KAFKA_BROKERS=127.0.0.1:%d", k.port), "STUCK_DETECTOR=false")
	accounts, err := fastAccounts(admin)(context.Background(), "STUDENT", make([]string, clients))
	if err != nil {
		t.Fatal(err)
	}

	var (
		mu       sync.Mutex
		acked    = map[string]bool{}
		statuses = map[int]int{}
		sent     atomic.Int64
		wg       sync.WaitGroup
	)
	for c, a := range accounts {
		wg.Go(func() {
			client := &http.Client{Timeout: 15 * time.Second}
			for i := range perClient {
				var marks []string
				var entries []map[string]any
				for j := range 10 {
					m := fmt.Sprintf("%d-%d-%d", c, i, j)
					marks = append(marks, m)
					entries = append(entries, map[string]any{"event_type": "CLICK", "event_data": map[string]any{"mark": m}})
				}
				body, _ := json.Marshal(map[string]any{"logs": entries})
				key := fmt.Sprintf("batch-%d-%d", c, i)
				deadline := time.Now().Add(90 * time.Second)
				for {
					req, _ := http.NewRequest(http.MethodPost, srv.URL()+"/api/logs/batch", bytes.NewReader(body))
					req.Header.Set("Authorization", "Bearer "+a.Token)
					req.Header.Set("Content-Type", "application/json")
					req.Header.Set("Idempotency-Key", key)
					resp, err := client.Do(req)
					code := 0
					if err == nil {
						code = resp.StatusCode
						resp.Body.Close()
					}
					mu.Lock()
					statuses[code]++
					mu.Unlock()
					if code == http.StatusCreated {
						break
					}
					if code != 0 && code != http.StatusServiceUnavailable && code != http.StatusConflict {
						t.Errorf("log batch answered %d: only 201 and 503 (or 409 in progress) are allowed", code)
						return
					}
					if time.Now().After(deadline) {
						t.Errorf("log batch %s not acknowledged within 90 s (last %d)", key, code)
						return
					}
					time.Sleep(200 * time.Millisecond)
				}
				sent.Add(1)
				mu.Lock()
				for _, m := range marks {
					acked[m] = true
				}
				mu.Unlock()
			}
		})
	}
	total := int64(clients * perClient)
	restarts := 0
	for _, at := range []int64{total / 3, 2 * total / 3} {
		for sent.Load() < at && sent.Load() < total && !t.Failed() {
			time.Sleep(10 * time.Millisecond)
		}
		if sent.Load() >= total || t.Failed() {
			break
		}
		k.restart(t, 2*time.Second)
		restarts++
	}
	wg.Wait()
	mu.Lock()
	t.Logf("kfake broker restarted %d times; %d logs acknowledged; answers %v", restarts, len(acked), statuses)
	mu.Unlock()
	if restarts != 2 {
		t.Fatalf("the broker was restarted %d times during ingest, want 2", restarts)
	}
	if t.Failed() {
		return
	}
	stored := map[string]int{}
	ok := false
	for deadline := time.Now().Add(60 * time.Second); time.Now().Before(deadline); time.Sleep(250 * time.Millisecond) {
		rows, err := admin.Query(context.Background(), `SELECT event_data->>'mark', count(*) FROM activity_logs GROUP BY 1`)
		if err != nil {
			t.Fatal(err)
		}
		clear(stored)
		for rows.Next() {
			var m string
			var n int
			if err := rows.Scan(&m, &n); err != nil {
				t.Fatal(err)
			}
			stored[m] = n
		}
		rows.Close()
		if len(stored) >= len(acked) {
			ok = true
			break
		}
	}
	for m := range acked {
		if stored[m] != 1 {
			t.Errorf("acknowledged log %s stored %d times, want 1", m, stored[m])
		}
	}
	for m, n := range stored {
		if n > 1 {
			t.Errorf("log %s stored %d times", m, n)
		}
	}
	if !ok {
		t.Errorf("only %d of %d acknowledged logs stored after 60 s", len(stored), len(acked))
	}
}
