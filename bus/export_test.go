package bus

import "github.com/ThreeDotsLabs/watermill/message"

// NotifiedWakes is how many of a postgres subscriber's idle waits a publish
// ended (0 for another backend's).
func NotifiedWakes(s message.Subscriber) int64 {
	ps, ok := s.(*subscriber).inner.(*postgresSubscriber)
	if !ok {
		return 0
	}
	ps.mu.Lock()
	defer ps.mu.Unlock()
	var n int64
	for _, ts := range ps.topics {
		n += ts.backoff.idle.woken.Load()
	}
	return n
}
