package app

import (
	"context"
	"fmt"
	"time"

	"github.com/lockstep/lockstep/activitylog"
)

// wireLogs wires activity-log ingestion (POST /api/logs/activity and
// /api/logs/batch, publishing to the bus before answering 201) and, in the
// workers role, the log writer (consumer group activitylog.WriterGroup).
//
// The batch route applies its own 5 MiB body limit: routes() must skip the
// global 1 MiB limit for activitylog.BatchPath.
func (a *App) wireLogs(ctx context.Context) error {
	h := activitylog.NewHandler(activitylog.HandlerConfig{
		Bus:      a.bus,
		IDs:      activitylog.NewIDs(a.pool),
		Sessions: activitylog.NewReadModelSessions(a.pool, 2*time.Second),
		Logger:   a.log,
	})
	h.Routes(a.engine, a.authed)

	if a.cfg.Workers {
		sub, err := a.bus.Subscriber(activitylog.WriterGroup)
		if err != nil {
			return fmt.Errorf("log writer: %w", err)
		}
		w := activitylog.NewWriter(activitylog.WriterConfig{
			Subscriber: sub,
			Store:      activitylog.NewPGStore(a.pool),
			Logger:     a.log,
		})
		// Subscribe now (the subscription ends when the bus closes) so that
		// on the memory bus no log accepted before the workers start is missed.
		if err := w.Subscribe(context.WithoutCancel(ctx)); err != nil {
			return err
		}
		a.workers = append(a.workers, w.Run)
	}
	return nil
}
