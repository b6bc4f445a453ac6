// Package live pushes what the read models now say to WebSocket clients.
//
// A projector records the messages an event causes (Record) in the same
// transaction as its read models, in an outbox keyed by channel and global
// position. Once the batch committed, the Announcer delivers them to this
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
	"strconv"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/lockstep/lockstep/bus"
)

// Message is one message pushed on a channel. Payload is the whole JSON
// object a client receives (e.g. {"type":"step_changed","data":{…}}); the hub
// adds "position" on the wire. A channel gets at most one message per event.
type Message struct {
	Channel  string          `json:"channel"`
	Position uint64          `json:"position"`
	Payload  json.RawMessage `json:"payload"`
}

// Frame is the message as sent: Payload with "position" added.
func (m Message) Frame() []byte {
	return WithPosition(m.Payload, m.Position)
}

// WithPosition adds "position": pos to a JSON object.
func WithPosition(payload json.RawMessage, pos uint64) []byte {
	p := []byte(payload)
	// Trim trailing whitespace to find the closing brace.
	end := len(p)
	for end > 0 && (p[end-1] == ' ' || p[end-1] == '\n' || p[end-1] == '\r' || p[end-1] == '\t') {
		end--
	}
	if end < 2 || p[end-1] != '}' {
		return p
	}
	body := p[:end-1]
	out := make([]byte, 0, end+32)
	out = append(out, body...)
	// An empty object has nothing but whitespace between its braces.
	empty := true
	for _, b := range body[1:] {
		if b != ' ' && b != '\n' && b != '\r' && b != '\t' {
			empty = false
			break
		}
	}
	if !empty {
		out = append(out, ',')
	}
	out = append(out, `"position":`...)
	out = strconv.AppendUint(out, pos, 10)
	return append(out, '}')
}

// Record stores messages in the outbox inside a projector's transaction, in
// one statement. Recording the same channel and position again (a rebuild)
// replaces it; within one call the last one wins.
func Record(ctx context.Context, tx pgx.Tx, producer string, msgs ...Message) error {
	if len(msgs) == 0 {
		return nil
	}
	type key struct {
		channel  string
		position uint64
	}
	index := make(map[key]int, len(msgs))
	channels := make([]string, 0, len(msgs))
	positions := make([]int64, 0, len(msgs))
	payloads := make([]string, 0, len(msgs))
	for _, m := range msgs {
		if m.Channel == "" || m.Position == 0 || !json.Valid(m.Payload) {
			return fmt.Errorf("live: invalid message for channel %q at %d", m.Channel, m.Position)
		}
		k := key{m.Channel, m.Position}
		if i, ok := index[k]; ok {
			payloads[i] = string(m.Payload)
			continue
		}
		index[k] = len(channels)
		channels = append(channels, m.Channel)
		positions = append(positions, int64(m.Position))
		payloads = append(payloads, string(m.Payload))
	}
	_, err := tx.Exec(ctx, `INSERT INTO live_messages (channel, position, producer, payload)
		SELECT c, p, $4, d::json FROM unnest($1::text[], $2::bigint[], $3::text[]) AS m(c, p, d)
		ON CONFLICT (channel, position) DO UPDATE SET payload = EXCLUDED.payload, producer = EXCLUDED.producer`,
		channels, positions, payloads, producer)
	if err != nil {
		return fmt.Errorf("live: record %d messages from %s at %d: %w", len(channels), channels[0], positions[0], err)
	}
	return nil
}

// Missed returns the channel's messages after position, oldest first, at most limit.
func Missed(ctx context.Context, q interface {
	Query(context.Context, string, ...any) (pgx.Rows, error)
}, channel string, after uint64, limit int) ([]Message, error) {
	rows, err := q.Query(ctx, `SELECT position, payload::text FROM live_messages WHERE channel = $1 AND position > $2 ORDER BY position LIMIT $3`,
		channel, int64(after), limit)
	if err != nil {
		return nil, fmt.Errorf("live: read %s after %d: %w", channel, after, err)
	}
	defer rows.Close()
	var out []Message
	for rows.Next() {
		var pos int64
		var payload string
		if err := rows.Scan(&pos, &payload); err != nil {
			return nil, err
		}
		out = append(out, Message{Channel: channel, Position: uint64(pos), Payload: json.RawMessage(payload)})
	}
	return out, rows.Err()
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
	rows, err := a.pool.Query(ctx, `SELECT channel, position, payload::text FROM live_messages
		WHERE producer = $1 AND position BETWEEN $2 AND $3 ORDER BY position, channel`, producer, int64(from), int64(to))
	if err != nil {
		a.log.Error("live: read recorded messages", "producer", producer, "error", err)
		return
	}
	var msgs []Message
	for rows.Next() {
		var m Message
		var pos int64
		var payload string
		if err := rows.Scan(&m.Channel, &pos, &payload); err != nil {
			rows.Close()
			a.log.Error("live: scan recorded message", "error", err)
			return
		}
		m.Position, m.Payload = uint64(pos), json.RawMessage(payload)
		msgs = append(msgs, m)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		a.log.Error("live: read recorded messages", "producer", producer, "error", err)
		return
	}
	if len(msgs) == 0 {
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
