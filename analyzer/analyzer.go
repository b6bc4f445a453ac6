// Package analyzer diagnoses why a student is stuck on a step and writes the
// help they get: a plain-language, voice-friendly hint in the lecture's
// language (Korean), or an escalation to the instructor when it is not
// confident enough — and always when it finds no signal of what went wrong
// (repeating the step's guide text to someone who could not follow it is no
// help).
//
// Two implementations share one contract, checked by the conformance suite in
// package analyzertest: RuleBased (the default; deterministic and explainable)
// and LLM (any OpenAI-compatible chat-completions endpoint, falling back to
// the rules on timeout, error or an answer it cannot use).
package analyzer

import (
	"context"
	"encoding/json"
	"time"

	"github.com/lockstep/lockstep/domain"
)

// Analyzer diagnoses one help request.
//
// Analyze returns a Result whose Confidence is within [0, 1]; when Escalate is
// false its HelpContent is a non-empty hint. It returns ctx.Err() (wrapped or
// not) when ctx ends before it has an answer; any other error means it could
// not analyze at all (the caller retries later).
type Analyzer interface {
	// Name identifies the implementation in logs and in Result.Rule.
	Name() string
	Analyze(ctx context.Context, req Request) (Result, error)
}

// Subtask is the step the student is stuck on, as the lecture defines it.
type Subtask struct {
	ID                int64
	Title             string
	TargetAction      domain.TargetAction
	TargetElementHint string
	GuideText         string
	VoiceGuideText    string
}

// Activity is one of the student's activity logs, reduced to what the rules read.
type Activity struct {
	At        time.Time
	EventType string // CLICK, LONG_CLICK, BACK, SCROLL, … (the log's event_type)
	SubtaskID int64  // 0 when the log names no subtask
	// HasPoint says X and Y were in the log's event_data.
	HasPoint bool
	X, Y     float64
	Element  string // event_data.element
	Text     string // event_data.text
	Package  string // screen_info.package_name
	Screen   string // screen_info.activity_name
	Title    string // screen_info.screen_title
}

// Request is what an analyzer is asked.
type Request struct {
	HelpRequestID int64
	UserID        int64
	RequestType   domain.HelpRequestType
	Subtask       Subtask
	// ContextData is the request's context_data object (may be nil), e.g.
	// {"current_screen": "com.kakao.talk.MainActivity", "recent_actions": ["CLICK"]}.
	ContextData json.RawMessage
	// StuckDuration is how long the student says (or the detector saw) they
	// have been stuck.
	StuckDuration time.Duration
	// RecentActivity is the student's recent activity logs, oldest first
	// (possibly none: logs are optional).
	RecentActivity []Activity
	// Now is the analysis instant (the rules never read the clock).
	Now time.Time
	// Language is the lecture's language tag ("ko"; "" means "ko").
	Language string
}

// Result is an analyzer's answer.
type Result struct {
	// Diagnosis says, for the instructor and the analyst, what went wrong.
	Diagnosis string
	// Confidence is within [0, 1].
	Confidence float64
	// HelpType is TEXT unless the analyzer says otherwise.
	HelpType domain.HelpType
	// HelpContent is the hint shown to the student (non-empty unless Escalate).
	HelpContent string
	// VoiceGuideText is the hint as it is read aloud: short, no symbols.
	VoiceGuideText string
	// Escalate hands the request to the instructor instead of answering.
	Escalate bool
	// EscalationReason says why (when Escalate).
	EscalationReason string
	// Rule names what produced the answer (e.g. "rule:WRONG_APP",
	// "llm", "llm_fallback:timeout/rule:LONG_IDLE"), for logs and tests.
	Rule string
}

// DefaultMinConfidence is the confidence below which the analyzers escalate.
const DefaultMinConfidence = 0.6

// contextData is the part of a request's context_data the analyzers read.
type contextData struct {
	CurrentScreen        string   `json:"current_screen"`
	RecentActions        []string `json:"recent_actions"`
	StuckDurationSeconds *float64 `json:"stuck_duration_seconds"`
}

func parseContext(raw json.RawMessage) contextData {
	var c contextData
	if len(raw) > 0 {
		_ = json.Unmarshal(raw, &c)
	}
	return c
}

// ParseActivity builds an Activity from a stored activity log's fields
// (event_data and screen_info are the log's JSON objects, possibly empty).
func ParseActivity(at time.Time, eventType string, subtaskID int64, eventData, screenInfo []byte) Activity {
	a := Activity{At: at, EventType: eventType, SubtaskID: subtaskID}
	var ed struct {
		X       *float64 `json:"x"`
		Y       *float64 `json:"y"`
		Element string   `json:"element"`
		Text    string   `json:"text"`
	}
	if len(eventData) > 0 {
		_ = json.Unmarshal(eventData, &ed)
	}
	if ed.X != nil && ed.Y != nil {
		a.HasPoint, a.X, a.Y = true, *ed.X, *ed.Y
	}
	a.Element, a.Text = ed.Element, ed.Text
	var si struct {
		Package  string `json:"package_name"`
		Activity string `json:"activity_name"`
		Title    string `json:"screen_title"`
	}
	if len(screenInfo) > 0 {
		_ = json.Unmarshal(screenInfo, &si)
	}
	a.Package, a.Screen, a.Title = si.Package, si.Activity, si.Title
	return a
}
