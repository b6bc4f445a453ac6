// Package admin serves the operators' endpoints over the projections: each
// projector's position, lag and health, and online rebuilds.
package admin

import (
	"context"
	"log/slog"
	"net/http"
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
}

type projectionView struct {
	Name        string     `json:"name"`
	Position    uint64     `json:"position"`
	LagEvents   int64      `json:"lag_events"`
	LagSeconds  float64    `json:"lag_seconds"`
	Status      string     `json:"status"`
	LastError   string     `json:"last_error"`
	Rebuilding  bool       `json:"rebuilding"`
	RebuildFrom *time.Time `json:"rebuild_started_at"`
}

func (p *Projections) list(c *gin.Context) {
	ctx := c.Request.Context()
	out := []projectionView{}
	for _, r := range p.Group.Runners() {
		s := r.State()
		v := projectionView{Name: s.Name, Position: s.Position, Status: s.Status, LastError: s.LastError}
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
	c.JSON(http.StatusAccepted, gin.H{"name": name, "status": "REBUILDING", "started_at": started})
}
