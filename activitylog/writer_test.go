package activitylog_test

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/lockstep/lockstep/activitylog"
	"github.com/lockstep/lockstep/bus"
	"github.com/lockstep/lockstep/cmd/lockstep/app/apptest"
	"github.com/lockstep/lockstep/pgtest"
)

func sampleLogs(firstID int64, n int) []activitylog.Log {
	at := time.Date(2025, 10, 28, 10, 0, 0, 0, time.UTC)
	session, subtask := int64(12), int64(1000)
	logs := make([]activitylog.Log, n)
	for i := range logs {
		logs[i] = activitylog.Log{
			LogID: firstID + int64(i), UserID: 7, SessionID: &session, SubtaskID: &subtask,
			EventType:  "CLICK",
			EventData:  json.RawMessage(fmt.Sprintf(`{"i": %d}`, i)),
			OccurredAt: at.Add(time.Duration(i) * time.Second), ReceivedAt: at.Add(time.Hour),
		}
	}
	logs[0].SessionID, logs[0].SubtaskID, logs[0].EventData = nil, nil, nil
	logs[n-1].ScreenInfo = json.RawMessage(`{"package_name": "com.kakao.talk"}`)
	return logs
}

func TestStoreWritesEveryColumnAndSkipsStoredIDs(t *testing.T) {
	t.Parallel()
	db := pgtest.New(t)
	store := activitylog.NewPGStore(db.Pool)
	ctx := context.Background()
	logs := sampleLogs(100, 5)
	if err := store.Write(ctx, logs[:3]); err != nil {
		t.Fatal(err)
	}
	// Overlapping write (a redelivery plus new logs): the slow path.
	if err := store.Write(ctx, logs); err != nil {
		t.Fatal(err)
	}
	if err := store.Write(ctx, logs); err != nil {
		t.Fatal(err)
	}
	if n := countRows(t, db.Pool, "true"); n != 5 {
		t.Fatalf("%d rows, want 5", n)
	}
	var (
		user, session, subtask  *int64
		eventType, data, screen *string
		occurred, received      time.Time
	)
	err := db.Pool.QueryRow(ctx, `SELECT user_id, session_id, subtask_id, event_type, event_data::text, screen_info::text, occurred_at, received_at
		FROM activity_logs WHERE log_id = 104`).Scan(&user, &session, &subtask, &eventType, &data, &screen, &occurred, &received)
	if err != nil {
		t.Fatal(err)
	}
	want := logs[4]
	if *user != 7 || *session != 12 || *subtask != 1000 || *eventType != "CLICK" || *data != `{"i": 4}` ||
		!strings.Contains(*screen, "com.kakao.talk") || !occurred.Equal(want.OccurredAt) || !received.Equal(want.ReceivedAt) {
		t.Errorf("stored %v %v %v %v %v %v %v %v", *user, *session, *subtask, *eventType, *data, *screen, occurred, received)
	}
	if n := countRows(t, db.Pool, "log_id = 100 AND session_id IS NULL AND subtask_id IS NULL AND event_data IS NULL AND screen_info IS NULL"); n != 1 {
		t.Error("absent fields were not stored as NULL")
	}
}

func TestRedeliveredMessageStoresOneRow(t *testing.T) {
	t.Parallel()
	db := pgtest.New(t)
	b := apptest.NewBus(t, bus.Config{Backend: bus.BackendPostgres, Pool: db.Pool, PollInterval: 10 * time.Millisecond})
	msgs, err := activitylog.NewMessages(sampleLogs(500, 20))
	if err != nil {
		t.Fatal(err)
	}
	// The same message twice (as after a crash between commit and ack), then
	// a marker that proves the writer got past both.
	again := message.NewMessage(msgs[0].UUID, msgs[0].Payload)
	again.Metadata = msgs[0].Metadata
	marker, err := activitylog.NewMessages(sampleLogs(900, 1))
	if err != nil {
		t.Fatal(err)
	}
	if err := b.Publish(context.Background(), bus.TopicActivityLogs, msgs[0], again, marker[0]); err != nil {
		t.Fatal(err)
	}
	startWriter(t, b, activitylog.NewPGStore(db.Pool))
	apptest.Eventually(t, "the marker stored", 20*time.Second, func() bool { return countRows(t, db.Pool, "log_id = 900") == 1 })
	if n := countRows(t, db.Pool, "log_id BETWEEN 500 AND 519"); n != 20 {
		t.Fatalf("%d rows for 20 logs delivered twice", n)
	}
}

// flakyStore fails its first failures writes.
type flakyStore struct {
	inner    activitylog.Store
	failures int32
	calls    atomic.Int32
}

func (s *flakyStore) Write(ctx context.Context, logs []activitylog.Log) error {
	if s.calls.Add(1) <= s.failures {
		return errors.New("database unavailable")
	}
	return s.inner.Write(ctx, logs)
}

func TestWriterRetriesAFailingBatch(t *testing.T) {
	t.Parallel()
	db := pgtest.New(t)
	b := apptest.NewBus(t, bus.Config{Backend: bus.BackendMemory})
	store := &flakyStore{inner: activitylog.NewPGStore(db.Pool), failures: 3}
	startWriter(t, b, store)
	msgs, err := activitylog.NewMessages(sampleLogs(1, 50))
	if err != nil {
		t.Fatal(err)
	}
	if err := b.Publish(context.Background(), bus.TopicActivityLogs, msgs...); err != nil {
		t.Fatal(err)
	}
	apptest.Eventually(t, "logs stored after the failures", 20*time.Second, func() bool { return countRows(t, db.Pool, "true") == 50 })
	if c := store.calls.Load(); c < 4 {
		t.Fatalf("store called %d times; the failures were not retried", c)
	}
}

func TestWriterSetsAsideUndecodableMessages(t *testing.T) {
	t.Parallel()
	db := pgtest.New(t)
	b := apptest.NewBus(t, bus.Config{Backend: bus.BackendMemory})
	startWriter(t, b, activitylog.NewPGStore(db.Pool))
	good, err := activitylog.NewMessages(sampleLogs(1, 3))
	if err != nil {
		t.Fatal(err)
	}
	poison := message.NewMessage("poison", []byte("not json"))
	if err := b.Publish(context.Background(), bus.TopicActivityLogs, poison, good[0]); err != nil {
		t.Fatal(err)
	}
	apptest.Eventually(t, "the message after the poison stored", 20*time.Second, func() bool { return countRows(t, db.Pool, "true") == 3 })
	if n := deadLetters(t, db.Pool, "source_key = 'message:poison' AND payload = 'not json'::bytea AND log_id IS NULL"); n != 1 {
		t.Errorf("%d dead letters for the undecodable message", n)
	}
}

// publishUntilStored publishes msgs on the activity-log topic and waits
// until the log logID (what) is stored.
func publishUntilStored(t testing.TB, b *bus.Bus, pool *pgxpool.Pool, what string, logID int64, msgs ...*message.Message) {
	t.Helper()
	if err := b.Publish(context.Background(), bus.TopicActivityLogs, msgs...); err != nil {
		t.Fatal(err)
	}
	apptest.Eventually(t, what+" stored", 20*time.Second, func() bool { return countRows(t, pool, "log_id = $1", logID) == 1 })
}

func deadLetters(t testing.TB, pool *pgxpool.Pool, where string, args ...any) int {
	t.Helper()
	var n int
	if err := pool.QueryRow(context.Background(), `SELECT count(*) FROM activity_log_dead_letters WHERE `+where, args...).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

// TestWriterSetsAsideOnlyTheLogsTheDatabaseRefuses: a round of 1200 logs
// (written in parallel parts) with three that jsonb or text refuses, each in
// a different part, then an ordinary message. Exactly the three are set
// aside, everything else is stored; delivering the same message again
// stores nothing twice and counts a second attempt.
func TestWriterSetsAsideOnlyTheLogsTheDatabaseRefuses(t *testing.T) {
	t.Parallel()
	db := pgtest.New(t)
	b := apptest.NewBus(t, bus.Config{Backend: bus.BackendMemory})
	startWriter(t, b, activitylog.NewPGStore(db.Pool))
	logs := sampleLogs(1, 1200)
	logs[3].EventData = json.RawMessage(`{"text": "\ud800"}`)
	logs[700].ScreenInfo = json.RawMessage(`{"a": "\u0000"}`)
	logs[1199].EventType = "CLICK\x00"
	msgs, err := activitylog.NewMessages(logs)
	if err != nil {
		t.Fatal(err)
	}
	next, err := activitylog.NewMessages(sampleLogs(5000, 1))
	if err != nil {
		t.Fatal(err)
	}
	publishUntilStored(t, b, db.Pool, "the next message", 5000, append(msgs, next...)...)
	if n := countRows(t, db.Pool, "log_id BETWEEN 1 AND 1200"); n != 1197 {
		t.Errorf("%d logs stored, want 1197", n)
	}
	if n := deadLetters(t, db.Pool, "true"); n != 3 {
		t.Errorf("%d dead letters, want 3", n)
	}
	if n := deadLetters(t, db.Pool, "log_id IN (4, 701, 1200) AND attempts = 1 AND user_id = 7 AND error LIKE '%SQLSTATE 22%'"); n != 3 {
		t.Errorf("%d dead letters of logs 4, 701 and 1200 as expected", n)
	}
	// Redelivered (a crash before the ack): one more attempt each, no new row.
	again := message.NewMessage(msgs[0].UUID, msgs[0].Payload)
	again.Metadata = msgs[0].Metadata
	marker, _ := activitylog.NewMessages(sampleLogs(6000, 1))
	publishUntilStored(t, b, db.Pool, "the marker", 6000, again, marker[0])
	if n := deadLetters(t, db.Pool, "attempts = 2"); n != 3 {
		t.Errorf("%d dead letters counted the redelivery, want 3", n)
	}
	if n := countRows(t, db.Pool, "log_id BETWEEN 1 AND 1200"); n != 1197 {
		t.Errorf("%d logs stored after the redelivery, want 1197", n)
	}
}

// TestWriterOutageIsNotDeadLettered: the writer's connections are killed
// (pg_terminate_backend) while its COPY waits, several times; the logs are
// stored once the database lets it through, and nothing is set aside.
func TestWriterOutageIsNotDeadLettered(t *testing.T) {
	t.Parallel()
	db := pgtest.New(t)
	ctx := context.Background()
	b := apptest.NewBus(t, bus.Config{Backend: bus.BackendMemory})
	startWriter(t, b, activitylog.NewPGStore(db.Pool))
	lock, err := db.Pool.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer lock.Rollback(ctx)
	if _, err := lock.Exec(ctx, `LOCK TABLE activity_logs IN ACCESS EXCLUSIVE MODE`); err != nil {
		t.Fatal(err)
	}
	msgs, err := activitylog.NewMessages(sampleLogs(1, 50))
	if err != nil {
		t.Fatal(err)
	}
	if err := b.Publish(ctx, bus.TopicActivityLogs, msgs...); err != nil {
		t.Fatal(err)
	}
	for kill := range 3 {
		var killed int
		apptest.Eventually(t, fmt.Sprintf("the writer waiting on the table (kill %d)", kill+1), 20*time.Second, func() bool {
			err := db.Pool.QueryRow(ctx, `SELECT count(*) FROM (SELECT pg_terminate_backend(pid) FROM pg_stat_activity
				WHERE datname = current_database() AND wait_event_type = 'Lock' AND pid <> pg_backend_pid()) k`).Scan(&killed)
			return err == nil && killed > 0
		})
	}
	if err := lock.Rollback(ctx); err != nil {
		t.Fatal(err)
	}
	apptest.Eventually(t, "logs stored after the outage", 20*time.Second, func() bool { return countRows(t, db.Pool, "true") == 50 })
	if n := deadLetters(t, db.Pool, "true"); n != 0 {
		t.Errorf("%d dead letters after an outage", n)
	}
}

func TestNewMessagesSplitsBySizeAndUserKeepingOrder(t *testing.T) {
	t.Parallel()
	var logs []activitylog.Log
	rng := rand.New(rand.NewPCG(1, 2))
	for i := range 600 { // ~3.6 MB of event data that hardly compresses
		user := int64(1)
		if i >= 500 {
			user = 2
		}
		raw := make([]byte, 4500)
		for j := range raw {
			raw[j] = byte(rng.Uint32())
		}
		pad := base64.StdEncoding.EncodeToString(raw)
		logs = append(logs, activitylog.Log{LogID: int64(i + 1), UserID: user, EventType: "CLICK",
			EventData: json.RawMessage(`{"pad": "` + pad + `"}`)})
	}
	msgs, err := activitylog.NewMessages(logs)
	if err != nil {
		t.Fatal(err)
	}
	var next int64 = 1
	for _, m := range msgs {
		if len(m.Payload) > 900<<10 {
			t.Errorf("message of %d bytes", len(m.Payload))
		}
		got, err := activitylog.DecodeMessage(m)
		if err != nil {
			t.Fatal(err)
		}
		for _, l := range got {
			if l.LogID != next || got[0].UserID != l.UserID {
				t.Fatalf("log %d in a message starting with user %d (want log %d)", l.LogID, got[0].UserID, next)
			}
			next++
		}
		if key := m.Metadata.Get(bus.MetadataPartitionKey); key != fmt.Sprintf("user-%d", got[0].UserID) {
			t.Errorf("partition key %q", key)
		}
	}
	if next != 601 {
		t.Fatalf("messages carry %d logs, want 600", next-1)
	}
	if len(msgs) < 4 {
		t.Errorf("%d messages for ~3.6 MB that does not compress", len(msgs))
	}
}
