package bus_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/lockstep/lockstep/bus"
	"github.com/lockstep/lockstep/cmd/lockstep/app/apptest"
	"github.com/lockstep/lockstep/pgtest"
)

// TestLag: Lag reports, per consumer group of this process, the messages
// published and not yet acked, on every backend.
func TestLag(t *testing.T) {
	t.Parallel()
	backends := map[string]func(t *testing.T) *bus.Bus{
		"memory": func(t *testing.T) *bus.Bus { return apptest.NewBus(t, bus.Config{Backend: bus.BackendMemory}) },
		"postgres": func(t *testing.T) *bus.Bus {
			// Batches of 1: a batch's acks are committed together at its end.
			return apptest.NewBus(t, bus.Config{Backend: bus.BackendPostgres, Pool: pgtest.NewEmpty(t).Pool, PollInterval: 20 * time.Millisecond, BatchSize: 1})
		},
		"kafka": func(t *testing.T) *bus.Bus { return apptest.NewBus(t, kafkaConfig(startKafka(t), "")) },
	}
	for name, open := range backends {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			b := open(t)
			ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
			defer cancel()
			topic := "lag.test"
			sub, err := b.Subscriber("lag-group")
			if err != nil {
				t.Fatal(err)
			}
			msgs, err := sub.Subscribe(ctx, topic)
			if err != nil {
				t.Fatal(err)
			}
			fan, err := b.FanOutSubscriber("relay")
			if err != nil {
				t.Fatal(err)
			}
			if _, err := fan.Subscribe(ctx, topic); err != nil {
				t.Fatal(err)
			}
			time.Sleep(200 * time.Millisecond) // let the subscriptions settle before publishing
			var out []*message.Message
			for i := range 5 {
				out = append(out, message.NewMessage(watermill.NewUUID(), fmt.Appendf(nil, "%d", i)))
			}
			if err := b.Publish(ctx, topic, out...); err != nil {
				t.Fatal(err)
			}
			ack := func(n int) {
				for range n {
					select {
					case m := <-msgs:
						m.Ack()
					case <-ctx.Done():
						t.Fatal("message not delivered")
					}
				}
			}
			lagOf := func(group string) int64 {
				lags, err := b.Lag(ctx)
				if err != nil {
					t.Logf("lag: %v", err)
				}
				for _, l := range lags {
					if l.Topic == topic && l.Group == group {
						return l.Messages
					}
				}
				return -1
			}
			await := func(group string, want int64) {
				t.Helper()
				var got int64
				for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
					if got = lagOf(group); got == want {
						return
					}
				}
				t.Fatalf("lag of %s = %d, want %d", group, got, want)
			}
			await("lag-group", 5)
			ack(2)
			await("lag-group", 3)
			ack(3)
			await("lag-group", 0)
			if got := lagOf("relay"); got < 0 {
				t.Errorf("the fan-out group is not reported under its prefix")
			}
		})
	}
}
