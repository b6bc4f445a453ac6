package app_test

import (
	"context"
	"testing"
	"time"

	"github.com/lockstep/lockstep/cmd/lockstep/app"
	"github.com/lockstep/lockstep/cmd/lockstep/app/apptest"
	"github.com/lockstep/lockstep/idempotency"
)

func TestPruningKeepsWhatIsStillNeeded(t *testing.T) {
	s := apptest.Start(t, apptest.WithConfig(func(c *app.Config) { c.Workers = false }))
	u := s.NewUser(t, "STUDENT", "김학생") // one live refresh token
	ctx := context.Background()
	db := s.DB.Pool
	now := time.Now()
	for _, q := range []string{
		`INSERT INTO idempotency_keys (user_id, key, fingerprint, created_at) VALUES (1, 'old', 'f', now() - interval '25 hours')`,
		`INSERT INTO idempotency_keys (user_id, key, fingerprint, created_at) VALUES (1, 'recent', 'f', now() - interval '23 hours')`,
	} {
		if _, err := db.Exec(ctx, q); err != nil {
			t.Fatal(err)
		}
	}
	for _, q := range []string{
		`INSERT INTO refresh_tokens (user_id, token_hash, family_id, issued_at, expires_at) VALUES ($1, 'long-expired', gen_random_uuid(), now() - interval '40 days', now() - interval '2 days')`,
		`INSERT INTO refresh_tokens (user_id, token_hash, family_id, issued_at, expires_at) VALUES ($1, 'just-expired', gen_random_uuid(), now() - interval '30 days', now() - interval '1 hour')`,
	} {
		if _, err := db.Exec(ctx, q, u.ID); err != nil {
			t.Fatal(err)
		}
	}
	if n, err := idempotency.Prune(ctx, db, now); err != nil || n != 1 {
		t.Fatalf("pruned %d idempotency keys (%v), want the one older than %s", n, err, idempotency.Retention)
	}
	var keys []string
	rows, _ := db.Query(ctx, `SELECT key FROM idempotency_keys ORDER BY key`)
	for rows.Next() {
		var k string
		_ = rows.Scan(&k)
		keys = append(keys, k)
	}
	if len(keys) != 1 || keys[0] != "recent" {
		t.Fatalf("idempotency keys left: %v", keys)
	}
	if n, err := s.App.Auth().PruneRefreshTokens(ctx, now); err != nil || n != 1 {
		t.Fatalf("pruned %d refresh tokens (%v), want only the long-expired one", n, err)
	}
	// The user's live session still refreshes.
	if r := s.Post(t, "/api/auth/refresh", "", map[string]any{"refresh_token": u.RefreshToken}); r.Status != 200 {
		t.Fatalf("refresh after pruning = %d %s", r.Status, r.Body)
	}
}
