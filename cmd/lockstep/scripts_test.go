package main

import (
	"bytes"
	"os"
	"os/exec"
	"strings"
	"testing"
)

// TestPostgresURLScriptFailsOnAGivenURL: a DATABASE_URL the user gave whose
// host does not answer fails `make run` instead of quietly starting the
// private cluster; make passes PG_FALLBACK=1 only for its default URL.
func TestPostgresURLScriptFailsOnAGivenURL(t *testing.T) {
	if _, err := exec.LookPath("pg_isready"); err != nil {
		t.Skip("pg_isready is not installed")
	}
	var stdout, stderr bytes.Buffer
	cmd := exec.Command("bash", "../../scripts/postgres-url.sh", "postgres://postgres:secret@no-such-host.invalid:5432/lockstep")
	cmd.Env = append(os.Environ(), "PG_FALLBACK=")
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	if err == nil || stdout.Len() != 0 {
		t.Fatalf("script printed %q and exited with %v; want a failure and no URL (stderr: %s)", stdout.String(), err, stderr.String())
	}
	if msg := stderr.String(); !strings.Contains(msg, "no-such-host.invalid") || strings.Contains(msg, "secret") {
		t.Errorf("message should name the host and hide the password: %s", msg)
	}

	if _, err := exec.LookPath("make"); err != nil {
		t.Skip("make is not installed")
	}
	for _, tc := range []struct {
		env  []string
		want string
	}{
		{nil, "PG_FALLBACK=1"},
		{[]string{"DATABASE_URL=postgres://postgres@typo:5432/lockstep"}, "PG_FALLBACK=0"},
	} {
		cmd := exec.Command("make", "-n", "-C", "../..", "run")
		cmd.Env = append(baseEnv(), tc.env...)
		out, err := cmd.CombinedOutput()
		if err != nil || !strings.Contains(string(out), tc.want) {
			t.Errorf("make -n run with %v: %v, want %s in:\n%s", tc.env, err, tc.want, out)
		}
	}
}
