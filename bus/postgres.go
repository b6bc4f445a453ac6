package bus

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"maps"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	wsql "github.com/ThreeDotsLabs/watermill-sql/v3/pkg/sql"
	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/jackc/pgx/v5/stdlib"
)

// postgresInsertChunk bounds one INSERT (3 parameters per message, PostgreSQL
// allows 65535).
const postgresInsertChunk = 1000

// postgresBackend stores each topic in watermill-sql's default PostgreSQL
// schema with a BYTEA payload column (any bytes, not only JSON).
type postgresBackend struct {
	cfg     Config
	pool    *pgxpool.Pool
	db      *sql.DB // database/sql view of pool, for watermill-sql's subscriber
	schema  wsql.DefaultPostgreSQLSchema
	offsets wsql.DefaultPostgreSQLOffsetsAdapter
	wlog    watermill.LoggerAdapter
	ready   sync.Map // topic → struct{}: tables exist
	waker   *waker   // postgres_wake.go
}

func newPostgres(cfg Config, wlog watermill.LoggerAdapter) (*postgresBackend, error) {
	p := &postgresBackend{
		cfg:  cfg,
		pool: cfg.Pool,
		db:   stdlib.OpenDBFromPool(cfg.Pool),
		schema: wsql.DefaultPostgreSQLSchema{
			GeneratePayloadType: func(string) string { return "BYTEA" },
			SubscribeBatchSize:  cfg.BatchSize,
		},
		wlog: wlog,
	}
	p.waker = newWaker(p)
	return p, nil
}

// ensureTopic creates the topic's tables once per process, under an advisory
// lock so concurrent first uses (even from other instances) do not collide.
func (p *postgresBackend) ensureTopic(ctx context.Context, topic string) error {
	if _, ok := p.ready.Load(topic); ok {
		return nil
	}
	queries := append(p.schema.SchemaInitializingQueries(topic), p.offsets.SchemaInitializingQueries(topic)...)
	err := pgx.BeginFunc(ctx, p.pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock(hashtext($1))`, "lockstep.bus:"+topic); err != nil {
			return err
		}
		for _, q := range queries {
			if _, err := tx.Exec(ctx, q.Query, q.Args...); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("create tables of topic %s: %w", topic, err)
	}
	p.ready.Store(topic, struct{}{})
	return nil
}

// publish inserts msgs with watermill-sql's own insert query, in one
// transaction, so a nil return means every message is committed.
func (p *postgresBackend) publish(ctx context.Context, topic string, msgs []*message.Message) error {
	if err := p.ensureTopic(ctx, topic); err != nil {
		return err
	}
	err := pgx.BeginFunc(ctx, p.pool, func(tx pgx.Tx) error {
		for start := 0; start < len(msgs); start += postgresInsertChunk {
			chunk := msgs[start:min(start+postgresInsertChunk, len(msgs))]
			q, err := p.schema.InsertQuery(topic, chunk)
			if err != nil {
				return err
			}
			if _, err := tx.Exec(ctx, q.Query, q.Args...); err != nil {
				return err
			}
		}
		return nil
	})
	if err == nil {
		p.waker.published(topic)
	}
	return err
}

func (p *postgresBackend) subscriber(group string, fromEnd bool) (message.Subscriber, error) {
	p.waker.run()
	return &postgresSubscriber{p: p, group: group, fromEnd: fromEnd, topics: map[string]*topicSubscriber{}}, nil
}

// topicSubscriber is a group's watermill-sql subscriber of one topic: its
// idle waits end when that topic gets a message.
type topicSubscriber struct {
	inner   *wsql.Subscriber
	backoff *adaptiveBackoff
}

func (p *postgresBackend) newTopicSubscriber(group, topic string) (*topicSubscriber, error) {
	ackDeadline := p.cfg.AckDeadline
	backoff := newAdaptiveBackoff(p.cfg.PollInterval, max(p.cfg.PollInterval, 500*time.Millisecond))
	backoff.idle = newNotifiedWait(p.waker, topic)
	inner, err := wsql.NewSubscriber(p.db, wsql.SubscriberConfig{
		ConsumerGroup:  group,
		AckDeadline:    &ackDeadline,
		PollInterval:   p.cfg.PollInterval,
		ResendInterval: p.cfg.ResendInterval,
		RetryInterval:  max(p.cfg.PollInterval, 500*time.Millisecond),
		BackoffManager: backoff,
		SchemaAdapter:  p.schema,
		OffsetsAdapter: p.offsets,
	}, p.wlog)
	if err != nil {
		return nil, err
	}
	return &topicSubscriber{inner: inner, backoff: backoff}, nil
}

// postgresSubscriber is a consumer group's subscriber: one watermill-sql
// subscriber per topic it subscribes to.
type postgresSubscriber struct {
	p       *postgresBackend
	group   string
	fromEnd bool

	mu     sync.Mutex
	topics map[string]*topicSubscriber
	closed bool
}

func (s *postgresSubscriber) Subscribe(ctx context.Context, topic string) (<-chan *message.Message, error) {
	if err := s.p.ensureTopic(ctx, topic); err != nil {
		return nil, err
	}
	if s.fromEnd {
		// A new group starts after the newest committed message. (watermill-sql
		// would otherwise insert a zero offset: the topic's whole history.)
		q := fmt.Sprintf(`
			INSERT INTO %[1]s (consumer_group, offset_acked, last_processed_transaction_id)
			SELECT $1, coalesce(last."offset", 0), coalesce(last.transaction_id, '0'::xid8)
			FROM (SELECT 1) AS one
			LEFT JOIN (SELECT "offset", transaction_id FROM %[2]s
			           ORDER BY transaction_id DESC, "offset" DESC LIMIT 1) AS last ON true
			ON CONFLICT (consumer_group) DO NOTHING`,
			s.p.offsets.MessagesOffsetsTable(topic), s.p.schema.MessagesTable(topic))
		if _, err := s.p.pool.Exec(ctx, q, s.group); err != nil {
			return nil, fmt.Errorf("position group %s at the end of %s: %w", s.group, topic, err)
		}
	}
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil, ErrClosed
	}
	ts, ok := s.topics[topic]
	if !ok {
		var err error
		if ts, err = s.p.newTopicSubscriber(s.group, topic); err != nil {
			s.mu.Unlock()
			return nil, err
		}
		s.topics[topic] = ts
	}
	s.mu.Unlock()
	return ts.inner.Subscribe(ctx, topic)
}

func (s *postgresSubscriber) Close() error {
	s.mu.Lock()
	s.closed = true
	topics := slices.Collect(maps.Values(s.topics))
	s.mu.Unlock()
	var errs []error
	for _, ts := range topics {
		ts.backoff.idle.close()
		errs = append(errs, ts.inner.Close())
	}
	return errors.Join(errs...)
}

func (p *postgresBackend) ping(ctx context.Context) error { return p.pool.Ping(ctx) }

// close stops the notifications and releases the database/sql wrapper; the
// pool belongs to the caller.
func (p *postgresBackend) close() error {
	p.waker.close()
	return p.db.Close()
}

// adaptiveBackoff decides how long a subscriber waits before its next query.
// watermill-sql's default waits the whole poll interval after every empty
// query, but right after a message the next one is often only briefly
// invisible (its publisher's transaction, or another one older than it, is
// still open): waiting a full interval then caps a busy consumer at a few
// messages per interval. This one polls again after 1 ms, doubling while the
// queries stay empty, up to the poll interval when the topic is idle; and a
// publish (of any process on the database) ends the wait at once and starts
// the brief polls over (idle).
type adaptiveBackoff struct {
	inner watermillBackoff
	poll  time.Duration
	empty atomic.Int32
	idle  *notifiedWait // nil: wait the whole backoff
}

type watermillBackoff = wsql.BackoffManager

func newAdaptiveBackoff(poll, retry time.Duration) *adaptiveBackoff {
	return &adaptiveBackoff{inner: wsql.NewDefaultBackoffManager(poll, retry), poll: poll}
}

func (b *adaptiveBackoff) HandleError(logger watermill.LoggerAdapter, noMsg bool, err error) time.Duration {
	if err != nil {
		return b.inner.HandleError(logger, noMsg, err)
	}
	if !noMsg {
		b.empty.Store(0)
		return 0
	}
	n := b.empty.Add(1)
	d := b.poll
	if n <= 16 {
		d = min(b.poll, time.Millisecond<<(n-1))
	}
	if b.idle == nil {
		return d
	}
	if b.idle.wait(d) {
		// A message was published, but it stays invisible to the query
		// while a transaction older than its own is open: poll briefly
		// again, as right after a message.
		b.empty.Store(0)
	}
	return 0
}
