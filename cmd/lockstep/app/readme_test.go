package app_test

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/lockstep/lockstep/cmd/lockstep/app/apptest"
)

// readmeWalkthrough is the README's ```sh block after the marker.
var readmeWalkthrough = regexp.MustCompile("(?s)<!-- readme-test: walkthrough -->\\s*```sh\\n(.*?)```")

// TestReadmeWalkthrough runs the README's curl walk-through of one class
// verbatim with bash against a test server (only $LOCKSTEP, the base URL, is
// set), so the README cannot rot: each curl fails the script on an HTTP error
// (-f), and the last answer must show the room on the second step.
func TestReadmeWalkthrough(t *testing.T) {
	for _, tool := range []string{"bash", "curl", "grep", "sed"} {
		if _, err := exec.LookPath(tool); err != nil {
			if os.Getenv("CI") == "true" {
				t.Fatalf("%s is needed to run the README's walk-through: %v", tool, err)
			}
			t.Skipf("%s is not installed: %v", tool, err)
		}
	}
	readme, err := os.ReadFile(filepath.Join("..", "..", "..", "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	m := readmeWalkthrough.FindSubmatch(readme)
	if m == nil {
		t.Fatal("README.md has no ```sh block after <!-- readme-test: walkthrough -->")
	}
	script := string(m[1])
	for _, step := range []string{"/api/auth/register", "/api/auth/login", "/api/lectures", "/subtasks", "/sessions", "/api/sessions/$CODE", "/join", "/start", "/next-step"} {
		if !strings.Contains(script, step) {
			t.Errorf("the walk-through no longer calls %s", step)
		}
	}
	s := apptest.Start(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "bash", "-c", "set -euo pipefail\n"+script)
	cmd.Env = append(os.Environ(), "LOCKSTEP="+s.URL)
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	if err := cmd.Run(); err != nil {
		t.Fatalf("the README's walk-through failed: %v\nstdout:\n%s\nstderr:\n%s", err, out.String(), errOut.String())
	}
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	last := lines[len(lines)-1]
	for _, want := range []string{`"status":"IN_PROGRESS"`, `"title":"친구 선택하기"`, `"instructor_message":"잘하셨습니다! 다음 단계로 넘어갑니다"`} {
		if !strings.Contains(last, want) {
			t.Errorf("the walk-through's last answer lacks %s:\n%s", want, last)
		}
	}
	if !strings.Contains(out.String(), `"participant_id"`) {
		t.Errorf("the join answer is missing:\n%s", out.String())
	}
}
