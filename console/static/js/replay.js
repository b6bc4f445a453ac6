// The analyst replay: pick a past session, scrub its timeline (state?at=),
// play it back through the replay socket, download its exports.
import { html, useState, useEffect, useRef } from './ui.js';
import { t } from './i18n.js';
import { auth, get, api, logout, Socket, errorText } from './api.js';
import { Login } from './instructor.js';

export function ReplayApp({ sessionId }) {
  const [user, setUser] = useState(() => { const a = auth(); return a && a.user; });
  if (!user) return html`<${Login} onDone=${setUser} title=${t('replay')} />`;
  return html`<div class="console">
    <header class="topbar">
      <a href="/" class="brand">${t('app_name')}</a>
      <nav>${user.role !== 'ANALYST' && html`<a href="/">${t('lectures')}</a>`}<a href="/replay/">${t('replay')}</a></nav>
      <span class="who">${user.name}</span>
      <button class="link" onClick=${() => { logout(); setUser(null); }}>${t('logout')}</button>
    </header>
    ${sessionId ? html`<${Replay} id=${sessionId} />` : html`<${Picker} />`}
  </div>`;
}

function Picker() {
  const [id, setId] = useState('');
  let recent = [];
  try { recent = JSON.parse(localStorage.getItem('lockstep.sessions')) || []; } catch { recent = []; }
  return html`<main class="page narrow">
    <h1>${t('replay_pick')}</h1>
    <form class="row-form" onSubmit=${(e) => { e.preventDefault(); if (Number(id) > 0) location.href = `/replay/${Number(id)}`; }}>
      <label>${t('session_id')}<input name="session-id" type="number" min="1" required value=${id} onInput=${(e) => setId(e.target.value)} /></label>
      <button class="primary" type="submit">${t('open')}</button>
    </form>
    ${recent.length > 0 && html`<h2>${t('recent_sessions')}</h2><ul class="plain">
      ${recent.map((s) => html`<li key=${s.id}><a href=${`/replay/${s.id}`}>#${s.id} ${s.lecture || ''} ${s.title || ''} (${s.code})</a></li>`)}</ul>`}
  </main>`;
}

function Replay({ id }) {
  const [range, setRange] = useState(null); // {from, to} in ms
  const [at, setAt] = useState(null);
  const [state, setState] = useState(null);
  const [err, setErr] = useState('');
  const [playing, setPlaying] = useState(null);
  const [log, setLog] = useState([]);
  const sock = useRef(null);
  const pending = useRef(null);

  useEffect(() => {
    (async () => {
      let first = null, last = null, after = 0;
      for (let i = 0; i < 50; i++) {
        const r = await get(`/api/analytics/sessions/${id}/events?after=${after}&limit=1000`);
        const ev = r.events || [];
        if (ev.length) {
          if (!first) first = ev[0].occurred_at;
          last = ev[ev.length - 1].occurred_at;
        }
        if (!r.next_after || !ev.length || r.next_after === after) break;
        after = r.next_after;
      }
      if (!first) { setErr(t('no_events')); return; }
      // Times carry microseconds; a millisecond slider rounds down, so end one
      // millisecond later to include the last event.
      const from = Date.parse(first), to = Date.parse(last) + 1;
      setRange({ from, to });
      setAt(to);
    })().catch((e) => setErr(errorText(e, t)));
    return () => { if (sock.current) sock.current.close(); };
  }, [id]);

  // The slider drives state?at= (the latest request wins).
  useEffect(() => {
    if (at === null) return;
    const iso = new Date(at).toISOString();
    pending.current = iso;
    const h = setTimeout(() => {
      get(`/api/analytics/sessions/${id}/state?at=${encodeURIComponent(iso)}`)
        .then((s) => { if (pending.current === iso) setState(s); })
        .catch((e) => setErr(errorText(e, t)));
    }, 60);
    return () => clearTimeout(h);
  }, [at, id]);

  function play(speed) {
    if (sock.current) sock.current.close();
    setLog([]);
    setPlaying(speed);
    sock.current = new Socket(`/ws/replay/session/${id}/`, {
      onMessage: (m) => {
        if (m.type === 'replay_finished') { setPlaying(null); sock.current.close(); setLog((l) => [...l, t('replay_finished')]); return; }
        const ts = m.data && (m.data.timestamp || m.data.started_at || m.data.ended_at || m.data.joined_at || m.data.completed_at);
        if (ts && range) setAt(Math.min(range.to, Math.max(range.from, Date.parse(ts))));
        setLog((l) => [...l.slice(-30), describe(m)]);
      },
    });
    // A replay is not resumed after a drop: it starts over from the start.
    sock.current.after = null;
  }
  function stop() { if (sock.current) sock.current.close(); setPlaying(null); }

  async function download(kind) {
    try {
      const r = kind === 'ndjson'
        ? await api('GET', `/api/analytics/sessions/${id}/events`, undefined, { raw: true, accept: 'application/x-ndjson' })
        : await api('GET', `/api/analytics/sessions/${id}/xapi`, undefined, { raw: true });
      const blob = await r.blob();
      const a = document.createElement('a');
      a.href = URL.createObjectURL(blob);
      a.download = kind === 'ndjson' ? `session-${id}.ndjson` : `session-${id}-xapi.json`;
      document.body.appendChild(a);
      a.click();
      setTimeout(() => { URL.revokeObjectURL(a.href); a.remove(); }, 1000);
    } catch (e) { setErr(errorText(e, t)); }
  }

  const step = state && state.current_subtask;
  return html`<main class="page">
    <h1>${t('replay')} #${id}</h1>
    ${err && html`<p class="error" role="alert">${err}</p>`}
    ${range && html`<section class="card">
      <label for="timeline">${t('timeline')}: <output data-test="at">${new Date(at).toLocaleString('ko-KR')}</output></label>
      <input id="timeline" class="timeline" type="range" data-test="timeline" min=${range.from} max=${range.to} step="1" value=${at}
        onInput=${(e) => setAt(Number(e.target.value))} />
      <div class="buttons">
        ${[1, 4, 16].map((x) => html`<button class=${playing === x ? 'primary' : ''} onClick=${() => play(x)}>${t('play', x)}</button>`)}
        <button disabled=${!playing} onClick=${stop}>${t('stop')}</button>
        <button onClick=${() => download('ndjson')}>${t('export_ndjson')}</button>
        <button onClick=${() => download('xapi')}>${t('export_xapi')}</button>
      </div>
    </section>`}
    ${state && html`<div class="control-grid">
      <section class="card step-card">
        <h2>${t('current_step')}</h2>
        <p><span class=${`pill st-${state.status}`} data-test="replay-status">${t('session_status_' + state.status)}</span></p>
        ${step ? html`<p class="step-now" data-test="replay-step">${step.title}</p>${step.guide_text && html`<p>${step.guide_text}</p>`}`
    : html`<p class="muted" data-test="replay-step">${t('no_step')}</p>`}
      </section>
      <section class="card roster"><h2>${t('roster')} (${(state.participants || []).length})</h2>
        <ul class="tiles" data-test="replay-roster">${(state.participants || []).map((p) => html`<li key=${p.user_id} class=${`tile st-${p.status}${step && (p.completed_subtask_ids || []).includes(step.id) ? ' done' : ''}`}>
          <span class="tile-name">${p.name}</span><span class="tile-status">${t('status_' + p.status)}</span>
          <span class="tile-flag">${t('completed_steps', (p.completed_subtask_ids || []).length)}</span></li>`)}</ul>
      </section>
      <section class="card"><h2>${t('open_help_requests')} (${(state.open_help_requests || []).length})</h2>
        <ul class="plain">${(state.open_help_requests || []).map((h) => html`<li key=${h.help_request_id}>#${h.help_request_id} · ${h.user_id} · ${t('help_' + h.status)}</li>`)}</ul>
      </section>
    </div>`}
    ${log.length > 0 && html`<section class="card"><ol class="log">${log.map((l, i) => html`<li key=${i}>${l}</li>`)}</ol></section>`}
  </main>`;
}

function describe(m) {
  const d = m.data || {};
  const who = d.name || (d.user && d.user.name) || '';
  const what = (d.current_subtask && d.current_subtask.title) || d.subtask_title || (d.subtask && d.subtask.title) || '';
  return [m.type, who, what].filter(Boolean).join(' · ');
}
