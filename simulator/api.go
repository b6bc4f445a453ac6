package simulator

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"time"
)

// api is a small JSON client of one Lockstep server.
type api struct {
	base   string
	client *http.Client

	mu     sync.Mutex
	errors map[string]int // "POST /api/progress/update 409" → count
	sample []string       // the first few error messages
}

func newAPI(base string, client *http.Client) *api {
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
	return &api{base: strings.TrimRight(base, "/"), client: client, errors: map[string]int{}}
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
func (a *api) call(ctx context.Context, method, path, token string, body, out any) error {
	var rd io.Reader
	if body != nil {
		data, err := json.Marshal(body)
		if err != nil {
			return err
		}
		rd = bytes.NewReader(data)
	}
	req, err := http.NewRequestWithContext(ctx, method, a.base+path, rd)
	if err != nil {
		return err
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := a.client.Do(req)
	if err != nil {
		if ctx.Err() == nil {
			a.count(method+" "+route(path)+" (no answer)", err.Error())
		}
		return fmt.Errorf("%s %s: %w", method, path, err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, 4<<20))
	if err != nil {
		return fmt.Errorf("%s %s: read answer: %w", method, path, err)
	}
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		se := &statusError{Method: method, Path: path, Status: resp.StatusCode, Body: strings.TrimSpace(string(data))}
		var e struct {
			Error struct {
				Code string `json:"code"`
			} `json:"error"`
		}
		if json.Unmarshal(data, &e) == nil {
			se.Code = e.Error.Code
		}
		if len(se.Body) > 300 {
			se.Body = se.Body[:300] + "…"
		}
		a.count(fmt.Sprintf("%s %s → %d", method, route(path), resp.StatusCode), se.Error())
		return se
	}
	if out != nil {
		if err := json.Unmarshal(data, out); err != nil {
			return fmt.Errorf("%s %s: decode answer: %w", method, path, err)
		}
	}
	return nil
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
