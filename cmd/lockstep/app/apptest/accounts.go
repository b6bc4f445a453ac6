package apptest

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/lockstep/lockstep/auth"
	"github.com/lockstep/lockstep/domain"
	"github.com/lockstep/lockstep/simulator"
)

// FastAccounts is a simulator.AccountSource that inserts its users directly
// into pool and signs their tokens with secret (access tokens valid for ttl;
// 0: auth's default). Registration hashes passwords, which takes minutes for
// a class under -race or on a loaded machine and is not what a test of the
// simulator or of a disruption is about.
func FastAccounts(pool *pgxpool.Pool, secret string, ttl time.Duration) simulator.AccountSource {
	return func(ctx context.Context, role string, names []string) ([]simulator.Account, error) {
		tokens, err := auth.NewTokens(auth.Config{Secret: []byte(secret), AccessTTL: ttl})
		if err != nil {
			return nil, err
		}
		out := make([]simulator.Account, len(names))
		for i, name := range names {
			u, err := insertUser(ctx, pool, tokens, domain.Role(role), name, i)
			if err != nil {
				return nil, err
			}
			out[i] = simulator.Account{ID: u.ID, Email: u.Email, Name: u.Name, Token: u.Token}
		}
		return out, nil
	}
}

// insertUser inserts a user of role without registering them or hashing a
// password, and signs their token; the i-th of a batch.
func insertUser(ctx context.Context, pool *pgxpool.Pool, tokens *auth.Tokens, role domain.Role, name string, i int) (User, error) {
	u := User{Name: name, Role: string(role)}
	u.Email = fmt.Sprintf("%s-%d-%d-%d@lockstep.test", strings.ToLower(string(role)), userSeq.Add(1), i, time.Now().UnixNano())
	if err := pool.QueryRow(ctx, `INSERT INTO users (email, password_hash, name, role) VALUES ($1, 'x', $2, $3) RETURNING id`,
		u.Email, u.Name, string(role)).Scan(&u.ID); err != nil {
		return User{}, err
	}
	var err error
	if u.Token, err = tokens.Issue(domain.Actor{UserID: u.ID, Role: role}); err != nil {
		return User{}, err
	}
	return u, nil
}
