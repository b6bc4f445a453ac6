package activitylog

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/lockstep/lockstep/bus"
)

// WriterGroup is the log writer's consumer group (renaming it makes a new
// group that rereads the topic's whole history; storage is idempotent, so
// that only costs time).
const WriterGroup = "log-writer"

// WriterConfig configures a Writer.
type WriterConfig struct {
	// Subscriber is a subscriber of WriterGroup (bus.Subscriber(WriterGroup)).
	Subscriber message.Subscriber
	Store      Store
	Logger     *slog.Logger // default slog.Default()
	// MaxLogs caps the logs written in one transaction when several
	// messages are ready at once (default 10000).
	MaxLogs int
	// Concurrency is how many transactions may write at once (default 4).
	// Only backends that deliver several messages of a group at once use it
	// (Kafka: one in flight per partition); the postgres bus delivers one
	// message at a time.
	Concurrency int
	// MinBackoff and MaxBackoff bound the pause before a failed write is
	// retried (defaults 100ms and 5s, doubling per consecutive failure).
	MinBackoff, MaxBackoff time.Duration
}

// Writer stores what the bus delivers on TopicActivityLogs.
type Writer struct {
	cfg WriterConfig
	ch  <-chan *message.Message // set by Subscribe
}

// NewWriter returns a log writer. It panics on a missing dependency.
func NewWriter(cfg WriterConfig) *Writer {
	if cfg.Subscriber == nil || cfg.Store == nil {
		panic("activitylog: NewWriter needs Subscriber and Store")
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.MaxLogs <= 0 {
		cfg.MaxLogs = 10000
	}
	if cfg.Concurrency <= 0 {
		cfg.Concurrency = 4
	}
	if cfg.MinBackoff <= 0 {
		cfg.MinBackoff = 100 * time.Millisecond
	}
	if cfg.MaxBackoff < cfg.MinBackoff {
		cfg.MaxBackoff = max(5*time.Second, cfg.MinBackoff)
	}
	return &Writer{cfg: cfg}
}

// Subscribe subscribes now instead of when Run starts, so that on the
// memory bus (whose groups see only what is published after their first
// subscription) logs accepted before Run starts are not missed. The
// subscription lasts until ctx ends or the subscriber is closed; Run
// consumes it. Optional on the durable backends.
func (w *Writer) Subscribe(ctx context.Context) error {
	ch, err := w.cfg.Subscriber.Subscribe(ctx, bus.TopicActivityLogs)
	if err != nil {
		return fmt.Errorf("log writer: subscribe: %w", err)
	}
	w.ch = ch
	return nil
}

// Run consumes until ctx ends (then returns ctx's error). Each round takes
// the messages that are ready (at least one), writes their logs in one
// transaction (up to Concurrency rounds at once) and acks them after the
// commit. A failed write is retried
// with backoff, the messages still in hand, until it succeeds or ctx ends
// (then they are nacked and the bus redelivers them to the next writer). A
// message that cannot be decoded is logged and acked: it would fail forever.
func (w *Writer) Run(ctx context.Context) error {
	if w.ch == nil {
		if err := w.Subscribe(ctx); err != nil {
			return err
		}
	}
	ch := w.ch
	log := w.cfg.Logger.With("consumer_group", WriterGroup)
	slots := make(chan struct{}, w.cfg.Concurrency)
	var wg sync.WaitGroup
	defer wg.Wait()
	for {
		var msgs []*message.Message
		var logs []Log
		add := func(m *message.Message) {
			l, err := DecodeMessage(m)
			if err != nil {
				log.Error("dropping undecodable activity-log message", "message_id", m.UUID, "error", err)
				m.Ack()
				return
			}
			msgs = append(msgs, m)
			logs = append(logs, l...)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case m, ok := <-ch:
			if !ok {
				// The subscription ended (the subscriber closed or the bus
				// failed): the next Run subscribes again.
				w.ch = nil
				if ctx.Err() != nil {
					return ctx.Err()
				}
				return errors.New("log writer: subscription closed")
			}
			add(m)
		}
	drain:
		for len(logs) < w.cfg.MaxLogs {
			select {
			case m, ok := <-ch:
				if !ok {
					break drain
				}
				add(m)
			default:
				break drain
			}
		}
		if len(msgs) == 0 {
			continue
		}
		select {
		case slots <- struct{}{}:
		case <-ctx.Done():
			for _, m := range msgs {
				m.Nack()
			}
			return ctx.Err()
		}
		wg.Go(func() {
			defer func() { <-slots }()
			if err := w.write(ctx, log, logs); err != nil {
				for _, m := range msgs {
					m.Nack()
				}
				return
			}
			for _, m := range msgs {
				m.Ack()
			}
		})
	}
}

// minChunk is the fewest logs worth a transaction of their own.
const minChunk = 250

// write stores logs, split into up to Concurrency transactions that run at
// once (a single delivered message still gets PostgreSQL's parallelism), each
// retried with backoff until it succeeds or ctx ends. Acking only after every
// part committed keeps "ack after commit"; a redelivery after a partial
// failure is harmless because storage is idempotent by log id.
func (w *Writer) write(ctx context.Context, log *slog.Logger, logs []Log) error {
	parts := min(w.cfg.Concurrency, max(1, len(logs)/minChunk))
	if parts == 1 {
		return w.writePart(ctx, log, logs)
	}
	size := (len(logs) + parts - 1) / parts
	errs := make([]error, parts)
	var wg sync.WaitGroup
	for i := range parts {
		part := logs[min(i*size, len(logs)):min((i+1)*size, len(logs))]
		wg.Go(func() { errs[i] = w.writePart(ctx, log, part) })
	}
	wg.Wait()
	return errors.Join(errs...)
}

func (w *Writer) writePart(ctx context.Context, log *slog.Logger, logs []Log) error {
	if len(logs) == 0 {
		return nil
	}
	backoff := w.cfg.MinBackoff
	for attempt := 1; ; attempt++ {
		start := time.Now()
		err := w.cfg.Store.Write(ctx, logs)
		if err == nil {
			log.Debug("activity logs stored", "logs", len(logs), "attempt", attempt,
				"duration_ms", float64(time.Since(start).Microseconds())/1000)
			return nil
		}
		if ctx.Err() != nil {
			return errors.Join(ctx.Err(), err)
		}
		log.Error("storing activity logs failed; retrying", "logs", len(logs), "attempt", attempt,
			"retry_in", backoff.String(), "error", err)
		select {
		case <-ctx.Done():
			return errors.Join(ctx.Err(), err)
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, w.cfg.MaxBackoff)
	}
}
