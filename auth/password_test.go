package auth

import (
	"strings"
	"testing"

	"github.com/alexedwards/argon2id"
)

func TestHashPassword(t *testing.T) {
	// The production parameters are what a stored hash records.
	h, err := argon2id.CreateHash("correct horse", productionParams)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(h, "$argon2id$v=19$m=19456,t=2,p=1$") {
		t.Fatalf("hash %q", h)
	}
	for pw, want := range map[string]bool{"correct horse": true, "correct horsE": false, "": false} {
		if ok, err := CheckPassword(pw, h); err != nil || ok != want {
			t.Errorf("CheckPassword(%q) = %v, %v; want %v", pw, ok, err, want)
		}
	}
	a, _ := HashPassword("same")
	b, _ := HashPassword("same")
	if a == b {
		t.Fatal("two hashes of one password are equal: no salt")
	}
	if _, err := CheckPassword("x", "not-a-hash"); err == nil {
		t.Fatal("malformed hash accepted")
	}
}

// BenchmarkHashPassword measures one hash with the production parameters
// (the cost of a register, and of a login's check).
func BenchmarkHashPassword(b *testing.B) {
	for b.Loop() {
		if _, err := argon2id.CreateHash("securePassword123", productionParams); err != nil {
			b.Fatal(err)
		}
	}
}
