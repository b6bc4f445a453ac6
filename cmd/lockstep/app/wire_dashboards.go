package app

import "context"

// wireDashboards wires the dashboards feature: its commands, queries, projectors and workers.
func (a *App) wireDashboards(ctx context.Context) error {
	return nil
}
