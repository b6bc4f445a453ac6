package app

import "context"

// wireSessions wires the sessions feature: its commands, queries, projectors and workers.
func (a *App) wireSessions(ctx context.Context) error {
	return nil
}
