package bus_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/IBM/sarama"
	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill-kafka/v3/pkg/kafka"
	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/twmb/franz-go/pkg/kfake"

	"github.com/lockstep/lockstep/bus"
	"github.com/lockstep/lockstep/bus/bustest"
	"github.com/lockstep/lockstep/cmd/lockstep/app/apptest"
	"github.com/lockstep/lockstep/pgtest"
)

func TestPostgres(t *testing.T) {
	t.Parallel()
	bustest.Run(t, bustest.Features{ReadsHistory: true}, func(t *testing.T) *bus.Bus {
		db := pgtest.NewEmpty(t)
		return apptest.NewBus(t, bus.Config{Backend: bus.BackendPostgres, Pool: db.Pool, PollInterval: 20 * time.Millisecond})
	})
}

func TestMemory(t *testing.T) {
	t.Parallel()
	bustest.Run(t, bustest.Features{ParallelConsumers: true}, func(t *testing.T) *bus.Bus {
		return apptest.NewBus(t, bus.Config{Backend: bus.BackendMemory})
	})
}

// startKafka starts an in-process Kafka-protocol broker on a free local port.
func startKafka(t testing.TB) []string {
	t.Helper()
	c, err := kfake.NewCluster(
		kfake.NumBrokers(1),
		kfake.AllowAutoTopicCreation(),
		kfake.DefaultNumPartitions(4),
	)
	if err != nil {
		t.Fatalf("kfake: %v", err)
	}
	t.Cleanup(c.Close)
	return c.ListenAddrs()
}

func kafkaConfig(brokers []string, version string) bus.Config {
	return bus.Config{
		Backend:                bus.BackendKafka,
		KafkaBrokers:           brokers,
		KafkaVersion:           version,
		KafkaHeartbeatInterval: 100 * time.Millisecond,
	}
}

// awaitKafkaGroup polls the broker until group is stable with members
// members that together own every partition of topic.
func awaitKafkaGroup(t *testing.T, brokers []string, version string) func(t *testing.T, topic, group string, members int) {
	return func(t *testing.T, topic, group string, members int) {
		t.Helper()
		sc, err := bus.SaramaConfig(kafkaConfig(brokers, version))
		if err != nil {
			t.Fatal(err)
		}
		admin, err := sarama.NewClusterAdmin(brokers, sc)
		if err != nil {
			t.Fatalf("cluster admin: %v", err)
		}
		defer admin.Close()
		deadline := time.Now().Add(30 * time.Second)
		var last string
		for time.Now().Before(deadline) {
			topics, err := admin.DescribeTopics([]string{topic})
			descs, err2 := admin.DescribeConsumerGroups([]string{group})
			if err == nil && err2 == nil && len(topics) == 1 && len(descs) == 1 {
				d := descs[0]
				owned := 0
				for _, m := range d.Members {
					if a, err := m.GetMemberAssignment(); err == nil && a != nil {
						owned += len(a.Topics[topic])
					}
				}
				last = fmt.Sprintf("state %s, %d members, %d of %d partitions owned", d.State, len(d.Members), owned, len(topics[0].Partitions))
				if d.State == "Stable" && len(d.Members) == members && owned == len(topics[0].Partitions) && owned > 0 {
					return
				}
			} else {
				last = fmt.Sprintf("describe: %v %v", err, err2)
			}
			time.Sleep(20 * time.Millisecond)
		}
		t.Fatalf("group %s never became stable with %d members: %s", group, members, last)
	}
}

func TestKafka(t *testing.T) {
	t.Parallel()
	for _, version := range []string{"2.8.0", "3.6.0"} {
		t.Run("v"+version, func(t *testing.T) {
			brokers := startKafka(t)
			features := bustest.Features{
				ParallelConsumers: true,
				ReadsHistory:      true,
				AwaitGroup:        awaitKafkaGroup(t, brokers, version),
			}
			if version != "2.8.0" {
				features.Messages = 2000 // the full volume runs once, on the default version
			}
			bustest.Run(t, features, func(t *testing.T) *bus.Bus {
				return apptest.NewBus(t, kafkaConfig(brokers, version))
			})
		})
	}
}

func TestKafkaPartitionKeyPicksOnePartition(t *testing.T) {
	t.Parallel()
	brokers := startKafka(t)
	b := apptest.NewBus(t, kafkaConfig(brokers, ""))
	topic := bustest.Topic("keys")
	var msgs []*message.Message
	for i := range 40 {
		m := message.NewMessage(watermill.NewUUID(), []byte(`{}`))
		m.Metadata.Set(bus.MetadataPartitionKey, fmt.Sprintf("session-%d", i%2))
		msgs = append(msgs, m)
	}
	if err := b.Publish(t.Context(), topic, msgs...); err != nil {
		t.Fatal(err)
	}
	sub, err := b.Subscriber("keys")
	if err != nil {
		t.Fatal(err)
	}
	ch, err := sub.Subscribe(t.Context(), topic)
	if err != nil {
		t.Fatal(err)
	}
	partitions := map[string]map[int32]bool{}
	for range msgs {
		select {
		case m := <-ch:
			p, ok := kafkaPartition(m)
			if !ok {
				t.Fatal("consumed message carries no partition")
			}
			key := m.Metadata.Get(bus.MetadataPartitionKey)
			if partitions[key] == nil {
				partitions[key] = map[int32]bool{}
			}
			partitions[key][p] = true
			m.Ack()
		case <-time.After(30 * time.Second):
			t.Fatal("timed out consuming")
		}
	}
	for key, ps := range partitions {
		if len(ps) != 1 {
			t.Errorf("key %s spread over partitions %v", key, ps)
		}
	}
}

func TestConfigValidateReportsEveryProblem(t *testing.T) {
	_, err := bus.New(context.Background(), bus.Config{
		Backend:                bus.BackendKafka,
		KafkaVersion:           "not-a-version",
		KafkaHeartbeatInterval: time.Minute,
		PollInterval:           -time.Second,
		BatchSize:              -1,
	})
	if err == nil {
		t.Fatal("no error")
	}
	for _, want := range []string{"KafkaBrokers", "KafkaVersion", "KafkaHeartbeatInterval", "PollInterval", "BatchSize"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error does not mention %s: %v", want, err)
		}
	}
	for _, cfg := range []bus.Config{{}, {Backend: "redis"}} {
		if _, err := bus.New(context.Background(), cfg); err == nil {
			t.Errorf("New(%+v): no error", cfg)
		}
	}
}

func TestKafkaUnreachableFailsInNew(t *testing.T) {
	t.Parallel()
	cfg := kafkaConfig([]string{"127.0.0.1:1"}, "")
	if _, err := bus.New(context.Background(), cfg); err == nil {
		t.Fatal("New with an unreachable broker: no error")
	}
}

// BenchmarkPublish measures publish throughput per backend and batch size
// (messages per Publish call); msgs/s is reported per sub-benchmark.
func BenchmarkPublish(b *testing.B) {
	backends := []struct {
		name string
		cfg  func(b *testing.B) bus.Config
	}{
		{"postgres", func(b *testing.B) bus.Config {
			return bus.Config{Backend: bus.BackendPostgres, Pool: pgtest.NewEmpty(b).Pool}
		}},
		{"kafka", func(b *testing.B) bus.Config { return kafkaConfig(startKafka(b), "") }},
		{"memory", func(b *testing.B) bus.Config { return bus.Config{Backend: bus.BackendMemory} }},
	}
	for _, be := range backends {
		for _, batch := range []int{1, 100} {
			b.Run(fmt.Sprintf("%s/batch=%d", be.name, batch), func(b *testing.B) {
				bs := apptest.NewBus(b, be.cfg(b))
				topic := bustest.Topic("bench")
				if be.name == bus.BackendMemory {
					// Without a group the memory backend drops messages; consume them.
					sub, err := bs.Subscriber("bench")
					if err != nil {
						b.Fatal(err)
					}
					ch, err := sub.Subscribe(context.Background(), topic)
					if err != nil {
						b.Fatal(err)
					}
					go func() {
						for m := range ch {
							m.Ack()
						}
					}()
				}
				msgs := make([]*message.Message, batch)
				payload := []byte(`{"session_id":42,"user_id":7,"kind":"step_viewed","at":"2026-01-01T00:00:00Z"}`)
				b.ResetTimer()
				sent := 0
				for sent < b.N {
					n := min(batch, b.N-sent)
					for i := range n {
						msgs[i] = message.NewMessage(watermill.NewUUID(), payload)
						msgs[i].Metadata.Set(bus.MetadataPartitionKey, fmt.Sprintf("user-%d", (sent+i)%64))
					}
					if err := bs.Publish(context.Background(), topic, msgs[:n]...); err != nil {
						b.Fatal(err)
					}
					sent += n
				}
				b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "msgs/s")
			})
		}
	}
}

func kafkaPartition(m *message.Message) (int32, bool) {
	return kafka.MessagePartitionFromCtx(m.Context())
}

// TestPostgresPublishWakesIdleSubscribersElsewhere: with a poll interval of
// an hour, an idle subscriber of another process (its own bus and pool on
// the same database) gets what is published because the publish wakes it
// (LISTEN/NOTIFY), not because it polled; another topic's messages do not
// wake it.
func TestPostgresPublishWakesIdleSubscribersElsewhere(t *testing.T) {
	ctx := context.Background()
	db := pgtest.NewEmpty(t)
	pub := apptest.NewBus(t, bus.Config{Backend: bus.BackendPostgres, Pool: db.Pool, PollInterval: time.Hour})
	other, err := pgxpool.New(ctx, db.URL)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(other.Close)
	b := apptest.NewBus(t, bus.Config{Backend: bus.BackendPostgres, Pool: other, PollInterval: time.Hour})
	sub, err := b.FanOutSubscriber("wake")
	if err != nil {
		t.Fatal(err)
	}
	msgs, err := sub.Subscribe(ctx, "wake.test")
	if err != nil {
		t.Fatal(err)
	}
	time.Sleep(300 * time.Millisecond) // idle: its listener connected, its backoff grown
	before := bus.NotifiedWakes(sub)
	// Another topic's messages do not wake it.
	for i := range 3 {
		if err := pub.Publish(ctx, "wake.other", message.NewMessage(fmt.Sprint(i), []byte("x"))); err != nil {
			t.Fatal(err)
		}
	}
	time.Sleep(200 * time.Millisecond)
	if n := bus.NotifiedWakes(sub) - before; n != 0 {
		t.Fatalf("another topic's messages woke the subscriber %d times", n)
	}
	for i := range 3 {
		time.Sleep(200 * time.Millisecond)
		if err := pub.Publish(ctx, "wake.test", message.NewMessage(fmt.Sprint(i), []byte(fmt.Sprint(i)))); err != nil {
			t.Fatal(err)
		}
		select {
		case m := <-msgs:
			if string(m.Payload) != fmt.Sprint(i) {
				t.Fatalf("got %q, want %d", m.Payload, i)
			}
			m.Ack()
		case <-time.After(30 * time.Second):
			t.Fatalf("message %d not delivered", i)
		}
	}
	if n := bus.NotifiedWakes(sub) - before; n == 0 {
		t.Fatal("no idle wait was ended by a publish: the subscriber found the messages by polling")
	}
}
