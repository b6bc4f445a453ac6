package apptest

import (
	"context"
	"testing"

	"github.com/lockstep/lockstep/bus"
)

// NewBus opens a message bus with cfg (logging to QuietLogger when it names
// no logger), closed when the test ends.
func NewBus(t testing.TB, cfg bus.Config) *bus.Bus {
	t.Helper()
	if cfg.Logger == nil {
		cfg.Logger = QuietLogger()
	}
	b, err := bus.New(context.Background(), cfg)
	if err != nil {
		t.Fatalf("bus.New: %v", err)
	}
	t.Cleanup(func() { _ = b.Close() })
	return b
}
