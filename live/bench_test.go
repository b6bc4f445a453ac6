package live_test

import (
	"encoding/json"
	"fmt"
	"testing"
	"time"

	"github.com/lockstep/lockstep/live"
)

// BenchmarkBurst10000 delivers a burst of 10,000 student_progress messages
// to the hub at once (one projector batch) and reads them on one socket over
// loopback, in the same process: one frame per message, or ?batch= frames.
// It reports messages per second and the time from Deliver to the last
// message read.
func BenchmarkBurst10000(b *testing.B) {
	const n = 10000
	for _, mode := range []struct{ name, query string }{
		{"frames", ""},
		{"batch=10", "&batch=10"},
		{"batch=50", "&batch=50"},
	} {
		b.Run(mode.name, func(b *testing.B) {
			e := newEnv(b, nil, live.HubConfig{})
			e.sub = liveSub("bench")
			e.setCheckpoint(0)
			c := e.dial("?after=0" + mode.query)
			for e.hub.Subscribers("bench") == 0 {
				time.Sleep(time.Millisecond)
			}
			var pos uint64
			var total time.Duration
			var frames int
			msgs := make([]live.Message, n)
			b.ResetTimer()
			for range b.N {
				b.StopTimer()
				for i := range msgs {
					pos++
					msgs[i] = progressMsg("bench", pos)
				}
				b.StartTimer()
				start := time.Now()
				e.hub.Deliver(msgs...)
				got := 0
				for got < n {
					_ = c.SetReadDeadline(time.Now().Add(30 * time.Second))
					_, data, err := c.ReadMessage()
					if err != nil {
						b.Fatal(err)
					}
					frames++
					// Either way the client parses every byte once, as a
					// real one would.
					if mode.query == "" {
						got++
						if p := positionIn(data); got == n && p != pos {
							b.Fatalf("last message at %d, want %d", p, pos)
						}
						continue
					}
					var bf struct {
						Position uint64            `json:"position"`
						Messages []json.RawMessage `json:"messages"`
					}
					if err := json.Unmarshal(data, &bf); err != nil {
						b.Fatal(err)
					}
					got += len(bf.Messages)
					if got == n && bf.Position != pos {
						b.Fatalf("last batch at %d, want %d", bf.Position, pos)
					}
				}
				total += time.Since(start)
			}
			b.ReportMetric(float64(b.N*n)/total.Seconds(), "msgs/s")
			b.ReportMetric(total.Seconds()*1000/float64(b.N), "ms-to-last")
			b.ReportMetric(float64(frames)/float64(b.N), "frames/burst")
		})
	}
}

func positionIn(data []byte) uint64 {
	var f struct {
		Position uint64 `json:"position"`
	}
	if err := json.Unmarshal(data, &f); err != nil {
		panic(fmt.Sprintf("%s: %v", data, err))
	}
	return f.Position
}
