package chaos

import (
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/lockstep/lockstep/cmd/lockstep/app/apptest"
	"github.com/lockstep/lockstep/simulator"
)

// jwtSecret is the JWT_SECRET of the servers the chaos tests start.
const jwtSecret = "chaos-test-secret-chaos-test-secret-0123"

// fastAccounts makes a class's accounts without registering them
// (apptest.FastAccounts, with the servers' key): registration hashes
// passwords, which takes minutes for a class on a loaded machine and is not
// what these tests are about.
func fastAccounts(pool *pgxpool.Pool) simulator.AccountSource {
	return apptest.FastAccounts(pool, jwtSecret, time.Hour)
}
