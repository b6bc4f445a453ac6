package chaos

import (
	"context"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/lockstep/lockstep/auth"
	"github.com/lockstep/lockstep/domain"
	"github.com/lockstep/lockstep/simulator"
)

// jwtSecret is the JWT_SECRET of the servers the chaos tests start.
const jwtSecret = "chaos-test-secret-chaos-test-secret-0123"

var userSeq atomic.Int64

// fastAccounts inserts users directly and signs their tokens with the
// servers' key: registration hashes passwords, which takes minutes for a
// class on a loaded machine and is not what these tests are about.
func fastAccounts(pool *pgxpool.Pool) simulator.AccountSource {
	return func(ctx context.Context, role string, names []string) ([]simulator.Account, error) {
		tokens, err := auth.NewTokens(auth.Config{Secret: []byte(jwtSecret), AccessTTL: time.Hour})
		if err != nil {
			return nil, err
		}
		out := make([]simulator.Account, len(names))
		for i, name := range names {
			a := simulator.Account{Name: name, Email: fmt.Sprintf("chaos-%d-%d@lockstep.test", userSeq.Add(1), time.Now().UnixNano())}
			if err := pool.QueryRow(ctx, `INSERT INTO users (email, password_hash, name, role) VALUES ($1, 'x', $2, $3) RETURNING id`,
				a.Email, name, role).Scan(&a.ID); err != nil {
				return nil, err
			}
			if a.Token, err = tokens.Issue(domain.Actor{UserID: a.ID, Role: domain.Role(role)}); err != nil {
				return nil, err
			}
			out[i] = a
		}
		return out, nil
	}
}
