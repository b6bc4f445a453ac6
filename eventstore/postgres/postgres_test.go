package postgres_test

import (
	"context"
	"encoding/json"
	"testing"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/lockstep/lockstep/eventstore"
	"github.com/lockstep/lockstep/eventstore/eventstoretest"
	"github.com/lockstep/lockstep/eventstore/postgres"
	"github.com/lockstep/lockstep/pgtest"
)

func TestConformance(t *testing.T) {
	eventstoretest.Run(t, func(t *testing.T) eventstoretest.Harness {
		db := pgtest.New(t)
		// Room for every stress appender at once, its readers and the bound query.
		pool := newPool(t, db, eventstoretest.StressAppenders+8)
		hook := &eventstoretest.CommitHook{}
		open := func(*testing.T) eventstore.Store {
			return postgres.New(pool, postgres.Config{BeforeCommit: hook.BeforeCommit, AfterLock: hook.AfterLock, HoldCommit: hook.Holds})
		}
		return eventstoretest.Harness{Store: open(t), Reopen: open, Commits: hook}
	})
}

func newPool(t testing.TB, db *pgtest.DB, maxConns int32) *pgxpool.Pool {
	t.Helper()
	cfg, err := pgxpool.ParseConfig(db.URL)
	if err != nil {
		t.Fatal(err)
	}
	cfg.MaxConns = maxConns
	pool, err := pgxpool.NewWithConfig(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	return pool
}

// An open transaction that is no append — here in another database of the
// same server, holding a transaction id — must not hide new events.
func TestUnrelatedOpenTransactionDoesNotHoldReadersBack(t *testing.T) {
	db := pgtest.New(t)
	other := pgtest.NewEmpty(t)
	ctx := context.Background()
	tx, err := other.Pool.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback(ctx)
	if _, err := tx.Exec(ctx, `SELECT pg_current_xact_id()`); err != nil {
		t.Fatal(err)
	}

	st := postgres.New(db.Pool, postgres.Config{})
	defer st.Close()
	res, err := st.Append(ctx, "lecture-1", eventstore.NoStream, eventstore.EventData{ID: uuid.New(), Type: "LectureCreated", Data: json.RawMessage(`{}`)})
	if err != nil {
		t.Fatal(err)
	}
	got, err := st.ReadAll(ctx, 0, 10)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 1 || got[0].Position != res.Position {
		t.Fatalf("ReadAll while an unrelated transaction is open = %d events, want the one just appended", len(got))
	}
	head, err := st.HeadPosition(ctx)
	if err != nil || head != res.Position {
		t.Fatalf("HeadPosition = %d, %v; want %d", head, err, res.Position)
	}
}
