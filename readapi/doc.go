// Package readapi is Lockstep's query side: the HTTP endpoints that answer
// from the read models the projectors maintain in PostgreSQL (lectures,
// tasks, progress, dashboards, statistics, analytics and replay). It imports
// neither the command handlers nor the projectors' internals: it reads tables.
package readapi
