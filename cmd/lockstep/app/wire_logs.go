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
// Both routes take an Idempotency-Key (activitylog.KeyHeader): a retry
// after a lost answer stores nothing twice (keys pruned by housekeeping).
//
// The batch route applies its own 5 MiB body limit: routes() must skip the
// global 1 MiB limit for activitylog.BatchPath.
//
// What the writer cannot store goes to the dead-letter table, served by
// GET /api/admin/logs/dead-letters (ADMIN) and counted by the gauge
// lockstep_activity_log_dead_letters on /metrics.
func (a *App) wireLogs(ctx context.Context) error {
	h := activitylog.NewHandler(activitylog.HandlerConfig{
		Bus:      a.bus,
		IDs:      activitylog.NewIDs(a.pool),
		Sessions: activitylog.NewReadModelSessions(a.pool, 2*time.Second),
		Keys:     activitylog.NewPGKeys(a.pool),
		Logger:   a.log,
	})
	h.Routes(a.engine, a.authed)
	dead := activitylog.NewPGDeadLetters(a.pool)
	dead.Routes(a.engine, a.authed, a.log)
	if err := a.metrics.Registry.Register(dead.Collector()); err != nil {
		return fmt.Errorf("dead-letter metric: %w", err)
	}

	if a.cfg.Workers {
		sub, err := a.bus.Subscriber(activitylog.WriterGroup)
		if err != nil {
			return fmt.Errorf("log writer: %w", err)
		}
		w := activitylog.NewWriter(activitylog.WriterConfig{
			Subscriber:  sub,
			Store:       activitylog.NewPGStore(a.pool),
			DeadLetters: dead,
			Logger:      a.log,
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
