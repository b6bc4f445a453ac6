package domain

import (
	"slices"
	"testing"
)

var (
	enrolled   = StudentEnrolled{EnrollmentID: 500, LectureID: 1, UserID: 20, EnrolledAt: at(0)}
	ref1000    = SubtaskRef{ID: 1000, TaskID: 100, LectureID: 1, Title: "카카오톡 앱 열기"}
	ref1001    = SubtaskRef{ID: 1001, TaskID: 100, LectureID: 1, Title: "친구 선택하기"}
	started    = SubtaskStarted{LectureID: 1, UserID: 20, TaskID: 100, SubtaskID: 1000, SubtaskTitle: "카카오톡 앱 열기", SessionID: 7, StartedAt: at(1)}
	completed  = SubtaskCompleted{LectureID: 1, UserID: 20, TaskID: 100, SubtaskID: 1000, SubtaskTitle: "카카오톡 앱 열기", SessionID: 7, CompletedAt: at(2)}
	otherLect  = SubtaskRef{ID: 5000, TaskID: 500, LectureID: 2, Title: "다른 강의"}
	inProgress = ProgressStatusInProgress
	complete   = ProgressStatusCompleted
)

func TestProgressDecider(t *testing.T) {
	decided := runSpecs(t, ProgressDecider, []spec[ProgressCommand]{
		// Enroll
		{name: "enroll_student",
			when: Enroll{Actor: student, At: at(0), EnrollmentID: 500, LectureID: 1},
			then: given(enrolled)},
		{name: "enroll_by_joining_a_session_records_the_session",
			when: Enroll{Actor: student, At: at(0), EnrollmentID: 500, LectureID: 1, UserID: 20, SessionID: 7},
			then: given(StudentEnrolled{EnrollmentID: 500, LectureID: 1, UserID: 20, SessionID: 7, EnrolledAt: at(0)})},
		{name: "enroll_by_admin_for_a_student",
			when: Enroll{Actor: admin, At: at(0), EnrollmentID: 500, LectureID: 1, UserID: 20},
			then: given(enrolled)},
		{name: "enroll_again_decides_nothing", given: given(enrolled),
			when: Enroll{Actor: student, At: at(5), EnrollmentID: 501, LectureID: 1}},
		{name: "enroll_as_instructor_is_forbidden",
			when: Enroll{Actor: instructor, At: at(0), EnrollmentID: 500, LectureID: 1}, err: ErrForbidden},
		{name: "enroll_another_student_is_forbidden",
			when: Enroll{Actor: student2, At: at(0), EnrollmentID: 500, LectureID: 1, UserID: 20}, err: ErrForbidden},
		{name: "enroll_without_allocated_id_is_internal",
			when: Enroll{Actor: student, At: at(0), LectureID: 1}, err: errInternalMarker},

		// UpdateProgress
		{name: "start_subtask_in_a_session", given: given(enrolled),
			when: UpdateProgress{Actor: student, At: at(1), Subtask: ref1000, Status: inProgress, SessionID: 7},
			then: given(started)},
		{name: "start_started_subtask_decides_nothing", given: given(enrolled, started),
			when: UpdateProgress{Actor: student, At: at(3), Subtask: ref1000, Status: inProgress}},
		{name: "start_completed_subtask_decides_nothing", given: given(enrolled, started, completed),
			when: UpdateProgress{Actor: student, At: at(3), Subtask: ref1000, Status: inProgress}},
		{name: "complete_started_subtask", given: given(enrolled, started),
			when: UpdateProgress{Actor: student, At: at(2), Subtask: ref1000, Status: complete, SessionID: 7},
			then: given(completed)},
		{name: "complete_unstarted_subtask_decides_only_completed", given: given(enrolled, started),
			when: UpdateProgress{Actor: student, At: at(4), Subtask: ref1001, Status: complete},
			then: given(SubtaskCompleted{LectureID: 1, UserID: 20, TaskID: 100, SubtaskID: 1001, SubtaskTitle: "친구 선택하기", CompletedAt: at(4)})},
		{name: "complete_completed_subtask_decides_nothing", given: given(enrolled, started, completed),
			when: UpdateProgress{Actor: student, At: at(9), Subtask: ref1000, Status: complete}},
		{name: "admin_records_progress_for_the_student", given: given(enrolled),
			when: UpdateProgress{Actor: admin, At: at(4), Subtask: ref1001, Status: complete},
			then: given(SubtaskCompleted{LectureID: 1, UserID: 20, TaskID: 100, SubtaskID: 1001, SubtaskTitle: "친구 선택하기", CompletedAt: at(4)})},
		{name: "update_progress_when_not_enrolled_is_forbidden",
			when: UpdateProgress{Actor: student, At: at(1), Subtask: ref1000, Status: inProgress}, err: ErrForbidden},
		{name: "update_progress_of_another_student_is_forbidden", given: given(enrolled),
			when: UpdateProgress{Actor: student2, At: at(1), Subtask: ref1000, Status: inProgress}, err: ErrForbidden},
		{name: "update_progress_to_not_started_is_invalid", given: given(enrolled, started),
			when: UpdateProgress{Actor: student, At: at(1), Subtask: ref1000, Status: ProgressStatusNotStarted},
			err:  ErrInvalid, fields: []string{"status"}},
		{name: "update_progress_to_unknown_status_is_invalid", given: given(enrolled),
			when: UpdateProgress{Actor: student, At: at(1), Subtask: ref1000, Status: "DONE"},
			err:  ErrInvalid, fields: []string{"status"}},
		{name: "update_progress_of_unknown_subtask_is_not_found", given: given(enrolled),
			when: UpdateProgress{Actor: student, At: at(1), Status: complete}, err: ErrNotFound},
		{name: "update_progress_of_another_lectures_subtask_is_not_found", given: given(enrolled),
			when: UpdateProgress{Actor: student, At: at(1), Subtask: otherLect, Status: complete}, err: ErrNotFound},
	})
	requireCovered(t, decided, "StudentEnrolled", "SubtaskStarted", "SubtaskCompleted")
}

func TestProgressState(t *testing.T) {
	p := ProgressDecider.Fold(given(enrolled))
	if !p.Enrolled() || p.EnrollmentID() != 500 || p.LectureID() != 1 || p.UserID() != 20 || !p.EnrolledAt().Equal(at(0)) {
		t.Fatalf("enrollment %+v", p)
	}
	if p.Status(1000) != ProgressStatusNotStarted {
		t.Fatalf("untouched subtask: %s", p.Status(1000))
	}
	p1 := ProgressDecider.Evolve(p, started)
	p2 := ProgressDecider.Evolve(p1, completed)
	p3 := ProgressDecider.Evolve(p2, SubtaskCompleted{LectureID: 1, UserID: 20, TaskID: 100, SubtaskID: 1001, SubtaskTitle: "친구 선택하기", CompletedAt: at(4)})
	if p1.Status(1000) != ProgressStatusInProgress || !p1.Subtask(1000).StartedAt.Equal(at(1)) {
		t.Fatalf("after start %+v", p1.Subtask(1000))
	}
	if got := p2.Subtask(1000); got.Status != ProgressStatusCompleted || !got.StartedAt.Equal(at(1)) || !got.CompletedAt.Equal(at(2)) || got.TaskID != 100 {
		t.Fatalf("after completion %+v", got)
	}
	if got := p3.Subtask(1001); got.Status != ProgressStatusCompleted || !got.StartedAt.IsZero() || got.Title != "친구 선택하기" {
		t.Fatalf("completed without start %+v", got)
	}
	ids := p3.CompletedIDs()
	slices.Sort(ids)
	if !slices.Equal(ids, []int64{1000, 1001}) {
		t.Fatalf("completed ids %v", ids)
	}
	// Pure Evolve: the earlier states did not change.
	if p1.Status(1000) != ProgressStatusInProgress || p.Status(1000) != ProgressStatusNotStarted || p2.Status(1001) != ProgressStatusNotStarted {
		t.Fatal("Evolve changed an earlier state")
	}
}
