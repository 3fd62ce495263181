// What every screen shares: the device's token, REST calls, the live websocket (resume,
// heartbeat, clock offset), the language catalogues, sounds and small DOM helpers.
//
// Screens use the public REST API (/api/v1) and websocket protocol (docs/PROTOCOL.md) only.

const TOKEN_KEY = "rail-token";
const BRANCH_KEY = "rail-branch";
const LANG_KEY = "rail-lang";
const MUTE_KEY = "rail-muted";
export const LANGS = ["en", "tr"];

// ---------------------------------------------------------------------------------------------
// The device

/** The token's claims (not verified here: the server does that on every call). */
export function claimsOf(jwt) {
  try {
    const part = jwt.split(".")[1].replace(/-/g, "+").replace(/_/g, "/");
    return JSON.parse(decodeURIComponent(escape(atob(part))));
  } catch {
    return null;
  }
}

/**
 * The device this page runs as. The token arrives in the URL fragment (never sent to a
 * server, so never in an access log), is kept for this page on this device, and leaves the
 * address bar. Returns null when there is none (the page shows how to pair), and also while
 * the fragment holds a pairing code (`#pair=<branch>:<code>`): the page's pairing view
 * exchanges it for this device's new token (`takePairing`, `pair`).
 */
export function device() {
  const key = tokenKey();
  const fragment = new URLSearchParams(location.hash.slice(1));
  const fresh = fragment.get("token");
  if (fresh) {
    localStorage.setItem(key, fresh);
    fragment.delete("token");
    const rest = fragment.toString();
    history.replaceState(null, "", location.pathname + location.search + (rest ? `#${rest}` : ""));
  }
  if (fragment.has("pair")) return null;
  const token = localStorage.getItem(key);
  const claims = token ? claimsOf(token) : null;
  if (!claims || !claims.branch) return null;
  if (claims.exp && claims.exp * 1000 < Date.now()) return null;
  try { localStorage.setItem(BRANCH_KEY, claims.branch); } catch { /* storage full: not remembered */ }
  return { token, claims, branch: claims.branch, role: claims.role, forget: () => localStorage.removeItem(key) };
}

/** Where this page keeps its token on this device (one per page path). */
function tokenKey() {
  return `${TOKEN_KEY}:${location.pathname}`;
}

// ---------------------------------------------------------------------------------------------
// Pairing by code: a manager makes a short code (POST .../pairings); the new device sends it
// (POST .../pair, no token needed) and gets its token, kept as a `#token=` link keeps it.

/** The branch this device last ran for or paired with (prefills the pairing form). */
export function lastBranch() {
  return localStorage.getItem(BRANCH_KEY) || "";
}

/** A pairing code as the engine reads it: no spaces or dashes, upper case. */
export function normalCode(text) {
  return String(text ?? "").replace(/[\s\-‐-―]+/g, "").toUpperCase();
}

/**
 * Takes a pairing code out of the address bar (`#pair=<branch>:<code>`, as a manager's QR
 * code opens the page): returns `{branch, code}`, or null when the fragment has none.
 */
export function takePairing() {
  const fragment = new URLSearchParams(location.hash.slice(1));
  if (!fragment.has("pair")) return null;
  const value = fragment.get("pair") || "";
  fragment.delete("pair");
  const rest = fragment.toString();
  history.replaceState(null, "", location.pathname + location.search + (rest ? `#${rest}` : ""));
  const cut = value.lastIndexOf(":");
  if (cut < 0) return { branch: "", code: normalCode(value) };
  return { branch: value.slice(0, cut).trim(), code: normalCode(value.slice(cut + 1)) };
}

/**
 * Exchanges a pairing code for this device's token and keeps it for this page, as `#token=`
 * does. Resolves with the engine's answer (token, role, station, table, device, device_id,
 * expires_at); throws ApiError (`invalid_pairing_code`, `rate_limited` with `retryAfter`,
 * `unknown_branch`, `network`, ...). Sent once: a code is good for one exchange only.
 */
export async function pair(branch, code) {
  let res;
  try {
    res = await fetch(`/api/v1/branches/${encodeURIComponent(branch)}/pair`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ code: normalCode(code) }),
    });
  } catch (e) {
    throw new ApiError(0, "network", String(e));
  }
  let data = null;
  try {
    data = await res.json();
  } catch {
    data = null;
  }
  if (!res.ok || !data?.token) {
    const retryAfter = Number(res.headers.get("retry-after")) || 0;
    throw new ApiError(res.status, data?.error?.code || `http_${res.status}`, data?.error?.message || res.statusText, retryAfter);
  }
  localStorage.setItem(tokenKey(), data.token);
  try { localStorage.setItem(BRANCH_KEY, data.branch || branch); } catch { /* storage full: not remembered */ }
  return data;
}

// ---------------------------------------------------------------------------------------------
// REST

/** A refusal from the engine: its stable code, message and HTTP status. */
export class ApiError extends Error {
  constructor(status, code, message, retryAfter) {
    super(message);
    this.status = status;
    this.code = code;
    this.retryAfter = retryAfter;
  }
}

/** A random UUID, also where `crypto.randomUUID` is missing (plain http on a LAN address). */
export function uuid() {
  if (crypto.randomUUID) return crypto.randomUUID();
  const b = crypto.getRandomValues(new Uint8Array(16));
  b[6] = (b[6] & 0x0f) | 0x40;
  b[8] = (b[8] & 0x3f) | 0x80;
  const h = [...b].map((x) => x.toString(16).padStart(2, "0")).join("");
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`;
}

/**
 * Calls `/api/v1/branches/{branch}{path}`. A mutating call carries an idempotency key and is
 * sent again with the same key while the engine says to retry (503 overloaded or
 * owner_unavailable) or the network fails, so a retry never makes a second order.
 */
export async function api(dev, method, path, body, { attempts = 4 } = {}) {
  const headers = { authorization: `Bearer ${dev.token}` };
  if (body !== undefined) headers["content-type"] = "application/json";
  if (method !== "GET") headers["idempotency-key"] = uuid();
  let wait = 300;
  for (let attempt = 1; ; attempt++) {
    let res;
    try {
      res = await fetch(`/api/v1/branches/${encodeURIComponent(dev.branch)}${path}`, {
        method,
        headers,
        body: body === undefined ? undefined : JSON.stringify(body),
      });
    } catch (e) {
      if (attempt >= attempts) throw new ApiError(0, "network", String(e));
      await sleep(wait);
      wait *= 2;
      continue;
    }
    if (res.status === 204) return null;
    let data = null;
    try {
      data = await res.json();
    } catch {
      data = null;
    }
    if (res.ok) return data;
    const code = data?.error?.code || `http_${res.status}`;
    const retryAfter = Number(res.headers.get("retry-after")) || 0;
    if (res.status === 503 && attempt < attempts) {
      await sleep(Math.max(wait, retryAfter * 1000));
      wait *= 2;
      continue;
    }
    throw new ApiError(res.status, code, data?.error?.message || res.statusText, retryAfter);
  }
}

export function sleep(ms) {
  return new Promise((r) => setTimeout(r, ms));
}

// ---------------------------------------------------------------------------------------------
// The live connection

const PING_MS = 1000;
// No answer from the server for this long: the screen says it is stale (the protocol's
// heartbeat is a `ping` frame every second, answered at once with `pong`).
const STALE_MS = 2500;

/**
 * One websocket that follows topics and resumes them. `topics` are subscribe frames without
 * `type` (`{station: "grill"}`, `{table: "t4"}`, `{}` for the branch). `onFrame(frame)` gets
 * every snapshot, event, all_day, stock and error frame; `onState(state)` gets "connecting",
 * "live", "stale", "reconnecting" or "signin" (the token was refused: pair again).
 *
 * After a reconnect each topic is subscribed with `after` (the highest position seen on it),
 * so exactly the missed events arrive; a snapshot with `reset: true` means that was not
 * possible and the page replaces its state.
 */
export class Live {
  constructor(dev, { topics, onFrame, onState }) {
    this.dev = dev;
    this.topics = topics;
    this.onFrame = onFrame;
    this.onState = onState || (() => {});
    this.positions = new Map(); // topic key -> highest position seen
    this.pending = new Map(); // command id -> { frame, resolve, reject }
    this.offsets = []; // recent server-minus-local clock offsets (ms)
    this.state = null;
    this.socket = null;
    this.backoff = 500;
    this.lastHeard = 0;
    this.stopped = false;
    this.timer = setInterval(() => this.tick(), PING_MS / 2);
    this.connect();
  }

  /** Milliseconds to add to `Date.now()` for the server's clock. */
  get offset() {
    if (!this.offsets.length) return 0;
    const sorted = [...this.offsets].sort((a, b) => a - b);
    return sorted[Math.floor(sorted.length / 2)];
  }

  /** The server's clock now, as epoch milliseconds. */
  now() {
    return Date.now() + this.offset;
  }

  setState(state) {
    if (state === this.state) return;
    this.state = state;
    this.onState(state);
  }

  connect() {
    if (this.stopped) return;
    // A stale screen stays marked stale until it hears from the server again.
    if (this.state !== "stale") this.setState(this.state === null ? "connecting" : "reconnecting");
    const ws = new WebSocket(`${location.protocol === "https:" ? "wss" : "ws"}://${location.host}/ws`);
    this.socket = ws;
    this.authed = false;
    ws.onopen = () => {
      this.lastHeard = Date.now();
      ws.send(JSON.stringify({ type: "auth", token: this.dev.token }));
      this.ping();
    };
    ws.onmessage = (msg) => this.receive(ws, JSON.parse(msg.data));
    ws.onclose = (e) => {
      if (ws !== this.socket) return;
      this.socket = null;
      if (["token_expired", "invalid_token", "unauthenticated", "token_revoked"].includes(e.reason)) {
        this.stopped = true;
        this.setState("signin");
        return;
      }
      this.setState(Date.now() - this.lastHeard > STALE_MS ? "stale" : "reconnecting");
      setTimeout(() => this.connect(), this.backoff);
      this.backoff = Math.min(this.backoff * 2, 4000);
    };
  }

  receive(ws, frame) {
    if (ws !== this.socket) return;
    this.lastHeard = Date.now();
    switch (frame.type) {
      case "pong": {
        const sent = Number(frame.id);
        if (sent) {
          const local = (sent + Date.now()) / 2;
          this.offsets.push(Date.parse(frame.at) - local);
          if (this.offsets.length > 7) this.offsets.shift();
        }
        if (this.authed) this.setState("live");
        return;
      }
      case "authenticated":
        this.authed = true;
        this.backoff = 500;
        for (const topic of this.topics) {
          const after = this.positions.get(topicKey(topic));
          ws.send(JSON.stringify({ type: "subscribe", ...topic, ...(after != null ? { after } : {}) }));
        }
        // Commands not answered before the connection was lost: the same frames again (their
        // ids are their idempotency keys).
        for (const p of this.pending.values()) ws.send(JSON.stringify(p.frame));
        this.setState("live");
        return;
      case "snapshot":
        this.positions.set(topicKey(frame.topic), frame.snapshot.position);
        break;
      case "event": {
        const key = topicKey(frame.topic);
        if (frame.position <= (this.positions.get(key) ?? -1)) return; // seen already
        this.positions.set(key, frame.position);
        break;
      }
      case "ack":
      case "error": {
        const p = frame.id && this.pending.get(frame.id);
        if (p) {
          this.pending.delete(frame.id);
          if (frame.type === "ack") p.resolve(frame);
          else p.reject(new ApiError(0, frame.code, frame.message));
          return;
        }
        if (frame.type === "error" && ["invalid_token", "token_expired", "token_revoked"].includes(frame.code)) {
          this.stopped = true;
          this.setState("signin");
        }
        break;
      }
    }
    this.onFrame(frame);
  }

  ping() {
    if (this.socket?.readyState === WebSocket.OPEN) {
      this.socket.send(JSON.stringify({ type: "ping", id: String(Date.now()) }));
    }
  }

  tick() {
    if (this.stopped) return;
    if (!this.lastTick || Date.now() - this.lastTick >= PING_MS) {
      this.lastTick = Date.now();
      this.ping();
    }
    const silent = Date.now() - this.lastHeard;
    if (this.lastHeard && silent > STALE_MS && this.state !== "signin") this.setState("stale");
    if (this.socket && silent > STALE_MS) {
      // A socket that stopped answering: drop it and connect again.
      if (Date.now() - this.lastHeard > STALE_MS * 2) {
        const dead = this.socket;
        this.socket = null;
        try { dead.close(); } catch { /* already closed */ }
        setTimeout(() => this.connect(), 0);
      }
    }
  }

  /** Sends a frame that has no answer (`seen`). */
  send(frame) {
    if (this.socket?.readyState === WebSocket.OPEN && this.authed) {
      this.socket.send(JSON.stringify(frame));
      return true;
    }
    return false;
  }

  /** A ticket command (`start`, `bump`, `recall`): resolves on its `ack`, rejects on `error`. */
  command(type, station, ticket) {
    const id = uuid();
    const frame = { type, id, station, ticket };
    return new Promise((resolve, reject) => {
      this.pending.set(id, { frame, resolve, reject });
      this.send(frame);
    });
  }

  close() {
    this.stopped = true;
    clearInterval(this.timer);
    this.socket?.close();
  }
}

function topicKey(topic) {
  if (topic.kind) return `${topic.kind}:${topic.id ?? ""}`;
  if (topic.station) return `station:${topic.station}`;
  if (topic.table) return `table:${topic.table}`;
  return "branch:";
}

// ---------------------------------------------------------------------------------------------
// Languages: one catalogue per language (static/i18n/<lang>.json), flat dotted keys.

let catalogue = {};
let lang = "en";

/** The language: the one chosen on this device, else the device's settings, else English. */
export function preferredLang() {
  const chosen = localStorage.getItem(LANG_KEY);
  if (LANGS.includes(chosen)) return chosen;
  for (const l of navigator.languages || [navigator.language || "en"]) {
    const base = String(l).toLowerCase().split("-")[0];
    if (LANGS.includes(base)) return base;
  }
  return "en";
}

export function currentLang() {
  return lang;
}

/** Loads the catalogue of `to` (the preferred language by default) and translates the page. */
export async function setLang(to = preferredLang(), { remember = false } = {}) {
  const res = await fetch(`/static/i18n/${to}.json`);
  catalogue = await res.json();
  lang = to;
  if (remember) localStorage.setItem(LANG_KEY, to);
  document.documentElement.lang = to;
  translate(document);
  document.dispatchEvent(new CustomEvent("rail:lang", { detail: to }));
}

/** The text for `key`, with `{name}` placeholders filled from `vars`. */
export function t(key, vars = {}) {
  let text = catalogue[key];
  if (text === undefined) {
    console.warn(`untranslated: ${key}`);
    text = key;
  }
  return text.replace(/\{(\w+)\}/g, (_, name) => (vars[name] ?? `{${name}}`));
}

/** Fills `data-i18n` (text) and `data-i18n-<attr>` (attributes) under `root`. */
export function translate(root) {
  for (const node of root.querySelectorAll("[data-i18n]")) node.textContent = t(node.dataset.i18n);
  for (const attr of ["title", "placeholder", "aria-label", "alt"]) {
    for (const node of root.querySelectorAll(`[data-i18n-${attr}]`)) {
      node.setAttribute(attr, t(node.getAttribute(`data-i18n-${attr}`)));
    }
  }
}

/** EN / TR buttons that switch the page's language and remember the choice. */
export function langSwitch() {
  const box = el("div", { class: "lang", role: "group", "aria-label": "Language / Dil" });
  for (const l of LANGS) {
    const b = el("button", { type: "button", "data-lang": l, "aria-pressed": String(l === lang) }, l.toUpperCase());
    b.addEventListener("click", () => setLang(l, { remember: true }));
    box.append(b);
  }
  document.addEventListener("rail:lang", (e) => {
    for (const b of box.querySelectorAll("button")) b.setAttribute("aria-pressed", String(b.dataset.lang === e.detail));
  });
  return box;
}

// ---------------------------------------------------------------------------------------------
// Sound: short tones made in the page (no files), each kind its own, mutable per device.

let audio = null;

export function muted() {
  return localStorage.getItem(MUTE_KEY) === "1";
}

export function setMuted(on) {
  localStorage.setItem(MUTE_KEY, on ? "1" : "0");
}

/** Browsers start sound only after a tap or key: call this from one. */
export function unlockSound() {
  if (!audio) {
    try { audio = new AudioContext(); } catch { audio = null; }
  }
  audio?.resume?.();
}

const TONES = {
  new: [[660, 0.12], [880, 0.16]],
  changed: [[740, 0.1], [740, 0.1]],
  voided: [[520, 0.14], [330, 0.22]],
  ready: [[784, 0.12], [988, 0.12], [1175, 0.2]],
};

/** Plays the tone of `kind` ("new", "changed", "voided", "ready") unless muted. */
export function chime(kind) {
  document.dispatchEvent(new CustomEvent("rail:sound", { detail: kind }));
  if (muted() || !audio || audio.state !== "running") return;
  let at = audio.currentTime;
  for (const [freq, len] of TONES[kind] || TONES.changed) {
    const osc = audio.createOscillator();
    const gain = audio.createGain();
    osc.frequency.value = freq;
    gain.gain.setValueAtTime(0.25, at);
    gain.gain.exponentialRampToValueAtTime(0.001, at + len);
    osc.connect(gain).connect(audio.destination);
    osc.start(at);
    osc.stop(at + len);
    at += len + 0.03;
  }
}

// ---------------------------------------------------------------------------------------------
// Small helpers

/** `el("div", {class: "x", onclick: f}, child, "text")`. */
export function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v === undefined || v === null || v === false) continue;
    if (k === "class") node.className = v;
    else if (k.startsWith("on") && typeof v === "function") node.addEventListener(k.slice(2), v);
    else node.setAttribute(k, v === true ? "" : v);
  }
  for (const c of children.flat()) if (c !== null && c !== undefined && c !== false) node.append(c);
  return node;
}

/** A ticket number as kitchens call it: 0042. */
export function ticketNo(n) {
  return String(n ?? 0).padStart(4, "0");
}

/** Seconds as m:ss (or h:mm:ss), never negative. */
export function clock(seconds) {
  const s = Math.max(0, Math.floor(seconds));
  const h = Math.floor(s / 3600);
  const m = Math.floor((s % 3600) / 60);
  const ss = String(s % 60).padStart(2, "0");
  return h ? `${h}:${String(m).padStart(2, "0")}:${ss}` : `${m}:${ss}`;
}

/** A price in the branch's currency (Turkish lira for the first branches). */
export function money(cents, currency = "TRY") {
  return new Intl.NumberFormat(lang === "tr" ? "tr-TR" : "en-GB", { style: "currency", currency, currencyDisplay: "narrowSymbol" }).format(cents / 100);
}

/** A time of day in the branch's time zone: 20:06. */
export function timeOfDay(iso, zone) {
  return new Intl.DateTimeFormat(lang === "tr" ? "tr-TR" : "en-GB", {
    hour: "2-digit", minute: "2-digit", timeZone: zone || undefined,
  }).format(new Date(iso));
}

/**
 * The connection's state in a header element, and a red full-width banner while the screen
 * is stale (no answer from the server for 2.5 s) until it is live again.
 */
export function connectionBadge(badge, banner) {
  return (state) => {
    badge.dataset.state = state;
    badge.textContent = t(`conn.${state}`);
    banner.hidden = state !== "stale";
    if (state === "stale") banner.textContent = t("conn.stale_banner");
  };
}
