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
	// DeadLetters keeps what cannot be stored (default: Store, when it is a
	// DeadLetterStore too). Without one, a log PostgreSQL refuses is retried
	// forever and an undecodable message is only logged and acked.
	DeadLetters DeadLetterStore
	Logger      *slog.Logger // default slog.Default()
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
	if cfg.DeadLetters == nil {
		cfg.DeadLetters, _ = cfg.Store.(DeadLetterStore)
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
// commit.
//
// Nothing one message carries can stop the logs after it. A write that
// fails transiently (connection lost, database down: anything but
// Permanent) is retried with backoff, the messages still in hand, until it
// succeeds or ctx ends (then they are nacked and the bus redelivers them to
// the next writer). A write PostgreSQL refuses for its data (Permanent) is
// split in halves until the logs it cannot store are found; those are set
// aside in the dead-letter store and the rest is stored. A message that
// cannot be decoded is set aside whole. Either way its messages are then
// acked. Messages stored on the bus before this existed take the same path.
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
		r := &round{}
		add := func(m *message.Message) {
			l, err := DecodeMessage(m)
			if err != nil {
				if w.cfg.DeadLetters == nil {
					log.Error("dropping undecodable activity-log message", "message_id", m.UUID, "error", err)
					m.Ack()
					return
				}
				r.undecodable = append(r.undecodable, letterForMessage(m, err, time.Now()))
			} else {
				r.logs = append(r.logs, l...)
			}
			r.msgs = append(r.msgs, m)
			r.ends = append(r.ends, len(r.logs))
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
		for len(r.logs) < w.cfg.MaxLogs {
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
		if len(r.msgs) == 0 {
			continue
		}
		select {
		case slots <- struct{}{}:
		case <-ctx.Done():
			for _, m := range r.msgs {
				m.Nack()
			}
			return ctx.Err()
		}
		wg.Go(func() {
			defer func() { <-slots }()
			err := w.write(ctx, log, r)
			if err == nil && len(r.undecodable) > 0 {
				err = w.setAside(ctx, log, r.undecodable)
			}
			if err != nil {
				for _, m := range r.msgs {
					m.Nack()
				}
				return
			}
			for _, m := range r.msgs {
				m.Ack()
			}
		})
	}
}

// round is what one write takes: messages and the logs they carry, in order.
type round struct {
	msgs        []*message.Message
	ends        []int // ends[i]: the end of msgs[i]'s logs in logs
	logs        []Log
	undecodable []DeadLetter
}

// message is the message that carried logs[i].
func (r *round) message(i int) *message.Message {
	for k, end := range r.ends {
		if i < end {
			return r.msgs[k]
		}
	}
	return r.msgs[len(r.msgs)-1]
}

// minChunk is the fewest logs worth a transaction of their own.
const minChunk = 250

// write stores a round's logs, split into up to Concurrency transactions
// that run at once (a single delivered message still gets PostgreSQL's
// parallelism), each retried with backoff until it succeeds or ctx ends.
// Acking only after every part committed keeps "ack after commit"; a
// redelivery after a partial failure is harmless because storage is
// idempotent by log id.
func (w *Writer) write(ctx context.Context, log *slog.Logger, r *round) error {
	logs := r.logs
	parts := min(w.cfg.Concurrency, max(1, len(logs)/minChunk))
	if parts == 1 {
		return w.writePart(ctx, log, r, 0, len(logs))
	}
	size := (len(logs) + parts - 1) / parts
	errs := make([]error, parts)
	var wg sync.WaitGroup
	for i := range parts {
		from, to := min(i*size, len(logs)), min((i+1)*size, len(logs))
		wg.Go(func() { errs[i] = w.writePart(ctx, log, r, from, to) })
	}
	wg.Wait()
	return errors.Join(errs...)
}

// writePart stores r.logs[from:to]. A Permanent failure splits the part in
// two (each half written and, if need be, split again); a single log that
// PostgreSQL refuses is set aside. Other failures are retried with backoff.
func (w *Writer) writePart(ctx context.Context, log *slog.Logger, r *round, from, to int) error {
	if from >= to {
		return nil
	}
	logs := r.logs[from:to]
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
		if w.cfg.DeadLetters != nil && Permanent(err) {
			if len(logs) == 1 {
				log.Error("setting aside an activity log the database refuses", "log_id", logs[0].LogID,
					"user_id", logs[0].UserID, "message_id", r.message(from).UUID, "error", err)
				return w.setAside(ctx, log, []DeadLetter{letterForLog(logs[0], r.message(from), err, time.Now())})
			}
			log.Warn("the database refuses a log of this write; splitting it", "logs", len(logs), "error", err)
			mid := from + len(logs)/2
			if err := w.writePart(ctx, log, r, from, mid); err != nil {
				return err
			}
			return w.writePart(ctx, log, r, mid, to)
		}
		log.Error("storing activity logs failed; retrying", "logs", len(logs), "attempt", attempt,
			"retry_in", backoff.String(), "error", err)
		if !sleep(ctx, backoff) {
			return errors.Join(ctx.Err(), err)
		}
		backoff = min(2*backoff, w.cfg.MaxBackoff)
	}
}

// setAside stores dead letters, retrying with backoff until it succeeds or
// ctx ends.
func (w *Writer) setAside(ctx context.Context, log *slog.Logger, letters []DeadLetter) error {
	backoff := w.cfg.MinBackoff
	for attempt := 1; ; attempt++ {
		err := w.cfg.DeadLetters.SetAside(ctx, letters)
		if err == nil {
			return nil
		}
		if ctx.Err() != nil {
			return errors.Join(ctx.Err(), err)
		}
		log.Error("storing activity-log dead letters failed; retrying", "letters", len(letters), "attempt", attempt,
			"retry_in", backoff.String(), "error", err)
		if !sleep(ctx, backoff) {
			return errors.Join(ctx.Err(), err)
		}
		backoff = min(2*backoff, w.cfg.MaxBackoff)
	}
}

// sleep waits d or until ctx ends (false).
func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}
