// Package idempotency makes command endpoints safe to retry: a request sent
// again with the same Idempotency-Key by the same caller gets the first
// answer back, and the command runs once.
package idempotency

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/lockstep/lockstep/domain"
	"github.com/lockstep/lockstep/eventstore"
	"github.com/lockstep/lockstep/web"
)

// Header is the request header carrying the key.
const Header = "Idempotency-Key"

// Middleware remembers the answers to requests that carry an Idempotency-Key.
// userID returns the authenticated caller (the key is scoped to them), so it
// runs after authentication. A key reused with a different request (method,
// path or body) → 409; a key whose first request is still running → 409.
// Answers with a status of 500 or more are not remembered, so a retry runs again.
func Middleware(pool *pgxpool.Pool, log *slog.Logger, userID func(*gin.Context) int64) gin.HandlerFunc {
	return func(c *gin.Context) {
		if c.GetHeader(Header) == "" || c.Request.Method == http.MethodGet {
			c.Next()
			return
		}
		key, fp, ok := KeyedRequest(c, Header, 200, c.Request.Method+" "+c.Request.URL.Path+"\n")
		if !ok {
			return
		}
		uid := userID(c)
		ctx := c.Request.Context()

		_, err := pool.Exec(ctx, `INSERT INTO idempotency_keys (user_id, key, fingerprint) VALUES ($1, $2, $3)`, uid, key, fp)
		var pgErr *pgconn.PgError
		if errors.As(err, &pgErr) && pgErr.Code == "23505" {
			// A first attempt still "in progress" past the lease died with
			// its process or lost its connection before it could record or
			// release the key: this request takes it over. The command key
			// below keeps a command that did commit from being applied twice.
			tag, lerr := pool.Exec(ctx, `UPDATE idempotency_keys SET created_at = now()
				WHERE user_id = $1 AND key = $2 AND fingerprint = $3 AND status IS NULL AND created_at < now() - make_interval(secs => $4)`,
				uid, key, fp, Lease.Seconds())
			if lerr == nil && tag.RowsAffected() == 1 {
				err = nil
			}
		}
		if errors.As(err, &pgErr) && pgErr.Code == "23505" {
			var storedFP string
			var status *int
			var stored []byte
			err = pool.QueryRow(ctx, `SELECT fingerprint, status, body FROM idempotency_keys WHERE user_id = $1 AND key = $2`, uid, key).Scan(&storedFP, &status, &stored)
			switch {
			case errors.Is(err, pgx.ErrNoRows):
				c.Header("Retry-After", "1")
				web.Error(c, domain.Errorf(domain.CodeConflict, "a request with this Idempotency-Key is in progress; retry"))
			case err != nil:
				web.Error(c, err)
			case storedFP != fp:
				web.Error(c, domain.Errorf(domain.CodeConflict, "Idempotency-Key was already used for a different request"))
			case status == nil:
				c.Header("Retry-After", "1")
				web.Error(c, domain.Errorf(domain.CodeConflict, "a request with this Idempotency-Key is in progress; retry"))
			default:
				c.Header("Idempotent-Replayed", "true")
				c.Data(*status, "application/json; charset=utf-8", stored)
				c.Abort()
			}
			return
		}
		if err != nil {
			web.Error(c, err)
			return
		}

		// The command's events get ids derived from the caller and the key,
		// so a retry after a first attempt that committed finds them.
		c.Request = c.Request.WithContext(eventstore.WithCommandKey(ctx, fmt.Sprintf("%d:%s", uid, key)))
		rec := &recorder{ResponseWriter: c.Writer}
		c.Writer = rec
		c.Next()
		status := rec.Status()
		// The command ran: remember its answer even if the client went away.
		sctx := context.WithoutCancel(ctx)
		if status >= 500 {
			if _, err := pool.Exec(sctx, `DELETE FROM idempotency_keys WHERE user_id = $1 AND key = $2`, uid, key); err != nil {
				log.Error("release idempotency key", "error", err)
			}
			return
		}
		if _, err := pool.Exec(sctx, `UPDATE idempotency_keys SET status = $3, body = $4 WHERE user_id = $1 AND key = $2`, uid, key, status, rec.buf.Bytes()); err != nil {
			log.Error("store idempotent answer", "error", err)
		}
	}
}

type recorder struct {
	gin.ResponseWriter
	buf bytes.Buffer
}

func (r *recorder) Write(b []byte) (int, error) {
	r.buf.Write(b)
	return r.ResponseWriter.Write(b)
}

func (r *recorder) WriteString(s string) (int, error) {
	r.buf.WriteString(s)
	return r.ResponseWriter.WriteString(s)
}

// Lease is how long a first attempt may stay "in progress": a retry after
// it takes the key over (the first attempt's process died, or its database
// connection was cut before it could record or release the key). Until
// then a retry gets 409 with Retry-After.
var Lease = 10 * time.Second

// Retention is how long a key's answer is kept: a retry within it gets the
// first answer; a key reused after it runs as a new request.
const Retention = 24 * time.Hour

// Prune deletes answers older than the retention and returns how many.
func Prune(ctx context.Context, pool *pgxpool.Pool, now time.Time) (int64, error) {
	tag, err := pool.Exec(ctx, `DELETE FROM idempotency_keys WHERE created_at < $1`, now.Add(-Retention))
	if err != nil {
		return 0, fmt.Errorf("prune idempotency keys: %w", err)
	}
	// The ids their commands allocated (pgdb.NextID) go with them.
	ids, err := pool.Exec(ctx, `DELETE FROM command_ids WHERE created_at < $1`, now.Add(-Retention))
	if err != nil {
		return 0, fmt.Errorf("prune command ids: %w", err)
	}
	return tag.RowsAffected() + ids.RowsAffected(), nil
}

// KeyedRequest reads c's idempotency key (the header named header) and, when
// there is one, fingerprints the request: the SHA-256 of what (the method
// and path, as the caller spells them) followed by the body, which it puts
// back for the handler. ok is false when c was answered: a key longer than
// maxLen, or a body that could not be read.
func KeyedRequest(c *gin.Context, header string, maxLen int, what string) (key, fingerprint string, ok bool) {
	key = c.GetHeader(header)
	if key == "" {
		return "", "", true
	}
	if len(key) > maxLen {
		web.Error(c, domain.Invalid("invalid header", map[string]string{header: fmt.Sprintf("must have at most %d characters", maxLen)}))
		return "", "", false
	}
	body, err := io.ReadAll(c.Request.Body)
	if err != nil {
		web.Error(c, web.BindError(err))
		return "", "", false
	}
	c.Request.Body = io.NopCloser(bytes.NewReader(body))
	sum := sha256.Sum256(append([]byte(what), body...))
	return key, hex.EncodeToString(sum[:]), true
}
