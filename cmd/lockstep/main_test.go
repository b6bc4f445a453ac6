package main

import (
	"bytes"
	"net"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/lockstep/lockstep/pgtest"
)

// TestServeStopsGracefullyOnSIGTERM runs `lockstep serve` in a child process,
// waits until it is ready, sends SIGTERM and expects a clean exit.
func TestServeStopsGracefullyOnSIGTERM(t *testing.T) {
	if os.Getenv("LOCKSTEP_SERVE_CHILD") != "" {
		t.Skip("runs only in the parent process")
	}
	db := pgtest.NewEmpty(t)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()

	var out bytes.Buffer
	child := exec.Command(os.Args[0], "-test.run=^TestServeChild$")
	child.Env = append(os.Environ(), "LOCKSTEP_SERVE_CHILD=1", "DATABASE_URL="+db.URL, "HTTP_ADDR="+addr, "BUS=memory", "LOG_LEVEL=info")
	child.Stdout, child.Stderr = &out, &out
	if err := child.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- child.Wait() }()

	deadline := time.Now().Add(60 * time.Second)
	for {
		resp, err := http.Get("http://" + addr + "/readyz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				break
			}
		}
		if time.Now().After(deadline) {
			_ = child.Process.Kill()
			t.Fatalf("serve never became ready:\n%s", out.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
	if err := child.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-exited:
		if err != nil {
			t.Fatalf("serve exited with %v after SIGTERM:\n%s", err, out.String())
		}
	case <-time.After(40 * time.Second):
		_ = child.Process.Kill()
		t.Fatalf("serve did not stop within 40s of SIGTERM:\n%s", out.String())
	}
	log := out.String()
	for _, want := range []string{"shutting down", `"msg":"stopped"`, "JWT_SECRET is not set"} {
		if !strings.Contains(log, want) {
			t.Errorf("serve's log lacks %q:\n%s", want, log)
		}
	}
	if _, err := http.Get("http://" + addr + "/healthz"); err == nil {
		t.Error("still answering after it stopped")
	}
}

// TestServeChild is the child of the SIGTERM test.
func TestServeChild(t *testing.T) {
	if os.Getenv("LOCKSTEP_SERVE_CHILD") == "" {
		t.Skip("helper process for TestServeStopsGracefullyOnSIGTERM")
	}
	os.Args = []string{"lockstep", "serve"}
	main()
}
