package eventstore

import (
	"context"
	"strconv"

	"github.com/google/uuid"
)

type commandKeyCtx struct{}

// WithCommandKey marks ctx as carrying one client command, identified by key
// (the idempotency middleware uses the caller's id and Idempotency-Key). A
// command executed under it derives its events' ids from the key, so the
// same command sent again after its first attempt committed — the answer
// was lost, or a later step failed — finds its events and is not applied
// twice.
func WithCommandKey(ctx context.Context, key string) context.Context {
	if key == "" {
		return ctx
	}
	return context.WithValue(ctx, commandKeyCtx{}, key)
}

// CommandKey is the key set by WithCommandKey ("" if none).
func CommandKey(ctx context.Context) string {
	k, _ := ctx.Value(commandKeyCtx{}).(string)
	return k
}

// CommandScope is the scope of the command of ctx in stream ("" without a
// command key): the events it appends there get the ids CommandEventID(scope, n).
func CommandScope(ctx context.Context, stream string) string {
	k := CommandKey(ctx)
	if k == "" {
		return ""
	}
	return k + "\x00" + stream
}

// commandNamespace is the UUID namespace of the command events' ids.
var commandNamespace = uuid.MustParse("5b0c7a4e-3f6d-4b8e-9d1a-7c2e4f6a8b10")

// CommandEventID is the id of the n-th event (from 0) that the command of
// scope appends: the same for every attempt of the command, different for
// every other command.
func CommandEventID(scope string, n int) uuid.UUID {
	return uuid.NewSHA1(commandNamespace, []byte(scope+"\x00"+strconv.Itoa(n)))
}
