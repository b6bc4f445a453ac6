package auth

import (
	"fmt"
	"sync"

	"github.com/alexedwards/argon2id"
)

// Password length limits, in characters. The upper bound keeps a hashing
// request cheap to refuse.
const (
	MinPasswordLen = 8
	MaxPasswordLen = 128
)

// productionParams are argon2id's parameters for new hashes: the OWASP
// recommendation (19 MiB, 2 passes, 1 lane). They are stored in each hash, so
// changing them later does not invalidate existing passwords.
var productionParams = &argon2id.Params{
	Memory:      19 * 1024,
	Iterations:  2,
	Parallelism: 1,
	SaltLength:  16,
	KeyLength:   32,
}

// passwordParams are the parameters in use; only this package's tests
// lower them, to keep the race detector's runs short.
var passwordParams = productionParams

// HashPassword returns the argon2id hash of password in PHC string format.
func HashPassword(password string) (string, error) {
	h, err := argon2id.CreateHash(password, passwordParams)
	if err != nil {
		return "", fmt.Errorf("hash password: %w", err)
	}
	return h, nil
}

// CheckPassword reports whether password matches hash.
func CheckPassword(password, hash string) (bool, error) {
	ok, err := argon2id.ComparePasswordAndHash(password, hash)
	if err != nil {
		return false, fmt.Errorf("check password: %w", err)
	}
	return ok, nil
}

// dummyHash is checked against when a login names an unknown email, so that
// answering takes as long as for a known one.
var dummyHash = sync.OnceValue(func() string {
	h, err := HashPassword("lockstep-dummy-password")
	if err != nil {
		panic(err)
	}
	return h
})
