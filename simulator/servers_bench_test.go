package simulator_test

import (
	"os"
	"testing"

	"github.com/lockstep/lockstep/bus"
	"github.com/lockstep/lockstep/cmd/lockstep/app"
	"github.com/lockstep/lockstep/cmd/lockstep/app/apptest"
)

// benchServers starts what a class benchmark runs against: by default one
// instance (BUS=memory), which serves the instructor and the students. With
// LOCKSTEP_BENCH_BUS=postgres, two instances on one database, BUS=postgres:
// the instructor's (which runs the projectors) and the students' (API and
// sockets only), so that every command a student sends waits for
// projectors in the other process, and every message a student receives
// crossed the bus.
func benchServers(b *testing.B) (instructor, students *apptest.Server) {
	switch os.Getenv("LOCKSTEP_BENCH_BUS") {
	case "", "memory":
		s := apptest.Start(b)
		return s, s
	case "postgres":
		a := apptest.Start(b, apptest.WithConfig(func(c *app.Config) { c.Bus = bus.BackendPostgres }))
		s := apptest.Start(b, apptest.WithDB(a.DB), apptest.WithConfig(func(c *app.Config) {
			c.Bus, c.Projectors = bus.BackendPostgres, false
		}))
		return a, s
	default:
		b.Fatalf("LOCKSTEP_BENCH_BUS=%q: memory or postgres", os.Getenv("LOCKSTEP_BENCH_BUS"))
		return nil, nil
	}
}
