package browsertest

import (
	"fmt"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/lockstep/lockstep/cmd/lockstep/app/apptest"
)

// seenJS records, in the page, the wall-clock time at which each step title
// first appears (a MutationObserver: no polling delay in the figure).
const seenJS = `(() => {
  window.__seen = window.__seen || {};
  const note = () => {
    const e = document.querySelector('[data-test=step-title]');
    if (e && !(e.textContent in window.__seen)) window.__seen[e.textContent] = Date.now();
  };
  note();
  new MutationObserver(note).observe(document.body, {subtree: true, childList: true, characterData: true});
  return 'ok';
})()`

// stepLatency presses a control-room button and waits until every student
// page shows title; it returns each page's delay from the press.
func stepLatency(t *testing.T, teacher *tab, button string, students []*tab, title string) []time.Duration {
	t.Helper()
	t0 := time.Now()
	teacher.click(button)
	out := make([]time.Duration, len(students))
	for i, s := range students {
		s.waitJS(fmt.Sprintf(`(window.__seen||{})[%q] !== undefined`, title), 5*time.Second)
		ms, err := strconv.ParseInt(s.eval(fmt.Sprintf(`String(window.__seen[%q])`, title)), 10, 64)
		if err != nil {
			t.Fatal(err)
		}
		out[i] = time.UnixMilli(ms).Sub(t0)
	}
	return out
}

// A whole class through the UI only: lecture with three steps, session with
// QR, three phones join, Start/Next reach every phone within 1 s, help goes
// to the instructor and the answer comes back, a phone that loses its
// network comes back at the right step with nothing doubled, pause, end and
// review mode; then the analyst replay of the same class. axe-core checks
// every page on the way.
func TestWholeClass(t *testing.T) {
	b := browser(t)
	srv := apptest.Start(t)
	teacherUser := srv.NewUser(t, "INSTRUCTOR", "박강사")
	// Mark every page load's security headers once (the console's own test
	// covers them in detail).
	resp := srv.Get(t, "/join/ABC234", "")
	if resp.Status != http.StatusOK || !strings.Contains(resp.Header.Get("Content-Security-Policy"), "script-src 'self'") {
		t.Fatalf("/join page: %d %v", resp.Status, resp.Header)
	}

	// The instructor logs in and builds the lecture.
	teacher := newTab(t, b, "instructor", 1280, 900)
	teacher.do(navigate(srv.URL + "/"))
	teacher.waitVisible(`input[name=email]`)
	teacher.axe("login")
	teacher.shot("01-login")
	teacher.typeIn(`input[name=email]`, teacherUser.Email)
	teacher.typeIn(`input[name=password]`, "password-123")
	teacher.click(`form button[type=submit]`)
	teacher.typeIn(`input[name=lecture-title]`, "카카오톡 기초")
	teacher.typeIn(`input[name=lecture-description]`, "카카오톡으로 메시지를 보냅니다")
	teacher.axe("lectures")
	teacher.click(`form[aria-label] button[type=submit]`)
	teacher.typeIn(`input[name=task-title]`, "메시지 보내기")
	teacher.click(`[data-test=task-form] button[type=submit]`)
	// The third step has no guide text (only a voice guide): the analyzer
	// cannot answer a help request there and hands it to the instructor.
	steps := []struct{ title, guide, voice string }{
		{"카카오톡 앱 열기", "홈 화면에서 노란색 카카오톡 아이콘을 눌러주세요", ""},
		{"친구 선택하기", "친구 목록에서 메시지를 보낼 친구를 선택하세요", ""},
		{"메시지 보내기", "", "글을 쓰고 보내기 버튼을 누르세요"},
	}
	for i, s := range steps {
		teacher.waitJS(fmt.Sprintf(`document.querySelectorAll('li.subtask').length === %d`, i), 5*time.Second)
		teacher.typeIn(`[data-test=subtask-form] input[name=subtask-title]`, s.title)
		if s.guide != "" {
			teacher.typeIn(`[data-test=subtask-form] input[name=subtask-guide]`, s.guide)
		}
		if s.voice != "" {
			teacher.typeIn(`[data-test=subtask-form] input[name=subtask-voice]`, s.voice)
		}
		teacher.click(`[data-test=subtask-form] button[type=submit]`)
	}
	teacher.waitJS(`document.querySelectorAll('li.subtask').length === 3`, 5*time.Second)
	teacher.axe("lecture editor")
	teacher.shot("02-lecture-editor")

	// Open a session: the presenter view shows the QR and the code.
	teacher.click(`[data-test=open-session]`)
	teacher.waitVisible(`[data-test=session-code]`)
	teacher.waitJS(`document.querySelector('img.qr').complete && document.querySelector('img.qr').naturalWidth > 100`, 5*time.Second)
	code := strings.TrimSpace(teacher.text(`[data-test=session-code]`))
	if len(code) != 6 {
		t.Fatalf("session code %q", code)
	}

	// Three phones scan the QR: /join/{code}, register, wait.
	students := make([]*tab, 3)
	for i := range students {
		s := newTab(t, b, fmt.Sprintf("student%d", i+1), 360, 640)
		s.do(navigate(srv.URL + "/join/" + code))
		s.typeIn(`input[name=name]`, fmt.Sprintf("학생%d", i+1))
		s.typeIn(`input[name=email]`, fmt.Sprintf("student%d-%d@lockstep.test", i+1, time.Now().UnixNano()))
		s.typeIn(`input[name=password]`, "password-123")
		if i == 0 {
			s.axe("student sign-in")
			s.shot("03-student-sign-in")
		}
		s.click(`button[type=submit]`)
		students[i] = s
	}
	for _, s := range students {
		s.waitVisible(`[data-screen=waiting]`)
		s.eval(seenJS)
	}
	students[0].axe("student waiting room")
	teacher.waitJS(`document.querySelector('[data-test=joined-count]').textContent.startsWith('3')`, 5*time.Second)
	teacher.axe("presenter")
	teacher.shot("04-presenter")

	// The control room.
	teacher.click(`a.button`)
	teacher.waitJS(`document.querySelectorAll('[data-test=roster] li').length === 3`, 5*time.Second)
	teacher.waitVisible(`[data-test=start]:not([disabled])`)
	if got := teacher.eval(`String(document.querySelectorAll('[data-test=roster] li.st-WAITING').length)`); got != "3" {
		t.Errorf("%s waiting tiles before the start, want 3", got)
	}

	var all []time.Duration
	var stepOneShown, stepTwoPressed time.Time
	for _, step := range []struct{ button, title string }{{"[data-test=start]", steps[0].title}, {"[data-test=next]:not([disabled])", steps[1].title}} {
		if step.title == steps[1].title {
			stepTwoPressed = time.Now()
		}
		lat := stepLatency(t, teacher, step.button, students, step.title)
		if step.title == steps[0].title {
			stepOneShown = time.Now()
			// Leave the replay test a clear second of step one.
			time.Sleep(time.Second)
		}
		t.Logf("step %q reached the 3 student pages after %v (from the instructor's click)", step.title, lat)
		for i, d := range lat {
			if d > time.Second {
				t.Errorf("student %d saw %q after %v, want within 1s", i+1, step.title, d)
			}
		}
		all = append(all, lat...)
		teacher.waitJS(fmt.Sprintf(`document.querySelector('[data-test=current-step]')?.textContent === %q`, step.title), 3*time.Second)
	}
	sort.Slice(all, func(i, j int) bool { return all[i] < all[j] })
	teacher.waitJS(`document.querySelectorAll('[data-test=roster] li.st-ACTIVE').length === 3`, 3*time.Second)
	t.Logf("step → student page latency over %d deliveries: min %v, median %v, max %v", len(all), all[0], all[len(all)/2], all[len(all)-1])
	students[0].waitJS(fmt.Sprintf(`window.__lastSpoken === %q`, steps[1].guide), 2*time.Second)
	students[0].axe("student step")
	students[0].shot("05-student-step")

	// Reconnect: student 3 loses the network, the class moves on, it comes
	// back at the right step, and no message arrived twice.
	s3 := students[2]
	s3.offline(true)
	s3.waitJS(`!navigator.onLine && document.querySelector('.banner') !== null`, 5*time.Second)
	teacher.click(`[data-test=next]:not([disabled])`)
	for _, s := range students[:2] {
		s.waitJS(fmt.Sprintf(`(window.__seen||{})[%q] !== undefined`, steps[2].title), 3*time.Second)
	}
	time.Sleep(300 * time.Millisecond)
	if s3.text(`[data-test=step-title]`) != steps[1].title {
		t.Errorf("offline student shows %q while offline", s3.text(`[data-test=step-title]`))
	}
	s3.offline(false)
	s3.waitJS(fmt.Sprintf(`document.querySelector('[data-test=step-title]')?.textContent === %q && !document.querySelector('.banner')`, steps[2].title), 10*time.Second)
	// The voice guide is spoken in an effect, just after the paint.
	s3.waitJS(fmt.Sprintf(`window.__lastSpoken === %q`, steps[2].voice), 2*time.Second)
	if n := s3.eval(`String(document.querySelectorAll('[data-test=step-title]').length)`); n != "1" {
		t.Errorf("reconnected page shows %s step titles", n)
	}
	dups := s3.eval(`(() => { const seen = {}, d = []; for (const m of window.__lockstepMessages || []) { if (seen[m]) d.push(m); seen[m] = 1; } return d.join(', '); })()`)
	if dups != "" {
		t.Errorf("reconnected page received messages twice: %s", dups)
	}
	if got := s3.eval(`(window.__lockstepMessages||[]).filter(m => m.includes('/student/ step_changed')).length + ''`); got != "2" {
		t.Errorf("reconnected page got %s step_changed messages, want 2: %s", got, s3.eval(`(window.__lockstepMessages||[]).join(' | ')`))
	}

	// Help: student 1 asks, the instructor's queue shows it within 1 s, the
	// instructor answers in place, the student sees (and hears) the answer.
	t0 := time.Now()
	students[0].click(`[data-test=help]`)
	teacher.waitJS(`document.querySelector('[data-test=help-queue] [data-help]') !== null`, 5*time.Second)
	helpLatency := time.Since(t0)
	t.Logf("help request → instructor queue: %v", helpLatency)
	if helpLatency > time.Second {
		t.Errorf("help reached the instructor's queue after %v, want within 1s", helpLatency)
	}
	teacher.axe("control room")
	teacher.shot("06-control-room")
	answer := "화면 위쪽의 연필 모양을 눌러 보세요"
	teacher.typeIn(`[data-test=help-queue] textarea`, answer)
	teacher.click(`[data-test=help-queue] button[type=submit]`)
	teacher.waitJS(`document.querySelector('[data-test=help-queue] [data-help]') === null`, 5*time.Second)
	students[0].waitJS(fmt.Sprintf(`document.querySelector('[data-test=help-answer]')?.textContent.includes(%q)`, answer), 5*time.Second)
	students[0].waitJS(fmt.Sprintf(`window.__lastSpoken === %q`, answer), 2*time.Second)
	students[0].axe("student help answer")
	students[0].shot("07-student-help-answer")

	// Done: the roster counts it.
	students[1].click(`[data-test=done]`)
	students[1].waitVisible(`[data-test=done-note]`)
	teacher.waitJS(`document.querySelector('[data-test=done-count]').textContent.includes('1명 완료')`, 3*time.Second)

	// Pause and resume.
	teacher.click(`[data-test=pause]:not([disabled])`)
	for _, s := range students {
		s.waitVisible(`[data-screen=paused]`)
	}
	students[0].axe("student paused")
	students[0].shot("08-student-paused")
	teacher.click(`[data-test=resume]:not([disabled])`)
	for _, s := range students {
		s.waitJS(fmt.Sprintf(`document.querySelector('[data-test=step-title]')?.textContent === %q`, steps[2].title), 3*time.Second)
	}

	// End: review mode with the lecture's steps.
	teacher.click(`[data-test=end]:not([disabled])`)
	teacher.click(`[data-test=end-confirm]`)
	for _, s := range students {
		s.waitVisible(`[data-screen=review] [data-test=review]`)
	}
	students[0].axe("student review")
	students[0].shot("09-student-review")
	teacher.waitJS(`document.querySelector('[data-test=session-status]').textContent.includes('종료')`, 3*time.Second)

	// Dashboard.
	teacher.do(navigate(srv.URL + "/#/"))
	teacher.click(`.cards a[href$=dashboard]`)
	teacher.waitJS(`document.querySelectorAll('table tbody tr').length === 3 && window.Chart !== undefined`, 5*time.Second)
	teacher.axe("dashboard")
	teacher.shot("10-dashboard")

	// Replay: the slider set to an instant while step 1 was current shows
	// step 1 and the three students as they were; the end shows review mode;
	// playing at 16x runs to replay_finished.
	sid := teacher.eval(`String(JSON.parse(localStorage.getItem('lockstep.sessions'))[0].id)`)
	teacher.do(navigate(srv.URL + "/replay/" + sid))
	teacher.waitVisible(`[data-test=timeline]`)
	teacher.waitJS(`document.querySelector('[data-test=replay-status]')?.textContent.includes('종료')`, 5*time.Second)
	mid := stepOneShown.Add(stepTwoPressed.Sub(stepOneShown) / 2)
	teacher.eval(fmt.Sprintf(`(() => { const el = document.querySelector('[data-test=timeline]'); el.value = %d; el.dispatchEvent(new Event('input', {bubbles: true})); return 'ok'; })()`, mid.UnixMilli()))
	teacher.waitJS(fmt.Sprintf(`document.querySelector('[data-test=replay-step]')?.textContent === %q && document.querySelectorAll('[data-test=replay-roster] li').length === 3 && document.querySelector('[data-test=replay-status]').textContent.includes('진행')`, steps[0].title), 5*time.Second)
	teacher.axe("replay")
	teacher.shot("11-replay")
	teacher.click(`.buttons button:nth-child(3)`) // 16x
	teacher.waitJS(`[...document.querySelectorAll('.log li')].some(li => li.textContent.includes('재생이 끝났습니다'))`, 15*time.Second)

	for _, tb := range append([]*tab{teacher}, students...) {
		tb.checkClean()
	}
}
