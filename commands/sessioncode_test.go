package commands_test

import (
	"strings"
	"testing"

	"github.com/lockstep/lockstep/commands"
	"github.com/lockstep/lockstep/domain"
)

// Generated codes use the contract's alphabet only (no 0/O/1/I look-alikes),
// and every letter of it turns up.
func TestNewSessionCodeAlphabet(t *testing.T) {
	seen := map[rune]bool{}
	for range 2000 {
		c := commands.NewSessionCode()
		if !domain.ValidSessionCode(c) || strings.ContainsAny(c, "0O1I") {
			t.Fatalf("generated %q", c)
		}
		for _, r := range c {
			seen[r] = true
		}
	}
	if len(seen) != len("ABCDEFGHJKLMNPQRSTUVWXYZ23456789") {
		t.Fatalf("only %d distinct characters in 2000 codes", len(seen))
	}
}
