// Package outbox is the live_messages table: the messages an event causes on
// the live sockets, recorded by a projector in the same transaction as its
// read models (Record), keyed by channel and global position, and read back
// by the live hub (Recorded after a batch committed, Missed for a client
// reconnecting with ?after=) and by analytics' replay.
//
// It needs nothing but pgx: projectors import it without the socket hub, the
// bus or their drivers (live imports it, not the other way round).
package outbox

import (
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
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

// Querier is what the reads need: a pool, a connection or a transaction.
type Querier interface {
	Query(context.Context, string, ...any) (pgx.Rows, error)
}

// key is a message's identity in the outbox.
type key struct {
	channel  string
	position uint64
}

// Collector keeps what Record stored under a context from Collecting, so
// that once the transaction committed its messages can be delivered as
// recorded, without reading them back. A producer's runner collects only
// when every Record of the transaction takes effect or none does (no
// savepoint rolled back part of it).
type Collector struct {
	mu    sync.Mutex
	msgs  []Message
	index map[key]int
}

type collectorKey struct{}

// Collecting returns ctx carrying a new Collector for the Records made
// under it.
func Collecting(ctx context.Context) (context.Context, *Collector) {
	c := &Collector{index: map[key]int{}}
	return context.WithValue(ctx, collectorKey{}, c), c
}

// CollectorOf is the Collector ctx carries (nil: none).
func CollectorOf(ctx context.Context) *Collector {
	c, _ := ctx.Value(collectorKey{}).(*Collector)
	return c
}

// add keeps m; a message recorded again at the same channel and position
// replaces it, as in the table.
func (c *Collector) add(m Message) {
	c.mu.Lock()
	defer c.mu.Unlock()
	k := key{m.Channel, m.Position}
	if i, ok := c.index[k]; ok {
		c.msgs[i].Payload = m.Payload
		return
	}
	c.index[k] = len(c.msgs)
	c.msgs = append(c.msgs, m)
}

// Messages returns what was recorded, in position then channel order (as
// Recorded returns it).
func (c *Collector) Messages() []Message {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := slices.Clone(c.msgs)
	slices.SortFunc(out, func(a, b Message) int {
		return cmp.Or(cmp.Compare(a.Position, b.Position), cmp.Compare(a.Channel, b.Channel))
	})
	return out
}

// Record stores messages in the outbox inside a projector's transaction, in
// one statement. Recording the same channel and position again (a rebuild)
// replaces it; within one call the last one wins. Under a context from
// Collecting, the collector keeps them too.
func Record(ctx context.Context, tx pgx.Tx, producer string, msgs ...Message) error {
	if len(msgs) == 0 {
		return nil
	}
	index := make(map[key]int, len(msgs))
	channels := make([]string, 0, len(msgs))
	positions := make([]int64, 0, len(msgs))
	payloads := make([]string, 0, len(msgs))
	for _, m := range msgs {
		if m.Channel == "" || m.Position == 0 || !json.Valid(m.Payload) {
			return fmt.Errorf("outbox: invalid message for channel %q at %d", m.Channel, m.Position)
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
		return fmt.Errorf("outbox: record %d messages from %s at %d: %w", len(channels), channels[0], positions[0], err)
	}
	if c := CollectorOf(ctx); c != nil {
		for i := range channels {
			c.add(Message{Channel: channels[i], Position: uint64(positions[i]), Payload: json.RawMessage(payloads[i])})
		}
	}
	return nil
}

// Missed returns the channel's messages after position, oldest first, at most limit.
func Missed(ctx context.Context, q Querier, channel string, after uint64, limit int) ([]Message, error) {
	rows, err := q.Query(ctx, `SELECT position, payload::text FROM live_messages WHERE channel = $1 AND position > $2 ORDER BY position LIMIT $3`,
		channel, int64(after), limit)
	if err != nil {
		return nil, fmt.Errorf("outbox: read %s after %d: %w", channel, after, err)
	}
	return collect(rows, func(m *Message) []any { m.Channel = channel; return nil })
}

// Recorded returns the messages producer recorded for positions in
// [from, to], in position then channel order (what a committed batch caused).
func Recorded(ctx context.Context, q Querier, producer string, from, to uint64) ([]Message, error) {
	rows, err := q.Query(ctx, `SELECT position, payload::text, channel FROM live_messages
		WHERE producer = $1 AND position BETWEEN $2 AND $3 ORDER BY position, channel`, producer, int64(from), int64(to))
	if err != nil {
		return nil, fmt.Errorf("outbox: read what %s recorded in [%d, %d]: %w", producer, from, to, err)
	}
	return collect(rows, func(m *Message) []any { return []any{&m.Channel} })
}

// Timed is a message with the time its event occurred (for a replay).
type Timed struct {
	Message
	OccurredAt time.Time
}

// OnChannels returns up to limit messages of channels with a position above
// after, in position then channel order (a replay of several channels), each
// with its event's occurred_at (UTC). The time is joined from the events
// table on the message's position: the outbox and the PostgreSQL event store
// share the database, and one indexed statement per chunk keeps a replay as
// fast as before.
func OnChannels(ctx context.Context, q Querier, channels []string, after uint64, limit int) ([]Timed, error) {
	rows, err := q.Query(ctx, `SELECT m.position, m.payload::text, m.channel, e.occurred_at
		FROM live_messages m JOIN events e ON e.position = m.position
		WHERE m.channel = ANY($1) AND m.position > $2 ORDER BY m.position, m.channel LIMIT $3`, channels, int64(after), limit)
	if err != nil {
		return nil, fmt.Errorf("outbox: read %v after %d: %w", channels, after, err)
	}
	var at []*time.Time
	msgs, err := collect(rows, func(m *Message) []any {
		t := new(time.Time)
		at = append(at, t)
		return []any{&m.Channel, t}
	})
	if err != nil {
		return nil, err
	}
	out := make([]Timed, len(msgs))
	for i, m := range msgs {
		out[i] = Timed{Message: m, OccurredAt: at[i].UTC()}
	}
	return out, nil
}

// Before is the position after which the first message of channels whose
// event occurred at or after at comes (0: none before it), for a replay's
// seek by time.
func Before(ctx context.Context, q Querier, channels []string, at time.Time) (uint64, error) {
	rows, err := q.Query(ctx, `SELECT coalesce(max(m.position), 0) FROM live_messages m JOIN events e ON e.position = m.position
		WHERE m.channel = ANY($1) AND e.occurred_at < $2`, channels, at)
	if err != nil {
		return 0, fmt.Errorf("outbox: seek in %v: %w", channels, err)
	}
	pos, err := pgx.CollectExactlyOneRow(rows, pgx.RowTo[int64])
	if err != nil {
		return 0, fmt.Errorf("outbox: seek in %v: %w", channels, err)
	}
	return uint64(pos), nil
}

// collect scans position, payload and the extra columns more names.
func collect(rows pgx.Rows, more func(*Message) []any) ([]Message, error) {
	defer rows.Close()
	var out []Message
	for rows.Next() {
		var m Message
		var pos int64
		var payload string
		if err := rows.Scan(append([]any{&pos, &payload}, more(&m)...)...); err != nil {
			return nil, err
		}
		m.Position, m.Payload = uint64(pos), json.RawMessage(payload)
		out = append(out, m)
	}
	return out, rows.Err()
}
