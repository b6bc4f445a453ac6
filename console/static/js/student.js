// The student phone view at /join/{code}: the page the QR code opens.
// One action per screen, very large text, the voice guide spoken aloud.
import { html, useState, useEffect, useRef } from './ui.js';
import { t } from './i18n.js';
import { auth, get, post, login, register, Socket, speak, ApiError, errorText } from './api.js';

export function StudentApp({ code }) {
  const [user, setUser] = useState(() => { const a = auth(); return a && a.user; });
  // The phone view is for students: anyone else signed in on this browser
  // (an instructor trying the link) signs in again as a student.
  if (!user || user.role !== 'STUDENT') return html`<${SignIn} onDone=${setUser} />`;
  return html`<${Classroom} code=${code} user=${user} />`;
}

// SignIn is one form: sign in, or register when the email is new.
function SignIn({ onDone }) {
  const [email, setEmail] = useState('');
  const [password, setPassword] = useState('');
  const [name, setName] = useState('');
  const [err, setErr] = useState('');
  const [busy, setBusy] = useState(false);
  async function submit(ev) {
    ev.preventDefault();
    setErr('');
    if (password.length < 8) { setErr(t('password_short')); return; }
    setBusy(true);
    try {
      try {
        const u = await login(email.trim(), password);
        if (u.role !== 'STUDENT') { setErr(t('student_only')); return; }
        onDone(u);
        return;
      } catch (e) {
        if (!(e instanceof ApiError) || e.status !== 401) throw e;
      }
      if (!name.trim()) { setErr(t('need_name')); return; }
      try {
        await register({ email: email.trim(), password, name: name.trim(), role: 'STUDENT' });
      } catch (e) {
        if (e instanceof ApiError && e.status === 409) { setErr(t('wrong_password')); return; }
        throw e;
      }
      onDone(await login(email.trim(), password));
    } catch (e) {
      setErr(errorText(e, t));
    } finally {
      setBusy(false);
    }
  }
  return html`<main class="phone">
    <h1>${t('join_form_title')}</h1>
    <p class="hint">${t('join_form_hint')}</p>
    <form onSubmit=${submit} class="big-form">
      <label>${t('name')}<input name="name" autocomplete="name" value=${name} onInput=${(e) => setName(e.target.value)} /></label>
      <label>${t('email')}<input name="email" type="email" required autocomplete="email" value=${email} onInput=${(e) => setEmail(e.target.value)} /></label>
      <label>${t('password')}<input name="password" type="password" required autocomplete="current-password" value=${password} onInput=${(e) => setPassword(e.target.value)} /></label>
      ${err && html`<p class="error" role="alert">${err}</p>`}
      <button class="big primary" type="submit" disabled=${busy}>${t('join_form_button')}</button>
    </form>
  </main>`;
}

function Classroom({ code, user }) {
  const [session, setSession] = useState(null);
  const [err, setErr] = useState('');
  const [state, setState] = useState(null); // session_state data, kept current by messages
  const [online, setOnline] = useState(true);
  const [done, setDone] = useState({});
  const [help, setHelp] = useState(null); // {sent: true} | {content, voice}
  const spoken = useRef(null);

  useEffect(() => {
    let sock, helpSock, stop = false;
    (async () => {
      try {
        const s = await get(`/api/sessions/${encodeURIComponent(code)}`);
        if (stop) return;
        await post(`/api/sessions/${s.session_id}/join`, { session_code: s.session_code });
        setSession(s);
        sock = new Socket(`/ws/session/${s.session_id}/student/`, {
          onStatus: setOnline,
          onMessage: (m) => setState((cur) => apply(cur, m)),
        });
        helpSock = new Socket(`/ws/help/${user.id}`, {
          onMessage: (m) => {
            if (m.type !== 'HELP_AVAILABLE') return;
            const r = m.help_response || (m.data && m.data.help_response) || {};
            setHelp({ content: r.help_content, voice: r.voice_guide_text || r.help_content, id: m.help_request_id });
            speak(r.voice_guide_text || r.help_content);
          },
        });
      } catch (e) {
        if (e instanceof ApiError && e.status === 404) setErr(t('session_not_found'));
        else if (e instanceof ApiError && e.code === 'INVALID_STATE') setErr(t('session_over'));
        else setErr(errorText(e, t));
      }
    })();
    return () => { stop = true; if (sock) sock.close(); if (helpSock) helpSock.close(); };
  }, [code, user.id]);

  const step = state && state.current_subtask;
  const status = state && state.status;
  // Speak each new step once, as it arrives.
  useEffect(() => {
    if (status === 'IN_PROGRESS' && step && spoken.current !== step.id) {
      spoken.current = step.id;
      setHelp((h) => (h && h.sent ? null : h));
      speak(voiceOf(step));
    }
  }, [status, step && step.id]);

  if (err) return html`<main class="phone"><p class="error big-text" role="alert">${err}</p></main>`;
  if (!session || !state) return html`<main class="phone"><p class="big-text">${t('loading')}</p></main>`;

  const banner = !online && html`<p class="banner" role="status">${t('offline')}</p>`;
  const header = html`<header class="phone-head"><span>${session.lecture && session.lecture.title}</span><span>${user.name}</span></header>`;

  if (status === 'WAITING') {
    return html`<main class="phone" data-screen="waiting">${header}${banner}
      <h1>${t('waiting_title')}</h1>
      <p class="big-text">${t('waiting_text')}</p>
      <p class="hint">${t('hello', user.name)}</p>
    </main>`;
  }
  if (status === 'PAUSED') {
    return html`<main class="phone paused" data-screen="paused">${header}${banner}
      <h1>${t('paused_title')}</h1>
      ${state.instructor_message && html`<p class="big-text" data-test="instructor-message">${state.instructor_message}</p>`}
      <p class="big-text">${t('paused_text')}</p>
    </main>`;
  }
  if (status === 'REVIEW_MODE') {
    return html`<main class="phone" data-screen="review">${header}${banner}
      <h1>${t('ended_title')}</h1>
      <p class="big-text">${t('ended_text')}</p>
      <${Review} lectureId=${session.lecture && session.lecture.id} />
    </main>`;
  }
  if (!step) return html`<main class="phone"><p class="big-text">${t('loading')}</p></main>`;

  async function complete() {
    try {
      await post('/api/progress/update', { subtask_id: step.id, status: 'COMPLETED' });
      setDone((d) => ({ ...d, [step.id]: true }));
    } catch (e) { setErr(errorText(e, t)); }
  }
  async function askHelp() {
    try {
      await post('/api/help/request', { subtask_id: step.id, request_type: 'MANUAL', context_data: { current_screen: 'web', recent_actions: [] } });
      setHelp({ sent: true });
    } catch (e) { setErr(errorText(e, t)); }
  }

  return html`<main class="phone" data-screen="step">${header}${banner}
    <p class="step-label">${t('step_label')}</p>
    <h1 class="step-title" data-test="step-title" data-step-id=${step.id}>${step.title}</h1>
    ${step.guide_text && html`<p class="guide" data-test="guide">${step.guide_text}</p>`}
    ${help && help.content && html`<section class="answer" role="alert" data-test="help-answer">
      <h2>${t('help_answer')}</h2><p>${help.content}</p>
      <button class="big" onClick=${() => speak(help.voice)}>${t('listen_again')}</button>
      <button class="big" onClick=${() => setHelp(null)}>${t('help_close')}</button>
    </section>`}
    ${help && help.sent && html`<p class="notice" role="status" data-test="help-sent">${t('help_sent')}</p>`}
    ${done[step.id] && html`<p class="notice ok" role="status" data-test="done-note">${t('done_thanks')}</p>`}
    <div class="actions">
      <button class="big" onClick=${() => speak(voiceOf(step))}>${t('listen_again')}</button>
      ${!done[step.id] && html`<button class="big primary" data-test="done" onClick=${complete}>${t('done_button')}</button>`}
      <button class="big help" data-test="help" onClick=${askHelp}>${t('help_button')}</button>
    </div>
  </main>`;
}

function voiceOf(s) { return s.voice_guide_text || s.guide_text || s.title; }

// apply folds one student-socket message into the session state.
function apply(cur, m) {
  const d = m.data || {};
  switch (m.type) {
    case 'session_state': return { ...d };
    case 'session_started': return { ...cur, status: 'IN_PROGRESS', current_subtask: d.current_subtask, instructor_message: d.instructor_message };
    case 'step_changed': return { ...cur, status: 'IN_PROGRESS', current_subtask: d.current_subtask, instructor_message: d.instructor_message };
    case 'session_paused': return { ...cur, status: 'PAUSED', instructor_message: d.instructor_message };
    case 'session_resumed': return { ...cur, status: 'IN_PROGRESS', instructor_message: d.instructor_message };
    case 'session_ended': return { ...cur, status: 'REVIEW_MODE', instructor_message: d.instructor_message };
    default: return cur;
  }
}

// Review walks through the lecture's steps one at a time.
function Review({ lectureId }) {
  const [steps, setSteps] = useState(null);
  const [i, setI] = useState(0);
  useEffect(() => {
    if (!lectureId) return;
    (async () => {
      const l = await get(`/api/lectures/${lectureId}`);
      const all = [];
      for (const task of l.tasks || []) {
        const full = await get(`/api/tasks/${task.id}`);
        all.push(...(full.subtasks || []));
      }
      setSteps(all);
    })().catch(() => setSteps([]));
  }, [lectureId]);
  if (!steps) return html`<p class="big-text">${t('loading')}</p>`;
  if (!steps.length) return null;
  const s = steps[Math.min(i, steps.length - 1)];
  return html`<section class="review" data-test="review">
    <h2>${t('review_title')} · ${t('review_of', i + 1, steps.length)}</h2>
    <p class="step-title">${s.title}</p>
    ${s.guide_text && html`<p class="guide">${s.guide_text}</p>`}
    <div class="actions">
      <button class="big" onClick=${() => speak(voiceOf(s))}>${t('listen_again')}</button>
      <div class="row">
        <button class="big" disabled=${i === 0} onClick=${() => setI(i - 1)}>${t('review_prev')}</button>
        <button class="big" disabled=${i >= steps.length - 1} onClick=${() => setI(i + 1)}>${t('review_next')}</button>
      </div>
    </div>
  </section>`;
}
