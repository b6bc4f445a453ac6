package app

import (
	"context"

	"github.com/lockstep/lockstep/console"
)

// wireConsole serves the web front end (instructor console, student phone
// view at the QR's /join/{code}, analyst replay) on API instances.
func (a *App) wireConsole(context.Context) error {
	if a.cfg.API {
		console.Routes(a.engine)
	}
	return nil
}
