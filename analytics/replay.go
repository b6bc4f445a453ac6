package analytics

import (
	"context"
	"strconv"
	"time"

	"github.com/lockstep/lockstep/outbox"
)

// Channels names the live channels whose messages a replay re-emits: the
// session's student and instructor channels (projections.SessionStudentsChannel
// and SessionInstructorChannel).
type Channels func(sessionID int64) []string

// ReplayMessage is one message a live socket of the classroom showed, with
// the time its event occurred; Frame is the message exactly as the live
// socket sent it (its payload with its original "position").
type ReplayMessage = outbox.Timed

// ReplayMessages returns up to limit messages of channels with a position
// above after, in position order (then channel), each with its event's
// occurred_at. Payloads are the outbox's bytes, unchanged.
func (r *Reader) ReplayMessages(ctx context.Context, channels []string, after uint64, limit int) ([]ReplayMessage, error) {
	return outbox.OnChannels(ctx, r.pool, channels, after, limit)
}

// replayBefore is the position after which the first message at or after
// instant at comes (for seek by time).
func (r *Reader) replayBefore(ctx context.Context, channels []string, at time.Time) (uint64, error) {
	return outbox.Before(ctx, r.pool, channels, at)
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
	pb := &playback{p: p, speed: p.Speed}
	for {
		if err := ctx.Err(); err != nil {
			return err
		}
		if err := pb.fill(ctx); err != nil {
			return err
		}
		if len(pb.buf) == 0 || pb.paused {
			if stop, err := pb.idle(ctx); stop || err != nil {
				return err
			}
			continue
		}
		m := pb.buf[0]
		if send, err := pb.pace(ctx, m); !send || err != nil {
			if err != nil {
				return err
			}
			continue // a control came first: look again
		}
		if err := p.Send(ctx, m.Frame()); err != nil {
			return err
		}
		pb.buf, pb.after, pb.lastOrig = pb.buf[1:], m.Position, m.OccurredAt
		pb.sent++
	}
}

// playback is a Player's state while it runs: where it is in the channel's
// messages, and the schedule that maps original times to wall times.
type playback struct {
	p         *Player
	after     uint64          // the last position sent (or sought before)
	buf       []ReplayMessage // read, not sent yet
	exhausted bool            // the last read reached the end
	finished  bool            // the finished message went out
	paused    bool
	started   bool
	sent      int
	t0, w0    time.Time // the original time and wall time the schedule is anchored at
	lastOrig  time.Time // original time of the last message sent
	speed     float64
}

// fill reads the next chunk when the buffer is empty and more may come.
func (pb *playback) fill(ctx context.Context) error {
	if len(pb.buf) > 0 || pb.exhausted {
		return nil
	}
	msgs, err := pb.p.Reader.ReplayMessages(ctx, pb.p.Channels, pb.after, replayChunk)
	if err != nil {
		return err
	}
	pb.buf, pb.exhausted = msgs, len(msgs) < replayChunk
	return nil
}

// idle runs while nothing is to be sent (the end, or paused): at the end it
// says so once (and, without Linger, stops), then it waits for a control.
func (pb *playback) idle(ctx context.Context) (stop bool, err error) {
	p := pb.p
	if len(pb.buf) == 0 && !pb.finished {
		pb.finished = true
		if err := p.Send(ctx, FinishedMessage(p.SessionID, pb.sent)); err != nil {
			return true, err
		}
		if !p.Linger {
			return true, nil
		}
	}
	select {
	case <-ctx.Done():
		return true, ctx.Err()
	case c, ok := <-p.Controls:
		pb.take(ctx, c, ok)
		return !ok && pb.finished, nil
	}
}

// pace waits until m is due on the schedule; a control that comes first is
// applied instead (send == false). At speed 0 nothing is due later: only a
// control already waiting comes first.
func (pb *playback) pace(ctx context.Context, m ReplayMessage) (send bool, err error) {
	if !pb.started {
		pb.t0, pb.w0, pb.started = m.OccurredAt, time.Now(), true
	}
	if pb.speed == 0 {
		select {
		case c, ok := <-pb.p.Controls:
			pb.take(ctx, c, ok)
			return false, nil
		default:
			return true, nil
		}
	}
	wait := time.Until(pb.w0.Add(time.Duration(float64(m.OccurredAt.Sub(pb.t0)) / pb.speed)))
	if wait <= 0 {
		return true, nil
	}
	t := time.NewTimer(wait)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false, ctx.Err()
	case c, ok := <-pb.p.Controls:
		pb.take(ctx, c, ok)
		return false, nil
	case <-t.C:
		return true, nil
	}
}

// take applies a control received from the client (ok false: the client
// sends no more).
func (pb *playback) take(ctx context.Context, c Control, ok bool) {
	if !ok {
		pb.p.Controls = nil
		return
	}
	pb.control(ctx, c)
}

// cursor is the original time the schedule is at now.
func (pb *playback) cursor() time.Time {
	if !pb.started || pb.speed == 0 {
		return pb.lastOrig
	}
	c := pb.t0.Add(time.Duration(float64(time.Since(pb.w0)) * pb.speed))
	if c.Before(pb.lastOrig) {
		return pb.lastOrig
	}
	return c
}

// rebase anchors the schedule at original time at, now.
func (pb *playback) rebase(at time.Time) {
	if pb.started && pb.speed > 0 {
		pb.t0, pb.w0 = at, time.Now()
	}
}

// control applies a client's control message.
func (pb *playback) control(ctx context.Context, c Control) {
	p := pb.p
	switch c.Type {
	case "pause":
		if !pb.paused {
			pb.paused = true
			pb.lastOrig = pb.cursor()
		}
	case "resume":
		if pb.paused {
			pb.paused = false
			pb.rebase(pb.lastOrig)
		}
	case "speed":
		if c.Speed == nil || *c.Speed < 0 {
			p.fail(ctx, "speed must be a number >= 0")
			return
		}
		cur := pb.cursor()
		pb.speed = *c.Speed
		if pb.started {
			pb.t0, pb.w0 = cur, time.Now()
		}
	case "seek":
		target, ok := pb.seekTarget(ctx, c)
		if !ok {
			return
		}
		pb.after, pb.buf, pb.exhausted, pb.finished, pb.started = target, nil, false, false, false
	default:
		p.fail(ctx, "unknown control "+strconv.Quote(c.Type))
	}
}

// seekTarget is the position a seek plays after (ok false: refused, and
// the client told why).
func (pb *playback) seekTarget(ctx context.Context, c Control) (uint64, bool) {
	p := pb.p
	switch {
	case c.Position != nil:
		if *c.Position > 0 {
			return *c.Position - 1, true
		}
		return 0, true
	case c.At != nil:
		pos, err := p.Reader.replayBefore(ctx, p.Channels, *c.At)
		if err != nil {
			p.fail(ctx, "could not seek")
			return 0, false
		}
		return pos, true
	default:
		p.fail(ctx, "seek needs position or at")
		return 0, false
	}
}

func (p *Player) fail(ctx context.Context, msg string) {
	if p.Errors != nil {
		p.Errors(ctx, msg)
	}
}
