package commands

import (
	"encoding/json"
	"net/http"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/lockstep/lockstep/domain"
	"github.com/lockstep/lockstep/eventstore"
)

// Routes mounts the help commands on r. authed authenticates; idem honours
// Idempotency-Key (after authed).
func (h *Help) Routes(r gin.IRouter, authed, idem gin.HandlerFunc) {
	idem = withReadYourWrites(idem)
	r.POST("/api/help/request", authed, idem, route("", helpRequestBody.command, h.RequestHelp.Handle, answer(http.StatusCreated, helpRequestedOf)))
	r.POST("/api/help/request/:help_request_id/respond", authed, idem, route("help_request_id", helpRespondBody.command, h.Respond.Handle, answer(http.StatusOK, helpRespondedOf)))
	r.POST("/api/help/feedback", authed, idem, route("", helpFeedbackBody.command, h.GiveFeedback.Handle, answer(http.StatusCreated, feedbackGivenOf)))
}

type helpRequestBody struct {
	UserID               *int64          `json:"user_id" binding:"omitempty,gt=0"`
	SubtaskID            int64           `json:"subtask_id" binding:"required,gt=0"`
	RequestType          string          `json:"request_type" binding:"omitempty,oneof=MANUAL AUTO"`
	ContextData          json.RawMessage `json:"context_data"`
	StuckDurationSeconds *int            `json:"stuck_duration_seconds" binding:"omitempty,gte=0"`
}

func (in helpRequestBody) command(_ int64, actor domain.Actor, meta eventstore.Metadata) RequestHelp {
	var user int64
	if in.UserID != nil {
		user = *in.UserID
	}
	return RequestHelp{Actor: actor, Meta: meta, HelpRequestInput: HelpRequestInput{
		UserID: user, SubtaskID: in.SubtaskID, RequestType: domain.HelpRequestType(in.RequestType),
		ContextData: in.ContextData, StuckDurationSeconds: in.StuckDurationSeconds,
	}}
}

type helpRequested struct {
	HelpRequestID int64             `json:"help_request_id"`
	Status        domain.HelpStatus `json:"status"`
	Message       string            `json:"message"`
}

func helpRequestedOf(hr domain.HelpRequest) helpRequested {
	return helpRequested{HelpRequestID: hr.ID(), Status: hr.Status(), Message: AnalyzingMessage}
}

type helpRespondBody struct {
	HelpType       string `json:"help_type" binding:"omitempty,oneof=TEXT VOICE HIGHLIGHT"`
	HelpContent    string `json:"help_content" binding:"required"`
	VoiceGuideText string `json:"voice_guide_text"`
}

func (in helpRespondBody) command(id int64, actor domain.Actor, meta eventstore.Metadata) RespondToHelp {
	return RespondToHelp{Actor: actor, HelpRequestID: id, Meta: meta, Answer: domain.HelpAnswer{
		HelpType: domain.HelpType(in.HelpType), HelpContent: in.HelpContent, VoiceGuideText: in.VoiceGuideText,
	}}
}

// HelpResponseView is a help response as the API shows it.
type HelpResponseView struct {
	ID             int64            `json:"id"`
	HelpType       domain.HelpType  `json:"help_type"`
	HelpContent    string           `json:"help_content"`
	VoiceGuideText string           `json:"voice_guide_text"`
	Responder      domain.Responder `json:"responder"`
	ResponderID    *int64           `json:"responder_id"`
	ProvidedAt     time.Time        `json:"provided_at"`
}

func helpResponseView(r domain.HelpResponse) HelpResponseView {
	v := HelpResponseView{ID: r.ID, HelpType: r.HelpType, HelpContent: r.HelpContent, VoiceGuideText: domain.SpokenText(r.VoiceGuideText, r.HelpContent, ""),
		Responder: r.Responder, ProvidedAt: r.ProvidedAt.UTC()}
	if r.ResponderID != 0 {
		id := r.ResponderID
		v.ResponderID = &id
	}
	return v
}

func helpRespondedOf(hr domain.HelpRequest) gin.H {
	r, _ := hr.LatestResponse()
	return gin.H{"help_request_id": hr.ID(), "status": hr.Status(), "help_response": helpResponseView(r)}
}

type helpFeedbackBody struct {
	HelpResponseID int64  `json:"help_response_id" binding:"required,gt=0"`
	Rating         int    `json:"rating" binding:"required,gte=1,lte=5"`
	FeedbackText   string `json:"feedback_text" binding:"max=1000"`
}

func (in helpFeedbackBody) command(_ int64, actor domain.Actor, meta eventstore.Metadata) GiveHelpFeedback {
	return GiveHelpFeedback{Actor: actor, HelpResponseID: in.HelpResponseID, Rating: in.Rating, FeedbackText: in.FeedbackText, Meta: meta}
}

// feedbackGivenOf is the created feedback. Its id (CONTRACT): a response is
// rated once, so the feedback is identified by the response it rates.
func feedbackGivenOf(f FeedbackGiven) gin.H {
	return gin.H{
		"id":               f.HelpResponseID,
		"help_response_id": f.HelpResponseID, "help_request_id": f.HelpRequest.ID(),
		"rating": f.Rating, "feedback_text": f.FeedbackText, "message": "소중한 의견 감사합니다.",
	}
}
