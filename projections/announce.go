package projections

import (
	"context"

	"github.com/lockstep/lockstep/outbox"
)

// announceBatch has announcer (nil: none) push what producer recorded for the
// batch. When the runner collected the batch's Records (ctx), they are
// delivered as recorded; else they are read back from the outbox for the
// batch's positions (from the position before the batch's first with
// fromBefore, for messages recorded at a position below their event's).
func announceBatch(ctx context.Context, announcer Announcer, producer string, batch []Record, fromBefore bool) {
	if announcer == nil || len(batch) == 0 {
		return
	}
	if c := outbox.CollectorOf(ctx); c != nil {
		if msgs := c.Messages(); len(msgs) > 0 {
			announcer.Deliver(ctx, producer, msgs)
		}
		return
	}
	from := batch[0].Position
	if fromBefore {
		from--
	}
	announcer.Announce(ctx, producer, from, batch[len(batch)-1].Position)
}
