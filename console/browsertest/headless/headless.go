// Package headless starts the headless Chromium that the browser tests
// (console/browsertest, apidocs) drive with chromedp, with the flags every
// one of them needs: no sandbox, no GPU, no background traffic, a fresh
// profile.
package headless

import (
	"context"
	"os"
	"os/exec"
	"testing"

	"github.com/chromedp/chromedp"
)

// Path is the Chromium to run: LOCKSTEP_CHROMIUM, else the first of the
// usual names on PATH ("" when there is none).
func Path() string {
	if p := os.Getenv("LOCKSTEP_CHROMIUM"); p != "" {
		return p
	}
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome", "google-chrome-stable", "headless-shell"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	return ""
}

// Start starts one headless Chromium for t, with extra flags, and returns
// its browser context (closed when t ends). It skips t with -short or when
// there is no Chromium, but fails it then when CI=true: CI installs it.
func Start(t *testing.T, extra ...chromedp.ExecAllocatorOption) context.Context {
	t.Helper()
	if testing.Short() {
		t.Skip("browser tests skipped with -short")
	}
	path := Path()
	if path == "" {
		if os.Getenv("CI") == "true" {
			t.Fatal("no Chromium found (CI=true): install it with `apt-get install -y chromium fonts-nanum` or set LOCKSTEP_CHROMIUM")
		}
		t.Skip("browser tests skipped: no Chromium found (install `chromium fonts-nanum` or set LOCKSTEP_CHROMIUM)")
	}
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(path),
		chromedp.Headless,
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.NoFirstRun,
		chromedp.UserDataDir(t.TempDir()),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
	)
	alloc, cancelAlloc := chromedp.NewExecAllocator(context.Background(), append(opts, extra...)...)
	ctx, cancel := chromedp.NewContext(alloc)
	if err := chromedp.Do(ctx); err != nil {
		cancel()
		cancelAlloc()
		t.Fatalf("start Chromium %s: %v", path, err)
	}
	t.Cleanup(func() { cancel(); cancelAlloc() })
	return ctx
}
