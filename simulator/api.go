package simulator

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/google/uuid"
)

// api is a small JSON client of one Lockstep server.
type api struct {
	base   string
	client *http.Client

	// retries is how many times a request without an answer, or answered
	// 502, 503, 504 or with a Retry-After, is sent again (same
	// Idempotency-Key) before it counts as an error.
	retries int

	mu        sync.Mutex
	errors    map[string]int // "POST /api/progress/update 409" → count
	sample    []string       // the first few error messages
	sentAgain map[string]int // "POST /api/progress/update → 503" → retries it caused
	malformed []string       // retried answers not in the contract's error shape
}

func newAPI(base string, client *http.Client, retries int) *api {
	if client == nil {
		client = &http.Client{
			Timeout: 30 * time.Second,
			Transport: &http.Transport{
				Proxy:               nil,
				MaxIdleConns:        512,
				MaxIdleConnsPerHost: 512,
				IdleConnTimeout:     30 * time.Second,
			},
		}
	}
	return &api{base: strings.TrimRight(base, "/"), client: client, retries: retries, errors: map[string]int{}, sentAgain: map[string]int{}}
}

// statusError is an answer with an unexpected status.
type statusError struct {
	Method, Path string
	Status       int
	Code         string // the contract error's code, if any
	Body         string
}

func (e *statusError) Error() string {
	return fmt.Sprintf("%s %s: %d %s", e.Method, e.Path, e.Status, e.Body)
}

// call sends body as JSON and decodes a 2xx answer into out (when not nil).
// Any other status is a *statusError, also counted in the report's errors.
// With retries, a POST carries an Idempotency-Key, and a request that got
// no answer, a 502, 503 or 504, or any answer with a Retry-After, is sent
// again with the same key after the Retry-After (or a short back-off).
func (a *api) call(ctx context.Context, method, path, token string, body, out any) error {
	var data []byte
	if body != nil {
		var err error
		if data, err = json.Marshal(body); err != nil {
			return err
		}
	}
	key := ""
	if a.retries > 0 && method == http.MethodPost {
		key = uuid.NewString()
	}
	for attempt := 0; ; attempt++ {
		last := attempt >= a.retries
		err, wait, why := a.once(ctx, method, path, token, data, key, out, last)
		if why == "" || last {
			return err
		}
		a.mu.Lock()
		a.sentAgain[method+" "+route(path)+" → "+why]++
		a.mu.Unlock()
		if wait <= 0 {
			wait = time.Duration(100*(attempt+1)) * time.Millisecond
		}
		wait = min(wait, 5*time.Second)
		select {
		case <-ctx.Done():
			return err
		case <-time.After(wait):
		}
	}
}

// once sends one request. why is set (and nothing counted) when the request
// may be sent again and last is false: "no answer" or the status.
func (a *api) once(ctx context.Context, method, path, token string, data []byte, key string, out any, last bool) (err error, wait time.Duration, why string) {
	var rd io.Reader
	if data != nil {
		rd = bytes.NewReader(data)
	}
	req, err := http.NewRequestWithContext(ctx, method, a.base+path, rd)
	if err != nil {
		return err, 0, ""
	}
	if data != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	if key != "" {
		req.Header.Set("Idempotency-Key", key)
	}
	resp, err := a.client.Do(req)
	if err != nil {
		if ctx.Err() == nil {
			if a.retries > 0 && !last {
				return fmt.Errorf("%s %s: %w", method, path, err), 0, "no answer"
			}
			a.count(method+" "+route(path)+" (no answer)", err.Error())
		}
		return fmt.Errorf("%s %s: %w", method, path, err), 0, ""
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 4<<20))
	if err != nil {
		if a.retries > 0 && !last && ctx.Err() == nil {
			return fmt.Errorf("%s %s: read answer: %w", method, path, err), 0, "no answer"
		}
		return fmt.Errorf("%s %s: read answer: %w", method, path, err), 0, ""
	}
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		se := &statusError{Method: method, Path: path, Status: resp.StatusCode, Body: strings.TrimSpace(string(body))}
		var e struct {
			Error struct {
				Code    string `json:"code"`
				Message string `json:"message"`
			} `json:"error"`
		}
		shaped := json.Unmarshal(body, &e) == nil && e.Error.Code != "" && e.Error.Message != ""
		se.Code = e.Error.Code
		if len(se.Body) > 300 {
			se.Body = se.Body[:300] + "…"
		}
		ra := resp.Header.Get("Retry-After")
		retryable := resp.StatusCode == http.StatusBadGateway || resp.StatusCode == http.StatusServiceUnavailable ||
			resp.StatusCode == http.StatusGatewayTimeout || ra != ""
		if a.retries > 0 && !last && retryable {
			if !shaped && resp.StatusCode != http.StatusBadGateway && resp.StatusCode != http.StatusGatewayTimeout {
				a.mu.Lock()
				if len(a.malformed) < 5 {
					a.malformed = append(a.malformed, se.Error())
				}
				a.mu.Unlock()
			}
			if secs, perr := strconv.Atoi(ra); perr == nil && secs >= 0 {
				wait = time.Duration(secs) * time.Second
			}
			return se, wait, strconv.Itoa(resp.StatusCode)
		}
		a.count(fmt.Sprintf("%s %s → %d", method, route(path), resp.StatusCode), se.Error())
		return se, 0, ""
	}
	if out != nil {
		if err := json.Unmarshal(body, out); err != nil {
			return fmt.Errorf("%s %s: decode answer: %w", method, path, err), 0, ""
		}
	}
	return nil, 0, ""
}

func (a *api) count(key, msg string) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.errors[key]++
	if len(a.sample) < 5 {
		a.sample = append(a.sample, msg)
	}
}

// route replaces the numeric segments of path by {id}, to group errors.
func route(path string) string {
	if i := strings.IndexByte(path, '?'); i >= 0 {
		path = path[:i]
	}
	parts := strings.Split(path, "/")
	for i, p := range parts {
		if p != "" && strings.Trim(p, "0123456789") == "" {
			parts[i] = "{id}"
		}
	}
	return strings.Join(parts, "/")
}

// wsURL is the WebSocket URL of path.
func (a *api) wsURL(path string) string {
	switch {
	case strings.HasPrefix(a.base, "https://"):
		return "wss://" + a.base[len("https://"):] + path
	case strings.HasPrefix(a.base, "http://"):
		return "ws://" + a.base[len("http://"):] + path
	}
	return a.base + path
}
