// Package eventstoretest is the conformance suite every event store runs:
//
//	func TestConformance(t *testing.T) {
//		eventstoretest.Run(t, func(t *testing.T) eventstoretest.Harness { … })
//	}
//
// It checks appends with expected versions, idempotent retries, stream and
// global reads, catch-up subscriptions across a restart, and — the point of
// the whole exercise — that a catch-up reader running during many concurrent
// appends, some of them held back just before they commit, sees every event
// exactly once in strictly increasing position order; that appends held open
// do not blank the log for readers; and, under stress (32 appenders pausing
// between their steps, readers paging and subscribing), that every reader sees
// every event exactly once.
//
// The stress test appends LOCKSTEP_STRESS_EVENTS events (default
// DefaultStressEvents, small enough for `make test` under -race); the full
// run is LOCKSTEP_STRESS_EVENTS=20000.
package eventstoretest

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"reflect"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/lockstep/lockstep/eventstore"
)

// Harness is one store under test, fresh for each subtest.
type Harness struct {
	// Store is the store under test, preferably empty; on a shared server
	// nothing else may write to it while the suite runs. The suite closes it
	// at the end of the subtest.
	Store eventstore.Store
	// Reopen makes a new Store over the same data, as a process restart
	// would; the suite closes the old one first. Nil skips the restart test.
	Reopen func(t *testing.T) eventstore.Store
	// Commits, when not nil, must be called by the store's appends (all
	// stores Reopen makes included) just before they commit (BeforeCommit),
	// and may be called by them once they hold their place in the order, before
	// they insert (AfterLock); the suite uses it to hold some committers back
	// and to pause appenders. The store must then be able to run at least
	// HeldCommitters+2 appends at once (pool size); the more, up to
	// StressAppenders, the harder the stress test. Nil: the concurrency tests
	// run without held committers, and the tests that need them are skipped.
	Commits *CommitHook
	// StreamPositionsUnknown: ReadStream may return events with Position 0
	// (EventStoreDB servers read streams from an index without positions).
	StreamPositionsUnknown bool
	// IDsCheckedPerStreamOnly: the store detects an already-stored event id
	// only within the stream appended to (EventStoreDB has no lookup by id).
	IDsCheckedPerStreamOnly bool
	// Timeout bounds every wait of the suite. Default 30s.
	Timeout time.Duration
}

// HeldCommitters is how many appends the gap test holds before they commit.
const HeldCommitters = 3

// CommitHook is a switchable callback the suite installs; a store under test
// calls BeforeCommit from inside its append transactions.
type CommitHook struct {
	mu     sync.RWMutex
	fn     func(ctx context.Context, stream string)
	lockFn func(ctx context.Context, stream string)
}

// AfterLock calls the installed after-lock callback, if any: a store calls it
// from appends to streams it Holds, once the append holds whatever gives it
// its place in the global order (a lock) and before it inserts.
func (h *CommitHook) AfterLock(ctx context.Context, stream string) {
	h.call(ctx, stream, func(h *CommitHook) func(context.Context, string) { return h.lockFn })
}

// BeforeCommit calls the installed callback, if any.
func (h *CommitHook) BeforeCommit(ctx context.Context, stream string) {
	h.call(ctx, stream, func(h *CommitHook) func(context.Context, string) { return h.fn })
}

// call runs the callback pick names, if one is installed.
func (h *CommitHook) call(ctx context.Context, stream string, pick func(*CommitHook) func(context.Context, string)) {
	if h == nil {
		return
	}
	h.mu.RLock()
	fn := pick(h)
	h.mu.RUnlock()
	if fn != nil {
		fn(ctx, stream)
	}
}

// HeldStreamPrefix starts the names of the streams whose appends the gap test holds.
const HeldStreamPrefix = "held-"

// Holds reports whether appends to stream will be held before commit: a
// store may take a faster path (no open transaction) for the others.
func (h *CommitHook) Holds(stream string) bool {
	if h == nil {
		return false
	}
	h.mu.RLock()
	defer h.mu.RUnlock()
	return (h.fn != nil || h.lockFn != nil) && strings.HasPrefix(stream, HeldStreamPrefix)
}

func (h *CommitHook) set(fn func(ctx context.Context, stream string)) {
	h.mu.Lock()
	h.fn = fn
	h.mu.Unlock()
}

func (h *CommitHook) setLock(fn func(ctx context.Context, stream string)) {
	h.mu.Lock()
	h.lockFn = fn
	h.mu.Unlock()
}

// Run runs the suite; newStore is called once per subtest.
func Run(t *testing.T, newStore func(t *testing.T) Harness) {
	tests := []struct {
		name string
		fn   func(t *testing.T, s *suite)
	}{
		{"append_and_read_stream_round_trip", testRoundTrip},
		{"invalid_events_are_refused", testInvalidEvents},
		{"expected_version", testExpectedVersion},
		{"concurrent_appenders_one_stream_one_winner_per_version", testConcurrentOneStream},
		{"concurrent_appenders_with_catch_up_reader_skip_nothing", testNoGaps},
		{"two_appends_in_flight_do_not_blank_the_log", testTwoInFlight},
		{"stress_every_reader_sees_every_event_once_in_order", testStress},
		{"read_all_paging_yields_the_same_sequence", testReadAllPaging},
		{"idempotent_append", testIdempotentAppend},
		{"subscribe_from_saved_position_after_restart", testRestart},
		{"subscribe_delivers_stored_then_live_events", testSubscribeCatchUpThenLive},
		{"subscribe_stops_on_cancel_and_handler_error", testSubscribeStops},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			h := newStore(t)
			if h.Timeout == 0 {
				h.Timeout = 30 * time.Second
			}
			s := &suite{Harness: h, store: h.Store}
			t.Cleanup(func() {
				s.Commits.set(nil)
				s.Commits.setLock(nil)
				s.store.Close()
			})
			base, err := h.Store.HeadPosition(s.ctx(t))
			if err != nil {
				t.Fatalf("head position: %v", err)
			}
			s.base = base
			tc.fn(t, s)
		})
	}
}

type suite struct {
	Harness
	store eventstore.Store // the current one (after Reopen, the new one)
	// base is the head of the global log when the subtest started: 0 for an
	// empty store; a shared server's log holds earlier subtests' events.
	base uint64
}

func (s *suite) ctx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), s.Timeout)
	t.Cleanup(cancel)
	return ctx
}

// streamName is unique per call, so suites can share an EventStoreDB server.
func streamName(prefix string) string {
	return prefix + "-" + uuid.NewString()
}

func newEvent(typ string, n int) eventstore.EventData {
	return eventstore.EventData{
		ID:            uuid.New(),
		Type:          typ,
		SchemaVersion: 1,
		Data:          json.RawMessage(fmt.Sprintf(`{"n": %d, "text": "step %d"}`, n, n)),
		OccurredAt:    time.Now().UTC().Truncate(time.Millisecond),
	}
}

func newEvents(typ string, count int) []eventstore.EventData {
	out := make([]eventstore.EventData, count)
	for i := range out {
		out[i] = newEvent(typ, i)
	}
	return out
}

func mustAppend(t *testing.T, ctx context.Context, st eventstore.Store, stream string, exp eventstore.ExpectedVersion, evs ...eventstore.EventData) eventstore.AppendResult {
	t.Helper()
	res, err := st.Append(ctx, stream, exp, evs...)
	if err != nil {
		t.Fatalf("append %d events to %s (expected %d): %v", len(evs), stream, exp, err)
	}
	return res
}

func readStream(t *testing.T, ctx context.Context, st eventstore.Store, stream string) []eventstore.Event {
	t.Helper()
	evs, err := st.ReadStream(ctx, stream, 0, 0)
	if err != nil {
		t.Fatalf("read stream %s: %v", stream, err)
	}
	return evs
}

// readAll pages through the whole visible log with page size limit,
// checking that positions strictly increase.
func readAll(t *testing.T, ctx context.Context, st eventstore.Store, after uint64, limit int) []eventstore.Event {
	t.Helper()
	var out []eventstore.Event
	for {
		page, err := st.ReadAll(ctx, after, limit)
		if err != nil {
			t.Fatalf("read all after %d: %v", after, err)
		}
		if len(page) > limit {
			t.Fatalf("read all after %d with limit %d returned %d events", after, limit, len(page))
		}
		for _, e := range page {
			if e.Position <= after {
				t.Fatalf("read all: position %d does not follow %d", e.Position, after)
			}
			after = e.Position
		}
		out = append(out, page...)
		if len(page) < limit {
			return out
		}
	}
}

// waitFor polls cond until it holds or the harness timeout passes.
func (s *suite) waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(s.Timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", s.Timeout, what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func sameJSON(a, b []byte) bool {
	var x, y any
	if json.Unmarshal(a, &x) != nil || json.Unmarshal(b, &y) != nil {
		return false
	}
	return reflect.DeepEqual(x, y)
}

func ids(evs []eventstore.Event) []uuid.UUID {
	out := make([]uuid.UUID, len(evs))
	for i, e := range evs {
		out[i] = e.ID
	}
	return out
}

func dataIDs(evs []eventstore.EventData) []uuid.UUID {
	out := make([]uuid.UUID, len(evs))
	for i, e := range evs {
		out[i] = e.ID
	}
	return out
}

func testRoundTrip(t *testing.T, s *suite) {
	ctx := s.ctx(t)
	stream := streamName("lecture")
	in := newEvents("TaskAdded", 3)
	in[0].Type = "LectureCreated"
	in[0].SchemaVersion = 2
	in[1].Metadata = eventstore.Metadata{CorrelationID: "corr-1", CausationID: "cause-1", UserID: 7, SessionID: 11, LectureID: 13}
	in[2].Data = json.RawMessage(`{"title": "전화 걸기", "nested": {"list": [1, 2.5, "x", null, true]}}`)
	before := time.Now().Add(-time.Second)
	defaulted := eventstore.EventData{ID: uuid.New(), Type: "LectureUpdated", Data: json.RawMessage(`{}`)}

	res := mustAppend(t, ctx, s.store, stream, eventstore.NoStream, in...)
	if res.Version != 3 {
		t.Fatalf("append result version = %d, want 3", res.Version)
	}
	res2 := mustAppend(t, ctx, s.store, stream, eventstore.Exactly(3), defaulted)
	if res2.Version != 4 || res2.Position <= res.Position {
		t.Fatalf("second append = %+v after %+v: want version 4 and a higher position", res2, res)
	}
	after := time.Now().Add(time.Second)

	got := readStream(t, ctx, s.store, stream)
	s.awaitVisible(t, ctx, res2.Position)
	if len(got) != 4 {
		t.Fatalf("read %d events, want 4", len(got))
	}
	all := readAll(t, ctx, s.store, s.base, 100)
	var allOfStream []eventstore.Event
	for _, e := range all {
		if e.Stream == stream {
			allOfStream = append(allOfStream, e)
		}
	}
	if !reflect.DeepEqual(ids(allOfStream), ids(got)) {
		t.Fatalf("ReadAll has the stream's events %v, ReadStream %v", ids(allOfStream), ids(got))
	}
	if allOfStream[2].Position != res.Position || allOfStream[3].Position != res2.Position {
		t.Fatalf("append results %+v, %+v do not name the positions of their last events (%d, %d)", res, res2, allOfStream[2].Position, allOfStream[3].Position)
	}
	for i, e := range got {
		if e.Version != int64(i+1) || e.Stream != stream {
			t.Fatalf("event %d: stream %q version %d, want %q %d", i, e.Stream, e.Version, stream, i+1)
		}
		if !s.StreamPositionsUnknown && e.Position != allOfStream[i].Position {
			t.Fatalf("event %d: ReadStream position %d, ReadAll position %d", i, e.Position, allOfStream[i].Position)
		}
		if i > 0 && !s.StreamPositionsUnknown && e.Position <= got[i-1].Position {
			t.Fatalf("positions not increasing in the stream: %d after %d", e.Position, got[i-1].Position)
		}
		if !reflect.DeepEqual(e, allOfStream[i]) && !s.StreamPositionsUnknown {
			t.Fatalf("event %d differs between ReadStream and ReadAll:\n%+v\n%+v", i, e, allOfStream[i])
		}
	}
	for i, want := range in {
		e := got[i]
		if e.ID != want.ID || e.Type != want.Type || e.SchemaVersion != want.SchemaVersion || e.Metadata != want.Metadata {
			t.Errorf("event %d envelope = {%s %s v%d %+v}, want {%s %s v%d %+v}", i, e.ID, e.Type, e.SchemaVersion, e.Metadata, want.ID, want.Type, want.SchemaVersion, want.Metadata)
		}
		if !sameJSON(e.Data, want.Data) {
			t.Errorf("event %d data = %s, want %s", i, e.Data, want.Data)
		}
		if !e.OccurredAt.Equal(want.OccurredAt) || e.OccurredAt.Location() != time.UTC {
			t.Errorf("event %d occurred_at = %v, want %v in UTC", i, e.OccurredAt, want.OccurredAt)
		}
	}
	d := got[3]
	if d.SchemaVersion != 1 || d.OccurredAt.Before(before) || d.OccurredAt.After(after) || d.Metadata != (eventstore.Metadata{}) {
		t.Errorf("defaults: schema version %d (want 1), occurred_at %v (want between %v and %v), metadata %+v (want zero)", d.SchemaVersion, d.OccurredAt, before, after, d.Metadata)
	}

	part, err := s.store.ReadStream(ctx, stream, 1, 2)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(ids(part), []uuid.UUID{in[1].ID, in[2].ID}) {
		t.Errorf("ReadStream(after 1, limit 2) = %v, want events 2 and 3", ids(part))
	}
	none, err := s.store.ReadStream(ctx, streamName("nothing"), 0, 0)
	if err != nil || len(none) != 0 {
		t.Errorf("ReadStream of a missing stream = %d events, %v; want none, nil", len(none), err)
	}
	head, err := s.store.HeadPosition(ctx)
	if err != nil || head != res2.Position {
		t.Errorf("HeadPosition = %d, %v; want %d", head, err, res2.Position)
	}
	if err := s.store.Ping(ctx); err != nil {
		t.Errorf("Ping: %v", err)
	}
}

func testInvalidEvents(t *testing.T, s *suite) {
	ctx := s.ctx(t)
	stream := streamName("invalid")
	good := newEvent("HelpRequested", 1)
	dup := newEvent("HelpRequested", 2)
	cases := []struct {
		name   string
		stream string
		events []eventstore.EventData
	}{
		{"nil_id", stream, []eventstore.EventData{good, {Type: "HelpRequested", Data: json.RawMessage(`{}`)}}},
		{"empty_type", stream, []eventstore.EventData{good, {ID: uuid.New(), Data: json.RawMessage(`{}`)}}},
		{"data_not_json", stream, []eventstore.EventData{good, {ID: uuid.New(), Type: "HelpRequested", Data: json.RawMessage(`{"a":`)}}},
		{"no_data", stream, []eventstore.EventData{good, {ID: uuid.New(), Type: "HelpRequested"}}},
		{"no_events", stream, nil},
		{"same_id_twice", stream, []eventstore.EventData{dup, dup}},
		{"empty_stream_name", "", []eventstore.EventData{good}},
	}
	for _, c := range cases {
		if _, err := s.store.Append(ctx, c.stream, eventstore.Any, c.events...); !errors.Is(err, eventstore.ErrInvalidEvent) {
			t.Errorf("%s: err = %v, want ErrInvalidEvent", c.name, err)
		}
	}
	if evs := readStream(t, ctx, s.store, stream); len(evs) != 0 {
		t.Fatalf("refused appends stored %d events", len(evs))
	}
	if evs := readAll(t, ctx, s.store, s.base, 100); len(evs) != 0 {
		t.Fatalf("refused appends stored %d events in the log", len(evs))
	}
}

func testExpectedVersion(t *testing.T, s *suite) {
	ctx := s.ctx(t)
	stream := streamName("session")
	mustAppend(t, ctx, s.store, stream, eventstore.NoStream, newEvents("SessionOpened", 2)...)

	refused := []struct {
		name     string
		stream   string
		expected eventstore.ExpectedVersion
	}{
		{"no_stream_on_existing_stream", stream, eventstore.NoStream},
		{"exactly_too_low", stream, eventstore.Exactly(1)},
		{"exactly_too_high", stream, eventstore.Exactly(3)},
		{"exactly_on_missing_stream", streamName("missing"), eventstore.Exactly(1)},
	}
	for _, c := range refused {
		if _, err := s.store.Append(ctx, c.stream, c.expected, newEvent("SessionStarted", 0)); !errors.Is(err, eventstore.ErrConcurrency) {
			t.Errorf("%s: err = %v, want ErrConcurrency", c.name, err)
		}
	}
	if evs := readStream(t, ctx, s.store, stream); len(evs) != 2 {
		t.Fatalf("refused appends changed the stream: %d events, want 2", len(evs))
	}
	if res := mustAppend(t, ctx, s.store, stream, eventstore.Exactly(2), newEvent("SessionStarted", 0)); res.Version != 3 {
		t.Errorf("Exactly(2) append: version %d, want 3", res.Version)
	}
	if res := mustAppend(t, ctx, s.store, stream, eventstore.Any, newEvents("StepChanged", 2)...); res.Version != 5 {
		t.Errorf("Any append on an existing stream: version %d, want 5", res.Version)
	}
	fresh := streamName("fresh")
	if res := mustAppend(t, ctx, s.store, fresh, eventstore.Any, newEvent("SessionOpened", 0)); res.Version != 1 {
		t.Errorf("Any append on a new stream: version %d, want 1", res.Version)
	}
	if evs := readStream(t, ctx, s.store, stream); len(evs) != 5 {
		t.Errorf("stream has %d events, want 5", len(evs))
	}
}

func testConcurrentOneStream(t *testing.T, s *suite) {
	ctx := s.ctx(t)
	stream := streamName("progress")
	const writers, rounds = 20, 3
	var winners []uuid.UUID
	for round := range rounds {
		var (
			wg      sync.WaitGroup
			mu      sync.Mutex
			won     []eventstore.EventData
			results []eventstore.AppendResult
			others  []error
		)
		start := make(chan struct{})
		for range writers {
			ev := newEvent("SubtaskCompleted", round)
			wg.Go(func() {
				<-start
				res, err := s.store.Append(ctx, stream, eventstore.Exactly(int64(round)), ev)
				mu.Lock()
				defer mu.Unlock()
				switch {
				case err == nil:
					won = append(won, ev)
					results = append(results, res)
				case errors.Is(err, eventstore.ErrConcurrency):
				default:
					others = append(others, err)
				}
			})
		}
		close(start)
		wg.Wait()
		if len(others) > 0 {
			t.Fatalf("round %d: unexpected errors: %v", round, others)
		}
		if len(won) != 1 {
			t.Fatalf("round %d: %d of %d appends at version %d won, want exactly 1", round, len(won), writers, round)
		}
		if results[0].Version != int64(round+1) {
			t.Fatalf("round %d: winner's version %d, want %d", round, results[0].Version, round+1)
		}
		winners = append(winners, won[0].ID)
	}
	if got := ids(readStream(t, ctx, s.store, stream)); !reflect.DeepEqual(got, winners) {
		t.Fatalf("stream holds %v, want the winners %v", got, winners)
	}

	// With Any every writer gets its own version.
	var (
		wg       sync.WaitGroup
		mu       sync.Mutex
		versions = map[int64]bool{}
		errs     []error
	)
	for range writers {
		wg.Go(func() {
			res, err := s.store.Append(ctx, stream, eventstore.Any, newEvent("SubtaskStarted", 0))
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				errs = append(errs, err)
				return
			}
			versions[res.Version] = true
		})
	}
	wg.Wait()
	if len(errs) > 0 {
		t.Fatalf("concurrent Any appends failed: %v", errs)
	}
	for v := int64(rounds + 1); v <= rounds+writers; v++ {
		if !versions[v] {
			t.Fatalf("concurrent Any appends got versions %v, want each of %d..%d once", versions, rounds+1, rounds+writers)
		}
	}
	if evs := readStream(t, ctx, s.store, stream); len(evs) != rounds+writers {
		t.Fatalf("stream has %d events, want %d", len(evs), rounds+writers)
	}
}

// collector records what a subscription delivers and checks order as it goes.
type collector struct {
	mu     sync.Mutex
	events []eventstore.Event
	seen   map[uuid.UUID]int
	errs   []string
}

func newCollector() *collector { return &collector{seen: map[uuid.UUID]int{}} }

func (c *collector) handle(_ context.Context, batch []eventstore.Event) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(batch) == 0 {
		c.errs = append(c.errs, "empty batch delivered")
	}
	for _, e := range batch {
		if n := len(c.events); n > 0 && e.Position <= c.events[n-1].Position {
			c.errs = append(c.errs, fmt.Sprintf("position %d delivered after %d", e.Position, c.events[n-1].Position))
		}
		c.seen[e.ID]++
		if c.seen[e.ID] == 2 {
			c.errs = append(c.errs, fmt.Sprintf("event %s delivered twice", e.ID))
		}
		c.events = append(c.events, e)
	}
	return nil
}

func (c *collector) count() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.events)
}

func (c *collector) last() uint64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.events) == 0 {
		return 0
	}
	return c.events[len(c.events)-1].Position
}

func (c *collector) snapshot() ([]eventstore.Event, []string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]eventstore.Event(nil), c.events...), append([]string(nil), c.errs...)
}

// subscription is a background Subscribe call.
type subscription struct {
	*collector
	cancel context.CancelFunc
	done   chan struct{} // closed when Subscribe has returned err
	err    error
}

// result waits for the subscription to end and returns its error.
func (s *suite) result(t *testing.T, sub *subscription) error {
	t.Helper()
	select {
	case <-sub.done:
		return sub.err
	case <-time.After(s.Timeout):
		t.Fatalf("subscription did not end within %s", s.Timeout)
		return nil
	}
}

// subscribe runs a subscription in the background until the test ends.
func (s *suite) subscribe(t *testing.T, st eventstore.Store, after uint64) *subscription {
	ctx, cancel := context.WithCancel(context.Background())
	sub := &subscription{collector: newCollector(), cancel: cancel, done: make(chan struct{})}
	go func() {
		sub.err = st.Subscribe(ctx, after, sub.handle)
		close(sub.done)
	}()
	t.Cleanup(func() {
		cancel()
		select {
		case <-sub.done:
		case <-time.After(s.Timeout):
			t.Errorf("subscription did not stop within %s of its context's end", s.Timeout)
		}
	})
	return sub
}

// awaitVisible waits until readers of the global log may see position pos:
// a store may hold readers back while older transactions are in flight.
func (s *suite) awaitVisible(t *testing.T, ctx context.Context, pos uint64) {
	t.Helper()
	s.waitFor(t, fmt.Sprintf("position %d to become visible", pos), func() bool {
		head, err := s.store.HeadPosition(ctx)
		if err != nil {
			t.Fatalf("head position: %v", err)
		}
		return head >= pos
	})
}

func testNoGaps(t *testing.T, s *suite) {
	ctx := s.ctx(t)
	const appenders = 50
	sub := s.subscribe(t, s.store, s.base)

	// A few appenders commit first; then the held appenders take their place
	// in the log and wait just before committing until every other appender
	// has committed and the reader has caught up with everything visible —
	// which must include every event committed before the held ones took
	// their place, and nothing ordered after them.
	const early = 5
	g := &gapRun{s: s, ctx: ctx, held: map[int]bool{}, appended: map[uuid.UUID]bool{}, heldIDs: map[uuid.UUID]bool{}}
	release := make(chan struct{})
	arrived := make(chan struct{}, appenders)
	if s.Commits != nil {
		for i := range HeldCommitters {
			g.held[early+i*(appenders-early)/HeldCommitters] = true
		}
		defer holdCommits(s, arrived, release)()
	}

	for i := range early {
		g.appendOne(i)
	}
	if len(g.errs) > 0 {
		t.Fatalf("appends failed: %v", g.errs)
	}
	var before []uuid.UUID
	for id := range g.appended {
		before = append(before, id)
	}
	var wg sync.WaitGroup
	for i := range g.held {
		wg.Go(func() { g.appendOne(i) })
	}
	for range g.held {
		select {
		case <-arrived:
		case <-ctx.Done():
			t.Fatal("held appenders never reached their commit")
		}
	}
	var free sync.WaitGroup
	for i := early; i < appenders; i++ {
		if !g.held[i] {
			free.Go(func() { g.appendOne(i) })
		}
	}
	free.Wait()
	var visible []eventstore.Event
	if len(g.held) > 0 {
		visible = g.readWhileHeld(t, sub, before)
		close(release)
	}
	wg.Wait()
	if len(g.errs) > 0 {
		t.Fatalf("appends failed: %v", g.errs)
	}
	all := g.checkHeldOrder(t, visible)
	s.waitFor(t, "the reader to reach the end of the log", func() bool { return sub.last() >= all[len(all)-1].Position })
	g.checkDelivered(t, sub, all)
}

// holdCommits makes the harness's held appends, at their commit, say so on
// arrived and wait for release; the returned function stops it.
func holdCommits(s *suite, arrived chan<- struct{}, release <-chan struct{}) (stop func()) {
	s.Commits.set(func(ctx context.Context, stream string) {
		if !strings.HasPrefix(stream, HeldStreamPrefix) {
			return
		}
		arrived <- struct{}{}
		select {
		case <-release:
		case <-ctx.Done():
		}
	})
	return func() { s.Commits.set(nil) }
}

// gapRun is the no-gaps test's appenders and what they appended.
type gapRun struct {
	s    *suite
	ctx  context.Context
	held map[int]bool // the appenders held at their commit

	mu       sync.Mutex
	appended map[uuid.UUID]bool
	heldIDs  map[uuid.UUID]bool
	errs     []error
}

// appendOne is appender i: 1–3 events to a stream of its own.
func (g *gapRun) appendOne(i int) {
	prefix := "free"
	if g.held[i] {
		prefix = "held"
	}
	evs := newEvents("ParticipantJoined", 1+i%3)
	_, err := g.s.store.Append(g.ctx, streamName(prefix), eventstore.NoStream, evs...)
	g.mu.Lock()
	defer g.mu.Unlock()
	if err != nil {
		g.errs = append(g.errs, err)
		return
	}
	for _, e := range evs {
		g.appended[e.ID] = true
		if g.held[i] {
			g.heldIDs[e.ID] = true
		}
	}
}

// readWhileHeld lets the reader take everything it is shown while the held
// appenders are still open (a store that shows later commits before the
// held ones would make it skip them); what was committed before they began
// must be shown. It returns what ReadAll showed.
func (g *gapRun) readWhileHeld(t *testing.T, sub *subscription, before []uuid.UUID) []eventstore.Event {
	t.Helper()
	visible := readAll(t, g.ctx, g.s.store, g.s.base, 1000)
	shown := map[uuid.UUID]bool{}
	for _, e := range visible {
		shown[e.ID] = true
	}
	for _, id := range before {
		if !shown[id] {
			t.Fatalf("while appenders are held, ReadAll shows %d events and not %s, committed before they began", len(visible), id)
		}
	}
	g.s.waitFor(t, "the reader to catch up while appenders are held", func() bool { return sub.last() >= visible[len(visible)-1].Position })
	return visible
}

// checkHeldOrder waits for every appended event to be visible and asserts
// that nothing shown during the hold comes after a held event; it returns
// the whole log.
func (g *gapRun) checkHeldOrder(t *testing.T, visible []eventstore.Event) []eventstore.Event {
	t.Helper()
	var all []eventstore.Event
	g.s.waitFor(t, fmt.Sprintf("all %d appended events to become visible", len(g.appended)), func() bool {
		all = readAll(t, g.ctx, g.s.store, g.s.base, 1000)
		return len(all) >= len(g.appended)
	})
	if len(visible) > 0 {
		lastShown := visible[len(visible)-1].Position
		for _, e := range all {
			if g.heldIDs[e.ID] && e.Position <= lastShown {
				t.Fatalf("held event at position %d is ordered before position %d, shown while it was held: a reader that took that one skipped it", e.Position, lastShown)
			}
		}
	}
	return all
}

// checkDelivered asserts that the subscription delivered every appended
// event exactly once, in ReadAll's order.
func (g *gapRun) checkDelivered(t *testing.T, sub *subscription, all []eventstore.Event) {
	t.Helper()
	got, problems := sub.snapshot()
	if len(problems) > 0 {
		t.Fatalf("subscription: %v", problems)
	}
	delivered := map[uuid.UUID]int{}
	for _, e := range got {
		delivered[e.ID]++
	}
	missing := 0
	for id := range g.appended {
		if delivered[id] != 1 {
			missing++
		}
	}
	if missing > 0 || len(got) != len(g.appended) {
		t.Fatalf("reader got %d events for %d appended; %d appended events not delivered exactly once", len(got), len(g.appended), missing)
	}
	if paged := readAll(t, g.ctx, g.s.store, g.s.base, 7); !reflect.DeepEqual(ids(paged), ids(got)) || !reflect.DeepEqual(ids(all), ids(got)) {
		t.Fatalf("the subscription's order differs from ReadAll's")
	}
}

func testReadAllPaging(t *testing.T, s *suite) {
	ctx := s.ctx(t)
	var appended []uuid.UUID
	var last eventstore.AppendResult
	for i := range 12 {
		evs := newEvents("SubtaskAdded", 1+i%4)
		last = mustAppend(t, ctx, s.store, streamName("lecture"), eventstore.NoStream, evs...)
		appended = append(appended, dataIDs(evs)...)
	}
	s.awaitVisible(t, ctx, last.Position)
	whole := readAll(t, ctx, s.store, s.base, 1000)
	if !reflect.DeepEqual(ids(whole), appended) {
		t.Fatalf("ReadAll of sequential appends = %v, want them in append order %v", ids(whole), appended)
	}
	for _, limit := range []int{1, 3, 7} {
		if paged := readAll(t, ctx, s.store, s.base, limit); !reflect.DeepEqual(paged, whole) {
			t.Fatalf("paging by %d yields a different sequence", limit)
		}
	}
	mid := whole[len(whole)/2].Position
	if rest := readAll(t, ctx, s.store, mid, 5); !reflect.DeepEqual(rest, whole[len(whole)/2+1:]) {
		t.Fatalf("ReadAll after position %d is not the rest of the log", mid)
	}
	if evs, err := s.store.ReadAll(ctx, whole[len(whole)-1].Position, 10); err != nil || len(evs) != 0 {
		t.Fatalf("ReadAll after the head = %d events, %v; want none", len(evs), err)
	}
	if head, err := s.store.HeadPosition(ctx); err != nil || head != last.Position || head != whole[len(whole)-1].Position {
		t.Fatalf("HeadPosition = %d, %v; want %d", head, err, last.Position)
	}
}

func testIdempotentAppend(t *testing.T, s *suite) {
	ctx := s.ctx(t)
	stream := streamName("help")
	evs := newEvents("HelpRequested", 2)
	first := mustAppend(t, ctx, s.store, stream, eventstore.NoStream, evs...)
	third := mustAppend(t, ctx, s.store, stream, eventstore.Exactly(2), newEvent("HelpAnalyzed", 0))
	s.awaitVisible(t, ctx, third.Position)
	head := third.Position

	for _, exp := range []eventstore.ExpectedVersion{eventstore.NoStream, eventstore.Any, eventstore.Exactly(3)} {
		again, err := s.store.Append(ctx, stream, exp, evs...)
		if err != nil || again != first {
			t.Errorf("retried append (expected %d) = %+v, %v; want the first result %+v", exp, again, err, first)
		}
	}
	refused := []struct {
		name   string
		stream string
		events []eventstore.EventData
	}{
		{"stored_id_with_a_new_one", stream, []eventstore.EventData{evs[0], newEvent("HelpRequested", 9)}},
		{"stored_id_in_another_stream", streamName("help"), []eventstore.EventData{evs[0]}},
	}
	for _, c := range refused {
		if c.stream != stream && s.IDsCheckedPerStreamOnly {
			continue
		}
		if _, err := s.store.Append(ctx, c.stream, eventstore.Any, c.events...); !errors.Is(err, eventstore.ErrConcurrency) {
			t.Errorf("%s: err = %v, want ErrConcurrency", c.name, err)
		}
	}
	if got := readStream(t, ctx, s.store, stream); len(got) != 3 {
		t.Fatalf("stream has %d events after retries, want 3", len(got))
	}
	if all := readAll(t, ctx, s.store, s.base, 100); len(all) != 3 || all[len(all)-1].Position != head {
		t.Fatalf("the log changed: %d events, want 3 ending at %d", len(all), head)
	}
}

func testRestart(t *testing.T, s *suite) {
	if s.Reopen == nil {
		t.Skip("harness cannot reopen its store")
	}
	ctx := s.ctx(t)
	var last eventstore.AppendResult
	for i := range 5 {
		last = mustAppend(t, ctx, s.store, streamName("progress"), eventstore.NoStream, newEvents("SubtaskCompleted", 1+i%2)...)
	}
	s.awaitVisible(t, ctx, last.Position)
	before := readAll(t, ctx, s.store, s.base, 100)
	saved := before[3].Position

	s.store.Close()
	if _, err := s.store.Append(ctx, streamName("closed"), eventstore.Any, newEvent("X", 0)); !errors.Is(err, eventstore.ErrClosed) {
		t.Errorf("append to a closed store: %v, want ErrClosed", err)
	}
	s.store = s.Reopen(t)
	var later []eventstore.EventData
	for range 3 {
		evs := newEvents("SubtaskStarted", 2)
		mustAppend(t, ctx, s.store, streamName("progress"), eventstore.NoStream, evs...)
		later = append(later, evs...)
	}
	want := append(ids(before[4:]), dataIDs(later)...)
	sub := s.subscribe(t, s.store, saved)
	s.waitFor(t, "the resumed subscription to deliver the rest", func() bool { return sub.count() >= len(want) })
	sub.cancel()
	if err := s.result(t, sub); !errors.Is(err, context.Canceled) {
		t.Errorf("subscription ended with %v, want context.Canceled", err)
	}
	got, problems := sub.snapshot()
	if len(problems) > 0 {
		t.Fatalf("subscription: %v", problems)
	}
	if !reflect.DeepEqual(ids(got), want) {
		t.Fatalf("resumed from position %d: got %d events %v, want exactly the %d after it %v", saved, len(got), ids(got), len(want), want)
	}
}

func testSubscribeCatchUpThenLive(t *testing.T, s *suite) {
	ctx := s.ctx(t)
	stream := streamName("session")
	stored := newEvents("StepChanged", 5)
	mustAppend(t, ctx, s.store, stream, eventstore.NoStream, stored[:2]...)
	mustAppend(t, ctx, s.store, stream, eventstore.Exactly(2), stored[2:]...)

	sub := s.subscribe(t, s.store, s.base)
	s.waitFor(t, "the stored events", func() bool { return sub.count() >= len(stored) })
	live := newEvents("SessionPaused", 3)
	for i, e := range live {
		mustAppend(t, ctx, s.store, stream, eventstore.Exactly(int64(len(stored)+i)), e)
	}
	s.waitFor(t, "the live events", func() bool { return sub.count() >= len(stored)+len(live) })
	got, problems := sub.snapshot()
	if len(problems) > 0 {
		t.Fatalf("subscription: %v", problems)
	}
	if want := append(dataIDs(stored), dataIDs(live)...); !reflect.DeepEqual(ids(got), want) {
		t.Fatalf("subscription delivered %v, want %v", ids(got), want)
	}
	for i, e := range got {
		if e.Stream != stream || e.Version != int64(i+1) {
			t.Fatalf("delivered event %d: %s v%d, want %s v%d", i, e.Stream, e.Version, stream, i+1)
		}
	}
	select {
	case <-sub.done:
		t.Fatalf("subscription ended on its own: %v", sub.err)
	default:
	}
}

func testSubscribeStops(t *testing.T, s *suite) {
	ctx := s.ctx(t)
	mustAppend(t, ctx, s.store, streamName("help"), eventstore.NoStream, newEvents("HelpRequested", 3)...)

	// Cancel while waiting for live events.
	sub := s.subscribe(t, s.store, s.base)
	s.waitFor(t, "the stored events", func() bool { return sub.count() >= 3 })
	sub.cancel()
	if err := s.result(t, sub); !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled subscription returned %v, want context.Canceled", err)
	}

	// A failing handler stops the subscription with its error.
	boom := errors.New("projector broke")
	calls := 0
	err := s.store.Subscribe(ctx, s.base, func(context.Context, []eventstore.Event) error {
		calls++
		return boom
	})
	if !errors.Is(err, boom) || calls != 1 {
		t.Errorf("subscription with a failing handler returned %v after %d calls, want %v after 1", err, calls, boom)
	}
}

// testTwoInFlight holds two appends open after they took their place in the
// order (in PostgreSQL: their transaction ids, the newer one at or above the
// snapshot's xmax, which is the latest completed id + 1) and checks that
// readers asked meanwhile still get every event committed before them: not
// an empty log, not a head of 0. Three rounds, each on top of the last.
func testTwoInFlight(t *testing.T, s *suite) {
	if s.Commits == nil {
		t.Skip("harness cannot hold appends open")
	}
	ctx := s.ctx(t)
	var committed []uuid.UUID
	var last eventstore.AppendResult
	for i := range 3 {
		evs := newEvents("StepChanged", 1+i)
		last = mustAppend(t, ctx, s.store, streamName("free"), eventstore.NoStream, evs...)
		committed = append(committed, dataIDs(evs)...)
	}
	s.awaitVisible(t, ctx, last.Position)
	// Let the store's background work settle: PostgreSQL's sends its
	// notifications in transactions of their own, which would move the
	// snapshot's xmax past the held appends' ids.
	time.Sleep(100 * time.Millisecond)

	arrived := make(chan struct{}, 2)
	release := make(chan struct{})
	defer holdCommits(s, arrived, release)()

	for round := range 3 {
		var wg sync.WaitGroup
		var mu sync.Mutex
		var heldIDs []uuid.UUID
		var errs []error
		var results []eventstore.AppendResult
		// One after the other, so that the second takes its place after the first.
		for i := range 2 {
			evs := newEvents("ParticipantJoined", 1+i)
			wg.Go(func() {
				res, err := s.store.Append(ctx, streamName("held"), eventstore.NoStream, evs...)
				mu.Lock()
				defer mu.Unlock()
				if err != nil {
					errs = append(errs, err)
					return
				}
				heldIDs = append(heldIDs, dataIDs(evs)...)
				results = append(results, res)
			})
			select {
			case <-arrived:
			case <-ctx.Done():
				t.Fatalf("round %d: held append %d never reached its commit", round, i)
			}
		}

		got, err := s.store.ReadAll(ctx, s.base, 1000)
		if err != nil {
			t.Fatalf("round %d: ReadAll with two appends in flight: %v", round, err)
		}
		if !reflect.DeepEqual(ids(got), committed) {
			t.Fatalf("round %d: ReadAll with two appends in flight returned %d events, want the %d committed before them", round, len(got), len(committed))
		}
		head, err := s.store.HeadPosition(ctx)
		if err != nil || head != last.Position {
			t.Fatalf("round %d: HeadPosition with two appends in flight = %d, %v; want %d, the last committed event", round, head, err, last.Position)
		}
		sub := s.subscribe(t, s.store, s.base)
		s.waitFor(t, "a new subscription to deliver the committed events", func() bool { return sub.count() >= len(committed) })
		if evs, problems := sub.snapshot(); len(problems) > 0 || !reflect.DeepEqual(ids(evs), committed) {
			t.Fatalf("round %d: a subscription with two appends in flight delivered %d events (%v), want the %d committed", round, len(evs), problems, len(committed))
		}

		release <- struct{}{}
		release <- struct{}{}
		wg.Wait()
		sub.cancel()
		if len(errs) > 0 {
			t.Fatalf("round %d: held appends failed: %v", round, errs)
		}
		for _, r := range results {
			if r.Position > last.Position {
				last = r
			}
		}
		s.awaitVisible(t, ctx, last.Position)
		time.Sleep(100 * time.Millisecond)
		all := readAll(t, ctx, s.store, s.base, 1000)
		if len(all) != len(committed)+len(heldIDs) || !reflect.DeepEqual(ids(all[:len(committed)]), committed) {
			t.Fatalf("round %d: after the held appends committed the log has %d events, want the %d before them followed by their %d", round, len(all), len(committed), len(heldIDs))
		}
		committed = ids(all)
	}
}

// StressAppenders is how many appenders the stress test runs at once.
const StressAppenders = 32

// DefaultStressEvents is the stress test's size when LOCKSTEP_STRESS_EVENTS
// is not set.
const DefaultStressEvents = 1500

func stressEvents(t *testing.T) int {
	v := os.Getenv("LOCKSTEP_STRESS_EVENTS")
	if v == "" {
		return DefaultStressEvents
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 1 {
		t.Fatalf("LOCKSTEP_STRESS_EVENTS=%q: want a positive number", v)
	}
	return n
}

// stressReader pages ReadAll by the last position it got. For each event it
// records when the last read before the one that returned it started, if that
// read came back short (the reader was at the end of what it was shown): an
// event that had committed by then was hidden from it.
type stressReader struct {
	events    []eventstore.Event
	shortRead []time.Time
	errs      []string
}

// testStress: StressAppenders appenders pause at random between taking their
// place, inserting and committing; 4 readers page ReadAll by the last position
// they got and 2 subscriptions follow the log. Every reader must see every
// event exactly once, in strictly increasing order; HeadPosition never goes
// below a position a reader already got; and no event stays hidden from a
// reader for long after it committed.
func testStress(t *testing.T, s *suite) {
	total := stressEvents(t)
	// The harness timeout, and 10ms more per event for a large run.
	ctx, cancel := context.WithTimeout(context.Background(), s.Timeout+time.Duration(total)*10*time.Millisecond)
	defer cancel()
	const readers, subscriptions, maxPause = 4, 2, 3 * time.Millisecond
	// Generous: a committed event may wait for older appends to commit (each
	// pausing at most 2*maxPause) and for a reader's turn on a busy machine.
	maxLag := 2 * time.Second
	defer pauseHeldAppends(s, maxPause)()

	run := &stressRun{s: s, ctx: ctx, total: total, committed: map[uuid.UUID]time.Time{}, done: make(chan struct{})}
	run.startAppenders()
	var subs []*subscription
	for range subscriptions {
		subs = append(subs, s.subscribe(t, s.store, s.base))
	}
	rs := run.read(readers)
	<-run.done
	if len(run.errs) > 0 {
		t.Fatalf("appends failed: %v", run.errs)
	}
	if len(run.committed) != total {
		t.Fatalf("appended %d events, want %d", len(run.committed), total)
	}
	for i, r := range rs {
		run.check(t, fmt.Sprintf("reader %d", i), r.events, r.shortRead, r.errs)
	}
	for i, sub := range subs {
		s.waitFor(t, fmt.Sprintf("subscription %d to deliver all %d events", i, total), func() bool { return sub.count() >= total })
		got, problems := sub.snapshot()
		run.check(t, fmt.Sprintf("subscription %d", i), got, nil, problems)
	}
	if !reflect.DeepEqual(ids(rs[0].events), ids(readAll(t, ctx, s.store, s.base, 1000))) {
		t.Fatalf("the readers' order differs from a fresh ReadAll's")
	}
	t.Logf("%d events, %d appenders: the longest a reader at the end of the log was not shown an event whose append had returned: %s", total, StressAppenders, run.worst)
	if run.worst > maxLag {
		t.Fatalf("an event stayed hidden from a reader for %s after it committed (at most %s allowed)", run.worst, maxLag)
	}
}

// pauseHeldAppends makes the harness's held appends pause at random (up to
// maxPause) after taking their place and before committing; the returned
// function stops it.
func pauseHeldAppends(s *suite, maxPause time.Duration) (stop func()) {
	if s.Commits == nil {
		return func() {}
	}
	pause := func(ctx context.Context, stream string) {
		if strings.HasPrefix(stream, HeldStreamPrefix) {
			time.Sleep(rand.N(maxPause))
		}
	}
	s.Commits.setLock(pause)
	s.Commits.set(pause)
	return func() {
		s.Commits.setLock(nil)
		s.Commits.set(nil)
	}
}

// stressRun is one stress test's appenders and what they committed.
type stressRun struct {
	s     *suite
	ctx   context.Context
	total int

	mu        sync.Mutex
	committed map[uuid.UUID]time.Time // when Append returned
	errs      []error
	next      int
	done      chan struct{} // closed when every appender returned

	worst time.Duration // the longest an appended event stayed hidden from a reader at the end of the log
}

// startAppenders starts StressAppenders appenders that append the run's
// events, a few at a time, to streams of three kinds.
func (run *stressRun) startAppenders() {
	var appending sync.WaitGroup
	shared := []string{streamName("held-shared"), streamName("held-shared"), streamName("free-shared")}
	for range StressAppenders {
		appending.Go(func() {
			for run.appendSome(shared) {
			}
		})
	}
	go func() {
		appending.Wait()
		close(run.done)
	}()
}

// appendSome appends the next 1–3 events; false when there are none left or
// the append failed.
func (run *stressRun) appendSome(shared []string) bool {
	run.mu.Lock()
	n := min(1+rand.N(3), run.total-run.next)
	run.next += n
	run.mu.Unlock()
	if n <= 0 || run.ctx.Err() != nil {
		return false
	}
	evs := newEvents("SubtaskCompleted", n)
	stream, exp := streamName(HeldStreamPrefix[:len(HeldStreamPrefix)-1]), eventstore.NoStream
	switch r := rand.N(8); {
	case r < 2: // the one-statement path, no pauses
		stream = streamName("free")
	case r < 4: // Any appends to a few busy streams take turns
		stream, exp = shared[r%len(shared)], eventstore.Any
	}
	_, err := run.s.store.Append(run.ctx, stream, exp, evs...)
	now := time.Now()
	run.mu.Lock()
	defer run.mu.Unlock()
	if err != nil {
		run.errs = append(run.errs, err)
	}
	for _, e := range evs {
		run.committed[e.ID] = now
	}
	return err == nil
}

// read runs n readers that page ReadAll by the last position they got
// until they have every event, and returns them once all are done.
func (run *stressRun) read(n int) []*stressReader {
	rs := make([]*stressReader, n)
	var reading sync.WaitGroup
	for i := range rs {
		r := &stressReader{}
		rs[i] = r
		reading.Go(func() { run.page(r) })
	}
	reading.Wait()
	return rs
}

// page is one reader: every page must follow the last, HeadPosition must
// never go back nor promise what ReadAll does not return, and each event
// notes when the reader last saw the end of the log before it.
func (run *stressRun) page(r *stressReader) {
	ctx, store := run.ctx, run.s.store
	after, head := run.s.base, uint64(0)
	finished := false
	var lastShort time.Time
	for len(r.events) < run.total && len(r.errs) == 0 {
		h, err := store.HeadPosition(ctx)
		switch {
		case err != nil:
			r.errs = append(r.errs, fmt.Sprintf("head position: %v", err))
		case h < head || h < after:
			r.errs = append(r.errs, fmt.Sprintf("HeadPosition %d after the head was %d and the reader got up to %d", h, head, after))
		}
		head = max(head, h)
		start, limit := time.Now(), 1+rand.N(200)
		page, err := store.ReadAll(ctx, after, limit)
		if err != nil {
			r.errs = append(r.errs, fmt.Sprintf("read all after %d: %v", after, err))
			return
		}
		if len(page) == 0 && h > after {
			r.errs = append(r.errs, fmt.Sprintf("ReadAll after %d returned nothing though HeadPosition was %d just before", after, h))
		}
		for _, e := range page {
			if e.Position <= after {
				r.errs = append(r.errs, fmt.Sprintf("position %d after %d", e.Position, after))
			}
			after = e.Position
			r.events = append(r.events, e)
			r.shortRead = append(r.shortRead, lastShort)
		}
		if len(page) < limit {
			lastShort = start
		}
		if len(page) == 0 {
			if finished {
				return // everything is committed and visible to a fresh read
			}
			select {
			case <-run.done:
				finished = true // one more read after the last commit
			case <-time.After(time.Millisecond):
			}
		}
	}
}

// check asserts that a reader got every committed event once, in position
// order, and notes how long an event stayed hidden from it.
func (run *stressRun) check(t *testing.T, who string, got []eventstore.Event, shortRead []time.Time, problems []string) {
	t.Helper()
	if len(problems) > 0 {
		t.Fatalf("%s: %v", who, problems[:min(len(problems), 5)])
	}
	seen := map[uuid.UUID]bool{}
	for i, e := range got {
		c, ok := run.committed[e.ID]
		switch {
		case !ok:
			t.Fatalf("%s got event %s nobody appended", who, e.ID)
		case seen[e.ID]:
			t.Fatalf("%s got event %s twice", who, e.ID)
		case i > 0 && e.Position <= got[i-1].Position:
			t.Fatalf("%s got position %d after %d", who, e.Position, got[i-1].Position)
		}
		seen[e.ID] = true
		if shortRead != nil {
			run.worst = max(run.worst, shortRead[i].Sub(c))
		}
	}
	if len(seen) != run.total {
		t.Fatalf("%s got %d of the %d events", who, len(seen), run.total)
	}
}
