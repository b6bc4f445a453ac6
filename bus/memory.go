package bus

import (
	"context"
	"errors"
	"sync"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/ThreeDotsLabs/watermill/pubsub/gochannel"
)

// memoryBackend is watermill's GoChannel (which only fans out: every
// subscription gets every message) plus consumer groups: the first
// subscription of a (topic, group) opens one GoChannel subscription for the
// group that appends to the group's in-memory queue, and the group's
// subscribers compete for that queue. The queue outlives its subscribers (until
// the Bus closes), so a restarted subscriber resumes where the group stopped.
type memoryBackend struct {
	ctx    context.Context // the Bus's lifetime
	cfg    Config
	gc     *gochannel.GoChannel
	mu     sync.Mutex
	groups map[memGroupKey]*memGroup
	wg     sync.WaitGroup
}

type memGroupKey struct{ topic, group string }

func newMemory(ctx context.Context, cfg Config, wlog watermill.LoggerAdapter) *memoryBackend {
	return &memoryBackend{
		ctx: ctx,
		cfg: cfg,
		// Blocking publish keeps a call's messages in order; the group pumps
		// ack as soon as a message is queued, so it never waits for handlers.
		gc:     gochannel.NewGoChannel(gochannel.Config{BlockPublishUntilSubscriberAck: true}, wlog),
		groups: map[memGroupKey]*memGroup{},
	}
}

func (m *memoryBackend) publish(ctx context.Context, topic string, msgs []*message.Message) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	return m.gc.Publish(topic, msgs...)
}

// group returns the queue of (topic, group), opening it on first use.
func (m *memoryBackend) group(topic, group string) (*memGroup, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	key := memGroupKey{topic, group}
	if g, ok := m.groups[key]; ok {
		return g, nil
	}
	in, err := m.gc.Subscribe(m.ctx, topic)
	if err != nil {
		return nil, err
	}
	g := &memGroup{wake: make(chan struct{})}
	m.groups[key] = g
	m.wg.Go(func() {
		for msg := range in {
			g.push(msg.Copy())
			msg.Ack()
		}
	})
	return g, nil
}

func (m *memoryBackend) subscriber(group string, _ bool) (message.Subscriber, error) {
	// fromEnd is the memory backend's only behaviour: a group sees what is
	// published after its first subscription.
	return &memSubscriber{m: m, group: group, closing: make(chan struct{})}, nil
}

func (m *memoryBackend) ping(context.Context) error { return nil }

func (m *memoryBackend) close() error {
	err := m.gc.Close() // the Bus's ctx is already cancelled
	m.wg.Wait()
	return err
}

// memGroup is a consumer group's queue of messages not yet acked.
type memGroup struct {
	mu       sync.Mutex
	queue    []*message.Message
	inFlight int64         // popped, not yet acked (for Lag)
	wake     chan struct{} // closed and replaced whenever the queue grows
}

func (g *memGroup) push(msg *message.Message) {
	g.mu.Lock()
	g.queue = append(g.queue, msg)
	close(g.wake)
	g.wake = make(chan struct{})
	g.mu.Unlock()
}

// pushFront returns an undelivered or unacked message to the head of the queue.
func (g *memGroup) pushFront(msg *message.Message) {
	g.mu.Lock()
	g.inFlight--
	g.queue = append([]*message.Message{msg}, g.queue...)
	close(g.wake)
	g.wake = make(chan struct{})
	g.mu.Unlock()
}

// acked forgets a message delivered and acked.
func (g *memGroup) acked() {
	g.mu.Lock()
	g.inFlight--
	g.mu.Unlock()
}

// pop takes the head of the queue, waiting for one until done is closed.
func (g *memGroup) pop(done <-chan struct{}) (*message.Message, bool) {
	for {
		g.mu.Lock()
		if len(g.queue) > 0 {
			msg := g.queue[0]
			g.queue[0] = nil
			g.queue = g.queue[1:]
			g.inFlight++
			g.mu.Unlock()
			return msg, true
		}
		wake := g.wake
		g.mu.Unlock()
		select {
		case <-wake:
		case <-done:
			return nil, false
		}
	}
}

type memSubscriber struct {
	m         *memoryBackend
	group     string
	closing   chan struct{}
	closeOnce sync.Once
	wg        sync.WaitGroup
}

var errMemSubscriberClosed = errors.New("memory subscriber closed")

func (s *memSubscriber) Subscribe(ctx context.Context, topic string) (<-chan *message.Message, error) {
	select {
	case <-s.closing:
		return nil, errMemSubscriberClosed
	default:
	}
	g, err := s.m.group(topic, s.group)
	if err != nil {
		return nil, err
	}
	// sctx ends when the subscriber, the caller's ctx or the Bus ends.
	sctx, cancel := context.WithCancel(ctx)
	out := make(chan *message.Message)
	s.wg.Go(func() {
		defer close(out)
		defer cancel()
		go func() {
			select {
			case <-s.closing:
			case <-s.m.ctx.Done():
			case <-sctx.Done():
			}
			cancel()
		}()
		for {
			msg, ok := g.pop(sctx.Done())
			if !ok {
				return
			}
			if !s.deliver(sctx, msg, out) {
				g.pushFront(msg)
				return
			}
			g.acked()
		}
	})
	return out, nil
}

// deliver hands msg to the consumer until it is acked (true), redelivering
// after a nack; false when stopped first.
func (s *memSubscriber) deliver(ctx context.Context, msg *message.Message, out chan<- *message.Message) bool {
	done := ctx.Done()
	for {
		c := msg.Copy()
		mctx, cancel := context.WithCancel(ctx)
		c.SetContext(mctx)
		select {
		case out <- c:
		case <-done:
			cancel()
			return false
		}
		select {
		case <-c.Acked():
			cancel()
			return true
		case <-c.Nacked():
			cancel()
			select {
			case <-time.After(s.m.cfg.ResendInterval):
			case <-done:
				return false
			}
		case <-done:
			cancel()
			return false
		}
	}
}

func (s *memSubscriber) Close() error {
	s.closeOnce.Do(func() { close(s.closing) })
	s.wg.Wait()
	return nil
}
