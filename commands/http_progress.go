package commands

import (
	"net/http"

	"github.com/gin-gonic/gin"

	"github.com/lockstep/lockstep/auth"
	"github.com/lockstep/lockstep/domain"
	"github.com/lockstep/lockstep/web"
)

// Routes mounts POST /api/progress/update on r. authed authenticates; idem
// honours Idempotency-Key (after authed).
func (p *Progress) Routes(r gin.IRouter, authed, idem gin.HandlerFunc) {
	idem = withReadYourWrites(idem)
	r.POST("/api/progress/update", authed, idem, p.postUpdate)
}

type progressUpdateRequest struct {
	SubtaskID int64  `json:"subtask_id" binding:"required,gt=0"`
	Status    string `json:"status" binding:"required,oneof=IN_PROGRESS COMPLETED"`
}

func (p *Progress) postUpdate(c *gin.Context) {
	var in progressUpdateRequest
	if !web.Bind(c, &in) {
		return
	}
	out, err := p.Update(c.Request.Context(), auth.ActorFrom(c), in.SubtaskID, domain.ProgressStatus(in.Status), 0, LectureRequestMeta(c, 0))
	if err != nil {
		web.Error(c, err)
		return
	}
	c.JSON(http.StatusOK, out)
}
