// Package analyzertest is the conformance suite every analyzer.Analyzer runs:
// each implementation's tests call Run with a constructor and the features it
// guarantees.
package analyzertest

import (
	"context"
	"encoding/json"
	"errors"
	"math"
	"reflect"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/lockstep/lockstep/analyzer"
	"github.com/lockstep/lockstep/domain"
)

// Features says what an implementation guarantees beyond the common contract.
type Features struct {
	// Deterministic: the same request always gets the same Result.
	Deterministic bool
}

// Now is the instant the suite's requests are analyzed at.
var Now = time.Date(2025, 10, 28, 10, 6, 0, 0, time.UTC)

// Requests are the suite's scenarios, by name: every stuck signal, a request
// with nothing to go on, and one with neither logs nor context.
func Requests() map[string]analyzer.Request {
	click := analyzer.Subtask{
		ID: 1001, Title: "친구 선택하기", TargetAction: domain.ActionClick,
		TargetElementHint: "친구 탭 (com.kakao.talk:id/friend_tab)", GuideText: "화면 위쪽의 친구 탭을 눌러 보세요.",
	}
	long := analyzer.Subtask{ID: 1002, Title: "메시지 길게 누르기", TargetAction: domain.ActionLongClick, TargetElementHint: "받은 메시지"}
	at := func(sec int) time.Time { return Now.Add(time.Duration(sec) * time.Second) }
	taps := make([]analyzer.Activity, 0, 6)
	for i := range 6 {
		taps = append(taps, analyzer.Activity{At: at(-10 + i), EventType: "CLICK", SubtaskID: 1002, HasPoint: true, X: 150 + float64(i), Y: 300, Text: "메시지", Package: "com.kakao.talk"})
	}
	return map[string]analyzer.Request{
		"wrong_app": {HelpRequestID: 1, UserID: 7, RequestType: domain.HelpManual, Subtask: click, Now: Now, StuckDuration: 40 * time.Second,
			RecentActivity: []analyzer.Activity{
				{At: at(-50), EventType: "CLICK", SubtaskID: 1001, Package: "com.kakao.talk"},
				{At: at(-40), EventType: "HOME", SubtaskID: 1001, Package: "com.sec.android.app.launcher"},
				{At: at(-30), EventType: "CLICK", SubtaskID: 1001, Package: "com.google.android.youtube"},
				{At: at(-5), EventType: "SCROLL", SubtaskID: 1001, Package: "com.google.android.youtube"},
			}},
		"rapid_taps_on_long_click": {HelpRequestID: 2, UserID: 7, RequestType: domain.HelpAuto, Subtask: long, Now: Now, RecentActivity: taps},
		"repeated_back": {HelpRequestID: 3, UserID: 7, RequestType: domain.HelpManual, Subtask: click, Now: Now,
			RecentActivity: []analyzer.Activity{
				{At: at(-20), EventType: "BACK", SubtaskID: 1001, Package: "com.kakao.talk"},
				{At: at(-15), EventType: "BACK", SubtaskID: 1001, Package: "com.kakao.talk"},
				{At: at(-10), EventType: "BACK", SubtaskID: 1001, Package: "com.kakao.talk"},
				{At: at(-8), EventType: "BACK", SubtaskID: 1001, Package: "com.kakao.talk"},
			}},
		"long_idle_from_context": {HelpRequestID: 4, UserID: 7, RequestType: domain.HelpManual, Subtask: click, Now: Now, StuckDuration: 120 * time.Second,
			ContextData: json.RawMessage(`{"current_screen":"com.kakao.talk.MainActivity","recent_actions":["CLICK","SCROLL"],"stuck_duration_seconds":120}`)},
		"nothing_to_go_on": {HelpRequestID: 5, UserID: 7, RequestType: domain.HelpManual, Now: Now,
			Subtask: analyzer.Subtask{ID: 1003, Title: "", TargetAction: domain.ActionOther}},
		"no_logs_no_context": {HelpRequestID: 6, UserID: 7, RequestType: domain.HelpManual, Subtask: click, Now: Now},
	}
}

// Run runs the suite against the analyzer newAnalyzer returns (one per subtest).
func Run(t *testing.T, newAnalyzer func(t *testing.T) analyzer.Analyzer, f Features) {
	t.Run("answers_within_the_contract", func(t *testing.T) {
		for name, req := range Requests() {
			t.Run(name, func(t *testing.T) {
				a := newAnalyzer(t)
				res, err := a.Analyze(context.Background(), req)
				if err != nil {
					t.Fatalf("Analyze: %v", err)
				}
				CheckResult(t, res)
			})
		}
	})
	t.Run("cancelled_context_is_an_error", func(t *testing.T) {
		a := newAnalyzer(t)
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		done := make(chan error, 1)
		go func() {
			_, err := a.Analyze(ctx, Requests()["repeated_back"])
			done <- err
		}()
		select {
		case err := <-done:
			if !errors.Is(err, context.Canceled) {
				t.Fatalf("Analyze with a cancelled context: got %v, want context.Canceled", err)
			}
		case <-time.After(10 * time.Second):
			t.Fatal("Analyze ignored a cancelled context")
		}
	})
	t.Run("a_clear_signal_gets_an_answer", func(t *testing.T) {
		// A request with a strong, unambiguous signal and a precise element
		// hint must be answered, not escalated.
		a := newAnalyzer(t)
		res, err := a.Analyze(context.Background(), Requests()["wrong_app"])
		if err != nil {
			t.Fatal(err)
		}
		if res.Escalate {
			t.Fatalf("escalated a clear case: %+v", res)
		}
	})
	t.Run("no_signal_escalates", func(t *testing.T) {
		// The contract's Help section: an analysis that finds no signal of
		// what went wrong does not resolve the request; it escalates, even
		// when the step's guide text could be repeated (no_logs_no_context).
		for _, name := range []string{"no_logs_no_context", "nothing_to_go_on"} {
			req := Requests()[name]
			if s := analyzer.Detect(req, analyzer.Thresholds{}); len(s) != 0 {
				t.Fatalf("%s: the scenario has signals %v", name, s)
			}
			res, err := newAnalyzer(t).Analyze(context.Background(), req)
			if err != nil {
				t.Fatalf("%s: %v", name, err)
			}
			if !res.Escalate || res.EscalationReason == "" {
				t.Fatalf("%s: a request without any signal was answered instead of escalated: %+v", name, res)
			}
		}
	})
	if f.Deterministic {
		t.Run("deterministic", func(t *testing.T) {
			a := newAnalyzer(t)
			for name, req := range Requests() {
				r1, err1 := a.Analyze(context.Background(), req)
				r2, err2 := newAnalyzer(t).Analyze(context.Background(), req)
				if err1 != nil || err2 != nil {
					t.Fatalf("%s: %v / %v", name, err1, err2)
				}
				if !reflect.DeepEqual(r1, r2) {
					t.Fatalf("%s: two answers differ:\n%+v\n%+v", name, r1, r2)
				}
			}
		})
	}
}

// CheckResult fails t unless res keeps the analyzer contract: confidence in
// [0, 1]; a non-empty hint in Korean within the domain's length limits when
// not escalating; a reason when escalating.
func CheckResult(t testing.TB, res analyzer.Result) {
	t.Helper()
	if math.IsNaN(res.Confidence) || res.Confidence < 0 || res.Confidence > 1 {
		t.Errorf("confidence %v outside [0, 1]", res.Confidence)
	}
	if res.HelpType != "" && !res.HelpType.Valid() {
		t.Errorf("help type %q", res.HelpType)
	}
	for name, v := range map[string]struct {
		s   string
		max int
	}{
		"diagnosis": {res.Diagnosis, domain.MaxDiagnosisLen}, "help_content": {res.HelpContent, domain.MaxHelpContentLen},
		"voice_guide_text": {res.VoiceGuideText, domain.MaxGuideTextLen}, "escalation_reason": {res.EscalationReason, domain.MaxReasonLen},
	} {
		if utf8.RuneCountInString(v.s) > v.max {
			t.Errorf("%s longer than %d characters", name, v.max)
		}
	}
	if res.Escalate {
		if res.EscalationReason == "" {
			t.Errorf("escalated without a reason: %+v", res)
		}
		return
	}
	if res.HelpContent == "" {
		t.Errorf("no hint although not escalating: %+v", res)
	}
	if !hangul(res.HelpContent) {
		t.Errorf("hint is not in the lecture's language (Korean): %q", res.HelpContent)
	}
	if res.VoiceGuideText == "" {
		t.Errorf("no voice guide text: %+v", res)
	}
	if res.Diagnosis == "" {
		t.Errorf("no diagnosis: %+v", res)
	}
}

func hangul(s string) bool {
	for _, r := range s {
		if r >= 0xAC00 && r <= 0xD7A3 {
			return true
		}
	}
	return false
}
