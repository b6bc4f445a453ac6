package app

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

// databaseError turns a failure to open DATABASE_URL into one line: what is
// wrong and what to do.
func databaseError(dbURL string, tool bool, err error) error {
	cfg, perr := pgx.ParseConfig(dbURL)
	if perr != nil {
		return errors.New("DATABASE_URL is not a PostgreSQL URL: use postgres://USER@HOST:5432/DATABASE?sslmode=disable")
	}
	where := fmt.Sprintf("%s:%d", cfg.Host, cfg.Port)
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		switch pgErr.Code {
		case "3D000":
			if tool {
				return fmt.Errorf("database %q does not exist on %s: check DATABASE_URL (replay and rebuild never create a database; serve and migrate do)", cfg.Database, where)
			}
			return fmt.Errorf("database %q does not exist on %s and could not be created: check DATABASE_URL", cfg.Database, where)
		case "28P01", "28000":
			return fmt.Errorf("PostgreSQL on %s refused user %q (%s): check the user and password in DATABASE_URL", where, cfg.User, pgErr.Message)
		}
		return fmt.Errorf("PostgreSQL on %s, database %q: %s: check DATABASE_URL", where, cfg.Database, pgErr.Message)
	}
	return fmt.Errorf("cannot connect to PostgreSQL on %s (%s): start PostgreSQL there or fix DATABASE_URL", where, rootCause(err))
}

// describeDatabase names a database URL's database and address, never its password.
func describeDatabase(dbURL string) string {
	cfg, err := pgx.ParseConfig(dbURL)
	if err != nil {
		return "(DATABASE_URL does not parse)"
	}
	return fmt.Sprintf("%q on %s:%d", cfg.Database, cfg.Host, cfg.Port)
}

// hostOf is a connection URL's host:port (never its credentials).
func hostOf(raw string) string {
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" {
		return "(unparseable address)"
	}
	return u.Host
}

// rootCause is the innermost error's text ("connection refused", "no such
// host"), which says more to an operator than the wrapping chain.
func rootCause(err error) string {
	var dnsErr *net.DNSError
	if errors.As(err, &dnsErr) {
		return "unknown host " + dnsErr.Name
	}
	if errors.Is(err, context.DeadlineExceeded) {
		return "timed out"
	}
	var sysErr *os.SyscallError
	if errors.As(err, &sysErr) {
		return sysErr.Err.Error() // "connection refused"
	}
	var opErr *net.OpError
	if errors.As(err, &opErr) {
		return opErr.Err.Error()
	}
	for {
		next := errors.Unwrap(err)
		if next == nil || next.Error() == "" {
			break
		}
		err = next
	}
	return strings.TrimSpace(err.Error())
}

// pinger runs at most one check at a time, each bounded by timeout even when
// the checked client ignores its context (the EventStoreDB client waits for a
// connection without one). A check that never returns is not started again
// until it does, so a hung client costs one goroutine, not one per check.
type pinger struct {
	ping    func(context.Context) error
	timeout time.Duration

	mu    sync.Mutex
	busy  bool      // a check is running
	since time.Time // when it started
	done  chan struct{}
	last  error
}

func newPinger(ping func(context.Context) error, timeout time.Duration) *pinger {
	return &pinger{ping: ping, timeout: timeout}
}

// Ping waits (at most the timeout, or until ctx ends) for a check's result.
func (p *pinger) Ping(ctx context.Context) error {
	p.mu.Lock()
	if !p.busy {
		p.busy, p.since, p.done = true, time.Now(), make(chan struct{})
		done := p.done
		go func() {
			cctx, cancel := context.WithTimeout(context.Background(), p.timeout)
			defer cancel()
			err := p.ping(cctx)
			p.mu.Lock()
			p.busy, p.last = false, err
			p.mu.Unlock()
			close(done)
		}()
	}
	done, since := p.done, p.since
	p.mu.Unlock()
	t := time.NewTimer(max(time.Until(since.Add(p.timeout)), 0))
	defer t.Stop()
	select {
	case <-done:
		p.mu.Lock()
		defer p.mu.Unlock()
		return p.last
	case <-t.C:
		return fmt.Errorf("no answer for %s", time.Since(since).Round(time.Second))
	case <-ctx.Done():
		return ctx.Err()
	}
}
