package console

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/gin-gonic/gin"
)

func newEngine() *gin.Engine {
	gin.SetMode(gin.ReleaseMode)
	r := gin.New()
	Routes(r)
	r.GET("/api/ping", func(c *gin.Context) { c.String(http.StatusOK, "api") })
	r.GET("/qr/:file", func(c *gin.Context) { c.String(http.StatusOK, "qr") })
	return r
}

func get(t *testing.T, r http.Handler, path string) *httptest.ResponseRecorder {
	t.Helper()
	w := httptest.NewRecorder()
	r.ServeHTTP(w, httptest.NewRequest(http.MethodGet, path, nil))
	return w
}

// Every page and file carries the security headers and a UTF-8 charset; the
// page has no inline script (the CSP would block it).
func TestPagesCarrySecurityHeaders(t *testing.T) {
	r := newEngine()
	for path, ctype := range map[string]string{
		"/":                         "text/html; charset=utf-8",
		"/join/ABC234":              "text/html; charset=utf-8",
		"/replay/":                  "text/html; charset=utf-8",
		"/replay/12":                "text/html; charset=utf-8",
		"/static/js/main.js":        "text/javascript; charset=utf-8",
		"/static/vendor/preact.mjs": "text/javascript; charset=utf-8",
		"/static/app.css":           "text/css; charset=utf-8",
	} {
		w := get(t, r, path)
		if w.Code != http.StatusOK {
			t.Errorf("%s: %d", path, w.Code)
			continue
		}
		if got := w.Header().Get("Content-Type"); got != ctype {
			t.Errorf("%s: Content-Type %q, want %q", path, got, ctype)
		}
		csp := w.Header().Get("Content-Security-Policy")
		for _, want := range []string{"script-src 'self'", "frame-ancestors 'none'", "object-src 'none'"} {
			if !strings.Contains(csp, want) {
				t.Errorf("%s: CSP %q lacks %q", path, csp, want)
			}
		}
		if strings.Contains(csp, "unsafe-inline") || strings.Contains(csp, "unsafe-eval") {
			t.Errorf("%s: CSP allows unsafe sources: %q", path, csp)
		}
		if w.Header().Get("X-Content-Type-Options") != "nosniff" || w.Header().Get("Referrer-Policy") != "no-referrer" {
			t.Errorf("%s: headers %v", path, w.Header())
		}
	}
	page := get(t, r, "/").Body.String()
	if strings.Count(page, "<script") != strings.Count(page, "<script type=\"module\" src=") {
		t.Errorf("index.html has a script without src:\n%s", page)
	}
}

// The console leaves the backend's paths alone and answers 404 for unknown files.
func TestRoutesDoNotClash(t *testing.T) {
	r := newEngine()
	if w := get(t, r, "/api/ping"); w.Body.String() != "api" {
		t.Errorf("/api/ping answered %q", w.Body.String())
	}
	if w := get(t, r, "/qr/ABC234.png"); w.Body.String() != "qr" {
		t.Errorf("/qr answered %q", w.Body.String())
	}
	for _, p := range []string{"/static/nope.js", "/static/../console.go", "/static/"} {
		if w := get(t, r, p); w.Code != http.StatusNotFound {
			t.Errorf("%s: %d, want 404", p, w.Code)
		}
	}
}
