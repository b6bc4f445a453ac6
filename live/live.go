// Package live pushes what the read models now say to WebSocket clients.
//
// A projector records the messages an event causes (outbox.Record) in the
// same transaction as its read models, in an outbox keyed by channel and
// global position. Once the batch committed, the Announcer delivers them to this
// process's Hub and publishes them on the bus, so that every other instance's
// Hub delivers them to its own sockets. A client that connects gets a
// snapshot (or, with ?after=, every message it missed from the outbox), then
// live messages, with positions that never go down on one socket.
package live

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/lockstep/lockstep/bus"
	"github.com/lockstep/lockstep/outbox"
)

// Message is one message pushed on a channel (outbox.Message: projectors
// record them with outbox.Record).
type Message = outbox.Message

// WithPosition adds "position": pos to a JSON object (outbox.WithPosition).
func WithPosition(payload json.RawMessage, pos uint64) []byte {
	return outbox.WithPosition(payload, pos)
}

const metadataOrigin = "origin"

// Announcer delivers what projectors recorded, once their batch committed:
// to this process's hub at once, and through the bus to every other instance.
type Announcer struct {
	pool     *pgxpool.Pool
	bus      *bus.Bus
	hub      *Hub
	instance string
	log      *slog.Logger
}

// NewAnnouncer returns an Announcer; b or hub may be nil (no other instances,
// or no sockets in this process).
func NewAnnouncer(pool *pgxpool.Pool, b *bus.Bus, hub *Hub, log *slog.Logger) *Announcer {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	instance := uuid.NewString()
	if hub != nil {
		instance = hub.instance
	}
	return &Announcer{pool: pool, bus: b, hub: hub, instance: instance, log: log}
}

// Announce delivers the messages producer recorded for positions in [from, to].
// A failure is logged, not returned: clients recover through ?after= on reconnect.
func (a *Announcer) Announce(ctx context.Context, producer string, from, to uint64) {
	if a == nil {
		return
	}
	msgs, err := outbox.Recorded(ctx, a.pool, producer, from, to)
	if err != nil {
		a.log.Error("live: read recorded messages", "producer", producer, "error", err)
		return
	}
	a.Deliver(ctx, producer, msgs)
}

// Deliver delivers messages producer recorded in a batch that committed, as
// Announce does once it read them back.
func (a *Announcer) Deliver(ctx context.Context, producer string, msgs []Message) {
	if a == nil || len(msgs) == 0 {
		return
	}
	if a.hub != nil {
		a.hub.Deliver(msgs...)
	}
	if a.bus == nil {
		return
	}
	const chunk = 500
	var out []*message.Message
	for i := 0; i < len(msgs); i += chunk {
		data, err := json.Marshal(msgs[i:min(i+chunk, len(msgs))])
		if err != nil {
			a.log.Error("live: encode notice", "error", err)
			return
		}
		m := message.NewMessage(uuid.NewString(), data)
		m.Metadata.Set(metadataOrigin, a.instance)
		m.Metadata.Set(bus.MetadataPartitionKey, producer)
		out = append(out, m)
	}
	if err := a.bus.Publish(ctx, bus.TopicProjectedNotices, out...); err != nil {
		a.log.Error("live: publish notices", "producer", producer, "error", err)
	}
}

// Relay delivers other instances' notices to hub until ctx ends.
func Relay(ctx context.Context, b *bus.Bus, hub *Hub, log *slog.Logger) error {
	sub, err := b.FanOutSubscriber("live")
	if err != nil {
		return fmt.Errorf("live: subscribe to notices: %w", err)
	}
	defer sub.Close()
	ch, err := sub.Subscribe(ctx, bus.TopicProjectedNotices)
	if err != nil {
		return fmt.Errorf("live: subscribe to notices: %w", err)
	}
	for {
		select {
		case <-ctx.Done():
			return nil
		case m, ok := <-ch:
			if !ok {
				return nil
			}
			if m.Metadata.Get(metadataOrigin) != hub.instance {
				var msgs []Message
				if err := json.Unmarshal(m.Payload, &msgs); err != nil {
					log.Error("live: bad notice", "error", err)
				} else {
					hub.Deliver(msgs...)
				}
			}
			m.Ack()
		}
	}
}
