package commands

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/lockstep/lockstep/domain"
	"github.com/lockstep/lockstep/eventstore"
	"github.com/lockstep/lockstep/pgdb"
)

// RequestHelp asks for help for a student on a subtask: the acting user
// (the student, an admin, or domain.System for the stuck detector), what is
// asked, and the events' metadata.
type RequestHelp struct {
	Actor domain.Actor
	HelpRequestInput
	Meta eventstore.Metadata
}

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

// RequestHelpHandler handles RequestHelp.
type RequestHelpHandler struct{ h *Help }

// Handle opens a help request for a student enrolled in the subtask's
// lecture and hands it to the analyzer. The subtask's lecture is found
// through the write-side lookup table and folded, the enrollment through the
// student's progress stream, so nothing depends on projection lag.
// Refusals: FORBIDDEN (user_id is not the caller and the caller is not ADMIN
// or the server; not a student; not enrolled), NOT_FOUND (no such live
// subtask), INVALID_REQUEST (fields).
func (r RequestHelpHandler) Handle(ctx context.Context, cmd RequestHelp) (domain.HelpRequest, error) {
	h, actor, in := r.h, cmd.Actor, cmd.HelpRequestInput
	user := in.UserID
	if user == 0 {
		user = actor.UserID
	}
	if user != actor.UserID && !actor.IsAdmin() && !actor.IsSystem() {
		return domain.HelpRequest{}, domain.Forbidden("user_id must be your own id")
	}
	if !actor.IsAdmin() && !actor.IsSystem() && actor.Role != domain.RoleStudent {
		return domain.HelpRequest{}, domain.Forbidden("only students ask for help")
	}
	if err := checkUser(ctx, h.cfg.Pool, actor, user); err != nil {
		return domain.HelpRequest{}, err
	}
	lectureID, err := lookupLecture(ctx, h.cfg.Pool, subtaskLectureQuery, in.SubtaskID, "subtask")
	if err != nil {
		return domain.HelpRequest{}, err
	}
	lec, _, err := Load(ctx, h.cfg.Store, domain.LectureStream(lectureID), domain.LectureDecider)
	if err != nil {
		return domain.HelpRequest{}, err
	}
	st, ok := lec.Subtask(in.SubtaskID)
	if !ok {
		return domain.HelpRequest{}, domain.NotFound("subtask")
	}
	prog, _, err := Load(ctx, h.cfg.Store, domain.ProgressStream(lectureID, user), domain.ProgressDecider)
	if err != nil {
		return domain.HelpRequest{}, err
	}
	if !prog.Enrolled() {
		return domain.HelpRequest{}, domain.Forbidden("the student is not enrolled in this subtask's lecture")
	}
	sessionID := in.SessionID
	if sessionID == 0 {
		if sessionID, err = h.SessionOf(ctx, lectureID, user); err != nil {
			return domain.HelpRequest{}, err
		}
	}
	id, err := pgdb.NextID(ctx, h.cfg.Pool, "help_request_ids", eventstore.CommandScope(ctx, "id:help_request_ids"))
	if err != nil {
		return domain.HelpRequest{}, err
	}
	meta := cmd.Meta
	meta.LectureID = lectureID
	if sessionID != 0 {
		meta.SessionID = sessionID
	}
	res, err := Execute(ctx, h.cfg.Store, domain.HelpStream(id), domain.HelpDecider,
		domain.HelpCommand(in.command(actor, h.now(), id, user, st.Ref(), lec.InstructorID(), sessionID)), meta)
	if err != nil {
		return domain.HelpRequest{}, err
	}
	if h.cfg.RequestAnalysis != nil {
		if err := h.cfg.RequestAnalysis(ctx, id, EncodeAnalysisRequest(id)); err != nil {
			// The request is stored; the analyzer's sweep picks it up.
			h.cfg.Logger.Error("request help analysis", "help_request_id", id, "error", err)
		}
	}
	waitReadModels(ctx, h.cfg.WaitFor, res.Position)
	return res.State, nil
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

// RespondToHelp is an instructor's (or an ADMIN's) answer to a help request.
type RespondToHelp struct {
	Actor         domain.Actor
	HelpRequestID int64
	// Answer's HelpResponseID is allocated by the handler.
	Answer domain.HelpAnswer
	Meta   eventstore.Metadata
}

// RespondToHelpHandler handles RespondToHelp.
type RespondToHelpHandler struct{ h *Help }

// Handle records the answer, whatever the request's status: an answer to a
// request the analyzer resolved supersedes the analyzer's, and the student
// is notified again. Refusals: NOT_FOUND, FORBIDDEN (not the lecture's
// instructor), INVALID_REQUEST.
func (r RespondToHelpHandler) Handle(ctx context.Context, cmd RespondToHelp) (domain.HelpRequest, error) {
	h := r.h
	stream := domain.HelpStream(cmd.HelpRequestID)
	hr, _, err := Load(ctx, h.cfg.Store, stream, domain.HelpDecider)
	if err != nil {
		return domain.HelpRequest{}, err
	}
	if !hr.Exists() {
		return domain.HelpRequest{}, domain.NotFound("help request")
	}
	// Refuse before allocating an id when the answer cannot be accepted.
	answer, probe := cmd.Answer, cmd.Answer
	probe.HelpResponseID = 1
	if _, err := domain.HelpDecider.Decide(hr, domain.RespondToHelp{Actor: cmd.Actor, At: h.now(), Answer: probe}); err != nil {
		return domain.HelpRequest{}, err
	}
	if answer.HelpResponseID, err = h.allocateResponse(ctx, cmd.HelpRequestID); err != nil {
		return domain.HelpRequest{}, err
	}
	return h.execute(ctx, stream, hr, domain.RespondToHelp{Actor: cmd.Actor, At: h.now(), Answer: answer}, cmd.Meta)
}

// GiveHelpFeedback is the requesting student's rating of one response.
type GiveHelpFeedback struct {
	Actor          domain.Actor
	HelpResponseID int64
	Rating         int
	FeedbackText   string
	Meta           eventstore.Metadata
}

// FeedbackGiven is what GiveHelpFeedback did.
type FeedbackGiven struct {
	// HelpRequest is the rated response's request after the feedback.
	HelpRequest domain.HelpRequest
	GiveHelpFeedback
}

// GiveHelpFeedbackHandler handles GiveHelpFeedback.
type GiveHelpFeedbackHandler struct{ h *Help }

// Handle records the rating. Refusals: NOT_FOUND (no such response),
// FORBIDDEN (not the student who asked), INVALID_REQUEST (rating 1–5,
// feedback_text), CONFLICT (rated already).
func (r GiveHelpFeedbackHandler) Handle(ctx context.Context, cmd GiveHelpFeedback) (FeedbackGiven, error) {
	h := r.h
	var helpRequestID int64
	err := h.cfg.Pool.QueryRow(ctx, `SELECT help_request_id FROM help_response_streams WHERE help_response_id = $1`, cmd.HelpResponseID).Scan(&helpRequestID)
	if errors.Is(err, pgx.ErrNoRows) {
		return FeedbackGiven{}, domain.NotFound("help response")
	}
	if err != nil {
		return FeedbackGiven{}, fmt.Errorf("look up help response %d: %w", cmd.HelpResponseID, err)
	}
	stream := domain.HelpStream(helpRequestID)
	hr, _, err := Load(ctx, h.cfg.Store, stream, domain.HelpDecider)
	if err != nil {
		return FeedbackGiven{}, err
	}
	hr, err = h.execute(ctx, stream, hr, domain.GiveHelpFeedback{
		Actor: cmd.Actor, At: h.now(), HelpResponseID: cmd.HelpResponseID, Rating: cmd.Rating, FeedbackText: cmd.FeedbackText,
	}, cmd.Meta)
	if err != nil {
		return FeedbackGiven{}, err
	}
	return FeedbackGiven{HelpRequest: hr, GiveHelpFeedback: cmd}, nil
}

// execute runs cmd on the stream of hr (as loaded) with meta completed with
// its lecture and session, and waits for the read models.
func (h *Help) execute(ctx context.Context, stream string, hr domain.HelpRequest, cmd domain.HelpCommand, meta eventstore.Metadata) (domain.HelpRequest, error) {
	meta.LectureID, meta.SessionID = hr.LectureID(), hr.SessionID()
	res, err := Execute(ctx, h.cfg.Store, stream, domain.HelpDecider, cmd, meta)
	if err != nil {
		return domain.HelpRequest{}, err
	}
	waitReadModels(ctx, h.cfg.WaitFor, res.Position)
	return res.State, nil
}
