package app

import "context"

// wireLectures wires the lectures feature: its commands, queries, projectors and workers.
func (a *App) wireLectures(ctx context.Context) error {
	return nil
}
