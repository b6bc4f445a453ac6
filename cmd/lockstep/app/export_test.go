package app

import "github.com/gin-gonic/gin"

// RoutesForTest is every route the engine serves, HTTP and WebSocket alike,
// for the authorization matrix (authz_matrix_test.go).
func (a *App) RoutesForTest() gin.RoutesInfo { return a.engine.Routes() }
