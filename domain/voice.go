package domain

import "strings"

// SpokenText is the text a phone speaks for a subtask (the contract's Voice
// guide section): its voice guide text, else its guide text, else its title
// — never "" unless all three are blank. Texts made only of spaces count as
// missing.
//
// It is applied where a subtask is shown to be spoken (step_changed,
// session_started, session_state, GET …/current, the analytics state), at
// read or projection time rather than in the events, so the events keep what
// the lecture said and classrooms recorded before this rule speak too.
func SpokenText(voiceGuideText, guideText, title string) string {
	for _, s := range []string{voiceGuideText, guideText, title} {
		if strings.TrimSpace(s) != "" {
			return s
		}
	}
	return ""
}

// Spoken is SpokenText of the step.
func (s StepSubtask) Spoken() string { return SpokenText(s.VoiceGuideText, s.GuideText, s.Title) }
