package analyzer_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/lockstep/lockstep/analyzer"
	"github.com/lockstep/lockstep/analyzer/analyzertest"
	"github.com/lockstep/lockstep/domain"
)

func TestRuleBasedConformance(t *testing.T) {
	analyzertest.Run(t, func(*testing.T) analyzer.Analyzer { return analyzer.RuleBased{} }, analyzertest.Features{Deterministic: true})
}

func TestLLMConformance(t *testing.T) {
	srv := fakeLLM(t, func(w http.ResponseWriter, _ chatRequest) {
		answer(w, `{"diagnosis":"다른 앱이 열려 있습니다","confidence":0.82,"help_content":"홈 버튼을 누르고 카카오톡을 눌러 주세요.","voice_guide_text":"홈 버튼을 누르고 카카오톡을 눌러 주세요","escalate":false}`)
	})
	analyzertest.Run(t, func(*testing.T) analyzer.Analyzer {
		return analyzer.NewLLM(analyzer.LLMConfig{BaseURL: srv.URL + "/v1", Model: "test-model", APIKey: "k"})
	}, analyzertest.Features{})
}

func TestRuleBasedPicksTheRuleForEachSignal(t *testing.T) {
	reqs := analyzertest.Requests()
	cases := []struct {
		name     string
		rule     string
		escalate bool
		contains []string
	}{
		{"wrong_app", "rule:WRONG_APP", false, []string{"다른 앱", "'카카오톡' 앱"}},
		{"rapid_taps_on_long_click", "rule:RAPID_TAPS", false, []string{"'받은 메시지'를", "꾹 누르고"}},
		{"repeated_back", "rule:REPEATED_BACK", false, []string{"뒤로 가기를 여러 번", "'친구 탭'을 찾아 한 번 눌러"}},
		{"long_idle_from_context", "rule:LONG_IDLE", false, []string{"천천히", "'친구 탭'을"}},
		{"no_logs_no_context", "rule:GUIDE", true, []string{"'친구 탭'을"}}, // no signal: escalated, the hint kept for the instructor
		{"nothing_to_go_on", "rule:GUIDE", true, nil},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			res := analyzer.RuleBased{}.Answer(reqs[c.name])
			if res.Rule != c.rule || res.Escalate != c.escalate {
				t.Fatalf("rule %q escalate %v, want %q %v: %+v", res.Rule, res.Escalate, c.rule, c.escalate, res)
			}
			for _, s := range c.contains {
				if !strings.Contains(res.HelpContent, s) {
					t.Errorf("hint %q lacks %q", res.HelpContent, s)
				}
			}
			if strings.ContainsAny(res.VoiceGuideText, `'"()`) {
				t.Errorf("voice text keeps symbols: %q", res.VoiceGuideText)
			}
		})
	}
}

func at(sec int) time.Time { return analyzertest.Now.Add(time.Duration(sec) * time.Second) }

func kinds(s []analyzer.Signal) string {
	var k []string
	for _, x := range s {
		k = append(k, string(x.Kind))
	}
	return strings.Join(k, ",")
}

func TestDetectThresholds(t *testing.T) {
	click := analyzer.Subtask{ID: 1, TargetAction: domain.ActionClick, TargetElementHint: "com.kakao.talk:id/friend_tab"}
	backs := func(n int, gap time.Duration) []analyzer.Activity {
		var out []analyzer.Activity
		for i := range n {
			out = append(out, analyzer.Activity{At: at(-30).Add(time.Duration(i) * gap), EventType: "BACK", SubtaskID: 1, Package: "com.kakao.talk"})
		}
		return out
	}
	taps := func(n int, dx float64) []analyzer.Activity {
		var out []analyzer.Activity
		for i := range n {
			out = append(out, analyzer.Activity{At: at(-5).Add(time.Duration(i) * 500 * time.Millisecond), EventType: "CLICK", SubtaskID: 1, HasPoint: true, X: 100 + dx*float64(i), Y: 100, Package: "com.kakao.talk"})
		}
		return out
	}
	cases := []struct {
		name string
		req  analyzer.Request
		want string
	}{
		{"two_backs_are_not_enough", analyzer.Request{Subtask: click, Now: at(0), RecentActivity: backs(2, time.Second)}, ""},
		{"three_backs_within_the_window", analyzer.Request{Subtask: click, Now: at(0), RecentActivity: backs(3, time.Second)}, "REPEATED_BACK"},
		{"three_backs_spread_over_a_minute", analyzer.Request{Subtask: click, Now: at(60), RecentActivity: backs(3, 20*time.Second)}, ""},
		{"backs_on_a_back_step_are_the_task", analyzer.Request{Subtask: analyzer.Subtask{ID: 1, TargetAction: domain.ActionBack}, Now: at(0), RecentActivity: backs(4, time.Second)}, ""},
		{"four_taps_on_one_spot", analyzer.Request{Subtask: click, Now: at(0), RecentActivity: taps(4, 5)}, "RAPID_TAPS"},
		{"four_taps_all_over_the_screen", analyzer.Request{Subtask: click, Now: at(0), RecentActivity: taps(4, 100)}, ""},
		{"logs_of_another_step_are_ignored", analyzer.Request{Subtask: analyzer.Subtask{ID: 2, TargetAction: domain.ActionClick}, Now: at(0), RecentActivity: taps(6, 0)}, "LONG_IDLE"},
		{"idle_past_the_threshold", analyzer.Request{Subtask: click, Now: at(100), RecentActivity: taps(1, 0)}, "LONG_IDLE"},
		{"home_screen_on_an_open_app_step_is_fine", analyzer.Request{
			Subtask: analyzer.Subtask{ID: 1, TargetAction: domain.ActionOpenApp, Title: "카카오톡 열기"}, Now: at(0),
			RecentActivity: []analyzer.Activity{{At: at(-40), EventType: "SCROLL", SubtaskID: 1, Package: "com.sec.android.app.launcher"}, {At: at(-1), EventType: "SCROLL", SubtaskID: 1, Package: "com.sec.android.app.launcher"}},
		}, ""},
		{"foreign_app_only_briefly", analyzer.Request{Subtask: click, Now: at(0), RecentActivity: []analyzer.Activity{{At: at(-5), EventType: "CLICK", SubtaskID: 1, Package: "com.android.chrome"}}}, ""},
		{"foreign_app_from_context_without_logs", analyzer.Request{Subtask: click, Now: at(0), StuckDuration: 20 * time.Second,
			ContextData: json.RawMessage(`{"current_screen":"com.android.chrome.Main"}`)}, "WRONG_APP"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			// logs_of_another_step: the step's own activity is none, so the
			// stuck duration decides; give it one past the threshold.
			if c.name == "logs_of_another_step_are_ignored" {
				c.req.StuckDuration = 2 * time.Minute
			}
			if got := kinds(analyzer.Detect(c.req, analyzer.Thresholds{})); got != c.want {
				t.Fatalf("signals %q, want %q", got, c.want)
			}
		})
	}
}

func TestKoreanParticlesAndVoice(t *testing.T) {
	s := analyzer.Subtask{ID: 1, TargetAction: domain.ActionClick, TargetElementHint: "메시지"}
	if res := (analyzer.RuleBased{}).Answer(analyzer.Request{Subtask: s}); !strings.Contains(res.HelpContent, "'메시지'를") {
		t.Errorf("vowel ending takes 를: %q", res.HelpContent)
	}
	s.TargetElementHint = "친구 탭"
	if res := (analyzer.RuleBased{}).Answer(analyzer.Request{Subtask: s}); !strings.Contains(res.HelpContent, "'친구 탭'을") {
		t.Errorf("consonant ending takes 을: %q", res.HelpContent)
	}
	if got := analyzer.Voice(`'친구' 탭(위쪽)을 눌러 주세요`); got != "친구 탭 위쪽 을 눌러 주세요" {
		t.Errorf("Voice: %q", got)
	}
}

func TestParseActivity(t *testing.T) {
	a := analyzer.ParseActivity(at(0), "CLICK", 9, []byte(`{"x":150,"y":300,"element":"Button","text":"확인"}`), []byte(`{"package_name":"com.kakao.talk","activity_name":"MainActivity","screen_title":"친구 목록"}`))
	if !a.HasPoint || a.X != 150 || a.Y != 300 || a.Text != "확인" || a.Element != "Button" || a.Package != "com.kakao.talk" || a.Title != "친구 목록" || a.SubtaskID != 9 {
		t.Fatalf("%+v", a)
	}
	if b := analyzer.ParseActivity(at(0), "BACK", 0, nil, []byte(`not json`)); b.HasPoint || b.Package != "" {
		t.Fatalf("%+v", b)
	}
}

// --- LLM -------------------------------------------------------------------

type chatRequest struct {
	Model    string `json:"model"`
	Messages []struct {
		Role    string `json:"role"`
		Content string `json:"content"`
	} `json:"messages"`
}

func fakeLLM(t *testing.T, h func(w http.ResponseWriter, req chatRequest)) *httptest.Server {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPost || r.URL.Path != "/v1/chat/completions" {
			http.Error(w, "not found", http.StatusNotFound)
			return
		}
		body, _ := io.ReadAll(r.Body)
		var req chatRequest
		if err := json.Unmarshal(body, &req); err != nil {
			http.Error(w, "bad json", http.StatusBadRequest)
			return
		}
		h(w, req)
	}))
	t.Cleanup(srv.Close)
	return srv
}

func answer(w http.ResponseWriter, content string) {
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(map[string]any{
		"id": "chatcmpl-1", "object": "chat.completion",
		"choices": []any{map[string]any{"index": 0, "finish_reason": "stop", "message": map[string]any{"role": "assistant", "content": content}}},
	})
}

func TestLLMSendsTheStepAndUsesTheModelsAnswer(t *testing.T) {
	var auth atomic.Value
	var got atomic.Value
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		auth.Store(r.Header.Get("Authorization"))
		body, _ := io.ReadAll(r.Body)
		got.Store(string(body))
		answer(w, "```json\n{\"diagnosis\":\"친구 탭을 못 찾음\",\"confidence\":0.9,\"help_content\":\"위쪽의 '친구' 글자를 눌러 주세요.\",\"escalate\":false}\n```")
	}))
	defer srv.Close()
	l := analyzer.NewLLM(analyzer.LLMConfig{BaseURL: srv.URL + "/", Model: "gpt-test", APIKey: "secret-key"})
	res, err := l.Analyze(context.Background(), analyzertest.Requests()["repeated_back"])
	if err != nil {
		t.Fatal(err)
	}
	if res.Rule != "llm" || res.Confidence != 0.9 || res.HelpContent != "위쪽의 '친구' 글자를 눌러 주세요." || res.VoiceGuideText != "위쪽의 친구 글자를 눌러 주세요." {
		t.Fatalf("%+v", res)
	}
	if auth.Load() != "Bearer secret-key" {
		t.Errorf("Authorization %v", auth.Load())
	}
	var req chatRequest
	if err := json.Unmarshal([]byte(got.Load().(string)), &req); err != nil {
		t.Fatal(err)
	}
	if req.Model != "gpt-test" || len(req.Messages) != 2 || req.Messages[0].Role != "system" ||
		!strings.Contains(req.Messages[1].Content, "친구 선택하기") || !strings.Contains(req.Messages[1].Content, "REPEATED_BACK") {
		t.Fatalf("request %+v", req)
	}
}

func TestLLMFallsBackToTheRules(t *testing.T) {
	req := analyzertest.Requests()["repeated_back"]
	rules := analyzer.RuleBased{}.Answer(req)
	stop := make(chan struct{})
	cases := []struct {
		name    string
		handler http.HandlerFunc
		why     string
	}{
		{"server_error", func(w http.ResponseWriter, _ *http.Request) { http.Error(w, "boom", http.StatusInternalServerError) }, "status_500"},
		{"not_a_completion", func(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write([]byte("<html>hi</html>")) }, "garbage"},
		{"content_not_json", func(w http.ResponseWriter, _ *http.Request) { answer(w, "친구 탭을 누르세요") }, "garbage"},
		{"confidence_out_of_range", func(w http.ResponseWriter, _ *http.Request) {
			answer(w, `{"diagnosis":"x","confidence":1.7,"help_content":"눌러 주세요","escalate":false}`)
		}, "invalid_confidence"},
		{"no_hint", func(w http.ResponseWriter, _ *http.Request) {
			answer(w, `{"diagnosis":"x","confidence":0.9,"help_content":"","escalate":false}`)
		}, "no_hint"},
		{"wrong_language", func(w http.ResponseWriter, _ *http.Request) {
			answer(w, `{"diagnosis":"x","confidence":0.9,"help_content":"Tap the Friends tab.","escalate":false}`)
		}, "not_korean"},
		{"timeout", func(w http.ResponseWriter, r *http.Request) {
			_, _ = io.ReadAll(r.Body)
			select {
			case <-r.Context().Done():
			case <-stop:
			}
		}, "timeout"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			srv := httptest.NewServer(c.handler)
			defer srv.Close()
			l := analyzer.NewLLM(analyzer.LLMConfig{BaseURL: srv.URL, Model: "m", Timeout: 100 * time.Millisecond})
			res, err := l.Analyze(context.Background(), req)
			if c.why == "timeout" {
				close(stop)
			}
			if err != nil {
				t.Fatal(err)
			}
			want := rules
			want.Rule = "llm_fallback:" + c.why + "/" + rules.Rule
			if res != want {
				t.Fatalf("got %+v\nwant %+v", res, want)
			}
		})
	}
	t.Run("unreachable", func(t *testing.T) {
		srv := httptest.NewServer(http.NotFoundHandler())
		url := srv.URL
		srv.Close()
		res, err := analyzer.NewLLM(analyzer.LLMConfig{BaseURL: url, Model: "m"}).Analyze(context.Background(), req)
		if err != nil || !strings.HasPrefix(res.Rule, "llm_fallback:transport/") {
			t.Fatalf("%+v %v", res, err)
		}
	})
}

func TestLLMEscalatesWhenTheModelIsNotSure(t *testing.T) {
	srv := fakeLLM(t, func(w http.ResponseWriter, _ chatRequest) {
		answer(w, `{"diagnosis":"알 수 없음","confidence":0.3,"help_content":"다시 해 보세요","escalate":false}`)
	})
	res, err := analyzer.NewLLM(analyzer.LLMConfig{BaseURL: srv.URL + "/v1", Model: "m"}).Analyze(context.Background(), analyzertest.Requests()["wrong_app"])
	if err != nil {
		t.Fatal(err)
	}
	if !res.Escalate || res.EscalationReason == "" || res.Rule != "llm" {
		t.Fatalf("%+v", res)
	}
}

func TestLLMStopsWhenTheCallerGivesUp(t *testing.T) {
	release := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.ReadAll(r.Body)
		select {
		case <-r.Context().Done():
		case <-release:
		}
	}))
	defer srv.Close()
	defer close(release)
	ctx, cancel := context.WithCancel(context.Background())
	l := analyzer.NewLLM(analyzer.LLMConfig{BaseURL: srv.URL, Model: "m", Timeout: time.Minute})
	done := make(chan error, 1)
	go func() {
		_, err := l.Analyze(ctx, analyzertest.Requests()["wrong_app"])
		done <- err
	}()
	cancel()
	select {
	case err := <-done:
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("got %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Analyze did not return after its context was cancelled")
	}
}

func TestLLMConfigValidate(t *testing.T) {
	err := analyzer.LLMConfig{BaseURL: "ftp://x"}.Validate()
	if err == nil || !strings.Contains(err.Error(), "LLM_MODEL") || !strings.Contains(err.Error(), "http://") {
		t.Fatalf("%v", err)
	}
	if err := (analyzer.LLMConfig{BaseURL: "http://x/v1", Model: "m"}).Validate(); err != nil {
		t.Fatal(err)
	}
}

// A request without any stuck signal is escalated by the LLM analyzer without
// asking the model (which would otherwise confidently repeat the step).
func TestLLMEscalatesWithoutASignalAndWithoutAsking(t *testing.T) {
	var calls atomic.Int32
	srv := fakeLLM(t, func(w http.ResponseWriter, _ chatRequest) {
		calls.Add(1)
		answer(w, `{"diagnosis":"x","confidence":0.95,"help_content":"친구 탭을 눌러 주세요.","escalate":false}`)
	})
	res, err := analyzer.NewLLM(analyzer.LLMConfig{BaseURL: srv.URL + "/v1", Model: "m"}).Analyze(context.Background(), analyzertest.Requests()["no_logs_no_context"])
	if err != nil {
		t.Fatal(err)
	}
	if !res.Escalate || res.EscalationReason != analyzer.NoSignalReason || res.Rule != "llm_skipped:no_signal/rule:GUIDE" || calls.Load() != 0 {
		t.Fatalf("%+v after %d completions", res, calls.Load())
	}
}
