package domain

import (
	"errors"
	"slices"
	"testing"
)

var (
	lectureCreated = LectureCreated{LectureID: 1, InstructorID: 10, Title: "카카오톡 기초", Description: "카카오톡 사용법을 배웁니다", ThumbnailURL: "https://cdn.example.com/t.png", CreatedAt: at(0)}
	task100Added   = TaskAdded{LectureID: 1, TaskID: 100, Title: "메시지 보내기", Description: "친구에게 메시지를 보냅니다", OrderIndex: 1, AddedAt: at(1)}
	task200Added   = TaskAdded{LectureID: 1, TaskID: 200, Title: "사진 보내기", OrderIndex: 2, AddedAt: at(1)}
	sub1000Added   = SubtaskAdded{LectureID: 1, TaskID: 100, SubtaskID: 1000, Title: "카카오톡 앱 열기", Description: "앱을 엽니다", OrderIndex: 1, TargetAction: ActionClick, TargetElementHint: "com.kakao.talk", GuideText: "노란색 아이콘을 눌러주세요", VoiceGuideText: "노란색 아이콘을 누르세요", AddedAt: at(2)}
	sub1001Added   = SubtaskAdded{LectureID: 1, TaskID: 100, SubtaskID: 1001, Title: "친구 선택하기", OrderIndex: 2, TargetAction: ActionClick, GuideText: "친구를 선택하세요", VoiceGuideText: "친구를 고르세요", AddedAt: at(2)}
	sub2000Added   = SubtaskAdded{LectureID: 1, TaskID: 200, SubtaskID: 2000, Title: "사진 고르기", OrderIndex: 1, TargetAction: ActionOther, GuideText: "사진을 고르세요", AddedAt: at(2)}
	sub1000Removed = SubtaskRemoved{LectureID: 1, TaskID: 100, SubtaskID: 1000, RemovedAt: at(3)}
)

// withPlan is a lecture with two tasks and three subtasks.
var withPlan = []Event{lectureCreated, task100Added, task200Added, sub1000Added, sub1001Added, sub2000Added}

func given(evs ...Event) []Event { return evs }

func TestLectureDecider(t *testing.T) {
	created := given(lectureCreated)
	withTask := given(lectureCreated, task100Added)
	withSub := given(lectureCreated, task100Added, sub1000Added)
	removed := given(lectureCreated, task100Added, sub1000Added, sub1000Removed)
	deactivated := given(lectureCreated, LectureDeactivated{LectureID: 1, DeactivatedAt: at(1)})
	yes, no := true, false
	one, zero, five := 1, 0, 5
	scroll, tap := ActionScroll, TargetAction("TAP")

	decided := runSpecs(t, LectureDecider, []spec[LectureCommand]{
		// CreateLecture
		{name: "create_lecture_as_instructor",
			when: CreateLecture{Actor: instructor, At: at(0), LectureID: 1, Title: "  카카오톡 기초 ", Description: "카카오톡 사용법을 배웁니다", ThumbnailURL: "https://cdn.example.com/t.png"},
			then: given(lectureCreated)},
		{name: "create_lecture_as_admin_makes_the_admin_owner",
			when: CreateLecture{Actor: admin, At: at(0), LectureID: 2, Title: runes(200)},
			then: given(LectureCreated{LectureID: 2, InstructorID: 1, Title: runes(200), CreatedAt: at(0)})},
		{name: "create_lecture_as_student_is_forbidden",
			when: CreateLecture{Actor: student, At: at(0), LectureID: 1, Title: "t"}, err: ErrForbidden},
		{name: "create_lecture_as_analyst_is_forbidden",
			when: CreateLecture{Actor: analyst, At: at(0), LectureID: 1, Title: "t"}, err: ErrForbidden},
		{name: "create_lecture_with_invalid_fields",
			when: CreateLecture{Actor: instructor, At: at(0), LectureID: 1, Title: " ", Description: runes(5001), ThumbnailURL: "ftp://x/y"},
			err:  ErrInvalid, fields: []string{"title", "description", "thumbnail_url"}},
		{name: "create_lecture_with_title_over_200_characters",
			when: CreateLecture{Actor: instructor, At: at(0), LectureID: 1, Title: runes(201), ThumbnailURL: "not a url"},
			err:  ErrInvalid, fields: []string{"title", "thumbnail_url"}},
		{name: "create_existing_lecture_conflicts", given: created,
			when: CreateLecture{Actor: instructor, At: at(0), LectureID: 1, Title: "again"}, err: ErrConflict},
		{name: "create_lecture_without_allocated_id_is_internal",
			when: CreateLecture{Actor: instructor, At: at(0), Title: "t"}, err: errInternalMarker},

		// UpdateLecture
		{name: "update_lecture_carries_only_changed_fields", given: created,
			when: UpdateLecture{Actor: instructor, At: at(5), Title: strp("새 제목"), Description: strp(lectureCreated.Description), IsActive: &yes},
			then: given(LectureUpdated{LectureID: 1, Title: strp("새 제목"), UpdatedAt: at(5)})},
		{name: "update_lecture_by_admin", given: created,
			when: UpdateLecture{Actor: admin, At: at(5), ThumbnailURL: strp(""), IsActive: &no},
			then: given(LectureUpdated{LectureID: 1, ThumbnailURL: strp(""), IsActive: &no, UpdatedAt: at(5)})},
		{name: "update_lecture_reactivates_it", given: deactivated,
			when: UpdateLecture{Actor: instructor, At: at(5), IsActive: &yes},
			then: given(LectureUpdated{LectureID: 1, IsActive: &yes, UpdatedAt: at(5)})},
		{name: "update_lecture_without_changes_decides_nothing", given: created,
			when: UpdateLecture{Actor: instructor, At: at(5), Title: strp(lectureCreated.Title)}},
		{name: "update_unknown_lecture_is_not_found",
			when: UpdateLecture{Actor: instructor, At: at(5), Title: strp("x")}, err: ErrNotFound},
		{name: "update_lecture_of_another_instructor_is_forbidden", given: created,
			when: UpdateLecture{Actor: otherInstr, At: at(5), Title: strp("x")}, err: ErrForbidden},
		{name: "update_lecture_with_invalid_fields", given: created,
			when: UpdateLecture{Actor: instructor, At: at(5), Title: strp(""), Description: strp(runes(5001)), ThumbnailURL: strp("javascript:alert(1)")},
			err:  ErrInvalid, fields: []string{"title", "description", "thumbnail_url"}},

		// DeactivateLecture
		{name: "deactivate_lecture", given: created,
			when: DeactivateLecture{Actor: instructor, At: at(6)},
			then: given(LectureDeactivated{LectureID: 1, DeactivatedAt: at(6)})},
		{name: "deactivate_inactive_lecture_decides_nothing", given: deactivated,
			when: DeactivateLecture{Actor: instructor, At: at(6)}},
		{name: "deactivate_lecture_of_another_instructor_is_forbidden", given: created,
			when: DeactivateLecture{Actor: otherInstr, At: at(6)}, err: ErrForbidden},
		{name: "deactivate_unknown_lecture_is_not_found",
			when: DeactivateLecture{Actor: instructor, At: at(6)}, err: ErrNotFound},

		// AddTask
		{name: "add_task", given: created,
			when: AddTask{Actor: instructor, At: at(1), TaskID: 100, Title: "메시지 보내기 ", Description: "친구에게 메시지를 보냅니다", OrderIndex: 1},
			then: given(task100Added)},
		{name: "add_task_with_invalid_fields", given: created,
			when: AddTask{Actor: instructor, At: at(1), TaskID: 100, Title: "", Description: runes(5001), OrderIndex: 0},
			err:  ErrInvalid, fields: []string{"title", "description", "order_index"}},
		{name: "add_task_as_student_is_forbidden", given: created,
			when: AddTask{Actor: student, At: at(1), TaskID: 100, Title: "t", OrderIndex: 1}, err: ErrForbidden},
		{name: "add_task_to_unknown_lecture_is_not_found",
			when: AddTask{Actor: instructor, At: at(1), TaskID: 100, Title: "t", OrderIndex: 1}, err: ErrNotFound},
		{name: "add_task_with_used_id_conflicts", given: withTask,
			when: AddTask{Actor: instructor, At: at(1), TaskID: 100, Title: "t", OrderIndex: 1}, err: ErrConflict},
		{name: "add_task_without_allocated_id_is_internal", given: created,
			when: AddTask{Actor: instructor, At: at(1), Title: "t", OrderIndex: 1}, err: errInternalMarker},

		// UpdateTask
		{name: "update_task_carries_the_full_task", given: withTask,
			when: UpdateTask{Actor: instructor, At: at(4), TaskID: 100, OrderIndex: &five},
			then: given(TaskUpdated{LectureID: 1, TaskID: 100, Title: task100Added.Title, Description: task100Added.Description, OrderIndex: 5, UpdatedAt: at(4)})},
		{name: "update_task_without_changes_decides_nothing", given: withTask,
			when: UpdateTask{Actor: instructor, At: at(4), TaskID: 100, OrderIndex: &one, Title: strp(task100Added.Title)}},
		{name: "update_unknown_task_is_not_found", given: created,
			when: UpdateTask{Actor: instructor, At: at(4), TaskID: 100, OrderIndex: &five}, err: ErrNotFound},
		{name: "update_task_with_invalid_fields", given: withTask,
			when: UpdateTask{Actor: instructor, At: at(4), TaskID: 100, OrderIndex: &zero, Title: strp(runes(201))},
			err:  ErrInvalid, fields: []string{"order_index", "title"}},
		{name: "update_task_of_another_instructor_is_forbidden", given: withTask,
			when: UpdateTask{Actor: otherInstr, At: at(4), TaskID: 100, OrderIndex: &five}, err: ErrForbidden},

		// AddSubtask
		{name: "add_subtask", given: withTask,
			when: AddSubtask{Actor: instructor, At: at(2), TaskID: 100, SubtaskID: 1000, Title: "카카오톡 앱 열기", Description: "앱을 엽니다", OrderIndex: 1, TargetAction: ActionClick, TargetElementHint: "com.kakao.talk", GuideText: "노란색 아이콘을 눌러주세요", VoiceGuideText: "노란색 아이콘을 누르세요"},
			then: given(sub1000Added)},
		{name: "add_subtask_without_target_action_means_other", given: withTask,
			when: AddSubtask{Actor: admin, At: at(2), TaskID: 100, SubtaskID: 1002, Title: "t", OrderIndex: 3, GuideText: runes(2000)},
			then: given(SubtaskAdded{LectureID: 1, TaskID: 100, SubtaskID: 1002, Title: "t", OrderIndex: 3, TargetAction: ActionOther, GuideText: runes(2000), AddedAt: at(2)})},
		{name: "add_subtask_with_invalid_fields", given: withTask,
			when: AddSubtask{Actor: instructor, At: at(2), TaskID: 100, SubtaskID: 1000, Title: "", Description: runes(5001), OrderIndex: -1, TargetAction: tap, TargetElementHint: runes(501), GuideText: runes(2001), VoiceGuideText: runes(2001)},
			err:  ErrInvalid, fields: []string{"title", "description", "order_index", "target_action", "target_element_hint", "guide_text", "voice_guide_text"}},
		{name: "add_subtask_to_unknown_task_is_not_found", given: withTask,
			when: AddSubtask{Actor: instructor, At: at(2), TaskID: 999, SubtaskID: 1000, Title: "t", OrderIndex: 1}, err: ErrNotFound},
		{name: "add_subtask_to_unknown_lecture_is_not_found",
			when: AddSubtask{Actor: instructor, At: at(2), TaskID: 100, SubtaskID: 1000, Title: "t", OrderIndex: 1}, err: ErrNotFound},
		{name: "add_subtask_as_another_instructor_is_forbidden", given: withTask,
			when: AddSubtask{Actor: otherInstr, At: at(2), TaskID: 100, SubtaskID: 1000, Title: "t", OrderIndex: 1}, err: ErrForbidden},
		{name: "add_subtask_with_used_id_conflicts", given: withSub,
			when: AddSubtask{Actor: instructor, At: at(2), TaskID: 100, SubtaskID: 1000, Title: "t", OrderIndex: 1}, err: ErrConflict},
		{name: "add_subtask_with_id_of_removed_subtask_conflicts", given: removed,
			when: AddSubtask{Actor: instructor, At: at(2), TaskID: 100, SubtaskID: 1000, Title: "t", OrderIndex: 1}, err: ErrConflict},
		{name: "add_subtask_without_allocated_id_is_internal", given: withTask,
			when: AddSubtask{Actor: instructor, At: at(2), TaskID: 100, Title: "t", OrderIndex: 1}, err: errInternalMarker},

		// UpdateSubtask
		{name: "update_subtask_carries_the_full_subtask", given: withSub,
			when: UpdateSubtask{Actor: instructor, At: at(4), SubtaskID: 1000, TargetAction: &scroll, GuideText: strp("아래로 내리세요")},
			then: given(SubtaskUpdated{LectureID: 1, TaskID: 100, SubtaskID: 1000, Title: sub1000Added.Title, Description: sub1000Added.Description, OrderIndex: 1, TargetAction: ActionScroll, TargetElementHint: "com.kakao.talk", GuideText: "아래로 내리세요", VoiceGuideText: sub1000Added.VoiceGuideText, UpdatedAt: at(4)})},
		{name: "update_subtask_without_changes_decides_nothing", given: withSub,
			when: UpdateSubtask{Actor: instructor, At: at(4), SubtaskID: 1000, Title: strp(sub1000Added.Title), OrderIndex: &one}},
		{name: "update_removed_subtask_is_not_found", given: removed,
			when: UpdateSubtask{Actor: instructor, At: at(4), SubtaskID: 1000, Title: strp("x")}, err: ErrNotFound},
		{name: "update_subtask_with_invalid_fields", given: withSub,
			when: UpdateSubtask{Actor: instructor, At: at(4), SubtaskID: 1000, Title: strp(" "), Description: strp(runes(5001)), OrderIndex: &zero, TargetAction: &tap, TargetElementHint: strp(runes(501)), GuideText: strp(runes(2001)), VoiceGuideText: strp(runes(2001))},
			err:  ErrInvalid, fields: []string{"title", "description", "order_index", "target_action", "target_element_hint", "guide_text", "voice_guide_text"}},
		{name: "update_subtask_as_another_instructor_is_forbidden", given: withSub,
			when: UpdateSubtask{Actor: otherInstr, At: at(4), SubtaskID: 1000, Title: strp("x")}, err: ErrForbidden},

		// RemoveSubtask
		{name: "remove_subtask", given: withSub,
			when: RemoveSubtask{Actor: instructor, At: at(3), SubtaskID: 1000},
			then: given(sub1000Removed)},
		{name: "remove_removed_subtask_is_not_found", given: removed,
			when: RemoveSubtask{Actor: instructor, At: at(3), SubtaskID: 1000}, err: ErrNotFound},
		{name: "remove_subtask_as_student_is_forbidden", given: withSub,
			when: RemoveSubtask{Actor: student, At: at(3), SubtaskID: 1000}, err: ErrForbidden},
	})
	requireCovered(t, decided, "LectureCreated", "LectureUpdated", "LectureDeactivated", "TaskAdded",
		"TaskUpdated", "SubtaskAdded", "SubtaskUpdated", "SubtaskRemoved")
}

func ids(ss []Subtask) []int64 {
	var out []int64
	for _, s := range ss {
		out = append(out, s.ID)
	}
	return out
}

func TestLecturePlan(t *testing.T) {
	// Added out of order, with order_index ties broken by id.
	l := LectureDecider.Fold([]Event{
		lectureCreated,
		TaskAdded{LectureID: 1, TaskID: 300, Title: "c", OrderIndex: 2},
		TaskAdded{LectureID: 1, TaskID: 200, Title: "b", OrderIndex: 2},
		TaskAdded{LectureID: 1, TaskID: 100, Title: "a", OrderIndex: 1},
		SubtaskAdded{LectureID: 1, TaskID: 200, SubtaskID: 2002, OrderIndex: 1},
		SubtaskAdded{LectureID: 1, TaskID: 200, SubtaskID: 2001, OrderIndex: 1},
		SubtaskAdded{LectureID: 1, TaskID: 100, SubtaskID: 1001, OrderIndex: 2},
		SubtaskAdded{LectureID: 1, TaskID: 100, SubtaskID: 1000, OrderIndex: 1},
		SubtaskAdded{LectureID: 1, TaskID: 300, SubtaskID: 3000, OrderIndex: 7},
	})
	var taskIDs []int64
	for _, tk := range l.Tasks() {
		taskIDs = append(taskIDs, tk.ID)
	}
	if want := []int64{100, 200, 300}; !slices.Equal(taskIDs, want) {
		t.Fatalf("tasks %v, want %v", taskIDs, want)
	}
	if got, want := ids(l.Plan()), []int64{1000, 1001, 2001, 2002, 3000}; !slices.Equal(got, want) {
		t.Fatalf("plan %v, want %v", got, want)
	}
	if got, want := ids(l.Subtasks(200)), []int64{2001, 2002}; !slices.Equal(got, want) {
		t.Fatalf("subtasks of 200: %v, want %v", got, want)
	}
	if f, ok := l.FirstSubtask(); !ok || f.ID != 1000 {
		t.Fatalf("first subtask %v %v", f.ID, ok)
	}
	for _, c := range []struct {
		after, next int64
		ok          bool
	}{{1000, 1001, true}, {1001, 2001, true}, {2002, 3000, true}, {3000, 0, false}, {9999, 0, false}} {
		n, ok := l.NextSubtask(c.after)
		if ok != c.ok || n.ID != c.next {
			t.Errorf("next after %d: %d %v, want %d %v", c.after, n.ID, ok, c.next, c.ok)
		}
	}
	if tk, ok := l.TaskOfSubtask(2002); !ok || tk.ID != 200 {
		t.Fatalf("task of 2002: %v %v", tk.ID, ok)
	}
	if l.SubtaskCount() != 5 {
		t.Fatalf("count %d", l.SubtaskCount())
	}

	// Removing 1001 takes it out of the plan; "next after 1001" still answers
	// from the place it had; the state folded before is untouched (pure Evolve).
	before := l
	l = LectureDecider.Evolve(l, SubtaskRemoved{LectureID: 1, TaskID: 100, SubtaskID: 1001})
	if _, ok := l.Subtask(1001); ok {
		t.Fatal("removed subtask still in the plan")
	}
	if _, ok := l.TaskOfSubtask(1001); ok {
		t.Fatal("removed subtask still has a task")
	}
	if r, ok := l.RemovedSubtask(1001); !ok || r.TaskID != 100 {
		t.Fatalf("removed subtask lost: %v", r)
	}
	if n, ok := l.NextSubtask(1001); !ok || n.ID != 2001 {
		t.Fatalf("next after removed 1001: %d %v", n.ID, ok)
	}
	if got, want := ids(before.Plan()), []int64{1000, 1001, 2001, 2002, 3000}; !slices.Equal(got, want) {
		t.Fatalf("Evolve changed the earlier state: %v", got)
	}

	// Moving task 300 first reorders the whole plan.
	l = LectureDecider.Evolve(l, TaskUpdated{LectureID: 1, TaskID: 300, Title: "c", OrderIndex: 0})
	if got, want := ids(l.Plan()), []int64{3000, 1000, 2001, 2002}; !slices.Equal(got, want) {
		t.Fatalf("plan after reorder %v, want %v", got, want)
	}
	// Moving a subtask within its task.
	l = LectureDecider.Evolve(l, SubtaskUpdated{LectureID: 1, TaskID: 200, SubtaskID: 2001, OrderIndex: 9, Title: "late"})
	if got, want := ids(l.Plan()), []int64{3000, 1000, 2002, 2001}; !slices.Equal(got, want) {
		t.Fatalf("plan after subtask move %v, want %v", got, want)
	}
	if s, _ := l.Subtask(2001); s.Title != "late" || s.Ref() != (SubtaskRef{ID: 2001, TaskID: 200, LectureID: 1, Title: "late"}) {
		t.Fatalf("updated subtask %+v", s)
	}
}

func TestLectureState(t *testing.T) {
	l := LectureDecider.Fold(withPlan)
	if !l.Exists() || l.ID() != 1 || l.InstructorID() != 10 || l.Title() != lectureCreated.Title ||
		l.Description() != lectureCreated.Description || l.ThumbnailURL() != lectureCreated.ThumbnailURL ||
		!l.IsActive() || !l.CreatedAt().Equal(at(0)) || !l.UpdatedAt().Equal(at(2)) {
		t.Fatalf("lecture state %+v", l)
	}
	if !l.CanEdit(instructor) || !l.CanEdit(admin) || l.CanEdit(otherInstr) || l.CanEdit(student) {
		t.Fatal("CanEdit")
	}
	s, _ := l.Subtask(1000)
	if s.Step() != (StepSubtask{ID: 1000, TaskID: 100, Title: sub1000Added.Title, GuideText: sub1000Added.GuideText, VoiceGuideText: sub1000Added.VoiceGuideText}) {
		t.Fatalf("step %+v", s.Step())
	}
	l = LectureDecider.Evolve(l, LectureUpdated{LectureID: 1, Title: strp("new"), IsActive: new(bool), UpdatedAt: at(9)})
	if l.Title() != "new" || l.IsActive() || l.Description() != lectureCreated.Description || !l.UpdatedAt().Equal(at(9)) {
		t.Fatalf("after update %+v", l)
	}
	if LectureDecider.Fold(nil).CanEdit(instructor) {
		t.Fatal("nobody owns a lecture that does not exist")
	}
	if _, err := LectureDecider.Decide(l, nil); err == nil || errors.Is(err, ErrInvalid) {
		t.Fatalf("nil command: %v", err)
	}
}
