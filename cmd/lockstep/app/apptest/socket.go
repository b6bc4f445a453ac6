package apptest

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"
)

// Frame is one message a socket received: the contract's {"type", "data",
// "position"} envelope, and the bytes as they came.
type Frame struct {
	Type     string          `json:"type"`
	Data     json.RawMessage `json:"data"`
	Position uint64          `json:"position"`
	Raw      []byte          `json:"-"`
}

// Decode decodes the frame's data into v.
func (f Frame) Decode(t testing.TB, v any) {
	t.Helper()
	if err := json.Unmarshal(f.Data, v); err != nil {
		t.Fatalf("decode %s: %v\n%s", f.Type, err, f.Raw)
	}
}

// Socket is a test WebSocket client that reads in the background, so that
// a test waits for messages with a deadline instead of blocking.
type Socket struct {
	Conn   *websocket.Conn
	frames chan Frame
	done   chan struct{}
	mu     sync.Mutex
	err    error
	// check validates each received message (against asyncapi.yaml for
	// sockets opened with Server.Dial); nil checks nothing.
	check func([]byte)
}

// Dial opens a socket on path with the token as ?token= (none when ""),
// closed when the test ends. resp is the upgrade's answer (a refusal's
// status when err is not nil). Every message it receives is checked against
// asyncapi.yaml (CheckMessage).
func (s *Server) Dial(t testing.TB, path, token string) (*Socket, *http.Response, error) {
	t.Helper()
	docs(t)
	url := s.WSURL(path)
	if token != "" {
		sep := "?"
		if strings.Contains(url, "?") {
			sep = "&"
		}
		url += sep + "token=" + token
	}
	sock, resp, err := dialURL(url, nil, func(data []byte) { CheckMessage(t, path, data) })
	if err != nil {
		return nil, resp, err
	}
	t.Cleanup(sock.Close)
	return sock, resp, nil
}

// MustDial is Dial that fails the test when the socket does not open.
func (s *Server) MustDial(t testing.TB, path, token string) *Socket {
	t.Helper()
	sock, _, err := s.Dial(t, path, token)
	if err != nil {
		t.Fatalf("dial %s: %v", path, err)
	}
	return sock
}

// DialURL opens a socket on a whole URL with headers; the caller closes it.
func DialURL(url string, h http.Header) (*Socket, *http.Response, error) {
	return dialURL(url, h, nil)
}

func dialURL(url string, h http.Header, check func([]byte)) (*Socket, *http.Response, error) {
	d := websocket.Dialer{HandshakeTimeout: 10 * time.Second}
	conn, resp, err := d.Dial(url, h)
	if err != nil {
		return nil, resp, err
	}
	s := &Socket{Conn: conn, frames: make(chan Frame, 4096), done: make(chan struct{}), check: check}
	go s.read()
	return s, resp, nil
}

func (s *Socket) read() {
	defer close(s.done)
	for {
		_, data, err := s.Conn.ReadMessage()
		if err != nil {
			s.fail(err)
			return
		}
		if s.check != nil {
			s.check(data)
		}
		var f Frame
		if err := json.Unmarshal(data, &f); err != nil {
			s.fail(fmt.Errorf("not JSON: %s", data))
			return
		}
		f.Raw = data
		s.frames <- f
	}
}

func (s *Socket) fail(err error) {
	s.mu.Lock()
	s.err = err
	s.mu.Unlock()
}

// Close closes the socket and waits for its reader to end.
func (s *Socket) Close() {
	_ = s.Conn.Close()
	<-s.done
}

// Send writes v as a JSON message.
func (s *Socket) Send(t testing.TB, v any) {
	t.Helper()
	if err := s.Conn.WriteJSON(v); err != nil {
		t.Fatal(err)
	}
}

// Next waits up to 15 s for the next message.
func (s *Socket) Next(t testing.TB) Frame {
	t.Helper()
	select {
	case f := <-s.frames:
		return f
	case <-s.done:
		select {
		case f := <-s.frames:
			return f
		default:
		}
		s.mu.Lock()
		defer s.mu.Unlock()
		t.Fatalf("socket closed while waiting for a message: %v", s.err)
	case <-time.After(15 * time.Second):
		t.Fatal("no message within 15s")
	}
	return Frame{}
}

// Expect waits for the next message and checks its type.
func (s *Socket) Expect(t testing.TB, typ string) Frame {
	t.Helper()
	f := s.Next(t)
	if f.Type != typ {
		t.Fatalf("got %s, want %s: %s", f.Type, typ, f.Raw)
	}
	return f
}

// CloseCode waits up to 10 s for the server to close the socket and returns
// the close code.
func (s *Socket) CloseCode(t testing.TB) int {
	t.Helper()
	select {
	case <-s.done:
	case <-time.After(10 * time.Second):
		t.Fatal("socket not closed within 10s")
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	var ce *websocket.CloseError
	if errors.As(s.err, &ce) {
		return ce.Code
	}
	t.Fatalf("socket ended without a close frame: %v", s.err)
	return 0
}

// Quiet checks that nothing more arrives for d (a duplicate would).
func (s *Socket) Quiet(t testing.TB, d time.Duration) {
	t.Helper()
	select {
	case f := <-s.frames:
		t.Fatalf("unexpected extra message: %s", f.Raw)
	case <-time.After(d):
	}
}
