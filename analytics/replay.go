package analytics

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"time"

	"github.com/lockstep/lockstep/live"
)

// Channels names the live channels whose messages a replay re-emits: the
// session's student and instructor channels (projections.SessionStudentsChannel
// and SessionInstructorChannel).
type Channels func(sessionID int64) []string

// ReplayMessage is one message a live socket of the classroom showed, with
// the time its event occurred.
type ReplayMessage struct {
	Position   uint64
	Payload    json.RawMessage
	OccurredAt time.Time
}

// Frame is the message exactly as the live socket sent it: its payload with
// its original "position".
func (m ReplayMessage) Frame() []byte { return live.WithPosition(m.Payload, m.Position) }

// ReplayMessages returns up to limit messages of channels with a position
// above after, in position order (then channel), each with its event's
// occurred_at. Payloads are the outbox's bytes, unchanged.
func (r *Reader) ReplayMessages(ctx context.Context, channels []string, after uint64, limit int) ([]ReplayMessage, error) {
	rows, err := r.pool.Query(ctx, `SELECT m.position, m.payload::text, e.occurred_at
		FROM live_messages m JOIN events e ON e.position = m.position
		WHERE m.channel = ANY($1) AND m.position > $2
		ORDER BY m.position, m.channel LIMIT $3`, channels, int64(after), limit)
	if err != nil {
		return nil, fmt.Errorf("read live messages of %v: %w", channels, err)
	}
	defer rows.Close()
	var out []ReplayMessage
	for rows.Next() {
		var m ReplayMessage
		var pos int64
		var payload string
		if err := rows.Scan(&pos, &payload, &m.OccurredAt); err != nil {
			return nil, err
		}
		m.Position, m.Payload, m.OccurredAt = uint64(pos), json.RawMessage(payload), m.OccurredAt.UTC()
		out = append(out, m)
	}
	return out, rows.Err()
}

// replayBefore is the position after which the first message at or after
// instant at comes (for seek by time).
func (r *Reader) replayBefore(ctx context.Context, channels []string, at time.Time) (uint64, error) {
	var pos int64
	err := r.pool.QueryRow(ctx, `SELECT coalesce(max(m.position), 0) FROM live_messages m JOIN events e ON e.position = m.position
		WHERE m.channel = ANY($1) AND e.occurred_at < $2`, channels, at).Scan(&pos)
	if err != nil {
		return 0, fmt.Errorf("seek in %v: %w", channels, err)
	}
	return uint64(pos), nil
}

// Control is a client's message to a replay: {"type":"pause"},
// {"type":"resume"}, {"type":"speed","speed":2}, {"type":"seek","position":N}
// (go on with the first message at or after position N) or
// {"type":"seek","at":"RFC 3339"} (the first message at or after that instant).
type Control struct {
	Type     string     `json:"type"`
	Speed    *float64   `json:"speed,omitempty"`
	Position *uint64    `json:"position,omitempty"`
	At       *time.Time `json:"at,omitempty"`
}

// FinishedMessage is what a replay sends after the last message.
func FinishedMessage(sessionID int64, sent int) []byte {
	return []byte(`{"type":"replay_finished","data":{"session_id":` + strconv.FormatInt(sessionID, 10) + `,"messages":` + strconv.Itoa(sent) + `}}`)
}

// Player re-emits a classroom's live messages with their original gaps
// divided by Speed (0: as fast as possible), then FinishedMessage.
type Player struct {
	Reader    *Reader
	SessionID int64
	Channels  []string
	// Speed divides the original gaps; 0 sends as fast as the client reads.
	Speed float64
	// Send writes one frame (flow-controlled: it may block).
	Send func(ctx context.Context, frame []byte) error
	// Controls are the client's messages (nil: none).
	Controls <-chan Control
	// Linger keeps the player serving controls after it finished (a seek
	// plays again) until ctx ends; otherwise Run returns once finished.
	Linger bool
	// Errors tells the client about a control it could not apply (may be nil).
	Errors func(ctx context.Context, msg string)
}

const replayChunk = 500

// Run plays until the end (or, with Linger, until ctx ends).
func (p *Player) Run(ctx context.Context) error {
	var (
		after     uint64
		buf       []ReplayMessage
		exhausted bool
		finished  bool
		paused    bool
		started   bool
		sent      int
		t0, w0    time.Time // the original time and wall time the schedule is anchored at
		lastOrig  time.Time
		speed     = p.Speed
	)
	cursor := func() time.Time {
		if !started || speed == 0 {
			return lastOrig
		}
		c := t0.Add(time.Duration(float64(time.Since(w0)) * speed))
		if c.Before(lastOrig) {
			return lastOrig
		}
		return c
	}
	rebase := func(at time.Time) {
		if started && speed > 0 {
			t0, w0 = at, time.Now()
		}
	}
	apply := func(c Control) {
		switch c.Type {
		case "pause":
			if !paused {
				paused = true
				lastOrig = cursor()
			}
		case "resume":
			if paused {
				paused = false
				rebase(lastOrig)
			}
		case "speed":
			if c.Speed == nil || *c.Speed < 0 {
				p.fail(ctx, "speed must be a number >= 0")
				return
			}
			cur := cursor()
			speed = *c.Speed
			if started {
				t0, w0 = cur, time.Now()
			}
		case "seek":
			target := uint64(0)
			switch {
			case c.Position != nil:
				if *c.Position > 0 {
					target = *c.Position - 1
				}
			case c.At != nil:
				pos, err := p.Reader.replayBefore(ctx, p.Channels, *c.At)
				if err != nil {
					p.fail(ctx, "could not seek")
					return
				}
				target = pos
			default:
				p.fail(ctx, "seek needs position or at")
				return
			}
			after, buf, exhausted, finished, started = target, nil, false, false, false
		default:
			p.fail(ctx, "unknown control "+strconv.Quote(c.Type))
		}
	}
	for {
		if err := ctx.Err(); err != nil {
			return err
		}
		if len(buf) == 0 && !exhausted {
			msgs, err := p.Reader.ReplayMessages(ctx, p.Channels, after, replayChunk)
			if err != nil {
				return err
			}
			buf, exhausted = msgs, len(msgs) < replayChunk
		}
		if len(buf) == 0 || paused {
			if len(buf) == 0 && !finished {
				finished = true
				if err := p.Send(ctx, FinishedMessage(p.SessionID, sent)); err != nil {
					return err
				}
				if !p.Linger {
					return nil
				}
			}
			select {
			case <-ctx.Done():
				return ctx.Err()
			case c, ok := <-p.Controls:
				if !ok {
					p.Controls = nil
					if finished {
						return nil
					}
					continue
				}
				apply(c)
			}
			continue
		}
		m := buf[0]
		if !started {
			t0, w0, started = m.OccurredAt, time.Now(), true
		}
		if speed > 0 {
			due := w0.Add(time.Duration(float64(m.OccurredAt.Sub(t0)) / speed))
			if wait := time.Until(due); wait > 0 {
				t := time.NewTimer(wait)
				select {
				case <-ctx.Done():
					t.Stop()
					return ctx.Err()
				case c, ok := <-p.Controls:
					t.Stop()
					if !ok {
						p.Controls = nil
					} else {
						apply(c)
					}
					continue
				case <-t.C:
				}
			}
		} else {
			select {
			case c, ok := <-p.Controls:
				if !ok {
					p.Controls = nil
				} else {
					apply(c)
				}
				continue
			default:
			}
		}
		if err := p.Send(ctx, m.Frame()); err != nil {
			return err
		}
		buf, after, lastOrig = buf[1:], m.Position, m.OccurredAt
		sent++
	}
}

func (p *Player) fail(ctx context.Context, msg string) {
	if p.Errors != nil {
		p.Errors(ctx, msg)
	}
}
