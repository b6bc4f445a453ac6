// The public HTTP API and sockets, as any client uses them. Tokens live in
// localStorage (never in a page URL); sockets carry ?token= as the contract
// says, because browsers cannot set headers on a WebSocket.
const KEY = 'lockstep.auth';

export function auth() {
  try { return JSON.parse(localStorage.getItem(KEY)) || null; } catch { return null; }
}
export function setAuth(a) {
  if (a) localStorage.setItem(KEY, JSON.stringify(a)); else localStorage.removeItem(KEY);
}

export class ApiError extends Error {
  constructor(status, body) {
    super((body && body.error && body.error.message) || `HTTP ${status}`);
    this.status = status;
    this.code = body && body.error && body.error.code;
    this.details = body && body.error && body.error.details;
    this.body = body;
  }
}

let refreshing = null;
async function refresh() {
  const a = auth();
  if (!a || !a.refresh_token) return false;
  if (!refreshing) {
    refreshing = fetch('/api/auth/refresh', {
      method: 'POST', headers: { 'Content-Type': 'application/json' },
      body: JSON.stringify({ refresh_token: a.refresh_token }),
    }).then(async (r) => {
      if (!r.ok) return false;
      const b = await r.json();
      setAuth({ ...a, access_token: b.access_token, refresh_token: b.refresh_token || a.refresh_token });
      return true;
    }).catch(() => false).finally(() => { setTimeout(() => { refreshing = null; }, 0); });
  }
  return refreshing;
}

// api sends a JSON request with the stored token; a 401 refreshes once.
export async function api(method, path, body, opts = {}) {
  for (let attempt = 0; ; attempt++) {
    const a = auth();
    const headers = { Accept: opts.accept || 'application/json' };
    if (body !== undefined) headers['Content-Type'] = 'application/json';
    if (a && a.access_token) headers.Authorization = 'Bearer ' + a.access_token;
    const r = await fetch(path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
    if (r.status === 401 && attempt === 0 && a && await refresh()) continue;
    if (opts.raw) {
      if (!r.ok) throw new ApiError(r.status, null);
      return r;
    }
    const text = await r.text();
    let data = null;
    try { data = text ? JSON.parse(text) : null; } catch { data = null; }
    if (!r.ok) throw new ApiError(r.status, data);
    return data;
  }
}

export const get = (p) => api('GET', p);
export const post = (p, b = {}) => api('POST', p, b);
export const put = (p, b) => api('PUT', p, b);
export const del = (p) => api('DELETE', p);

export async function login(email, password) {
  const r = await fetch('/api/auth/login', {
    method: 'POST', headers: { 'Content-Type': 'application/json' },
    body: JSON.stringify({ email, password }),
  });
  const b = await r.json().catch(() => null);
  if (!r.ok) throw new ApiError(r.status, b);
  setAuth({ access_token: b.access_token, refresh_token: b.refresh_token, user: b.user });
  return b.user;
}

export async function register(fields) {
  const r = await fetch('/api/auth/register', {
    method: 'POST', headers: { 'Content-Type': 'application/json' },
    body: JSON.stringify(fields),
  });
  const b = await r.json().catch(() => null);
  if (!r.ok) throw new ApiError(r.status, b);
  return b;
}

export function logout() { setAuth(null); }

// Socket keeps a WebSocket open to path: it reconnects with ?after=<last
// position> after any drop (so it receives what it missed, never a second
// snapshot), unpacks batched frames, and never hands a message twice.
export class Socket {
  constructor(path, { onMessage, onStatus, batch } = {}) {
    this.path = path;
    this.onMessage = onMessage || (() => {});
    this.onStatus = onStatus || (() => {});
    this.batch = batch;
    this.after = null;
    this.closed = false;
    this.retry = 0;
    this.ws = null;
    this.onOffline = () => { if (this.ws) this.ws.close(); };
    this.onOnline = () => { if (!this.ws || this.ws.readyState > 1) { clearTimeout(this.timer); this.open(); } };
    window.addEventListener('offline', this.onOffline);
    window.addEventListener('online', this.onOnline);
    this.open();
  }

  open() {
    if (this.closed) return;
    const a = auth();
    const q = new URLSearchParams();
    q.set('token', (a && a.access_token) || '');
    if (this.after !== null) q.set('after', String(this.after));
    if (this.batch) q.set('batch', String(this.batch));
    const proto = location.protocol === 'https:' ? 'wss:' : 'ws:';
    const ws = new WebSocket(`${proto}//${location.host}${this.path}?${q}`);
    this.ws = ws;
    ws.onopen = () => { this.retry = 0; this.onStatus(true); };
    ws.onmessage = (ev) => {
      let m;
      try { m = JSON.parse(ev.data); } catch { return; }
      const list = m.type === 'batch' ? (m.messages || []) : [m];
      for (const x of list) {
        if (typeof x.position === 'number') {
          if (this.after !== null && x.position < this.after) continue; // already seen
          this.after = Math.max(this.after ?? 0, x.position);
        }
        // A record of what each socket delivered (the browser tests check
        // that a reconnect doubles nothing).
        (window.__lockstepMessages = window.__lockstepMessages || []).push(`${this.path} ${x.type}@${x.position}`);
        try { this.onMessage(x); } catch (e) { console.error(e); }
      }
    };
    ws.onclose = async (ev) => {
      if (this.ws !== ws) return;
      this.onStatus(false);
      if (this.closed) return;
      if (ev.code === 4401) await refresh();
      const wait = Math.min(250 * 2 ** this.retry, 4000);
      this.retry++;
      this.timer = setTimeout(() => this.open(), wait);
    };
  }

  close() {
    this.closed = true;
    clearTimeout(this.timer);
    window.removeEventListener('offline', this.onOffline);
    window.removeEventListener('online', this.onOnline);
    if (this.ws) this.ws.close();
  }
}

// speak reads text aloud in Korean (Web Speech API), when the browser can.
export function speak(text) {
  if (!text) return false;
  window.__lastSpoken = text; // lets tests see what was spoken
  if (!('speechSynthesis' in window)) return false;
  try {
    window.speechSynthesis.cancel();
    const u = new SpeechSynthesisUtterance(text);
    u.lang = 'ko-KR';
    u.rate = 0.9;
    const v = window.speechSynthesis.getVoices().find((x) => x.lang && x.lang.toLowerCase().startsWith('ko'));
    if (v) u.voice = v;
    window.speechSynthesis.speak(u);
    return true;
  } catch { return false; }
}

export function errorText(e, t) {
  if (e && e.code === 'RATE_LIMITED') return t('too_many_attempts');
  return (e && e.message) || t('error_generic');
}
