// Package admin serves the operators' endpoints over the projections: each
// projector's position, lag and health, the events it quarantined (with
// retry and skip), and online rebuilds.
package admin

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/lockstep/lockstep/auth"
	"github.com/lockstep/lockstep/domain"
	"github.com/lockstep/lockstep/eventstore"
	"github.com/lockstep/lockstep/projections"
	"github.com/lockstep/lockstep/web"
)

// Projections serves /api/admin/projections.
type Projections struct {
	Group  *projections.Group
	Store  eventstore.Store
	Logger *slog.Logger

	mu         sync.Mutex
	rebuilding map[string]time.Time
}

// Routes mounts the endpoints (ADMIN only).
func (p *Projections) Routes(r gin.IRouter, authed gin.HandlerFunc) {
	g := r.Group("/api/admin/projections", authed, auth.Require(domain.RoleAdmin))
	g.GET("", p.list)
	g.POST("/:name/rebuild", p.rebuild)
	g.POST("/:name/unpark", p.unpark)
	g.GET("/:name/quarantine", p.quarantine)
	g.POST("/:name/quarantine/:position/retry", p.retry)
	g.POST("/:name/quarantine/:position/skip", p.skip)
}

// listedQuarantine is how many quarantined events the list shows per
// projector (the count is always complete; the sub-route lists them all).
const listedQuarantine = 100

type projectionView struct {
	Name       string  `json:"name"`
	Position   uint64  `json:"position"`
	LagEvents  int64   `json:"lag_events"`
	LagSeconds float64 `json:"lag_seconds"`
	// Status is running, parked, rebuilding or stopped.
	Status      string     `json:"status"`
	LastError   string     `json:"last_error"`
	Rebuilding  bool       `json:"rebuilding"`
	RebuildFrom *time.Time `json:"rebuild_started_at"`
	// Quarantined counts the events the projector skipped because it could
	// not apply them; Quarantine lists the first of them.
	Quarantined int64                          `json:"quarantined"`
	Quarantine  []projections.QuarantinedEvent `json:"quarantine"`
}

func (p *Projections) list(c *gin.Context) {
	ctx := c.Request.Context()
	out := []projectionView{}
	for _, r := range p.Group.Runners() {
		s := r.State()
		v := projectionView{Name: s.Name, Position: s.Position, Status: s.Reported(), LastError: s.LastError}
		q, err := r.Quarantined(ctx, listedQuarantine)
		if err != nil {
			web.Error(c, err)
			return
		}
		if q == nil {
			q = []projections.QuarantinedEvent{}
		}
		v.Quarantine, v.Quarantined = q, s.Quarantined
		if int64(len(q)) > v.Quarantined || len(q) < listedQuarantine {
			v.Quarantined = int64(len(q)) // the runner's count is refreshed once a second
		}
		if counter, ok := p.Store.(projections.Counter); ok {
			n, err := counter.CountAfter(ctx, s.Position)
			if err != nil {
				web.Error(c, err)
				return
			}
			v.LagEvents = n
		}
		if v.LagEvents > 0 {
			if next, err := p.Store.ReadAll(ctx, s.Position, 1); err == nil && len(next) == 1 {
				v.LagSeconds = time.Since(next[0].OccurredAt).Seconds()
			}
		}
		p.mu.Lock()
		if t, ok := p.rebuilding[s.Name]; ok {
			v.Rebuilding, v.RebuildFrom, v.Status = true, &t, projections.StatusRebuilding
		} else if !s.RebuildStartedAt.IsZero() {
			t := s.RebuildStartedAt
			v.Rebuilding, v.RebuildFrom = true, &t
		}
		p.mu.Unlock()
		out = append(out, v)
	}
	c.JSON(http.StatusOK, gin.H{"projections": out})
}

func (p *Projections) rebuild(c *gin.Context) {
	name := c.Param("name")
	r, ok := p.Group.Runner(name)
	if !ok {
		web.Error(c, domain.NotFound("projection"))
		return
	}
	p.mu.Lock()
	if p.rebuilding == nil {
		p.rebuilding = map[string]time.Time{}
	}
	if _, busy := p.rebuilding[name]; busy {
		p.mu.Unlock()
		web.Error(c, domain.Errorf(domain.CodeConflict, "projection %s is already being rebuilt", name))
		return
	}
	started := time.Now().UTC()
	p.rebuilding[name] = started
	p.mu.Unlock()

	go func() {
		defer func() {
			p.mu.Lock()
			delete(p.rebuilding, name)
			p.mu.Unlock()
		}()
		ctx := context.WithoutCancel(c.Request.Context())
		if err := r.RebuildOnline(ctx, nil); err != nil {
			p.Logger.Error("projection rebuild failed", "projector", name, "error", err)
			return
		}
		p.Logger.Info("projection rebuilt", "projector", name, "duration_ms", time.Since(started).Milliseconds())
	}()
	c.JSON(http.StatusAccepted, gin.H{"name": name, "status": projections.StatusRebuilding, "started_at": started})
}

func (p *Projections) runner(c *gin.Context) (*projections.Runner, bool) {
	r, ok := p.Group.Runner(c.Param("name"))
	if !ok {
		web.Error(c, domain.NotFound("projection"))
	}
	return r, ok
}

// position parses the {position} path parameter (400 naming it when it is
// not a positive integer).
func position(c *gin.Context) (uint64, bool) {
	pos, err := strconv.ParseUint(c.Param("position"), 10, 63)
	if err != nil || pos == 0 {
		web.Error(c, domain.Invalid("position must be a positive integer", map[string]string{"position": "must be a positive integer"}))
		return 0, false
	}
	return pos, true
}

func (p *Projections) quarantine(c *gin.Context) {
	r, ok := p.runner(c)
	if !ok {
		return
	}
	q, err := r.Quarantined(c.Request.Context(), 0)
	if err != nil {
		web.Error(c, err)
		return
	}
	if q == nil {
		q = []projections.QuarantinedEvent{}
	}
	c.JSON(http.StatusOK, gin.H{"name": r.Name(), "quarantine": q})
}

// retry re-applies a quarantined event now (out of order) and removes it
// from the quarantine; 409 with the error when it still fails.
func (p *Projections) retry(c *gin.Context) {
	p.onQuarantined(c, "applied", func(ctx context.Context, r *projections.Runner, pos uint64) error {
		return r.RetryQuarantined(ctx, pos)
	})
}

// skip removes a quarantined event from the quarantine without applying it.
func (p *Projections) skip(c *gin.Context) {
	p.onQuarantined(c, "skipped", func(ctx context.Context, r *projections.Runner, pos uint64) error {
		return r.SkipQuarantined(ctx, pos)
	})
}

// onQuarantined does an operator's action on the quarantined event at
// :position of projector :name, logs it and answers its status.
func (p *Projections) onQuarantined(c *gin.Context, status string, do func(context.Context, *projections.Runner, uint64) error) {
	r, ok := p.runner(c)
	if !ok {
		return
	}
	pos, ok := position(c)
	if !ok {
		return
	}
	err := do(c.Request.Context(), r, pos)
	var still *projections.StillFailingError
	switch {
	case errors.Is(err, projections.ErrNotQuarantined):
		web.Error(c, domain.NotFound("quarantined event"))
	case errors.As(err, &still):
		web.Error(c, &domain.Error{Code: domain.CodeConflict, Message: still.Error(), Details: map[string]any{"position": pos}})
	case err != nil:
		web.Error(c, err)
	default:
		p.Logger.Info("quarantined event "+status+" by an operator", "projector", r.Name(), "position", pos, "actor", auth.ActorFrom(c).UserID)
		c.JSON(http.StatusOK, gin.H{"name": r.Name(), "position": pos, "status": status})
	}
}

// unpark lets a parked projector try again from its checkpoint (a no-op for
// a running one).
func (p *Projections) unpark(c *gin.Context) {
	r, ok := p.runner(c)
	if !ok {
		return
	}
	if err := r.Unpark(c.Request.Context()); err != nil {
		web.Error(c, err)
		return
	}
	p.Logger.Info("projector unparked by an operator", "projector", r.Name(), "actor", auth.ActorFrom(c).UserID)
	c.JSON(http.StatusOK, gin.H{"name": r.Name(), "status": projections.StatusRunning})
}
