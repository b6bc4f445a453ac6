package simulator_test

import (
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/lockstep/lockstep/simulator"
)

// BenchmarkFanOutRaw is the raw limit beside BenchmarkFanOut: a bare
// gorilla/websocket server (no Lockstep: no command, projection, outbox or
// hub) writes one step_changed-sized message to each of N sockets in a plain
// loop; every client dials from its own loopback address. One op = one
// round of writes; reported: until the last client read it (last-p50-ms,
// last-p99-ms, last-max-ms). Sizes as BenchmarkFanOut (LOCKSTEP_BENCH_BIG=1
// adds 5,000; 10,000 needs about 20,000 descriptors, the hard limit here).
func BenchmarkFanOutRaw(b *testing.B) {
	sizes := benchSizes()
	if len(sizes) > 2 {
		sizes = append(sizes, 10_000)
	}
	for _, n := range sizes {
		b.Run(fmt.Sprintf("students=%d", n), func(b *testing.B) {
			raiseFileLimit(b, 2*n+500)
			var mu sync.Mutex
			var server []*websocket.Conn
			joined := make(chan struct{}, n)
			up := websocket.Upgrader{ReadBufferSize: 1024, WriteBufferSize: 4096}
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				c, err := up.Upgrade(w, r, nil)
				if err != nil {
					return
				}
				mu.Lock()
				server = append(server, c)
				mu.Unlock()
				joined <- struct{}{}
			}))
			defer srv.Close()
			url := "ws" + srv.URL[len("http"):]
			got := make(chan time.Time, n)
			var clients []*websocket.Conn
			for i := range n {
				d := websocket.Dialer{ReadBufferSize: 1024, WriteBufferSize: 256,
					NetDial: (&net.Dialer{LocalAddr: &net.TCPAddr{IP: net.IPv4(127, 1, byte(i/250), byte(i%250+1))}}).Dial}
				c, _, err := d.Dial(url, nil)
				if err != nil {
					b.Fatalf("client %d: %v", i, err)
				}
				clients = append(clients, c)
				go func() {
					for {
						if _, _, err := c.ReadMessage(); err != nil {
							return
						}
						got <- time.Now()
					}
				}()
			}
			for range n {
				<-joined
			}
			defer func() {
				for _, c := range clients {
					c.Close()
				}
			}()
			msg := []byte(`{"type":"step_changed","position":123456,"data":{"session_id":1,"current_subtask":{"id":2,"task_id":1,"title":"친구 선택하기","guide_text":"친구 목록에서 이름을 눌러주세요","voice_guide_text":"이름을 누르세요"},"instructor_message":"다음 단계로 가요","changed_at":"2026-12-04T16:00:00Z"}}`)
			var last []time.Duration
			for b.Loop() {
				start := time.Now()
				for _, c := range server {
					if err := c.WriteMessage(websocket.TextMessage, msg); err != nil {
						b.Fatal(err)
					}
				}
				var end time.Time
				for range n {
					if at := <-got; at.After(end) {
						end = at
					}
				}
				last = append(last, end.Sub(start))
			}
			l := simulator.Summarize(last)
			b.ReportMetric(msOf(l.P50), "last-p50-ms")
			b.ReportMetric(msOf(l.P99), "last-p99-ms")
			b.ReportMetric(msOf(l.Max), "last-max-ms")
		})
	}
}
