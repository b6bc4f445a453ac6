package chaos

import (
	"io"
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/lockstep/lockstep/pgtest"
)

// roundRobin is a TCP proxy that hands each new connection to the next
// backend, skipping one that refuses (a dead instance), as a load balancer
// without health checks would.
type roundRobin struct {
	ln       net.Listener
	backends []string
	next     atomic.Uint64
	mu       sync.Mutex
	conns    map[string]int // connections handed to each backend
}

func newRoundRobin(t *testing.T, backends ...string) *roundRobin {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &roundRobin{ln: ln, backends: backends, conns: map[string]int{}}
	go p.serve()
	t.Cleanup(func() { _ = ln.Close() })
	return p
}

func (p *roundRobin) URL() string { return "http://" + p.ln.Addr().String() }

func (p *roundRobin) serve() {
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return
		}
		go p.pipe(c)
	}
}

func (p *roundRobin) pipe(c net.Conn) {
	defer c.Close()
	var up net.Conn
	for range p.backends {
		addr := p.backends[p.next.Add(1)%uint64(len(p.backends))]
		var err error
		if up, err = net.DialTimeout("tcp", addr, 2*time.Second); err == nil {
			p.mu.Lock()
			p.conns[addr]++
			p.mu.Unlock()
			break
		}
	}
	if up == nil {
		return // every backend refused: the client sees the connection closed
	}
	defer up.Close()
	done := make(chan struct{}, 2)
	go func() { _, _ = io.Copy(up, c); done <- struct{}{} }()
	go func() { _, _ = io.Copy(c, up); done <- struct{}{} }()
	<-done
}

func (p *roundRobin) handed() map[string]int {
	p.mu.Lock()
	defer p.mu.Unlock()
	out := map[string]int{}
	for k, v := range p.conns {
		out[k] = v
	}
	return out
}

// TestInstanceKilled runs a class through a round-robin in front of two
// instances (BUS=postgres) and SIGKILLs the one holding half the sockets
// mid-class: its students reconnect through the proxy to the other with
// ?after= and miss nothing, commands whose answer was lost are sent again
// with the same Idempotency-Key and applied once, and the read models
// equal a clean rebuild.
func TestInstanceKilled(t *testing.T) {
	students, steps, speed := classSize()
	db := pgtest.New(t)
	admin := adminPool(t, db)
	a := startServer(t, db.URL, "BUS=postgres", "STUCK_DETECTOR=false")
	b := startServer(t, db.URL, "BUS=postgres", "STUCK_DETECTOR=false")
	proxy := newRoundRobin(t, a.Addr, b.Addr)

	w := newLineWatch()
	killedAt := make(chan map[string]int, 1)
	go func() {
		if !w.waitStarted() {
			killedAt <- nil
			return
		}
		time.Sleep(time.Duration(float64(15*time.Second) / speed * 1.5))
		before := proxy.handed()
		_ = a.cmd.Process.Kill() // SIGKILL: no drain, no goodbye
		killedAt <- before
	}()
	r, err := runDisruptedClass(proxy.URL(), students, steps, speed, 11, w, admin)
	before := <-killedAt
	t.Logf("connections handed out before the kill: %v (killed %s)", before, a.Addr)
	if before == nil || before[a.Addr] == 0 || before[b.Addr] == 0 {
		t.Fatalf("the kill did not happen mid-class with both instances serving: %v", before)
	}
	select {
	case <-a.done:
	case <-time.After(10 * time.Second):
		t.Fatal("the killed instance is still running")
	}
	classOK(t, r, err, true)
	eventsOK(t, admin, r)
	caughtUp(t, b)
	b.stop()
	projectionsOK(t, admin, db.URL)
}
