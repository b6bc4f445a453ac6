package postgres_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/lockstep/lockstep/eventstore"
	"github.com/lockstep/lockstep/eventstore/eventstoretest"
	"github.com/lockstep/lockstep/eventstore/postgres"
	"github.com/lockstep/lockstep/pgtest"
)

func TestConformance(t *testing.T) {
	eventstoretest.Run(t, harness(postgres.Config{}))
}

// harness opens stores with cfg on a fresh database, with the suite's commit
// hooks.
func harness(cfg postgres.Config) func(t *testing.T) eventstoretest.Harness {
	return func(t *testing.T) eventstoretest.Harness {
		db := pgtest.New(t)
		// Room for many stress appenders at once, their readers and the bound
		// query — not one connection each: the test server is shared.
		pool := newPool(t, db, 24)
		hook := &eventstoretest.CommitHook{}
		c := cfg
		c.BeforeCommit, c.AfterLock, c.HoldCommit = hook.BeforeCommit, hook.AfterLock, hook.Holds
		open := func(*testing.T) eventstore.Store { return postgres.New(pool, c) }
		return eventstoretest.Harness{Store: open(t), Reopen: open, Commits: hook}
	}
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

// The append protocol (migration 00060): a transaction that took its id
// before it locked events — it wrote another table first — cannot append,
// whichever way it inserts; one that locks first can, whatever it writes
// afterwards; and events go only at the inserting transaction's positions.
func TestAppendProtocolIsEnforced(t *testing.T) {
	db := pgtest.New(t)
	ctx := context.Background()
	if _, err := db.Pool.Exec(ctx, `CREATE TABLE other (x int)`); err != nil {
		t.Fatal(err)
	}
	const insertEvent = `INSERT INTO events (position, stream, version, event_id, type, data, metadata, occurred_at, txid)
		VALUES (pg_current_xact_id()::text::bigint * 65536, $1, 1, gen_random_uuid(), 'T', '{}', '{}', now(), pg_current_xact_id())`
	copyEvent := func(tx pgx.Tx, stream string, txid int64) error {
		_, err := tx.CopyFrom(ctx, pgx.Identifier{"events"},
			[]string{"position", "stream", "version", "event_id", "type", "data", "metadata", "occurred_at", "txid"},
			pgx.CopyFromRows([][]any{{txid * 65536, stream, 1, uuid.New(), "T", "{}", "{}", time.Now(), strconv.FormatInt(txid, 10)}}))
		return err
	}
	refused := func(name, code string, steps func(tx pgx.Tx) error) {
		t.Helper()
		err := pgx.BeginFunc(ctx, db.Pool, steps)
		var pgErr *pgconn.PgError
		if !errors.As(err, &pgErr) || pgErr.Code != code {
			t.Errorf("%s: err = %v, want SQLSTATE %s", name, err, code)
		}
	}
	writeOther := func(tx pgx.Tx) error {
		_, err := tx.Exec(ctx, `INSERT INTO other VALUES (1)`)
		return err
	}
	refused("other table, then events_begin_append", "55000", func(tx pgx.Tx) error {
		if err := writeOther(tx); err != nil {
			return err
		}
		_, err := tx.Exec(ctx, `SELECT events_begin_append()`)
		return err
	})
	refused("other table, then INSERT", "55000", func(tx pgx.Tx) error {
		if err := writeOther(tx); err != nil {
			return err
		}
		_, err := tx.Exec(ctx, insertEvent, "late-insert")
		return err
	})
	refused("other table, then LOCK, then INSERT", "55000", func(tx pgx.Tx) error {
		if err := writeOther(tx); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `LOCK TABLE events IN ROW EXCLUSIVE MODE`); err != nil {
			return err
		}
		_, err := tx.Exec(ctx, insertEvent, "late-lock")
		return err
	})
	refused("LOCK, then the id by hand, then COPY", "55000", func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `LOCK TABLE events IN ROW EXCLUSIVE MODE`); err != nil {
			return err
		}
		var txid int64
		if err := tx.QueryRow(ctx, `SELECT pg_current_xact_id()::text::bigint`).Scan(&txid); err != nil {
			return err
		}
		return copyEvent(tx, "copy-by-hand", txid)
	})
	refused("another transaction's position", "23514", func(tx pgx.Tx) error {
		var txid int64
		if err := tx.QueryRow(ctx, `SELECT events_begin_append()::text::bigint`).Scan(&txid); err != nil {
			return err
		}
		return copyEvent(tx, "old-position", txid-1)
	})
	refused("a savepoint rolled back undoes the lock, and the append", "55000", func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `SAVEPOINT a`); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `SELECT events_begin_append()`); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `ROLLBACK TO SAVEPOINT a`); err != nil {
			return err
		}
		_, err := tx.Exec(ctx, insertEvent, "after-rollback")
		return err
	})

	var accepted []string
	accept := func(name string, steps func(tx pgx.Tx) error) {
		t.Helper()
		if err := pgx.BeginFunc(ctx, db.Pool, steps); err != nil {
			t.Errorf("%s: %v", name, err)
			return
		}
		accepted = append(accepted, name)
	}
	accept("begin-then-other-then-copy", func(tx pgx.Tx) error {
		var txid int64
		if err := tx.QueryRow(ctx, `SELECT events_begin_append()::text::bigint`).Scan(&txid); err != nil {
			return err
		}
		if err := writeOther(tx); err != nil {
			return err
		}
		return copyEvent(tx, "begin-then-other-then-copy", txid)
	})
	accept("insert-first", func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, insertEvent, "insert-first"); err != nil {
			return err
		}
		return writeOther(tx)
	})

	st := postgres.New(db.Pool, postgres.Config{})
	defer st.Close()
	got, err := st.ReadAll(ctx, 0, 100)
	if err != nil {
		t.Fatal(err)
	}
	var streams []string
	for _, e := range got {
		streams = append(streams, e.Stream)
	}
	if !reflect.DeepEqual(streams, accepted) {
		t.Fatalf("the log holds %v, want only the accepted appends %v", streams, accepted)
	}
}

// Readers share one bound query, yet each gets a bound computed after it
// asked: an append that returned is seen by the next read, however many
// readers are asking at the same time.
func TestSharedBoundSeesEveryEarlierAppend(t *testing.T) {
	db := pgtest.New(t)
	pool := newPool(t, db, 12)
	st := postgres.New(pool, postgres.Config{})
	defer st.Close()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	stop := make(chan struct{})
	var readers sync.WaitGroup
	for range 8 {
		readers.Go(func() {
			for {
				select {
				case <-stop:
					return
				default:
				}
				if _, err := st.HeadPosition(ctx); err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	defer func() {
		close(stop)
		readers.Wait()
	}()
	for i := range 100 {
		res, err := st.Append(ctx, fmt.Sprintf("s-%d", i), eventstore.NoStream, eventstore.EventData{ID: uuid.New(), Type: "T", Data: json.RawMessage(`{}`)})
		if err != nil {
			t.Fatal(err)
		}
		if head, err := st.HeadPosition(ctx); err != nil || head < res.Position {
			t.Fatalf("append %d: HeadPosition right after it returned = %d, %v; want at least %d", i, head, err, res.Position)
		}
		if evs, err := st.ReadAll(ctx, res.Position-1, 1); err != nil || len(evs) != 1 || evs[0].Position != res.Position {
			t.Fatalf("append %d: ReadAll right after it returned = %d events, %v; want the one at %d", i, len(evs), err, res.Position)
		}
	}
}

func TestQuerierConformance(t *testing.T) {
	eventstoretest.RunQuerier(t, func(t *testing.T) eventstore.Store {
		db := pgtest.New(t)
		s := postgres.New(db.Pool, postgres.Config{})
		t.Cleanup(s.Close)
		return s
	})
}
