// The instructor console: lectures and their steps, the presenter view with
// the QR code, the control room, and the dashboard.
import { html, useState, useEffect, useRef, useCallback } from './ui.js';
import { t } from './i18n.js';
import { auth, get, post, put, del, login, logout, Socket, ApiError, errorText } from './api.js';

const ACTIONS = ['CLICK', 'LONG_CLICK', 'SCROLL', 'SWIPE', 'TEXT_INPUT', 'BACK', 'HOME', 'OPEN_APP', 'OTHER'];

function useHash() {
  const [h, setH] = useState(location.hash);
  useEffect(() => {
    const f = () => setH(location.hash);
    window.addEventListener('hashchange', f);
    return () => window.removeEventListener('hashchange', f);
  }, []);
  return h.replace(/^#\/?/, '').split('/').filter(Boolean);
}

export function InstructorApp() {
  const [user, setUser] = useState(() => { const a = auth(); return a && a.user; });
  const parts = useHash();
  if (!user) return html`<${Login} onDone=${setUser} />`;
  if (user.role === 'ANALYST') { location.replace('/replay/'); return null; }
  if (user.role === 'STUDENT') {
    return html`<main class="page narrow"><p>${t('join_at')}</p><button onClick=${() => { logout(); setUser(null); }}>${t('logout')}</button></main>`;
  }
  let view;
  if (parts[0] === 'lectures' && parts[1] && parts[2] === 'dashboard') view = html`<${Dashboard} id=${parts[1]} />`;
  else if (parts[0] === 'lectures' && parts[1]) view = html`<${LectureEditor} id=${parts[1]} />`;
  else if (parts[0] === 'session' && parts[1] && parts[2] === 'present') return html`<${Presenter} code=${parts[1]} />`;
  else if (parts[0] === 'session' && parts[1]) view = html`<${ControlRoom} code=${parts[1]} />`;
  else view = html`<${Lectures} user=${user} />`;
  return html`<div class="console">
    <header class="topbar">
      <a href="#/" class="brand">${t('app_name')}</a>
      <nav><a href="#/">${t('lectures')}</a><a href="/replay/">${t('replay')}</a><a href="/docs">API</a></nav>
      <span class="who">${user.name}</span>
      <button class="link" onClick=${() => { logout(); setUser(null); }}>${t('logout')}</button>
    </header>
    ${view}
  </div>`;
}

export function Login({ onDone, title }) {
  const [email, setEmail] = useState('');
  const [password, setPassword] = useState('');
  const [err, setErr] = useState('');
  async function submit(ev) {
    ev.preventDefault();
    setErr('');
    try { onDone(await login(email.trim(), password)); } catch (e) {
      setErr(e instanceof ApiError && e.status === 401 ? t('login_failed') : errorText(e, t));
    }
  }
  return html`<main class="page narrow">
    <h1>${title || t('login_title')}</h1>
    <form onSubmit=${submit} class="stack">
      <label>${t('email')}<input name="email" type="email" required autocomplete="username" value=${email} onInput=${(e) => setEmail(e.target.value)} /></label>
      <label>${t('password')}<input name="password" type="password" required autocomplete="current-password" value=${password} onInput=${(e) => setPassword(e.target.value)} /></label>
      ${err && html`<p class="error" role="alert">${err}</p>`}
      <button class="primary" type="submit">${t('login_button')}</button>
    </form>
  </main>`;
}

function Lectures({ user }) {
  const [list, setList] = useState(null);
  const [title, setTitle] = useState('');
  const [description, setDescription] = useState('');
  const [err, setErr] = useState('');
  const load = useCallback(async () => {
    const q = user.role === 'ADMIN' ? '' : `&instructor_id=${user.id}`;
    const r = await get(`/api/lectures?page_size=100${q}`);
    setList(r.lectures || []);
  }, [user]);
  useEffect(() => { load().catch((e) => setErr(errorText(e, t))); }, [load]);
  async function create(ev) {
    ev.preventDefault();
    try {
      const l = await post('/api/lectures', { title, description });
      location.hash = `#/lectures/${l.id}`;
    } catch (e) { setErr(errorText(e, t)); }
  }
  return html`<main class="page">
    <h1>${t('lectures')}</h1>
    <form class="card row-form" onSubmit=${create} aria-label=${t('new_lecture')}>
      <h2>${t('new_lecture')}</h2>
      <label>${t('title')}<input name="lecture-title" required value=${title} onInput=${(e) => setTitle(e.target.value)} /></label>
      <label>${t('description')}<input name="lecture-description" value=${description} onInput=${(e) => setDescription(e.target.value)} /></label>
      <button class="primary" type="submit">${t('create')}</button>
    </form>
    ${err && html`<p class="error" role="alert">${err}</p>`}
    ${list && !list.length && html`<p>${t('no_lectures')}</p>`}
    <ul class="cards">
      ${(list || []).map((l) => html`<li class="card" key=${l.id}>
        <h2><a href=${`#/lectures/${l.id}`}>${l.title}</a></h2>
        <p>${l.description}</p>
        <p class="links"><a href=${`#/lectures/${l.id}`}>${t('edit')}</a> <a href=${`#/lectures/${l.id}/dashboard`}>${t('dashboard')}</a></p>
      </li>`)}
    </ul>
  </main>`;
}

// remember keeps the sessions this browser opened, for the replay picker.
export function rememberSession(s) {
  let list = [];
  try { list = JSON.parse(localStorage.getItem('lockstep.sessions')) || []; } catch { list = []; }
  list = [s, ...list.filter((x) => x.id !== s.id)].slice(0, 20);
  localStorage.setItem('lockstep.sessions', JSON.stringify(list));
}

function LectureEditor({ id }) {
  const [lecture, setLecture] = useState(null);
  const [tasks, setTasks] = useState([]);
  const [err, setErr] = useState('');
  const load = useCallback(async () => {
    const l = await get(`/api/lectures/${id}`);
    const full = [];
    for (const task of l.tasks || []) full.push(await get(`/api/tasks/${task.id}`));
    setLecture(l);
    setTasks(full);
  }, [id]);
  useEffect(() => { load().catch((e) => setErr(errorText(e, t))); }, [load]);
  const guard = (f) => async (...a) => { setErr(''); try { await f(...a); await load(); } catch (e) { setErr(errorText(e, t)); } };

  const [sessionTitle, setSessionTitle] = useState('');
  const openSession = guard(async (ev) => {
    ev.preventDefault();
    const s = await post(`/api/lectures/${id}/sessions`, { title: sessionTitle || new Date().toLocaleString('ko-KR') });
    rememberSession({ id: s.session_id, code: s.session_code, title: sessionTitle, lecture: lecture.title, at: new Date().toISOString() });
    location.hash = `#/session/${s.session_code}/present`;
  });

  if (!lecture) return html`<main class="page">${err ? html`<p class="error" role="alert">${err}</p>` : t('loading')}</main>`;
  return html`<main class="page">
    <${LectureHeader} lecture=${lecture} onSave=${guard((b) => put(`/api/lectures/${id}`, b))} />
    ${err && html`<p class="error" role="alert">${err}</p>`}
    <form class="card row-form" onSubmit=${openSession}>
      <h2>${t('open_session')}</h2>
      <label>${t('session_title')}<input name="session-title" value=${sessionTitle} onInput=${(e) => setSessionTitle(e.target.value)} /></label>
      <button class="primary" type="submit" data-test="open-session">${t('open_session')}</button>
      <a href=${`#/lectures/${id}/dashboard`}>${t('dashboard')}</a>
    </form>
    <h2>${t('tasks')}</h2>
    ${tasks.map((task) => html`<section class="card" key=${task.id}>
      <h3>${task.order_index}. ${task.title}</h3>
      ${task.description && html`<p>${task.description}</p>`}
      <ol class="subtasks">
        ${(task.subtasks || []).map((s) => html`<${SubtaskRow} key=${s.id} s=${s}
          onSave=${guard((b) => put(`/api/subtasks/${s.id}`, b))} onDelete=${guard(() => del(`/api/subtasks/${s.id}`))} />`)}
      </ol>
      <${SubtaskForm} legend=${t('new_subtask')} initial=${{ order_index: (task.subtasks || []).length + 1 }}
        onSave=${guard((b) => post(`/api/tasks/${task.id}/subtasks`, b))} reset />
    </section>`)}
    <${TaskForm} next=${tasks.length + 1} onSave=${guard((b) => post(`/api/lectures/${id}/tasks`, b))} />
  </main>`;
}

function LectureHeader({ lecture, onSave }) {
  const [editing, setEditing] = useState(false);
  const [title, setTitle] = useState(lecture.title);
  const [description, setDescription] = useState(lecture.description || '');
  if (!editing) {
    return html`<div class="heading"><h1>${lecture.title}</h1><p>${lecture.description}</p>
      <button onClick=${() => setEditing(true)}>${t('edit')}</button></div>`;
  }
  return html`<form class="card row-form" onSubmit=${async (e) => { e.preventDefault(); await onSave({ title, description }); setEditing(false); }}>
    <label>${t('title')}<input value=${title} required onInput=${(e) => setTitle(e.target.value)} /></label>
    <label>${t('description')}<input value=${description} onInput=${(e) => setDescription(e.target.value)} /></label>
    <button class="primary" type="submit">${t('save')}</button>
    <button type="button" onClick=${() => setEditing(false)}>${t('cancel')}</button>
  </form>`;
}

function TaskForm({ next, onSave }) {
  const [title, setTitle] = useState('');
  const [description, setDescription] = useState('');
  const [order, setOrder] = useState('');
  return html`<form class="card row-form" data-test="task-form" onSubmit=${async (e) => {
    e.preventDefault();
    await onSave({ title, description, order_index: Number(order) || next });
    setTitle(''); setDescription(''); setOrder('');
  }}>
    <h2>${t('new_task')}</h2>
    <label>${t('title')}<input name="task-title" required value=${title} onInput=${(e) => setTitle(e.target.value)} /></label>
    <label>${t('description')}<input name="task-description" value=${description} onInput=${(e) => setDescription(e.target.value)} /></label>
    <label>${t('order')}<input name="task-order" type="number" min="1" placeholder=${String(next)} value=${order} onInput=${(e) => setOrder(e.target.value)} /></label>
    <button class="primary" type="submit">${t('add')}</button>
  </form>`;
}

function SubtaskRow({ s, onSave, onDelete }) {
  const [editing, setEditing] = useState(false);
  if (editing) {
    return html`<li><${SubtaskForm} legend=${t('edit')} initial=${s} onSave=${async (b) => { await onSave(b); setEditing(false); }} onCancel=${() => setEditing(false)} /></li>`;
  }
  return html`<li class="subtask">
    <strong>${s.title}</strong> <span class="tag">${s.target_action}</span>
    ${s.guide_text && html`<div class="muted">${s.guide_text}</div>`}
    <button class="small" onClick=${() => setEditing(true)}>${t('edit')}</button>
    <button class="small danger" onClick=${onDelete}>${t('delete')}</button>
  </li>`;
}

function SubtaskForm({ legend, initial, onSave, onCancel, reset }) {
  const blank = { title: '', description: '', target_action: 'CLICK', guide_text: '', voice_guide_text: '', order_index: '' };
  const [f, setF] = useState({ ...blank, ...initial });
  const set = (k) => (e) => setF({ ...f, [k]: e.target.value });
  return html`<form class="subtask-form" data-test="subtask-form" onSubmit=${async (e) => {
    e.preventDefault();
    const body = { title: f.title, description: f.description, target_action: f.target_action, guide_text: f.guide_text, voice_guide_text: f.voice_guide_text };
    if (f.order_index) body.order_index = Number(f.order_index);
    await onSave(body);
    if (reset) setF({ ...blank, order_index: (Number(f.order_index) || 0) + 1 });
  }}>
    <fieldset><legend>${legend}</legend>
      <label>${t('title')}<input name="subtask-title" required value=${f.title} onInput=${set('title')} /></label>
      <label>${t('description')}<input name="subtask-description" value=${f.description || ''} onInput=${set('description')} /></label>
      <label>${t('target_action')}<select name="subtask-action" value=${f.target_action} onChange=${set('target_action')}>
        ${ACTIONS.map((a) => html`<option value=${a}>${a}</option>`)}</select></label>
      <label>${t('guide_text')}<input name="subtask-guide" value=${f.guide_text || ''} onInput=${set('guide_text')} /></label>
      <label>${t('voice_guide_text')}<input name="subtask-voice" value=${f.voice_guide_text || ''} onInput=${set('voice_guide_text')} /></label>
      <label>${t('order')}<input name="subtask-order" type="number" min="1" value=${f.order_index || ''} onInput=${set('order_index')} /></label>
      <button class="primary" type="submit">${t('save')}</button>
      ${onCancel && html`<button type="button" onClick=${onCancel}>${t('cancel')}</button>`}
    </fieldset>
  </form>`;
}

// useSession looks the session up by its code (as students do).
function useSession(code) {
  const [s, setS] = useState(null);
  const [err, setErr] = useState('');
  useEffect(() => {
    get(`/api/sessions/${encodeURIComponent(code)}`).then((x) => {
      setS(x);
      rememberSession({ id: x.session_id, code: x.session_code, title: x.title, lecture: x.lecture && x.lecture.title, at: new Date().toISOString() });
    }).catch((e) => setErr(errorText(e, t)));
  }, [code]);
  return [s, err];
}

// useRoster follows the instructor session socket: participants, their
// progress, help requests and presence.
function useRoster(sessionId) {
  const [roster, setRoster] = useState({}); // user_id -> {user_id, name, status, done: {subtask_id: true}, help, last}
  const [online, setOnline] = useState(true);
  useEffect(() => {
    if (!sessionId) return;
    const sock = new Socket(`/ws/session/${sessionId}/instructor/`, {
      batch: 100,
      onStatus: setOnline,
      onMessage: (m) => setRoster((r) => foldRoster(r, m)),
    });
    return () => sock.close();
  }, [sessionId]);
  // reload re-reads the participants (their status changes with the
  // session's: start makes the waiting ones ACTIVE).
  const reload = useCallback(async () => {
    if (!sessionId) return;
    const p = await get(`/api/sessions/${sessionId}/participants`);
    setRoster((r) => foldRoster(r, { type: 'participants', data: p }));
  }, [sessionId]);
  return [roster, online, reload];
}

function foldRoster(r, m) {
  const d = m.data || {};
  const now = Date.now();
  const upd = (id, f) => {
    const cur = r[id] || { user_id: id, name: '', status: 'WAITING', done: {}, help: null, last: now };
    return { ...r, [id]: f(cur) };
  };
  switch (m.type) {
    case 'participants': {
      const next = {};
      for (const p of d.participants || []) {
        const old = r[p.user_id] || { done: {}, help: null, last: now };
        next[p.user_id] = { ...old, user_id: p.user_id, name: p.name, status: p.status };
      }
      return next;
    }
    case 'student_joined':
      return upd(d.user_id, (c) => ({ ...c, name: d.name || c.name, status: c.status === 'DISCONNECTED' ? 'ACTIVE' : (d.status || c.status), last: now }));
    case 'student_progress':
      return upd(d.user_id, (c) => ({ ...c, name: d.name || c.name, done: d.status === 'COMPLETED' ? { ...c.done, [d.subtask_id]: true } : c.done, help: d.status === 'COMPLETED' ? null : c.help, last: now }));
    case 'student_help_request': {
      const u = d.user || {};
      return upd(u.id, (c) => ({ ...c, name: u.name || c.name, help: d.help_request_id, last: now }));
    }
    case 'student_disconnected':
      return upd(d.user_id, (c) => ({ ...c, status: 'DISCONNECTED' }));
    default:
      if (d.user_id && d.status && ['WAITING', 'ACTIVE', 'DISCONNECTED'].includes(d.status)) {
        return upd(d.user_id, (c) => ({ ...c, status: d.status }));
      }
      return r;
  }
}

function Presenter({ code }) {
  const [s, err] = useSession(code);
  const [roster] = useRoster(s && s.session_id);
  if (err) return html`<main class="page"><p class="error" role="alert">${err}</p></main>`;
  if (!s) return html`<main class="page">${t('loading')}</main>`;
  const link = `${location.origin}/join/${s.session_code}`;
  const n = Object.keys(roster).length;
  return html`<main class="presenter">
    <h1>${s.lecture && s.lecture.title}${s.title ? ` · ${s.title}` : ''}</h1>
    <div class="present-grid">
      <img class="qr" src=${`/qr/${encodeURIComponent(s.session_code)}.png`} alt=${`QR: ${link}`} width="480" height="480" />
      <div>
        <p class="present-hint">${t('join_at')}</p>
        <p class="present-link">${location.host}/join/</p>
        <p class="present-code" data-test="session-code" aria-label=${s.session_code.split('').join(' ')}>${s.session_code}</p>
        <p class="present-count" data-test="joined-count" aria-live="polite">${t('joined_count', n)}</p>
        <p><a class="button" href=${`#/session/${s.session_code}`}>${t('control')}</a></p>
      </div>
    </div>
  </main>`;
}

function ControlRoom({ code }) {
  const [s, err0] = useSession(code);
  const sid = s && s.session_id;
  const [cur, setCur] = useState(null);
  const [err, setErr] = useState('');
  const [roster, online, reloadRoster] = useRoster(sid);
  const [confirmEnd, setConfirmEnd] = useState(false);
  const [, tick] = useState(0);
  useEffect(() => { const i = setInterval(() => tick((x) => x + 1), 10000); return () => clearInterval(i); }, []);

  const refresh = useCallback(async () => { if (sid) setCur(await get(`/api/sessions/${sid}/current`)); }, [sid]);
  useEffect(() => { refresh().catch((e) => setErr(errorText(e, t))); }, [refresh]);
  // The session may be driven from elsewhere too (another screen, the
  // simulator); its status is not on the instructor socket, so look every 3 s.
  useEffect(() => {
    if (!sid) return;
    const i = setInterval(() => { refresh().catch(() => {}); reloadRoster().catch(() => {}); }, 3000);
    return () => clearInterval(i);
  }, [sid, refresh, reloadRoster]);

  const command = useCallback(async (name) => {
    setErr('');
    try {
      await post(`/api/sessions/${sid}/${name}`, {});
      await refresh();
      reloadRoster().catch(() => {});
    } catch (e) { setErr(errorText(e, t)); }
  }, [sid, refresh]);

  const status = cur && cur.status;
  const can = {
    start: status === 'WAITING', 'next-step': status === 'IN_PROGRESS', pause: status === 'IN_PROGRESS',
    resume: status === 'PAUSED', end: status && status !== 'REVIEW_MODE',
  };
  useEffect(() => {
    const keys = { s: 'start', n: 'next-step', p: 'pause', r: 'resume', e: 'end' };
    const onKey = (ev) => {
      if (ev.ctrlKey || ev.metaKey || ev.altKey) return;
      const tag = (ev.target && ev.target.tagName) || '';
      if (['INPUT', 'TEXTAREA', 'SELECT'].includes(tag)) return;
      const c = keys[ev.key.toLowerCase()];
      if (!c || !can[c]) return;
      ev.preventDefault();
      if (c === 'end') { setConfirmEnd(true); return; }
      command(c);
    };
    window.addEventListener('keydown', onKey);
    return () => window.removeEventListener('keydown', onKey);
  });

  if (err0) return html`<main class="page"><p class="error" role="alert">${err0}</p></main>`;
  if (!s || !cur) return html`<main class="page">${t('loading')}</main>`;
  const step = cur.current_subtask;
  const people = Object.values(roster).sort((a, b) => a.name.localeCompare(b.name, 'ko'));
  const doneN = step ? people.filter((p) => p.done[step.id]).length : 0;
  const now = Date.now();

  return html`<main class="control" data-status=${status}>
    <section class="control-head">
      <div>
        <h1>${s.lecture && s.lecture.title} <span class="code">${s.session_code}</span></h1>
        <p class="status-line"><span class=${`pill st-${status}`} data-test="session-status">${t('session_status_' + status)}</span>
          ${!online && html` <span class="pill warn" role="status">${t('offline')}</span>`}
          <a href=${`#/session/${s.session_code}/present`}>${t('present')}</a>
          <a href=${`#/lectures/${s.lecture && s.lecture.id}/dashboard`}>${t('dashboard')}</a>
          <a href=${`/replay/${sid}`}>${t('replay')}</a></p>
      </div>
      <div class="buttons" role="toolbar" aria-label=${t('shortcuts')}>
        <button class="primary" data-test="start" disabled=${!can.start} onClick=${() => command('start')} aria-keyshortcuts="S">${t('start')}</button>
        <button class="primary" data-test="next" disabled=${!can['next-step']} onClick=${() => command('next-step')} aria-keyshortcuts="N">${t('next')}</button>
        <button data-test="pause" disabled=${!can.pause} onClick=${() => command('pause')} aria-keyshortcuts="P">${t('pause')}</button>
        <button data-test="resume" disabled=${!can.resume} onClick=${() => command('resume')} aria-keyshortcuts="R">${t('resume')}</button>
        ${confirmEnd
    ? html`<button class="danger" data-test="end-confirm" onClick=${() => { setConfirmEnd(false); command('end'); }}>${t('confirm_end')}</button>
           <button onClick=${() => setConfirmEnd(false)}>${t('cancel')}</button>`
    : html`<button class="danger" data-test="end" disabled=${!can.end} onClick=${() => setConfirmEnd(true)} aria-keyshortcuts="E">${t('end')}</button>`}
        <p class="muted small">${t('shortcuts')}</p>
      </div>
    </section>
    ${err && html`<p class="error" role="alert">${err}</p>`}
    <div class="control-grid">
      <section class="card step-card" aria-label=${t('current_step')}>
        <h2>${t('current_step')}</h2>
        ${step ? html`<p class="step-now" data-test="current-step">${step.title}</p>
          ${step.guide_text && html`<p>${step.guide_text}</p>`}
          <p class="done-count" data-test="done-count">${t('done_of', doneN, people.length)}</p>`
    : html`<p class="muted">${t('no_step')}</p>`}
        ${cur.instructor_message && html`<p class="muted">${cur.instructor_message}</p>`}
      </section>
      <section class="card roster" aria-label=${t('roster')}>
        <h2>${t('roster')} (${people.length})</h2>
        ${!people.length && html`<p class="muted">${t('no_students')}</p>`}
        <ul class="tiles" data-test="roster">
          ${people.map((p) => {
    const done = step && p.done[step.id];
    const idle = status === 'IN_PROGRESS' && p.status === 'ACTIVE' && !done && now - p.last > 120000;
    return html`<li key=${p.user_id} class=${`tile st-${p.status}${done ? ' done' : ''}${p.help ? ' helping' : ''}${idle ? ' idle' : ''}`} data-user=${p.user_id}>
              <span class="tile-name">${p.name}</span>
              <span class="tile-status">${t('status_' + p.status)}</span>
              ${done && html`<span class="tile-flag">✔ ${t('status_done')}</span>`}
              ${p.help && html`<span class="tile-flag">● ${t('status_help')}</span>`}
              ${idle && html`<span class="tile-flag">… ${t('status_idle')}</span>`}
            </li>`;
  })}
        </ul>
      </section>
      <${HelpQueue} />
    </div>
  </main>`;
}

// HelpQueue lists the instructor's open help requests, live, with the
// analyzer's suggestion, and answers them in place.
function HelpQueue() {
  const [items, setItems] = useState({});
  const merge = (id, patch) => setItems((m) => ({ ...m, [id]: { ...(m[id] || { help_request_id: id }), ...patch } }));
  const details = (id) => {
    get(`/api/help/request/${id}`).then((d) => merge(id, { status: d.status, suggestion: d.help_response, analysis: d.analysis })).catch(() => {});
  };
  useEffect(() => {
    get('/api/dashboard/help-requests/pending').then((r) => {
      for (const p of r.pending_requests || []) { merge(p.help_request_id, { user: p.user, subtask: p.subtask, status: p.status, created_at: p.created_at }); details(p.help_request_id); }
    }).catch(() => {});
    const sock = new Socket('/ws/dashboard/help-requests/', {
      onMessage: (m) => {
        const d = m.data || {};
        if (m.type === 'new_help_request') {
          merge(d.help_request_id, { user: d.user, subtask: d.subtask, lecture: d.lecture, status: d.status || 'ANALYZING', created_at: d.timestamp });
          setTimeout(() => details(d.help_request_id), 1500);
        } else if (m.type === 'help_request_updated') {
          merge(d.help_request_id, { status: d.status, responder: d.responder });
          details(d.help_request_id);
        }
      },
    });
    return () => sock.close();
  }, []);
  const list = Object.values(items).filter((x) => !x.answered && x.user).sort((a, b) => a.help_request_id - b.help_request_id);
  return html`<section class="card help-queue" aria-label=${t('help_queue')}>
    <h2>${t('help_queue')} (${list.length})</h2>
    ${!list.length && html`<p class="muted">${t('no_help')}</p>`}
    <ul data-test="help-queue">
      ${list.map((x) => html`<${HelpItem} key=${x.help_request_id} x=${x} onAnswered=${() => merge(x.help_request_id, { answered: true })} />`)}
    </ul>
  </section>`;
}

function HelpItem({ x, onAnswered }) {
  const [text, setText] = useState('');
  const [err, setErr] = useState('');
  async function send(ev) {
    ev.preventDefault();
    try {
      await post(`/api/help/request/${x.help_request_id}/respond`, { help_content: text, voice_guide_text: text });
      onAnswered();
    } catch (e) { setErr(errorText(e, t)); }
  }
  const label = `${t('answer')}: ${x.user && x.user.name}`;
  return html`<li class=${`help-item hs-${x.status}`} data-help=${x.help_request_id}>
    <p><strong>${x.user && x.user.name}</strong> · ${x.subtask && x.subtask.title} <span class="pill">${t('help_' + x.status)}</span></p>
    ${x.suggestion && x.suggestion.help_content && html`<p class="muted">${t('suggestion')}: ${x.suggestion.help_content}</p>`}
    <form onSubmit=${send} class="answer-form">
      <label class="sr-only" for=${`ans-${x.help_request_id}`}>${label}</label>
      <textarea id=${`ans-${x.help_request_id}`} name="answer" required rows="2" value=${text} onInput=${(e) => setText(e.target.value)} placeholder=${t('answer')}></textarea>
      <button class="primary" type="submit">${t('send_answer')}</button>
    </form>
    ${err && html`<p class="error" role="alert">${err}</p>`}
  </li>`;
}

let chartLoading = null;
function loadChart() {
  if (window.Chart) return Promise.resolve(window.Chart);
  if (!chartLoading) {
    chartLoading = new Promise((resolve, reject) => {
      const el = document.createElement('script');
      el.src = '/static/vendor/chart.umd.min.js';
      el.onload = () => resolve(window.Chart);
      el.onerror = reject;
      document.head.appendChild(el);
    });
  }
  return chartLoading;
}

function Dashboard({ id }) {
  const [students, setStudents] = useState(null);
  const [stats, setStats] = useState(null);
  const [err, setErr] = useState('');
  const canvas = useRef(null);
  useEffect(() => {
    let chart;
    (async () => {
      const [st, sa, trend, Chart] = await Promise.all([
        get(`/api/dashboard/lectures/${id}/students?page_size=100`),
        get(`/api/dashboard/statistics/lecture/${id}`),
        get(`/api/dashboard/chart-data/progress-trend?lecture_id=${id}&days=7`),
        loadChart(),
      ]);
      setStudents(st.students || []);
      setStats(sa);
      if (canvas.current) {
        const colors = ['#0b57d0', '#b3261e'];
        chart = new Chart(canvas.current, {
          type: 'line',
          data: { labels: trend.labels, datasets: (trend.datasets || []).map((d, i) => ({ ...d, borderColor: colors[i % 2], backgroundColor: colors[i % 2], tension: 0.2 })) },
          options: { animation: false, responsive: true, maintainAspectRatio: false },
        });
      }
    })().catch((e) => setErr(errorText(e, t)));
    return () => { if (chart) chart.destroy(); };
  }, [id]);
  const pct = (x) => `${Math.round((x || 0) * 100)}%`;
  return html`<main class="page">
    <h1>${t('dashboard')}</h1>
    ${err && html`<p class="error" role="alert">${err}</p>`}
    ${stats && html`<section class="stats">
      <div class="stat"><span>${t('total_students')}</span><strong>${stats.total_students}</strong></div>
      <div class="stat"><span>${t('average_progress')}</span><strong>${pct(stats.average_progress_rate)}</strong></div>
      <div class="stat"><span>${t('total_help')}</span><strong>${stats.total_help_requests}</strong></div>
      <div class="stat"><span>${t('avg_completion')}</span><strong>${stats.average_completion_time_minutes ?? '-'}</strong></div>
    </section>`}
    <section class="card"><h2>${t('trend')}</h2><div class="chart-box"><canvas ref=${canvas} role="img" aria-label=${t('trend')}></canvas></div></section>
    <section class="card"><h2>${t('students_table')}</h2>
      <table class="table">
        <thead><tr><th scope="col">${t('name')}</th><th scope="col">${t('progress')}</th><th scope="col">${t('current_step')}</th><th scope="col">${t('help_count')}</th><th scope="col">${t('last_activity')}</th></tr></thead>
        <tbody>${(students || []).map((s) => html`<tr key=${s.user_id}>
          <td>${s.name}</td><td>${pct(s.progress_rate)} (${s.completed_subtasks}/${s.total_subtasks})</td>
          <td>${s.current_subtask ? s.current_subtask.title : '-'}</td><td>${s.help_count}</td>
          <td>${s.last_activity ? new Date(s.last_activity).toLocaleString('ko-KR') : '-'}</td></tr>`)}
        </tbody>
      </table>
    </section>
  </main>`;
}
