package apidocs

import (
	"context"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/cdproto/page"
	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"

	"github.com/lockstep/lockstep/console/browsertest/headless"
)

// TestDocsPageRendersOffline opens /docs in headless Chromium that cannot
// resolve any host but 127.0.0.1: both renderers must draw the documents
// (a known operation and path of openapi.yaml, a known channel and message
// of asyncapi.yaml), without page errors or CSP violations, and no request
// may leave the test server.
func TestDocsPageRendersOffline(t *testing.T) {
	srv := serveDocs(t)

	// No network: every host name but the test server's address fails to resolve.
	ctx := headless.Start(t, chromedp.Flag("host-resolver-rules", "MAP * ~NOTFOUND, EXCLUDE 127.0.0.1"))

	var mu sync.Mutex
	var requests, pageErrors []string
	go func() {
		for ev, err := range chromedp.Events(ctx, network.RequestWillBeSent) {
			if err != nil {
				return
			}
			mu.Lock()
			requests = append(requests, ev.Request.URL)
			mu.Unlock()
		}
	}()
	go func() {
		for ev, err := range chromedp.Events(ctx, runtime.ExceptionThrown) {
			if err != nil {
				return
			}
			msg := ev.ExceptionDetails.Text
			if ev.ExceptionDetails.Exception != nil {
				msg += " " + ev.ExceptionDetails.Exception.Description
			}
			mu.Lock()
			pageErrors = append(pageErrors, msg)
			mu.Unlock()
		}
	}()
	if _, err := chromedp.Call(ctx, page.AddScriptToEvaluateOnNewDocument, page.AddScriptToEvaluateOnNewDocumentParams{
		Source: `window.__csp = []; document.addEventListener('securitypolicyviolation', e => window.__csp.push(e.violatedDirective + ' ' + e.blockedURI));`,
	}); err != nil {
		t.Fatal(err)
	}
	if err := chromedp.Do(ctx, chromedp.Navigate(srv.URL+"/docs")); err != nil {
		t.Fatal(err)
	}
	const drawn = `(() => {
		const r = document.getElementById('redoc'), a = document.getElementById('asyncapi');
		return r.dataset.rendered === 'true' && a.dataset.rendered === 'true' &&
			r.textContent.includes('/api/sessions/{session_id}/next-step') &&
			r.textContent.includes('Move everyone to the next step') &&
			a.textContent.includes('/ws/session/{session_id}/student/') &&
			a.textContent.includes('step_changed');
	})()`
	wait, cancelWait := context.WithTimeout(ctx, 150*time.Second) // about 20 s on an idle machine
	defer cancelWait()
	if _, err := chromedp.Run(wait, chromedp.Poll[bool](drawn, chromedp.WithPollingInterval(100*time.Millisecond))); err != nil {
		text, _ := chromedp.Run(context.WithoutCancel(ctx), chromedp.Evaluate[string](`JSON.stringify((() => {
			const r = document.getElementById('redoc'), a = document.getElementById('asyncapi');
			return {redoc: r.dataset.rendered, asyncapi: a.dataset.rendered, path: r.textContent.includes('/api/sessions/{session_id}/next-step'),
				op: r.textContent.includes('Move everyone to the next step'), channel: a.textContent.includes('/ws/session/{session_id}/student/'),
				message: a.textContent.includes('step_changed'), asyncText: a.innerText.slice(0, 1500)};
		})())`))
		mu.Lock()
		defer mu.Unlock()
		t.Fatalf("the renderers did not draw both documents: %v\npage errors: %v\npage text:\n%s", err, pageErrors, text)
	}
	if dir := os.Getenv("LOCKSTEP_SCREENSHOTS"); dir != "" { // as console/browsertest does
		shot, err := chromedp.Run(ctx, chromedp.FullScreenshot(80))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, "docs.png"), shot, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	csp, err := chromedp.Run(ctx, chromedp.Evaluate[string](`JSON.stringify(window.__csp)`))
	if err != nil {
		t.Fatal(err)
	}
	if csp != "[]" {
		t.Errorf("CSP violations: %s", csp)
	}
	errText, _ := chromedp.Run(ctx, chromedp.Evaluate[string](`[...document.querySelectorAll('[data-error]')].map(e => e.textContent).join('\n')`))
	if errText != "" {
		t.Errorf("a renderer reported: %s", errText)
	}

	mu.Lock()
	defer mu.Unlock()
	if len(pageErrors) > 0 {
		t.Errorf("uncaught page errors: %v", pageErrors)
	}
	base, _ := url.Parse(srv.URL)
	if len(requests) == 0 {
		t.Fatal("no request recorded")
	}
	for _, raw := range requests {
		u, err := url.Parse(raw)
		if err != nil {
			t.Errorf("request to %q", raw)
			continue
		}
		switch {
		case u.Scheme == "data", u.Scheme == "blob":
		case u.Host == base.Host:
		default:
			t.Errorf("a request left the test server: %s", raw)
		}
	}
	t.Logf("%d requests, all to %s: %s", len(requests), base.Host, strings.Join(requests[:min(len(requests), 8)], " "))
}
