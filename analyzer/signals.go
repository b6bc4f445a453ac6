package analyzer

import (
	"math"
	"regexp"
	"strings"
	"time"

	"github.com/lockstep/lockstep/domain"
)

// SignalKind names one stuck signal.
type SignalKind string

// The stuck signals the rules (and the stuck detector) look for.
const (
	// SignalWrongApp: another app is in the foreground than the step's app,
	// for at least Thresholds.WrongAppAfter.
	SignalWrongApp SignalKind = "WRONG_APP"
	// SignalRepeatedBack: BACK pressed at least BackCount times within
	// BackWindow, on a step whose action is not BACK.
	SignalRepeatedBack SignalKind = "REPEATED_BACK"
	// SignalRapidTaps: at least TapCount taps within TapWindow, all within
	// TapRadius of each other.
	SignalRapidTaps SignalKind = "RAPID_TAPS"
	// SignalLongIdle: no activity for at least IdleAfter.
	SignalLongIdle SignalKind = "LONG_IDLE"
)

// Signal is one stuck signal found in a request, with its evidence.
type Signal struct {
	Kind SignalKind `json:"kind"`
	// Count is the number of BACKs or taps (REPEATED_BACK, RAPID_TAPS).
	Count int `json:"count,omitempty"`
	// Seconds is how long it lasted (WRONG_APP, LONG_IDLE) or the span of
	// the presses (REPEATED_BACK, RAPID_TAPS).
	Seconds int `json:"seconds"`
	// Package is the app in the foreground (WRONG_APP).
	Package string `json:"package,omitempty"`
	// Expected is the step's app (WRONG_APP).
	Expected string `json:"expected,omitempty"`
	// Element is what was tapped (RAPID_TAPS), when the logs say.
	Element string `json:"element,omitempty"`
}

// Thresholds configure the stuck signals. Zero fields take the defaults.
type Thresholds struct {
	BackCount     int           // default 3
	BackWindow    time.Duration // default 30s
	TapCount      int           // default 4
	TapWindow     time.Duration // default 5s
	TapRadius     float64       // default 48 (pixels)
	IdleAfter     time.Duration // default 60s
	WrongAppAfter time.Duration // default 15s
}

// DefaultThresholds are the documented defaults.
var DefaultThresholds = Thresholds{
	BackCount: 3, BackWindow: 30 * time.Second,
	TapCount: 4, TapWindow: 5 * time.Second, TapRadius: 48,
	IdleAfter: 60 * time.Second, WrongAppAfter: 15 * time.Second,
}

// WithDefaults fills zero fields from DefaultThresholds.
func (t Thresholds) WithDefaults() Thresholds {
	d := DefaultThresholds
	positive(&d.BackCount, t.BackCount)
	positive(&d.BackWindow, t.BackWindow)
	positive(&d.TapCount, t.TapCount)
	positive(&d.TapWindow, t.TapWindow)
	positive(&d.TapRadius, t.TapRadius)
	positive(&d.IdleAfter, t.IdleAfter)
	positive(&d.WrongAppAfter, t.WrongAppAfter)
	return d
}

// positive sets *dst to v when v is above zero.
func positive[T int | float64 | time.Duration](dst *T, v T) {
	if v > 0 {
		*dst = v
	}
}

// Detect finds the stuck signals in a request: in its recent activity (logs
// of other subtasks are ignored), its context_data and its stuck duration.
// It is pure: the same request always gives the same signals, in the order
// WRONG_APP, RAPID_TAPS, REPEATED_BACK, LONG_IDLE.
func Detect(req Request, th Thresholds) []Signal {
	th = th.WithDefaults()
	acts := make([]Activity, 0, len(req.RecentActivity))
	for _, a := range req.RecentActivity {
		if a.SubtaskID == 0 || a.SubtaskID == req.Subtask.ID {
			acts = append(acts, a)
		}
	}
	ctx := parseContext(req.ContextData)
	var out []Signal
	if s, ok := wrongApp(req, ctx, acts, th); ok {
		out = append(out, s)
	}
	if s, ok := rapidTaps(acts, th); ok {
		out = append(out, s)
	}
	if req.Subtask.TargetAction != domain.ActionBack {
		if s, ok := repeatedBack(acts, ctx, th); ok {
			out = append(out, s)
		}
	}
	if s, ok := longIdle(req, acts, th); ok {
		out = append(out, s)
	}
	return out
}

func isTap(t string) bool { return t == "CLICK" || t == "TAP" || t == "TOUCH" }

func isBack(t string) bool { return t == "BACK" || t == "BACK_PRESSED" || t == "BACK_BUTTON" }

func wrongApp(req Request, ctx contextData, acts []Activity, th Thresholds) (Signal, bool) {
	expected := ExpectedPackage(req.Subtask)
	if expected == "" {
		return Signal{}, false
	}
	foreign := func(pkg string) bool {
		if pkg == "" || samePackage(pkg, expected) {
			return false
		}
		// On an OPEN_APP step the home screen is where the student should be.
		return !(req.Subtask.TargetAction == domain.ActionOpenApp && isLauncher(pkg))
	}
	// The newest log with a package says what is in the foreground; the
	// foreign stretch starts at the oldest log of the unbroken foreign run.
	var current string
	var since time.Time
	for i := len(acts) - 1; i >= 0; i-- {
		p := acts[i].Package
		if p == "" {
			continue
		}
		if current == "" {
			if !foreign(p) {
				break
			}
			current = p
		}
		if !foreign(p) {
			break
		}
		since = acts[i].At
	}
	if current != "" {
		d := req.Now.Sub(since)
		if d < th.WrongAppAfter {
			return Signal{}, false
		}
		return Signal{Kind: SignalWrongApp, Seconds: seconds(d), Package: current, Expected: expected}, true
	}
	// No log says: trust the client's current_screen ("package.Activity").
	if ctx.CurrentScreen != "" && len(acts) == 0 {
		pkg := screenPackage(ctx.CurrentScreen)
		if foreign(pkg) && !strings.HasPrefix(ctx.CurrentScreen, expected) {
			return Signal{Kind: SignalWrongApp, Seconds: seconds(req.StuckDuration), Package: pkg, Expected: expected}, true
		}
	}
	return Signal{}, false
}

func rapidTaps(acts []Activity, th Thresholds) (Signal, bool) {
	var best Signal
	found := false
	for i := range acts {
		if !isTap(acts[i].EventType) || !acts[i].HasPoint {
			continue
		}
		n := 1
		last := acts[i]
		for j := i + 1; j < len(acts); j++ {
			b := acts[j]
			if b.At.Sub(acts[i].At) > th.TapWindow {
				break
			}
			if !isTap(b.EventType) || !b.HasPoint {
				continue
			}
			if math.Hypot(b.X-acts[i].X, b.Y-acts[i].Y) <= th.TapRadius {
				n++
				last = b
			}
		}
		if n >= th.TapCount && n > best.Count {
			el := acts[i].Text
			if el == "" {
				el = acts[i].Element
			}
			best = Signal{Kind: SignalRapidTaps, Count: n, Seconds: seconds(last.At.Sub(acts[i].At)), Element: el}
			found = true
		}
	}
	return best, found
}

func repeatedBack(acts []Activity, ctx contextData, th Thresholds) (Signal, bool) {
	var backs []time.Time
	for _, a := range acts {
		if isBack(a.EventType) {
			backs = append(backs, a.At)
		}
	}
	best := 0
	var span time.Duration
	for i := range backs {
		n := 0
		for j := i; j < len(backs) && backs[j].Sub(backs[i]) <= th.BackWindow; j++ {
			n++
			if n > best {
				best, span = n, backs[j].Sub(backs[i])
			}
		}
	}
	if best >= th.BackCount {
		return Signal{Kind: SignalRepeatedBack, Count: best, Seconds: seconds(span)}, true
	}
	// Without logs, the client's recent_actions may show it.
	if len(acts) == 0 {
		n := 0
		for _, a := range ctx.RecentActions {
			if isBack(strings.ToUpper(a)) {
				n++
			}
		}
		if n >= th.BackCount {
			return Signal{Kind: SignalRepeatedBack, Count: n}, true
		}
	}
	return Signal{}, false
}

func longIdle(req Request, acts []Activity, th Thresholds) (Signal, bool) {
	idle := req.StuckDuration
	if len(acts) > 0 {
		idle = req.Now.Sub(acts[len(acts)-1].At)
	}
	if idle >= th.IdleAfter {
		return Signal{Kind: SignalLongIdle, Seconds: seconds(idle)}, true
	}
	return Signal{}, false
}

func seconds(d time.Duration) int {
	if d < 0 {
		return 0
	}
	return int(d / time.Second)
}

var packagePattern = regexp.MustCompile(`\b[a-z][a-z0-9_]*(?:\.[a-z][a-z0-9_]*)+\b`)

// ExpectedPackage is the app a step happens in, as far as its hint, guide or
// title say: a package name in the element hint (e.g.
// "com.kakao.talk:id/friend_tab"), or a well-known app's name. "" when unknown.
func ExpectedPackage(s Subtask) string {
	if m := packagePattern.FindString(s.TargetElementHint); m != "" && strings.Count(m, ".") >= 1 && !looksLikeFile(m) {
		return m
	}
	for _, text := range []string{s.TargetElementHint, s.Title, s.GuideText} {
		for _, app := range knownApps {
			for _, n := range app.names {
				if strings.Contains(text, n) {
					return app.pkg
				}
			}
		}
	}
	return ""
}

func looksLikeFile(s string) bool {
	for _, ext := range []string{".png", ".jpg", ".html", ".xml"} {
		if strings.HasSuffix(s, ext) {
			return true
		}
	}
	return false
}

func samePackage(pkg, expected string) bool {
	return pkg == expected || strings.HasPrefix(pkg, expected+".") || strings.HasPrefix(pkg, expected+":")
}

func isLauncher(pkg string) bool {
	return strings.Contains(pkg, "launcher") || strings.Contains(pkg, ".home")
}

// screenPackage takes the package out of "com.kakao.talk.MainActivity" (the
// part before the first segment that starts with an upper-case letter).
func screenPackage(screen string) string {
	parts := strings.Split(screen, ".")
	for i, p := range parts {
		if p != "" && p[0] >= 'A' && p[0] <= 'Z' {
			return strings.Join(parts[:i], ".")
		}
	}
	return screen
}

type knownApp struct {
	pkg   string
	name  string // how the hint calls it aloud
	names []string
}

// knownApps are apps our lectures teach, with the names Korean learners use.
var knownApps = []knownApp{
	{"com.kakao.talk", "카카오톡", []string{"카카오톡", "카톡"}},
	{"net.daum.android.map", "카카오맵", []string{"카카오맵"}},
	{"com.kakao.taxi", "카카오 T", []string{"카카오T", "카카오 T", "카카오택시"}},
	{"com.google.android.youtube", "유튜브", []string{"유튜브", "YouTube"}},
	{"com.nhn.android.search", "네이버", []string{"네이버"}},
	{"com.android.chrome", "크롬", []string{"크롬"}},
	{"com.coupang.mobile", "쿠팡", []string{"쿠팡"}},
	{"com.android.settings", "설정", []string{"설정 앱"}},
}

// AppName is how a hint names an app aloud ("" when unknown).
func AppName(pkg string) string {
	for _, a := range knownApps {
		if samePackage(pkg, a.pkg) {
			return a.name
		}
	}
	return ""
}
