package app_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/lockstep/lockstep/cmd/lockstep/app/apptest"
	"github.com/lockstep/lockstep/eventstore"
)

// projectionView is one projector of GET /api/admin/projections.
type projectionView struct {
	Name        string            `json:"name"`
	Position    uint64            `json:"position"`
	LagEvents   int64             `json:"lag_events"`
	LagSeconds  float64           `json:"lag_seconds"`
	Status      string            `json:"status"`
	LastError   string            `json:"last_error"`
	Rebuilding  bool              `json:"rebuilding"`
	Quarantined int64             `json:"quarantined"`
	Quarantine  []quarantinedView `json:"quarantine"`
}

type projectionList struct {
	Projections []projectionView `json:"projections"`
}

func TestAdminProjectionsListAndOnlineRebuild(t *testing.T) {
	s := apptest.Start(t)
	admin := s.Admin(t)
	teacher := s.NewUser(t, "INSTRUCTOR", "박강사")
	student := s.NewUser(t, "STUDENT", "김학생")
	var lectureID int64
	for i := range 5 {
		r := s.Post(t, "/api/lectures", teacher.Token, map[string]any{"title": fmt.Sprintf("카카오톡 기초 %d", i)})
		if r.Status != http.StatusCreated {
			t.Fatalf("create lecture: %d %s", r.Status, r.Body)
		}
		lectureID = int64(r.JSON(t)["id"].(float64))
	}

	for _, u := range []apptest.User{teacher, student} {
		if r := s.Get(t, "/api/admin/projections", u.Token); r.Status != http.StatusForbidden {
			t.Fatalf("%s listing projections = %d", u.Role, r.Status)
		}
	}
	if r := s.Get(t, "/api/admin/projections", ""); r.Status != http.StatusUnauthorized {
		t.Fatalf("anonymous listing projections = %d", r.Status)
	}

	var list projectionList
	deadline := time.Now().Add(20 * time.Second)
	for {
		r := s.Get(t, "/api/admin/projections", admin.Token)
		if r.Status != http.StatusOK {
			t.Fatalf("list = %d %s", r.Status, r.Body)
		}
		r.Decode(t, &list)
		caughtUp := len(list.Projections) > 0
		for _, p := range list.Projections {
			caughtUp = caughtUp && p.LagEvents == 0 && p.Status == "running"
		}
		if caughtUp {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("projectors never caught up: %+v", list)
		}
		time.Sleep(20 * time.Millisecond)
	}
	found := false
	for _, p := range list.Projections {
		if p.Name == "lectures" {
			found = p.Position > 0
		}
	}
	if !found {
		t.Fatalf("lectures projector missing or at 0: %+v", list)
	}

	if r := s.Post(t, "/api/admin/projections/nope/rebuild", admin.Token, nil); r.Status != http.StatusNotFound {
		t.Fatalf("rebuild unknown = %d", r.Status)
	}
	if r := s.Post(t, "/api/admin/projections/lectures/rebuild", teacher.Token, nil); r.Status != http.StatusForbidden {
		t.Fatalf("instructor rebuild = %d", r.Status)
	}
	r := s.Post(t, "/api/admin/projections/lectures/rebuild", admin.Token, nil)
	if r.Status != http.StatusAccepted || r.JSON(t)["name"] != "lectures" {
		t.Fatalf("rebuild = %d %s", r.Status, r.Body)
	}
	// The API keeps answering from the current read models during the rebuild.
	for time.Now().Before(deadline.Add(10 * time.Second)) {
		if g := s.Get(t, fmt.Sprintf("/api/lectures/%d", lectureID), teacher.Token); g.Status != http.StatusOK {
			t.Fatalf("lecture detail during rebuild = %d %s", g.Status, g.Body)
		}
		s.Get(t, "/api/admin/projections", admin.Token).Decode(t, &list)
		busy := false
		for _, p := range list.Projections {
			busy = busy || p.Rebuilding
		}
		if !busy {
			break
		}
	}
	if g := s.Get(t, "/api/lectures?page_size=100", teacher.Token); g.Status != http.StatusOK || len(g.JSON(t)["lectures"].([]any)) != 5 {
		t.Fatalf("lectures after rebuild = %d %s", g.Status, g.Body)
	}
}

type quarantinedView struct {
	Position uint64 `json:"position"`
	Stream   string `json:"stream"`
	Type     string `json:"type"`
	Error    string `json:"error"`
	Attempts int    `json:"attempts"`
}

func projectionNamed(t *testing.T, s *apptest.Server, token, name string) projectionView {
	t.Helper()
	var list projectionList
	r := s.Get(t, "/api/admin/projections", token)
	if r.Status != http.StatusOK {
		t.Fatalf("list = %d %s", r.Status, r.Body)
	}
	r.Decode(t, &list)
	for _, p := range list.Projections {
		if p.Name == name {
			return p
		}
	}
	t.Fatalf("no projection %s in %s", name, r.Body)
	return projectionView{}
}

func waitUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestPoisonedEventIsQuarantinedAndEverythingElseServed stores, as if from
// before input validation, a TaskAdded whose order_index no integer column
// holds: the lectures and dashboard projectors cannot apply it. They must
// set it aside and keep serving every other event, show it in
// /api/admin/projections and /metrics, pass it again on rebuild, and let an
// admin retry or skip it.
func TestPoisonedEventIsQuarantinedAndEverythingElseServed(t *testing.T) {
	s := apptest.Start(t)
	admin := s.Admin(t)
	teacher := s.NewUser(t, "INSTRUCTOR", "박강사")
	r := s.Post(t, "/api/lectures", teacher.Token, map[string]any{"title": "문자 보내기"})
	if r.Status != http.StatusCreated {
		t.Fatalf("create lecture: %d %s", r.Status, r.Body)
	}
	first := int64(r.JSON(t)["id"].(float64))

	data, err := json.Marshal(map[string]any{
		"lecture_id": first, "task_id": 900000001, "title": "독", "description": "",
		"order_index": int64(2147483648), "added_at": time.Now().UTC(),
	})
	if err != nil {
		t.Fatal(err)
	}
	res, err := s.App.Store().Append(context.Background(), fmt.Sprintf("lecture-%d", first), eventstore.Any, eventstore.EventData{
		ID: uuid.New(), Type: "TaskAdded", Data: data, Metadata: eventstore.Metadata{LectureID: first},
	})
	if err != nil {
		t.Fatal(err)
	}
	poison := res.Position

	// The next lecture anyone creates is readable.
	r = s.Post(t, "/api/lectures", teacher.Token, map[string]any{"title": "사진 보내기"})
	if r.Status != http.StatusCreated {
		t.Fatalf("create lecture after the poisoned event: %d %s", r.Status, r.Body)
	}
	second := int64(r.JSON(t)["id"].(float64))
	if g := s.Get(t, fmt.Sprintf("/api/lectures/%d", second), teacher.Token); g.Status != http.StatusOK {
		t.Fatalf("lecture created after the poisoned event = %d %s", g.Status, g.Body)
	}

	// Quarantined for the projectors that cannot apply it, which keep running.
	for _, name := range []string{"lectures", "dashboard"} {
		waitUntil(t, name+" quarantine", func() bool { return projectionNamed(t, s, admin.Token, name).Quarantined == 1 })
		p := projectionNamed(t, s, admin.Token, name)
		if p.Status != "running" || len(p.Quarantine) != 1 {
			t.Fatalf("%s = %+v", name, p)
		}
		q := p.Quarantine[0]
		if q.Position != poison || q.Type != "TaskAdded" || q.Stream != fmt.Sprintf("lecture-%d", first) || !strings.Contains(q.Error, "2147483648") || q.Attempts != 1 {
			t.Fatalf("%s quarantined %+v", name, q)
		}
	}
	if p := projectionNamed(t, s, admin.Token, "sessions"); p.Quarantined != 0 || len(p.Quarantine) != 0 {
		t.Fatalf("sessions quarantined %+v", p)
	}
	waitUntil(t, "quarantine gauge", func() bool {
		m := getMetrics(t, s)
		return strings.Contains(m, `lockstep_projection_quarantined_events{projector="lectures"} 1`) &&
			strings.Contains(m, `lockstep_projection_status{projector="lectures",status="running"} 1`)
	})

	// Sub-route, and the admin actions' refusals.
	var one struct {
		Quarantine []quarantinedView `json:"quarantine"`
	}
	if g := s.Get(t, "/api/admin/projections/lectures/quarantine", admin.Token); g.Status != http.StatusOK {
		t.Fatalf("quarantine of lectures = %d %s", g.Status, g.Body)
	} else if g.Decode(t, &one); len(one.Quarantine) != 1 || one.Quarantine[0].Position != poison {
		t.Fatalf("quarantine of lectures = %s", g.Body)
	}
	retry := fmt.Sprintf("/api/admin/projections/lectures/quarantine/%d/retry", poison)
	for _, c := range []struct {
		path, token string
		status      int
		code        string
	}{
		{retry, teacher.Token, http.StatusForbidden, "FORBIDDEN"},
		{"/api/admin/projections/nope/quarantine/1/retry", admin.Token, http.StatusNotFound, "NOT_FOUND"},
		{"/api/admin/projections/lectures/quarantine/abc/retry", admin.Token, http.StatusBadRequest, "INVALID_REQUEST"},
		{"/api/admin/projections/lectures/quarantine/0/skip", admin.Token, http.StatusBadRequest, "INVALID_REQUEST"},
		{fmt.Sprintf("/api/admin/projections/lectures/quarantine/%d/skip", poison+1), admin.Token, http.StatusNotFound, "NOT_FOUND"},
		// It still fails: it stays quarantined.
		{retry, admin.Token, http.StatusConflict, "CONFLICT"},
	} {
		if r := s.Post(t, c.path, c.token, nil); r.Status != c.status || r.ErrorCode() != c.code {
			t.Fatalf("POST %s = %d %s, want %d %s", c.path, r.Status, r.Body, c.status, c.code)
		}
	}
	if g := s.Get(t, "/api/admin/projections/lectures/quarantine", admin.Token); !strings.Contains(string(g.Body), "invalid") && !strings.Contains(string(g.Body), "2147483648") {
		t.Fatalf("quarantine after a failed retry = %s", g.Body)
	}
	if q := projectionNamed(t, s, admin.Token, "lectures").Quarantine; len(q) != 1 || q[0].Attempts != 2 {
		t.Fatalf("quarantine after a failed retry = %+v", q)
	}

	// A rebuild passes it the same way instead of parking.
	if r := s.Post(t, "/api/admin/projections/lectures/rebuild", admin.Token, nil); r.Status != http.StatusAccepted || r.JSON(t)["status"] != "rebuilding" {
		t.Fatalf("rebuild = %d %s", r.Status, r.Body)
	}
	waitUntil(t, "rebuild done", func() bool { return !projectionNamed(t, s, admin.Token, "lectures").Rebuilding })
	p := projectionNamed(t, s, admin.Token, "lectures")
	if p.Status != "running" || len(p.Quarantine) != 1 || p.Quarantine[0].Position != poison || p.Quarantine[0].Attempts != 3 {
		t.Fatalf("lectures after rebuild = %+v", p)
	}
	for _, id := range []int64{first, second} {
		if g := s.Get(t, fmt.Sprintf("/api/lectures/%d", id), teacher.Token); g.Status != http.StatusOK {
			t.Fatalf("lecture %d after rebuild = %d %s", id, g.Status, g.Body)
		}
	}
	r = s.Post(t, "/api/lectures", teacher.Token, map[string]any{"title": "영상 통화"})
	if r.Status != http.StatusCreated {
		t.Fatalf("create lecture after rebuild: %d %s", r.Status, r.Body)
	}
	if g := s.Get(t, fmt.Sprintf("/api/lectures/%d", int64(r.JSON(t)["id"].(float64))), teacher.Token); g.Status != http.StatusOK {
		t.Fatalf("lecture created after rebuild = %d %s", g.Status, g.Body)
	}

	if r := s.Post(t, "/api/admin/projections/lectures/unpark", admin.Token, nil); r.Status != http.StatusOK || r.JSON(t)["status"] != "running" {
		t.Fatalf("unpark = %d %s", r.Status, r.Body)
	}
	if r := s.Post(t, "/api/admin/projections/nope/unpark", admin.Token, nil); r.Status != http.StatusNotFound {
		t.Fatalf("unpark unknown = %d %s", r.Status, r.Body)
	}

	// Skip: acknowledged and gone from the list.
	if r := s.Post(t, fmt.Sprintf("/api/admin/projections/lectures/quarantine/%d/skip", poison), admin.Token, nil); r.Status != http.StatusOK || r.JSON(t)["status"] != "skipped" {
		t.Fatalf("skip = %d %s", r.Status, r.Body)
	}
	if p := projectionNamed(t, s, admin.Token, "lectures"); p.Quarantined != 0 || len(p.Quarantine) != 0 {
		t.Fatalf("lectures after skip = %+v", p)
	}
}
