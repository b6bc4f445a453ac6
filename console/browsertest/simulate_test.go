package browsertest

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/lockstep/lockstep/cmd/lockstep/app/apptest"
	"github.com/lockstep/lockstep/simulator"
)

// codeWriter catches the session code in the simulator's progress lines.
type codeWriter struct {
	mu   sync.Mutex
	code string
	got  chan struct{}
}

var codeLine = regexp.MustCompile(`opened: code ([A-Z0-9]{6})`)

func (w *codeWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if m := codeLine.FindSubmatch(p); m != nil && w.code == "" {
		w.code = string(m[1])
		close(w.got)
	}
	return len(p), nil
}

// The control room during `lockstep simulate --students 30`: every student
// has a tile, the done count follows, help requests queue up.
func TestControlRoomSimulated(t *testing.T) {
	b := browser(t)
	srv := apptest.Start(t)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()

	var teacherAcct simulator.Account
	accounts := func(ctx context.Context, role string, names []string) ([]simulator.Account, error) {
		// Not srv.NewUser: this runs on the simulator's goroutine, where a
		// test must not call t.Fatal.
		out := make([]simulator.Account, len(names))
		for i, n := range names {
			a, err := register(ctx, srv.URL, role, n, i)
			if err != nil {
				return nil, err
			}
			out[i] = a
		}
		if role == "INSTRUCTOR" {
			teacherAcct = out[0]
		}
		return out, nil
	}
	out := &codeWriter{got: make(chan struct{})}
	done := make(chan error, 1)
	go func() {
		_, err := simulator.Run(ctx, simulator.Config{Server: srv.URL, Students: 30, Steps: 3, HelpRate: 0.3, Speed: 4, Seed: 7, Accounts: accounts, Out: out})
		done <- err
	}()
	select {
	case <-out.got:
	case err := <-done:
		t.Fatalf("simulation ended before its session opened: %v", err)
	case <-time.After(time.Minute):
		t.Fatal("the simulated session did not open within a minute")
	}

	teacher := newTab(t, b, "instructor", 1440, 1000)
	teacher.do(navigate(srv.URL + "/replay/"))
	auth, _ := json.Marshal(map[string]any{"access_token": teacherAcct.Token, "user": map[string]any{"id": teacherAcct.ID, "name": teacherAcct.Name, "role": "INSTRUCTOR"}})
	teacher.eval(fmt.Sprintf(`localStorage.setItem('lockstep.auth', %q), 'ok'`, auth))
	teacher.do(navigate(srv.URL + "/#/session/" + out.code))
	teacher.waitJS(`document.querySelectorAll('[data-test=roster] li').length === 30`, 30*time.Second)
	// Wait for the second step with some students done and some asking.
	teacher.waitJS(`document.querySelector('[data-test=current-step]') && !/시작하지/.test(document.body.innerText) && /30명 중 [1-9][0-9]*명 완료/.test(document.querySelector('[data-test=done-count]').textContent) && document.querySelector('[data-test=help-queue] [data-help]') !== null`, 60*time.Second)
	teacher.axe("control room with 30 students")
	teacher.shot("12-control-room-30-students")
	t.Logf("control room: %s, %s help requests in the queue", teacher.text(`[data-test=done-count]`), teacher.eval(`String(document.querySelectorAll('[data-test=help-queue] [data-help]').length)`))
	teacher.checkClean()
	if err := <-done; err != nil {
		t.Errorf("simulation: %v", err)
	}
}

// register makes an account over HTTP and logs it in.
func register(ctx context.Context, base, role, name string, i int) (simulator.Account, error) {
	email := fmt.Sprintf("sim-%s-%d-%d@lockstep.test", strings.ToLower(role), i, time.Now().UnixNano())
	call := func(path string, body, out any) error {
		data, _ := json.Marshal(body)
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, base+path, bytes.NewReader(data))
		if err != nil {
			return err
		}
		req.Header.Set("Content-Type", "application/json")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return err
		}
		defer resp.Body.Close()
		if resp.StatusCode >= 300 {
			return fmt.Errorf("POST %s: %s", path, resp.Status)
		}
		return json.NewDecoder(resp.Body).Decode(out)
	}
	var reg struct{ ID int64 }
	if err := call("/api/auth/register", map[string]any{"email": email, "password": "password-123", "name": name, "role": role}, &reg); err != nil {
		return simulator.Account{}, err
	}
	var login struct {
		AccessToken string `json:"access_token"`
	}
	if err := call("/api/auth/login", map[string]any{"email": email, "password": "password-123"}, &login); err != nil {
		return simulator.Account{}, err
	}
	return simulator.Account{ID: reg.ID, Email: email, Name: name, Token: login.AccessToken}, nil
}
