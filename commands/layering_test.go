package commands

import (
	"go/parser"
	"go/token"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// TestHandlersKnowNothingOfHTTP keeps the command handlers runnable from
// anything (the stuck detector, the simulator, a test): only the gin
// adapters, the http_*.go files, may import gin or net/http.
func TestHandlersKnowNothingOfHTTP(t *testing.T) {
	files, err := filepath.Glob("*.go")
	if err != nil {
		t.Fatal(err)
	}
	checked := 0
	for _, name := range files {
		if strings.HasSuffix(name, "_test.go") || strings.HasPrefix(name, "http_") {
			continue
		}
		src, err := os.ReadFile(name)
		if err != nil {
			t.Fatal(err)
		}
		f, err := parser.ParseFile(token.NewFileSet(), name, src, parser.ImportsOnly)
		if err != nil {
			t.Fatal(err)
		}
		checked++
		for _, imp := range f.Imports {
			path, _ := strconv.Unquote(imp.Path.Value)
			if path == "net/http" || path == "github.com/gin-gonic/gin" || strings.HasPrefix(path, "github.com/gin-gonic/") || strings.HasPrefix(path, "net/http/") {
				t.Errorf("%s imports %s: move the HTTP part into an http_*.go adapter", name, path)
			}
		}
	}
	if checked < 5 {
		t.Fatalf("checked only %d handler files: is the test in the commands folder?", checked)
	}
}
