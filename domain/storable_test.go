package domain

import (
	"strings"
	"testing"
	"time"
)

func TestTextProblem(t *testing.T) {
	for _, tc := range []struct {
		in, want string
	}{
		{"카카오톡 열기", ""},
		{"", ""},
		{"a\x00b", "must not contain NUL characters"},
		{"a\xffb", "must be valid UTF-8"},
		{"\xed\xa0\x80", "must be valid UTF-8"}, // a surrogate encoded as UTF-8
	} {
		if got := TextProblem(tc.in); got != tc.want {
			t.Errorf("TextProblem(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

func TestJSONProblem(t *testing.T) {
	deep := strings.Repeat("[", MaxJSONDepth+1) + strings.Repeat("]", MaxJSONDepth+1)
	okDeep := strings.Repeat("[", MaxJSONDepth) + strings.Repeat("]", MaxJSONDepth)
	for _, tc := range []struct {
		in   string
		want string // "" or a part of the reason
	}{
		{`{"text":"안녕","n":1.5e10,"a":[true,null,-0.5]}`, ""},
		{`{"emoji":"\ud83d\ude00","esc":"\"\\\/\b\f\n\r\t\u00e9"}`, ""},
		{`"\\u0000"`, ""}, // an escaped backslash, then the text u0000
		{okDeep, ""},
		{`{"text":"\ud800"}`, "surrogate"},
		{`{"text":"\ud800x"}`, "surrogate"},
		{`{"text":"\ud800\u0041"}`, "surrogate"},
		{`{"\udc00":1}`, "surrogate"},
		{`{"text":"a\u0000b"}`, `\u0000`},
		{`{"n":1e400000}`, "64-bit float"},
		{`{"n":-1e309}`, "64-bit float"},
		{`{"n":1e-20000}`, "64-bit float"},
		{`{"n":0e-20000}`, "64-bit float"},
		{`{"n":1e-300,"m":2E+300}`, ""},
		{`{"n":` + strings.Repeat("1", 70) + `}`, "at most 64"},
		{deep, "nest"},
		{"{\"t\":\"\xff\"}", "UTF-8"},
		{`{"a":`, "valid JSON"},
	} {
		got := JSONProblem([]byte(tc.in))
		if (tc.want == "") != (got == "") || !strings.Contains(got, tc.want) {
			t.Errorf("JSONProblem(%.40q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

func TestInt32Problem(t *testing.T) {
	if p := Int32Problem(2147483647, 1, 1<<40); p != "" {
		t.Errorf("max int32: %q", p)
	}
	if p := Int32Problem(2147483648, 1, 1<<40); p == "" {
		t.Error("2147483648 accepted for an integer column")
	}
	if p := Int32Problem(0, 1, 10); p == "" {
		t.Error("0 accepted below min 1")
	}
}

func TestTimeProblem(t *testing.T) {
	now := time.Date(2026, 12, 4, 9, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		at time.Time
		ok bool
	}{
		{now, true},
		{now.Add(-29 * 24 * time.Hour), true},
		{now.Add(23 * time.Hour), true},
		{time.Date(9999, 1, 1, 0, 0, 0, 0, time.UTC), false},
		{time.Date(1, 1, 1, 0, 0, 0, 0, time.UTC), false},
	} {
		if got := TimeProblem(tc.at, now); (got == "") != tc.ok {
			t.Errorf("TimeProblem(%v) = %q, want ok=%v", tc.at, got, tc.ok)
		}
	}
}

func TestJSONFieldProblemNamesThePath(t *testing.T) {
	for _, tc := range []struct{ in, path string }{
		{`{"title":"a\u0000b"}`, "title"},
		{`{"title":"ok","context_data":{"note":"\ud800"}}`, "context_data.note"},
		{`{"logs":[{"a":1},{"event_data":{"k":[0,"x","\udc00"]}}]}`, "logs[1].event_data.k[2]"},
		{`{"a":{"b":1},"c":1e999}`, "c"},
		{`{"a\"b":{"\u00e9":"\u0000"}}`, `a"b.é`},
		{`{"\ud800":1}`, ""},
		{`["\u0000"]`, "[0]"},
		{"{\"t\":\"\xff\"}", "t"},
	} {
		path, why := JSONFieldProblem([]byte(tc.in))
		if why == "" || path != tc.path {
			t.Errorf("JSONFieldProblem(%s) = %q, %q; want path %q", tc.in, path, why, tc.path)
		}
	}
	if path, why := JSONFieldProblem([]byte(`{"a":[1,{"b":"c"}],"d":"\ud83d\ude00"}`)); why != "" {
		t.Errorf("a storable document refused at %q: %s", path, why)
	}
}
