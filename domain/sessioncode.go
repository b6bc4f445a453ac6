package domain

import (
	"strings"
	"unicode"
)

// NormalizeSessionCode turns a session code as a person typed it into the
// form it is stored in: upper-case, without spaces or hyphens (the contract's
// Sessions section: codes are matched ignoring case, spaces and hyphens), so
// " ug8-yn4 " and "ug 8yn4" both give "UG8YN4". Any Unicode space or dash
// counts (a phone keyboard may type a non-breaking space or an en dash).
// It does not check the result: use ValidSessionCode on it.
func NormalizeSessionCode(code string) string {
	return strings.Map(func(r rune) rune {
		if unicode.IsSpace(r) || unicode.Is(unicode.Pd, r) || r == '\u2212' {
			return -1
		}
		return unicode.ToUpper(r)
	}, code)
}
