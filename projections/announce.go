package projections

import "context"

// announceBatch has announcer (nil: none) push what producer recorded for the
// batch's positions (from the position before the batch's first with
// fromBefore, for messages recorded at a position below their event's).
func announceBatch(ctx context.Context, announcer Announcer, producer string, batch []Record, fromBefore bool) {
	if announcer == nil || len(batch) == 0 {
		return
	}
	from := batch[0].Position
	if fromBefore {
		from--
	}
	announcer.Announce(ctx, producer, from, batch[len(batch)-1].Position)
}
