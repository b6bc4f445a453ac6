package commands

import (
	"context"
	"net/http"

	"github.com/gin-gonic/gin"

	"github.com/lockstep/lockstep/auth"
	"github.com/lockstep/lockstep/domain"
	"github.com/lockstep/lockstep/eventstore"
	"github.com/lockstep/lockstep/web"
)

// The gin adapters of the command handlers (http_*.go) bind the body, take
// the actor from the token only, call a handler's Handle, and map its result
// or error to the contract's shapes. Nothing else in the package knows HTTP
// (layering_test.go keeps it so).

// ReadYourWritesHeader is set, to "timeout", on a command's 2xx answer when
// the read models had not caught up with the command's events before the
// answer was sent (the wait is bounded; the command has happened all the
// same): a GET right after it may not show the write yet. Absent, a GET right
// after the answer sees the write.
const ReadYourWritesHeader = "X-Read-Your-Writes"

// withReadYourWrites runs before idem (nil: none) on every command route: it
// lets the command's read-model wait mark the answer it is about to give.
func withReadYourWrites(idem gin.HandlerFunc) gin.HandlerFunc {
	return func(c *gin.Context) {
		c.Request = c.Request.WithContext(WithReadModelsBehind(c.Request.Context(), func() {
			c.Header(ReadYourWritesHeader, "timeout")
		}))
		if idem != nil {
			idem(c)
		}
	}
}

// request is what every adapter takes from a request: the actor (from the
// token, never the body) and the events' metadata.
func request(c *gin.Context, lectureID int64) (domain.Actor, eventstore.Metadata) {
	actor := auth.ActorFrom(c)
	return actor, eventstore.Metadata{CorrelationID: web.RequestID(c), UserID: actor.UserID, LectureID: lectureID}
}

// LectureRequestMeta builds the metadata of events caused by an HTTP request:
// the acting user, the correlation id (web.RequestID: the X-Request-ID
// header when short and plain, else a new UUID) and the lecture.
func LectureRequestMeta(c *gin.Context, lectureID int64) eventstore.Metadata {
	_, meta := request(c, lectureID)
	return meta
}

// call runs handle with cmd; on an error it answers it in the contract's
// shape and returns ok == false.
func call[C, R any](c *gin.Context, handle func(context.Context, C) (R, error), cmd C) (R, bool) {
	res, err := handle(c.Request.Context(), cmd)
	if err != nil {
		web.Error(c, err)
		return res, false
	}
	return res, true
}

// noBody is the body of a command route that reads none.
type noBody struct{}

// route is the adapter of the command endpoints: it takes the id in the
// path parameter param (none when ""), binds the body into B (none for
// noBody), builds the command with the actor and metadata of the request
// (command), calls handle and answers its result.
func route[B, C, R any](param string, command func(body B, id int64, actor domain.Actor, meta eventstore.Metadata) C,
	handle func(context.Context, C) (R, error), answer func(*gin.Context, R)) gin.HandlerFunc {
	return adapt(false, param, command, handle, answer)
}

// bodyFirstRoute is route binding the body before it takes the path's id
// (the session endpoints always have: a request wrong in both is told
// about its body).
func bodyFirstRoute[B, C, R any](param string, command func(body B, id int64, actor domain.Actor, meta eventstore.Metadata) C,
	handle func(context.Context, C) (R, error), answer func(*gin.Context, R)) gin.HandlerFunc {
	return adapt(true, param, command, handle, answer)
}

func adapt[B, C, R any](bodyFirst bool, param string, command func(B, int64, domain.Actor, eventstore.Metadata) C,
	handle func(context.Context, C) (R, error), answer func(*gin.Context, R)) gin.HandlerFunc {
	return func(c *gin.Context) {
		var id int64
		var body B
		pathID := func() bool {
			if param == "" {
				return true
			}
			var ok bool
			id, ok = web.IDParam(c, param)
			return ok
		}
		bind := func() bool {
			_, none := any(body).(noBody)
			return none || web.Bind(c, &body)
		}
		first, second := pathID, bind
		if bodyFirst {
			first, second = bind, pathID
		}
		if !first() || !second() {
			return
		}
		actor, meta := request(c, 0)
		if res, ok := call(c, handle, command(body, id, actor, meta)); ok {
			answer(c, res)
		}
	}
}

// answer answers status with view's JSON of the result.
func answer[R, V any](status int, view func(R) V) func(*gin.Context, R) {
	return func(c *gin.Context, res R) { c.JSON(status, view(res)) }
}

// noContent answers 204.
func noContent[R any](c *gin.Context, _ R) { c.Status(http.StatusNoContent) }
