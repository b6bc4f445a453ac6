package commands

import (
	"encoding/json"
	"net/http"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/lockstep/lockstep/auth"
	"github.com/lockstep/lockstep/domain"
	"github.com/lockstep/lockstep/web"
)

// Routes mounts the help commands on r. authed authenticates; idem honours
// Idempotency-Key (after authed).
func (h *Help) Routes(r gin.IRouter, authed, idem gin.HandlerFunc) {
	idem = withReadYourWrites(idem)
	r.POST("/api/help/request", authed, idem, h.postRequest)
	r.POST("/api/help/request/:help_request_id/respond", authed, idem, h.postRespond)
	r.POST("/api/help/feedback", authed, idem, h.postFeedback)
}

type helpRequestBody struct {
	UserID               *int64          `json:"user_id" binding:"omitempty,gt=0"`
	SubtaskID            int64           `json:"subtask_id" binding:"required,gt=0"`
	RequestType          string          `json:"request_type" binding:"omitempty,oneof=MANUAL AUTO"`
	ContextData          json.RawMessage `json:"context_data"`
	StuckDurationSeconds *int            `json:"stuck_duration_seconds" binding:"omitempty,gte=0"`
}

func (in helpRequestBody) input(user int64) HelpRequestInput {
	return HelpRequestInput{
		UserID: user, SubtaskID: in.SubtaskID, RequestType: domain.HelpRequestType(in.RequestType),
		ContextData: in.ContextData, StuckDurationSeconds: in.StuckDurationSeconds,
	}
}

type helpRequested struct {
	HelpRequestID int64             `json:"help_request_id"`
	Status        domain.HelpStatus `json:"status"`
	Message       string            `json:"message"`
}

func (h *Help) postRequest(c *gin.Context) {
	var in helpRequestBody
	if !web.Bind(c, &in) {
		return
	}
	actor := auth.ActorFrom(c)
	var user int64
	if in.UserID != nil {
		user = *in.UserID
	}
	hr, _, err := h.Request(c.Request.Context(), actor, in.input(user), LectureRequestMeta(c, 0))
	if err != nil {
		web.Error(c, err)
		return
	}
	c.JSON(http.StatusCreated, helpRequested{HelpRequestID: hr.ID(), Status: hr.Status(), Message: AnalyzingMessage})
}

type helpRespondBody struct {
	HelpType       string `json:"help_type" binding:"omitempty,oneof=TEXT VOICE HIGHLIGHT"`
	HelpContent    string `json:"help_content" binding:"required"`
	VoiceGuideText string `json:"voice_guide_text"`
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
	v := HelpResponseView{ID: r.ID, HelpType: r.HelpType, HelpContent: r.HelpContent, VoiceGuideText: r.VoiceGuideText,
		Responder: r.Responder, ProvidedAt: r.ProvidedAt.UTC()}
	if r.ResponderID != 0 {
		id := r.ResponderID
		v.ResponderID = &id
	}
	return v
}

func (h *Help) postRespond(c *gin.Context) {
	id, ok := web.IDParam(c, "help_request_id")
	if !ok {
		return
	}
	var in helpRespondBody
	if !web.Bind(c, &in) {
		return
	}
	hr, _, err := h.Respond(c.Request.Context(), auth.ActorFrom(c), id, domain.HelpAnswer{
		HelpType: domain.HelpType(in.HelpType), HelpContent: in.HelpContent, VoiceGuideText: in.VoiceGuideText,
	}, LectureRequestMeta(c, 0))
	if err != nil {
		web.Error(c, err)
		return
	}
	r, _ := hr.LatestResponse()
	view := helpResponseView(r)
	c.JSON(http.StatusOK, gin.H{"help_request_id": hr.ID(), "status": hr.Status(), "help_response": view})
}

type helpFeedbackBody struct {
	HelpResponseID int64  `json:"help_response_id" binding:"required,gt=0"`
	Rating         int    `json:"rating" binding:"required,gte=1,lte=5"`
	FeedbackText   string `json:"feedback_text" binding:"max=1000"`
}

func (h *Help) postFeedback(c *gin.Context) {
	var in helpFeedbackBody
	if !web.Bind(c, &in) {
		return
	}
	hr, _, err := h.Feedback(c.Request.Context(), auth.ActorFrom(c), in.HelpResponseID, in.Rating, in.FeedbackText, LectureRequestMeta(c, 0))
	if err != nil {
		web.Error(c, err)
		return
	}
	// The created feedback's id (CONTRACT): a response is rated once, so the
	// feedback is identified by the response it rates.
	c.JSON(http.StatusCreated, gin.H{
		"id":               in.HelpResponseID,
		"help_response_id": in.HelpResponseID, "help_request_id": hr.ID(),
		"rating": in.Rating, "feedback_text": in.FeedbackText, "message": "소중한 의견 감사합니다.",
	})
}
