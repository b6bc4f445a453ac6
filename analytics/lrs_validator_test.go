package analytics_test

import (
	"bytes"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// lrsValidate runs statements through Learning Locker's xAPI validator
// (testdata/xapi-validator, installed by `make test`) and returns its
// complaints, one per line. Without node or the installed package the test
// is skipped with the reason — except under CI, where that is a failure.
func lrsValidate(t *testing.T, statements any) []string {
	t.Helper()
	dir, _ := filepath.Abs(filepath.Join("testdata", "xapi-validator"))
	node, err := exec.LookPath("node")
	if err == nil {
		_, err = os.Stat(filepath.Join(dir, "node_modules", "@learninglocker", "xapi-validation"))
	}
	if err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("the xAPI validator is not installed (run `make test`, which installs it): %v", err)
		}
		t.Skipf("the xAPI validator is not installed (node and `npm ci --prefix %s` needed; `make test` does it): %v", dir, err)
	}
	data, err := json.Marshal(statements)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(node, filepath.Join(dir, "validate.js"))
	cmd.Stdin = bytes.NewReader(data)
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	err = cmd.Run()
	var problems []string
	for _, line := range strings.Split(strings.TrimSpace(out.String()), "\n") {
		if line != "" {
			problems = append(problems, line)
		}
	}
	if err != nil && len(problems) == 0 {
		t.Fatalf("xAPI validator failed: %v\n%s", err, errOut.String())
	}
	return problems
}

// The validator is a real check: it refuses broken statements.
func TestLRSValidatorRejectsBrokenStatements(t *testing.T) {
	broken := []map[string]any{
		{"actor": map[string]any{"mbox": "not-a-mailto"}, "verb": map[string]any{"id": "http://adlnet.gov/expapi/verbs/completed"}, "object": map[string]any{"id": "http://x.test/a"}},
		{"actor": map[string]any{"account": map[string]any{"homePage": "http://x.test", "name": "1"}}, "verb": map[string]any{"id": "completed"}, "object": map[string]any{"id": "http://x.test/a"}, "timestamp": "yesterday"},
	}
	problems := lrsValidate(t, broken)
	seen := map[int]bool{}
	for _, p := range problems {
		var w struct {
			Index int `json:"index"`
		}
		_ = json.Unmarshal([]byte(p), &w)
		seen[w.Index] = true
	}
	if !seen[0] || !seen[1] {
		t.Fatalf("validator did not refuse both broken statements: %v", problems)
	}
}
