package web

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/gin-gonic/gin"
	"github.com/jackc/pgx/v5/pgconn"
)

// A terminated database connection is 503 UNAVAILABLE with Retry-After in
// the contract's shape (a client retries it); any other unknown error stays
// 500 INTERNAL without one.
func TestTransientDatabaseErrorIs503(t *testing.T) {
	gin.SetMode(gin.TestMode)
	for _, tc := range []struct {
		err        error
		status     int
		code, retr string
	}{
		{fmt.Errorf("append: %w", &pgconn.PgError{Severity: "FATAL", Code: "57P01", Message: "terminating connection due to administrator command"}), 503, "UNAVAILABLE", "1"},
		{fmt.Errorf("tx: %w", &pgconn.PgError{Severity: "ERROR", Code: "40001", Message: "could not serialize access"}), 503, "UNAVAILABLE", "1"},
		{&pgconn.ConnectError{}, 503, "UNAVAILABLE", "1"},
		{&pgconn.PgError{Severity: "ERROR", Code: "23505", Message: "duplicate key"}, 500, "INTERNAL", ""},
		{errors.New("boom"), 500, "INTERNAL", ""},
	} {
		w := httptest.NewRecorder()
		c, _ := gin.CreateTestContext(w)
		c.Request = httptest.NewRequest(http.MethodPost, "/x", nil)
		Error(c, tc.err)
		var body ErrorBody
		if err := json.Unmarshal(w.Body.Bytes(), &body); err != nil {
			t.Fatalf("%v: body %s: %v", tc.err, w.Body, err)
		}
		if w.Code != tc.status || string(body.Error.Code) != tc.code || body.Error.Message == "" || w.Header().Get("Retry-After") != tc.retr {
			t.Errorf("%v: %d %s %q Retry-After %q, want %d %s Retry-After %q", tc.err, w.Code, body.Error.Code, body.Error.Message,
				w.Header().Get("Retry-After"), tc.status, tc.code, tc.retr)
		}
	}
}
