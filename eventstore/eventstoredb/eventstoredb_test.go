package eventstoredb_test

import (
	"errors"
	"os"
	"strings"
	"testing"

	"github.com/lockstep/lockstep/eventstore"
	"github.com/lockstep/lockstep/eventstore/eventstoredb"
	"github.com/lockstep/lockstep/eventstore/eventstoretest"
)

// TestConformance needs a server: EVENTSTORE_URL, e.g. esdb://127.0.0.1:2113?tls=false.
// Each subtest uses fresh stream names; the global log is shared, so ReadAll
// based checks start from the head position at the subtest's start.
func TestConformance(t *testing.T) {
	url := os.Getenv("EVENTSTORE_URL")
	if url == "" {
		t.Skip("EVENTSTORE_URL not set: no EventStoreDB server on this machine")
	}
	eventstoretest.Run(t, func(t *testing.T) eventstoretest.Harness {
		open := func(t *testing.T) eventstore.Store {
			s, err := eventstoredb.New(eventstoredb.Config{URL: url})
			if err != nil {
				t.Fatal(err)
			}
			return s
		}
		return eventstoretest.Harness{Store: open(t), Reopen: open, StreamPositionsUnknown: true, IDsCheckedPerStreamOnly: true}
	})
}

// TestNoQuerier: EventStoreDB cannot filter on metadata, and says so rather
// than answering filtered reads by reading the whole log.
func TestNoQuerier(t *testing.T) {
	_, err := eventstore.AsQuerier(&eventstoredb.Store{})
	if !errors.Is(err, eventstore.ErrNoQuerier) || !strings.Contains(err.Error(), "metadata") {
		t.Errorf("AsQuerier(eventstoredb) = %v, want ErrNoQuerier with the reason", err)
	}
}
