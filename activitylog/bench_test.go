package activitylog_test

// BenchmarkBatchIngest measures sustained, durable /api/logs/batch ingest:
// 4 concurrent clients each POST batches of 1,000 logs over real HTTP to
// the ingest handler (real auth, session lookup, id blocks), which publishes
// to the bus before answering 201; the log writer COPYs them into
// activity_logs. The clock stops when every row is in the table. Next to it,
// raw_copy is 4 goroutines doing pgx CopyFrom of the same 1,000 rows into
// the same table: the ceiling. Each sub-benchmark gets a fresh database.
//
//	go test -run '^$' -bench BenchmarkBatchIngest -benchtime 200x ./activitylog/
//
// The logs/s metric is the one to read (ns/op is per 1,000-log batch).

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/twmb/franz-go/pkg/kfake"

	"github.com/lockstep/lockstep/activitylog"
	"github.com/lockstep/lockstep/bus"
	"github.com/lockstep/lockstep/cmd/lockstep/app/apptest"
	"github.com/lockstep/lockstep/domain"
	"github.com/lockstep/lockstep/pgtest"
)

const (
	benchClients = 4
	benchBatch   = 1000
)

// benchEntry is one log as the clients send it (~230 bytes of JSON).
func benchEntry(i int) map[string]any {
	return map[string]any{
		"subtask_id": 1000 + i%7,
		"event_type": "CLICK",
		"event_data": map[string]any{"x": 150 + i%300, "y": 300, "element": "Button", "text": "확인"},
		"screen_info": map[string]any{"package_name": "com.kakao.talk", "activity_name": "MainActivity",
			"screen_title": "친구 목록"},
		"timestamp": time.Now().UTC().Add(-time.Duration(i%60) * time.Second).Format(time.RFC3339),
	}
}

func BenchmarkBatchIngest(b *testing.B) {
	b.Run("raw_copy", benchRawCopy)
	b.Run("api_bus_postgres", func(b *testing.B) {
		benchAPI(b, func(b *testing.B, pool *pgxpool.Pool) *bus.Bus {
			return apptest.NewBus(b, bus.Config{Backend: bus.BackendPostgres, Pool: pool, PollInterval: 10 * time.Millisecond})
		})
	})
	b.Run("api_bus_kafka", func(b *testing.B) {
		benchAPI(b, func(b *testing.B, _ *pgxpool.Pool) *bus.Bus {
			c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.AllowAutoTopicCreation(), kfake.DefaultNumPartitions(4))
			if err != nil {
				b.Fatal(err)
			}
			b.Cleanup(c.Close)
			return apptest.NewBus(b, bus.Config{Backend: bus.BackendKafka, KafkaBrokers: c.ListenAddrs(), KafkaHeartbeatInterval: 100 * time.Millisecond})
		})
	})
}

// benchRawCopy copies the rows the API would store, straight into the table.
func benchRawCopy(b *testing.B) {
	db := pgtest.New(b)
	now := time.Now().UTC()
	template := make([]activitylog.Log, benchBatch)
	for i := range template {
		e := benchEntry(i)
		data, _ := json.Marshal(e["event_data"])
		screen, _ := json.Marshal(e["screen_info"])
		subtask := int64(e["subtask_id"].(int))
		at, _ := time.Parse(time.RFC3339, e["timestamp"].(string))
		template[i] = activitylog.Log{UserID: 21, SubtaskID: &subtask, EventType: "CLICK",
			EventData: data, ScreenInfo: screen, OccurredAt: at, ReceivedAt: now}
	}
	var next, ids atomic.Int64
	b.ResetTimer()
	var wg sync.WaitGroup
	for range benchClients {
		wg.Go(func() {
			rows := append([]activitylog.Log(nil), template...)
			for next.Add(1) <= int64(b.N) {
				first := ids.Add(benchBatch) - benchBatch
				for i := range rows {
					rows[i].LogID = first + int64(i) + 1
				}
				_, err := db.Pool.CopyFrom(context.Background(), pgx.Identifier{"activity_logs"}, activitylog.Columns, activitylog.Rows(rows))
				if err != nil {
					b.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
	b.StopTimer()
	if n := countRows(b, db.Pool, "true"); n != b.N*benchBatch {
		b.Fatalf("%d rows, want %d", n, b.N*benchBatch)
	}
	b.ReportMetric(float64(b.N*benchBatch)/b.Elapsed().Seconds(), "logs/s")
}

func benchAPI(b *testing.B, open func(*testing.B, *pgxpool.Pool) *bus.Bus) {
	db := pgtest.New(b)
	// The API path holds more connections at once than raw COPY's four (a
	// postgres-bus subscriber keeps one for the batch it delivers, each
	// publish one, the writer up to four): pgxpool's default of
	// max(4, NumCPU) would serialize them.
	cfg, err := pgxpool.ParseConfig(db.URL)
	if err != nil {
		b.Fatal(err)
	}
	cfg.MaxConns = 16
	pool, err := pgxpool.NewWithConfig(context.Background(), cfg)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(pool.Close) // after the writer and the bus stop
	db.Pool = pool
	// The subtasks the entries name, in a lecture the clients are enrolled in.
	for i := range int64(7) {
		addSubtask(b, db.Pool, 1000+i, 1)
	}
	if _, err := db.Pool.Exec(context.Background(), `INSERT INTO rm_enrollments (enrollment_id, lecture_id, user_id, enrolled_at, last_activity)
		SELECT u, 1, u, now(), now() FROM generate_series(21, 21 + $1::int) u`, benchClients); err != nil {
		b.Fatal(err)
	}
	bs := open(b, db.Pool)
	h := activitylog.NewHandler(activitylog.HandlerConfig{
		Bus: bs, IDs: activitylog.NewIDs(db.Pool), Sessions: activitylog.NewReadModelSessions(db.Pool, 2*time.Second),
		Logger: apptest.QuietLogger(),
	})
	startWriter(b, bs, activitylog.NewPGStore(db.Pool))
	tok := newTokens(b)
	srv := httptest.NewServer(newRouter(tok, h))
	defer srv.Close()

	entries := make([]map[string]any, benchBatch)
	for i := range entries {
		entries[i] = benchEntry(i)
	}
	body, err := json.Marshal(map[string]any{"logs": entries})
	if err != nil {
		b.Fatal(err)
	}
	send := func(client *http.Client, bearer string) error {
		req, _ := http.NewRequest(http.MethodPost, srv.URL+activitylog.BatchPath, bytes.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+bearer)
		req.Header.Set("Content-Type", "application/json")
		resp, err := client.Do(req)
		if err != nil {
			return err
		}
		defer resp.Body.Close()
		data, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != http.StatusCreated {
			return fmt.Errorf("status %d: %s", resp.StatusCode, data)
		}
		return nil
	}
	waitRows := func(n int) {
		deadline := time.Now().Add(5 * time.Minute)
		for countRows(b, db.Pool, "true") < n {
			if time.Now().After(deadline) {
				b.Fatalf("rows never reached %d", n)
			}
			time.Sleep(5 * time.Millisecond)
		}
	}
	// Warm up: topic created, consumer group joined, connections open.
	if err := send(http.DefaultClient, token(b, tok, 21, domain.RoleStudent)); err != nil {
		b.Fatal(err)
	}
	waitRows(benchBatch)

	var next atomic.Int64
	b.ResetTimer()
	var wg sync.WaitGroup
	for c := range benchClients {
		bearer := token(b, tok, int64(21+c), domain.RoleStudent)
		wg.Go(func() {
			client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 1}}
			for next.Add(1) <= int64(b.N) {
				if err := send(client, bearer); err != nil {
					b.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
	acked := b.Elapsed()
	waitRows((b.N + 1) * benchBatch)
	b.Logf("N=%d: all 201s after %s, all rows after %s", b.N, acked, b.Elapsed())
	b.StopTimer()
	if n := countRows(b, db.Pool, "true"); n != (b.N+1)*benchBatch {
		b.Fatalf("%d rows, want %d", n, (b.N+1)*benchBatch)
	}
	b.ReportMetric(float64(b.N*benchBatch)/b.Elapsed().Seconds(), "logs/s")
}
