package commands

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/gin-gonic/gin"
)

// A command whose read-model wait fails still answers 2xx (it has happened),
// and says so in X-Read-Your-Writes; one whose wait succeeds does not.
func TestAnswerSaysWhenReadModelsHadNotCaughtUp(t *testing.T) {
	gin.SetMode(gin.TestMode)
	idemRan := false
	idem := func(c *gin.Context) { idemRan = true; c.Next() }
	r := gin.New()
	for path, wait := range map[string]func(context.Context, uint64) error{
		"/caught-up": func(context.Context, uint64) error { return nil },
		"/behind":    func(context.Context, uint64) error { return context.DeadlineExceeded },
		"/parked":    func(context.Context, uint64) error { return errors.New("projector failing") },
	} {
		r.POST(path, withReadYourWrites(idem), func(c *gin.Context) {
			waitReadModels(c.Request.Context(), wait, 42)
			c.JSON(http.StatusCreated, gin.H{"id": 1})
		})
	}
	for path, want := range map[string]string{"/caught-up": "", "/behind": "timeout", "/parked": "timeout"} {
		idemRan = false
		w := httptest.NewRecorder()
		r.ServeHTTP(w, httptest.NewRequest(http.MethodPost, path, nil))
		if w.Code != http.StatusCreated || w.Header().Get(ReadYourWritesHeader) != want || !idemRan {
			t.Errorf("%s: status %d, %s %q, idempotency middleware ran: %v; want 201, %q, true", path, w.Code, ReadYourWritesHeader, w.Header().Get(ReadYourWritesHeader), idemRan, want)
		}
	}
}
