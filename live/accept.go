package live

import (
	"context"
	"encoding/json"
	"log/slog"

	"github.com/gin-gonic/gin"
	"github.com/jackc/pgx/v5"

	"github.com/lockstep/lockstep/domain"
	"github.com/lockstep/lockstep/web"
)

// TokenVerifier turns a socket's access token into its actor (auth.Tokens).
type TokenVerifier interface {
	Verify(token string) (domain.Actor, error)
}

// Gate is the one way every socket endpoint admits a request: the socket
// handlers of readapi and analytics call Accept first, then decide what the
// actor may see (Reject with 4403/4404), then Serve.
type Gate struct {
	Hub    *Hub
	Tokens TokenVerifier
	// Log receives the debug lines of refused and ended sockets (nil: slog.Default).
	Log *slog.Logger
	// Name names the socket in those lines ("student socket", "replay socket", …).
	Name string
}

// Accept reads the socket's options and authenticates its caller.
//
//   - A bad ?after= or ?batch= is answered before the upgrade with the
//     contract's 400 INVALID_REQUEST (web.Error), naming the field: the socket
//     never opens.
//   - A missing, bad or expired token (the Authorization header when present,
//     else ?token=, see Token) opens the socket only to close it with 4401 and
//     the reason ("invalid or missing token" or "token expired").
//
// On refusal the request is answered and aborted, and ok is false.
func (g Gate) Accept(c *gin.Context) (actor domain.Actor, opts Options, ok bool) {
	opts, err := ParseOptions(c.Request)
	if err != nil {
		web.Error(c, err)
		return domain.Actor{}, Options{}, false
	}
	actor, err = g.Tokens.Verify(Token(c.Request))
	if err != nil {
		g.Reject(c, CloseUnauthorized, UnauthorizedReason(err))
		return domain.Actor{}, Options{}, false
	}
	return actor, opts, true
}

// Reject opens the socket only to close it with code and reason (4403 for a
// caller who may not see it, 4404 for an unknown resource), and aborts the
// request.
func (g Gate) Reject(c *gin.Context, code int, reason string) {
	if err := g.Hub.Reject(c.Writer, c.Request, code, reason); err != nil {
		g.logger().Debug("reject "+g.name(), "error", err)
	}
	c.Abort()
}

// Serve serves the socket until it closes and aborts the request; args are
// added to the debug line an ended socket logs.
func (g Gate) Serve(c *gin.Context, sub Subscription, args ...any) {
	if err := g.Hub.Serve(c.Writer, c.Request, sub); err != nil {
		g.logger().Debug(g.name(), append(args, "error", err)...)
	}
	c.Abort()
}

func (g Gate) logger() *slog.Logger {
	if g.Log != nil {
		return g.Log
	}
	return slog.Default()
}

func (g Gate) name() string {
	if g.Name != "" {
		return g.Name
	}
	return "socket"
}

// Follow is the Subscription of a socket that follows channel from the
// client's options (?after=, ?batch=): without ?after= it starts with
// snapshot, read at producer's checkpoint.
func (o Options) Follow(channel, kind, producer string, snapshot SnapshotFunc) Subscription {
	return Subscription{Channel: channel, Kind: kind, After: o.After, Batch: o.Batch, Producer: producer, Snapshot: snapshot}
}

// SnapshotFunc reads a socket's on-connect message (Subscription.Snapshot).
type SnapshotFunc = func(ctx context.Context, tx pgx.Tx) (json.RawMessage, error)

// Snapshot is the SnapshotFunc whose message is {"type": typ, "data": …},
// data being what read returns.
func Snapshot[T any](typ string, read func(ctx context.Context, tx pgx.Tx) (T, error)) SnapshotFunc {
	return func(ctx context.Context, tx pgx.Tx) (json.RawMessage, error) {
		data, err := read(ctx, tx)
		if err != nil {
			return nil, err
		}
		return json.Marshal(map[string]any{"type": typ, "data": data})
	}
}
