package app

import (
	"context"
	"time"

	"github.com/lockstep/lockstep/projections"
	"github.com/lockstep/lockstep/readapi"
)

// DashboardNow is the clock the dashboards take "today" from (the progress
// trend ends at its UTC date). Tests set it before starting a server.
var DashboardNow = time.Now

// wireDashboards wires the instructor dashboards: the "dashboard" projector
// (read models and the lecture dashboard socket's messages), the dashboard
// queries and the socket.
func (a *App) wireDashboards(ctx context.Context) error {
	a.addProjector(projections.NewDashboard(a.announcer))
	(&readapi.DashboardQueries{
		Pool: a.pool, Hub: a.hub, Tokens: a.auth.Tokens(), Producer: projections.DashboardProjector,
		Channel: projections.DashboardLectureChannel, Now: func() time.Time { return DashboardNow() }, Logger: a.log,
	}).Routes(a.engine, a.authed)
	return nil
}
