package bus

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/IBM/sarama"
	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill-kafka/v3/pkg/kafka"
	"github.com/ThreeDotsLabs/watermill/message"
)

// kafkaBackend consumes with watermill-kafka's subscriber and produces with a
// sarama SyncProducer of its own: watermill-kafka's publisher makes one
// round trip per message, SendMessages batches a whole Publish call.
type kafkaBackend struct {
	cfg      Config
	sarama   *sarama.Config
	client   sarama.Client
	producer sarama.SyncProducer
	wlog     watermill.LoggerAdapter
	codec    kafka.DefaultMarshaler
}

// SaramaConfig is the sarama configuration the kafka backend uses (after
// cfg's defaults): protocol cfg.KafkaVersion (2.8.0 by default; 2.8 and 3.6
// are verified against kfake with sarama v1.61), producer acks from all
// in-sync replicas and idempotent (hence one open request per broker), new
// consumer groups start at the oldest offset, offsets auto-committed every
// second and on every rebalance and close.
func SaramaConfig(cfg Config) (*sarama.Config, error) {
	cfg.setDefaults()
	version, err := sarama.ParseKafkaVersion(cfg.KafkaVersion)
	if err != nil {
		return nil, fmt.Errorf("bus: KafkaVersion %q: %w", cfg.KafkaVersion, err)
	}
	sc := sarama.NewConfig()
	sc.Version = version
	sc.ClientID = cfg.KafkaClientID
	sc.Metadata.Retry.Backoff = 250 * time.Millisecond

	sc.Producer.RequiredAcks = sarama.WaitForAll
	sc.Producer.Idempotent = true
	sc.Net.MaxOpenRequests = 1 // required by Idempotent
	sc.Producer.Retry.Max = 10
	sc.Producer.Return.Successes = true
	sc.Producer.Return.Errors = true
	sc.Producer.Partitioner = sarama.NewHashPartitioner // nil key → random partition

	sc.Consumer.Return.Errors = true
	sc.Consumer.Offsets.Initial = sarama.OffsetOldest
	sc.Consumer.Offsets.AutoCommit.Enable = true
	sc.Consumer.Offsets.AutoCommit.Interval = time.Second
	sc.Consumer.Group.Heartbeat.Interval = cfg.KafkaHeartbeatInterval
	sc.Consumer.Group.Session.Timeout = cfg.KafkaSessionTimeout
	sc.Consumer.Group.Rebalance.Timeout = cfg.KafkaRebalanceTimeout
	sc.Consumer.Group.Rebalance.Retry.Backoff = min(cfg.KafkaHeartbeatInterval, 2*time.Second)
	if err := sc.Validate(); err != nil {
		return nil, fmt.Errorf("bus: sarama config: %w", err)
	}
	return sc, nil
}

func newKafka(cfg Config, wlog watermill.LoggerAdapter) (*kafkaBackend, error) {
	sc, err := SaramaConfig(cfg)
	if err != nil {
		return nil, err
	}
	client, err := sarama.NewClient(cfg.KafkaBrokers, sc)
	if err != nil {
		return nil, fmt.Errorf("bus: connect to kafka %v: %w", cfg.KafkaBrokers, err)
	}
	producer, err := sarama.NewSyncProducerFromClient(client)
	if err != nil {
		_ = client.Close()
		return nil, fmt.Errorf("bus: kafka producer: %w", err)
	}
	return &kafkaBackend{cfg: cfg, sarama: sc, client: client, producer: producer, wlog: wlog}, nil
}

// publish sends msgs in one SendMessages call (batched per partition); it
// returns when every message is acked. The sarama producer has its own
// timeouts and cannot be interrupted, so ctx is only checked before sending.
func (k *kafkaBackend) publish(ctx context.Context, topic string, msgs []*message.Message) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	out := make([]*sarama.ProducerMessage, len(msgs))
	for i, msg := range msgs {
		pm, err := k.codec.Marshal(topic, msg)
		if err != nil {
			return fmt.Errorf("marshal message %s: %w", msg.UUID, err)
		}
		if key := msg.Metadata.Get(MetadataPartitionKey); key != "" {
			pm.Key = sarama.StringEncoder(key)
		}
		out[i] = pm
	}
	if err := k.producer.SendMessages(out); err != nil {
		var perrs sarama.ProducerErrors
		if errors.As(err, &perrs) && len(perrs) > 0 {
			return fmt.Errorf("%d of %d message(s) failed, first: %w", len(perrs), len(msgs), perrs[0].Err)
		}
		return err
	}
	return nil
}

func (k *kafkaBackend) subscriber(group string, fromEnd bool) (message.Subscriber, error) {
	inner, err := kafka.NewSubscriber(kafka.SubscriberConfig{
		Brokers:               k.cfg.KafkaBrokers,
		Unmarshaler:           k.codec,
		OverwriteSaramaConfig: k.sarama,
		ConsumerGroup:         group,
		NackResendSleep:       k.cfg.ResendInterval,
		ReconnectRetrySleep:   time.Second,
	}, k.wlog)
	if err != nil {
		return nil, err
	}
	return &kafkaSubscriber{k: k, inner: inner, group: group, fromEnd: fromEnd}, nil
}

type kafkaSubscriber struct {
	k       *kafkaBackend
	inner   *kafka.Subscriber
	group   string
	fromEnd bool
}

func (s *kafkaSubscriber) Subscribe(ctx context.Context, topic string) (<-chan *message.Message, error) {
	if s.fromEnd {
		if err := s.k.commitEnd(topic, s.group); err != nil {
			return nil, fmt.Errorf("position group %s at the end of %s: %w", s.group, topic, err)
		}
	}
	return s.inner.Subscribe(ctx, topic)
}

func (s *kafkaSubscriber) Close() error { return s.inner.Close() }

// commitEnd commits, as a simple (memberless) commit, every partition's
// current end offset for group, so the group's consumers start there instead
// of at the oldest message. (sarama's OffsetManager would first fetch the
// group's offsets, which kfake refuses for a group that does not exist yet.)
func (k *kafkaBackend) commitEnd(topic, group string) error {
	partitions, err := k.client.Partitions(topic)
	if err != nil {
		return err
	}
	req := sarama.NewOffsetCommitRequest(k.sarama, group)
	for _, p := range partitions {
		end, err := k.client.GetOffset(topic, p, sarama.OffsetNewest)
		if err != nil {
			return err
		}
		req.AddBlock(topic, p, end, 0, "")
	}
	coordinator, err := k.client.Coordinator(group)
	if err != nil {
		return err
	}
	resp, err := coordinator.CommitOffset(req)
	if err != nil {
		return err
	}
	for _, ps := range resp.Errors {
		for p, kerr := range ps {
			if !errors.Is(kerr, sarama.ErrNoError) {
				return fmt.Errorf("partition %d: %w", p, kerr)
			}
		}
	}
	return nil
}

// ping asks the cluster for its metadata.
func (k *kafkaBackend) ping(ctx context.Context) error {
	done := make(chan error, 1)
	go func() { done <- k.client.RefreshMetadata() }()
	select {
	case err := <-done:
		return err
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (k *kafkaBackend) close() error {
	return errors.Join(k.producer.Close(), k.client.Close())
}
