package readapi_test

import (
	"fmt"
	"net/http"
	"testing"

	"github.com/lockstep/lockstep/cmd/lockstep/app/apptest"
)

func lqExpect(t *testing.T, r *apptest.Response, status int, code string) {
	t.Helper()
	if r.Status != status {
		t.Fatalf("status = %d, want %d; body %s", r.Status, status, r.Body)
	}
	if code != "" && r.ErrorCode() != code {
		t.Fatalf("error code = %q, want %q; body %s", r.ErrorCode(), code, r.Body)
	}
}

func lqExpectFields(t *testing.T, r *apptest.Response, fields ...string) {
	t.Helper()
	lqExpect(t, r, http.StatusBadRequest, "INVALID_REQUEST")
	var e struct {
		Error struct {
			Details map[string]any `json:"details"`
		} `json:"error"`
	}
	r.Decode(t, &e)
	for _, f := range fields {
		if _, ok := e.Error.Details[f]; !ok {
			t.Errorf("details %v do not name %q", e.Error.Details, f)
		}
	}
}

func lqCreate(t *testing.T, s *apptest.Server, u apptest.User, path string, body map[string]any) int64 {
	t.Helper()
	r := s.Post(t, path, u.Token, body)
	lqExpect(t, r, http.StatusCreated, "")
	id, _ := r.JSON(t)["id"].(float64)
	return int64(id)
}

// lqAnalyst makes a user and turns them into an ANALYST through the admin API.
func lqAnalyst(t *testing.T, s *apptest.Server) apptest.User {
	t.Helper()
	u := s.NewUser(t, "STUDENT", "분석가")
	lqExpect(t, s.Patch(t, fmt.Sprintf("/api/admin/users/%d", u.ID), s.Admin(t).Token, map[string]any{"role": "ANALYST"}), http.StatusOK, "")
	return s.Login(t, u.Email, "password-123")
}

// lqLecture is what a lecture's list item and detail both say of it.
type lqLecture struct {
	ID          int64  `json:"id"`
	Title       string `json:"title"`
	Description string `json:"description"`
	Instructor  struct {
		ID   int64  `json:"id"`
		Name string `json:"name"`
	} `json:"instructor"`
}

type lqList struct {
	Lectures []struct {
		lqLecture
		ThumbnailURL *string `json:"thumbnail_url"`
		CreatedAt    string  `json:"created_at"`
	} `json:"lectures"`
	Pagination apptest.Pagination `json:"pagination"`
}

func (l lqList) ids() []int64 {
	var out []int64
	for _, x := range l.Lectures {
		out = append(out, x.ID)
	}
	return out
}

func TestLectureQueries_list(t *testing.T) {
	s := apptest.Start(t)
	park, choi, student := s.Cast(t)
	analyst := lqAnalyst(t, s)

	var parkIDs []int64
	for i := range 3 {
		parkIDs = append(parkIDs, lqCreate(t, s, park, "/api/lectures", map[string]any{
			"title": fmt.Sprintf("박 강의 %d", i), "description": "설명", "thumbnail_url": "https://example.com/p.png",
		}))
	}
	choiActive := lqCreate(t, s, choi, "/api/lectures", map[string]any{"title": "최 강의"})
	choiInactive := lqCreate(t, s, choi, "/api/lectures", map[string]any{"title": "최 옛 강의"})
	lqExpect(t, s.Delete(t, fmt.Sprintf("/api/lectures/%d", choiInactive), choi.Token), http.StatusNoContent, "")

	t.Run("active_for_everyone_newest_first", func(t *testing.T) {
		var l lqList
		r := s.Get(t, "/api/lectures", student.Token)
		lqExpect(t, r, http.StatusOK, "")
		r.Decode(t, &l)
		want := []int64{choiActive, parkIDs[2], parkIDs[1], parkIDs[0]}
		if fmt.Sprint(l.ids()) != fmt.Sprint(want) {
			t.Errorf("ids = %v, want %v", l.ids(), want)
		}
		if l.Pagination.Page != 1 || l.Pagination.PageSize != 20 || l.Pagination.TotalCount != 4 || l.Pagination.TotalPages != 1 {
			t.Errorf("pagination = %+v", l.Pagination)
		}
		first := l.Lectures[1]
		if first.Instructor.ID != park.ID || first.Instructor.Name != "박강사" || first.Description != "설명" ||
			first.ThumbnailURL == nil || *first.ThumbnailURL != "https://example.com/p.png" || first.CreatedAt == "" {
			t.Errorf("item = %+v", first)
		}
		if l.Lectures[0].ThumbnailURL != nil {
			t.Errorf("no thumbnail should be null: %+v", l.Lectures[0])
		}
	})
	t.Run("pagination", func(t *testing.T) {
		var l lqList
		s.Get(t, "/api/lectures?page=2&page_size=3", student.Token).Decode(t, &l)
		if fmt.Sprint(l.ids()) != fmt.Sprint([]int64{parkIDs[0]}) || l.Pagination.TotalCount != 4 || l.Pagination.TotalPages != 2 || l.Pagination.Page != 2 {
			t.Errorf("page 2 = %v %+v", l.ids(), l.Pagination)
		}
		lqExpectFields(t, s.Get(t, "/api/lectures?page=0&page_size=101", student.Token), "page", "page_size")
	})
	t.Run("filters", func(t *testing.T) {
		var l lqList
		s.Get(t, fmt.Sprintf("/api/lectures?instructor_id=%d", choi.ID), student.Token).Decode(t, &l)
		if fmt.Sprint(l.ids()) != fmt.Sprint([]int64{choiActive}) {
			t.Errorf("instructor filter = %v", l.ids())
		}
		l = lqList{}
		s.Get(t, "/api/lectures?is_active=false", choi.Token).Decode(t, &l)
		if fmt.Sprint(l.ids()) != fmt.Sprint([]int64{choiInactive}) {
			t.Errorf("owner's inactive = %v", l.ids())
		}
		l = lqList{}
		s.Get(t, "/api/lectures?is_active=false", analyst.Token).Decode(t, &l)
		if fmt.Sprint(l.ids()) != fmt.Sprint([]int64{choiInactive}) {
			t.Errorf("analyst's inactive = %v", l.ids())
		}
		for _, u := range []apptest.User{student, park} {
			l = lqList{}
			r := s.Get(t, "/api/lectures?is_active=false", u.Token)
			lqExpect(t, r, http.StatusOK, "")
			r.Decode(t, &l)
			if len(l.Lectures) != 0 || l.Pagination.TotalCount != 0 {
				t.Errorf("%s sees inactive lectures of others: %v", u.Name, l.ids())
			}
		}
		lqExpectFields(t, s.Get(t, "/api/lectures?is_active=maybe&instructor_id=x", student.Token), "is_active", "instructor_id")
	})
	t.Run("unauthenticated", func(t *testing.T) {
		lqExpect(t, s.Get(t, "/api/lectures", ""), http.StatusUnauthorized, "UNAUTHORIZED")
	})
}

func TestLectureQueries_detail_and_task(t *testing.T) {
	s := apptest.Start(t)
	owner, other, student := s.Cast(t)
	analyst := lqAnalyst(t, s)
	lectureID := lqCreate(t, s, owner, "/api/lectures", map[string]any{"title": "카카오톡 기초", "description": "카카오톡 사용법"})
	t2 := lqCreate(t, s, owner, fmt.Sprintf("/api/lectures/%d/tasks", lectureID), map[string]any{"title": "둘째", "order_index": 2})
	t1 := lqCreate(t, s, owner, fmt.Sprintf("/api/lectures/%d/tasks", lectureID), map[string]any{"title": "첫째", "order_index": 1})
	s2 := lqCreate(t, s, owner, fmt.Sprintf("/api/tasks/%d/subtasks", t1), map[string]any{"title": "친구 선택하기", "order_index": 2, "target_action": "CLICK", "guide_text": "친구를 선택하세요"})
	s1 := lqCreate(t, s, owner, fmt.Sprintf("/api/tasks/%d/subtasks", t1), map[string]any{
		"title": "카카오톡 앱 열기", "order_index": 1, "target_action": "OPEN_APP", "guide_text": "아이콘을 눌러주세요", "voice_guide_text": "아이콘을 눌러주세요",
	})
	lqExpect(t, s.Post(t, fmt.Sprintf("/api/lectures/%d/enroll", lectureID), student.Token, nil), http.StatusCreated, "")

	t.Run("lecture_detail_seed_shape", func(t *testing.T) {
		r := s.Get(t, fmt.Sprintf("/api/lectures/%d", lectureID), student.Token)
		lqExpect(t, r, http.StatusOK, "")
		var d struct {
			lqLecture
			Tasks []struct {
				ID         int64  `json:"id"`
				Title      string `json:"title"`
				OrderIndex int    `json:"order_index"`
			} `json:"tasks"`
			EnrolledCount int `json:"enrolled_count"`
		}
		r.Decode(t, &d)
		if d.ID != lectureID || d.Title != "카카오톡 기초" || d.Description != "카카오톡 사용법" || d.Instructor.ID != owner.ID || d.Instructor.Name != "박강사" || d.EnrolledCount != 1 {
			t.Errorf("detail = %s", r.Body)
		}
		if len(d.Tasks) != 2 || d.Tasks[0].ID != t1 || d.Tasks[0].OrderIndex != 1 || d.Tasks[1].ID != t2 || d.Tasks[1].Title != "둘째" {
			t.Errorf("tasks = %+v", d.Tasks)
		}
	})
	t.Run("task_detail_seed_shape", func(t *testing.T) {
		r := s.Get(t, fmt.Sprintf("/api/tasks/%d", t1), student.Token)
		lqExpect(t, r, http.StatusOK, "")
		var d struct {
			ID         int64  `json:"id"`
			LectureID  int64  `json:"lecture_id"`
			Title      string `json:"title"`
			OrderIndex int    `json:"order_index"`
			Subtasks   []struct {
				ID             int64  `json:"id"`
				Title          string `json:"title"`
				OrderIndex     int    `json:"order_index"`
				TargetAction   string `json:"target_action"`
				GuideText      string `json:"guide_text"`
				VoiceGuideText string `json:"voice_guide_text"`
			} `json:"subtasks"`
		}
		r.Decode(t, &d)
		if d.ID != t1 || d.LectureID != lectureID || d.Title != "첫째" || d.OrderIndex != 1 || len(d.Subtasks) != 2 {
			t.Fatalf("task = %s", r.Body)
		}
		a, b := d.Subtasks[0], d.Subtasks[1]
		if a.ID != s1 || a.TargetAction != "OPEN_APP" || a.GuideText != "아이콘을 눌러주세요" || a.VoiceGuideText != "아이콘을 눌러주세요" || b.ID != s2 || b.OrderIndex != 2 {
			t.Errorf("subtasks = %+v", d.Subtasks)
		}
		empty := s.Get(t, fmt.Sprintf("/api/tasks/%d", t2), student.Token)
		lqExpect(t, empty, http.StatusOK, "")
		if subs, ok := empty.JSON(t)["subtasks"].([]any); !ok || len(subs) != 0 {
			t.Errorf("a task without subtasks = %s, want subtasks []", empty.Body)
		}
	})
	t.Run("not_found_and_unauthenticated", func(t *testing.T) {
		lqExpect(t, s.Get(t, "/api/lectures/999999", student.Token), http.StatusNotFound, "NOT_FOUND")
		lqExpect(t, s.Get(t, "/api/lectures/x", student.Token), http.StatusNotFound, "NOT_FOUND")
		lqExpect(t, s.Get(t, "/api/tasks/999999", student.Token), http.StatusNotFound, "NOT_FOUND")
		lqExpect(t, s.Get(t, fmt.Sprintf("/api/lectures/%d", lectureID), ""), http.StatusUnauthorized, "UNAUTHORIZED")
		lqExpect(t, s.Get(t, fmt.Sprintf("/api/tasks/%d", t1), ""), http.StatusUnauthorized, "UNAUTHORIZED")
	})
	t.Run("inactive_visibility", func(t *testing.T) {
		lqExpect(t, s.Delete(t, fmt.Sprintf("/api/lectures/%d", lectureID), owner.Token), http.StatusNoContent, "")
		for _, u := range []apptest.User{owner, analyst, s.Admin(t)} {
			lqExpect(t, s.Get(t, fmt.Sprintf("/api/lectures/%d", lectureID), u.Token), http.StatusOK, "")
			lqExpect(t, s.Get(t, fmt.Sprintf("/api/tasks/%d", t1), u.Token), http.StatusOK, "")
		}
		for _, u := range []apptest.User{student, other} {
			lqExpect(t, s.Get(t, fmt.Sprintf("/api/lectures/%d", lectureID), u.Token), http.StatusNotFound, "NOT_FOUND")
			lqExpect(t, s.Get(t, fmt.Sprintf("/api/tasks/%d", t1), u.Token), http.StatusNotFound, "NOT_FOUND")
		}
	})
}
