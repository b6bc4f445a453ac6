// Package bus is Lockstep's message bus: watermill publishers and subscribers
// over one of three interchangeable backends chosen by Config.Backend.
//
//   - "postgres" (default): watermill-sql over the application's pgx pool. Durable,
//     no extra server. One table per topic ("watermill_<topic>", payload BYTEA,
//     so any bytes may be published) and one offsets table per topic
//     ("watermill_offsets_<topic>"), created on first use. Consumers of one group
//     do not run in parallel (the group's offsets row is locked per batch), and a
//     subscriber holds a transaction open while a batch is handled: keep handlers
//     and every other transaction in the database short.
//   - "kafka": watermill-kafka/v3 consumers over sarama, with a batching producer
//     (acks from all in-sync replicas, idempotent). Messages with the same
//     MetadataPartitionKey go to the same partition and so stay ordered.
//   - "memory": watermill's GoChannel plus an in-process consumer-group layer.
//     Single process, not durable: a group receives only what is published after
//     its first subscription in this Bus, and everything is lost on exit.
//
// Every backend has the same semantics, proved by the conformance suite in
// package bustest: within a consumer group each message is handled (acked) once
// by one of the group's subscribers; a nacked message is redelivered; a group
// resumes after its last acked message when a subscriber restarts; different
// groups each receive every message (fan-out). Delivery is at least once at
// the edges (a crash between handling and ack, a Kafka rebalance), so handlers
// must be idempotent.
package bus

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/IBM/sarama"
	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgxpool"
)

// Backends accepted by Config.Backend.
const (
	BackendPostgres = "postgres"
	BackendKafka    = "kafka"
	BackendMemory   = "memory"
)

// Topics Lockstep publishes to.
const (
	// TopicActivityLogs carries raw student activity logs (consumer group: the log writer).
	TopicActivityLogs = "lockstep.activity_logs"
	// TopicHelpAnalysisRequests carries help requests to analyze (consumer group: the analyzer).
	TopicHelpAnalysisRequests = "lockstep.help_analysis_requests"
	// TopicProjectedNotices carries "read model updated" notices; every API
	// instance receives all of them (see FanOutSubscriber).
	TopicProjectedNotices = "lockstep.projected_notices"
	// TopicDomainEvents is the integration feed of domain events for outside consumers.
	TopicDomainEvents = "lockstep.domain_events"
)

// MetadataPartitionKey is the message metadata key whose value keeps messages
// in order: on Kafka, messages with the same value go to the same partition.
// Use the aggregate's stream name (e.g. "session-42"). Messages without it are
// spread over partitions.
const MetadataPartitionKey = "partition_key"

// Config configures a Bus. Zero values take the defaults documented per field.
type Config struct {
	// Backend is one of BackendPostgres (default), BackendKafka, BackendMemory.
	Backend string
	// Logger receives watermill's logs; its info level is lowered to debug so
	// a healthy bus is quiet. Default slog.Default().
	Logger *slog.Logger

	// Pool is the application's PostgreSQL pool (postgres backend; required).
	// Every subscriber holds one connection while it handles a batch, and a
	// waiting subscriber of the same group another: size the pool for it.
	Pool *pgxpool.Pool
	// PollInterval is how long an idle postgres subscriber waits before
	// querying again (default 50ms).
	PollInterval time.Duration
	// BatchSize is how many messages a postgres subscriber reads per query
	// (default 100). A crash mid-batch redelivers the batch's unacked part.
	BatchSize int
	// AckDeadline is how long a postgres subscriber waits for an ack before
	// redelivering (default 30s).
	AckDeadline time.Duration
	// ResendInterval is the pause before a nacked message is redelivered, on
	// every backend (default 100ms).
	ResendInterval time.Duration

	// KafkaBrokers lists the Kafka bootstrap brokers (kafka backend; required).
	KafkaBrokers []string
	// KafkaVersion is the protocol version sarama speaks (default "2.8.0").
	KafkaVersion string
	// KafkaClientID identifies this process to the brokers (default "lockstep").
	KafkaClientID string
	// KafkaHeartbeatInterval is the consumer-group heartbeat (default 3s;
	// tests use ~100ms so rebalances take milliseconds, not seconds).
	KafkaHeartbeatInterval time.Duration
	// KafkaSessionTimeout is how long the broker waits for a heartbeat before
	// evicting a member (default 10s). Must exceed the heartbeat interval.
	KafkaSessionTimeout time.Duration
	// KafkaRebalanceTimeout bounds a rebalance (default 60s).
	KafkaRebalanceTimeout time.Duration
}

func (c *Config) setDefaults() {
	if c.Backend == "" {
		c.Backend = BackendPostgres
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	if c.PollInterval == 0 {
		c.PollInterval = 50 * time.Millisecond
	}
	if c.BatchSize == 0 {
		c.BatchSize = 100
	}
	if c.AckDeadline == 0 {
		c.AckDeadline = 30 * time.Second
	}
	if c.ResendInterval == 0 {
		c.ResendInterval = 100 * time.Millisecond
	}
	if c.KafkaVersion == "" {
		c.KafkaVersion = "2.8.0"
	}
	if c.KafkaClientID == "" {
		c.KafkaClientID = "lockstep"
	}
	if c.KafkaHeartbeatInterval == 0 {
		c.KafkaHeartbeatInterval = 3 * time.Second
	}
	if c.KafkaSessionTimeout == 0 {
		c.KafkaSessionTimeout = 10 * time.Second
	}
	if c.KafkaRebalanceTimeout == 0 {
		c.KafkaRebalanceTimeout = 60 * time.Second
	}
}

// Validate reports every problem with the configuration at once. Call it
// after defaults are applied (New does both).
func (c Config) Validate() error {
	var errs []error
	switch c.Backend {
	case BackendPostgres:
		if c.Pool == nil {
			errs = append(errs, errors.New("bus: postgres backend needs a Pool"))
		}
	case BackendKafka:
		if len(c.KafkaBrokers) == 0 || slices.Contains(c.KafkaBrokers, "") {
			errs = append(errs, errors.New("bus: kafka backend needs KafkaBrokers (none empty)"))
		}
		if _, err := sarama.ParseKafkaVersion(c.KafkaVersion); err != nil {
			errs = append(errs, fmt.Errorf("bus: KafkaVersion %q: %w", c.KafkaVersion, err))
		}
		if c.KafkaHeartbeatInterval >= c.KafkaSessionTimeout {
			errs = append(errs, fmt.Errorf("bus: KafkaHeartbeatInterval (%s) must be below KafkaSessionTimeout (%s)",
				c.KafkaHeartbeatInterval, c.KafkaSessionTimeout))
		}
	case BackendMemory:
	default:
		errs = append(errs, fmt.Errorf("bus: unknown backend %q (want %s, %s or %s)",
			c.Backend, BackendPostgres, BackendKafka, BackendMemory))
	}
	for name, d := range map[string]time.Duration{
		"PollInterval": c.PollInterval, "AckDeadline": c.AckDeadline, "ResendInterval": c.ResendInterval,
		"KafkaHeartbeatInterval": c.KafkaHeartbeatInterval, "KafkaSessionTimeout": c.KafkaSessionTimeout,
		"KafkaRebalanceTimeout": c.KafkaRebalanceTimeout,
	} {
		if d < 0 {
			errs = append(errs, fmt.Errorf("bus: %s must not be negative (got %s)", name, d))
		}
	}
	if c.BatchSize < 0 {
		errs = append(errs, fmt.Errorf("bus: BatchSize must not be negative (got %d)", c.BatchSize))
	}
	return errors.Join(errs...)
}

// ErrClosed is returned by a closed Bus.
var ErrClosed = errors.New("bus: closed")

// backend is what each implementation provides.
type backend interface {
	publish(ctx context.Context, topic string, msgs []*message.Message) error
	// subscriber makes a subscriber of group; fromEnd positions a new group
	// at the topic's end when it subscribes.
	subscriber(group string, fromEnd bool) (message.Subscriber, error)
	ping(ctx context.Context) error
	// lag counts the messages of topic not yet acked by group.
	lag(ctx context.Context, topic, group string) (int64, error)
	close() error
}

// Bus publishes and subscribes on the configured backend. It is safe for
// concurrent use.
type Bus struct {
	cfg     Config
	backend backend
	wlog    watermill.LoggerAdapter

	// ctx lives until Close; Publisher() publishes with it.
	ctx    context.Context
	cancel context.CancelFunc

	mu     sync.Mutex
	closed bool
	subs   map[*subscriber]struct{}
	groups map[groupKey]string // consumed (topic, group) → metric label (lag.go)
}

// New opens a Bus on cfg's backend. For kafka it connects to the brokers now,
// so an unreachable cluster fails here.
func New(ctx context.Context, cfg Config) (*Bus, error) {
	cfg.setDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	wlog := watermill.NewSlogLoggerWithLevelMapping(cfg.Logger.With("component", "bus", "backend", cfg.Backend),
		map[slog.Level]slog.Level{slog.LevelInfo: slog.LevelDebug})
	b := &Bus{cfg: cfg, wlog: wlog, subs: map[*subscriber]struct{}{}}
	b.ctx, b.cancel = context.WithCancel(context.WithoutCancel(ctx))
	var err error
	switch cfg.Backend {
	case BackendPostgres:
		b.backend, err = newPostgres(cfg, wlog)
	case BackendKafka:
		b.backend, err = newKafka(cfg, wlog)
	case BackendMemory:
		b.backend = newMemory(b.ctx, cfg, wlog)
	}
	if err != nil {
		b.cancel()
		return nil, err
	}
	return b, nil
}

// Backend is the backend the Bus runs on.
func (b *Bus) Backend() string { return b.cfg.Backend }

// Publish sends msgs to topic. When it returns nil the messages are stored
// durably (postgres: the insert committed; kafka: acked by all in-sync
// replicas; memory: handed to every existing group's queue). Messages of one
// call keep their order for a consumer (on Kafka, per partition key).
func (b *Bus) Publish(ctx context.Context, topic string, msgs ...*message.Message) error {
	if b.isClosed() {
		return ErrClosed
	}
	if err := checkTopic(topic); err != nil {
		return err
	}
	if len(msgs) == 0 {
		return nil
	}
	if err := b.backend.publish(ctx, topic, msgs); err != nil {
		return fmt.Errorf("bus: publish %d message(s) to %s: %w", len(msgs), topic, err)
	}
	return nil
}

// Publisher is the Bus as a watermill Publisher (for watermill's router and
// CQRS components). It publishes like Publish, with a context that ends when
// the Bus is closed. Closing it does nothing; close the Bus.
func (b *Bus) Publisher() message.Publisher { return publisher{b} }

type publisher struct{ b *Bus }

func (p publisher) Publish(topic string, msgs ...*message.Message) error {
	return p.b.Publish(p.b.ctx, topic, msgs...)
}

func (p publisher) Close() error { return nil }

// Subscriber returns a subscriber in consumer group group. Subscribers sharing
// a group split the group's messages, each message acked once per group; a
// group that is new starts at the topic's oldest retained message (postgres
// and kafka) or at its first subscription (memory). Name groups with the
// handler's constant name. The Bus closes every subscriber it made on Close.
func (b *Bus) Subscriber(group string) (message.Subscriber, error) {
	return b.newSubscriber(group, group, false)
}

// FanOutSubscriber returns a subscriber in a group of its own (FanOutGroup(prefix))
// that starts at the topic's end when it subscribes: it receives every message
// published after its Subscribe returned (give or take publishes still in
// flight at that instant). Each API instance uses one for projected notices.
func (b *Bus) FanOutSubscriber(prefix string) (message.Subscriber, error) {
	if prefix == "" {
		prefix = "fanout"
	}
	return b.newSubscriber(FanOutGroup(prefix), prefix, true)
}

// FanOutGroup returns a consumer-group name unique to this call, prefix-uuid.
func FanOutGroup(prefix string) string {
	if prefix == "" {
		prefix = "fanout"
	}
	return prefix + "-" + uuid.NewString()
}

func (b *Bus) newSubscriber(group, label string, fromEnd bool) (message.Subscriber, error) {
	if strings.TrimSpace(group) == "" {
		return nil, errors.New("bus: subscriber needs a consumer group")
	}
	if len(group) > 255 {
		return nil, fmt.Errorf("bus: consumer group %q longer than 255 bytes", group)
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed {
		return nil, ErrClosed
	}
	inner, err := b.backend.subscriber(group, fromEnd)
	if err != nil {
		return nil, fmt.Errorf("bus: subscriber %s: %w", group, err)
	}
	s := &subscriber{b: b, inner: inner, group: group, label: label}
	b.subs[s] = struct{}{}
	return s, nil
}

type subscriber struct {
	b     *Bus
	inner message.Subscriber
	group string
	label string // the group's name in metrics
	once  sync.Once
	err   error
}

func (s *subscriber) Subscribe(ctx context.Context, topic string) (<-chan *message.Message, error) {
	if err := checkTopic(topic); err != nil {
		return nil, err
	}
	ch, err := s.inner.Subscribe(ctx, topic)
	if err == nil {
		s.b.trackGroup(topic, s.group, s.label)
	}
	return ch, err
}

func (s *subscriber) Close() error {
	s.once.Do(func() {
		s.err = s.inner.Close()
		s.b.mu.Lock()
		delete(s.b.subs, s)
		s.b.mu.Unlock()
	})
	return s.err
}

// Ping checks that the backend is reachable (for readiness probes).
func (b *Bus) Ping(ctx context.Context) error {
	if b.isClosed() {
		return ErrClosed
	}
	if err := b.backend.ping(ctx); err != nil {
		return fmt.Errorf("bus: ping %s: %w", b.cfg.Backend, err)
	}
	return nil
}

// Close closes every subscriber made by the Bus, then the backend. It does not
// close the pgx pool.
func (b *Bus) Close() error {
	b.mu.Lock()
	if b.closed {
		b.mu.Unlock()
		return nil
	}
	b.closed = true
	subs := slices.Collect(maps.Keys(b.subs))
	b.mu.Unlock()
	var errs []error
	for _, s := range subs {
		errs = append(errs, s.Close())
	}
	b.cancel()
	errs = append(errs, b.backend.close())
	return errors.Join(errs...)
}

func (b *Bus) isClosed() bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.closed
}

// checkTopic allows what every backend can carry: letters, digits, '.', '_',
// '-', at most 40 bytes (postgres makes a table "watermill_offsets_<topic>"
// whose name must fit PostgreSQL's 63 bytes).
func checkTopic(topic string) error {
	if topic == "" || len(topic) > 40 {
		return fmt.Errorf("bus: topic %q must be 1 to 40 bytes", topic)
	}
	for _, r := range topic {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '.' || r == '_' || r == '-') {
			return fmt.Errorf("bus: topic %q: only letters, digits, '.', '_' and '-' are allowed", topic)
		}
	}
	return nil
}
