package live_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/lockstep/lockstep/domain"
	"github.com/lockstep/lockstep/live"
)

// progressMsg is a student_progress message as the sessions projector
// records it for the instructor's socket (~260 bytes with its position).
func progressMsg(channel string, pos uint64) live.Message {
	return live.Message{Channel: channel, Position: pos, Payload: json.RawMessage(fmt.Sprintf(
		`{"type":"student_progress","data":{"user_id":%d,"name":"학생 %d","subtask_id":1000,"subtask_title":"카카오톡 앱 열기","status":"COMPLETED","started_at":"2025-10-28T10:04:00Z","completed_at":"2025-10-28T10:05:00Z"}}`,
		pos, pos))}
}

func liveSub(channel string) func(*http.Request) live.Subscription {
	return func(*http.Request) live.Subscription { return live.Subscription{Channel: channel, Kind: "test"} }
}

// settle delivers one unrecorded message and waits for the client to read
// it: from then on the client is on the live path (its catch-up is over).
func settle(t *testing.T, e *env, c *websocket.Conn, channel string, pos uint64) {
	t.Helper()
	e.hub.Deliver(msg(channel, pos))
	if f := read(t, c); f.Position != pos {
		t.Fatalf("settling message has position %d, want %d", f.Position, pos)
	}
}

// burst records n student_progress messages in one transaction, as one
// projector batch, and announces them: the hub gets all n at once.
func burst(t *testing.T, e *env, channel string, from uint64, n int) []live.Message {
	t.Helper()
	msgs := make([]live.Message, n)
	for i := range msgs {
		msgs[i] = progressMsg(channel, from+uint64(i))
	}
	e.record(msgs...)
	live.NewAnnouncer(e.db.Pool, nil, e.hub, nil).Announce(context.Background(), "test", from, from+uint64(n)-1)
	return msgs
}

// readsOpen checks that nothing else arrives and the socket stays open.
func readsOpen(t *testing.T, c *websocket.Conn) {
	t.Helper()
	_ = c.SetReadDeadline(time.Now().Add(300 * time.Millisecond))
	_, data, err := c.ReadMessage()
	if err == nil {
		t.Fatalf("unexpected extra frame %.200s", data)
	}
	if ne, ok := err.(net.Error); !ok || !ne.Timeout() {
		t.Fatalf("socket ended: %v", err)
	}
}

// A projector batch of 10,000 student_progress messages reaches an
// instructor's socket that reads: all of them, in order, and the socket stays
// open. (With a queue of 256 messages it was closed with 4408.)
func TestBurstOf10000ReachesAReadingClient(t *testing.T) {
	var dropped atomic.Int32
	e := newEnv(t, nil, live.HubConfig{OnDropped: func(string) { dropped.Add(1) }})
	e.sub = liveSub("instructor:1")
	e.setCheckpoint(0)
	c := e.dial("?after=0")
	settle(t, e, c, "instructor:1", 1)

	const n = 10000
	start := time.Now()
	msgs := burst(t, e, "instructor:1", 2, n)
	announced := time.Since(start)
	for i, m := range msgs {
		_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
		_, data, err := c.ReadMessage()
		if err != nil {
			t.Fatalf("after %d of %d messages: %v", i, n, err)
		}
		if want := m.Frame(); !bytes.Equal(data, want) {
			t.Fatalf("message %d = %s, want %s", i, data, want)
		}
	}
	t.Logf("%d messages: recorded and announced in %v, all read %v after the start", n, announced, time.Since(start))
	readsOpen(t, c)
	if dropped.Load() != 0 {
		t.Fatal("a reading client was counted as dropped")
	}
}

type batchFrame struct {
	Type     string            `json:"type"`
	Position uint64            `json:"position"`
	Messages []json.RawMessage `json:"messages"`
}

// With ?batch=50 the same burst arrives in few frames, each
// {"type":"batch","position":<its last message's>,"messages":[…]} with the
// messages exactly as they would be sent alone, in order, none lost; the
// snapshot comes in a batch frame too.
func TestBurstOf10000InBatchFrames(t *testing.T) {
	e := newEnv(t, nil, live.HubConfig{})
	e.sub = snapshotSub("instructor:2")
	e.setCheckpoint(0)
	c := e.dial("?batch=50")

	readBatch := func() batchFrame {
		t.Helper()
		_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
		_, data, err := c.ReadMessage()
		if err != nil {
			t.Fatalf("read: %v", err)
		}
		var b batchFrame
		if err := json.Unmarshal(data, &b); err != nil || b.Type != "batch" {
			t.Fatalf("frame %.300s is not a batch frame (%v)", data, err)
		}
		if len(b.Messages) == 0 {
			t.Fatalf("empty batch frame %s", data)
		}
		var last frame
		_ = json.Unmarshal(b.Messages[len(b.Messages)-1], &last)
		if b.Position != last.Position {
			t.Fatalf("batch position %d, its last message's %d", b.Position, last.Position)
		}
		return b
	}
	snap := readBatch()
	if len(snap.Messages) != 1 || !strings.Contains(string(snap.Messages[0]), `"type":"state"`) {
		t.Fatalf("first batch = %s, want the snapshot alone", snap.Messages)
	}
	for e.hub.Subscribers("instructor:2") == 0 {
		time.Sleep(5 * time.Millisecond)
	}
	settleBatch := func(pos uint64) {
		e.hub.Deliver(msg("instructor:2", pos))
		if b := readBatch(); b.Position != pos {
			t.Fatalf("settling batch at %d, want %d", b.Position, pos)
		}
	}
	settleBatch(1)

	const n = 10000
	start := time.Now()
	msgs := burst(t, e, "instructor:2", 2, n)
	var got []json.RawMessage
	frames, prev := 0, uint64(1)
	for len(got) < n {
		b := readBatch()
		if b.Position <= prev {
			t.Fatalf("batch position went from %d to %d", prev, b.Position)
		}
		prev = b.Position
		got = append(got, b.Messages...)
		frames++
	}
	elapsed := time.Since(start)
	if len(got) != n {
		t.Fatalf("got %d messages, want %d", len(got), n)
	}
	for i, m := range msgs {
		if want := m.Frame(); !bytes.Equal(got[i], want) {
			t.Fatalf("message %d = %s, want %s", i, got[i], want)
		}
	}
	// At most one frame per 50 ms (the first may go at once).
	if limit := int(elapsed/(50*time.Millisecond)) + 1; frames > limit {
		t.Fatalf("%d frames in %v: more than one per 50 ms", frames, elapsed)
	}
	t.Logf("%d messages in %d batch frames, %v after the start", n, frames, elapsed)
	readsOpen(t, c)

	// ?after= still works with ?batch=: a reconnect gets exactly what it missed.
	r := e.dial(fmt.Sprintf("?after=%d&batch=10", n-2))
	var resumed []uint64
	_ = r.SetReadDeadline(time.Now().Add(10 * time.Second))
	for len(resumed) < 3 {
		_, data, err := r.ReadMessage()
		if err != nil {
			t.Fatal(err)
		}
		var b batchFrame
		_ = json.Unmarshal(data, &b)
		for _, m := range b.Messages {
			var f frame
			_ = json.Unmarshal(m, &f)
			resumed = append(resumed, f.Position)
		}
	}
	if fmt.Sprint(resumed) != fmt.Sprint([]uint64{n - 1, n, n + 1}) {
		t.Fatalf("resumed after %d with batches: %v", n-2, resumed)
	}
}

// smallReadBuffer dials with a 64 KiB receive buffer, so that a client that
// stops reading stalls the server's writes after a few MB, not tens of MB.
var smallReadBuffer = &websocket.Dialer{NetDial: func(network, addr string) (net.Conn, error) {
	c, err := net.Dial(network, addr)
	if err == nil {
		_ = c.(*net.TCPConn).SetReadBuffer(64 << 10)
	}
	return c, err
}}

func (e *env) dialWith(d *websocket.Dialer, query string) *websocket.Conn {
	e.t.Helper()
	c, _, err := d.Dial("ws"+strings.TrimPrefix(e.srv.URL, "http")+"/"+query, nil)
	if err != nil {
		e.t.Fatalf("dial: %v", err)
	}
	e.t.Cleanup(func() { c.Close() })
	return c
}

// drainUntilClose reads a client that stopped reading: it must get positions
// 1, 2, … k with none skipped, then close 4408 naming ?after=k.
func drainUntilClose(t *testing.T, c *websocket.Conn) uint64 {
	t.Helper()
	var last uint64
	for {
		_ = c.SetReadDeadline(time.Now().Add(20 * time.Second))
		_, data, err := c.ReadMessage()
		if err != nil {
			var ce *websocket.CloseError
			if !asClose(err, &ce) || ce.Code != live.CloseTooSlow {
				t.Fatalf("stalled client ended with %v after position %d, want close %d", err, last, live.CloseTooSlow)
			}
			if want := fmt.Sprintf("?after=%d", last); last > 0 && !strings.HasSuffix(ce.Text, want) {
				t.Fatalf("close reason %q, want it to end with %q", ce.Text, want)
			}
			return last
		}
		var f frame
		if err := json.Unmarshal(data, &f); err != nil {
			t.Fatalf("after %d: a frame cut short: %v", last, err)
		}
		if f.Position != last+1 {
			t.Fatalf("stalled client got %d after %d", f.Position, last)
		}
		last = f.Position
	}
}

// A client that stops reading is closed with 4408 once the kernel refused
// its bytes for the write deadline — while another client on the same
// channel gets every message promptly. The closed client, reading again,
// gets an unbroken prefix and then the 4408 naming where to resume.
func TestStalledClientIsClosedWithinTheWriteDeadline(t *testing.T) {
	const writeWait = 2 * time.Second
	dropped := make(chan time.Time, 1)
	e := newEnv(t, nil, live.HubConfig{
		WriteWait: writeWait, MaxQueueBytes: 1 << 30, // the deadline decides, not the budget
		OnDropped: func(string) { dropped <- time.Now() },
	})
	e.sub = liveSub("room:3")
	e.setCheckpoint(0)
	stalled := e.dialWith(smallReadBuffer, "?after=0")
	reader := e.dial("?after=0")
	for e.hub.Subscribers("room:3") < 2 {
		time.Sleep(5 * time.Millisecond)
	}

	big := strings.Repeat("x", 64<<10)
	const n = 300 // ~19 MiB: far beyond what the socket buffers absorb
	sentAt := make([]time.Time, n+1)
	var lag time.Duration
	got := make(chan uint64, n)
	go func() {
		defer close(got)
		for range n {
			_ = reader.SetReadDeadline(time.Now().Add(20 * time.Second))
			_, data, err := reader.ReadMessage()
			if err != nil {
				return
			}
			var f frame
			_ = json.Unmarshal(data, &f)
			got <- f.Position
		}
	}()
	start := time.Now()
	var readUpTo uint64
	var last time.Time
	for p := uint64(1); p <= n; p++ {
		sentAt[p] = time.Now()
		e.hub.Deliver(live.Message{Channel: "room:3", Position: p, Payload: json.RawMessage(`{"type":"big","data":"` + big + `"}`)})
		last = time.Now()
		// Pace the producer by the reading client (at most 4 messages
		// ahead), so only the stalled one falls behind.
		for readUpTo+4 < p {
			r, ok := <-got
			if !ok {
				t.Fatalf("reading client stopped after %d", readUpTo)
			}
			if r != readUpTo+1 {
				t.Fatalf("reading client got %d after %d", r, readUpTo)
			}
			lag = max(lag, time.Since(sentAt[r]))
			readUpTo = r
		}
	}
	for r := range got {
		if r != readUpTo+1 {
			t.Fatalf("reading client got %d after %d", r, readUpTo)
		}
		lag = max(lag, time.Since(sentAt[r]))
		readUpTo = r
	}
	if readUpTo != n {
		t.Fatalf("reading client got %d of %d messages", readUpTo, n)
	}
	// Had the stalled client held up delivery, the reader would have
	// waited for the write deadline.
	if lag > writeWait/2 {
		t.Errorf("the reading client waited up to %v for a message: the stalled one delayed it", lag)
	}
	var at time.Time
	select {
	case at = <-dropped:
	case <-time.After(writeWait*5/4 + 5*time.Second):
		t.Fatal("the stalled client was never closed as too slow")
	}
	// It stalled at the latest when the last message was delivered; the
	// writer gives up after 1 to 1.25 write deadlines without progress.
	if d := at.Sub(last); d > writeWait*5/4+time.Second {
		t.Errorf("closed %v after the last delivery, write deadline %v", d, writeWait)
	}
	k := drainUntilClose(t, stalled)
	if k == 0 || k >= n {
		t.Fatalf("stalled client read up to %d of %d before its close", k, n)
	}
	t.Logf("reader: all %d, max lag %v; stalled: closed %v after the start, had %d", n, lag, at.Sub(start), k)
	for e.hub.Subscribers("room:3") != 1 {
		time.Sleep(10 * time.Millisecond)
	}
}

// A client whose waiting bytes exceed the budget is closed at once, with
// the same unbroken prefix and 4408, long before any write deadline.
func TestClientOverItsByteBudgetIsClosed(t *testing.T) {
	dropped := make(chan struct{}, 1)
	e := newEnv(t, nil, live.HubConfig{
		WriteWait: time.Minute, MaxQueueBytes: 1 << 20,
		OnDropped: func(string) { dropped <- struct{}{} },
	})
	e.sub = liveSub("room:4")
	e.setCheckpoint(0)
	stalled := e.dialWith(smallReadBuffer, "?after=0")
	for e.hub.Subscribers("room:4") < 1 {
		time.Sleep(5 * time.Millisecond)
	}
	big := strings.Repeat("y", 64<<10)
	start := time.Now()
	for p := uint64(1); p <= 200; p++ { // 12.5 MiB
		e.hub.Deliver(live.Message{Channel: "room:4", Position: p, Payload: json.RawMessage(`{"type":"big","data":"` + big + `"}`)})
	}
	select {
	case <-dropped:
	case <-time.After(10 * time.Second):
		t.Fatal("never closed although its budget overflowed")
	}
	if k := drainUntilClose(t, stalled); k >= 200 { // 0 is fine: the budget may overflow before the first write
		t.Fatalf("read up to %d before the close", k)
	}
	if d := time.Since(start); d > 15*time.Second {
		t.Fatalf("took %v", d)
	}
}

// On shutdown every socket is closed with 1001 and a reason telling the
// client where to resume; new sockets are refused.
func TestShutdownClosesSocketsWithGoingAway(t *testing.T) {
	e := newEnv(t, nil, live.HubConfig{})
	e.sub = liveSub("room:6")
	e.setCheckpoint(0)
	a := e.dial("?after=0")
	b := e.dial("?after=0&batch=20")
	for e.hub.Subscribers("room:6") < 2 {
		time.Sleep(5 * time.Millisecond)
	}
	e.hub.Deliver(msg("room:6", 7))
	if f := read(t, a); f.Position != 7 {
		t.Fatalf("got %d", f.Position)
	}
	_ = b.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, _, err := b.ReadMessage(); err != nil {
		t.Fatal(err)
	}

	var wg sync.WaitGroup
	wg.Go(func() {
		if err := e.hub.Close(); err != nil {
			t.Errorf("close: %v", err)
		}
	})
	for name, c := range map[string]*websocket.Conn{"plain": a, "batched": b} {
		_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
		_, _, err := c.ReadMessage()
		var ce *websocket.CloseError
		if !asClose(err, &ce) || ce.Code != websocket.CloseGoingAway {
			t.Fatalf("%s socket ended with %v, want close 1001", name, err)
		}
		if ce.Text != "server shutting down: reconnect with ?after=7" {
			t.Fatalf("%s socket's close reason %q", name, ce.Text)
		}
	}
	wg.Wait()
	if n := e.hub.Len(); n != 0 {
		t.Fatalf("%d sockets left after Close", n)
	}
	if _, resp, err := websocket.DefaultDialer.Dial("ws"+strings.TrimPrefix(e.srv.URL, "http")+"/", nil); err == nil || resp == nil || resp.StatusCode != http.StatusServiceUnavailable {
		t.Fatalf("a socket opened after Close: %v", err)
	}
}

func TestParseOptions(t *testing.T) {
	for query, want := range map[string]string{
		"":                   "after=<nil> batch=0s",
		"after=42":           "after=42 batch=0s",
		"batch=10":           "after=<nil> batch=10ms",
		"after=0&batch=1000": "after=0 batch=1s",
		"after=-1":           "after",
		"after=x":            "after",
		"batch=9":            "batch",
		"batch=1001":         "batch",
		"batch=50ms":         "batch",
		"batch=":             "after=<nil> batch=0s",
	} {
		r, _ := http.NewRequest(http.MethodGet, "/ws?"+query, nil)
		o, err := live.ParseOptions(r)
		var got string
		if err != nil {
			de, ok := err.(*domain.Error)
			if !ok || de.Code != domain.CodeInvalidRequest || len(de.Details) != 1 {
				t.Fatalf("%q: error %#v, want INVALID_REQUEST naming one field", query, err)
			}
			for field := range de.Details {
				got = field
			}
		} else {
			after := "<nil>"
			if o.After != nil {
				after = fmt.Sprint(*o.After)
			}
			got = fmt.Sprintf("after=%s batch=%v", after, o.Batch)
		}
		if got != want {
			t.Errorf("%q: %s, want %s", query, got, want)
		}
	}
}
