package app

import "context"

// wireAnalytics wires the analytics feature: its commands, queries, projectors and workers.
func (a *App) wireAnalytics(ctx context.Context) error {
	return nil
}
