package postgres

// SharedRuns tells how many bound queries and tail reads s has run.
func SharedRuns(s *Store) (bounds, tails int64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.bounds.runs, s.tailQ.runs
}
