package commands

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/lockstep/lockstep/analyzer"
	"github.com/lockstep/lockstep/domain"
	"github.com/lockstep/lockstep/eventstore"
	"github.com/lockstep/lockstep/projections"
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
// analyzer's answer, an instructor's answer and the student's feedback
// (http_help.go mounts POST /api/help/request, /api/help/request/{id}/respond
// and /api/help/feedback).
type Help struct {
	cfg HelpConfig
	// RequestHelp opens help requests (what the stuck detector calls).
	RequestHelp RequestHelpHandler
	// Respond records an instructor's answer.
	Respond RespondToHelpHandler
	// GiveFeedback records a student's rating of an answer.
	GiveFeedback GiveHelpFeedbackHandler
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
	h.RequestHelp, h.Respond, h.GiveFeedback = RequestHelpHandler{h}, RespondToHelpHandler{h}, GiveHelpFeedbackHandler{h}
	return h
}

func (h *Help) now() time.Time { return h.cfg.Now().UTC().Truncate(time.Microsecond) }

// SessionOf is the live session (IN_PROGRESS or PAUSED) of lecture the
// student takes part in, 0 when none (read from the sessions read model).
func (h *Help) SessionOf(ctx context.Context, lectureID, userID int64) (int64, error) {
	return LiveSessionOf(h.cfg.Pool)(ctx, lectureID, userID)
}

// LiveSessionOf returns a lookup of the live session (IN_PROGRESS or PAUSED)
// of a lecture that a student takes part in, 0 when none, from the sessions
// read model. Progress and help events carry it, so that a classroom's
// history holds what its students did during it.
//
// Concurrent calls share their reads (coalesce.go): the students of a class
// who act together are looked up with one query per lecture.
func LiveSessionOf(pool *pgxpool.Pool) func(ctx context.Context, lectureID, userID int64) (int64, error) {
	c := &coalesced[[2]int64, int64]{load: func(ctx context.Context, keys [][2]int64) (map[[2]int64]int64, error) {
		byLecture := map[int64][]int64{}
		for _, k := range keys {
			byLecture[k[0]] = append(byLecture[k[0]], k[1])
		}
		// One query per lecture, the lectures side by side.
		var (
			mu      sync.Mutex
			out     = make(map[[2]int64]int64, len(keys))
			wg      sync.WaitGroup
			failure error
		)
		for lectureID, users := range byLecture {
			wg.Go(func() {
				sessions, err := projections.LiveSessions(ctx, pool, lectureID, users)
				mu.Lock()
				defer mu.Unlock()
				if err != nil {
					failure = err
				}
				for user, session := range sessions {
					out[[2]int64{lectureID, user}] = session
				}
			})
		}
		wg.Wait()
		return out, failure
	}}
	return func(ctx context.Context, lectureID, userID int64) (int64, error) {
		return c.get(ctx, [2]int64{lectureID, userID})
	}
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
