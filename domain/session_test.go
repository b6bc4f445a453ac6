package domain

import (
	"slices"
	"testing"
)

var (
	plan        = LectureDecider.Fold(withPlan)
	emptyPlan   = LectureDecider.Fold(given(lectureCreated))
	otherPlan   = LectureDecider.Fold(given(LectureCreated{LectureID: 2, InstructorID: 10, Title: "other", CreatedAt: at(0)}))
	inactive    = LectureDecider.Fold(given(lectureCreated, LectureDeactivated{LectureID: 1, DeactivatedAt: at(0)}))
	planNo1000  = LectureDecider.Fold(append(slices.Clone(withPlan), sub1000Removed))
	step1000    = StepSubtask{ID: 1000, TaskID: 100, Title: "카카오톡 앱 열기", GuideText: "노란색 아이콘을 눌러주세요", VoiceGuideText: "노란색 아이콘을 누르세요"}
	step1001    = StepSubtask{ID: 1001, TaskID: 100, Title: "친구 선택하기", GuideText: "친구를 선택하세요", VoiceGuideText: "친구를 고르세요"}
	step2000    = StepSubtask{ID: 2000, TaskID: 200, Title: "사진 고르기", GuideText: "사진을 고르세요"}
	opened      = SessionOpened{SessionID: 7, LectureID: 1, LectureTitle: "카카오톡 기초", InstructorID: 10, Title: "2025-10-28 오전반", SessionCode: "ABC234", ScheduledAt: &t0, OpenedAt: at(-10)}
	sessStarted = SessionStarted{SessionID: 7, LectureID: 1, CurrentSubtask: step1000, InstructorMessage: "시작합니다", StartedAt: at(0)}
	stepTo1001  = StepChanged{SessionID: 7, LectureID: 1, PreviousSubtaskID: 1000, CurrentSubtask: step1001, InstructorMessage: "다음", ChangedAt: at(5)}
	stepTo2000  = StepChanged{SessionID: 7, LectureID: 1, PreviousSubtaskID: 1001, CurrentSubtask: step2000, ChangedAt: at(8)}
	paused      = SessionPaused{SessionID: 7, LectureID: 1, CurrentSubtaskID: 1000, InstructorMessage: "쉬는 시간", PausedAt: at(10)}
	resumed     = SessionResumed{SessionID: 7, LectureID: 1, CurrentSubtaskID: 1000, InstructorMessage: "다시", ResumedAt: at(15)}
	ended       = SessionEnded{SessionID: 7, LectureID: 1, PreviousStatus: SessionStatusInProgress, InstructorMessage: "수고하셨습니다", EndedAt: at(60)}
)

func TestSessionDecider(t *testing.T) {
	waiting := given(opened)
	running := given(opened, sessStarted)
	onLast := given(opened, sessStarted, stepTo1001, stepTo2000)
	pausedS := given(opened, sessStarted, paused)
	review := given(opened, sessStarted, ended)

	decided := runSpecs(t, SessionDecider, []spec[SessionCommand]{
		// OpenSession
		{name: "open_session",
			when: OpenSession{Actor: instructor, At: at(-10), SessionID: 7, Code: "ABC234", Lecture: plan, Title: " 2025-10-28 오전반 ", ScheduledAt: t0},
			then: given(opened)},
		{name: "open_session_without_title_takes_the_lectures",
			when: OpenSession{Actor: instructor, At: at(-10), SessionID: 8, Code: "ZZZZZZ", Lecture: plan},
			then: given(SessionOpened{SessionID: 8, LectureID: 1, LectureTitle: "카카오톡 기초", InstructorID: 10, Title: "카카오톡 기초", SessionCode: "ZZZZZZ", OpenedAt: at(-10)})},
		{name: "open_session_by_admin_belongs_to_the_lectures_instructor",
			when: OpenSession{Actor: admin, At: at(-10), SessionID: 7, Code: "ABC234", Lecture: plan, Title: "2025-10-28 오전반", ScheduledAt: t0},
			then: given(opened)},
		{name: "open_session_of_another_instructors_lecture_is_forbidden",
			when: OpenSession{Actor: otherInstr, At: at(-10), SessionID: 7, Code: "ABC234", Lecture: plan}, err: ErrForbidden},
		{name: "open_session_as_student_is_forbidden",
			when: OpenSession{Actor: student, At: at(-10), SessionID: 7, Code: "ABC234", Lecture: plan}, err: ErrForbidden},
		{name: "open_session_of_unknown_lecture_is_not_found",
			when: OpenSession{Actor: instructor, At: at(-10), SessionID: 7, Code: "ABC234"}, err: ErrNotFound},
		{name: "open_session_of_inactive_lecture_is_invalid_state",
			when: OpenSession{Actor: instructor, At: at(-10), SessionID: 7, Code: "ABC234", Lecture: inactive}, err: ErrInvalidState},
		{name: "open_session_with_invalid_title_and_code",
			when: OpenSession{Actor: instructor, At: at(-10), SessionID: 7, Code: "ABC0O1", Lecture: plan, Title: runes(201)},
			err:  ErrInvalid, fields: []string{"title", "session_code"}},
		{name: "open_session_with_short_lowercase_code_is_invalid",
			when: OpenSession{Actor: instructor, At: at(-10), SessionID: 7, Code: "abc23", Lecture: plan},
			err:  ErrInvalid, fields: []string{"session_code"}},
		{name: "open_existing_session_conflicts", given: waiting,
			when: OpenSession{Actor: instructor, At: at(-10), SessionID: 7, Code: "ABC234", Lecture: plan}, err: ErrConflict},
		{name: "open_session_without_allocated_id_is_internal",
			when: OpenSession{Actor: instructor, At: at(-10), Code: "ABC234", Lecture: plan}, err: errInternalMarker},

		// StartSession
		{name: "start_session_at_the_lectures_first_subtask", given: waiting,
			when: StartSession{Actor: instructor, At: at(0), Plan: plan, Message: "시작합니다"},
			then: given(sessStarted)},
		{name: "start_session_at_a_chosen_subtask", given: waiting,
			when: StartSession{Actor: admin, At: at(0), Plan: plan, FirstSubtaskID: 2000},
			then: given(SessionStarted{SessionID: 7, LectureID: 1, CurrentSubtask: step2000, StartedAt: at(0)})},
		{name: "start_session_skips_a_removed_first_subtask", given: waiting,
			when: StartSession{Actor: instructor, At: at(0), Plan: planNo1000},
			then: given(SessionStarted{SessionID: 7, LectureID: 1, CurrentSubtask: step1001, StartedAt: at(0)})},
		{name: "start_session_at_a_subtask_of_another_lecture_is_invalid", given: waiting,
			when: StartSession{Actor: instructor, At: at(0), Plan: plan, FirstSubtaskID: 5000},
			err:  ErrInvalid, fields: []string{"first_subtask_id"}},
		{name: "start_session_at_a_removed_subtask_is_invalid", given: waiting,
			when: StartSession{Actor: instructor, At: at(0), Plan: planNo1000, FirstSubtaskID: 1000},
			err:  ErrInvalid, fields: []string{"first_subtask_id"}},
		{name: "start_session_of_lecture_without_subtasks_is_invalid_state", given: waiting,
			when: StartSession{Actor: instructor, At: at(0), Plan: emptyPlan}, err: ErrInvalidState},
		{name: "start_started_session_is_invalid_state", given: running,
			when: StartSession{Actor: instructor, At: at(0), Plan: plan}, err: ErrInvalidState},
		{name: "start_ended_session_is_invalid_state", given: review,
			when: StartSession{Actor: instructor, At: at(0), Plan: plan}, err: ErrInvalidState},
		{name: "start_unknown_session_is_not_found",
			when: StartSession{Actor: instructor, At: at(0), Plan: plan}, err: ErrNotFound},
		{name: "start_session_of_another_instructor_is_forbidden", given: waiting,
			when: StartSession{Actor: otherInstr, At: at(0), Plan: plan}, err: ErrForbidden},
		{name: "start_session_with_message_over_500_characters_is_invalid", given: waiting,
			when: StartSession{Actor: instructor, At: at(0), Plan: plan, Message: runes(501)},
			err:  ErrInvalid, fields: []string{"message"}},
		{name: "start_session_with_plan_of_another_lecture_is_internal", given: waiting,
			when: StartSession{Actor: instructor, At: at(0), Plan: otherPlan}, err: errInternalMarker},

		// ChangeStep
		{name: "next_step_goes_to_the_next_subtask", given: running,
			when: ChangeStep{Actor: instructor, At: at(5), Plan: plan, Message: "다음"},
			then: given(stepTo1001)},
		{name: "next_step_crosses_into_the_next_task", given: given(opened, sessStarted, stepTo1001),
			when: ChangeStep{Actor: instructor, At: at(8), Plan: plan},
			then: given(stepTo2000)},
		{name: "next_step_to_a_chosen_subtask", given: onLast,
			when: ChangeStep{Actor: instructor, At: at(9), Plan: plan, NextSubtaskID: 1000, Message: runes(500)},
			then: given(StepChanged{SessionID: 7, LectureID: 1, PreviousSubtaskID: 2000, CurrentSubtask: step1000, InstructorMessage: runes(500), ChangedAt: at(9)})},
		{name: "next_step_after_a_removed_current_subtask", given: running,
			when: ChangeStep{Actor: instructor, At: at(5), Plan: planNo1000},
			then: given(StepChanged{SessionID: 7, LectureID: 1, PreviousSubtaskID: 1000, CurrentSubtask: step1001, ChangedAt: at(5)})},
		{name: "next_step_with_none_left_is_invalid_state", given: onLast,
			when: ChangeStep{Actor: instructor, At: at(9), Plan: plan}, err: ErrInvalidState},
		{name: "next_step_to_a_subtask_of_another_lecture_is_invalid", given: running,
			when: ChangeStep{Actor: instructor, At: at(9), Plan: plan, NextSubtaskID: 5000},
			err:  ErrInvalid, fields: []string{"next_subtask_id"}},
		{name: "next_step_while_waiting_is_invalid_state", given: waiting,
			when: ChangeStep{Actor: instructor, At: at(9), Plan: plan}, err: ErrInvalidState},
		{name: "next_step_while_paused_is_invalid_state", given: pausedS,
			when: ChangeStep{Actor: instructor, At: at(9), Plan: plan}, err: ErrInvalidState},
		{name: "next_step_in_review_mode_is_invalid_state", given: review,
			when: ChangeStep{Actor: instructor, At: at(9), Plan: plan}, err: ErrInvalidState},
		{name: "next_step_by_a_student_is_forbidden", given: running,
			when: ChangeStep{Actor: student, At: at(9), Plan: plan}, err: ErrForbidden},
		{name: "next_step_with_message_over_500_characters_is_invalid", given: running,
			when: ChangeStep{Actor: instructor, At: at(9), Plan: plan, Message: runes(501)},
			err:  ErrInvalid, fields: []string{"message"}},
		{name: "next_step_with_plan_of_another_lecture_is_internal", given: running,
			when: ChangeStep{Actor: instructor, At: at(9), Plan: otherPlan}, err: errInternalMarker},

		// PauseSession / ResumeSession
		{name: "pause_session", given: running,
			when: PauseSession{Actor: instructor, At: at(10), Message: "쉬는 시간"}, then: given(paused)},
		{name: "pause_paused_session_is_invalid_state", given: pausedS,
			when: PauseSession{Actor: instructor, At: at(10)}, err: ErrInvalidState},
		{name: "pause_waiting_session_is_invalid_state", given: waiting,
			when: PauseSession{Actor: instructor, At: at(10)}, err: ErrInvalidState},
		{name: "pause_session_of_another_instructor_is_forbidden", given: running,
			when: PauseSession{Actor: otherInstr, At: at(10)}, err: ErrForbidden},
		{name: "pause_unknown_session_is_not_found",
			when: PauseSession{Actor: instructor, At: at(10)}, err: ErrNotFound},
		{name: "resume_session", given: pausedS,
			when: ResumeSession{Actor: instructor, At: at(15), Message: "다시"}, then: given(resumed)},
		{name: "resume_running_session_is_invalid_state", given: running,
			when: ResumeSession{Actor: instructor, At: at(15)}, err: ErrInvalidState},
		{name: "resume_ended_session_is_invalid_state", given: review,
			when: ResumeSession{Actor: instructor, At: at(15)}, err: ErrInvalidState},
		{name: "resume_session_with_message_over_500_characters_is_invalid", given: pausedS,
			when: ResumeSession{Actor: instructor, At: at(15), Message: runes(501)}, err: ErrInvalid, fields: []string{"message"}},
		{name: "resume_session_of_another_instructor_is_forbidden", given: pausedS,
			when: ResumeSession{Actor: otherInstr, At: at(15)}, err: ErrForbidden},

		// EndSession
		{name: "end_running_session", given: running,
			when: EndSession{Actor: instructor, At: at(60), Message: "수고하셨습니다"}, then: given(ended)},
		{name: "end_waiting_session", given: waiting,
			when: EndSession{Actor: admin, At: at(60)},
			then: given(SessionEnded{SessionID: 7, LectureID: 1, PreviousStatus: SessionStatusWaiting, EndedAt: at(60)})},
		{name: "end_paused_session", given: pausedS,
			when: EndSession{Actor: instructor, At: at(60)},
			then: given(SessionEnded{SessionID: 7, LectureID: 1, PreviousStatus: SessionStatusPaused, EndedAt: at(60)})},
		{name: "end_ended_session_is_invalid_state", given: review,
			when: EndSession{Actor: instructor, At: at(61)}, err: ErrInvalidState},
		{name: "end_session_of_another_instructor_is_forbidden", given: running,
			when: EndSession{Actor: otherInstr, At: at(60)}, err: ErrForbidden},
		{name: "end_session_with_message_over_500_characters_is_invalid", given: running,
			when: EndSession{Actor: instructor, At: at(60), Message: runes(501)}, err: ErrInvalid, fields: []string{"message"}},
		{name: "end_unknown_session_is_not_found",
			when: EndSession{Actor: instructor, At: at(60)}, err: ErrNotFound},
	})
	requireCovered(t, decided, "SessionOpened", "SessionStarted", "StepChanged", "SessionPaused", "SessionResumed", "SessionEnded")
}

func TestSessionState(t *testing.T) {
	s := SessionDecider.Fold(given(opened))
	if !s.Exists() || s.ID() != 7 || s.LectureID() != 1 || s.LectureTitle() != "카카오톡 기초" || s.InstructorID() != 10 ||
		s.Title() != opened.Title || s.Code() != "ABC234" || !s.ScheduledAt().Equal(t0) || !s.OpenedAt().Equal(at(-10)) ||
		s.Status() != SessionStatusWaiting || !s.StartedAt().IsZero() || len(s.Steps()) != 0 {
		t.Fatalf("opened %+v", s)
	}
	if _, ok := s.CurrentSubtask(); ok {
		t.Fatal("a waiting session shows no subtask")
	}
	if !s.CanControl(instructor) || !s.CanControl(admin) || s.CanControl(otherInstr) || s.CanControl(student) {
		t.Fatal("CanControl")
	}
	back := StepChanged{SessionID: 7, LectureID: 1, PreviousSubtaskID: 2000, CurrentSubtask: step1000, ChangedAt: at(9)}
	steps := []struct {
		ev      Event
		status  SessionStatus
		current int64
		message string
	}{
		{sessStarted, SessionStatusInProgress, 1000, "시작합니다"},
		{stepTo1001, SessionStatusInProgress, 1001, "다음"},
		{paused, SessionStatusPaused, 1001, "쉬는 시간"},
		{resumed, SessionStatusInProgress, 1001, "다시"},
		{stepTo2000, SessionStatusInProgress, 2000, ""},
		{back, SessionStatusInProgress, 1000, ""},
		{ended, SessionStatusReviewMode, 1000, "수고하셨습니다"},
	}
	for _, st := range steps {
		prev := s
		s = SessionDecider.Evolve(s, st.ev)
		cur, ok := s.CurrentSubtask()
		if s.Status() != st.status || !ok || cur.ID != st.current || s.InstructorMessage() != st.message {
			t.Fatalf("after %s: %s %d %q", st.ev.EventType(), s.Status(), cur.ID, s.InstructorMessage())
		}
		if len(prev.Steps()) > len(s.Steps()) {
			t.Fatal("steps shrank")
		}
	}
	if got, want := s.Steps(), []int64{1000, 1001, 2000, 1000}; !slices.Equal(got, want) {
		t.Fatalf("steps %v, want %v", got, want)
	}
	if cur, _ := s.CurrentSubtask(); cur != step1000 {
		t.Fatalf("after the end the last shown subtask stays current: %+v", cur)
	}
	if !s.StartedAt().Equal(at(0)) || !s.EndedAt().Equal(at(60)) {
		t.Fatalf("times %v %v", s.StartedAt(), s.EndedAt())
	}
}

func TestSessionCode(t *testing.T) {
	for code, ok := range map[string]bool{
		"ABC234": true, "ZZ9988": true, "ABC23": false, "ABC2345": false, "ABC0DE": false,
		"ABCODE": false, "ABC1DE": false, "ABCIDE": false, "abc234": false, "ABC23가": false,
	} {
		if ValidSessionCode(code) != ok {
			t.Errorf("ValidSessionCode(%q) = %v", code, !ok)
		}
	}
}
