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
)

// fields collects every invalid field of one command, so that a single
// INVALID_REQUEST names them all.
type fields map[string]string

// requiredText checks a trimmed, required text of at most max characters.
func (f fields) requiredText(name, v string, max int) {
	switch n := utf8.RuneCountInString(v); {
	case strings.TrimSpace(v) == "":
		f[name] = "is required"
	case n > max:
		f[name] = fmt.Sprintf("must be at most %d characters", max)
	}
}

// optionalText checks an optional text of at most max characters.
func (f fields) optionalText(name, v string, max int) {
	if utf8.RuneCountInString(v) > max {
		f[name] = fmt.Sprintf("must be at most %d characters", max)
	}
}

// httpURL checks an optional http(s) URL.
func (f fields) httpURL(name, v string) {
	if v == "" {
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

// orderIndex checks an order_index (1 or more).
func (f fields) orderIndex(name string, v int) {
	if v < 1 {
		f[name] = "must be at least 1"
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
