package domain

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
)

// What PostgreSQL can store, checked at the edge. A value that passes these
// checks is accepted by a `text`, `jsonb`, `integer` or `timestamptz` column,
// so a request that was answered 2xx can never poison a writer or a projector
// later. Each check returns "" when the value is fine, else a reason phrased
// to follow the field's name ("must not contain NUL characters").

// Limits of the storable checks.
const (
	// MaxJSONDepth bounds nesting in stored JSON (PostgreSQL's parser is
	// recursive; a deep document would exhaust its stack).
	MaxJSONDepth = 64
	// MaxJSONNumberLen bounds one number's literal in stored JSON.
	MaxJSONNumberLen = 64
	// MaxInt32 is the largest value of a PostgreSQL `integer` column.
	MaxInt32 = math.MaxInt32
)

// TextProblem reports why s cannot be stored in a PostgreSQL text column:
// invalid UTF-8, or a NUL character.
func TextProblem(s string) string {
	if !utf8.ValidString(s) {
		return "must be valid UTF-8"
	}
	if strings.IndexByte(s, 0) >= 0 {
		return "must not contain NUL characters"
	}
	return ""
}

// JSONProblem reports why raw (a JSON document) cannot be stored in a
// PostgreSQL jsonb column, or "" when it can: it must be valid JSON in valid
// UTF-8, without the \u0000 escape or a lone UTF-16 surrogate escape (jsonb
// refuses both), with numbers that fit a float64 (a number literal of at most
// MaxJSONNumberLen characters) and at most MaxJSONDepth levels of nesting.
func JSONProblem(raw []byte) string {
	_, why := JSONFieldProblem(raw)
	return why
}

// NotJSON is the reason JSONProblem and JSONFieldProblem give for a
// document that is not JSON at all.
const NotJSON = "must be valid JSON"

// JSONFieldProblem is JSONProblem that also names where the first problem
// lies, as a path from the document's root ("title", "context_data.text",
// "logs[3].event_data"; "" for the document itself or a key of the root).
// A request body checked with it refuses a value before a decoder silently
// turns a lone surrogate or invalid UTF-8 into U+FFFD, and before a NUL
// reaches a text column.
func JSONFieldProblem(raw []byte) (path, why string) {
	if !json.Valid(raw) {
		return "", NotJSON
	}
	var stack []jsonFrame
	for i := 0; i < len(raw); i++ {
		switch c := raw[i]; {
		case c == '"':
			end, why := scanString(raw, i+1)
			if why != "" {
				return jsonPath(stack), why
			}
			if n := len(stack) - 1; n >= 0 && stack[n].wantKey {
				stack[n].key, stack[n].wantKey = jsonKey(raw[i:end+1]), false
			}
			i = end
		case c == '{' || c == '[':
			stack = append(stack, jsonFrame{array: c == '[', wantKey: c == '{'})
			if len(stack) > MaxJSONDepth {
				return jsonPath(stack[:len(stack)-1]), fmt.Sprintf("must not nest deeper than %d levels", MaxJSONDepth)
			}
		case c == '}' || c == ']':
			stack = stack[:len(stack)-1]
		case c == ',':
			if n := len(stack) - 1; stack[n].array {
				stack[n].index++
			} else {
				stack[n].key, stack[n].wantKey = "", true
			}
		case c == '-' || (c >= '0' && c <= '9'):
			j := i
			for j < len(raw) && strings.IndexByte("+-.eE0123456789", raw[j]) >= 0 {
				j++
			}
			if why := numberProblem(string(raw[i:j])); why != "" {
				return jsonPath(stack), why
			}
			i = j - 1
		}
	}
	return "", ""
}

// jsonFrame is one open object or array of a document being scanned.
type jsonFrame struct {
	array   bool
	index   int    // the current element of an array
	key     string // the current member of an object
	wantKey bool   // an object's next string is a key
}

func jsonPath(stack []jsonFrame) string {
	var b strings.Builder
	for _, f := range stack {
		switch {
		case f.array:
			b.WriteString("[" + strconv.Itoa(f.index) + "]")
		case f.key != "":
			if b.Len() > 0 {
				b.WriteByte('.')
			}
			b.WriteString(f.key)
		}
	}
	return b.String()
}

// jsonKey decodes a quoted key (known to be valid and storable).
func jsonKey(quoted []byte) string {
	if bytes.IndexByte(quoted, '\\') < 0 {
		return string(quoted[1 : len(quoted)-1])
	}
	var k string
	_ = json.Unmarshal(quoted, &k)
	return k
}

// scanString checks one JSON string starting after its opening quote and
// returns the index of its closing quote. raw is known to be valid JSON.
func scanString(raw []byte, i int) (int, string) {
	start := i
	for ; i < len(raw); i++ {
		switch raw[i] {
		case '"':
			if !utf8.Valid(raw[start:i]) {
				return 0, "must be valid UTF-8"
			}
			return i, ""
		case '\\':
			i++
			if raw[i] != 'u' {
				continue
			}
			r := hex4(raw[i+1 : i+5])
			i += 4
			switch {
			case r == 0:
				return 0, `must not contain \u0000`
			case r >= 0xDC00 && r <= 0xDFFF:
				return 0, "must not contain a lone UTF-16 surrogate"
			case r >= 0xD800 && r <= 0xDBFF:
				if i+6 >= len(raw) || raw[i+1] != '\\' || raw[i+2] != 'u' {
					return 0, "must not contain a lone UTF-16 surrogate"
				}
				if lo := hex4(raw[i+3 : i+7]); lo < 0xDC00 || lo > 0xDFFF {
					return 0, "must not contain a lone UTF-16 surrogate"
				}
				i += 6
			}
		}
	}
	return i, ""
}

func hex4(b []byte) rune {
	n, _ := strconv.ParseUint(string(b), 16, 32)
	return rune(n)
}

func numberProblem(lit string) string {
	if len(lit) > MaxJSONNumberLen {
		return fmt.Sprintf("numbers must be at most %d characters long", MaxJSONNumberLen)
	}
	if _, err := strconv.ParseFloat(lit, 64); err != nil {
		return "numbers must fit a 64-bit float"
	}
	// ParseFloat rounds an underflow to 0 without an error, while
	// PostgreSQL's numeric refuses exponents past about ±16,000.
	if e := strings.IndexAny(lit, "eE"); e >= 0 {
		if exp, err := strconv.Atoi(lit[e+1:]); err != nil || exp < -400 || exp > 400 {
			return "numbers must fit a 64-bit float"
		}
	}
	return ""
}

// Int32Problem reports why n does not fit a PostgreSQL integer column between
// min and max (inclusive; max at most MaxInt32), or "".
func Int32Problem(n int64, min, max int64) string {
	if max > MaxInt32 {
		max = MaxInt32
	}
	if n < min || n > max {
		return fmt.Sprintf("must be between %d and %d", min, max)
	}
	return ""
}

// TimeWindow is how far from the server's clock a client-given timestamp may
// lie: clients' clocks drift, but a log from year 1 or 9999 is a bug or an
// attack, and would pin "last activity" forever.
const (
	MaxTimePast   = 30 * 24 * time.Hour
	MaxTimeFuture = 24 * time.Hour
)

// TimeProblem reports why t is not within [now-MaxTimePast, now+MaxTimeFuture].
func TimeProblem(t, now time.Time) string {
	if t.Before(now.Add(-MaxTimePast)) {
		return "must not be more than 30 days in the past"
	}
	if t.After(now.Add(MaxTimeFuture)) {
		return "must not be more than 24 hours in the future"
	}
	return ""
}
