package simulator

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"
)

// TestReportAfterAServerShutdown: the server sends the class its steps, then
// shuts down (every student socket gets 1001 and the port then refuses
// connections). Nothing caught up, so the report must not say "0 missed" or
// that the sockets "caught up with ?after=": it says the sockets closed, that
// reconnecting failed, and that what was missed is unknown.
func TestReportAfterAServerShutdown(t *testing.T) {
	t.Parallel()
	const students = 4
	shutdown := make(chan struct{})
	var handlers sync.WaitGroup
	up := websocket.Upgrader{}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		conn, err := up.Upgrade(w, r, nil)
		if err != nil {
			return
		}
		handlers.Add(1)
		defer handlers.Done()
		defer conn.Close()
		send := func(typ string, pos uint64, subtask int64) {
			data := map[string]any{}
			if subtask != 0 {
				data["current_subtask"] = map[string]any{"id": subtask}
			}
			b, _ := json.Marshal(map[string]any{"type": typ, "position": pos, "data": data})
			_ = conn.WriteMessage(websocket.TextMessage, b)
		}
		send("session_state", 5, 0)
		send("session_started", 6, 10)
		send("step_changed", 7, 11)
		<-shutdown
		_ = conn.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(websocket.CloseGoingAway, "server shutting down"), time.Now().Add(time.Second))
	}))
	c := &Class{cfg: Config{Server: srv.URL, Out: &bytes.Buffer{}}, api: newAPI(srv.URL, nil, 0), SessionID: 1}
	for i, k := range []string{KindStart, KindNext} {
		st := &step{index: i, kind: k, subtaskID: int64(10 + i), done: make(chan struct{})}
		st.remaining.Store(students)
		c.steps = append(c.steps, st)
	}
	for i := range students {
		s := &Student{Account: Account{ID: int64(100 + i), Name: fmt.Sprintf("학생 %d", i)}, class: c, index: i}
		c.Students = append(c.Students, s)
		if err := s.connect(context.Background(), nil); err != nil {
			t.Fatal(err)
		}
	}
	for _, st := range c.steps {
		select {
		case <-st.done:
		case <-time.After(10 * time.Second):
			t.Fatal("the students did not get the steps")
		}
	}
	// The server goes away as http.Server.Shutdown does: it stops listening,
	// then every socket gets 1001.
	srv.Close() // returns at once: upgraded connections are not waited for
	close(shutdown)
	handlers.Wait()
	// Every student tries to reconnect with ?after= and fails; wait for that.
	c.readers.Wait()

	r := (&Report{SessionID: 1}).finish(c, &behaviour{c: c}, time.Now())
	var out bytes.Buffer
	r.Print(&out)
	text := out.String()
	t.Log("\n" + text)
	if r.OK() {
		t.Error("the report is OK after a shutdown nothing recovered from")
	}
	for _, lie := range []string{"0 missed", "caught up"} {
		if strings.Contains(text, lie) {
			t.Errorf("the report says %q although no socket caught up", lie)
		}
	}
	for _, truth := range []string{"4 student sockets closed mid-class", "server shutting down", "could not reconnect", "unknown"} {
		if !strings.Contains(text, truth) {
			t.Errorf("the report does not say %q", truth)
		}
	}
}
