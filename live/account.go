package live

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/lockstep/lockstep/auth"
	"github.com/lockstep/lockstep/domain"
)

// Sockets follow the account: a socket remembers whose token opened it
// (HubConfig.Account), and ListenAccounts closes a user's sockets on every
// instance when an admin changes the user's role (4403) or removes the
// account (4401). Access tokens are not checked again on an open socket: one
// whose token expires stays open (it was admitted; the account checks above
// are what end it early).

// Close reasons of sockets closed because their account changed.
const (
	ReasonAccountRemoved = "account removed"
	ReasonRoleChanged    = "role changed: sign in again"
)

// account is the HubConfig.Account check, or nobody when there is none.
func (h *Hub) account(r *http.Request) (domain.Actor, int, string) {
	if h.cfg.Account == nil {
		return domain.Actor{}, 0, ""
	}
	return h.cfg.Account(r)
}

// CheckAccount is a HubConfig.Account: it verifies the request's access token
// with verify and checks the account in the database, so that no instance
// opens a socket for a removed account (4401) or for a token that carries a
// role the user no longer has (4401: a refresh carries the new role), even one
// that missed the notification.
func CheckAccount(pool *pgxpool.Pool, verify func(token string) (domain.Actor, error)) func(*http.Request) (domain.Actor, int, string) {
	return func(r *http.Request) (domain.Actor, int, string) {
		actor, err := verify(Token(r))
		if err != nil {
			return domain.Actor{}, CloseUnauthorized, UnauthorizedReason(err)
		}
		ctx, cancel := context.WithTimeout(r.Context(), 5*time.Second)
		defer cancel()
		var role string
		err = pool.QueryRow(ctx, `SELECT role FROM users WHERE id = $1`, actor.UserID).Scan(&role)
		switch {
		case errors.Is(err, pgx.ErrNoRows):
			return domain.Actor{}, CloseUnauthorized, ReasonAccountRemoved
		case err != nil:
			return domain.Actor{}, CloseGoingAway, "server busy: reconnect"
		case domain.Role(role) != actor.Role:
			return domain.Actor{}, CloseUnauthorized, ReasonRoleChanged
		}
		return actor, 0, ""
	}
}

// CloseAccount closes this process's sockets of the user: all of them with
// 4401 when the account was removed, else those opened with a role other
// than the user's new one, with 4403. It returns how many it closed.
func (h *Hub) CloseAccount(ch auth.AccountChange) int {
	var victims []*client
	h.mu.RLock()
	for c := range h.clients {
		if c.actor.UserID == ch.UserID && (ch.Removed || c.actor.Role != ch.Role) {
			victims = append(victims, c)
		}
	}
	h.mu.RUnlock()
	for _, c := range victims {
		if ch.Removed {
			c.closeWith(CloseUnauthorized, ReasonAccountRemoved, false)
		} else {
			c.closeWith(CloseForbidden, ReasonRoleChanged, false)
		}
	}
	return len(victims)
}

// accounts is the account of every open socket of this process.
func (h *Hub) accounts() map[int64]domain.Role {
	h.mu.RLock()
	defer h.mu.RUnlock()
	out := map[int64]domain.Role{}
	for c := range h.clients {
		if c.actor.UserID != 0 {
			out[c.actor.UserID] = c.actor.Role
		}
	}
	return out
}

// ListenAccounts follows auth.AccountChannel until ctx ends: each change
// closes the user's sockets (CloseAccount) and is handed to onChange (the app
// revokes a removed user's tokens there). It holds one connection of pool;
// when that connection is lost it reconnects (backing off up to 5 s) and
// then compares every open socket's account with the database, so a change
// made while it was away still closes the sockets it concerns.
func ListenAccounts(ctx context.Context, pool *pgxpool.Pool, hub *Hub, onChange func(auth.AccountChange), log *slog.Logger) error {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	backoff := 100 * time.Millisecond
	for {
		err := listenAccounts(ctx, pool, hub, onChange, log, func() { backoff = 100 * time.Millisecond })
		if ctx.Err() != nil {
			return nil
		}
		log.Warn("account listener lost its connection; reconnecting", "err", err, "in", backoff)
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(backoff):
		}
		backoff = min(backoff*2, 5*time.Second)
	}
}

func listenAccounts(ctx context.Context, pool *pgxpool.Pool, hub *Hub, onChange func(auth.AccountChange), log *slog.Logger, listening func()) error {
	pc, err := pool.Acquire(ctx)
	if err != nil {
		return err
	}
	// The connection leaves the pool: LISTEN state must not be handed to
	// another user of the pool, and a broken connection is simply closed.
	conn := pc.Hijack()
	defer conn.Close(context.Background())
	if _, err := conn.Exec(ctx, `LISTEN `+pgx.Identifier{auth.AccountChannel}.Sanitize()); err != nil {
		return err
	}
	listening()
	if err := sweepAccounts(ctx, conn, hub, onChange); err != nil {
		return err
	}
	for {
		n, err := conn.WaitForNotification(ctx)
		if err != nil {
			return err
		}
		var ch auth.AccountChange
		if err := json.Unmarshal([]byte(n.Payload), &ch); err != nil || ch.UserID <= 0 {
			log.Warn("ignoring a malformed account notification", "payload", n.Payload)
			continue
		}
		applyAccount(hub, onChange, ch, log)
	}
}

func applyAccount(hub *Hub, onChange func(auth.AccountChange), ch auth.AccountChange, log *slog.Logger) {
	if onChange != nil {
		onChange(ch)
	}
	if n := hub.CloseAccount(ch); n > 0 {
		log.Info("closed sockets of a changed account", "user_id", ch.UserID, "removed", ch.Removed, "role", string(ch.Role), "sockets", n)
	}
}

// sweepAccounts closes the sockets whose account is gone or has another role
// now: the changes announced while no listener was connected.
func sweepAccounts(ctx context.Context, conn *pgx.Conn, hub *Hub, onChange func(auth.AccountChange)) error {
	open := hub.accounts()
	if len(open) == 0 {
		return nil
	}
	ids := make([]int64, 0, len(open))
	for id := range open {
		ids = append(ids, id)
	}
	rows, err := conn.Query(ctx, `SELECT id, role FROM users WHERE id = ANY($1)`, ids)
	if err != nil {
		return fmt.Errorf("sweep accounts: %w", err)
	}
	current := map[int64]domain.Role{}
	for rows.Next() {
		var (
			id   int64
			role string
		)
		if err := rows.Scan(&id, &role); err != nil {
			rows.Close()
			return fmt.Errorf("sweep accounts: %w", err)
		}
		current[id] = domain.Role(role)
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("sweep accounts: %w", err)
	}
	for id := range open {
		role, ok := current[id]
		if !ok {
			if onChange != nil {
				onChange(auth.AccountChange{UserID: id, Removed: true})
			}
			hub.CloseAccount(auth.AccountChange{UserID: id, Removed: true})
			continue
		}
		hub.CloseAccount(auth.AccountChange{UserID: id, Role: role})
	}
	return nil
}
