package domain

import (
	"bytes"
	"encoding/json"
	"math"
	"slices"
	"time"
)

// HelpStatus is a help request's status.
type HelpStatus string

// The contract's help statuses: ANALYZING → RESOLVED, or ANALYZING →
// ESCALATED → RESOLVED after an instructor's answer (who may also answer a
// request already RESOLVED: it stays RESOLVED, with a newer response).
const (
	HelpStatusAnalyzing HelpStatus = "ANALYZING"
	HelpStatusEscalated HelpStatus = "ESCALATED"
	HelpStatusResolved  HelpStatus = "RESOLVED"
)

// Open reports whether the request still waits for help (ANALYZING or ESCALATED).
func (s HelpStatus) Open() bool { return s == HelpStatusAnalyzing || s == HelpStatusEscalated }

// HelpRequestType says who raised a help request.
type HelpRequestType string

// Help request types: MANUAL (the student asked), AUTO (the stuck detector).
const (
	HelpManual HelpRequestType = "MANUAL"
	HelpAuto   HelpRequestType = "AUTO"
)

// Responder says who answered a help request.
type Responder string

// The contract's responders.
const (
	ResponderAnalyzer   Responder = "ANALYZER"
	ResponderInstructor Responder = "INSTRUCTOR"
)

// HelpType is the kind of a help response.
type HelpType string

// Help types ("" in a command means TEXT).
const (
	HelpTypeText      HelpType = "TEXT"
	HelpTypeVoice     HelpType = "VOICE"
	HelpTypeHighlight HelpType = "HIGHLIGHT"
)

// Valid reports whether t is a known help type.
func (t HelpType) Valid() bool {
	return t == HelpTypeText || t == HelpTypeVoice || t == HelpTypeHighlight
}

// HelpAnswer is the content of one help response.
type HelpAnswer struct {
	HelpResponseID int64 // allocated by the application
	HelpType       HelpType
	HelpContent    string
	VoiceGuideText string
}

// HelpResponse is one response a help request received.
type HelpResponse struct {
	ID             int64
	Responder      Responder
	ResponderID    int64 // the instructor's user id; 0 for the analyzer
	HelpType       HelpType
	HelpContent    string
	VoiceGuideText string
	ProvidedAt     time.Time
	Rated          bool
	Rating         int
	FeedbackText   string
}

// HelpRequest is the state of a help-{id} stream. The zero value is a request
// that does not exist yet.
type HelpRequest struct {
	id                   int64
	userID               int64
	lectureID            int64
	instructorID         int64
	subtask              SubtaskRef
	sessionID            int64
	requestType          HelpRequestType
	contextData          json.RawMessage
	stuckDurationSeconds int
	status               HelpStatus
	requestedAt          time.Time
	analyzed             bool
	diagnosis            string
	confidence           float64
	escalationReason     string
	responses            []HelpResponse
}

// Exists reports whether the request was made.
func (h HelpRequest) Exists() bool { return h.id != 0 }

// ID is the help request's id.
func (h HelpRequest) ID() int64 { return h.id }

// UserID is the student who needs help.
func (h HelpRequest) UserID() int64 { return h.userID }

// LectureID is the lecture of the subtask.
func (h HelpRequest) LectureID() int64 { return h.lectureID }

// InstructorID is the lecture's instructor (who may answer).
func (h HelpRequest) InstructorID() int64 { return h.instructorID }

// Subtask is the subtask the student is stuck on.
func (h HelpRequest) Subtask() SubtaskRef { return h.subtask }

// SessionID is the live session the student was in (0 if none).
func (h HelpRequest) SessionID() int64 { return h.sessionID }

// RequestType is MANUAL or AUTO.
func (h HelpRequest) RequestType() HelpRequestType { return h.requestType }

// ContextData is the client's context JSON object (nil when none).
func (h HelpRequest) ContextData() json.RawMessage { return slices.Clone(h.contextData) }

// StuckDurationSeconds is how long the student had been stuck.
func (h HelpRequest) StuckDurationSeconds() int { return h.stuckDurationSeconds }

// Status is the request's status.
func (h HelpRequest) Status() HelpStatus { return h.status }

// RequestedAt is when the request was made.
func (h HelpRequest) RequestedAt() time.Time { return h.requestedAt }

// Analysis returns the analyzer's diagnosis and confidence; ok is false
// before the analysis.
func (h HelpRequest) Analysis() (diagnosis string, confidence float64, ok bool) {
	return h.diagnosis, h.confidence, h.analyzed
}

// EscalationReason is why the analyzer escalated ("" if it did not).
func (h HelpRequest) EscalationReason() string { return h.escalationReason }

// Responses lists the responses in the order they were given.
func (h HelpRequest) Responses() []HelpResponse { return slices.Clone(h.responses) }

// Response returns the response with id.
func (h HelpRequest) Response(id int64) (HelpResponse, bool) {
	i := slices.IndexFunc(h.responses, func(r HelpResponse) bool { return r.ID == id })
	if i < 0 {
		return HelpResponse{}, false
	}
	return h.responses[i], true
}

// LatestResponse returns the newest response.
func (h HelpRequest) LatestResponse() (HelpResponse, bool) {
	if len(h.responses) == 0 {
		return HelpResponse{}, false
	}
	return h.responses[len(h.responses)-1], true
}

// HelpCommand is a command to the help aggregate.
type HelpCommand interface{ helpCommand() }

// RequestHelp opens a help request for UserID (0 = the actor) stuck on
// Subtask. The application looks up Subtask and the lecture's InstructorID.
// A STUDENT asks for themself; the server (System, the stuck detector) and
// an ADMIN may ask for anyone. An empty RequestType means MANUAL.
type RequestHelp struct {
	Actor                Actor
	At                   time.Time
	HelpRequestID        int64 // allocated by the application
	UserID               int64
	Subtask              SubtaskRef
	InstructorID         int64
	SessionID            int64
	RequestType          HelpRequestType
	ContextData          json.RawMessage // a JSON object, or empty
	StuckDurationSeconds int
}

// RecordAnalysis records the analyzer's outcome: with an Answer the request is
// resolved (HelpAnalyzed + HelpProvided), without one it is escalated to the
// instructor (HelpAnalyzed + HelpEscalated). Issued by System (or an ADMIN).
type RecordAnalysis struct {
	Actor            Actor
	At               time.Time
	Diagnosis        string
	Confidence       float64
	Answer           *HelpAnswer
	EscalationReason string
}

// RespondToHelp is the lecture's instructor (or an ADMIN) answering.
type RespondToHelp struct {
	Actor  Actor
	At     time.Time
	Answer HelpAnswer
}

// GiveHelpFeedback is the requesting student rating one response.
type GiveHelpFeedback struct {
	Actor          Actor
	At             time.Time
	HelpResponseID int64
	Rating         int
	FeedbackText   string
}

func (RequestHelp) helpCommand()      {}
func (RecordAnalysis) helpCommand()   {}
func (RespondToHelp) helpCommand()    {}
func (GiveHelpFeedback) helpCommand() {}

// HelpRequested: a student (or the stuck detector for them) asked for help.
type HelpRequested struct {
	HelpRequestID        int64           `json:"help_request_id"`
	UserID               int64           `json:"user_id"`
	LectureID            int64           `json:"lecture_id"`
	InstructorID         int64           `json:"instructor_id"`
	TaskID               int64           `json:"task_id"`
	SubtaskID            int64           `json:"subtask_id"`
	SubtaskTitle         string          `json:"subtask_title"`
	SessionID            int64           `json:"session_id,omitempty"`
	RequestType          HelpRequestType `json:"request_type"`
	ContextData          json.RawMessage `json:"context_data,omitempty"`
	StuckDurationSeconds int             `json:"stuck_duration_seconds"`
	RequestedAt          time.Time       `json:"requested_at"`
}

// HelpAnalyzed: the analyzer diagnosed the request.
type HelpAnalyzed struct {
	HelpRequestID int64     `json:"help_request_id"`
	Diagnosis     string    `json:"problem_diagnosis"`
	Confidence    float64   `json:"confidence_score"`
	AnalyzedAt    time.Time `json:"analyzed_at"`
}

// HelpProvided: the analyzer or an instructor answered; the request is
// resolved. A request may get several (an instructor's answer after the
// analyzer's, or a second one); the newest is the one shown.
type HelpProvided struct {
	HelpRequestID  int64     `json:"help_request_id"`
	HelpResponseID int64     `json:"help_response_id"`
	UserID         int64     `json:"user_id"`
	LectureID      int64     `json:"lecture_id"`
	SubtaskID      int64     `json:"subtask_id"`
	SessionID      int64     `json:"session_id,omitempty"`
	Responder      Responder `json:"responder"`
	ResponderID    int64     `json:"responder_id,omitempty"`
	HelpType       HelpType  `json:"help_type"`
	HelpContent    string    `json:"help_content"`
	VoiceGuideText string    `json:"voice_guide_text"`
	ProvidedAt     time.Time `json:"provided_at"`
}

// HelpEscalated: the analyzer was not confident; the instructor must answer.
type HelpEscalated struct {
	HelpRequestID int64     `json:"help_request_id"`
	UserID        int64     `json:"user_id"`
	LectureID     int64     `json:"lecture_id"`
	InstructorID  int64     `json:"instructor_id"`
	SubtaskID     int64     `json:"subtask_id"`
	SessionID     int64     `json:"session_id,omitempty"`
	Reason        string    `json:"reason"`
	EscalatedAt   time.Time `json:"escalated_at"`
}

// HelpFeedbackGiven: the student rated a response.
type HelpFeedbackGiven struct {
	HelpRequestID  int64     `json:"help_request_id"`
	HelpResponseID int64     `json:"help_response_id"`
	UserID         int64     `json:"user_id"`
	Rating         int       `json:"rating"`
	FeedbackText   string    `json:"feedback_text"`
	GivenAt        time.Time `json:"given_at"`
}

// EventType implements Event.
func (HelpRequested) EventType() string { return "HelpRequested" }

// EventType implements Event.
func (HelpAnalyzed) EventType() string { return "HelpAnalyzed" }

// EventType implements Event.
func (HelpProvided) EventType() string { return "HelpProvided" }

// EventType implements Event.
func (HelpEscalated) EventType() string { return "HelpEscalated" }

// EventType implements Event.
func (HelpFeedbackGiven) EventType() string { return "HelpFeedbackGiven" }

func init() {
	RegisterEvent[HelpRequested]()
	RegisterEvent[HelpAnalyzed]()
	RegisterEvent[HelpProvided]()
	RegisterEvent[HelpEscalated]()
	RegisterEvent[HelpFeedbackGiven]()
}

// DefaultEscalationReason is HelpEscalated's reason when the analyzer gives none.
const DefaultEscalationReason = "the analyzer was not confident enough"

// HelpDecider is the help aggregate (stream help-{id}).
//
// RequestHelp: FORBIDDEN unless a STUDENT for themself, System or ADMIN;
// INVALID_REQUEST (subtask_id, request_type, context_data not a JSON object,
// negative stuck_duration_seconds); CONFLICT when the request exists.
// RecordAnalysis: NOT_FOUND; FORBIDDEN unless System or ADMIN; INVALID_REQUEST
// (confidence_score outside 0..1, texts); once the request is no longer
// ANALYZING (a redelivered analysis, or an instructor answered first) → no events.
// RespondToHelp: NOT_FOUND; FORBIDDEN unless the lecture's instructor or
// ADMIN; INVALID_REQUEST. The instructor may answer whatever the request's
// status (ANALYZING, ESCALATED, or RESOLVED by the analyzer or by an earlier
// answer): each answer is a new response that supersedes the ones before it,
// and the student is notified again.
// GiveHelpFeedback: NOT_FOUND (request, or a response it did not receive);
// FORBIDDEN unless the requesting student; INVALID_REQUEST (rating 1–5,
// feedback_text ≤ 1000); CONFLICT when that response was already rated.
var HelpDecider = Decider[HelpRequest, HelpCommand]{
	Initial: func() HelpRequest { return HelpRequest{} },
	Decide:  decideHelp,
	Evolve:  evolveHelp,
}

func decideHelp(h HelpRequest, c HelpCommand) ([]Event, error) {
	if r, ok := c.(RequestHelp); ok {
		return h.request(r)
	}
	if !h.Exists() {
		return nil, NotFound("help request")
	}
	switch c := c.(type) {
	case RecordAnalysis:
		return h.analyze(c)
	case RespondToHelp:
		if !c.Actor.Manages(h.instructorID) {
			return nil, Forbidden("only the lecture's instructor may answer this help request")
		}
		f := fields{}
		f.answer(&c.Answer)
		if err := f.err(); err != nil {
			return nil, err
		}
		if err := checkResponseID(c.Answer.HelpResponseID); err != nil {
			return nil, err
		}
		return []Event{h.provided(c.Answer, ResponderInstructor, c.Actor.UserID, c.At)}, nil
	case GiveHelpFeedback:
		if c.Actor.UserID == 0 || c.Actor.UserID != h.userID {
			return nil, Forbidden("only the student who asked may rate the help")
		}
		f := fields{}
		if c.Rating < 1 || c.Rating > 5 {
			f["rating"] = "must be between 1 and 5"
		}
		f.optionalText("feedback_text", c.FeedbackText, MaxFeedbackTextLen)
		if err := f.err(); err != nil {
			return nil, err
		}
		r, ok := h.Response(c.HelpResponseID)
		if !ok {
			return nil, NotFound("help response")
		}
		if r.Rated {
			return nil, Errorf(CodeConflict, "help response %d has already been rated", r.ID)
		}
		return []Event{HelpFeedbackGiven{
			HelpRequestID: h.id, HelpResponseID: r.ID, UserID: h.userID,
			Rating: c.Rating, FeedbackText: c.FeedbackText, GivenAt: c.At,
		}}, nil
	}
	return nil, errInternal("unknown help command %T", c)
}

func (h HelpRequest) request(c RequestHelp) ([]Event, error) {
	if c.HelpRequestID <= 0 {
		return nil, errInternal("RequestHelp without a help request id")
	}
	user := c.UserID
	if user == 0 {
		user = c.Actor.UserID
	}
	if !c.Actor.IsAdmin() && !c.Actor.IsSystem() && (c.Actor.Role != RoleStudent || user != c.Actor.UserID) {
		return nil, Forbidden("only students ask for help, for themselves")
	}
	typ := c.RequestType
	if typ == "" {
		typ = HelpManual
	}
	ctx := bytes.TrimSpace(c.ContextData)
	if bytes.Equal(ctx, []byte("null")) {
		ctx = nil
	}
	f := fields{}
	if c.Subtask.ID == 0 {
		f["subtask_id"] = "is required"
	}
	if typ != HelpManual && typ != HelpAuto {
		f["request_type"] = "must be MANUAL or AUTO"
	}
	var data json.RawMessage
	if len(ctx) > 0 {
		var buf bytes.Buffer
		if ctx[0] != '{' || json.Compact(&buf, ctx) != nil {
			f["context_data"] = "must be a JSON object"
		} else {
			f.json("context_data", buf.Bytes())
		}
		data = buf.Bytes()
	}
	f.int32("stuck_duration_seconds", int64(c.StuckDurationSeconds), 0, MaxInt32)
	if err := f.err(); err != nil {
		return nil, err
	}
	if user <= 0 || c.Subtask.LectureID <= 0 {
		return nil, errInternal("RequestHelp without a user or the subtask's lecture")
	}
	if h.Exists() {
		return nil, Errorf(CodeConflict, "help request %d already exists", c.HelpRequestID)
	}
	return []Event{HelpRequested{
		HelpRequestID: c.HelpRequestID, UserID: user, LectureID: c.Subtask.LectureID, InstructorID: c.InstructorID,
		TaskID: c.Subtask.TaskID, SubtaskID: c.Subtask.ID, SubtaskTitle: c.Subtask.Title, SessionID: c.SessionID,
		RequestType: typ, ContextData: data, StuckDurationSeconds: c.StuckDurationSeconds, RequestedAt: c.At,
	}}, nil
}

func (h HelpRequest) analyze(c RecordAnalysis) ([]Event, error) {
	if !c.Actor.IsSystem() && !c.Actor.IsAdmin() {
		return nil, Forbidden("only the analyzer records an analysis")
	}
	f := fields{}
	if math.IsNaN(c.Confidence) || c.Confidence < 0 || c.Confidence > 1 {
		f["confidence_score"] = "must be between 0 and 1"
	}
	f.optionalText("problem_diagnosis", c.Diagnosis, MaxDiagnosisLen)
	f.optionalText("reason", c.EscalationReason, MaxReasonLen)
	var answer HelpAnswer
	if c.Answer != nil {
		answer = *c.Answer
		f.answer(&answer)
	}
	if err := f.err(); err != nil {
		return nil, err
	}
	if h.status != HelpStatusAnalyzing {
		return nil, nil
	}
	analyzed := HelpAnalyzed{HelpRequestID: h.id, Diagnosis: c.Diagnosis, Confidence: c.Confidence, AnalyzedAt: c.At}
	if c.Answer == nil {
		reason := c.EscalationReason
		if reason == "" {
			reason = DefaultEscalationReason
		}
		return []Event{analyzed, HelpEscalated{
			HelpRequestID: h.id, UserID: h.userID, LectureID: h.lectureID, InstructorID: h.instructorID,
			SubtaskID: h.subtask.ID, SessionID: h.sessionID, Reason: reason, EscalatedAt: c.At,
		}}, nil
	}
	if err := checkResponseID(answer.HelpResponseID); err != nil {
		return nil, err
	}
	return []Event{analyzed, h.provided(answer, ResponderAnalyzer, 0, c.At)}, nil
}

func checkResponseID(id int64) error {
	if id <= 0 {
		return errInternal("help answer without a help response id")
	}
	return nil
}

func (h HelpRequest) provided(a HelpAnswer, who Responder, responderID int64, at time.Time) HelpProvided {
	return HelpProvided{
		HelpRequestID: h.id, HelpResponseID: a.HelpResponseID, UserID: h.userID, LectureID: h.lectureID,
		SubtaskID: h.subtask.ID, SessionID: h.sessionID, Responder: who, ResponderID: responderID,
		HelpType: a.HelpType, HelpContent: a.HelpContent, VoiceGuideText: a.VoiceGuideText, ProvidedAt: at,
	}
}

// answer validates a help answer, defaulting its type to TEXT.
func (f fields) answer(a *HelpAnswer) {
	if a.HelpType == "" {
		a.HelpType = HelpTypeText
	}
	if !a.HelpType.Valid() {
		f["help_type"] = "must be TEXT, VOICE or HIGHLIGHT"
	}
	f.requiredText("help_content", a.HelpContent, MaxHelpContentLen)
	f.optionalText("voice_guide_text", a.VoiceGuideText, MaxGuideTextLen)
}

func evolveHelp(h HelpRequest, ev Event) HelpRequest {
	switch e := ev.(type) {
	case HelpRequested:
		h.id, h.userID, h.lectureID, h.instructorID = e.HelpRequestID, e.UserID, e.LectureID, e.InstructorID
		h.subtask = SubtaskRef{ID: e.SubtaskID, TaskID: e.TaskID, LectureID: e.LectureID, Title: e.SubtaskTitle}
		h.sessionID, h.requestType, h.contextData = e.SessionID, e.RequestType, e.ContextData
		h.stuckDurationSeconds, h.requestedAt, h.status = e.StuckDurationSeconds, e.RequestedAt, HelpStatusAnalyzing
	case HelpAnalyzed:
		h.analyzed, h.diagnosis, h.confidence = true, e.Diagnosis, e.Confidence
	case HelpProvided:
		h.status = HelpStatusResolved
		h.responses = append(slices.Clip(h.responses), HelpResponse{
			ID: e.HelpResponseID, Responder: e.Responder, ResponderID: e.ResponderID, HelpType: e.HelpType,
			HelpContent: e.HelpContent, VoiceGuideText: e.VoiceGuideText, ProvidedAt: e.ProvidedAt,
		})
	case HelpEscalated:
		h.status, h.escalationReason = HelpStatusEscalated, e.Reason
	case HelpFeedbackGiven:
		h.responses = slices.Clone(h.responses)
		for i := range h.responses {
			if h.responses[i].ID == e.HelpResponseID {
				h.responses[i].Rated, h.responses[i].Rating, h.responses[i].FeedbackText = true, e.Rating, e.FeedbackText
			}
		}
	}
	return h
}
