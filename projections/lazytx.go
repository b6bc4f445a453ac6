package projections

import (
	"context"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

// lazyTx is a batch's transaction that begins only when the projector first
// uses it. A batch the projector has nothing to do with (a help projector
// meeting a class's progress, the lectures projector meeting a step) then
// begins none, nor does a Pipelined projector's batch that only writes: the
// runner sends what there is whole, with the checkpoint's move (sendWhole).
// A read, or a pipeline grown past maxQueued, begins it.
type lazyTx struct {
	ctx   context.Context // the batch's: for the methods that take none
	begin func(context.Context) (pgx.Tx, error)
	tx    pgx.Tx
	// err is why it could not begin (the database, or errCheckpointMoved):
	// never the projector's own failure, whatever Handle makes of it.
	err error
}

// get begins the transaction on first use.
func (l *lazyTx) get(ctx context.Context) (pgx.Tx, error) {
	if l.tx != nil || l.err != nil {
		return l.tx, l.err
	}
	l.tx, l.err = l.begin(ctx)
	return l.tx, l.err
}

// begun reports whether the projector used the transaction.
func (l *lazyTx) begun() bool { return l.tx != nil }

// rollback ends a transaction that began and was not committed.
func (l *lazyTx) rollback(ctx context.Context) {
	if l.tx != nil {
		_ = l.tx.Rollback(ctx)
	}
}

func (l *lazyTx) Begin(ctx context.Context) (pgx.Tx, error) {
	tx, err := l.get(ctx)
	if err != nil {
		return nil, err
	}
	return tx.Begin(ctx)
}

func (l *lazyTx) Commit(ctx context.Context) error {
	tx, err := l.get(ctx)
	if err != nil {
		return err
	}
	return tx.Commit(ctx)
}

func (l *lazyTx) Rollback(ctx context.Context) error {
	if l.tx == nil {
		return nil
	}
	return l.tx.Rollback(ctx)
}

func (l *lazyTx) CopyFrom(ctx context.Context, t pgx.Identifier, cols []string, src pgx.CopyFromSource) (int64, error) {
	tx, err := l.get(ctx)
	if err != nil {
		return 0, err
	}
	return tx.CopyFrom(ctx, t, cols, src)
}

func (l *lazyTx) SendBatch(ctx context.Context, b *pgx.Batch) pgx.BatchResults {
	tx, err := l.get(ctx)
	if err != nil {
		return errBatch{err}
	}
	return tx.SendBatch(ctx, b)
}

func (l *lazyTx) LargeObjects() pgx.LargeObjects {
	tx, err := l.get(l.ctx)
	if err != nil {
		return pgx.LargeObjects{}
	}
	return tx.LargeObjects()
}

func (l *lazyTx) Prepare(ctx context.Context, name, sql string) (*pgconn.StatementDescription, error) {
	tx, err := l.get(ctx)
	if err != nil {
		return nil, err
	}
	return tx.Prepare(ctx, name, sql)
}

func (l *lazyTx) Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error) {
	tx, err := l.get(ctx)
	if err != nil {
		return pgconn.CommandTag{}, err
	}
	return tx.Exec(ctx, sql, args...)
}

func (l *lazyTx) Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error) {
	tx, err := l.get(ctx)
	if err != nil {
		return nil, err
	}
	return tx.Query(ctx, sql, args...)
}

func (l *lazyTx) QueryRow(ctx context.Context, sql string, args ...any) pgx.Row {
	tx, err := l.get(ctx)
	if err != nil {
		return errRow{err}
	}
	return tx.QueryRow(ctx, sql, args...)
}

func (l *lazyTx) Conn() *pgx.Conn {
	tx, err := l.get(l.ctx)
	if err != nil {
		return nil
	}
	return tx.Conn()
}

var _ pgx.Tx = (*lazyTx)(nil)
