package app

import (
	"context"

	"github.com/lockstep/lockstep/commands"
	"github.com/lockstep/lockstep/lecturecache"
	"github.com/lockstep/lockstep/projections"
	"github.com/lockstep/lockstep/readapi"
)

// wireLectures wires the lectures feature: lecture, task, subtask, enrollment
// and progress commands, the "lectures" projector, their queries, and the
// optional Redis cache of lecture and task documents (REDIS_URL).
func (a *App) wireLectures(ctx context.Context) error {
	proj := &projections.Lectures{}
	queries := &readapi.LectureQueries{Pool: a.pool}
	if a.cfg.RedisURL != "" {
		// Keys are prefixed with the database's name: documents belong to it.
		cache, err := lecturecache.New(ctx, lecturecache.Config{
			URL: a.cfg.RedisURL, Prefix: a.pool.Config().ConnConfig.Database + ":", Logger: a.log,
		})
		if err != nil {
			// A cache must not take the API down: serve from PostgreSQL.
			a.log.Error("lecture cache disabled: Redis does not answer", "error", err)
		} else {
			proj.Cache, queries.Cache = cache, cache
			a.workers = append(a.workers, func(ctx context.Context) error {
				<-ctx.Done()
				return cache.Close()
			})
		}
	}
	a.addProjector(proj)

	lectures := commands.NewLectures(commands.LecturesConfig{Store: a.store, Pool: a.pool, WaitFor: a.group.WaitFor})
	lectures.Routes(a.engine, a.authed, a.idem)
	progress := commands.NewProgress(lectures)
	progress.SessionOf = commands.LiveSessionOf(a.pool)
	progress.Routes(a.engine, a.authed, a.idem)

	queries.Routes(a.engine, a.authed)
	(&readapi.ProgressQueries{Pool: a.pool}).Routes(a.engine, a.authed)
	return nil
}
