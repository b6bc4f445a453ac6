package analyzer

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"net/http"
	"strings"
	"time"

	"github.com/lockstep/lockstep/domain"
)

// LLMConfig configures the LLM analyzer.
type LLMConfig struct {
	// BaseURL of an OpenAI-compatible API, e.g. "https://api.openai.com/v1"
	// or "http://127.0.0.1:11434/v1"; the analyzer POSTs to BaseURL + "/chat/completions".
	BaseURL string
	// Model is the model name sent with every request.
	Model string
	// APIKey, when set, is sent as "Authorization: Bearer <APIKey>".
	APIKey string
	// Timeout bounds one completion (default 5s); past it the rules answer.
	Timeout time.Duration
	// Client is the HTTP client (default: a new http.Client).
	Client *http.Client
	// Fallback answers when the model does not (its zero value is the default rules).
	Fallback RuleBased
	// MinConfidence below which the request is escalated (0: DefaultMinConfidence).
	MinConfidence float64
}

// Validate reports every missing setting.
func (c LLMConfig) Validate() error {
	var errs []error
	if c.BaseURL == "" {
		errs = append(errs, errors.New("analyzer: LLM base URL is required (LLM_BASE_URL)"))
	} else if !strings.HasPrefix(c.BaseURL, "http://") && !strings.HasPrefix(c.BaseURL, "https://") {
		errs = append(errs, fmt.Errorf("analyzer: LLM base URL %q must be http:// or https://", c.BaseURL))
	}
	if c.Model == "" {
		errs = append(errs, errors.New("analyzer: LLM model is required (LLM_MODEL)"))
	}
	if c.Timeout < 0 {
		errs = append(errs, errors.New("analyzer: LLM timeout must not be negative"))
	}
	return errors.Join(errs...)
}

// LLM asks a chat-completions model for the diagnosis and the hint, giving
// it the step, the request's context, the stuck signals and the rules' own
// answer. When the model times out, fails, or answers something unusable
// (not the JSON asked for, a confidence outside [0, 1], no hint, a hint not
// in Korean) the rules answer instead, and Result.Rule says
// "llm_fallback:<why>/rule:<rule>". Only the caller's ctx ending is an error.
//
// A request in which Detect finds no stuck signal is not sent to the model:
// an analysis that finds no signal of what went wrong escalates (the
// contract's Help section), so the rules' escalation is returned at once
// with Result.Rule "llm_skipped:no_signal/rule:GUIDE" — the instructor is
// told without waiting for, or paying for, a completion.
type LLM struct {
	cfg LLMConfig
}

// NewLLM returns the LLM analyzer; it panics on an invalid config (check
// Validate first).
func NewLLM(cfg LLMConfig) *LLM {
	if err := cfg.Validate(); err != nil {
		panic(err)
	}
	if cfg.Timeout == 0 {
		cfg.Timeout = 5 * time.Second
	}
	if cfg.Client == nil {
		cfg.Client = &http.Client{}
	}
	cfg.BaseURL = strings.TrimRight(cfg.BaseURL, "/")
	return &LLM{cfg: cfg}
}

// Name implements Analyzer.
func (*LLM) Name() string { return "llm" }

// Analyze implements Analyzer.
func (l *LLM) Analyze(ctx context.Context, req Request) (Result, error) {
	if err := ctx.Err(); err != nil {
		return Result{}, err
	}
	fallback := l.cfg.Fallback
	if fallback.MinConfidence == 0 {
		fallback.MinConfidence = l.cfg.MinConfidence
	}
	rules := fallback.Answer(req)
	if len(Detect(req, fallback.Thresholds)) == 0 {
		rules.Rule = "llm_skipped:no_signal/" + rules.Rule
		return rules, nil
	}
	res, why := l.ask(ctx, req, rules)
	if err := ctx.Err(); err != nil {
		return Result{}, err
	}
	if why != "" {
		rules.Rule = "llm_fallback:" + why + "/" + rules.Rule
		return rules, nil
	}
	return res, nil
}

const systemPrompt = `당신은 스마트폰 사용법을 배우는 어르신을 돕는 도우미입니다.
학생이 수업의 한 단계에서 막혔습니다. 단계 정보, 학생의 최근 행동 기록, 자동으로 찾은 신호를 보고
무엇이 문제인지 진단하고, 학생에게 보여 주고 소리 내어 읽어 줄 짧고 쉬운 한국어 안내를 쓰세요.
안내는 존댓말로, 한두 문장으로, 어려운 용어 없이, 손가락으로 무엇을 어디서 하면 되는지 말해 주세요.
확신이 없으면 escalate를 true로 하여 강사에게 넘기세요.
반드시 다음 JSON 객체 하나만 답하세요:
{"diagnosis": "강사용 진단(한국어)", "confidence": 0부터 1 사이의 숫자, "help_content": "학생용 안내", "voice_guide_text": "읽어 줄 안내(기호 없이)", "escalate": false, "escalation_reason": ""}`

type chatMessage struct {
	Role    string `json:"role"`
	Content string `json:"content"`
}

type chatRequest struct {
	Model          string            `json:"model"`
	Messages       []chatMessage     `json:"messages"`
	Temperature    float64           `json:"temperature"`
	ResponseFormat map[string]string `json:"response_format,omitempty"`
}

type chatResponse struct {
	Choices []struct {
		Message chatMessage `json:"message"`
	} `json:"choices"`
}

type llmAnswer struct {
	Diagnosis        string   `json:"diagnosis"`
	Confidence       *float64 `json:"confidence"`
	HelpContent      string   `json:"help_content"`
	VoiceGuideText   string   `json:"voice_guide_text"`
	Escalate         bool     `json:"escalate"`
	EscalationReason string   `json:"escalation_reason"`
}

// prompt is the user message: the facts, as JSON.
func prompt(req Request, rules Result, th Thresholds) string {
	type act struct {
		SecondsAgo int    `json:"seconds_ago"`
		EventType  string `json:"event_type"`
		Element    string `json:"element,omitempty"`
		Text       string `json:"text,omitempty"`
		Package    string `json:"package,omitempty"`
		Screen     string `json:"screen_title,omitempty"`
	}
	acts := make([]act, 0, len(req.RecentActivity))
	for _, a := range req.RecentActivity {
		acts = append(acts, act{seconds(req.Now.Sub(a.At)), a.EventType, a.Element, a.Text, a.Package, a.Title})
	}
	ctxData := json.RawMessage("{}")
	if json.Valid(req.ContextData) {
		ctxData = req.ContextData
	}
	lang := req.Language
	if lang == "" {
		lang = "ko"
	}
	b, _ := json.Marshal(map[string]any{
		"language":     lang,
		"request_type": req.RequestType,
		"step": map[string]any{
			"title": req.Subtask.Title, "target_action": req.Subtask.TargetAction,
			"target_element_hint": req.Subtask.TargetElementHint, "guide_text": req.Subtask.GuideText,
		},
		"stuck_duration_seconds": seconds(req.StuckDuration),
		"context_data":           ctxData,
		"recent_activity":        acts,
		"signals":                Detect(req, th),
		"rule_based_answer":      map[string]any{"diagnosis": rules.Diagnosis, "help_content": rules.HelpContent, "confidence": rules.Confidence},
	})
	return string(b)
}

// ask returns the model's answer, or why it has none.
func (l *LLM) ask(ctx context.Context, req Request, rules Result) (Result, string) {
	body, err := json.Marshal(chatRequest{
		Model: l.cfg.Model,
		Messages: []chatMessage{
			{Role: "system", Content: systemPrompt},
			{Role: "user", Content: prompt(req, rules, l.cfg.Fallback.Thresholds)},
		},
		ResponseFormat: map[string]string{"type": "json_object"},
	})
	if err != nil {
		return Result{}, "encode"
	}
	cctx, cancel := context.WithTimeout(ctx, l.cfg.Timeout)
	defer cancel()
	hr, err := http.NewRequestWithContext(cctx, http.MethodPost, l.cfg.BaseURL+"/chat/completions", bytes.NewReader(body))
	if err != nil {
		return Result{}, "request"
	}
	hr.Header.Set("Content-Type", "application/json")
	if l.cfg.APIKey != "" {
		hr.Header.Set("Authorization", "Bearer "+l.cfg.APIKey)
	}
	resp, err := l.cfg.Client.Do(hr)
	if err != nil {
		if cctx.Err() != nil {
			return Result{}, "timeout"
		}
		return Result{}, "transport"
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		if cctx.Err() != nil {
			return Result{}, "timeout"
		}
		return Result{}, "transport"
	}
	if resp.StatusCode != http.StatusOK {
		return Result{}, fmt.Sprintf("status_%d", resp.StatusCode)
	}
	var cr chatResponse
	if err := json.Unmarshal(data, &cr); err != nil || len(cr.Choices) == 0 {
		return Result{}, "garbage"
	}
	var a llmAnswer
	if err := json.Unmarshal([]byte(stripFences(cr.Choices[0].Message.Content)), &a); err != nil {
		return Result{}, "garbage"
	}
	return l.check(a)
}

func stripFences(s string) string {
	s = strings.TrimSpace(s)
	if strings.HasPrefix(s, "```") {
		s = strings.TrimPrefix(s, "```json")
		s = strings.TrimPrefix(s, "```")
		s = strings.TrimSuffix(strings.TrimSpace(s), "```")
	}
	return strings.TrimSpace(s)
}

func (l *LLM) check(a llmAnswer) (Result, string) {
	if a.Confidence == nil || math.IsNaN(*a.Confidence) || *a.Confidence < 0 || *a.Confidence > 1 {
		return Result{}, "invalid_confidence"
	}
	minConf := l.cfg.MinConfidence
	if minConf <= 0 {
		minConf = DefaultMinConfidence
	}
	res := Result{
		Diagnosis:      clip(strings.TrimSpace(a.Diagnosis), domain.MaxDiagnosisLen),
		Confidence:     round2(*a.Confidence),
		HelpType:       domain.HelpTypeText,
		HelpContent:    clip(strings.TrimSpace(a.HelpContent), domain.MaxHelpContentLen),
		VoiceGuideText: strings.TrimSpace(a.VoiceGuideText),
		Escalate:       a.Escalate,
		Rule:           "llm",
	}
	if res.VoiceGuideText == "" {
		res.VoiceGuideText = Voice(res.HelpContent)
	}
	res.VoiceGuideText = clip(Voice(res.VoiceGuideText), domain.MaxGuideTextLen)
	if !res.Escalate && res.Confidence < minConf {
		res.Escalate = true
	}
	if res.Escalate {
		res.EscalationReason = clip(strings.TrimSpace(a.EscalationReason), domain.MaxReasonLen)
		if res.EscalationReason == "" {
			res.EscalationReason = fmt.Sprintf("자동 분석의 확신도가 낮아(%.2f) 강사님의 도움이 필요합니다.", res.Confidence)
		}
		return res, ""
	}
	if res.HelpContent == "" {
		return Result{}, "no_hint"
	}
	if !hasHangul(res.HelpContent) {
		return Result{}, "not_korean"
	}
	return res, ""
}
