package commands

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/lockstep/lockstep/analyzer"
	"github.com/lockstep/lockstep/domain"
	"github.com/lockstep/lockstep/eventstore"
	"github.com/lockstep/lockstep/pgdb"
)

// analyzer on the help-analysis-requests topic.
const HelpAnalyzerGroup = "help-analyzer"

// AnalyzingMessage is the message of a new help request's answer.
const AnalyzingMessage = "분석 중입니다. 잠시만 기다려주세요."

// ActivitySource reads a student's recent activity logs (oldest first).
type ActivitySource interface {
	Recent(ctx context.Context, userID int64, since, until time.Time, limit int) ([]analyzer.Activity, error)
}

// HelpConfig configures the help commands.
type HelpConfig struct {
	Store eventstore.Store
	// Pool holds the id sequences, the response → request lookup table and
	// the read models the commands consult (live sessions).
	Pool *pgxpool.Pool
	// RequestAnalysis hands a new request to the analyzer (publishes
	// EncodeAnalysisRequest's payload on the analysis topic). Nil: no
	// analysis is requested (the sweep still finds the request).
	RequestAnalysis func(ctx context.Context, helpRequestID int64, payload []byte) error
	// Analyzer answers the analysis (default: analyzer.RuleBased{}).
	Analyzer analyzer.Analyzer
	// Activity reads recent activity logs for the analyzer; nil: none.
	Activity ActivitySource
	// AnalysisTimeout bounds one analysis (default 10s).
	AnalysisTimeout time.Duration
	// WaitFor blocks until the read models reflect a position; nil does not wait.
	WaitFor func(ctx context.Context, position uint64) error
	// Now is the clock (default time.Now).
	Now    func() time.Time
	Logger *slog.Logger
}

// Help handles the commands of the help-{id} streams: requesting help, the
// analyzer's answer, an instructor's answer and the student's feedback, and
// serves POST /api/help/request, /api/help/request/{id}/respond and
// /api/help/feedback.
type Help struct {
	cfg HelpConfig
	// RequestHelp opens help requests (what the stuck detector calls).
	RequestHelp RequestHelpHandler
}

// NewHelp returns the help commands; it panics without a store or pool.
func NewHelp(cfg HelpConfig) *Help {
	if cfg.Store == nil || cfg.Pool == nil {
		panic("commands: NewHelp needs a Store and a Pool")
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Analyzer == nil {
		cfg.Analyzer = analyzer.RuleBased{}
	}
	if cfg.AnalysisTimeout <= 0 {
		cfg.AnalysisTimeout = 10 * time.Second
	}
	h := &Help{cfg: cfg}
	h.RequestHelp = RequestHelpHandler{h}
	return h
}

// RequestHelp asks for help for a student on a subtask: the acting user
// (the student, an admin, or domain.System for the stuck detector), what is
// asked, and the events' metadata.
type RequestHelp struct {
	Actor domain.Actor
	HelpRequestInput
	Meta eventstore.Metadata
}

// RequestHelpHandler handles RequestHelp (Help.Request).
type RequestHelpHandler struct{ h *Help }

// Handle opens the help request and hands it to the analyzer; see Help.Request.
func (r RequestHelpHandler) Handle(ctx context.Context, cmd RequestHelp) (domain.HelpRequest, error) {
	hr, _, err := r.h.Request(ctx, cmd.Actor, cmd.HelpRequestInput, cmd.Meta)
	return hr, err
}

func (h *Help) now() time.Time { return h.cfg.Now().UTC().Truncate(time.Microsecond) }

// HelpRequestInput is what a help request carries.
type HelpRequestInput struct {
	// UserID is the student who needs help (0: the actor).
	UserID    int64
	SubtaskID int64
	// RequestType is MANUAL (default) or AUTO.
	RequestType domain.HelpRequestType
	// ContextData is the client's context object (may be empty).
	ContextData json.RawMessage
	// StuckDurationSeconds: nil takes context_data.stuck_duration_seconds (else 0).
	StuckDurationSeconds *int
	// SessionID is the live session (0: the student's current one, if any).
	SessionID int64
}

// Request opens a help request for a student enrolled in the subtask's
// lecture and hands it to the analyzer. The subtask's lecture is found
// through the write-side lookup table and folded, the enrollment through the
// student's progress stream, so nothing depends on projection lag.
// Refusals: FORBIDDEN (user_id is not the caller and the caller is not ADMIN
// or the server; not a student; not enrolled), NOT_FOUND (no such live
// subtask), INVALID_REQUEST (fields).
func (h *Help) Request(ctx context.Context, actor domain.Actor, in HelpRequestInput, meta eventstore.Metadata) (domain.HelpRequest, uint64, error) {
	user := in.UserID
	if user == 0 {
		user = actor.UserID
	}
	if user != actor.UserID && !actor.IsAdmin() && !actor.IsSystem() {
		return domain.HelpRequest{}, 0, domain.Forbidden("user_id must be your own id")
	}
	if !actor.IsAdmin() && !actor.IsSystem() && actor.Role != domain.RoleStudent {
		return domain.HelpRequest{}, 0, domain.Forbidden("only students ask for help")
	}
	if err := checkUser(ctx, h.cfg.Pool, actor, user); err != nil {
		return domain.HelpRequest{}, 0, err
	}
	lectureID, err := helpLectureOfSubtask(ctx, h.cfg.Pool, in.SubtaskID)
	if err != nil {
		return domain.HelpRequest{}, 0, err
	}
	lec, _, err := Load(ctx, h.cfg.Store, domain.LectureStream(lectureID), domain.LectureDecider)
	if err != nil {
		return domain.HelpRequest{}, 0, err
	}
	st, ok := lec.Subtask(in.SubtaskID)
	if !ok {
		return domain.HelpRequest{}, 0, domain.NotFound("subtask")
	}
	prog, _, err := Load(ctx, h.cfg.Store, domain.ProgressStream(lectureID, user), domain.ProgressDecider)
	if err != nil {
		return domain.HelpRequest{}, 0, err
	}
	if !prog.Enrolled() {
		return domain.HelpRequest{}, 0, domain.Forbidden("the student is not enrolled in this subtask's lecture")
	}
	sessionID := in.SessionID
	if sessionID == 0 {
		if sessionID, err = h.SessionOf(ctx, lectureID, user); err != nil {
			return domain.HelpRequest{}, 0, err
		}
	}
	id, err := pgdb.NextID(ctx, h.cfg.Pool, "help_request_ids", eventstore.CommandScope(ctx, "id:help_request_ids"))
	if err != nil {
		return domain.HelpRequest{}, 0, err
	}
	meta.LectureID = lectureID
	if sessionID != 0 {
		meta.SessionID = sessionID
	}
	res, err := Execute(ctx, h.cfg.Store, domain.HelpStream(id), domain.HelpDecider,
		domain.HelpCommand(in.command(actor, h.now(), id, user, st.Ref(), lec.InstructorID(), sessionID)), meta)
	if err != nil {
		return domain.HelpRequest{}, 0, err
	}
	if h.cfg.RequestAnalysis != nil {
		if err := h.cfg.RequestAnalysis(ctx, id, EncodeAnalysisRequest(id)); err != nil {
			// The request is stored; the analyzer's sweep picks it up.
			h.cfg.Logger.Error("request help analysis", "help_request_id", id, "error", err)
		}
	}
	waitReadModels(ctx, h.cfg.WaitFor, res.Position)
	return res.State, res.Position, nil
}

// command is the RequestHelp of a request for user on subtask, by actor.
func (in HelpRequestInput) command(actor domain.Actor, at time.Time, id, user int64, subtask domain.SubtaskRef, instructorID, sessionID int64) domain.RequestHelp {
	return domain.RequestHelp{
		Actor: actor, At: at, HelpRequestID: id, UserID: user, Subtask: subtask, InstructorID: instructorID,
		SessionID: sessionID, RequestType: in.RequestType, ContextData: in.ContextData, StuckDurationSeconds: in.stuckSeconds(),
	}
}

// stuckSeconds is StuckDurationSeconds, else context_data's
// stuck_duration_seconds when it is a number an int4 column holds, else 0.
func (in HelpRequestInput) stuckSeconds() int {
	if in.StuckDurationSeconds != nil {
		return *in.StuckDurationSeconds
	}
	if len(in.ContextData) == 0 {
		return 0
	}
	var c struct {
		Stuck *float64 `json:"stuck_duration_seconds"`
	}
	if json.Unmarshal(in.ContextData, &c) == nil && c.Stuck != nil && *c.Stuck >= 0 && *c.Stuck <= math.MaxInt32 {
		return int(*c.Stuck)
	}
	return 0
}

// SessionOf is the live session (IN_PROGRESS or PAUSED) of lecture the
// student takes part in, 0 when none (read from the sessions read model).
func (h *Help) SessionOf(ctx context.Context, lectureID, userID int64) (int64, error) {
	return LiveSessionOf(h.cfg.Pool)(ctx, lectureID, userID)
}

// LiveSessionOf returns a lookup of the live session (IN_PROGRESS or PAUSED)
// of a lecture that a student takes part in, 0 when none, from the sessions
// read model. Progress and help events carry it, so that a classroom's
// history holds what its students did during it.
func LiveSessionOf(pool *pgxpool.Pool) func(ctx context.Context, lectureID, userID int64) (int64, error) {
	return func(ctx context.Context, lectureID, userID int64) (int64, error) {
		var id int64
		err := pool.QueryRow(ctx, `SELECT s.session_id FROM session_participants p JOIN live_sessions s USING (session_id)
			WHERE p.user_id = $1 AND p.lecture_id = $2 AND s.status IN ('IN_PROGRESS', 'PAUSED')
			ORDER BY s.session_id DESC LIMIT 1`, userID, lectureID).Scan(&id)
		if errors.Is(err, pgx.ErrNoRows) {
			return 0, nil
		}
		if err != nil {
			return 0, fmt.Errorf("find the live session of user %d in lecture %d: %w", userID, lectureID, err)
		}
		return id, nil
	}
}

func helpLectureOfSubtask(ctx context.Context, pool *pgxpool.Pool, subtaskID int64) (int64, error) {
	var lectureID int64
	err := pool.QueryRow(ctx, `SELECT lecture_id FROM lecture_subtask_ids WHERE subtask_id = $1`, subtaskID).Scan(&lectureID)
	if errors.Is(err, pgx.ErrNoRows) {
		return 0, domain.NotFound("subtask")
	}
	if err != nil {
		return 0, fmt.Errorf("look up the lecture of subtask %d: %w", subtaskID, err)
	}
	return lectureID, nil
}

// analysisRequest is the payload of a message on the analysis topic.
type analysisRequest struct {
	HelpRequestID int64 `json:"help_request_id"`
}

// EncodeAnalysisRequest is the payload that asks the analyzer to analyze a request.
func EncodeAnalysisRequest(helpRequestID int64) []byte {
	b, _ := json.Marshal(analysisRequest{helpRequestID})
	return b
}

// HandleAnalysisRequest is the analyzer's message handler: it decodes the
// payload and analyzes the request. A payload it cannot read is dropped
// (nil); an error means "redeliver later".
func (h *Help) HandleAnalysisRequest(ctx context.Context, payload []byte) error {
	var m analysisRequest
	if err := json.Unmarshal(payload, &m); err != nil || m.HelpRequestID <= 0 {
		h.cfg.Logger.Error("drop unreadable help analysis request", "payload", string(payload))
		return nil
	}
	return h.Analyze(ctx, m.HelpRequestID)
}

// Analyze runs the analyzer on a request still ANALYZING and records its
// answer as the server (HelpAnalyzed + HelpProvided, or HelpEscalated). It is
// idempotent: a request already analyzed or answered is left alone, so a
// redelivered message appends nothing.
func (h *Help) Analyze(ctx context.Context, helpRequestID int64) error {
	stream := domain.HelpStream(helpRequestID)
	hr, _, err := Load(ctx, h.cfg.Store, stream, domain.HelpDecider)
	if err != nil {
		return err
	}
	if !hr.Exists() {
		h.cfg.Logger.Warn("help analysis request for an unknown help request", "help_request_id", helpRequestID)
		return nil
	}
	if hr.Status() != domain.HelpStatusAnalyzing {
		return nil
	}
	lec, _, err := Load(ctx, h.cfg.Store, domain.LectureStream(hr.LectureID()), domain.LectureDecider)
	if err != nil {
		return err
	}
	st, ok := lec.Subtask(hr.Subtask().ID)
	if !ok {
		st, _ = lec.RemovedSubtask(hr.Subtask().ID)
	}
	now := h.now()
	req := analyzer.Request{
		HelpRequestID: helpRequestID, UserID: hr.UserID(), RequestType: hr.RequestType(),
		Subtask: analyzer.Subtask{
			ID: hr.Subtask().ID, Title: hr.Subtask().Title, TargetAction: st.TargetAction,
			TargetElementHint: st.TargetElementHint, GuideText: st.GuideText, VoiceGuideText: st.VoiceGuideText,
		},
		ContextData:   hr.ContextData(),
		StuckDuration: time.Duration(hr.StuckDurationSeconds()) * time.Second,
		Now:           now, Language: "ko",
	}
	if h.cfg.Activity != nil {
		acts, err := h.cfg.Activity.Recent(ctx, hr.UserID(), hr.RequestedAt().Add(-5*time.Minute), now, 200)
		if err != nil {
			h.cfg.Logger.Warn("read recent activity for help analysis", "help_request_id", helpRequestID, "error", err)
		}
		req.RecentActivity = acts
	}
	actx, cancel := context.WithTimeout(ctx, h.cfg.AnalysisTimeout)
	res, err := h.cfg.Analyzer.Analyze(actx, req)
	cancel()
	if err != nil {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		// The analyzer could not answer in time: the rules always can.
		h.cfg.Logger.Warn("help analyzer failed; answering with the rules", "analyzer", h.cfg.Analyzer.Name(), "help_request_id", helpRequestID, "error", err)
		res = analyzer.RuleBased{}.Answer(req)
	}
	cmd := domain.RecordAnalysis{Actor: domain.System, At: now, Diagnosis: res.Diagnosis, Confidence: res.Confidence}
	if res.Escalate {
		cmd.EscalationReason = res.EscalationReason
	} else {
		rid, err := h.allocateResponse(ctx, helpRequestID)
		if err != nil {
			return err
		}
		cmd.Answer = &domain.HelpAnswer{HelpResponseID: rid, HelpType: res.HelpType, HelpContent: res.HelpContent, VoiceGuideText: res.VoiceGuideText}
	}
	meta := eventstore.Metadata{CorrelationID: stream, LectureID: hr.LectureID(), SessionID: hr.SessionID()}
	out, err := Execute(ctx, h.cfg.Store, stream, domain.HelpDecider, domain.HelpCommand(cmd), meta)
	if err != nil {
		var de *domain.Error
		if errors.As(err, &de) {
			// The analyzer's answer breaks the domain's rules (too long, …):
			// it will not get better on redelivery. Escalate instead.
			h.cfg.Logger.Error("help analysis refused; escalating", "help_request_id", helpRequestID, "error", err)
			_, err = Execute(ctx, h.cfg.Store, stream, domain.HelpDecider, domain.HelpCommand(domain.RecordAnalysis{
				Actor: domain.System, At: now, Confidence: 0, EscalationReason: "자동 분석 결과를 사용할 수 없어 강사님께 넘깁니다.",
			}), meta)
		}
		return err
	}
	h.cfg.Logger.Info("help request analyzed", "help_request_id", helpRequestID, "rule", res.Rule,
		"confidence", res.Confidence, "escalated", res.Escalate, "events", len(out.Events))
	return nil
}

// Stale returns requests still ANALYZING that were made before olderThan
// ago (an analysis request lost between the append and the bus), oldest first.
func (h *Help) Stale(ctx context.Context, olderThan time.Duration, limit int) ([]int64, error) {
	rows, err := h.cfg.Pool.Query(ctx, `SELECT id FROM rm_help_requests WHERE status = 'ANALYZING' AND requested_at < $1
		ORDER BY requested_at LIMIT $2`, h.now().Add(-olderThan), limit)
	if err != nil {
		return nil, fmt.Errorf("find stale help requests: %w", err)
	}
	return pgx.CollectRows(rows, pgx.RowTo[int64])
}

// allocateResponse takes a response id and records which stream it is for.
func (h *Help) allocateResponse(ctx context.Context, helpRequestID int64) (int64, error) {
	var id int64
	err := h.cfg.Pool.QueryRow(ctx, `INSERT INTO help_response_streams (help_response_id, help_request_id)
		VALUES (nextval('help_response_ids'), $1) RETURNING help_response_id`, helpRequestID).Scan(&id)
	if err != nil {
		return 0, fmt.Errorf("allocate help response id: %w", err)
	}
	return id, nil
}

// Respond records an instructor's (or an ADMIN's) answer, whatever the
// request's status: an answer to a request the analyzer resolved supersedes
// the analyzer's, and the student is notified again. Refusals: NOT_FOUND,
// FORBIDDEN (not the lecture's instructor), INVALID_REQUEST.
func (h *Help) Respond(ctx context.Context, actor domain.Actor, helpRequestID int64, answer domain.HelpAnswer, meta eventstore.Metadata) (domain.HelpRequest, uint64, error) {
	stream := domain.HelpStream(helpRequestID)
	hr, _, err := Load(ctx, h.cfg.Store, stream, domain.HelpDecider)
	if err != nil {
		return domain.HelpRequest{}, 0, err
	}
	if !hr.Exists() {
		return domain.HelpRequest{}, 0, domain.NotFound("help request")
	}
	// Refuse before allocating an id when the answer cannot be accepted.
	probe := answer
	probe.HelpResponseID = 1
	if _, err := domain.HelpDecider.Decide(hr, domain.RespondToHelp{Actor: actor, At: h.now(), Answer: probe}); err != nil {
		return domain.HelpRequest{}, 0, err
	}
	if answer.HelpResponseID, err = h.allocateResponse(ctx, helpRequestID); err != nil {
		return domain.HelpRequest{}, 0, err
	}
	meta.LectureID, meta.SessionID = hr.LectureID(), hr.SessionID()
	res, err := Execute(ctx, h.cfg.Store, stream, domain.HelpDecider, domain.HelpCommand(domain.RespondToHelp{Actor: actor, At: h.now(), Answer: answer}), meta)
	if err != nil {
		return domain.HelpRequest{}, 0, err
	}
	waitReadModels(ctx, h.cfg.WaitFor, res.Position)
	return res.State, res.Position, nil
}

// Feedback records the requesting student's rating of one response.
// Refusals: NOT_FOUND (no such response), FORBIDDEN (not the student who
// asked), INVALID_REQUEST (rating 1–5, feedback_text), CONFLICT (rated already).
func (h *Help) Feedback(ctx context.Context, actor domain.Actor, helpResponseID int64, rating int, text string, meta eventstore.Metadata) (domain.HelpRequest, uint64, error) {
	var helpRequestID int64
	err := h.cfg.Pool.QueryRow(ctx, `SELECT help_request_id FROM help_response_streams WHERE help_response_id = $1`, helpResponseID).Scan(&helpRequestID)
	if errors.Is(err, pgx.ErrNoRows) {
		return domain.HelpRequest{}, 0, domain.NotFound("help response")
	}
	if err != nil {
		return domain.HelpRequest{}, 0, fmt.Errorf("look up help response %d: %w", helpResponseID, err)
	}
	stream := domain.HelpStream(helpRequestID)
	hr, _, err := Load(ctx, h.cfg.Store, stream, domain.HelpDecider)
	if err != nil {
		return domain.HelpRequest{}, 0, err
	}
	meta.LectureID, meta.SessionID = hr.LectureID(), hr.SessionID()
	res, err := Execute(ctx, h.cfg.Store, stream, domain.HelpDecider, domain.HelpCommand(domain.GiveHelpFeedback{
		Actor: actor, At: h.now(), HelpResponseID: helpResponseID, Rating: rating, FeedbackText: text,
	}), meta)
	if err != nil {
		return domain.HelpRequest{}, 0, err
	}
	waitReadModels(ctx, h.cfg.WaitFor, res.Position)
	return res.State, res.Position, nil
}
