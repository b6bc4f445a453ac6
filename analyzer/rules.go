package analyzer

import (
	"context"
	"fmt"
	"strings"
	"unicode/utf8"

	"github.com/lockstep/lockstep/domain"
)

// RuleBased is the default analyzer: a fixed list of explainable rules over
// the stuck signals (Detect) and the step's target action, element hint and
// guide text. It never reads the clock or the network; the same request
// always gets the same answer. Result.Rule names the rule that answered.
//
// Rules, strongest first (confidence before corroboration):
//
//	WRONG_APP      another app is open than the step's          0.90
//	RAPID_TAPS     on a LONG_CLICK step: taps instead of a press 0.85
//	RAPID_TAPS     the same spot tapped again and again         0.75
//	REPEATED_BACK  BACK pressed again and again                 0.75
//	LONG_IDLE      nothing done for a while                     0.70
//	GUIDE          no signal: escalated to the instructor       0.40
//
// Each further signal found adds 0.05 (at most 0.95). A hint that can only
// name the step's title (no element hint, no guide text) lowers confidence
// to 0.45. Below MinConfidence the request is escalated to the instructor.
//
// An analysis that finds no signal of what went wrong never answers (the
// contract's Help section): repeating the step's guide text to someone who
// could not follow it is no help, so GUIDE always escalates, whatever
// MinConfidence says; its HelpContent (the step's own hint) is kept for the
// instructor to see.
type RuleBased struct {
	// Thresholds of the stuck signals (zero fields: defaults).
	Thresholds Thresholds
	// MinConfidence below which the request is escalated (0: DefaultMinConfidence).
	MinConfidence float64
}

// Name implements Analyzer.
func (RuleBased) Name() string { return "rule" }

// Analyze implements Analyzer.
func (r RuleBased) Analyze(ctx context.Context, req Request) (Result, error) {
	if err := ctx.Err(); err != nil {
		return Result{}, err
	}
	return r.Answer(req), nil
}

// Answer is Analyze without a context (it cannot fail).
func (r RuleBased) Answer(req Request) Result {
	minConf := r.MinConfidence
	if minConf <= 0 {
		minConf = DefaultMinConfidence
	}
	signals := Detect(req, r.Thresholds)
	step, stepConf := stepHint(req.Subtask)

	var res Result
	var conf float64
	rule := "GUIDE"
	switch top := first(signals); {
	case top != nil && top.Kind == SignalWrongApp:
		app := AppName(top.Expected)
		appText := "수업에서 배우는"
		if app != "" {
			appText = "'" + app + "'"
		}
		cur := AppName(top.Package)
		diag := fmt.Sprintf("학습할 앱(%s) 대신 다른 앱(%s)이 %d초째 화면에 열려 있습니다.", top.Expected, top.Package, top.Seconds)
		if cur != "" {
			diag = fmt.Sprintf("학습할 앱(%s) 대신 %s(%s)이 %d초째 화면에 열려 있습니다.", top.Expected, cur, top.Package, top.Seconds)
		}
		res = Result{
			Diagnosis:   diag,
			HelpContent: join("지금은 다른 앱이 열려 있어요.", "화면 아래쪽 가운데의 홈 버튼을 누른 다음,", appText+" 앱 그림을 찾아 한 번 눌러 주세요."),
		}
		conf, rule = 0.90, string(SignalWrongApp)
	case top != nil && top.Kind == SignalRapidTaps && req.Subtask.TargetAction == domain.ActionLongClick:
		res = Result{
			Diagnosis:   fmt.Sprintf("같은 곳을 %d초 안에 %d번 짧게 눌렀습니다. 이 단계는 길게 누르기가 필요합니다.", max(top.Seconds, 1), top.Count),
			HelpContent: join("짧게 여러 번 누르지 않아도 돼요.", step),
		}
		conf, rule = 0.85, string(SignalRapidTaps)
	case top != nil && top.Kind == SignalRapidTaps:
		res = Result{
			Diagnosis:   fmt.Sprintf("같은 곳을 %d초 안에 %d번 눌렀습니다. 화면이 바뀌기를 기다리지 못했거나 누르는 곳이 맞지 않습니다.", max(top.Seconds, 1), top.Count),
			HelpContent: join("같은 곳을 여러 번 누르셨어요. 한 번만 누르고 화면이 바뀔 때까지 잠시 기다려 주세요.", step),
		}
		conf, rule = 0.75, string(SignalRapidTaps)
	case top != nil && top.Kind == SignalRepeatedBack:
		res = Result{
			Diagnosis:   fmt.Sprintf("뒤로 가기를 %d번 눌렀습니다. 단계의 화면을 벗어나 길을 잃은 것 같습니다.", top.Count),
			HelpContent: join("뒤로 가기를 여러 번 누르셨어요. 잠시 멈추고 화면을 천천히 살펴보세요.", step),
		}
		conf, rule = 0.75, string(SignalRepeatedBack)
	case top != nil && top.Kind == SignalLongIdle:
		res = Result{
			Diagnosis:   fmt.Sprintf("%d초 동안 아무 동작이 없습니다. 다음에 무엇을 해야 할지 찾지 못하고 있습니다.", top.Seconds),
			HelpContent: join("천천히 하셔도 괜찮아요.", step),
		}
		conf, rule = 0.70, string(SignalLongIdle)
	default:
		res = Result{
			Diagnosis:   "자동 분석으로는 뚜렷한 문제 신호를 찾지 못했습니다. 강사님이 직접 살펴봐 주세요.",
			HelpContent: step,
		}
		conf = NoSignalConfidence
	}
	if rule != string(SignalWrongApp) {
		// Every rule but WRONG_APP answers with the step's own hint: as good as it is.
		conf = min(conf, stepConf)
	}
	conf = min(conf+0.05*float64(max(len(signals)-1, 0)), 0.95)
	if len(signals) > 1 {
		kinds := make([]string, len(signals))
		for i, s := range signals {
			kinds[i] = string(s.Kind)
		}
		res.Diagnosis += " (신호: " + strings.Join(kinds, ", ") + ")"
	}
	res.Confidence = round2(conf)
	res.HelpType = domain.HelpTypeText
	res.HelpContent = clip(res.HelpContent, domain.MaxHelpContentLen)
	res.VoiceGuideText = clip(Voice(res.HelpContent), domain.MaxGuideTextLen)
	res.Diagnosis = clip(res.Diagnosis, domain.MaxDiagnosisLen)
	res.Rule = "rule:" + rule
	switch {
	case len(signals) == 0:
		res.Escalate = true
		res.EscalationReason = NoSignalReason
	case res.Confidence < minConf || strings.TrimSpace(res.HelpContent) == "":
		res.Escalate = true
		res.EscalationReason = fmt.Sprintf("자동 분석의 확신도가 낮아(%.2f) 강사님의 도움이 필요합니다.", res.Confidence)
	}
	return res
}

// NoSignalConfidence is the confidence of an analysis that found no signal.
const NoSignalConfidence = 0.40

// NoSignalReason is the escalation reason of an analysis that found no signal.
const NoSignalReason = "학생의 기록에서 무엇이 문제인지 알려 주는 신호를 찾지 못해 강사님의 도움이 필요합니다."

func first(s []Signal) *Signal {
	if len(s) == 0 {
		return nil
	}
	return &s[0]
}

// stepHint says, in plain words, what the step asks for, and how much the
// hint can be trusted: 0.95 from the element hint, 0.9 from the guide text,
// 0.45 from the title alone.
func stepHint(s Subtask) (string, float64) {
	target := friendlyTarget(s.TargetElementHint)
	guide := strings.TrimSpace(s.GuideText)
	if target == "" {
		switch s.TargetAction {
		case domain.ActionBack:
			return "화면 아래쪽의 뒤로 가기 버튼을 한 번 눌러 주세요.", 0.95
		case domain.ActionHome:
			return "화면 아래쪽 가운데의 홈 버튼을 눌러 주세요.", 0.95
		case domain.ActionOpenApp:
			if app := AppName(ExpectedPackage(s)); app != "" {
				return "홈 화면에서 '" + app + "' 앱 그림을 찾아 한 번 눌러 주세요.", 0.9
			}
		}
		if guide != "" {
			return guide, 0.9
		}
		if t := strings.TrimSpace(s.Title); t != "" {
			return "이번 단계는 '" + t + "'입니다. 화면의 안내를 천천히 다시 읽어 보세요.", 0.45
		}
		return "", 0
	}
	q := "'" + target + "'"
	obj := q + objectParticle(target)
	var hint string
	switch s.TargetAction {
	case domain.ActionClick:
		hint = "화면에서 " + obj + " 찾아 한 번 눌러 주세요."
	case domain.ActionLongClick:
		hint = obj + " 손가락으로 2초 정도 꾹 누르고 계세요."
	case domain.ActionScroll:
		hint = "화면을 손가락으로 천천히 위로 밀어 올리면서 " + obj + " 찾아 주세요."
	case domain.ActionSwipe:
		hint = "화면을 손가락으로 옆으로 밀어서 " + obj + " 찾아 주세요."
	case domain.ActionTextInput:
		hint = q + " 입력 칸을 한 번 누르면 자판이 나와요. 자판으로 글자를 입력해 주세요."
	case domain.ActionBack:
		hint = "화면 아래쪽의 뒤로 가기 버튼을 한 번 눌러 주세요."
	case domain.ActionHome:
		hint = "화면 아래쪽 가운데의 홈 버튼을 눌러 주세요."
	case domain.ActionOpenApp:
		hint = "홈 화면에서 " + q + " 앱 그림을 찾아 한 번 눌러 주세요."
	default:
		if guide != "" {
			return guide, 0.9
		}
		hint = "화면에서 " + obj + " 찾아보세요."
	}
	return hint, 0.95
}

// friendlyTarget turns an element hint into words a learner knows: a bare
// resource id ("com.kakao.talk:id/friend_tab") or view class is no help and
// gives "".
func friendlyTarget(hint string) string {
	h := strings.TrimSpace(hint)
	if h == "" {
		return ""
	}
	if hasHangul(h) {
		// "친구 탭 (com.kakao.talk:id/friend_tab)": keep the words.
		if i := strings.IndexAny(h, "(["); i > 0 {
			h = strings.TrimSpace(h[:i])
		}
		return strings.Trim(h, "'\" ")
	}
	if strings.Contains(h, ":id/") || strings.Contains(h, "/") || packagePattern.MatchString(h) && !strings.Contains(h, " ") {
		return ""
	}
	return strings.Trim(h, "'\" ")
}

func hasHangul(s string) bool {
	for _, r := range s {
		if r >= 0xAC00 && r <= 0xD7A3 {
			return true
		}
	}
	return false
}

// objectParticle is the Korean object particle after word: 을 after a final
// consonant, 를 after a vowel, "을(를)" when the word does not end in Hangul.
func objectParticle(word string) string {
	r, _ := utf8.DecodeLastRuneInString(strings.TrimSpace(word))
	if r < 0xAC00 || r > 0xD7A3 {
		return "을(를)"
	}
	if (r-0xAC00)%28 != 0 {
		return "을"
	}
	return "를"
}

func join(parts ...string) string {
	var out []string
	for _, p := range parts {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return strings.Join(out, " ")
}

// Voice turns a hint into text for speech: quotes, brackets and symbols
// a speech engine would read out or stumble on are dropped.
func Voice(text string) string {
	r := strings.NewReplacer("'", "", "\"", "", "‘", "", "’", "", "“", "", "”", "", "(", " ", ")", " ", "[", " ", "]", " ", "*", "", "#", "", "_", " ", "/", " ")
	return strings.Join(strings.Fields(r.Replace(text)), " ")
}

func clip(s string, n int) string {
	if utf8.RuneCountInString(s) <= n {
		return s
	}
	return string([]rune(s)[:n])
}

func round2(f float64) float64 { return float64(int(f*100+0.5)) / 100 }
