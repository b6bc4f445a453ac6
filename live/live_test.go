package live_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/jackc/pgx/v5"

	"github.com/lockstep/lockstep/bus"
	"github.com/lockstep/lockstep/live"
	"github.com/lockstep/lockstep/outbox"
	"github.com/lockstep/lockstep/pgtest"
)

func TestWithPosition(t *testing.T) {
	cases := map[string]string{
		`{"type":"a","data":{"x":1}}`: `{"type":"a","data":{"x":1},"position":42}`,
		`{}`:                          `{"position":42}`,
		"{ }\n":                       `{ "position":42}`,
		`{"type":"b"}  `:              `{"type":"b","position":42}`,
	}
	for in, want := range cases {
		got := string(live.WithPosition(json.RawMessage(in), 42))
		if got != want {
			t.Errorf("WithPosition(%q) = %q, want %q", in, got, want)
		}
		if !json.Valid([]byte(got)) {
			t.Errorf("WithPosition(%q) is not JSON", in)
		}
	}
}

type env struct {
	t   testing.TB
	db  *pgtest.DB
	hub *live.Hub
	srv *httptest.Server
	mu  sync.Mutex
	sub func(r *http.Request) live.Subscription
}

func newEnv(t testing.TB, db *pgtest.DB, cfg live.HubConfig) *env {
	t.Helper()
	if db == nil {
		db = pgtest.New(t)
	}
	cfg.Pool = db.Pool
	e := &env{t: t, db: db, hub: live.NewHub(cfg)}
	e.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Query().Get("reject") != "" {
			_ = e.hub.Reject(w, r, live.CloseForbidden, "not yours")
			return
		}
		opts, err := live.ParseOptions(r)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		e.mu.Lock()
		sub := e.sub(r)
		e.mu.Unlock()
		sub.After, sub.Batch = opts.After, opts.Batch
		_ = e.hub.Serve(w, r, sub)
	}))
	t.Cleanup(func() { e.srv.Close(); _ = e.hub.Close() })
	return e
}

func (e *env) setCheckpoint(pos uint64) {
	_, err := e.db.Pool.Exec(context.Background(), `INSERT INTO projection_checkpoints (name, position) VALUES ('test', $1)
		ON CONFLICT (name) DO UPDATE SET position = EXCLUDED.position`, int64(pos))
	if err != nil {
		e.t.Fatal(err)
	}
}

// record stores messages as a projector would, and moves its checkpoint.
func (e *env) record(msgs ...live.Message) {
	e.t.Helper()
	err := pgx.BeginFunc(context.Background(), e.db.Pool, func(tx pgx.Tx) error {
		return outbox.Record(context.Background(), tx, "test", msgs...)
	})
	if err != nil {
		e.t.Fatal(err)
	}
	e.setCheckpoint(msgs[len(msgs)-1].Position)
}

func msg(channel string, pos uint64) live.Message {
	return live.Message{Channel: channel, Position: pos, Payload: json.RawMessage(fmt.Sprintf(`{"type":"tick","data":{"n":%d}}`, pos))}
}

func (e *env) dial(query string) *websocket.Conn {
	e.t.Helper()
	url := "ws" + strings.TrimPrefix(e.srv.URL, "http") + "/" + query
	c, _, err := websocket.DefaultDialer.Dial(url, nil)
	if err != nil {
		e.t.Fatalf("dial: %v", err)
	}
	e.t.Cleanup(func() { c.Close() })
	return c
}

type frame struct {
	Type     string          `json:"type"`
	Data     json.RawMessage `json:"data"`
	Position uint64          `json:"position"`
}

func read(t *testing.T, c *websocket.Conn) frame {
	t.Helper()
	_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
	_, data, err := c.ReadMessage()
	if err != nil {
		t.Fatalf("read: %v", err)
	}
	var f frame
	if err := json.Unmarshal(data, &f); err != nil {
		t.Fatalf("frame %s: %v", data, err)
	}
	return f
}

func positions(t *testing.T, c *websocket.Conn, n int) []uint64 {
	t.Helper()
	out := make([]uint64, n)
	for i := range out {
		out[i] = read(t, c).Position
	}
	return out
}

func seq(from, to uint64) []uint64 {
	var out []uint64
	for p := from; p <= to; p++ {
		out = append(out, p)
	}
	return out
}

func snapshotSub(channel string) func(*http.Request) live.Subscription {
	return func(*http.Request) live.Subscription {
		return live.Subscription{Channel: channel, Kind: "test", Producer: "test",
			Snapshot: func(ctx context.Context, tx pgx.Tx) (json.RawMessage, error) {
				var n int
				err := tx.QueryRow(ctx, `SELECT count(*) FROM live_messages WHERE channel = $1`, channel).Scan(&n)
				return json.RawMessage(fmt.Sprintf(`{"type":"state","data":{"seen":%d}}`, n)), err
			}}
	}
}

func TestSnapshotThenLiveThenResumeAfter(t *testing.T) {
	e := newEnv(t, nil, live.HubConfig{})
	e.sub = snapshotSub("room:1")
	e.record(msg("room:1", 1), msg("room:1", 2), msg("room:2", 3))

	c := e.dial("")
	snap := read(t, c)
	if snap.Type != "state" || snap.Position != 3 || string(snap.Data) != `{"seen":2}` {
		t.Fatalf("snapshot = %+v %s, want state at checkpoint 3 reflecting 2 messages", snap, snap.Data)
	}
	for p := uint64(4); p <= 6; p++ {
		e.record(msg("room:1", p))
		e.hub.Deliver(msg("room:1", p))
	}
	e.hub.Deliver(msg("room:2", 7)) // another channel: not for this socket
	if got := positions(t, c, 3); fmt.Sprint(got) != fmt.Sprint(seq(4, 6)) {
		t.Fatalf("live positions = %v", got)
	}

	// Reconnect after 4: exactly 5 and 6 from the outbox, then live ones, no snapshot.
	r := e.dial("?after=4")
	e.record(msg("room:1", 8))
	e.hub.Deliver(msg("room:1", 8))
	got := positions(t, r, 3)
	if fmt.Sprint(got) != "[5 6 8]" {
		t.Fatalf("resumed positions = %v, want [5 6 8]", got)
	}
}

func TestMessagesDuringCatchUpAreNeitherLostNorDuplicated(t *testing.T) {
	e := newEnv(t, nil, live.HubConfig{MaxQueueBytes: 64 << 10})
	e.sub = snapshotSub("room:9")
	var first []live.Message
	for p := uint64(1); p <= 1500; p++ {
		first = append(first, msg("room:9", p))
	}
	e.record(first...)

	// A producer keeps recording and delivering while clients connect and catch up.
	done := make(chan struct{})
	go func() {
		defer close(done)
		for p := uint64(1501); p <= 1800; p++ {
			m := msg("room:9", p)
			e.record(m)
			e.hub.Deliver(m)
		}
	}()
	clients := []*websocket.Conn{e.dial("?after=0"), e.dial("?after=700"), e.dial("?after=1500")}
	starts := []uint64{1, 701, 1501}
	<-done
	for i, c := range clients {
		got := positions(t, c, int(1800-starts[i]+1))
		for j, p := range got {
			if p != starts[i]+uint64(j) {
				t.Fatalf("client %d: message %d has position %d, want %d (lost, duplicated or out of order)", i, j, p, starts[i]+uint64(j))
			}
		}
	}
}

func asClose(err error, ce **websocket.CloseError) bool {
	c, ok := err.(*websocket.CloseError)
	if ok {
		*ce = c
	}
	return ok
}

func TestRejectClosesWithCode(t *testing.T) {
	e := newEnv(t, nil, live.HubConfig{})
	c := e.dial("?reject=1")
	_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
	_, _, err := c.ReadMessage()
	var ce *websocket.CloseError
	if !asClose(err, &ce) || ce.Code != live.CloseForbidden {
		t.Fatalf("got %v, want close 4403", err)
	}
}

func TestAnnouncerReachesSocketsOnAnotherInstance(t *testing.T) {
	db := pgtest.New(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	b, err := bus.New(ctx, bus.Config{Backend: bus.BackendPostgres, Pool: db.Pool, PollInterval: 10 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	a := newEnv(t, db, live.HubConfig{})
	other := newEnv(t, db, live.HubConfig{})
	for _, e := range []*env{a, other} {
		e.sub = func(*http.Request) live.Subscription { return live.Subscription{Channel: "room:5", Kind: "test"} }
		go live.Relay(ctx, b, e.hub, nil)
	}
	a.setCheckpoint(0)
	onA, onB := a.dial("?after=0"), other.dial("?after=0")
	for a.hub.Subscribers("room:5") < 1 || other.hub.Subscribers("room:5") < 1 {
		time.Sleep(5 * time.Millisecond)
	}
	time.Sleep(200 * time.Millisecond) // let the fan-out subscriptions start at the topic's end

	ann := live.NewAnnouncer(db.Pool, b, a.hub, nil)
	a.record(msg("room:5", 10), msg("room:5", 11))
	ann.Announce(ctx, "test", 10, 11)
	for name, c := range map[string]*websocket.Conn{"same instance": onA, "other instance": onB} {
		if got := positions(t, c, 2); fmt.Sprint(got) != "[10 11]" {
			t.Fatalf("%s got %v", name, got)
		}
	}
	// Each socket got each message once: nothing more arrives.
	_ = onA.SetReadDeadline(time.Now().Add(300 * time.Millisecond))
	if _, data, err := onA.ReadMessage(); err == nil {
		t.Fatalf("duplicate delivery on the announcing instance: %s", data)
	}
}
