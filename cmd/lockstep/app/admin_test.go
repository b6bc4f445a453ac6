package app_test

import (
	"fmt"
	"net/http"
	"testing"
	"time"

	"github.com/lockstep/lockstep/cmd/lockstep/app/apptest"
)

type projectionList struct {
	Projections []struct {
		Name       string  `json:"name"`
		Position   uint64  `json:"position"`
		LagEvents  int64   `json:"lag_events"`
		LagSeconds float64 `json:"lag_seconds"`
		Status     string  `json:"status"`
		LastError  string  `json:"last_error"`
		Rebuilding bool    `json:"rebuilding"`
	} `json:"projections"`
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
