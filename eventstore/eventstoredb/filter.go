package eventstoredb

// QuerierUnsupported tells eventstore.AsQuerier why this store has no
// eventstore.Querier. EventStoreDB's server-side filters for $all reads match
// only stream-name and event-type prefixes or regular expressions; the
// filters analytics needs are on metadata (session_id, lecture_id) and on
// occurred_at, which the server cannot filter on, and doing it here would read
// the whole log for every query. Analytics and `lockstep replay` are off with
// this store (they say so: analytics.Supported) until a projection to a
// queryable store exists.
func (s *Store) QuerierUnsupported() string {
	return "EventStoreDB filters $all reads on stream and event-type prefixes only, not on the metadata session and lecture ids or occurred_at that analytics reads by"
}
