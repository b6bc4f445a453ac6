package app

import (
	"context"

	"github.com/lockstep/lockstep/analytics"
	"github.com/lockstep/lockstep/projections"
)

// wireAnalytics wires the analytics endpoints (event export, state at an
// instant, xAPI), the replay socket, all read straight from the PostgreSQL
// event store's events table. With EVENT_STORE=eventstoredb that table is
// empty: the endpoints are not mounted (404).
func (a *App) wireAnalytics(ctx context.Context) error {
	if a.cfg.AnalyticsOff {
		a.log.Info("analytics endpoints off (ANALYTICS=off)")
		return nil
	}
	if err := analytics.Supported(a.store); err != nil {
		a.log.Warn("analytics endpoints disabled", "reason", err)
		return nil
	}
	analytics.New(analytics.Config{
		Reader: a.AnalyticsReader(),
		Hub:    a.hub,
		Tokens: a.auth.Tokens(),
		Channels: func(sessionID int64) []string {
			return []string{projections.SessionStudentsChannel(sessionID), projections.SessionInstructorChannel(sessionID)}
		},
		PublicURL: a.cfg.PublicURL,
		Logger:    a.log,
	}).Routes(a.engine, a.authed)
	return nil
}

// AnalyticsReader reads past classrooms from the events table (for the
// replay CLI too).
func (a *App) AnalyticsReader() *analytics.Reader {
	return analytics.NewReader(a.pool, a.store)
}
