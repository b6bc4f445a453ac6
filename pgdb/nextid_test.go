package pgdb_test

import (
	"context"
	"sync"
	"testing"

	"github.com/lockstep/lockstep/pgdb"
	"github.com/lockstep/lockstep/pgtest"
)

// A command sent again under the same scope gets the id its first attempt
// allocated, also when the attempts race; another scope or none gets a new one.
func TestNextIDPerCommand(t *testing.T) {
	db := pgtest.New(t)
	ctx := context.Background()
	first, err := pgdb.NextID(ctx, db.Pool, "help_request_ids", "7:k1\x00id:help_request_ids")
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	got := make([]int64, 8)
	for i := range got {
		wg.Go(func() {
			id, err := pgdb.NextID(ctx, db.Pool, "help_request_ids", "7:k1\x00id:help_request_ids")
			if err != nil {
				t.Error(err)
			}
			got[i] = id
		})
	}
	wg.Wait()
	for _, id := range got {
		if id != first {
			t.Fatalf("the same command got ids %d and %d", first, id)
		}
	}
	other, err := pgdb.NextID(ctx, db.Pool, "help_request_ids", "7:k2\x00id:help_request_ids")
	if err != nil {
		t.Fatal(err)
	}
	none, err := pgdb.NextID(ctx, db.Pool, "help_request_ids", "")
	if err != nil {
		t.Fatal(err)
	}
	if other == first || none == first || none == other {
		t.Fatalf("distinct commands share an id: %d %d %d", first, other, none)
	}
	// Racing first attempts of one new scope agree too.
	for i := range got {
		wg.Go(func() {
			id, err := pgdb.NextID(ctx, db.Pool, "session_ids", "9:k\x00id:session_ids")
			if err != nil {
				t.Error(err)
			}
			got[i] = id
		})
	}
	wg.Wait()
	for _, id := range got[1:] {
		if id != got[0] {
			t.Fatalf("racing attempts of one command got %v", got)
		}
	}
}
