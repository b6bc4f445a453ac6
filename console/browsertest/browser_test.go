// Package browsertest drives the console in a real headless Chromium
// (chromedp) against the whole app on a free port, as people would use it.
package browsertest

import (
	"context"
	_ "embed"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"

	"github.com/lockstep/lockstep/console/browsertest/headless"
)

//go:embed testdata/axe.min.js
var axeSource string

// browser starts one headless Chromium for the test, in Korean, with
// sound allowed (headless.Start: skipped without one, failed then under CI).
func browser(t *testing.T) context.Context {
	t.Helper()
	return headless.Start(t,
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("autoplay-policy", "no-user-gesture-required"),
		chromedp.Flag("lang", "ko-KR"),
	)
}

// tab is one page in its own browser context (own storage, own cookies).
type tab struct {
	t    *testing.T
	name string
	ctx  context.Context
	mu   sync.Mutex
	errs []string
}

func newTab(t *testing.T, b context.Context, name string, w, h int64) *tab {
	t.Helper()
	ctx, cancel := chromedp.NewContext(b, chromedp.WithNewBrowserContext())
	t.Cleanup(cancel)
	tb := &tab{t: t, name: name, ctx: ctx}
	opts := []chromedp.EmulateViewportOption{}
	if w < 600 {
		opts = append(opts, chromedp.EmulateMobile, chromedp.EmulateTouch)
	}
	if err := chromedp.Do(ctx, chromedp.EmulateViewport(w, h, opts...)); err != nil {
		t.Fatalf("%s: viewport: %v", name, err)
	}
	exceptions := chromedp.Events(ctx, runtime.ExceptionThrown)
	go func() {
		for ev, err := range exceptions {
			if err != nil {
				return
			}
			msg := ev.ExceptionDetails.Text
			if ev.ExceptionDetails.Exception != nil {
				msg += " " + ev.ExceptionDetails.Exception.Description
			}
			tb.mu.Lock()
			tb.errs = append(tb.errs, msg)
			tb.mu.Unlock()
		}
	}()
	return tb
}

func (tb *tab) do(actions ...chromedp.Action[chromedp.Void]) {
	tb.t.Helper()
	ctx, cancel := context.WithTimeout(tb.ctx, 15*time.Second)
	defer cancel()
	if err := chromedp.Do(ctx, actions...); err != nil {
		tb.fail("%v", err)
	}
}

func (tb *tab) fail(format string, args ...any) {
	tb.t.Helper()
	tb.mu.Lock()
	errs := strings.Join(tb.errs, "\n")
	tb.mu.Unlock()
	html, _ := chromedp.Run(tb.ctx, chromedp.Evaluate[string](`document.body ? document.body.innerText.slice(0, 2000) : ''`))
	tb.t.Fatalf("%s: %s\npage text:\n%s\npage errors:\n%s", tb.name, fmt.Sprintf(format, args...), html, errs)
}

func (tb *tab) eval(js string) string {
	tb.t.Helper()
	ctx, cancel := context.WithTimeout(tb.ctx, 15*time.Second)
	defer cancel()
	v, err := chromedp.Run(ctx, chromedp.Evaluate[string](js))
	if err != nil {
		tb.fail("eval %s: %v", js, err)
	}
	return v
}

// waitJS waits until the expression is true.
func (tb *tab) waitJS(js string, timeout time.Duration) {
	tb.t.Helper()
	ctx, cancel := context.WithTimeout(tb.ctx, timeout)
	defer cancel()
	if _, err := chromedp.Run(ctx, chromedp.Poll[bool](js, chromedp.WithPollingInterval(20*time.Millisecond))); err != nil {
		tb.fail("waiting for %s: %v", js, err)
	}
}

func (tb *tab) waitVisible(css string) { tb.t.Helper(); tb.do(chromedp.WaitVisible(chromedp.CSS(css))) }
func (tb *tab) click(css string)       { tb.t.Helper(); tb.do(chromedp.Click(chromedp.CSS(css))) }
func (tb *tab) typeIn(css, text string) {
	tb.t.Helper()
	tb.do(chromedp.WaitVisible(chromedp.CSS(css)), chromedp.SendKeys(chromedp.CSS(css), text))
}
func (tb *tab) text(css string) string {
	tb.t.Helper()
	return tb.eval(fmt.Sprintf(`(document.querySelector(%q)||{}).textContent||''`, css))
}

// checkClean fails on uncaught page errors and CSP violations so far.
func (tb *tab) checkClean() {
	tb.t.Helper()
	tb.mu.Lock()
	errs := append([]string(nil), tb.errs...)
	tb.mu.Unlock()
	if len(errs) > 0 {
		tb.t.Errorf("%s: uncaught page errors: %v", tb.name, errs)
	}
	if v := tb.eval(`JSON.stringify(window.__cspViolations||[])`); v != "[]" {
		tb.t.Errorf("%s: CSP violations: %s", tb.name, v)
	}
}

// axe runs axe-core on the page and fails on serious or critical violations.
func (tb *tab) axe(page string) {
	tb.t.Helper()
	ctx, cancel := context.WithTimeout(tb.ctx, 30*time.Second)
	defer cancel()
	if err := chromedp.Do(ctx, chromedp.Evaluate[chromedp.Void](axeSource)); err != nil {
		tb.fail("inject axe: %v", err)
	}
	raw, err := chromedp.Run(ctx, chromedp.Evaluate[string](`axe.run(document, {resultTypes: ['violations']}).then(r => JSON.stringify(r.violations.map(v => ({id: v.id, impact: v.impact, help: v.help, nodes: v.nodes.slice(0, 3).map(n => n.target.join(' '))}))))`,
		chromedp.EvalAwaitPromise))
	if err != nil {
		tb.fail("axe: %v", err)
	}
	var vs []struct {
		ID, Impact, Help string
		Nodes            []string
	}
	if err := json.Unmarshal([]byte(raw), &vs); err != nil {
		tb.fail("axe result: %v", err)
	}
	for _, v := range vs {
		if v.Impact == "serious" || v.Impact == "critical" {
			tb.t.Errorf("axe on %s (%s): %s %s: %s %v", page, tb.name, v.Impact, v.ID, v.Help, v.Nodes)
		} else {
			tb.t.Logf("axe on %s: %s %s (%s)", page, v.Impact, v.ID, v.Help)
		}
	}
}

// shot writes a screenshot to $LOCKSTEP_SCREENSHOTS (make screenshots).
func (tb *tab) shot(name string) {
	tb.t.Helper()
	dir := os.Getenv("LOCKSTEP_SCREENSHOTS")
	if dir == "" {
		return
	}
	ctx, cancel := context.WithTimeout(tb.ctx, 20*time.Second)
	defer cancel()
	buf, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
	if err != nil {
		tb.fail("screenshot: %v", err)
	}
	path := filepath.Join(dir, name+".png")
	if err := os.WriteFile(path, buf, 0o644); err != nil {
		tb.t.Fatal(err)
	}
	tb.t.Logf("screenshot %s", path)
}

// offline cuts (or restores) the tab's network, sockets included, and tells
// the page (navigator.onLine and the offline/online events).
func (tb *tab) offline(off bool) {
	tb.t.Helper()
	ctx, cancel := context.WithTimeout(tb.ctx, 10*time.Second)
	defer cancel()
	if _, err := chromedp.Call(ctx, network.EmulateNetworkConditionsByRule, network.EmulateNetworkConditionsByRuleParams{
		MatchedNetworkConditions: []*network.Conditions{{Offline: off, DownloadThroughput: -1, UploadThroughput: -1}},
	}); err != nil {
		tb.fail("network conditions: %v", err)
	}
	if _, err := chromedp.Call(ctx, network.OverrideNetworkState, network.OverrideNetworkStateParams{
		Offline: off, DownloadThroughput: -1, UploadThroughput: -1,
	}); err != nil {
		tb.fail("network state: %v", err)
	}
}

// navigate loads a URL (the console renders after its module loads).
func navigate(url string) chromedp.Action[chromedp.Void] {
	return chromedp.Navigate(url)
}
