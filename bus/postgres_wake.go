package bus

import (
	"context"
	"maps"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/jackc/pgx/v5"
)

// postgresChannel is the LISTEN/NOTIFY channel every postgres publish
// notifies, so that idle subscribers — of this process or any other on the
// database — query at once instead of at their next poll.
const postgresChannel = "lockstep_bus"

// broadcast wakes every waiter: wait returns a channel closed by the next
// fire.
type broadcast struct {
	mu sync.Mutex
	ch chan struct{}
}

func newBroadcast() *broadcast { return &broadcast{ch: make(chan struct{})} }

func (b *broadcast) wait() <-chan struct{} {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.ch
}

func (b *broadcast) fire() {
	b.mu.Lock()
	defer b.mu.Unlock()
	close(b.ch)
	b.ch = make(chan struct{})
}

// waker tells a topic's idle subscribers that messages were published on
// it: at once in this process, and through one NOTIFY per topic per burst
// of publishes (sent after they committed, outside their transactions) to
// the others, which LISTEN on one connection each.
type waker struct {
	p       *postgresBackend
	notify  chan struct{}
	done    chan struct{}
	start   sync.Once
	stopped sync.WaitGroup

	mu      sync.Mutex
	topics  map[string]*broadcast
	pending map[string]struct{} // topics to notify
}

func newWaker(p *postgresBackend) *waker {
	return &waker{p: p, notify: make(chan struct{}, 1), done: make(chan struct{}),
		topics: map[string]*broadcast{}, pending: map[string]struct{}{}}
}

// topic is the broadcast of topic's subscribers.
func (w *waker) topic(topic string) *broadcast {
	w.mu.Lock()
	defer w.mu.Unlock()
	b, ok := w.topics[topic]
	if !ok {
		b = newBroadcast()
		w.topics[topic] = b
	}
	return b
}

// fireAll wakes every subscriber (the listener (re)connected: anything may
// have been missed).
func (w *waker) fireAll() {
	w.mu.Lock()
	defer w.mu.Unlock()
	for _, b := range w.topics {
		b.fire()
	}
}

// run starts the notifier and the listener (once, with the first publish
// or subscriber).
func (w *waker) run() {
	w.start.Do(func() {
		w.stopped.Add(2)
		go w.notifier()
		go w.listener()
	})
}

// published wakes this process's subscribers of topic and has the notifier
// tell the others.
func (w *waker) published(topic string) {
	w.run()
	w.topic(topic).fire()
	w.mu.Lock()
	w.pending[topic] = struct{}{}
	w.mu.Unlock()
	select {
	case w.notify <- struct{}{}:
	default: // a notification is already due; it covers this publish too
	}
}

func (w *waker) notifier() {
	defer w.stopped.Done()
	for {
		select {
		case <-w.done:
			return
		case <-w.notify:
			w.mu.Lock()
			topics := slices.Collect(maps.Keys(w.pending))
			clear(w.pending)
			w.mu.Unlock()
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			if _, err := w.p.pool.Exec(ctx, `SELECT pg_notify($1, t) FROM unnest($2::text[]) AS t`, postgresChannel, topics); err != nil {
				w.p.wlog.Error("bus notify failed; other processes poll", err, nil)
			}
			cancel()
		}
	}
}

// listener holds a LISTEN connection (outside the pool) and wakes this
// process's subscribers of the topic each notification names, and all of
// them on every (re)connection: anything may have been missed meanwhile.
func (w *waker) listener() {
	defer w.stopped.Done()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() {
		<-w.done
		cancel()
	}()
	delay := 100 * time.Millisecond
	for ctx.Err() == nil {
		err := w.listen(ctx)
		if ctx.Err() != nil {
			return
		}
		w.p.wlog.Error("bus listener lost its connection; subscribers poll meanwhile", err, watermill.LogFields{"retry_in": delay.String()})
		select {
		case <-ctx.Done():
		case <-time.After(delay):
		}
		delay = min(2*delay, 5*time.Second)
	}
}

func (w *waker) listen(ctx context.Context) error {
	conn, err := pgx.ConnectConfig(ctx, w.p.pool.Config().ConnConfig.Copy())
	if err != nil {
		return err
	}
	defer conn.Close(context.WithoutCancel(ctx))
	if _, err := conn.Exec(ctx, "LISTEN "+postgresChannel); err != nil {
		return err
	}
	w.fireAll()
	for {
		n, err := conn.WaitForNotification(ctx)
		if err != nil {
			return err
		}
		w.topic(n.Payload).fire()
	}
}

func (w *waker) close() {
	select {
	case <-w.done:
	default:
		close(w.done)
	}
	w.stopped.Wait()
}

// notifiedWait is the wait of a topic's idle subscriber: it ends when the
// poll interval's backoff passed or a publish on the topic woke it,
// whichever comes first. The channel it waits on is taken before the
// subscriber's query (at the end of the previous wait), so a publish
// committed during that query ends the wait at once.
type notifiedWait struct {
	w     *waker
	b     *broadcast // the topic's
	next  atomic.Pointer[<-chan struct{}]
	woken atomic.Int64 // waits a publish ended (tests read it)
	stop  chan struct{}
	once  sync.Once
}

func newNotifiedWait(w *waker, topic string) *notifiedWait {
	return &notifiedWait{w: w, b: w.topic(topic), stop: make(chan struct{})}
}

// close ends the wait in progress and every later one (the subscriber
// closes).
func (n *notifiedWait) close() { n.once.Do(func() { close(n.stop) }) }

// wait waits d at most, and reports whether a publish ended the wait.
func (n *notifiedWait) wait(d time.Duration) (woken bool) {
	ch := n.next.Load()
	if ch == nil {
		c := n.b.wait()
		ch = &c
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-*ch:
		n.woken.Add(1)
		woken = true
	case <-t.C:
	case <-n.w.done:
	case <-n.stop:
	}
	c := n.b.wait()
	n.next.Store(&c)
	return woken
}
