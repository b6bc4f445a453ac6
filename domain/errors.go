// Package domain holds Lockstep's business rules: the aggregates (as deciders),
// their events and commands, and the typed errors every layer maps to the API
// contract. It imports only the standard library.
package domain

import (
	"errors"
	"fmt"
)

// Code is a machine-readable error code, exactly as the API contract names it.
type Code string

// The contract's error codes.
const (
	CodeInvalidRequest Code = "INVALID_REQUEST"
	CodeUnauthorized   Code = "UNAUTHORIZED"
	CodeTokenExpired   Code = "TOKEN_EXPIRED"
	CodeForbidden      Code = "FORBIDDEN"
	CodeNotFound       Code = "NOT_FOUND"
	CodeConflict       Code = "CONFLICT"
	CodeInvalidState   Code = "INVALID_STATE"
	CodeTooLarge       Code = "PAYLOAD_TOO_LARGE"
	CodeRateLimited    Code = "RATE_LIMITED"
	CodeUnavailable    Code = "UNAVAILABLE"
	CodeInternal       Code = "INTERNAL"
)

// Error is the one error type that crosses layers. Its Message is safe to show
// to a client; Details names the offending fields (or indexes) when there are any.
type Error struct {
	Code    Code
	Message string
	Details map[string]any
}

func (e *Error) Error() string { return string(e.Code) + ": " + e.Message }

// Is makes errors.Is(err, domain.ErrNotFound) true for every *Error with that code.
func (e *Error) Is(target error) bool {
	var t *Error
	if !errors.As(target, &t) {
		return false
	}
	return t.Message == "" && t.Code == e.Code
}

// Sentinels for errors.Is; any *Error with the same code matches them.
var (
	ErrInvalid      = &Error{Code: CodeInvalidRequest}
	ErrUnauthorized = &Error{Code: CodeUnauthorized}
	ErrTokenExpired = &Error{Code: CodeTokenExpired}
	ErrForbidden    = &Error{Code: CodeForbidden}
	ErrNotFound     = &Error{Code: CodeNotFound}
	ErrConflict     = &Error{Code: CodeConflict}
	ErrInvalidState = &Error{Code: CodeInvalidState}
	ErrRateLimited  = &Error{Code: CodeRateLimited}
)

// Errorf builds an *Error with a formatted, client-safe message.
func Errorf(code Code, format string, args ...any) *Error {
	return &Error{Code: code, Message: fmt.Sprintf(format, args...)}
}

// Invalid reports invalid input; fields maps each offending field (or index)
// to what is wrong with it.
func Invalid(message string, fields map[string]string) *Error {
	d := make(map[string]any, len(fields))
	for k, v := range fields {
		d[k] = v
	}
	return &Error{Code: CodeInvalidRequest, Message: message, Details: d}
}

// NotFound reports a resource that does not exist or that the caller may not know of.
func NotFound(what string) *Error {
	return &Error{Code: CodeNotFound, Message: what + " not found"}
}

// Forbidden reports an authenticated caller who may not do this.
func Forbidden(message string) *Error {
	return &Error{Code: CodeForbidden, Message: message}
}

// InvalidState reports a command that its target's current state does not allow.
func InvalidState(format string, args ...any) *Error {
	return Errorf(CodeInvalidState, format, args...)
}

// ErrorCode returns the code of err if it is (or wraps) an *Error, else CodeInternal.
func ErrorCode(err error) Code {
	var e *Error
	if errors.As(err, &e) {
		return e.Code
	}
	return CodeInternal
}
