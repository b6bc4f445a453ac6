package pgdb

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"
)

// Querier is what NextID needs of a pool or a transaction.
type Querier interface {
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
}

// NextID allocates an id from sequence. With a scope (a command's key and
// the sequence, eventstore.CommandScope), every call with that scope answers
// the id the first one allocated (table command_ids), so a command sent
// again after its first attempt gets the same new stream; without one it is
// nextval.
func NextID(ctx context.Context, q Querier, sequence, scope string) (int64, error) {
	var id int64
	if scope == "" {
		if err := q.QueryRow(ctx, `SELECT nextval($1::regclass)`, sequence).Scan(&id); err != nil {
			return 0, fmt.Errorf("allocate id from %s: %w", sequence, err)
		}
		return id, nil
	}
	sum := sha256.Sum256([]byte(scope)) // any bytes (a key may hold NUL), fixed length
	key := hex.EncodeToString(sum[:])
	// Two attempts at once: the loser's INSERT waits for the winner's and
	// does nothing, and its snapshot may not show the winner's row yet; the
	// second round's statement sees it.
	for range 2 {
		err := q.QueryRow(ctx, `WITH ins AS (
				INSERT INTO command_ids (scope, id) VALUES ($1, nextval($2::regclass))
				ON CONFLICT (scope) DO NOTHING RETURNING id)
			SELECT id FROM ins UNION ALL SELECT id FROM command_ids WHERE scope = $1 LIMIT 1`,
			key, sequence).Scan(&id)
		if errors.Is(err, pgx.ErrNoRows) {
			continue
		}
		if err != nil {
			return 0, fmt.Errorf("allocate id from %s: %w", sequence, err)
		}
		return id, nil
	}
	return 0, fmt.Errorf("allocate id from %s: scope %q neither inserted nor found", sequence, scope)
}
