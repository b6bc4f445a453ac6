package postgres

import "context"

// SharedRuns tells how many bound queries and tail reads s has run.
func SharedRuns(s *Store) (bounds, tails int64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.bounds.runs, s.tailQ.runs
}

// ShareTail runs fn as a tail advance for a caller at wake-up generation gen
// (shareSince on the tail's queue), and Fire wakes the subscriptions.
func ShareTail(ctx context.Context, s *Store, gen uint64, fn func(context.Context) (int64, error)) (int64, error) {
	return s.shareSince(ctx, &s.tailQ, gen, fn)
}

// Generation is the store's wake-up generation.
func Generation(s *Store) uint64 { return s.wake.generation() }

// Fire wakes s's subscriptions as an append does.
func Fire(s *Store) { s.wake.fire() }

// TailWaiters is how many callers wait for the tail read in progress and the
// one queued after it.
func TailWaiters(s *Store) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for _, c := range []*sharedCall{s.tailQ.running, s.tailQ.queued} {
		if c != nil {
			n += c.waiters
		}
	}
	return n
}
