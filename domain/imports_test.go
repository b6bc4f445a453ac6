package domain

import (
	"errors"
	"os/exec"
	"slices"
	"strings"
	"testing"
)

// ownPath is the only non-standard package the domain may depend on: itself.
const ownPath = "github.com/lockstep/lockstep/domain"

// forbiddenImports names what the domain must never pull in (STYLE.md rule 1).
const forbiddenImports = "pgx, gin, watermill, melody, the EventStore client (or any other non-standard package)"

// nonStandard returns the import paths of `go list -deps -f '{{if not .Standard}}{{.ImportPath}}{{end}}'`
// output other than the domain package itself.
func nonStandard(listOutput string) []string {
	var bad []string
	for _, line := range strings.Split(listOutput, "\n") {
		p := strings.TrimSpace(line)
		if p == "" || p == ownPath || strings.HasPrefix(p, ownPath+"/") {
			continue
		}
		bad = append(bad, p)
	}
	return bad
}

func TestDomainImportsOnlyTheStandardLibrary(t *testing.T) {
	goBin, err := exec.LookPath("go")
	if err != nil {
		t.Fatalf("the go command is needed to list the domain's dependencies: %v", err)
	}
	// The test runs in the domain folder, so ./... is ./domain/... of the module.
	cmd := exec.Command(goBin, "list", "-deps", "-f", "{{if not .Standard}}{{.ImportPath}}{{end}}", "./...")
	out, err := cmd.Output()
	if err != nil {
		var stderr string
		if ee := (*exec.ExitError)(nil); errors.As(err, &ee) {
			stderr = string(ee.Stderr)
		}
		t.Fatalf("go list: %v\n%s", err, stderr)
	}
	if !strings.Contains(string(out), ownPath) {
		t.Fatalf("go list did not list the domain package itself; output:\n%s", out)
	}
	if bad := nonStandard(string(out)); len(bad) > 0 {
		t.Fatalf("package domain must import only the standard library — never %s — but depends on:\n  %s",
			forbiddenImports, strings.Join(bad, "\n  "))
	}
}

func TestNonStandardFlagsForeignPackages(t *testing.T) {
	out := strings.Join([]string{
		ownPath,
		"github.com/jackc/pgx/v5",
		"github.com/gin-gonic/gin",
		"github.com/ThreeDotsLabs/watermill",
		"github.com/olahol/melody",
		"github.com/EventStore/EventStore-Client-Go/v4/esdb",
		"",
	}, "\n")
	got := nonStandard(out)
	want := []string{
		"github.com/jackc/pgx/v5", "github.com/gin-gonic/gin", "github.com/ThreeDotsLabs/watermill",
		"github.com/olahol/melody", "github.com/EventStore/EventStore-Client-Go/v4/esdb",
	}
	if !slices.Equal(got, want) {
		t.Fatalf("got %v, want %v", got, want)
	}
	if len(nonStandard(ownPath+"\n")) != 0 {
		t.Fatal("the domain package itself was flagged")
	}
}
