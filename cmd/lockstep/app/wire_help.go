package app

import "context"

// wireHelp wires the help feature: its commands, queries, projectors and workers.
func (a *App) wireHelp(ctx context.Context) error {
	return nil
}
