package live

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"net"
	"net/http"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/google/uuid"
	"github.com/gorilla/websocket"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/lockstep/lockstep/domain"
	"github.com/lockstep/lockstep/outbox"
)

// Close codes Lockstep uses besides the standard ones.
const (
	CloseUnauthorized = 4401 // bad or missing token
	CloseForbidden    = 4403 // wrong role, or not the owner
	CloseNotFound     = 4404 // no such resource
	CloseTooSlow      = 4408 // the client could not keep up: reconnect with ?after=
)

// CloseGoingAway is the standard code of a socket closed because the server
// shuts down; its reason tells the client to reconnect with ?after=.
const CloseGoingAway = websocket.CloseGoingAway

// DefaultMaxQueueBytes is a socket's default byte budget: 16 MiB, room for a
// burst of 10,000 student_progress messages (~250 bytes each) several times
// over.
const DefaultMaxQueueBytes = 16 << 20

// HubConfig configures a Hub.
type HubConfig struct {
	Pool   *pgxpool.Pool
	Logger *slog.Logger
	// MaxQueueBytes is the byte budget of one socket: the bytes of messages
	// waiting for it (not yet taken by the kernel) beyond which it is closed
	// as too slow (default DefaultMaxQueueBytes).
	MaxQueueBytes int
	// PingPeriod and PongWait detect dead connections (default 10s and 25s).
	PingPeriod, PongWait time.Duration
	// WriteWait is how long the kernel may refuse a socket's writes — not a
	// byte accepted — before the socket is closed as too slow (default 10s).
	WriteWait time.Duration
	// OnConnections is told of every socket opened (+1) or closed (-1), by kind.
	OnConnections func(kind string, delta int)
	// OnDropped is told of every client closed as too slow, by kind.
	OnDropped func(kind string)
	// Account, when set, names the account behind each socket about to open
	// (see CheckAccount); a non-zero code refuses it with that close code.
	Account func(r *http.Request) (actor domain.Actor, code int, reason string)
}

// Hub holds this process's WebSocket clients by channel.
//
// Each socket has its own writer goroutine and queue. Flow control counts
// bytes and time, never messages: a socket is too slow when the bytes waiting
// for it exceed MaxQueueBytes, or when the kernel accepted none of its bytes
// for WriteWait. Then its queue is dropped, the frame being written is
// finished and a close frame 4408 "too slow: reconnect with ?after=N" follows
// it, N being the position of the last message the client will have read. A
// writer takes everything queued at once and writes it with one system call
// (as many frames as there are messages, or one batch frame with ?batch=).
//
// gorilla/websocket upgrades the connection and reads from it; the writer
// writes frames itself (melody and gorilla write one message per system call
// and melody bounds its queue by message count). gorilla's own control
// writes (answers to pings, the close echo) are diverted into the writer.
type Hub struct {
	cfg      HubConfig
	log      *slog.Logger
	instance string
	upgrader websocket.Upgrader

	mu       sync.RWMutex
	channels map[string]map[*client]struct{}
	clients  map[*client]struct{}
	closing  bool
	conns    sync.WaitGroup
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
	// Batch is the client's ?batch=: when > 0, messages go out at most that
	// often, together, as one {"type":"batch"} frame.
	Batch time.Duration
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
	if cfg.MaxQueueBytes <= 0 {
		cfg.MaxQueueBytes = DefaultMaxQueueBytes
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
	return &Hub{
		cfg: cfg, log: cfg.Logger, instance: uuid.NewString(),
		// Tokens travel in the Authorization header or ?token=, never in
		// cookies, so a page on another origin cannot ride on a user's
		// credentials: every origin may connect (phones' apps and the web
		// dashboard alike).
		upgrader: websocket.Upgrader{CheckOrigin: func(*http.Request) bool { return true }},
		channels: map[string]map[*client]struct{}{},
		clients:  map[*client]struct{}{},
	}
}

// ErrClosed is returned by Serve and Reject once the hub is closed.
var ErrClosed = errors.New("live: hub closed")

// Close closes every socket with 1001 "going away" and a reason telling the
// client to reconnect with ?after=, waiting at most 5 seconds for them to go.
func (h *Hub) Close() error {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	return h.Shutdown(ctx)
}

// Shutdown refuses new sockets and closes every open one with 1001 "going
// away" and a reason telling the client to reconnect with ?after=. It waits
// until they are gone or ctx ends; then it cuts the ones left.
func (h *Hub) Shutdown(ctx context.Context) error {
	h.mu.Lock()
	if h.closing {
		h.mu.Unlock()
		return nil
	}
	h.closing = true
	clients := slices.Collect(maps.Keys(h.clients))
	h.mu.Unlock()
	for _, c := range clients {
		c.closeWith(CloseGoingAway, "server shutting down: reconnect", true)
	}
	done := make(chan struct{})
	go func() { h.conns.Wait(); close(done) }()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
	}
	h.mu.RLock()
	for c := range h.clients {
		_ = c.nc.Close()
	}
	h.mu.RUnlock()
	return ctx.Err()
}

// Len is the number of open sockets.
func (h *Hub) Len() int {
	h.mu.RLock()
	defer h.mu.RUnlock()
	return len(h.clients)
}

// enter counts a socket about to open; false once the hub is closing.
func (h *Hub) enter() bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.closing {
		return false
	}
	h.conns.Add(1)
	return true
}

// Serve upgrades the request and runs the socket until it closes.
func (h *Hub) Serve(w http.ResponseWriter, r *http.Request, sub Subscription) error {
	if !h.enter() {
		http.Error(w, "server shutting down", http.StatusServiceUnavailable)
		return ErrClosed
	}
	defer h.conns.Done()
	actor, code, reason := h.account(r)
	if code != 0 {
		return h.reject(w, r, code, reason)
	}
	wc := &wire{}
	conn, err := h.upgrader.Upgrade(hijacker{w, wc}, r, nil)
	if err != nil {
		return err
	}
	c := &client{
		hub: h, sub: sub, conn: conn, nc: wc.Conn, wire: wc, req: r, batch: sub.Batch, replaying: true, actor: actor,
		wake: make(chan struct{}, 1), space: make(chan struct{}, 1),
		readerDone: make(chan struct{}), writerDone: make(chan struct{}),
	}
	if sub.After != nil {
		c.last = *sub.After
	}
	c.serve()
	return nil
}

// Reject upgrades the request and closes it at once with code and reason
// (4401 bad token, 4403 not allowed, 4404 unknown resource).
func (h *Hub) Reject(w http.ResponseWriter, r *http.Request, code int, reason string) error {
	if !h.enter() {
		http.Error(w, "server shutting down", http.StatusServiceUnavailable)
		return ErrClosed
	}
	defer h.conns.Done()
	return h.reject(w, r, code, reason)
}

func (h *Hub) reject(w http.ResponseWriter, r *http.Request, code int, reason string) error {
	conn, err := h.upgrader.Upgrade(w, r, nil)
	if err != nil {
		return err
	}
	defer conn.Close()
	if err := conn.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(code, reason), time.Now().Add(h.cfg.WriteWait)); err != nil {
		return nil
	}
	// Wait briefly for the client's close frame, so that ours is not lost
	// to a reset.
	_ = conn.SetReadDeadline(time.Now().Add(2 * time.Second))
	for {
		if _, _, err := conn.NextReader(); err != nil {
			return nil
		}
	}
}

// Deliver pushes messages to this process's sockets on their channels. It
// never blocks on a client: one whose byte budget overflows is closed (it
// reconnects with ?after= and gets what it missed).
func (h *Hub) Deliver(msgs ...Message) {
	// A socket follows one channel: each channel's messages, in order, go
	// to its sockets in one call each.
	type group struct {
		clients []*client
		items   []item
	}
	groups := map[string]*group{}
	var order []*group
	h.mu.RLock()
	for i := range msgs {
		m := &msgs[i]
		g, seen := groups[m.Channel]
		if !seen {
			set := h.channels[m.Channel]
			if len(set) > 0 {
				g = &group{clients: make([]*client, 0, len(set))}
				for c := range set {
					g.clients = append(g.clients, c)
				}
				order = append(order, g)
			}
			groups[m.Channel] = g
		}
		if g != nil {
			g.items = append(g.items, item{m.Position, m.Frame()})
		}
	}
	h.mu.RUnlock()
	for _, g := range order {
		for _, c := range g.clients {
			c.deliver(g.items)
		}
	}
}

// Subscribers is the number of this process's sockets on a channel.
func (h *Hub) Subscribers(channel string) int {
	h.mu.RLock()
	defer h.mu.RUnlock()
	return len(h.channels[channel])
}

// register adds a socket; one that opens while the hub shuts down is closed
// at once, like the others.
func (h *Hub) register(c *client) {
	h.mu.Lock()
	if h.closing {
		c.closeWith(CloseGoingAway, "server shutting down: reconnect", true)
	}
	h.clients[c] = struct{}{}
	if ch := c.sub.Channel; ch != "" {
		set := h.channels[ch]
		if set == nil {
			set = map[*client]struct{}{}
			h.channels[ch] = set
		}
		set[c] = struct{}{}
	}
	h.mu.Unlock()
}

func (h *Hub) unregister(c *client) {
	h.mu.Lock()
	delete(h.clients, c)
	if ch := c.sub.Channel; ch != "" {
		if set := h.channels[ch]; set != nil {
			delete(set, c)
			if len(set) == 0 {
				delete(h.channels, ch)
			}
		}
	}
	h.mu.Unlock()
}

// wire is a socket's connection. After the upgrade only the client's writer
// writes to it; gorilla's own writes (pong answers, the close echo, a close
// for a protocol error) are handed to the writer instead, and its write
// deadlines are ignored.
type wire struct {
	net.Conn
	mu     sync.Mutex
	divert func(frame []byte)
}

func (w *wire) Write(p []byte) (int, error) {
	w.mu.Lock()
	d := w.divert
	w.mu.Unlock()
	if d == nil {
		return w.Conn.Write(p)
	}
	d(append([]byte(nil), p...))
	return len(p), nil
}

func (w *wire) SetWriteDeadline(t time.Time) error {
	w.mu.Lock()
	diverted := w.divert != nil
	w.mu.Unlock()
	if diverted {
		return nil
	}
	return w.Conn.SetWriteDeadline(t)
}

func (w *wire) SetDeadline(t time.Time) error {
	if err := w.SetWriteDeadline(t); err != nil {
		return err
	}
	return w.Conn.SetReadDeadline(t)
}

// hijacker hands gorilla the wire instead of the bare connection.
type hijacker struct {
	http.ResponseWriter
	wire *wire
}

func (h hijacker) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	hj, ok := h.ResponseWriter.(http.Hijacker)
	if !ok {
		return nil, nil, errors.New("live: response does not implement http.Hijacker")
	}
	nc, brw, err := hj.Hijack()
	if err != nil {
		return nil, nil, err
	}
	h.wire.Conn = nc
	return h.wire, brw, nil
}

type item struct {
	pos   uint64
	frame []byte
}

// mark is where a frame ends in a write buffer, and the position it carries.
type mark struct {
	end int
	pos uint64
}

// client is one socket. Messages wait in its queue until its writer takes
// them; positions never go down.
type client struct {
	hub   *Hub
	sub   Subscription
	conn  *websocket.Conn
	nc    net.Conn // the bare connection the writer writes to
	wire  *wire
	req   *http.Request
	batch time.Duration
	actor domain.Actor // the account behind the socket (HubConfig.Account)

	wake       chan struct{} // the writer has something to do
	space      chan struct{} // the writer took bytes off the queue
	readerDone chan struct{}
	writerDone chan struct{}

	mu           sync.Mutex
	replaying    bool   // catching up: live messages wait in pending
	pending      []item // live messages that arrived while catching up
	pendingBytes int
	queue        []item
	queueBytes   int
	control      [][]byte // control frames to write before the next messages
	last         uint64   // highest position queued
	written      uint64   // position of the last message written whole to the kernel
	batchPos     uint64   // position of the last batch frame
	closed       bool     // no more messages are taken
	closeFrame   []byte   // a ready close frame (gorilla's), or nil
	closeCode    int      // a close to send after the frame being written; 0: none
	closeReason  string
	closeResume  bool // add "with ?after=<written>" to the reason
	ended        bool // the connection is gone: the writer stops
}

func (c *client) signal(ch chan struct{}) {
	select {
	case ch <- struct{}{}:
	default:
	}
}

// serve runs the socket: the writer in its own goroutine, the catch-up in
// another, the reader here.
func (c *client) serve() {
	h := c.hub
	c.conn.SetReadLimit(4096)
	_ = c.conn.SetReadDeadline(time.Now().Add(h.cfg.PongWait))
	c.conn.SetPongHandler(func(string) error {
		return c.conn.SetReadDeadline(time.Now().Add(h.cfg.PongWait))
	})
	c.wire.mu.Lock()
	c.wire.divert = c.diverted
	c.wire.mu.Unlock()

	h.register(c)
	if h.cfg.OnConnections != nil {
		h.cfg.OnConnections(c.sub.Kind, 1)
	}
	go c.writeLoop()

	ctx, cancel := context.WithCancel(context.Background())
	go func() {
		if err := c.catchUp(ctx); err != nil {
			if ctx.Err() == nil && !errors.Is(err, errClosed) {
				h.log.Warn("live: catching a socket up failed; closing it", "channel", c.sub.Channel, "error", err)
				c.closeWith(websocketInternalError, "could not load state; reconnect", false)
			}
			return
		}
		if c.sub.OnOpen != nil {
			c.sub.OnOpen(&Conn{c: c})
		}
	}()

	for {
		t, data, err := c.conn.ReadMessage()
		if err != nil {
			break
		}
		if t == websocket.TextMessage && c.sub.OnMessage != nil {
			c.sub.OnMessage(&Conn{c: c}, data)
		}
	}

	// The client closed (its close is echoed), the connection failed, or our
	// writer closed it.
	c.mu.Lock()
	c.closed = true
	if c.closeCode == 0 && c.closeFrame == nil {
		c.ended = true
	}
	ended := c.ended
	c.mu.Unlock()
	cancel()
	close(c.readerDone)
	if ended {
		_ = c.nc.Close()
	}
	c.signal(c.wake)
	<-c.writerDone
	_ = c.nc.Close()

	h.unregister(c)
	if h.cfg.OnConnections != nil {
		h.cfg.OnConnections(c.sub.Kind, -1)
	}
	if c.sub.OnClose != nil {
		c.sub.OnClose(&Conn{c: c})
	}
}

// diverted takes a frame gorilla wrote: a pong answer goes out before the
// next messages; a close frame (the echo of the client's, or one for a
// protocol error) ends the socket.
func (c *client) diverted(frame []byte) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(frame) > 0 && frame[0]&0x0f == websocket.CloseMessage {
		if c.closeCode != 0 || c.closeFrame != nil {
			return
		}
		c.closed = true
		c.dropLocked()
		c.closeFrame = frame
	} else {
		c.control = append(c.control, frame)
	}
	c.signal(c.wake)
}

const websocketInternalError = 1011

// deliver is the live path: it never blocks.
func (c *client) deliver(items []item) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return
	}
	n := 0
	for _, it := range items {
		n += len(it.frame)
	}
	if c.queueBytes+c.pendingBytes+n > c.hub.cfg.MaxQueueBytes {
		c.tooSlowLocked()
		return
	}
	if c.replaying {
		c.pending = append(c.pending, items...)
		c.pendingBytes += n
		return
	}
	for _, it := range items {
		if it.pos <= c.last {
			continue // already sent (a snapshot or a replay covered it)
		}
		c.last = it.pos
		c.queue = append(c.queue, it)
		c.queueBytes += len(it.frame)
	}
	c.signal(c.wake)
}

// sendBlocking queues one message, waiting while more than a quarter of the
// byte budget waits for the client (for what the server reads at its own
// pace: a snapshot, missed messages, a replay).
func (c *client) sendBlocking(ctx context.Context, pos uint64, frame []byte, always bool) error {
	window := c.hub.cfg.MaxQueueBytes / 4
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
		if c.queueBytes == 0 || c.queueBytes+len(frame) <= window {
			if pos > c.last {
				c.last = pos
			}
			c.queue = append(c.queue, item{pos, frame})
			c.queueBytes += len(frame)
			c.mu.Unlock()
			c.signal(c.wake)
			return nil
		}
		c.mu.Unlock()
		// The writer frees space, or closes the client when the kernel
		// refuses its writes for WriteWait.
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-c.space:
		case <-c.readerDone:
		}
	}
}

var errClosed = errors.New("live: socket closed")

// catchUp queues the snapshot or the missed messages, then what arrived
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
		missed, err := outbox.Missed(ctx, c.hub.cfg.Pool, c.sub.Channel, after, 500)
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
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return errClosed
	}
	slices.SortStableFunc(c.pending, func(a, b item) int { return cmpUint(a.pos, b.pos) })
	for _, it := range c.pending {
		if it.pos <= c.last {
			continue
		}
		c.last = it.pos
		c.queue = append(c.queue, it)
		c.queueBytes += len(it.frame)
	}
	c.pending, c.pendingBytes, c.replaying = nil, 0, false
	c.signal(c.wake)
	return nil
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

func (c *client) dropLocked() {
	c.queue, c.queueBytes = nil, 0
	c.pending, c.pendingBytes = nil, 0
}

// tooSlowLocked closes a client that does not keep up: its queue is dropped
// and a 4408 close follows the frame being written.
func (c *client) tooSlowLocked() {
	if c.closed {
		return
	}
	if c.hub.cfg.OnDropped != nil {
		c.hub.cfg.OnDropped(c.sub.Kind)
	}
	c.closeLocked(CloseTooSlow, "too slow: reconnect", true)
}

func (c *client) closeLocked(code int, reason string, resume bool) {
	if c.closed {
		return
	}
	c.closed = true
	c.dropLocked()
	c.closeCode, c.closeReason, c.closeResume = code, reason, resume
	c.signal(c.wake)
	c.signal(c.space)
}

// closeWith closes the socket with code and reason once the frame being
// written is out; with resume, " with ?after=N" is added to the reason.
func (c *client) closeWith(code int, reason string, resume bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.closeLocked(code, reason, resume)
}

// closeFrameLocked is the close frame to send now.
func (c *client) closeFrameLocked() []byte {
	if c.closeFrame != nil {
		return c.closeFrame
	}
	reason := c.closeReason
	if c.closeResume && c.written > 0 {
		reason += " with ?after=" + strconv.FormatUint(c.written, 10)
	}
	if len(reason) > 123 {
		reason = reason[:123]
	}
	return appendFrame(nil, websocket.CloseMessage, websocket.FormatCloseMessage(c.closeCode, reason))
}

// maxWrite bounds the bytes of single frames the writer takes at once, so
// that a ping or a close is never far behind.
const maxWrite = 1 << 20

// writeLoop is the socket's only writer.
func (c *client) writeLoop() {
	defer close(c.writerDone)
	h := c.hub
	ping := time.NewTicker(h.cfg.PingPeriod)
	defer ping.Stop()
	timer := time.NewTimer(time.Hour)
	timer.Stop()
	var nextBatch time.Time
	var buf []byte
	var marks []mark
	for {
		buf, marks = buf[:0], marks[:0]
		var wait time.Duration
		c.mu.Lock()
		if c.ended {
			c.mu.Unlock()
			return
		}
		for _, f := range c.control {
			buf = append(buf, f...)
			marks = append(marks, mark{len(buf), 0})
		}
		c.control = c.control[:0]
		closing := c.closeCode != 0 || c.closeFrame != nil
		if !closing && len(c.queue) > 0 {
			switch now := time.Now(); {
			case c.batch == 0:
				buf, marks = c.takeFramesLocked(buf, marks)
			case !now.Before(nextBatch):
				buf, marks = c.takeBatchLocked(buf, marks)
				nextBatch = now.Add(c.batch)
			default:
				wait = nextBatch.Sub(now)
			}
		}
		c.mu.Unlock()
		if len(buf) > 0 {
			c.signal(c.space)
			off, err := c.writeOut(buf, marks, c.hub.cfg.WriteWait)
			if err != nil {
				c.writeFailed(buf, marks, off, err)
				return
			}
			if cap(buf) > 64<<10 {
				buf, marks = nil, nil // a burst's buffer is not kept for the socket's life
			}
			continue
		}
		if closing {
			c.sendClose(nil)
			return
		}
		var timeout <-chan time.Time
		if wait > 0 {
			timer.Reset(wait)
			timeout = timer.C
		}
		select {
		case <-c.wake:
		case <-timeout:
		case <-ping.C:
			c.mu.Lock()
			c.control = append(c.control, appendFrame(nil, websocket.PingMessage, nil))
			c.mu.Unlock()
		}
		timer.Stop()
	}
}

// takeFramesLocked moves queued messages, one frame each, into buf.
func (c *client) takeFramesLocked(buf []byte, marks []mark) ([]byte, []mark) {
	n := 0
	for n < len(c.queue) && (n == 0 || len(buf) < maxWrite) {
		it := c.queue[n]
		buf = appendFrame(buf, websocket.TextMessage, it.frame)
		marks = append(marks, mark{len(buf), it.pos})
		c.queueBytes -= len(it.frame)
		n++
	}
	c.queue = c.queue[n:]
	if len(c.queue) == 0 {
		c.queue = nil
	}
	return buf, marks
}

const batchPrefix = `{"type":"batch","position":`

// takeBatchLocked moves every queued message into one batch frame:
// {"type":"batch","position":<last message's position>,"messages":[…]}.
func (c *client) takeBatchLocked(buf []byte, marks []mark) ([]byte, []mark) {
	pos := c.batchPos
	for i := len(c.queue) - 1; i >= 0; i-- {
		if p := c.queue[i].pos; p > 0 {
			pos = p
			break
		}
	}
	c.batchPos = pos
	digits := strconv.AppendUint(nil, pos, 10)
	size := len(batchPrefix) + len(digits) + len(`,"messages":[]}`) + len(c.queue) - 1
	for _, it := range c.queue {
		size += len(it.frame)
	}
	buf = appendHeader(buf, websocket.TextMessage, size)
	buf = append(buf, batchPrefix...)
	buf = append(buf, digits...)
	buf = append(buf, `,"messages":[`...)
	for i, it := range c.queue {
		if i > 0 {
			buf = append(buf, ',')
		}
		buf = append(buf, it.frame...)
	}
	buf = append(buf, "]}"...)
	marks = append(marks, mark{len(buf), pos})
	c.queue, c.queueBytes = nil, 0
	return buf, marks
}

// writeOut writes buf. It gives up when the kernel accepted no byte for
// WriteWait (measured in quarters of it, so between WriteWait and 1.25 ×
// WriteWait) or the connection failed; it returns how much it wrote.
func (c *client) writeOut(buf []byte, marks []mark, wait time.Duration) (int, error) {
	step := max(wait/4, time.Millisecond)
	off, progress := 0, time.Now()
	for off < len(buf) {
		_ = c.nc.SetWriteDeadline(time.Now().Add(step))
		n, err := c.nc.Write(buf[off:])
		off += n
		if n > 0 {
			progress = time.Now()
		}
		if err != nil && !(isTimeout(err) && time.Since(progress) < wait) {
			c.wrote(marks, off)
			return off, err
		}
	}
	c.wrote(marks, off)
	return off, nil
}

// wrote records the position of the last whole message among the first off bytes.
func (c *client) wrote(marks []mark, off int) {
	for i := len(marks) - 1; i >= 0; i-- {
		if marks[i].end <= off && marks[i].pos > 0 {
			c.mu.Lock()
			c.written = marks[i].pos
			c.mu.Unlock()
			return
		}
	}
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// writeFailed ends the socket after a failed write. When the kernel refused
// the client's bytes for WriteWait it is too slow: the frame cut short is
// finished and a 4408 close follows it, for a client that reads again later.
func (c *client) writeFailed(buf []byte, marks []mark, off int, err error) {
	if !isTimeout(err) {
		c.mu.Lock()
		c.ended = true
		c.mu.Unlock()
		_ = c.nc.Close()
		return
	}
	var rest []byte
	for _, m := range marks {
		if m.end > off {
			rest = buf[off:m.end]
			if m.pos > 0 {
				c.mu.Lock()
				c.written = m.pos
				c.mu.Unlock()
			}
			break
		}
	}
	c.mu.Lock()
	c.tooSlowLocked()
	c.mu.Unlock()
	c.sendClose(rest)
}

// sendClose writes what is left of a frame and the close frame, waits a
// moment for the client's close, and closes the connection. A client that
// stopped reading has until PongWait to read on and get the close frame
// (then the connection would end anyway: it answers no pings).
func (c *client) sendClose(rest []byte) {
	c.mu.Lock()
	frame := c.closeFrameLocked()
	c.mu.Unlock()
	out := append(append([]byte(nil), rest...), frame...)
	if _, err := c.writeOut(out, nil, c.hub.cfg.PongWait); err == nil {
		select {
		case <-c.readerDone:
		case <-time.After(c.hub.cfg.WriteWait):
		}
	}
	c.mu.Lock()
	c.ended = true
	c.mu.Unlock()
	_ = c.nc.Close()
}

// appendHeader appends a final, unmasked frame header (a server's).
func appendHeader(dst []byte, opcode int, n int) []byte {
	dst = append(dst, 0x80|byte(opcode))
	switch {
	case n < 126:
		return append(dst, byte(n))
	case n <= 0xFFFF:
		return append(dst, 126, byte(n>>8), byte(n))
	}
	return append(dst, 127, byte(n>>56), byte(n>>48), byte(n>>40), byte(n>>32), byte(n>>24), byte(n>>16), byte(n>>8), byte(n))
}

func appendFrame(dst []byte, opcode int, payload []byte) []byte {
	return append(appendHeader(dst, opcode, len(payload)), payload...)
}

// positionOf reads the "position" of a JSON object (0 when it has none).
func positionOf(frame []byte) uint64 {
	var v struct {
		Position uint64 `json:"position"`
	}
	_ = json.Unmarshal(frame, &v)
	return v.Position
}

// Conn is an open socket, as its handlers see it.
type Conn struct{ c *client }

// Request is the upgrade request.
func (c *Conn) Request() *http.Request { return c.c.req }

// Get returns a value of the subscription's Keys.
func (c *Conn) Get(key string) (any, bool) {
	v, ok := c.c.sub.Keys[key]
	return v, ok
}

// Send writes a JSON object to this socket alone, waiting while much waits
// for the client (for sockets that produce their own stream, like a replay).
func (c *Conn) Send(ctx context.Context, payload []byte) error {
	var pos uint64
	if c.c.batch > 0 {
		pos = positionOf(payload) // the batch frame carries its last message's
	}
	return c.c.sendBlocking(ctx, pos, payload, true)
}

// Close closes the socket with a close code and reason.
func (c *Conn) Close(code int, reason string) { c.c.closeWith(code, reason, false) }
