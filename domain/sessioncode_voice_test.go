package domain

import (
	"strings"
	"testing"
)

func TestNormalizeSessionCode(t *testing.T) {
	for in, want := range map[string]string{
		"UG8YN4":             "UG8YN4",
		"ug8yn4":             "UG8YN4",
		" UG8-YN4 ":          "UG8YN4",
		"ug 8yn4":            "UG8YN4",
		"u-g-8 y\tn4\n":      "UG8YN4",
		"UG8\u00a0YN4":       "UG8YN4", // no-break space
		"UG8\u2013YN4":       "UG8YN4", // en dash
		"":                   "",
		"my-active":          "MYACTIVE",
		"ug8yn4; drop table": "UG8YN4;DROPTABLE",
	} {
		if got := NormalizeSessionCode(in); got != want {
			t.Errorf("NormalizeSessionCode(%q) = %q, want %q", in, got, want)
		}
	}
	if !ValidSessionCode(NormalizeSessionCode(" ug8-yn4 ")) {
		t.Error("a normalised hand-typed code is not valid")
	}
}

// The contract's alphabet, exactly: no 0/O and no 1/I look-alikes (L stays).
func TestSessionCodeAlphabet(t *testing.T) {
	if SessionCodeAlphabet != "ABCDEFGHJKLMNPQRSTUVWXYZ23456789" || len(SessionCodeAlphabet) != 32 {
		t.Fatalf("alphabet %q", SessionCodeAlphabet)
	}
	if strings.ContainsAny(SessionCodeAlphabet, "0O1I") {
		t.Fatalf("alphabet %q has a look-alike", SessionCodeAlphabet)
	}
	for _, c := range []string{"UG8YN4", "LLLLLL"} {
		if !ValidSessionCode(c) {
			t.Errorf("%q refused", c)
		}
	}
	for _, c := range []string{"UG8YN0", "OOOOOO", "UG8YNI", "ug8yn4", "UG8YN", "UG8YN44"} {
		if ValidSessionCode(c) {
			t.Errorf("%q accepted", c)
		}
	}
}

func TestSpokenText(t *testing.T) {
	for _, c := range []struct{ voice, guide, title, want string }{
		{"음성", "안내", "제목", "음성"},
		{"", "안내", "제목", "안내"},
		{"  ", "", "제목", "제목"},
		{"", " \n", "제목", "제목"},
		{"", "", "", ""},
	} {
		if got := SpokenText(c.voice, c.guide, c.title); got != c.want {
			t.Errorf("SpokenText(%q, %q, %q) = %q, want %q", c.voice, c.guide, c.title, got, c.want)
		}
		if got := (StepSubtask{Title: c.title, GuideText: c.guide, VoiceGuideText: c.voice}).Spoken(); got != c.want {
			t.Errorf("Spoken() = %q, want %q", got, c.want)
		}
	}
}
