package live

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/olahol/melody"
)

// Close codes Lockstep uses besides the standard ones.
const (
	CloseUnauthorized = 4401 // bad or missing token
	CloseForbidden    = 4403 // wrong role, or not the owner
	CloseNotFound     = 4404 // no such resource
	CloseTooSlow      = 4408 // the client could not keep up: reconnect with ?after=
)

// HubConfig configures a Hub.
type HubConfig struct {
	Pool   *pgxpool.Pool
	Logger *slog.Logger
	// BufferSize is how many messages may wait for one client before it is
	// closed as too slow (default 256).
	BufferSize int
	// PingPeriod and PongWait detect dead connections (default 10s and 25s).
	PingPeriod, PongWait time.Duration
	// WriteWait bounds one write (default 10s).
	WriteWait time.Duration
	// OnConnections is told of every socket opened (+1) or closed (-1), by kind.
	OnConnections func(kind string, delta int)
	// OnDropped is told of every client closed as too slow, by kind.
	OnDropped func(kind string)
}

// Hub holds this process's WebSocket clients by channel.
type Hub struct {
	cfg      HubConfig
	m        *melody.Melody
	log      *slog.Logger
	instance string

	mu       sync.RWMutex
	channels map[string]map[*client]struct{}
}

// Subscription says what a socket receives.
type Subscription struct {
	// Channel is the outbox channel the socket follows ("" for a socket that
	// only gets what OnOpen sends, e.g. a replay).
	Channel string
	// Kind labels the socket in metrics ("student", "instructor", …).
	Kind string
	// After is the client's ?after=: it gets every message after it and no
	// snapshot. Nil: the snapshot first.
	After *uint64
	// Producer is the projector whose checkpoint the snapshot reflects.
	Producer string
	// Snapshot returns the on-connect message (a JSON object), read in a
	// REPEATABLE READ transaction that also reads Producer's checkpoint; the
	// message is sent with that checkpoint as its position.
	Snapshot func(ctx context.Context, tx pgx.Tx) (json.RawMessage, error)
	// OnOpen runs once the socket is open (in its own goroutine, after the
	// snapshot or the missed messages were queued).
	OnOpen func(c *Conn)
	// OnClose runs when the socket closed.
	OnClose func(c *Conn)
	// OnMessage receives the client's text messages.
	OnMessage func(c *Conn, data []byte)
	// Keys are values the handlers may read back with Conn.Get.
	Keys map[string]any
}

// NewHub returns a Hub.
func NewHub(cfg HubConfig) *Hub {
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.BufferSize <= 1 {
		cfg.BufferSize = 256
	}
	if cfg.PingPeriod <= 0 {
		cfg.PingPeriod = 10 * time.Second
	}
	if cfg.PongWait <= cfg.PingPeriod {
		cfg.PongWait = cfg.PingPeriod*2 + 5*time.Second
	}
	if cfg.WriteWait <= 0 {
		cfg.WriteWait = 10 * time.Second
	}
	m := melody.New()
	m.Config.MessageBufferSize = cfg.BufferSize
	m.Config.MaxMessageSize = 4096
	m.Config.PingPeriod = cfg.PingPeriod
	m.Config.PongWait = cfg.PongWait
	m.Config.WriteWait = cfg.WriteWait
	// Tokens travel in the Authorization header or ?token=, never in cookies,
	// so a page on another origin cannot ride on a user's credentials: every
	// origin may connect (phones' apps and the web dashboard alike).
	m.Upgrader.CheckOrigin = func(*http.Request) bool { return true }
	h := &Hub{cfg: cfg, m: m, log: cfg.Logger, instance: uuid.NewString(), channels: map[string]map[*client]struct{}{}}
	m.HandleConnect(h.connected)
	m.HandleDisconnect(h.disconnected)
	m.HandleSentMessage(func(s *melody.Session, _ []byte) {
		if c := clientOf(s); c != nil {
			c.sent()
		}
	})
	m.HandleMessage(func(s *melody.Session, data []byte) {
		if c := clientOf(s); c != nil && c.sub.OnMessage != nil {
			c.sub.OnMessage(&Conn{c: c}, data)
		}
	})
	m.HandleError(func(s *melody.Session, err error) {
		if errors.Is(err, melody.ErrMessageBufferFull) {
			// Cannot happen with the flow control below; if it does, never
			// let a client miss a message silently.
			if c := clientOf(s); c != nil {
				c.overflow()
			}
		}
	})
	return h
}

// Close closes every socket.
func (h *Hub) Close() error { return h.m.Close() }

// Len is the number of open sockets.
func (h *Hub) Len() int { return h.m.Len() }

const keyClient = "live.client"
const keyReject = "live.reject"

func clientOf(s *melody.Session) *client {
	v, ok := s.Get(keyClient)
	if !ok {
		return nil
	}
	c, _ := v.(*client)
	return c
}

// Serve upgrades the request and runs the socket until it closes.
func (h *Hub) Serve(w http.ResponseWriter, r *http.Request, sub Subscription) error {
	c := &client{hub: h, sub: sub, limit: h.cfg.BufferSize - 1, sentCh: make(chan struct{}, 1), replaying: true}
	if sub.After != nil {
		c.last = *sub.After
	}
	return h.m.HandleRequestWithKeys(w, r, map[string]any{keyClient: c})
}

// Reject upgrades the request and closes it at once with code and reason
// (4401 bad token, 4403 not allowed, 4404 unknown resource).
func (h *Hub) Reject(w http.ResponseWriter, r *http.Request, code int, reason string) error {
	return h.m.HandleRequestWithKeys(w, r, map[string]any{keyReject: rejection{code, reason}})
}

type rejection struct {
	code   int
	reason string
}

func (h *Hub) connected(s *melody.Session) {
	if v, ok := s.Get(keyReject); ok {
		rej := v.(rejection)
		_ = s.CloseWithMsg(melody.FormatCloseMessage(rej.code, rej.reason))
		return
	}
	c := clientOf(s)
	if c == nil {
		return
	}
	c.s = s
	if h.cfg.OnConnections != nil {
		h.cfg.OnConnections(c.sub.Kind, 1)
	}
	if c.sub.Channel != "" {
		h.mu.Lock()
		set := h.channels[c.sub.Channel]
		if set == nil {
			set = map[*client]struct{}{}
			h.channels[c.sub.Channel] = set
		}
		set[c] = struct{}{}
		h.mu.Unlock()
	}
	ctx, cancel := context.WithCancel(context.Background())
	c.cancel = cancel
	go func() {
		if err := c.catchUp(ctx); err != nil {
			if ctx.Err() == nil {
				h.log.Warn("live: catching a socket up failed; closing it", "channel", c.sub.Channel, "error", err)
				c.closeWith(websocketInternalError, "could not load state; reconnect")
			}
			return
		}
		if c.sub.OnOpen != nil {
			c.sub.OnOpen(&Conn{c: c})
		}
	}()
}

const websocketInternalError = 1011

func (h *Hub) disconnected(s *melody.Session) {
	c := clientOf(s)
	if c == nil {
		return
	}
	c.mu.Lock()
	c.closed = true
	c.mu.Unlock()
	if c.cancel != nil {
		c.cancel()
	}
	if c.sub.Channel != "" {
		h.mu.Lock()
		if set := h.channels[c.sub.Channel]; set != nil {
			delete(set, c)
			if len(set) == 0 {
				delete(h.channels, c.sub.Channel)
			}
		}
		h.mu.Unlock()
	}
	if h.cfg.OnConnections != nil {
		h.cfg.OnConnections(c.sub.Kind, -1)
	}
	if c.sub.OnClose != nil {
		c.sub.OnClose(&Conn{c: c})
	}
}

// Deliver pushes messages to this process's sockets on their channels. It
// never blocks on a client: one that cannot keep up is closed (it reconnects
// with ?after= and gets what it missed).
func (h *Hub) Deliver(msgs ...Message) {
	for _, m := range msgs {
		h.mu.RLock()
		set := h.channels[m.Channel]
		clients := make([]*client, 0, len(set))
		for c := range set {
			clients = append(clients, c)
		}
		h.mu.RUnlock()
		if len(clients) == 0 {
			continue
		}
		frame := m.Frame()
		for _, c := range clients {
			c.deliver(m.Position, frame)
		}
	}
}

// Subscribers is the number of this process's sockets on a channel.
func (h *Hub) Subscribers(channel string) int {
	h.mu.RLock()
	defer h.mu.RUnlock()
	return len(h.channels[channel])
}

// ParseAfter reads ?after= (nil when absent).
func ParseAfter(r *http.Request) (*uint64, error) {
	s := r.URL.Query().Get("after")
	if s == "" {
		return nil, nil
	}
	v, err := strconv.ParseUint(s, 10, 64)
	if err != nil {
		return nil, fmt.Errorf("after must be a non-negative integer position")
	}
	return &v, nil
}

type pending struct {
	pos   uint64
	frame []byte
}

// client is one socket. Every write goes through it, under its lock, so that
// positions never go down and no more than limit messages wait for it.
type client struct {
	hub    *Hub
	sub    Subscription
	s      *melody.Session
	cancel context.CancelFunc
	limit  int
	sentCh chan struct{}

	mu        sync.Mutex
	replaying bool
	pending   []pending
	last      uint64
	inflight  int
	closed    bool
}

const maxPending = 10000

func (c *client) sent() {
	c.mu.Lock()
	if c.inflight > 0 {
		c.inflight--
	}
	c.mu.Unlock()
	select {
	case c.sentCh <- struct{}{}:
	default:
	}
}

// deliver is the live path: never blocks.
func (c *client) deliver(pos uint64, frame []byte) {
	c.mu.Lock()
	defer c.mu.Unlock()
	switch {
	case c.closed:
	case c.replaying:
		if len(c.pending) >= maxPending {
			c.overflowLocked()
			return
		}
		c.pending = append(c.pending, pending{pos, frame})
	case pos <= c.last:
		// Already sent (a snapshot or a replay covered it).
	case c.inflight >= c.limit:
		c.overflowLocked()
	default:
		c.writeLocked(pos, frame)
	}
}

func (c *client) writeLocked(pos uint64, frame []byte) {
	c.inflight++
	if pos > c.last {
		c.last = pos
	}
	_ = c.s.Write(frame)
}

// sendBlocking writes one message, waiting while the client's buffer is full.
func (c *client) sendBlocking(ctx context.Context, pos uint64, frame []byte, always bool) error {
	for {
		c.mu.Lock()
		if c.closed {
			c.mu.Unlock()
			return errClosed
		}
		if !always && pos <= c.last {
			c.mu.Unlock()
			return nil
		}
		if c.inflight < c.limit {
			c.writeLocked(pos, frame)
			c.mu.Unlock()
			return nil
		}
		c.mu.Unlock()
		t := time.NewTimer(c.hub.cfg.WriteWait)
		select {
		case <-ctx.Done():
			t.Stop()
			return ctx.Err()
		case <-c.sentCh:
			t.Stop()
		case <-t.C:
			c.overflow()
			return errClosed
		}
	}
}

var errClosed = errors.New("live: socket closed")

// catchUp sends the snapshot or the missed messages, then what arrived
// meanwhile, then switches the client to live delivery.
func (c *client) catchUp(ctx context.Context) error {
	if c.sub.Channel == "" {
		c.mu.Lock()
		c.replaying = false
		c.mu.Unlock()
		return nil
	}
	if c.sub.After == nil && c.sub.Snapshot != nil {
		payload, pos, err := c.snapshot(ctx)
		if err != nil {
			return err
		}
		if err := c.sendBlocking(ctx, pos, WithPosition(payload, pos), true); err != nil {
			return err
		}
	}
	for {
		c.mu.Lock()
		after := c.last
		c.mu.Unlock()
		missed, err := Missed(ctx, c.hub.cfg.Pool, c.sub.Channel, after, 500)
		if err != nil {
			return err
		}
		for _, m := range missed {
			if err := c.sendBlocking(ctx, m.Position, m.Frame(), false); err != nil {
				return err
			}
		}
		if len(missed) < 500 {
			break
		}
	}
	for {
		c.mu.Lock()
		if c.closed {
			c.mu.Unlock()
			return errClosed
		}
		if len(c.pending) == 0 {
			c.replaying = false
			c.mu.Unlock()
			return nil
		}
		slices.SortStableFunc(c.pending, func(a, b pending) int { return cmpUint(a.pos, b.pos) })
		p := c.pending[0]
		if p.pos <= c.last {
			c.pending = c.pending[1:]
			c.mu.Unlock()
			continue
		}
		if c.inflight < c.limit {
			c.pending = c.pending[1:]
			c.writeLocked(p.pos, p.frame)
			c.mu.Unlock()
			continue
		}
		c.mu.Unlock()
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-c.sentCh:
		case <-time.After(c.hub.cfg.WriteWait):
			c.overflow()
			return errClosed
		}
	}
}

func cmpUint(a, b uint64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

func (c *client) snapshot(ctx context.Context) (json.RawMessage, uint64, error) {
	tx, err := c.hub.cfg.Pool.BeginTx(ctx, pgx.TxOptions{IsoLevel: pgx.RepeatableRead, AccessMode: pgx.ReadOnly})
	if err != nil {
		return nil, 0, err
	}
	defer tx.Rollback(context.WithoutCancel(ctx))
	var pos int64
	err = tx.QueryRow(ctx, `SELECT position FROM projection_checkpoints WHERE name = $1`, c.sub.Producer).Scan(&pos)
	if err != nil && !errors.Is(err, pgx.ErrNoRows) {
		return nil, 0, fmt.Errorf("read checkpoint of %s: %w", c.sub.Producer, err)
	}
	payload, err := c.sub.Snapshot(ctx, tx)
	if err != nil {
		return nil, 0, err
	}
	return payload, uint64(pos), tx.Commit(ctx)
}

func (c *client) overflow() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.overflowLocked()
}

// overflowLocked closes a client that cannot keep up, with a close code that
// tells it to reconnect with ?after=. One buffer slot is always kept free for
// this close frame.
func (c *client) overflowLocked() {
	if c.closed {
		return
	}
	c.closed = true
	if c.hub.cfg.OnDropped != nil {
		c.hub.cfg.OnDropped(c.sub.Kind)
	}
	_ = c.s.CloseWithMsg(melody.FormatCloseMessage(CloseTooSlow, "too slow: reconnect with ?after="+strconv.FormatUint(c.last, 10)))
}

func (c *client) closeWith(code int, reason string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return
	}
	c.closed = true
	_ = c.s.CloseWithMsg(melody.FormatCloseMessage(code, reason))
}

// Conn is an open socket, as its handlers see it.
type Conn struct{ c *client }

// Request is the upgrade request.
func (c *Conn) Request() *http.Request { return c.c.s.Request }

// Get returns a value of the subscription's Keys.
func (c *Conn) Get(key string) (any, bool) {
	v, ok := c.c.sub.Keys[key]
	return v, ok
}

// Send writes a JSON object to this socket alone, waiting while its buffer
// is full (for sockets that produce their own stream, like a replay).
func (c *Conn) Send(ctx context.Context, payload []byte) error {
	return c.c.sendBlocking(ctx, 0, payload, true)
}

// Close closes the socket with a close code and reason.
func (c *Conn) Close(code int, reason string) { c.c.closeWith(code, reason) }
