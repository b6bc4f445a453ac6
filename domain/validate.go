package domain

import (
	"errors"
	"fmt"
	"net/url"
	"strings"
	"unicode/utf8"
)

// Field limits shared by the aggregates (lengths count characters, not bytes).
const (
	MaxTitleLen        = 200
	MaxDescriptionLen  = 5000
	MaxGuideTextLen    = 2000
	MaxElementHintLen  = 500
	MaxURLLen          = 2048
	MaxMessageLen      = 500
	MaxFeedbackTextLen = 1000
	MaxHelpContentLen  = 2000
	MaxDiagnosisLen    = 2000
	MaxReasonLen       = 500

	// MaxOrderIndex bounds order_index: far below the int4 column's limit,
	// so that "after the last one" (max+1) can never overflow it.
	MaxOrderIndex = 1_000_000
)

// fields collects every invalid field of one command, so that a single
// INVALID_REQUEST names them all.
type fields map[string]string

// requiredText checks a trimmed, required text of at most max characters
// that a text column can store.
func (f fields) requiredText(name, v string, max int) {
	if why := TextProblem(v); why != "" {
		f[name] = why
		return
	}
	switch n := utf8.RuneCountInString(v); {
	case strings.TrimSpace(v) == "":
		f[name] = "is required"
	case n > max:
		f[name] = fmt.Sprintf("must be at most %d characters", max)
	}
}

// optionalText checks an optional text of at most max characters that a
// text column can store.
func (f fields) optionalText(name, v string, max int) {
	if why := TextProblem(v); why != "" {
		f[name] = why
		return
	}
	if utf8.RuneCountInString(v) > max {
		f[name] = fmt.Sprintf("must be at most %d characters", max)
	}
}

// httpURL checks an optional http(s) URL.
func (f fields) httpURL(name, v string) {
	if v == "" {
		return
	}
	if why := TextProblem(v); why != "" {
		f[name] = why
		return
	}
	if utf8.RuneCountInString(v) > MaxURLLen {
		f[name] = fmt.Sprintf("must be at most %d characters", MaxURLLen)
		return
	}
	u, err := url.Parse(v)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		f[name] = "must be an http or https URL"
	}
}

// orderIndex checks an order_index (1 to MaxOrderIndex).
func (f fields) orderIndex(name string, v int) {
	f.int32(name, int64(v), 1, MaxOrderIndex)
}

// int32 checks an integer that lands in an int4 column, between min and max.
func (f fields) int32(name string, v, min, max int64) {
	if why := Int32Problem(v, min, max); why != "" {
		f[name] = why
	}
}

// json checks a JSON document that lands in a jsonb column (empty is fine).
func (f fields) json(name string, raw []byte) {
	if len(raw) == 0 {
		return
	}
	if path, why := JSONFieldProblem(raw); why != "" {
		if path != "" && path[0] != '[' {
			name += "."
		}
		name += path
		f[name] = why
	}
}

// err returns nil when no field is invalid, else one *Error naming them all.
func (f fields) err() error {
	if len(f) == 0 {
		return nil
	}
	return Invalid("invalid request", f)
}

// errInternal marks a command the application layer built wrongly (a missing
// allocated id, a plan of another lecture): a bug, never the client's fault,
// so it is a plain error that maps to INTERNAL.
func errInternal(format string, args ...any) error {
	return errors.New("domain: " + fmt.Sprintf(format, args...))
}
