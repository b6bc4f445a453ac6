package postgres_test

import (
	"testing"

	"github.com/lockstep/lockstep/eventstore"
	"github.com/lockstep/lockstep/eventstore/eventstoretest"
	"github.com/lockstep/lockstep/eventstore/postgres"
	"github.com/lockstep/lockstep/pgtest"
)

func TestConformance(t *testing.T) {
	eventstoretest.Run(t, func(t *testing.T) eventstoretest.Harness {
		db := pgtest.New(t)
		hook := &eventstoretest.CommitHook{}
		open := func(*testing.T) eventstore.Store {
			return postgres.New(db.Pool, postgres.Config{BeforeCommit: hook.BeforeCommit, HoldCommit: hook.Holds})
		}
		return eventstoretest.Harness{Store: open(t), Reopen: open, Commits: hook}
	})
}
