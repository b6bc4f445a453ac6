// Package console serves the web front end — the instructor console, the
// student phone view (the QR code's /join/{code}) and the analyst replay — as
// static files embedded in the binary. The pages talk to the backend only
// through the public HTTP API and sockets, like any other client.
package console

import (
	"embed"
	"io/fs"
	"mime"
	"net/http"
	"path"
	"strings"

	"github.com/gin-gonic/gin"
)

//go:embed static
var files embed.FS

// Static is the embedded folder (index.html, app.css, js/, vendor/).
var Static, _ = fs.Sub(files, "static")

// CSP is the Content-Security-Policy of every page and file: scripts and
// styles only from this origin (no inline script), sockets to this origin,
// never framed.
const CSP = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data: blob:; " +
	"connect-src 'self'; font-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"

// Routes mounts the pages on GET/HEAD /, /join/:code, /replay and
// /replay/*, and the files on /static/*. Every other path (the API, the
// sockets, /qr, /healthz, /readyz, /metrics) stays the backend's.
func Routes(r gin.IRoutes) {
	page := servePage("index.html")
	for _, p := range []string{"/", "/join/:code", "/replay", "/replay/*rest"} {
		r.GET(p, page)
		r.HEAD(p, page)
	}
	r.GET("/static/*filepath", serveFile)
	r.HEAD("/static/*filepath", serveFile)
}

// Headers sets the security headers every answer of the console carries.
func Headers(h http.Header) {
	h.Set("Content-Security-Policy", CSP)
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("X-Frame-Options", "DENY")
	h.Set("Referrer-Policy", "no-referrer")
	h.Set("Cross-Origin-Opener-Policy", "same-origin")
	h.Set("Permissions-Policy", "camera=(), microphone=(), geolocation=()")
}

func servePage(name string) gin.HandlerFunc {
	return func(c *gin.Context) {
		data, err := fs.ReadFile(Static, name)
		if err != nil {
			c.Status(http.StatusInternalServerError)
			return
		}
		Headers(c.Writer.Header())
		c.Header("Cache-Control", "no-cache")
		c.Data(http.StatusOK, "text/html; charset=utf-8", data)
	}
}

func serveFile(c *gin.Context) {
	name := strings.TrimPrefix(path.Clean("/"+c.Param("filepath")), "/")
	data, err := fs.ReadFile(Static, name)
	if err != nil || name == "" {
		Headers(c.Writer.Header())
		c.Data(http.StatusNotFound, "text/plain; charset=utf-8", []byte("not found\n"))
		return
	}
	Headers(c.Writer.Header())
	// Files are not fingerprinted: revalidate every time (they are small).
	c.Header("Cache-Control", "no-cache")
	c.Data(http.StatusOK, contentType(name), data)
}

func contentType(name string) string {
	switch path.Ext(name) {
	case ".js", ".mjs":
		return "text/javascript; charset=utf-8"
	case ".css":
		return "text/css; charset=utf-8"
	case ".html":
		return "text/html; charset=utf-8"
	case ".svg":
		return "image/svg+xml"
	case ".json", ".map":
		return "application/json; charset=utf-8"
	}
	if t := mime.TypeByExtension(path.Ext(name)); t != "" {
		return t
	}
	return "application/octet-stream"
}
