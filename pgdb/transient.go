package pgdb

import (
	"errors"
	"io"
	"net"

	"github.com/jackc/pgx/v5/pgconn"
)

// Transient reports errors that say nothing about the request or the event
// being handled: the connection or the server went away (a terminated
// backend, 57P01, a restart, a network error), ran out of resources, or a
// concurrent transaction got in the way (serialization failure, deadlock, a
// lock not available). The same work may succeed when tried again; an API
// answers them 503 with a Retry-After, a projector waits and retries.
func Transient(err error) bool {
	if err == nil {
		return false
	}
	if errors.Is(err, pgconn.ErrConnClosed) || errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) || pgconn.SafeToRetry(err) {
		return true
	}
	var ce *pgconn.ConnectError
	if errors.As(err, &ce) {
		return true
	}
	var ne net.Error
	if errors.As(err, &ne) {
		return true
	}
	var pe *pgconn.PgError
	if errors.As(err, &pe) {
		if pe.Severity == "FATAL" || pe.Severity == "PANIC" {
			return true
		}
		switch pe.Code[:min(2, len(pe.Code))] {
		case "08", // connection exception
			"53", // insufficient resources
			"57", // operator intervention (shutdown, cancel)
			"58", // system error (I/O)
			"40": // serialization failure, deadlock
			return pe.Code != "57014" // query_canceled: a statement that ran too long is the caller's
		}
		return pe.Code == "55P03" // lock_not_available
	}
	return false
}
