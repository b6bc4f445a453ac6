package auth

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/lockstep/lockstep/domain"
)

// AccountChannel is the PostgreSQL NOTIFY channel on which role changes and
// account removals are announced, in the transaction that makes them, so
// every instance sharing the database hears of them once they are committed
// (live closes the user's sockets; Tokens refuses a removed user's tokens).
const AccountChannel = "lockstep_accounts"

// AccountChange is the JSON payload of a notification on AccountChannel.
type AccountChange struct {
	UserID  int64       `json:"user_id"`
	Role    domain.Role `json:"role,omitempty"`    // the new role (a role change)
	Removed bool        `json:"removed,omitempty"` // the account was removed
}

func notifyAccount(ctx context.Context, tx pgx.Tx, ch AccountChange) error {
	payload, err := json.Marshal(ch)
	if err != nil {
		return err
	}
	if _, err := tx.Exec(ctx, `SELECT pg_notify($1, $2)`, AccountChannel, string(payload)); err != nil {
		return fmt.Errorf("notify account change: %w", err)
	}
	return nil
}

var errLastAdminRemoved = &domain.Error{
	Code: domain.CodeConflict, Message: "the last ADMIN cannot be removed",
	Details: map[string]any{"user_id": "another user must be ADMIN first"},
}

// RemoveUser deletes the account with id. Unknown id is NOT_FOUND; removing
// the only ADMIN is CONFLICT and changes nothing. Its refresh tokens go with
// it (the table cascades), so no refresh works again; its access tokens are
// refused from then on by every instance that heard the notification on
// AccountChannel (this one at once), and no new socket opens with them
// anywhere (sockets check the account in the database). Its events and
// history stay: they name the user by id only.
func (s *Service) RemoveUser(ctx context.Context, id int64) error {
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		current, err := lockRole(ctx, tx, id)
		if err != nil {
			return err
		}
		if current == domain.RoleAdmin {
			if err := otherAdmin(ctx, tx, id, errLastAdminRemoved); err != nil {
				return err
			}
		}
		if _, err := tx.Exec(ctx, `DELETE FROM users WHERE id = $1`, id); err != nil {
			return fmt.Errorf("remove user %d: %w", id, err)
		}
		return notifyAccount(ctx, tx, AccountChange{UserID: id, Removed: true})
	})
	if err != nil {
		return err
	}
	s.tokens.RevokeUser(id)
	s.log.InfoContext(ctx, "user removed", "user_id", id)
	return nil
}

// revocations are users whose access tokens Verify refuses: removed
// accounts, each for one access TTL after its removal (older tokens have
// expired by then). Ids are never reused.
type revocations struct {
	mu    sync.Mutex
	until map[int64]time.Time
}

func (r *revocations) add(id int64, until time.Time) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.until == nil {
		r.until = map[int64]time.Time{}
	}
	r.until[id] = until
}

func (r *revocations) revoked(id int64, now time.Time) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	until, ok := r.until[id]
	if ok && !now.Before(until) {
		delete(r.until, id)
		return false
	}
	return ok
}

// RevokeUser makes Verify refuse every access token of the user from now on
// (for one access TTL, by when every token issued before has expired). The
// account listener calls it on every instance when an account is removed.
func (t *Tokens) RevokeUser(id int64) {
	t.revoked.add(id, t.now().Add(t.accessTTL+time.Minute))
}

// lockRole takes the role-change lock for the transaction and returns user
// id's role, its row locked. Read committed: the statement's snapshot is
// taken after the lock, so it sees every role change committed before.
func lockRole(ctx context.Context, tx pgx.Tx, id int64) (domain.Role, error) {
	if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock(hashtextextended($1, 0))`, roleChangeLock); err != nil {
		return "", fmt.Errorf("lock role changes: %w", err)
	}
	var current string
	err := tx.QueryRow(ctx, `SELECT role FROM users WHERE id = $1 FOR UPDATE`, id).Scan(&current)
	if errors.Is(err, pgx.ErrNoRows) {
		return "", domain.NotFound("user")
	}
	if err != nil {
		return "", fmt.Errorf("load user %d: %w", id, err)
	}
	return domain.Role(current), nil
}

// otherAdmin returns refusal unless an ADMIN other than id exists.
func otherAdmin(ctx context.Context, tx pgx.Tx, id int64, refusal error) error {
	var others bool
	if err := tx.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM users WHERE role = 'ADMIN' AND id <> $1)`, id).Scan(&others); err != nil {
		return fmt.Errorf("count admins: %w", err)
	}
	if !others {
		return refusal
	}
	return nil
}
