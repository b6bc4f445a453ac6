package apptest

import (
	"context"
	"encoding/json"
	"strconv"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/lockstep/lockstep/domain"
	"github.com/lockstep/lockstep/eventstore"
)

// SeedEvent is one event CopyEvents writes: its stream, the event, and when
// it occurred.
type SeedEvent struct {
	Stream string
	Event  domain.Event
	At     time.Time
}

// CopyEvents writes evs, in order, straight into the events table with COPY
// (for histories too large to append one by one), in transactions of at most
// 65,535 events, one transaction id each, so that the positions follow the
// store's txid*65536+i scheme. Each stream's versions count from 1; every
// event carries md as its metadata.
func CopyEvents(tb testing.TB, pool *pgxpool.Pool, md eventstore.Metadata, evs []SeedEvent) {
	tb.Helper()
	ctx := context.Background()
	meta, err := json.Marshal(md)
	if err != nil {
		tb.Fatal(err)
	}
	versions := map[string]int64{}
	for start := 0; start < len(evs); start += 65535 {
		chunk := evs[start:min(start+65535, len(evs))]
		err := pgx.BeginFunc(ctx, pool, func(tx pgx.Tx) error {
			if _, err := tx.Exec(ctx, `LOCK TABLE events IN ROW EXCLUSIVE MODE`); err != nil {
				return err
			}
			var txid int64
			if err := tx.QueryRow(ctx, `SELECT events_begin_append()::text::bigint`).Scan(&txid); err != nil {
				return err
			}
			rows := make([][]any, len(chunk))
			for i, e := range chunk {
				data, err := json.Marshal(e.Event)
				if err != nil {
					return err
				}
				versions[e.Stream]++
				rows[i] = []any{txid*65536 + int64(i), e.Stream, versions[e.Stream], uuid.New(), e.Event.EventType(), 1, string(data), string(meta), e.At, strconv.FormatInt(txid, 10)}
			}
			_, err := tx.CopyFrom(ctx, pgx.Identifier{"events"},
				[]string{"position", "stream", "version", "event_id", "type", "schema_version", "data", "metadata", "occurred_at", "txid"},
				pgx.CopyFromRows(rows))
			return err
		})
		if err != nil {
			tb.Fatalf("seed events: %v", err)
		}
	}
}
