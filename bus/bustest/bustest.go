// Package bustest is the conformance suite every bus backend runs: a
// backend's test calls Run with a constructor and the Features it guarantees.
package bustest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/lockstep/lockstep/bus"
)

// Features says what a backend guarantees beyond the common semantics, and
// gives the suite what it needs to test it deterministically.
type Features struct {
	// ParallelConsumers: subscribers of one group consume at the same time, so
	// with enough messages each of two gets some. (watermill-sql's do not: the
	// group's offsets row is locked per batch.)
	ParallelConsumers bool
	// ReadsHistory: a group that subscribes for the first time receives the
	// messages published before (postgres and kafka; not memory).
	ReadsHistory bool
	// AwaitGroup, when set, blocks until group has members subscribers with
	// work assigned. The suite calls it before publishing to a group whose
	// members joined together, so no rebalance happens while they consume
	// (Kafka redelivers unacked messages on a rebalance).
	AwaitGroup func(t *testing.T, topic, group string, members int)
	// Messages is how many messages the volume test publishes (default 10,000).
	Messages int
	// Timeout bounds each wait for deliveries (default 60s).
	Timeout time.Duration
}

// Run runs the suite. newBus returns a fresh Bus (and arranges the cleanup of
// whatever it started); the suite closes the Bus when each subtest ends.
func Run(t *testing.T, f Features, newBus func(t *testing.T) *bus.Bus) {
	if f.Messages == 0 {
		f.Messages = 10_000
	}
	if f.Timeout == 0 {
		f.Timeout = 60 * time.Second
	}
	s := suite{f: f, newBus: func(t *testing.T) *bus.Bus {
		b := newBus(t)
		t.Cleanup(func() {
			if err := b.Close(); err != nil {
				t.Errorf("close bus: %v", err)
			}
		})
		return b
	}}
	t.Run("exactly_once_per_group_and_every_group", s.exactlyOncePerGroup)
	t.Run("resume_after_restart_skips_acked", s.resumeAfterRestart)
	t.Run("fan_out_subscribers_get_everything_after_subscribing", s.fanOut)
	t.Run("nacked_message_is_redelivered", s.nackRedelivers)
	if f.ReadsHistory {
		t.Run("new_group_reads_history", s.newGroupReadsHistory)
	}
	t.Run("rejects_bad_topic_and_group", s.rejectsBadInput)
}

type suite struct {
	f      Features
	newBus func(t *testing.T) *bus.Bus
}

// Topic returns a fresh topic name for a test.
func Topic(prefix string) string {
	var b [6]byte
	_, _ = rand.Read(b[:])
	return prefix + "." + hex.EncodeToString(b[:])
}

type payload struct {
	N int `json:"n"`
}

// newMessages makes n messages numbered from start; key(i) is each one's
// partition key ("" for none).
func newMessages(start, n int, key func(i int) string) []*message.Message {
	msgs := make([]*message.Message, n)
	for i := range msgs {
		p, _ := json.Marshal(payload{N: start + i})
		m := message.NewMessage(watermill.NewUUID(), p)
		if k := key(start + i); k != "" {
			m.Metadata.Set(bus.MetadataPartitionKey, k)
		}
		msgs[i] = m
	}
	return msgs
}

func uuids(msgs []*message.Message) []string {
	out := make([]string, len(msgs))
	for i, m := range msgs {
		out[i] = m.UUID
	}
	return out
}

func publish(t *testing.T, b *bus.Bus, topic string, msgs []*message.Message) {
	t.Helper()
	for start := 0; start < len(msgs); start += 500 {
		if err := b.Publish(t.Context(), topic, msgs[start:min(start+500, len(msgs))]...); err != nil {
			t.Fatalf("publish: %v", err)
		}
	}
}

func subscribe(t *testing.T, sub message.Subscriber, topic string) <-chan *message.Message {
	t.Helper()
	ch, err := sub.Subscribe(t.Context(), topic)
	if err != nil {
		t.Fatalf("subscribe %s: %v", topic, err)
	}
	return ch
}

func subscriber(t *testing.T, b *bus.Bus, group string) message.Subscriber {
	t.Helper()
	s, err := b.Subscriber(group)
	if err != nil {
		t.Fatalf("subscriber %s: %v", group, err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

// collector records what subscribers received, by message UUID.
type collector struct {
	mu    sync.Mutex
	seen  map[string]int // uuid → times received
	by    map[string]int // subscriber name → messages received
	order []int          // payload numbers in arrival order
	dups  []string
}

func newCollector() *collector {
	return &collector{seen: map[string]int{}, by: map[string]int{}}
}

func (c *collector) record(name string, m *message.Message) {
	var p payload
	_ = json.Unmarshal(m.Payload, &p)
	c.mu.Lock()
	defer c.mu.Unlock()
	c.seen[m.UUID]++
	if c.seen[m.UUID] > 1 {
		c.dups = append(c.dups, m.UUID)
	}
	c.by[name]++
	c.order = append(c.order, p.N)
}

// consume acks and records everything from ch until it closes.
func (c *collector) consume(name string, ch <-chan *message.Message) {
	go func() {
		for m := range ch {
			c.record(name, m)
			m.Ack()
		}
	}()
}

func (c *collector) distinct() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.seen)
}

// waitDistinct polls until the collector holds n distinct messages.
func (s suite) waitDistinct(t *testing.T, c *collector, n int, what string) {
	t.Helper()
	deadline := time.Now().Add(s.f.Timeout)
	for c.distinct() < n {
		if time.Now().After(deadline) {
			t.Fatalf("%s: %d of %d messages delivered within %s", what, c.distinct(), n, s.f.Timeout)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// check fails unless the collector holds exactly want, each once.
func (c *collector) check(t *testing.T, what string, want []string) {
	t.Helper()
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.dups) > 0 {
		t.Errorf("%s: %d duplicate deliveries, e.g. %s", what, len(c.dups), c.dups[0])
	}
	wantSet := make(map[string]bool, len(want))
	for _, u := range want {
		wantSet[u] = true
		if c.seen[u] == 0 {
			t.Errorf("%s: message %s never delivered", what, u)
			return
		}
	}
	for u := range c.seen {
		if !wantSet[u] {
			t.Errorf("%s: unexpected message %s delivered", what, u)
			return
		}
	}
}

// receive waits for the next message on ch.
func (s suite) receive(t *testing.T, ch <-chan *message.Message, what string) *message.Message {
	t.Helper()
	select {
	case m, ok := <-ch:
		if !ok {
			t.Fatalf("%s: channel closed", what)
		}
		return m
	case <-time.After(s.f.Timeout):
		t.Fatalf("%s: nothing delivered within %s", what, s.f.Timeout)
		return nil
	}
}

func number(t *testing.T, m *message.Message) int {
	t.Helper()
	var p payload
	if err := json.Unmarshal(m.Payload, &p); err != nil {
		t.Fatalf("payload %q: %v", m.Payload, err)
	}
	return p.N
}

// exactlyOncePerGroup: two subscribers of group A split N messages, each
// acked once; a subscriber of group B receives all N too.
func (s suite) exactlyOncePerGroup(t *testing.T) {
	b := s.newBus(t)
	topic := Topic("eo")
	groupA, groupB := bus.FanOutGroup("a"), bus.FanOutGroup("b")

	inA := newCollector()
	inA.consume("a1", subscribe(t, subscriber(t, b, groupA), topic))
	inA.consume("a2", subscribe(t, subscriber(t, b, groupA), topic))
	inB := newCollector()
	inB.consume("b1", subscribe(t, subscriber(t, b, groupB), topic))
	if s.f.AwaitGroup != nil {
		s.f.AwaitGroup(t, topic, groupA, 2)
		s.f.AwaitGroup(t, topic, groupB, 1)
	}

	msgs := newMessages(0, s.f.Messages, func(i int) string { return fmt.Sprintf("agg-%d", i%32) })
	start := time.Now()
	publish(t, b, topic, msgs)
	t.Logf("%s: published %d messages in %s", b.Backend(), len(msgs), time.Since(start))

	s.waitDistinct(t, inA, len(msgs), "group A")
	s.waitDistinct(t, inB, len(msgs), "group B")
	t.Logf("%s: both groups consumed %d messages %s after publishing began", b.Backend(), len(msgs), time.Since(start))
	inA.check(t, "group A (two subscribers)", uuids(msgs))
	inB.check(t, "group B", uuids(msgs))
	inA.mu.Lock()
	defer inA.mu.Unlock()
	t.Logf("group A split: a1=%d a2=%d", inA.by["a1"], inA.by["a2"])
	if s.f.ParallelConsumers && (inA.by["a1"] == 0 || inA.by["a2"] == 0) {
		t.Errorf("group A: one subscriber got every message (a1=%d, a2=%d); they should split them",
			inA.by["a1"], inA.by["a2"])
	}
}

// resumeAfterRestart: a subscriber acks half of one aggregate's messages,
// receives one more without acking it, and closes; the next subscriber of the
// group receives exactly the rest, from the unacked one on, in order.
func (s suite) resumeAfterRestart(t *testing.T) {
	b := s.newBus(t)
	topic := Topic("resume")
	group := bus.FanOutGroup("resume")
	const total = 2000
	msgs := newMessages(0, total, func(int) string { return "one-aggregate" })

	first := subscriber(t, b, group)
	ch := subscribe(t, first, topic)
	publish(t, b, topic, msgs)
	for i := range total / 2 {
		m := s.receive(t, ch, "first subscriber")
		if m.UUID != msgs[i].UUID {
			t.Fatalf("first subscriber: message %d is #%d, want #%d (one aggregate's messages stay in order)", i, number(t, m), i)
		}
		m.Ack()
	}
	// Receiving the next message proves the previous ack was taken in.
	unacked := s.receive(t, ch, "first subscriber, message after the acked half")
	if unacked.UUID != msgs[total/2].UUID {
		t.Fatalf("first subscriber: got #%d after the acked half, want #%d", number(t, unacked), total/2)
	}
	if err := first.Close(); err != nil {
		t.Fatalf("close first subscriber: %v", err)
	}

	rest := newCollector()
	rest.consume("second", subscribe(t, subscriber(t, b, group), topic))
	s.waitDistinct(t, rest, total/2, "second subscriber")
	rest.check(t, "second subscriber", uuids(msgs[total/2:]))
	rest.mu.Lock()
	defer rest.mu.Unlock()
	for i, n := range rest.order {
		if n != total/2+i {
			t.Fatalf("second subscriber: delivery %d is #%d, want #%d", i, n, total/2+i)
		}
	}
}

// fanOut: two fan-out subscribers each receive every message published after
// they subscribed, and none published before.
func (s suite) fanOut(t *testing.T) {
	b := s.newBus(t)
	topic := Topic("fanout")
	key := func(int) string { return "notices" }
	old := newMessages(0, 50, key)
	publish(t, b, topic, old)

	var ins []*collector
	for _, name := range []string{"instance-1", "instance-2"} {
		sub, err := b.FanOutSubscriber(name)
		if err != nil {
			t.Fatalf("fan-out subscriber: %v", err)
		}
		t.Cleanup(func() { _ = sub.Close() })
		in := newCollector()
		in.consume(name, subscribe(t, sub, topic))
		ins = append(ins, in)
	}
	msgs := newMessages(len(old), 1000, key)
	publish(t, b, topic, msgs)
	for i, in := range ins {
		s.waitDistinct(t, in, len(msgs), fmt.Sprintf("instance-%d", i+1))
		in.check(t, fmt.Sprintf("instance-%d", i+1), uuids(msgs))
	}
}

// nackRedelivers: a nacked message comes back (before the aggregate's next
// one), payload and metadata intact.
func (s suite) nackRedelivers(t *testing.T) {
	b := s.newBus(t)
	topic := Topic("nack")
	ch := subscribe(t, subscriber(t, b, bus.FanOutGroup("nack")), topic)
	msgs := newMessages(0, 2, func(int) string { return "help-7" })
	msgs[0].Metadata.Set("correlation_id", "c-1")
	publish(t, b, topic, msgs)

	m := s.receive(t, ch, "first delivery")
	if m.UUID != msgs[0].UUID {
		t.Fatalf("first delivery is #%d, want #0", number(t, m))
	}
	m.Nack()
	again := s.receive(t, ch, "redelivery")
	if again.UUID != msgs[0].UUID {
		t.Fatalf("after a nack got #%d, want #0 again", number(t, again))
	}
	if string(again.Payload) != string(msgs[0].Payload) || again.Metadata.Get("correlation_id") != "c-1" ||
		again.Metadata.Get(bus.MetadataPartitionKey) != "help-7" {
		t.Fatalf("redelivered message differs: payload %s metadata %v", again.Payload, again.Metadata)
	}
	again.Ack()
	next := s.receive(t, ch, "next message")
	if next.UUID != msgs[1].UUID {
		t.Fatalf("after the ack got #%d, want #1", number(t, next))
	}
	next.Ack()
}

// newGroupReadsHistory: a group's first subscriber gets what was published
// before it existed.
func (s suite) newGroupReadsHistory(t *testing.T) {
	b := s.newBus(t)
	topic := Topic("history")
	msgs := newMessages(0, 100, func(i int) string { return "" })
	publish(t, b, topic, msgs)
	in := newCollector()
	in.consume("late", subscribe(t, subscriber(t, b, bus.FanOutGroup("late")), topic))
	s.waitDistinct(t, in, len(msgs), "late group")
	in.check(t, "late group", uuids(msgs))
}

func (s suite) rejectsBadInput(t *testing.T) {
	b := s.newBus(t)
	for _, topic := range []string{"", "has space", "semi;colon", "quote\"", string(make([]byte, 41))} {
		if err := b.Publish(t.Context(), topic, newMessages(0, 1, func(int) string { return "" })...); err == nil {
			t.Errorf("Publish to topic %q: no error", topic)
		}
	}
	if _, err := b.Subscriber(" "); err == nil {
		t.Error("Subscriber with a blank group: no error")
	}
	if err := b.Ping(t.Context()); err != nil {
		t.Errorf("Ping: %v", err)
	}
	if err := b.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if err := b.Publish(context.WithoutCancel(t.Context()), Topic("closed"), newMessages(0, 1, func(int) string { return "" })...); err == nil {
		t.Error("Publish after Close: no error")
	}
	if err := b.Ping(t.Context()); err == nil {
		t.Error("Ping after Close: no error")
	}
	if !slices.Contains([]string{bus.BackendPostgres, bus.BackendKafka, bus.BackendMemory}, b.Backend()) {
		t.Errorf("Backend() = %q", b.Backend())
	}
}
