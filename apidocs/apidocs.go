// Package apidocs serves the machine-readable description of Lockstep's API:
// the checked-in OpenAPI 3.1 document of the HTTP routes (openapi.yaml) and
// the AsyncAPI 3 document of the sockets (asyncapi.yaml), as YAML and JSON,
// and /docs, a page rendering both with renderers vendored from npm (Redoc
// and the AsyncAPI React component, served from this origin: no CDN).
//
// The documents are tested against the code: cmd/lockstep/app compares the
// OpenAPI paths and AsyncAPI channels with the gin engine's routes, and the
// whole-app tests (apptest) validate every request, response and socket
// message they see against them.
package apidocs

import (
	"embed"
	"fmt"
	"io/fs"
	"net/http"
	"path"
	"strings"

	"github.com/gin-gonic/gin"
	"github.com/goccy/go-yaml"
)

//go:embed openapi.yaml asyncapi.yaml
var documents embed.FS

//go:embed static
var static embed.FS

// OpenAPIYAML is the OpenAPI 3.1 document as checked in.
func OpenAPIYAML() []byte { return mustRead("openapi.yaml") }

// AsyncAPIYAML is the AsyncAPI 3 document as checked in.
func AsyncAPIYAML() []byte { return mustRead("asyncapi.yaml") }

// OpenAPIJSON is the OpenAPI document as JSON.
func OpenAPIJSON() []byte { return openapiJSON }

// AsyncAPIJSON is the AsyncAPI document as JSON.
func AsyncAPIJSON() []byte { return asyncapiJSON }

var (
	openapiJSON  = mustJSON("openapi.yaml")
	asyncapiJSON = mustJSON("asyncapi.yaml")
)

func mustRead(name string) []byte {
	data, err := documents.ReadFile(name)
	if err != nil {
		panic(err)
	}
	return data
}

// mustJSON converts an embedded document once, at start-up: a document that
// is not valid YAML is a build defect (the package's tests load both).
func mustJSON(name string) []byte {
	data, err := yaml.YAMLToJSON(mustRead(name))
	if err != nil {
		panic(fmt.Sprintf("apidocs: %s is not valid YAML: %v", name, err))
	}
	return data
}

// Paths are the routes this package serves (public, no token).
var Paths = []string{"/openapi.json", "/openapi.yaml", "/asyncapi.json", "/asyncapi.yaml", "/docs"}

// VendorPath is where the page's scripts and styles are served.
const VendorPath = "/docs/vendor/*file"

// CSP of the /docs page: only this origin. The renderers style with inline
// style elements (styled-components), Redoc runs its search in a blob:
// worker, and the AsyncAPI parser compiles JSON Schemas with ajv, which needs
// 'unsafe-eval'. The page holds no token and shows public documents (the
// console's pages keep their stricter CSP).
const CSP = "default-src 'self'; script-src 'self' 'unsafe-eval'; style-src 'self' 'unsafe-inline'; img-src 'self' data: blob:; " +
	"font-src 'self' data:; connect-src 'self'; worker-src 'self' blob:; object-src 'none'; base-uri 'none'; " +
	"form-action 'self'; frame-ancestors 'none'"

// Routes mounts the documents, /docs and its files.
func Routes(r gin.IRoutes) {
	r.GET("/openapi.yaml", document(OpenAPIYAML(), "application/yaml; charset=utf-8"))
	r.GET("/openapi.json", document(OpenAPIJSON(), "application/json; charset=utf-8"))
	r.GET("/asyncapi.yaml", document(AsyncAPIYAML(), "application/yaml; charset=utf-8"))
	r.GET("/asyncapi.json", document(AsyncAPIJSON(), "application/json; charset=utf-8"))
	r.GET("/docs", func(c *gin.Context) { serveStatic(c, "index.html") })
	r.GET(VendorPath, func(c *gin.Context) { serveStatic(c, "vendor/"+c.Param("file")) })
}

func document(data []byte, contentType string) gin.HandlerFunc {
	return func(c *gin.Context) {
		c.Header("Cache-Control", "no-cache")
		c.Header("Access-Control-Allow-Origin", "*") // public documents: other tools may fetch them
		c.Data(http.StatusOK, contentType, data)
	}
}

func serveStatic(c *gin.Context, name string) {
	name = strings.TrimPrefix(path.Clean("/"+name), "/")
	h := c.Writer.Header()
	h.Set("Content-Security-Policy", CSP)
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("X-Frame-Options", "DENY")
	h.Set("Referrer-Policy", "no-referrer")
	data, err := fs.ReadFile(static, "static/"+name)
	if err != nil || strings.HasSuffix(name, "/") {
		c.Data(http.StatusNotFound, "text/plain; charset=utf-8", []byte("not found\n"))
		return
	}
	c.Header("Cache-Control", "no-cache")
	c.Data(http.StatusOK, contentType(name), data)
}

func contentType(name string) string {
	switch path.Ext(name) {
	case ".js":
		return "text/javascript; charset=utf-8"
	case ".css":
		return "text/css; charset=utf-8"
	case ".html":
		return "text/html; charset=utf-8"
	}
	return "text/plain; charset=utf-8"
}
