package app

import (
	"context"

	"github.com/gin-gonic/gin"

	"github.com/lockstep/lockstep/apidocs"
)

// wireDocs serves the API's description on API instances (public, no token):
// /openapi.json|yaml, /asyncapi.json|yaml and /docs, which renders both.
func (a *App) wireDocs(context.Context) error {
	if a.cfg.API {
		apidocs.Routes(a.engine)
	}
	return nil
}

// Routes lists the engine's routes (method and gin path), for the test that
// compares them with the API documents.
func (a *App) Routes() gin.RoutesInfo { return a.engine.Routes() }
