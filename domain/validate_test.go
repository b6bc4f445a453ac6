package domain

import (
	"encoding/json"
	"testing"
)

// The deciders refuse what PostgreSQL cannot store, whoever sends the
// command (the HTTP edge refuses it earlier; the analyzer, the stuck
// detector and future callers reach the deciders directly).
func TestDecidersRefuseWhatPostgresCannotStore(t *testing.T) {
	const nul, badUTF8 = "a\x00b", "a\xffb"
	big, neg := MaxOrderIndex+1, -5
	nulp := func() *string { s := nul; return &s }

	runSpecs(t, LectureDecider, []spec[LectureCommand]{
		{name: "create_lecture_with_nul_title",
			when: CreateLecture{Actor: instructor, At: at(0), LectureID: 1, Title: nul, Description: badUTF8, ThumbnailURL: "https://x/\x00"},
			err:  ErrInvalid, fields: []string{"title", "description", "thumbnail_url"}},
		{name: "update_lecture_with_nul_description", given: given(lectureCreated),
			when: UpdateLecture{Actor: instructor, At: at(1), Description: nulp()},
			err:  ErrInvalid, fields: []string{"description"}},
		{name: "add_task_beyond_max_order_index", given: given(lectureCreated),
			when: AddTask{Actor: instructor, At: at(1), TaskID: 100, Title: "t", OrderIndex: big},
			err:  ErrInvalid, fields: []string{"order_index"}},
		{name: "add_task_at_max_order_index", given: given(lectureCreated),
			when: AddTask{Actor: instructor, At: at(1), TaskID: 100, Title: "t", OrderIndex: MaxOrderIndex},
			then: given(TaskAdded{LectureID: 1, TaskID: 100, Title: "t", OrderIndex: MaxOrderIndex, AddedAt: at(1)})},
		{name: "update_task_with_int4_overflow", given: withPlan,
			when: UpdateTask{Actor: instructor, At: at(3), TaskID: 100, OrderIndex: ptr(1 << 31), Title: nulp()},
			err:  ErrInvalid, fields: []string{"order_index", "title"}},
		{name: "add_subtask_with_nul_texts", given: withPlan,
			when: AddSubtask{Actor: instructor, At: at(3), TaskID: 100, SubtaskID: 1002, Title: "t", OrderIndex: 3, TargetAction: ActionClick,
				TargetElementHint: nul, GuideText: nul, VoiceGuideText: badUTF8},
			err: ErrInvalid, fields: []string{"target_element_hint", "guide_text", "voice_guide_text"}},
		{name: "update_subtask_with_negative_order_index", given: withPlan,
			when: UpdateSubtask{Actor: instructor, At: at(3), SubtaskID: 1000, OrderIndex: &neg},
			err:  ErrInvalid, fields: []string{"order_index"}},
	})

	runSpecs(t, SessionDecider, []spec[SessionCommand]{
		{name: "open_session_with_nul_title",
			when: OpenSession{Actor: instructor, At: at(-10), SessionID: 7, Code: "ABC234", Lecture: plan, Title: nul},
			err:  ErrInvalid, fields: []string{"title"}},
		{name: "pause_with_nul_message", given: given(opened, sessStarted),
			when: PauseSession{Actor: instructor, At: at(10), Message: nul},
			err:  ErrInvalid, fields: []string{"message"}},
	})

	ref := ref1001
	request := func(ctx string, stuck int) RequestHelp {
		return RequestHelp{Actor: student, At: at(0), HelpRequestID: 5000, Subtask: ref, InstructorID: 10,
			ContextData: json.RawMessage(ctx), StuckDurationSeconds: stuck}
	}
	runSpecs(t, HelpDecider, []spec[HelpCommand]{
		{name: "context_data_with_lone_surrogate", when: request(`{"text":"\ud800"}`, 0), err: ErrInvalid, fields: []string{"context_data.text"}},
		{name: "context_data_with_nul", when: request(`{"a":{"b":"\u0000"}}`, 0), err: ErrInvalid, fields: []string{"context_data.a.b"}},
		{name: "context_data_with_invalid_utf8", when: request("{\"text\":\"\xff\"}", 0), err: ErrInvalid, fields: []string{"context_data.text"}},
		{name: "context_data_with_huge_number", when: request(`{"n":[1,1e400000]}`, 0), err: ErrInvalid, fields: []string{"context_data.n[1]"}},
		{name: "stuck_duration_beyond_int4", when: request(`{}`, 1<<31), err: ErrInvalid, fields: []string{"stuck_duration_seconds"}},
		{name: "respond_with_nul_content", given: given(helpRequested),
			when: RespondToHelp{Actor: instructor, At: at(3), Answer: HelpAnswer{HelpResponseID: 3001, HelpContent: nul, VoiceGuideText: badUTF8}},
			err:  ErrInvalid, fields: []string{"help_content", "voice_guide_text"}},
		{name: "feedback_with_nul_text", given: given(helpRequested, helpAnalyzed, helpByBot),
			when: GiveHelpFeedback{Actor: student, At: at(4), HelpResponseID: 3000, Rating: 5, FeedbackText: nul},
			err:  ErrInvalid, fields: []string{"feedback_text"}},
	})
}
