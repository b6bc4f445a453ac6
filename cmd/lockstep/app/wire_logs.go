package app

import "context"

// wireLogs wires activity-log ingestion and the log writer.
func (a *App) wireLogs(ctx context.Context) error {
	return nil
}
