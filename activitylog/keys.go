package activitylog

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/lockstep/lockstep/idempotency"
)

// KeyHeader is the request header that makes a log request safe to retry.
const KeyHeader = "Idempotency-Key"

// maxKeyLen bounds an Idempotency-Key (as for commands).
const maxKeyLen = 200

// KeyRetention is how long a key is remembered: a retry within it stores
// nothing twice; a key reused after it is a new request.
const KeyRetention = 24 * time.Hour

// ErrKeyReused is returned by KeyStore.Reserve for a key already used with
// a different request (→ 409 CONFLICT).
var ErrKeyReused = errors.New("Idempotency-Key was already used for a different request")

// KeyStore remembers which log ids an Idempotency-Key reserved.
type KeyStore interface {
	// Reserve returns the log ids and received time of the first request
	// with (user, key): when the key is new it takes n fresh ids with take
	// and remembers them with now; when it is known with the same
	// fingerprint it returns what was remembered (replay true); with another
	// fingerprint it returns ErrKeyReused.
	Reserve(ctx context.Context, user int64, key, fingerprint string, n int, now time.Time,
		take func(context.Context, int) ([]int64, error)) (ids []int64, receivedAt time.Time, replay bool, err error)
}

// PGKeys is a KeyStore over the activity_log_keys table.
type PGKeys struct {
	pool *pgxpool.Pool
}

// NewPGKeys returns a KeyStore over pool.
func NewPGKeys(pool *pgxpool.Pool) *PGKeys {
	if pool == nil {
		panic("activitylog: NewPGKeys needs a pool")
	}
	return &PGKeys{pool: pool}
}

// Reserve implements KeyStore. A key older than KeyRetention that
// housekeeping has not pruned yet counts as new. Two concurrent first requests with one key
// both take ids, one row wins, and both answer (and publish) the winner's
// ids, so the logs are still stored once.
func (k *PGKeys) Reserve(ctx context.Context, user int64, key, fingerprint string, n int, now time.Time,
	take func(context.Context, int) ([]int64, error)) ([]int64, time.Time, bool, error) {
	ids, at, found, err := k.lookup(ctx, user, key, fingerprint, n)
	if err != nil || found {
		return ids, at, found, err
	}
	fresh, err := take(ctx, n)
	if err != nil {
		return nil, time.Time{}, false, err
	}
	tag, err := k.pool.Exec(ctx, `INSERT INTO activity_log_keys (user_id, key, fingerprint, log_ids, received_at)
		VALUES ($1, $2, $3, $4, $5)
		ON CONFLICT (user_id, key) DO UPDATE SET fingerprint = $3, log_ids = $4, received_at = $5, created_at = now()
		WHERE activity_log_keys.created_at < $6`, user, key, fingerprint, fresh, now, time.Now().Add(-KeyRetention))
	if err != nil {
		return nil, time.Time{}, false, fmt.Errorf("remember log Idempotency-Key: %w", err)
	}
	if tag.RowsAffected() == 1 {
		return fresh, now, false, nil
	}
	ids, at, found, err = k.lookup(ctx, user, key, fingerprint, n)
	if err == nil && !found {
		err = errors.New("log Idempotency-Key vanished while reserving it")
	}
	return ids, at, found, err
}

func (k *PGKeys) lookup(ctx context.Context, user int64, key, fingerprint string, n int) ([]int64, time.Time, bool, error) {
	var fp string
	var ids []int64
	var at time.Time
	err := k.pool.QueryRow(ctx, `SELECT fingerprint, log_ids, received_at FROM activity_log_keys
		WHERE user_id = $1 AND key = $2 AND created_at >= $3`, user, key, time.Now().Add(-KeyRetention)).Scan(&fp, &ids, &at)
	switch {
	case errors.Is(err, pgx.ErrNoRows):
		return nil, time.Time{}, false, nil
	case err != nil:
		return nil, time.Time{}, false, fmt.Errorf("look up log Idempotency-Key: %w", err)
	case fp != fingerprint || len(ids) != n:
		return nil, time.Time{}, false, ErrKeyReused
	}
	return ids, at.UTC(), true, nil
}

// PruneKeys deletes keys older than KeyRetention and returns how many.
func PruneKeys(ctx context.Context, pool *pgxpool.Pool, now time.Time) (int64, error) {
	tag, err := pool.Exec(ctx, `DELETE FROM activity_log_keys WHERE created_at < $1`, now.Add(-KeyRetention))
	if err != nil {
		return 0, fmt.Errorf("prune log Idempotency-Keys: %w", err)
	}
	return tag.RowsAffected(), nil
}

// keyed reads an Idempotency-Key and, when there is one, fingerprints the
// request (path and body) for store. It runs after the body limit.
func keyed(c *gin.Context) {
	key, fp, ok := idempotency.KeyedRequest(c, KeyHeader, maxKeyLen, c.Request.URL.Path+"\n")
	if ok && key != "" {
		c.Set(ctxKey, [2]string{key, fp})
	}
}

const ctxKey = "activitylog.idempotency"
