package domain

import (
	"encoding/json"
	"math"
	"testing"
)

var (
	helpCtx       = json.RawMessage(`{"current_screen":"com.kakao.talk.MainActivity","recent_actions":["CLICK","SCROLL"]}`)
	helpRequested = HelpRequested{HelpRequestID: 5000, UserID: 20, LectureID: 1, InstructorID: 10, TaskID: 100, SubtaskID: 1001, SubtaskTitle: "친구 선택하기", SessionID: 7, RequestType: HelpManual, ContextData: helpCtx, StuckDurationSeconds: 30, RequestedAt: at(0)}
	helpAnalyzed  = HelpAnalyzed{HelpRequestID: 5000, Diagnosis: "친구 탭을 찾지 못합니다", Confidence: 0.85, AnalyzedAt: at(1)}
	helpByBot     = HelpProvided{HelpRequestID: 5000, HelpResponseID: 3000, UserID: 20, LectureID: 1, SubtaskID: 1001, SessionID: 7, Responder: ResponderAnalyzer, HelpType: HelpTypeText, HelpContent: "화면 상단의 '친구' 탭을 눌러보세요", VoiceGuideText: "친구 탭을 눌러보세요", ProvidedAt: at(1)}
	helpEscalated = HelpEscalated{HelpRequestID: 5000, UserID: 20, LectureID: 1, InstructorID: 10, SubtaskID: 1001, SessionID: 7, Reason: DefaultEscalationReason, EscalatedAt: at(1)}
	lowAnalysis   = HelpAnalyzed{HelpRequestID: 5000, Diagnosis: "알 수 없음", Confidence: 0.2, AnalyzedAt: at(1)}
	helpByTeacher = HelpProvided{HelpRequestID: 5000, HelpResponseID: 3001, UserID: 20, LectureID: 1, SubtaskID: 1001, SessionID: 7, Responder: ResponderInstructor, ResponderID: 10, HelpType: HelpTypeVoice, HelpContent: "제가 도와드릴게요", ProvidedAt: at(3)}
	feedbackGiven = HelpFeedbackGiven{HelpRequestID: 5000, HelpResponseID: 3000, UserID: 20, Rating: 5, FeedbackText: "매우 도움이 되었습니다", GivenAt: at(4)}
)

func TestHelpDecider(t *testing.T) {
	ref := ref1001
	request := func(a Actor) RequestHelp {
		return RequestHelp{Actor: a, At: at(0), HelpRequestID: 5000, Subtask: ref, InstructorID: 10, SessionID: 7,
			RequestType: HelpManual, ContextData: json.RawMessage(" {\"current_screen\": \"com.kakao.talk.MainActivity\",\n \"recent_actions\": [\"CLICK\", \"SCROLL\"]} "), StuckDurationSeconds: 30}
	}
	auto := request(System)
	auto.UserID, auto.RequestType, auto.ContextData, auto.SessionID = 20, HelpAuto, json.RawMessage("null"), 0
	untyped := request(student)
	untyped.RequestType, untyped.ContextData = "", nil
	forOther := request(student2)
	forOther.UserID = 20
	bad := request(student)
	bad.Subtask, bad.RequestType, bad.ContextData, bad.StuckDurationSeconds = SubtaskRef{}, "PANIC", json.RawMessage(`[1,2]`), -1
	broken := request(student)
	broken.ContextData = json.RawMessage(`{"a":`)
	noID := request(student)
	noID.HelpRequestID = 0

	answer := &HelpAnswer{HelpResponseID: 3000, HelpContent: helpByBot.HelpContent, VoiceGuideText: helpByBot.VoiceGuideText}
	teacher := HelpAnswer{HelpResponseID: 3001, HelpType: HelpTypeVoice, HelpContent: "제가 도와드릴게요"}
	asked := given(helpRequested)
	resolved := given(helpRequested, helpAnalyzed, helpByBot)
	escalated := given(helpRequested, lowAnalysis, helpEscalated)

	decided := runSpecs(t, HelpDecider, []spec[HelpCommand]{
		// RequestHelp
		{name: "request_help", when: request(student), then: given(helpRequested)},
		{name: "request_help_defaults_to_manual_without_context", when: untyped,
			then: given(HelpRequested{HelpRequestID: 5000, UserID: 20, LectureID: 1, InstructorID: 10, TaskID: 100, SubtaskID: 1001, SubtaskTitle: "친구 선택하기", SessionID: 7, RequestType: HelpManual, StuckDurationSeconds: 30, RequestedAt: at(0)})},
		{name: "request_auto_help_by_the_stuck_detector", when: auto,
			then: given(HelpRequested{HelpRequestID: 5000, UserID: 20, LectureID: 1, InstructorID: 10, TaskID: 100, SubtaskID: 1001, SubtaskTitle: "친구 선택하기", RequestType: HelpAuto, StuckDurationSeconds: 30, RequestedAt: at(0)})},
		{name: "request_help_for_another_student_is_forbidden", when: forOther, err: ErrForbidden},
		{name: "request_help_as_instructor_is_forbidden", when: request(instructor), err: ErrForbidden},
		{name: "request_help_with_invalid_fields", when: bad,
			err: ErrInvalid, fields: []string{"subtask_id", "request_type", "context_data", "stuck_duration_seconds"}},
		{name: "request_help_with_broken_context_json", when: broken, err: ErrInvalid, fields: []string{"context_data"}},
		{name: "request_existing_help_conflicts", given: asked, when: request(student), err: ErrConflict},
		{name: "request_help_without_allocated_id_is_internal", when: noID, err: errInternalMarker},

		// RecordAnalysis
		{name: "confident_analysis_resolves", given: asked,
			when: RecordAnalysis{Actor: System, At: at(1), Diagnosis: helpAnalyzed.Diagnosis, Confidence: 0.85, Answer: answer},
			then: given(helpAnalyzed, helpByBot)},
		{name: "unsure_analysis_escalates", given: asked,
			when: RecordAnalysis{Actor: System, At: at(1), Diagnosis: "알 수 없음", Confidence: 0.2},
			then: given(lowAnalysis, helpEscalated)},
		{name: "unsure_analysis_escalates_with_its_reason", given: asked,
			when: RecordAnalysis{Actor: admin, At: at(1), Diagnosis: "알 수 없음", Confidence: 0.2, EscalationReason: "반복된 뒤로가기"},
			then: given(lowAnalysis, HelpEscalated{HelpRequestID: 5000, UserID: 20, LectureID: 1, InstructorID: 10, SubtaskID: 1001, SessionID: 7, Reason: "반복된 뒤로가기", EscalatedAt: at(1)})},
		{name: "analysis_redelivered_after_resolution_decides_nothing", given: resolved,
			when: RecordAnalysis{Actor: System, At: at(2), Confidence: 0.9, Answer: answer}},
		{name: "analysis_after_escalation_decides_nothing", given: escalated,
			when: RecordAnalysis{Actor: System, At: at(2), Confidence: 0.2}},
		{name: "analysis_by_a_student_is_forbidden", given: asked,
			when: RecordAnalysis{Actor: student, At: at(1), Confidence: 0.9, Answer: answer}, err: ErrForbidden},
		{name: "analysis_of_unknown_request_is_not_found",
			when: RecordAnalysis{Actor: System, At: at(1), Confidence: 0.9, Answer: answer}, err: ErrNotFound},
		{name: "analysis_with_confidence_over_one_is_invalid", given: asked,
			when: RecordAnalysis{Actor: System, At: at(1), Confidence: 1.5, Diagnosis: runes(2001), EscalationReason: runes(501)},
			err:  ErrInvalid, fields: []string{"confidence_score", "problem_diagnosis", "reason"}},
		{name: "analysis_with_nan_confidence_is_invalid", given: asked,
			when: RecordAnalysis{Actor: System, At: at(1), Confidence: math.NaN()}, err: ErrInvalid, fields: []string{"confidence_score"}},
		{name: "analysis_with_invalid_answer", given: asked,
			when: RecordAnalysis{Actor: System, At: at(1), Confidence: 0.9, Answer: &HelpAnswer{HelpResponseID: 3000, HelpType: "GIF", VoiceGuideText: runes(2001)}},
			err:  ErrInvalid, fields: []string{"help_type", "help_content", "voice_guide_text"}},
		{name: "analysis_answer_without_allocated_id_is_internal", given: asked,
			when: RecordAnalysis{Actor: System, At: at(1), Confidence: 0.9, Answer: &HelpAnswer{HelpContent: "x"}}, err: errInternalMarker},

		// RespondToHelp
		{name: "instructor_answers_escalated_request", given: escalated,
			when: RespondToHelp{Actor: instructor, At: at(3), Answer: teacher}, then: given(helpByTeacher)},
		{name: "instructor_answers_before_the_analyzer", given: asked,
			when: RespondToHelp{Actor: instructor, At: at(3), Answer: teacher}, then: given(helpByTeacher)},
		{name: "admin_answers", given: escalated,
			when: RespondToHelp{Actor: admin, At: at(3), Answer: HelpAnswer{HelpResponseID: 3001, HelpContent: "x"}},
			then: given(HelpProvided{HelpRequestID: 5000, HelpResponseID: 3001, UserID: 20, LectureID: 1, SubtaskID: 1001, SessionID: 7, Responder: ResponderInstructor, ResponderID: 1, HelpType: HelpTypeText, HelpContent: "x", ProvidedAt: at(3)})},
		{name: "instructor_answers_a_request_the_analyzer_resolved", given: resolved,
			when: RespondToHelp{Actor: instructor, At: at(3), Answer: teacher}, then: given(helpByTeacher)},
		{name: "instructor_answers_again", given: given(helpRequested, helpByTeacher),
			when: RespondToHelp{Actor: instructor, At: at(4), Answer: HelpAnswer{HelpResponseID: 3002, HelpContent: "y"}},
			then: given(HelpProvided{HelpRequestID: 5000, HelpResponseID: 3002, UserID: 20, LectureID: 1, SubtaskID: 1001, SessionID: 7, Responder: ResponderInstructor, ResponderID: 10, HelpType: HelpTypeText, HelpContent: "y", ProvidedAt: at(4)})},
		{name: "another_instructor_may_not_answer_a_resolved_request", given: resolved,
			when: RespondToHelp{Actor: otherInstr, At: at(3), Answer: teacher}, err: ErrForbidden},
		{name: "answer_by_another_instructor_is_forbidden", given: escalated,
			when: RespondToHelp{Actor: otherInstr, At: at(3), Answer: teacher}, err: ErrForbidden},
		{name: "answer_by_the_student_is_forbidden", given: escalated,
			when: RespondToHelp{Actor: student, At: at(3), Answer: teacher}, err: ErrForbidden},
		{name: "answer_without_content_is_invalid", given: escalated,
			when: RespondToHelp{Actor: instructor, At: at(3), Answer: HelpAnswer{HelpResponseID: 3001, HelpContent: " "}},
			err:  ErrInvalid, fields: []string{"help_content"}},
		{name: "answer_unknown_request_is_not_found",
			when: RespondToHelp{Actor: instructor, At: at(3), Answer: teacher}, err: ErrNotFound},

		// GiveHelpFeedback
		{name: "give_feedback", given: resolved,
			when: GiveHelpFeedback{Actor: student, At: at(4), HelpResponseID: 3000, Rating: 5, FeedbackText: "매우 도움이 되었습니다"},
			then: given(feedbackGiven)},
		{name: "give_feedback_twice_conflicts", given: append(resolved, feedbackGiven),
			when: GiveHelpFeedback{Actor: student, At: at(5), HelpResponseID: 3000, Rating: 1}, err: ErrConflict},
		{name: "give_feedback_on_unknown_response_is_not_found", given: resolved,
			when: GiveHelpFeedback{Actor: student, At: at(4), HelpResponseID: 3999, Rating: 5}, err: ErrNotFound},
		{name: "give_feedback_before_any_response_is_not_found", given: escalated,
			when: GiveHelpFeedback{Actor: student, At: at(4), HelpResponseID: 3000, Rating: 5}, err: ErrNotFound},
		{name: "give_feedback_on_unknown_request_is_not_found",
			when: GiveHelpFeedback{Actor: student, At: at(4), HelpResponseID: 3000, Rating: 5}, err: ErrNotFound},
		{name: "give_feedback_as_another_student_is_forbidden", given: resolved,
			when: GiveHelpFeedback{Actor: student2, At: at(4), HelpResponseID: 3000, Rating: 5}, err: ErrForbidden},
		{name: "give_feedback_as_instructor_is_forbidden", given: resolved,
			when: GiveHelpFeedback{Actor: instructor, At: at(4), HelpResponseID: 3000, Rating: 5}, err: ErrForbidden},
		{name: "give_feedback_with_rating_zero_and_long_text_is_invalid", given: resolved,
			when: GiveHelpFeedback{Actor: student, At: at(4), HelpResponseID: 3000, Rating: 0, FeedbackText: runes(1001)},
			err:  ErrInvalid, fields: []string{"rating", "feedback_text"}},
		{name: "give_feedback_with_rating_six_is_invalid", given: resolved,
			when: GiveHelpFeedback{Actor: student, At: at(4), HelpResponseID: 3000, Rating: 6}, err: ErrInvalid, fields: []string{"rating"}},
	})
	requireCovered(t, decided, "HelpRequested", "HelpAnalyzed", "HelpProvided", "HelpEscalated", "HelpFeedbackGiven")
}

func TestHelpState(t *testing.T) {
	h := HelpDecider.Fold(given(helpRequested))
	if !h.Exists() || h.ID() != 5000 || h.UserID() != 20 || h.LectureID() != 1 || h.InstructorID() != 10 ||
		h.Subtask() != ref1001 || h.SessionID() != 7 || h.RequestType() != HelpManual ||
		string(h.ContextData()) != string(helpCtx) || h.StuckDurationSeconds() != 30 ||
		h.Status() != HelpStatusAnalyzing || !h.Status().Open() || !h.RequestedAt().Equal(at(0)) {
		t.Fatalf("requested %+v", h)
	}
	if _, _, ok := h.Analysis(); ok {
		t.Fatal("analysis before analyzing")
	}
	e := HelpDecider.Evolve(HelpDecider.Evolve(h, lowAnalysis), helpEscalated)
	if d, c, ok := e.Analysis(); !ok || d != "알 수 없음" || c != 0.2 || e.Status() != HelpStatusEscalated || !e.Status().Open() || e.EscalationReason() != DefaultEscalationReason {
		t.Fatalf("escalated %+v", e)
	}
	r := HelpDecider.Evolve(e, helpByTeacher)
	f := HelpDecider.Evolve(r, HelpFeedbackGiven{HelpRequestID: 5000, HelpResponseID: 3001, UserID: 20, Rating: 4, FeedbackText: "좋아요"})
	if r.Status() != HelpStatusResolved || r.Status().Open() || len(r.Responses()) != 1 {
		t.Fatalf("resolved %+v", r)
	}
	if got, ok := f.Response(3001); !ok || !got.Rated || got.Rating != 4 || got.FeedbackText != "좋아요" || got.Responder != ResponderInstructor || got.ResponderID != 10 {
		t.Fatalf("rated response %+v", got)
	}
	if latest, ok := f.LatestResponse(); !ok || latest.ID != 3001 {
		t.Fatalf("latest %+v", latest)
	}
	// Pure Evolve: the state before the feedback still shows it unrated.
	if got, _ := r.Response(3001); got.Rated {
		t.Fatal("Evolve changed an earlier state")
	}
}
