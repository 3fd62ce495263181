// The manager's screen (/manage). It owns:
// - Service: speed of service per station (GET .../stations/{s}/speed, every 10 s) and the
//   alerts of the moment: tickets no screen acknowledged (`ticket_unseen`), late and ageing
//   tickets by the branch's colour thresholds.
// - The branch's configuration (stations, categories, items with modifier groups, tables,
//   timers, time zone) edited as one draft in forms and saved whole with PUT .../{branch};
//   the engine validates it, and its refusal is shown next to the form with nothing saved.
// - The 86 list and limited counts (PUT/DELETE /86/{item}, /stock/{item}), at once.
// - Devices: the branch's paired devices (GET /devices: role, station or table, issued,
//   expiry, last seen, revoked) with a revoke confirmed on the page (POST
//   /devices/{id}/revoke); a pairing code for a new device (POST /pairings) shown large with
//   its countdown, a QR code of its `#pair=` link, and "paired" once the device used it; a token
//   issued for a role, station or table (POST /tokens) shown as a pairing link and a QR code
//   (static/vendor/qrcode.js); printable QR cards for the QR tables.
// - Unpaired (or unpaired by a manager): the pairing form (static/pairing.js).

import {
  device, api, Live, setLang, t, langSwitch, el, money, ticketNo, clock, timeOfDay, connectionBadge,
  currentLang,
} from "/static/rail.js";
import { pairingForm, refusalOf } from "/static/pairing.js";

const SOURCES = ["dine_in", "counter", "takeaway", "delivery", "qr"];
const TABLE_KINDS = ["dine_in", "counter", "takeaway", "delivery", "qr"];
const DEFAULTS = { unseen_after_seconds: 10, late_after_seconds: 480, warning_after_seconds: 300 };
const SPEED_MS = 10000;
const DEVICES_MS = 15000; // the device list read again while shown
const DEVICES_PENDING_MS = 3000; // ... and this often while a code waits to be used
const QR_TTL = 31536000; // a printed table card: a year, the longest a token may last
const SVG = "http://www.w3.org/2000/svg";

const $ = (id) => document.getElementById(id);

const state = {
  dev: null,
  section: "service",
  saved: null, // the configuration as the engine holds it
  draft: null, // the manager's working copy
  fresh: new WeakSet(), // draft rows added since the last save (their ids may still change)
  idTouched: new WeakSet(), // fresh rows whose id the manager typed (no longer follows the name)
  selected: null, // the item open in the item form (a draft object)
  eightySixed: new Set(),
  stock: new Map(),
  tickets: new Map(), // ticket id -> live ticket
  unseen: new Map(), // ticket id -> {station, waited, since}
  speed: new Map(), // station -> speed answer
  openOrders: null, // how many orders are open (GET .../orders)
  speedAt: null,
  supports: { modifiers: false, timers: false },
  saving: false,
  saveError: null,
  remoteChanged: false,
  catalogues: {},
  devices: null, // GET /devices, as last read
  devicesAt: 0, // when it was read (local clock)
  devicesError: null,
  confirmRevoke: null, // the device id whose revoke waits for its confirmation
  revoking: null,
  code: null, // the pairing code shown: {pairing, role, paired}
  lastResult: null, // "code" or "token": which of the two was made last
  started: false,
};

// ---------------------------------------------------------------------------------------------
// Start

await setLang();
$("lang-slot").replaceWith(langSwitch());
document.addEventListener("rail:lang", () => {
  $("toast").hidden = true; // said in the language just left
  if (state.refusal) refuse(state.refusal.titleKey, state.refusal.textKey);
  if (state.saved) renderAll();
});

state.dev = device();
if (!state.dev) unpaired(null);
else begin();

function begin() {
  if (state.dev.role !== "manager") refuse("manage.refused_title", "manage.refused_role");
  else start();
}

/**
 * The pairing form (static/pairing.js); `why` is "revoked" when a manager unpaired this
 * screen. Paired, the page starts at once, or starts over when it ran before.
 */
function unpaired(why) {
  if (why === "revoked") state.dev?.forget();
  state.refusal = null;
  state.unpaired = true;
  for (const id of ["app", "savebar", "conn", "refused", "stale"]) $(id).hidden = true;
  $("pair-slot").replaceChildren(pairingForm({
    reason: why,
    accepts: (issued) => issued.role === "manager",
    onPaired: () => {
      if (state.started) return location.reload();
      state.unpaired = false;
      $("pair").hidden = true;
      $("pair-slot").replaceChildren();
      state.dev = device();
      if (state.dev) begin();
      else unpaired(null);
    },
  }));
  $("pair").hidden = false;
}

function refuse(titleKey, textKey) {
  state.refusal = { titleKey, textKey };
  $("app").hidden = true;
  $("savebar").hidden = true;
  $("conn").hidden = true;
  $("refused").hidden = false;
  $("refused-title").textContent = t(titleKey);
  $("refused-text").textContent = t(textKey);
}

async function start() {
  const dev = state.dev;
  state.started = true;
  wire();
  const [info] = await Promise.all([
    api(dev, "GET", "").catch((e) => e),
    detectSupport(),
  ]);
  if (info instanceof Error) {
    if (info.status === 401) return info.code === "token_revoked" ? unpaired("revoked") : refuse("manage.signin_title", "manage.signin");
    if (info.status === 403) return refuse("manage.refused_title", "manage.refused_role");
    return refuse("manage.load_failed_title", "manage.load_failed");
  }
  applyInfo(info);
  $("app").hidden = false;
  go(sectionFromHash() || "service");
  const badge = connectionBadge($("conn"), $("stale"));
  $("conn").hidden = false;
  state.live = new Live(dev, {
    topics: [{}],
    onFrame,
    onState: (s) => {
      badge(s);
      if (s === "signin") {
        state.live.close();
        refusalOf(dev).then((why) => (why === "revoked" ? unpaired("revoked") : refuse("manage.signin_title", "manage.signin")));
      }
    },
  });
  refreshService();
  setInterval(refreshService, SPEED_MS);
  setInterval(() => { if (state.section === "service") renderAlerts(); }, 1000);
  setInterval(tickDevices, 250);
  window.addEventListener("beforeunload", (e) => { if (dirty() && !state.unpaired) e.preventDefault(); });
}

/** Which newer configuration fields this engine takes (its OpenAPI document says). */
async function detectSupport() {
  try {
    const doc = await (await fetch("/api/v1/openapi.json")).json();
    const schemas = doc.components?.schemas || {};
    const item = schemas.MenuItem?.properties || {};
    const config = schemas.BranchConfig?.properties || {};
    state.supports.modifiers = "modifier_groups" in item;
    state.supports.timers = "warning_after_seconds" in config && "timers_by_source" in config;
  } catch {
    // Without the document, the fields the configuration already holds tell.
  }
}

function applyInfo(info) {
  state.eightySixed = new Set(info.eighty_sixed || []);
  state.stock = new Map((info.stock || []).map((s) => [s.item, s.left]));
  setSaved(info.config, { replaceDraft: true });
}

function setSaved(config, { replaceDraft }) {
  state.saved = config;
  if (config.items?.some((i) => Array.isArray(i.modifier_groups))) state.supports.modifiers = true;
  if ("warning_after_seconds" in config || "timers_by_source" in config) state.supports.timers = true;
  if (replaceDraft) {
    state.draft = structuredClone(config);
    state.fresh = new WeakSet();
    state.idTouched = new WeakSet();
    const id = state.selected?.id;
    state.selected = state.draft.items.find((i) => i.id === id) || null;
    state.remoteChanged = false;
  }
  $("branch-name").textContent = config.name ? ` · ${config.name}` : "";
  document.title = `${t("manage.title")} · ${config.name}`;
}

function sectionFromHash() {
  const name = new URLSearchParams(location.hash.slice(1)).get("section");
  return document.querySelector(`.section[data-section="${CSS.escape(name || "")}"]`) ? name : null;
}

// ---------------------------------------------------------------------------------------------
// Navigation

function go(section) {
  state.section = section;
  // The section survives a reload (the fragment holds no token any more: see device()).
  history.replaceState(null, "", `${location.pathname}${location.search}#section=${section}`);
  for (const s of document.querySelectorAll(".section")) s.hidden = s.dataset.section !== section;
  for (const b of document.querySelectorAll(".side [data-go]")) {
    if (b.dataset.go === section) b.setAttribute("aria-current", "page");
    else b.removeAttribute("aria-current");
  }
  renderSection();
  updateSavebar();
}

function renderAll() {
  renderSection();
  updateSavebar();
  $("branch-name").textContent = state.saved?.name ? ` · ${state.saved.name}` : "";
}

function renderSection() {
  switch (state.section) {
    case "service": renderAlerts(); renderSpeed(); break;
    case "items": renderItems(); break;
    case "categories": renderCategories(); break;
    case "stations": renderStations(); break;
    case "tables": renderTables(); break;
    case "settings": renderSettings(); break;
    case "stock": renderStock(); break;
    case "devices":
      renderDeviceForm();
      if (state.lastResult === "token" && state.lastToken) showToken(state.lastToken.issued, state.lastToken.role);
      renderCode();
      renderDevices();
      if (Date.now() - state.devicesAt > 1000) refreshDevices();
      break;
  }
}

// ---------------------------------------------------------------------------------------------
// Live: the branch's events

function onFrame(frame) {
  if (frame.type === "snapshot") {
    const snap = frame.snapshot || {};
    if (snap.config) remoteConfig(snap.config);
    if (snap.eighty_sixed) state.eightySixed = new Set(snap.eighty_sixed);
    if (frame.reset) state.tickets.clear();
    for (const order of snap.orders || []) for (const tk of order.tickets || []) keepTicket(tk);
    rerenderLive();
    return;
  }
  if (frame.type === "stock") {
    state.stock = new Map((frame.items || []).map((s) => [s.item, s.left]));
    if (state.section === "stock") renderStock();
    return;
  }
  if (frame.type !== "event") return;
  const ev = frame.event || {};
  switch (ev.type) {
    case "branch_configured":
      remoteConfig(ev.config);
      break;
    case "item_eighty_sixed":
      state.eightySixed.add(ev.item);
      break;
    case "item_restored":
      state.eightySixed.delete(ev.item);
      break;
    case "course_fired":
    case "orders_merged":
      for (const tk of ev.tickets || []) keepTicket(tk);
      break;
    case "ticket_started": {
      const tk = state.tickets.get(ev.ticket_id);
      if (tk) tk.status = "started";
      break;
    }
    case "ticket_bumped":
    case "ticket_voided":
      state.tickets.delete(ev.ticket_id);
      state.unseen.delete(ev.ticket_id);
      break;
    case "ticket_recalled":
      refreshTickets();
      break;
    case "ticket_unseen":
      state.unseen.set(ev.ticket_id, { station: ev.station, waited: ev.waited_seconds, since: Date.now() });
      break;
    case "ticket_seen":
      state.unseen.delete(ev.ticket_id);
      break;
    case "order_opened":
    case "order_closed":
    case "merged_into":
      ordersChanged();
      return;
    case "order_moved":
      for (const ref of ev.tickets || []) {
        const tk = state.tickets.get(ref.ticket_id);
        if (tk) { tk.table = ev.to; tk.moved_from = ev.from; }
      }
      break;
    default:
      return;
  }
  rerenderLive();
}

function keepTicket(tk) {
  if (tk.status === "new" || tk.status === "started") {
    state.tickets.set(tk.id, tk);
    if (tk.unseen && !state.unseen.has(tk.id)) state.unseen.set(tk.id, { station: tk.station, waited: null, since: Date.now() });
  } else {
    state.tickets.delete(tk.id);
  }
}

function rerenderLive() {
  if (state.section === "service") { renderAlerts(); renderSpeed(); }
  if (state.section === "stock") renderStock();
}

/** The configuration changed on the engine (this screen's save, or another device's). */
function remoteConfig(config) {
  if (!config) return;
  if (JSON.stringify(clean(config)) === JSON.stringify(clean(state.saved))) return;
  const mine = dirty();
  setSaved(config, { replaceDraft: !mine });
  if (mine) state.remoteChanged = true;
  renderAll();
}

// ---------------------------------------------------------------------------------------------
// Service: alerts and speed of service

async function refreshService() {
  if (!state.saved || document.hidden) return;
  await Promise.all([refreshTickets(), refreshSpeed(), refreshOrders()]);
  if (state.section === "service") { renderAlerts(); renderSpeed(); }
}

async function refreshTickets() {
  const stations = state.saved.stations;
  const lists = await Promise.all(stations.map((s) =>
    api(state.dev, "GET", `/stations/${encodeURIComponent(s.id)}/tickets`, undefined, { attempts: 1 }).catch(() => null)));
  if (lists.some((l) => l === null)) return;
  state.tickets.clear();
  for (const list of lists) for (const tk of list) keepTicket(tk);
  for (const id of [...state.unseen.keys()]) {
    const tk = state.tickets.get(id);
    if (!tk || !tk.unseen) state.unseen.delete(id);
  }
}

async function refreshOrders() {
  try {
    state.openOrders = (await api(state.dev, "GET", "/orders", undefined, { attempts: 1 })).length;
  } catch {
    // Shown as it was; the next refresh tries again.
  }
}

let ordersTimer = null;
function ordersChanged() {
  clearTimeout(ordersTimer);
  ordersTimer = setTimeout(async () => { await refreshOrders(); if (state.section === "service") renderKpis(); }, 300);
}

async function refreshSpeed() {
  const minutes = $("speed-window").value;
  const answers = await Promise.all(state.saved.stations.map((s) =>
    api(state.dev, "GET", `/stations/${encodeURIComponent(s.id)}/speed?window_minutes=${minutes}`, undefined, { attempts: 1 })
      .then((a) => [s.id, a]).catch(() => [s.id, null])));
  for (const [id, a] of answers) if (a) state.speed.set(id, a);
  state.speedAt = new Date();
}

function timersFor(source) {
  const c = state.saved;
  const own = (source && c.timers_by_source?.[source]) || {};
  return {
    warning: own.warning_after_seconds ?? c.warning_after_seconds ?? DEFAULTS.warning_after_seconds,
    late: own.late_after_seconds ?? c.late_after_seconds ?? DEFAULTS.late_after_seconds,
  };
}

function stationName(id) {
  return state.saved.stations.find((s) => s.id === id)?.name || id;
}

function tableName(id) {
  return state.saved.tables.find((x) => x.id === id)?.name || id;
}

function renderAlerts() {
  const list = $("alerts");
  const now = state.live ? state.live.now() : Date.now(); // the server's clock: tickets' times are its
  const rows = [];
  for (const [id, u] of state.unseen) {
    const tk = state.tickets.get(id);
    const waited = tk ? (now - Date.parse(tk.fired_at)) / 1000 : (u.waited || 0) + (now - u.since) / 1000;
    rows.push({ kind: "unseen", id, tk, station: u.station, seconds: waited, order: 0 });
  }
  for (const [id, tk] of state.tickets) {
    if (state.unseen.has(id)) continue;
    const age = (now - Date.parse(tk.fired_at)) / 1000;
    const limits = timersFor(tk.source);
    if (age >= limits.late) rows.push({ kind: "late", id, tk, station: tk.station, seconds: age, order: 1 });
    else if (age >= limits.warning) rows.push({ kind: "warn", id, tk, station: tk.station, seconds: age, order: 2 });
  }
  rows.sort((a, b) => a.order - b.order || b.seconds - a.seconds);
  state.alertCounts = { unseen: rows.filter((r) => r.kind === "unseen").length, late: rows.filter((r) => r.kind === "late").length };
  renderKpis();
  list.replaceChildren(...rows.map((r) => el("li", { class: `alert ${r.kind}`, "data-ticket": r.id, "data-kind": r.kind },
    el("strong", { class: "alert-kind" }, t(`manage.alerts.${r.kind}`)),
    el("span", { class: "alert-what" }, [
      stationName(r.station),
      r.tk ? `#${ticketNo(r.tk.ticket_no)}` : null,
      r.tk ? tableName(r.tk.table) : null,
      r.tk?.source ? t(`source.${r.tk.source}`) : null,
    ].filter(Boolean).join(" · ")),
    el("span", { class: "alert-time" }, t(r.kind === "unseen" ? "manage.alerts.waiting" : "manage.alerts.since_fire", { time: clock(r.seconds) })))));
  $("alerts-none").hidden = rows.length > 0;
}

function renderKpis() {
  $("kpi-orders").textContent = state.openOrders === null ? "–" : String(state.openOrders);
  $("kpi-tickets").textContent = String([...state.tickets.values()].filter((tk) => tk.kind !== "expo").length);
  const counts = state.alertCounts || { unseen: 0, late: 0 };
  $("kpi-unseen").textContent = String(counts.unseen);
  $("kpi-late").textContent = String(counts.late);
  $("kpi-unseen-box").classList.toggle("bad", counts.unseen > 0);
  $("kpi-late-box").classList.toggle("bad", counts.late > 0);
}

/** The items slowest from fire to bump over the window, over every cooking station. */
function renderSlow() {
  const rows = [];
  for (const s of state.saved.stations) {
    if (s.kind === "expo") continue;
    for (const it of state.speed.get(s.id)?.items || []) if (it.tickets) rows.push({ ...it, station: s.id });
  }
  rows.sort((a, b) => (b.p90_seconds ?? 0) - (a.p90_seconds ?? 0) || b.tickets - a.tickets);
  const secs = (v) => (v === null || v === undefined ? "–" : clock(v));
  $("slow-rows").replaceChildren(...rows.slice(0, 6).map((r) => el("tr", { "data-item": r.item, "data-station": r.station },
    el("th", { scope: "row" }, r.name || r.item),
    el("td", {}, stationName(r.station)),
    el("td", { class: "num" }, String(r.tickets)),
    el("td", { class: "num" }, secs(r.average_seconds)),
    el("td", { class: "num" }, secs(r.p90_seconds)),
    el("td", { class: `num ${r.late ? "bad" : ""}` }, String(r.late)))));
  $("slow-none").hidden = rows.length > 0;
}

function renderSpeed() {
  renderSlow();
  const body = $("speed-rows");
  const live = new Map();
  for (const tk of state.tickets.values()) live.set(tk.station, (live.get(tk.station) || 0) + 1);
  const dash = "–";
  body.replaceChildren(...state.saved.stations.map((s) => {
    const sp = state.speed.get(s.id);
    const secs = (v) => (v === null || v === undefined ? dash : clock(v));
    return el("tr", { "data-station": s.id },
      el("th", { scope: "row" }, s.name, s.kind === "expo" ? el("span", { class: "tag expo-tag" }, t("manage.kind.expo")) : null),
      el("td", { class: "num live-count" }, String(live.get(s.id) || 0)),
      el("td", { class: "num tickets" }, sp ? String(sp.tickets) : dash),
      el("td", { class: "num mean" }, sp ? secs(sp.average_seconds) : dash),
      el("td", { class: "num p90" }, sp ? secs(sp.p90_seconds) : dash),
      el("td", { class: `num late ${sp?.late ? "bad" : ""}` }, sp ? String(sp.late) : dash),
      el("td", { class: "num recalls" }, sp ? String(sp.recalls) : dash));
  }));
  $("speed-updated").textContent = state.speedAt
    ? t("manage.speed.updated", { time: timeOfDay(state.speedAt.toISOString(), state.saved.time_zone) + `:${String(state.speedAt.getSeconds()).padStart(2, "0")}`, late: timersFor(null).late })
    : "";
}

// ---------------------------------------------------------------------------------------------
// The draft and saving

/** The configuration as it is sent: unset optional fields left out. */
function clean(config) {
  if (!config) return config;
  const c = structuredClone(config);
  for (const k of ["time_zone", "unseen_after_seconds", "late_after_seconds", "warning_after_seconds", "course_pace_seconds"]) {
    if (c[k] === null || c[k] === undefined || c[k] === "") delete c[k];
  }
  if (c.timers_by_source) {
    for (const [src, tm] of Object.entries(c.timers_by_source)) {
      for (const k of Object.keys(tm)) if (tm[k] === null || tm[k] === undefined || tm[k] === "") delete tm[k];
      if (!Object.keys(tm).length) delete c.timers_by_source[src];
    }
    if (!Object.keys(c.timers_by_source).length) delete c.timers_by_source;
  }
  if (!state.supports.timers) {
    delete c.warning_after_seconds;
    delete c.timers_by_source;
  }
  for (const s of c.stations) if (s.lanes === null || s.lanes === undefined) delete s.lanes;
  for (const i of c.items) {
    if (i.prep_seconds === null || i.prep_seconds === undefined) delete i.prep_seconds;
    if (!i.stations) i.stations = [];
    if (!state.supports.modifiers || !i.modifier_groups?.length) {
      delete i.modifier_groups;
    } else {
      for (const g of i.modifier_groups) {
        if (g.max === null || g.max === undefined) delete g.max;
        g.required = !!g.required;
        for (const o of g.options) {
          if (!o.price_cents) delete o.price_cents;
          if (!o.allergen) delete o.allergen;
        }
      }
    }
  }
  return c;
}

function dirty() {
  return !!state.draft && JSON.stringify(clean(state.draft)) !== JSON.stringify(clean(state.saved));
}

function changed() {
  state.saveError = null;
  updateSavebar();
}

function updateSavebar() {
  const isDirty = dirty();
  const bar = $("savebar");
  bar.hidden = !isDirty && !state.saveError;
  $("dirty-note").hidden = !isDirty;
  $("save").disabled = !isDirty || state.saving;
  $("discard").disabled = !isDirty || state.saving;
  $("save").textContent = state.saving ? t("manage.saving") : t("common.save");
  $("save-status").textContent = state.remoteChanged ? t("manage.remote_changed") : isDirty ? t("manage.unsaved_help") : "";
  const err = $("save-error");
  err.hidden = !state.saveError;
  err.replaceChildren();
  if (state.saveError) {
    err.append(el("strong", {}, state.saveError.title), " ", el("span", { class: "engine-message" }, state.saveError.message));
  }
  document.body.classList.toggle("with-savebar", !bar.hidden);
}

async function save() {
  if (state.saving || !dirty()) return;
  state.saving = true;
  updateSavebar();
  try {
    const info = await api(state.dev, "PUT", "", clean(state.draft));
    state.saveError = null;
    applyInfo(info);
    renderAll();
    toast(t("manage.saved"));
  } catch (e) {
    state.saveError = {
      title: e.status === 422 ? t("manage.save_refused") : t("manage.save_failed"),
      message: e.message || e.code,
    };
    $("save-error").focus?.();
  } finally {
    state.saving = false;
    updateSavebar();
  }
}

function discard() {
  state.draft = structuredClone(state.saved);
  state.fresh = new WeakSet();
  state.idTouched = new WeakSet();
  const id = state.selected?.id;
  state.selected = state.draft.items.find((i) => i.id === id) || null;
  state.saveError = null;
  state.remoteChanged = false;
  renderAll();
}

// ---------------------------------------------------------------------------------------------
// Form helpers

let uid = 0;
function nextId(prefix) {
  uid += 1;
  return `${prefix}-${uid}`;
}

/** A labelled field: the label wraps its text and the control. */
function field(label, control, hint) {
  const id = control.id || (control.id = nextId("f"));
  const hintEl = hint ? el("span", { class: "hint", id: `${id}-hint` }, hint) : null;
  if (hintEl) control.setAttribute("aria-describedby", hintEl.id);
  return el("label", { class: "field", for: id }, el("span", { class: "field-label" }, label), control, hintEl);
}

function textInput(value, onInput, attrs = {}) {
  const input = el("input", { type: "text", autocomplete: "off", spellcheck: "false", ...attrs });
  input.value = value ?? "";
  input.addEventListener("input", () => { onInput(input.value, input); changed(); });
  return input;
}

/** A whole number or nothing (null). */
function numberInput(value, onInput, attrs = {}) {
  const input = el("input", { type: "number", inputmode: "numeric", step: "1", ...attrs });
  input.value = value ?? "";
  input.addEventListener("input", () => {
    const v = input.value.trim();
    onInput(v === "" ? null : Math.round(Number(v)));
    changed();
  });
  return input;
}

function priceInput(cents, onInput, attrs = {}) {
  const input = el("input", { type: "number", inputmode: "decimal", step: "0.01", min: "0", ...attrs });
  input.value = ((cents || 0) / 100).toFixed(2);
  input.addEventListener("input", () => {
    const v = Number(String(input.value).replace(",", "."));
    onInput(Number.isFinite(v) ? Math.round(v * 100) : 0);
    changed();
  });
  return input;
}

function select(options, value, onChange, attrs = {}) {
  const s = el("select", attrs, options.map(([v, label]) => el("option", { value: v }, label)));
  s.value = value ?? "";
  s.addEventListener("change", () => { onChange(s.value); changed(); });
  return s;
}

function checkbox(checked, onChange, attrs = {}) {
  const c = el("input", { type: "checkbox", ...attrs });
  c.checked = !!checked;
  c.addEventListener("change", () => { onChange(c.checked); changed(); });
  return c;
}

/** An id from a name: lowercase ASCII letters, digits and '-'. */
function slug(name) {
  const map = { ç: "c", ğ: "g", ı: "i", ö: "o", ş: "s", ü: "u" };
  return name.toLocaleLowerCase("tr").replace(/[çğıöşü]/g, (c) => map[c])
    .normalize("NFKD").replace(/[\u0300-\u036f]/g, "")
    .replace(/[^a-z0-9_-]+/g, "-").replace(/^[-]+|[-]+$/g, "").slice(0, 64);
}

function uniqueId(base, taken, fallback) {
  const root = base || fallback;
  let id = root;
  for (let n = 2; taken.has(id); n++) id = `${root}-${n}`;
  return id;
}

/** The id field of a row: free while the row is new (following its name until typed), fixed once saved. */
function idInput(row, list, prefix, label) {
  const isNew = state.fresh.has(row);
  const input = textInput(row.id, (v) => { row.id = v.trim(); state.idTouched.add(row); }, {
    class: "id-input", maxlength: "64", pattern: "[a-z0-9_][a-z0-9_\\-]{0,63}", "aria-label": label,
    readonly: isNew ? undefined : true,
  });
  input.dataset.role = "id";
  if (!isNew) input.title = t("manage.id_fixed");
  input.followName = (name) => {
    if (!state.fresh.has(row) || state.idTouched.has(row)) return;
    const taken = new Set(list.filter((x) => x !== row).map((x) => x.id));
    row.id = uniqueId(slug(name), taken, prefix);
    input.value = row.id;
  };
  return input;
}

function removeButton(label, onClick) {
  return el("button", { type: "button", class: "remove-btn small-btn", "aria-label": label, onclick: () => { onClick(); changed(); } }, t("manage.remove"));
}

function cookingStations() {
  return state.draft.stations.filter((s) => (s.kind || "cooking") === "cooking");
}

function stationChecks(selected, onChange, labelFor) {
  const box = el("div", { class: "checks" });
  for (const s of cookingStations()) {
    const c = checkbox(selected.includes(s.id), (on) => {
      const next = cookingStations().map((x) => x.id).filter((id) => (id === s.id ? on : selected.includes(id)));
      selected.splice(0, selected.length, ...next);
      onChange(selected);
    }, { id: nextId("st"), "aria-label": labelFor ? labelFor(s) : undefined });
    box.append(el("label", { class: "check", for: c.id }, c, el("span", {}, s.name || s.id)));
  }
  return box;
}

// ---------------------------------------------------------------------------------------------
// Items

function renderItems() {
  renderItemList();
  renderItemDetail();
}

function renderItemList() {
  const box = $("item-list");
  const d = state.draft;
  const groups = [];
  const known = new Set(d.categories.map((c) => c.id));
  for (const cat of d.categories) groups.push([cat.name || cat.id, d.items.filter((i) => i.category === cat.id)]);
  const orphans = d.items.filter((i) => !known.has(i.category));
  if (orphans.length) groups.push([t("manage.items.no_category"), orphans]);
  box.replaceChildren(...groups.filter(([, items]) => items.length).map(([name, items]) =>
    el("section", { class: "item-group" },
      el("h3", {}, name),
      el("ul", {}, items.map((item) => el("li", {},
        el("button", {
          type: "button", class: "item-row", "data-item": item.id,
          "aria-current": item === state.selected ? "true" : undefined,
          onclick: () => { state.selected = item; renderItems(); },
        },
        el("span", { class: "item-row-name" }, item.name || t("manage.items.unnamed")),
        state.eightySixed.has(item.id) ? el("span", { class: "tag void" }, "86") : null,
        el("span", { class: "item-row-price" }, money(item.price_cents || 0)))))))));
}

function renderItemDetail() {
  const box = $("item-detail");
  const item = state.selected && state.draft.items.includes(state.selected) ? state.selected : null;
  if (!item) {
    box.replaceChildren(el("p", { class: "muted" }, t("manage.items.choose")));
    return;
  }
  const d = state.draft;
  const id = idInput(item, d.items, "item", t("manage.col.id"));
  const name = textInput(item.name, (v) => { item.name = v; id.followName(v); renderItemList(); }, { id: "item-name", maxlength: "100" });
  const cat = select(d.categories.map((c) => [c.id, c.name || c.id]), item.category, (v) => { item.category = v; renderItemList(); renderRouteHint(); }, { id: "item-category" });
  const price = priceInput(item.price_cents, (v) => { item.price_cents = v; renderItemList(); }, { id: "item-price" });
  const prep = numberInput(item.prep_seconds, (v) => { item.prep_seconds = v; }, { id: "item-prep", min: "1", max: "7200", placeholder: t("manage.not_set") });
  item.stations = item.stations || [];
  const routeHint = el("p", { class: "hint", id: "route-hint" });
  const renderRouteHint = () => {
    const c = d.categories.find((x) => x.id === item.category);
    const names = (c?.stations || []).map(stationName).join(", ") || t("manage.none");
    routeHint.textContent = item.stations.length ? t("manage.items.own_route") : t("manage.items.category_route", { stations: names });
  };
  renderRouteHint();
  const routes = el("fieldset", { class: "routes" },
    el("legend", {}, t("manage.items.stations")),
    stationChecks(item.stations, () => renderRouteHint()),
    routeHint);
  box.replaceChildren(
    el("div", { class: "detail-head" },
      el("h3", {}, item.name || t("manage.items.unnamed")),
      removeButton(t("manage.items.delete_named", { name: item.name || item.id }), () => {
        d.items.splice(d.items.indexOf(item), 1);
        state.selected = null;
        renderItems();
      })),
    el("div", { class: "form-grid" },
      field(t("manage.col.name"), name),
      field(t("manage.col.id"), id, state.fresh.has(item) ? t("manage.id_help") : t("manage.id_fixed")),
      field(t("manage.items.category"), cat),
      field(t("manage.items.price"), price),
      field(t("manage.items.prep"), prep, t("manage.items.prep_help"))),
    routes,
    modifierEditor(item));
  name.addEventListener("input", () => { box.querySelector(".detail-head h3").textContent = item.name || t("manage.items.unnamed"); });
}

function modifierEditor(item) {
  const fs = el("fieldset", { class: "modifiers" }, el("legend", {}, t("manage.mods.title")));
  if (!state.supports.modifiers) {
    fs.disabled = true;
    fs.append(el("p", { class: "hint" }, t("manage.mods.unsupported")));
    return fs;
  }
  item.modifier_groups = item.modifier_groups || [];
  const groups = item.modifier_groups;
  const redraw = () => fs.replaceWith(modifierEditor(item));
  if (!groups.length) fs.append(el("p", { class: "hint" }, t("manage.mods.none")));
  groups.forEach((g, gi) => {
    g.options = g.options || [];
    const label = g.name || g.id || String(gi + 1);
    const box = el("div", { class: "group-edit", "data-group": gi },
      el("div", { class: "group-row" },
        field(t("manage.mods.group_name"), textInput(g.name, (v) => { g.name = v; }, { maxlength: "100", "data-field": "group-name" })),
        field(t("manage.mods.group_id"), textInput(g.id, (v) => { g.id = v.trim(); }, { maxlength: "40", class: "id-input" })),
        field(t("manage.mods.max"), numberInput(g.max, (v) => { g.max = v; }, { min: "1", max: "30", placeholder: t("manage.mods.any") })),
        el("label", { class: "check" }, checkbox(g.required, (on) => { g.required = on; }), el("span", {}, t("manage.mods.required"))),
        removeButton(t("manage.mods.remove_group", { name: label }), () => { groups.splice(gi, 1); redraw(); })),
      el("table", { class: "grid options" },
        el("thead", {}, el("tr", {},
          el("th", { scope: "col" }, t("manage.mods.option")),
          el("th", { scope: "col" }, t("manage.mods.extra")),
          el("th", { scope: "col" }, t("manage.mods.allergen")),
          el("th", { scope: "col" }, el("span", { class: "sr-only" }, t("manage.remove"))))),
        el("tbody", {}, g.options.map((o, oi) => el("tr", {},
          el("td", {}, textInput(o.name, (v) => { o.name = v; }, { maxlength: "100", "aria-label": t("manage.mods.option_n", { group: label, n: oi + 1 }) })),
          el("td", {}, priceInput(o.price_cents, (v) => { o.price_cents = v; }, { "aria-label": t("manage.mods.extra_n", { group: label, n: oi + 1 }) })),
          el("td", {}, checkbox(o.allergen, (on) => { o.allergen = on; }, { "aria-label": t("manage.mods.allergen_n", { group: label, n: oi + 1 }) })),
          el("td", {}, removeButton(t("manage.mods.remove_option", { n: oi + 1, group: label }), () => { g.options.splice(oi, 1); redraw(); })))))),
      el("button", { type: "button", class: "small-btn", onclick: () => { g.options.push({ name: "" }); changed(); redraw(); } }, t("manage.mods.add_option")));
    fs.append(box);
  });
  fs.append(el("button", {
    type: "button", class: "small-btn", id: "add-group",
    onclick: () => {
      const taken = new Set(groups.map((g) => g.id));
      groups.push({ id: uniqueId("group", taken, "group"), name: "", required: false, options: [{ name: "" }] });
      changed();
      redraw();
    },
  }, t("manage.mods.add_group")));
  return fs;
}

function addItem() {
  const d = state.draft;
  const category = state.selected?.category || d.categories[0]?.id || "";
  const item = { id: uniqueId("item", new Set(d.items.map((i) => i.id)), "item"), name: "", category, stations: [], price_cents: 0 };
  d.items.push(item);
  state.fresh.add(item);
  state.selected = item;
  changed();
  renderItems();
  $("item-name").focus();
}

// ---------------------------------------------------------------------------------------------
// Categories, stations, tables: one row each

function rowsTable(columns, rows, addLabel, onAdd) {
  return [
    el("table", { class: "grid rows" },
      el("thead", {}, el("tr", {}, columns.map((c) => el("th", { scope: "col", class: c.cls || "" }, c.label)))),
      el("tbody", {}, rows)),
    el("button", { type: "button", class: "primary add-row", onclick: onAdd }, addLabel),
  ];
}

function renderCategories() {
  const d = state.draft;
  const box = $("categories-form");
  const rows = d.categories.map((c, i) => {
    c.stations = c.stations || [];
    const label = c.name || c.id || String(i + 1);
    const id = idInput(c, d.categories, "category", t("manage.col.id_of", { name: label }));
    const name = textInput(c.name, (v) => { c.name = v; id.followName(v); }, { maxlength: "100", "aria-label": t("manage.col.name_of", { name: c.id || String(i + 1) }) });
    const count = d.items.filter((x) => x.category === c.id).length;
    return el("tr", { "data-category": c.id },
      el("td", {}, id), el("td", {}, name),
      el("td", {}, stationChecks(c.stations, () => {}, (s) => t("manage.route_of", { name: label, station: s.name || s.id }))),
      el("td", { class: "num" }, String(count)),
      el("td", {}, removeButton(t("manage.remove_named", { name: label }), () => { d.categories.splice(i, 1); renderCategories(); })));
  });
  box.replaceChildren(...rowsTable([
    { label: t("manage.col.id") }, { label: t("manage.col.name") }, { label: t("manage.categories.stations") },
    { label: t("manage.categories.items"), cls: "num" }, { label: el("span", { class: "sr-only" }, t("manage.remove")) },
  ], rows, t("manage.categories.add"), () => {
    const c = { id: uniqueId("category", new Set(d.categories.map((x) => x.id)), "category"), name: "", stations: [] };
    d.categories.push(c);
    state.fresh.add(c);
    changed();
    renderCategories();
    box.querySelector("tbody tr:last-child input:not([readonly])[aria-label]:not(.id-input)")?.focus();
  }));
}

function renderStations() {
  const d = state.draft;
  const box = $("stations-form");
  const rows = d.stations.map((s, i) => {
    const label = s.name || s.id || String(i + 1);
    const id = idInput(s, d.stations, "station", t("manage.col.id_of", { name: label }));
    return el("tr", { "data-station": s.id },
      el("td", {}, id),
      el("td", {}, textInput(s.name, (v) => { s.name = v; id.followName(v); }, { maxlength: "100", "aria-label": t("manage.col.name_of", { name: s.id || String(i + 1) }) })),
      el("td", {}, select([["cooking", t("manage.kind.cooking")], ["expo", t("manage.kind.expo")]], s.kind || "cooking",
        (v) => { s.kind = v; }, { "aria-label": t("manage.stations.kind_of", { name: label }) })),
      el("td", {}, numberInput(s.lanes, (v) => { s.lanes = v; }, { min: "1", max: "50", placeholder: "4", class: "short", "aria-label": t("manage.stations.lanes_of", { name: label }) })),
      el("td", {}, removeButton(t("manage.remove_named", { name: label }), () => { d.stations.splice(i, 1); renderStations(); })));
  });
  box.replaceChildren(...rowsTable([
    { label: t("manage.col.id") }, { label: t("manage.col.name") }, { label: t("manage.stations.kind") },
    { label: t("manage.stations.lanes") }, { label: el("span", { class: "sr-only" }, t("manage.remove")) },
  ], rows, t("manage.stations.add"), () => {
    const s = { id: uniqueId("station", new Set(d.stations.map((x) => x.id)), "station"), name: "", kind: "cooking" };
    d.stations.push(s);
    state.fresh.add(s);
    changed();
    renderStations();
  }));
}

function renderTables() {
  const d = state.draft;
  const box = $("tables-form");
  const savedQr = new Set(state.saved.tables.filter((x) => x.kind === "qr").map((x) => x.id));
  const rows = d.tables.map((tb, i) => {
    const label = tb.name || tb.id || String(i + 1);
    const id = idInput(tb, d.tables, "table", t("manage.col.id_of", { name: label }));
    const qr = (tb.kind || "dine_in") === "qr"
      ? savedQr.has(tb.id)
        ? el("button", { type: "button", class: "small-btn print-qr", "data-table": tb.id, onclick: () => printCards([tb.id]) }, t("manage.tables.print"))
        : el("span", { class: "hint" }, t("manage.tables.save_first"))
      : null;
    return el("tr", { "data-table": tb.id },
      el("td", {}, id),
      el("td", {}, textInput(tb.name, (v) => { tb.name = v; id.followName(v); }, { maxlength: "100", "data-field": "name", "aria-label": t("manage.col.name_of", { name: tb.id || String(i + 1) }) })),
      el("td", {}, select(TABLE_KINDS.map((k) => [k, t(`source.${k}`)]), tb.kind || "dine_in", (v) => { tb.kind = v; renderTables(); },
        { "aria-label": t("manage.tables.kind_of", { name: label }) })),
      el("td", {}, qr),
      el("td", {}, removeButton(t("manage.remove_named", { name: label }), () => { d.tables.splice(i, 1); renderTables(); })));
  });
  const [table, add] = rowsTable([
    { label: t("manage.col.id") }, { label: t("manage.col.name") }, { label: t("manage.tables.kind") },
    { label: t("manage.tables.qr") }, { label: el("span", { class: "sr-only" }, t("manage.remove")) },
  ], rows, t("manage.tables.add"), () => {
    const tb = { id: uniqueId("table", new Set(d.tables.map((x) => x.id)), "table"), name: "", kind: "dine_in" };
    d.tables.push(tb);
    state.fresh.add(tb);
    changed();
    renderTables();
  });
  const all = el("button", {
    type: "button", id: "print-all", disabled: savedQr.size === 0 || undefined,
    onclick: () => printCards([...savedQr]),
  }, t("manage.tables.print_all"));
  box.replaceChildren(table, el("div", { class: "row" }, add, all));
}

// ---------------------------------------------------------------------------------------------
// Settings: time zone, timers, ticket colours

function renderSettings() {
  const d = state.draft;
  const box = $("settings-form");
  const zones = el("datalist", { id: "zones" }, (Intl.supportedValuesOf?.("timeZone") || []).map((z) => el("option", { value: z })));
  const secs = (key, attrs = {}) => numberInput(d[key], (v) => { d[key] = v; }, {
    id: `set-${key}`, placeholder: t("manage.default_n", { n: DEFAULTS[key] ?? t("manage.none") }), ...attrs,
  });
  const timers = el("fieldset", { class: "panel" },
    el("legend", {}, t("manage.settings.colours")),
    el("p", { class: "hint" }, t("manage.settings.colours_help")),
    el("div", { class: "form-grid" },
      field(t("manage.settings.warning"), secs("warning_after_seconds", { min: "1", max: "14400" })),
      field(t("manage.settings.late"), numberInput(d.late_after_seconds, (v) => { d.late_after_seconds = v; }, {
        id: "set-late_after_seconds", min: "1", max: "14400", placeholder: t("manage.default_n", { n: DEFAULTS.late_after_seconds }),
      }), t("manage.settings.late_help"))),
    el("table", { class: "grid by-source" },
      el("caption", {}, t("manage.settings.by_source")),
      el("thead", {}, el("tr", {},
        el("th", { scope: "col" }, t("manage.settings.source")),
        el("th", { scope: "col" }, t("manage.settings.warning")),
        el("th", { scope: "col" }, t("manage.settings.late")))),
      el("tbody", {}, SOURCES.map((src) => {
        const own = () => {
          d.timers_by_source = d.timers_by_source || {};
          d.timers_by_source[src] = d.timers_by_source[src] || {};
          return d.timers_by_source[src];
        };
        const cur = d.timers_by_source?.[src] || {};
        return el("tr", { "data-source": src },
          el("th", { scope: "row" }, t(`source.${src}`)),
          el("td", {}, numberInput(cur.warning_after_seconds, (v) => { own().warning_after_seconds = v; }, {
            min: "1", max: "14400", placeholder: t("manage.settings.branch_value"), "aria-label": t("manage.settings.warning_of", { source: t(`source.${src}`) }),
          })),
          el("td", {}, numberInput(cur.late_after_seconds, (v) => { own().late_after_seconds = v; }, {
            min: "1", max: "14400", placeholder: t("manage.settings.branch_value"), "aria-label": t("manage.settings.late_of", { source: t(`source.${src}`) }),
          })));
      }))),
    state.supports.timers ? null : el("p", { class: "hint" }, t("manage.settings.timers_unsupported")));
  if (!state.supports.timers) {
    // The late time is older than the other timers: it stays editable.
    for (const input of timers.querySelectorAll("input")) if (input.id !== "set-late_after_seconds") input.disabled = true;
  }
  box.replaceChildren(
    el("fieldset", { class: "panel" },
      el("legend", {}, t("manage.settings.branch")),
      el("div", { class: "form-grid" },
        field(t("manage.settings.name"), textInput(d.name, (v) => { d.name = v; }, { id: "set-name", maxlength: "100" })),
        field(t("manage.settings.zone"), textInput(d.time_zone, (v) => { d.time_zone = v.trim() || null; }, { id: "set-zone", list: "zones", placeholder: "Europe/Istanbul" }), t("manage.settings.zone_help")),
        field(t("manage.settings.offset"), numberInput(d.utc_offset_minutes, (v) => { d.utc_offset_minutes = v ?? 0; }, { id: "set-offset", min: "-720", max: "840" }), t("manage.settings.offset_help"))),
      zones),
    timers,
    el("fieldset", { class: "panel" },
      el("legend", {}, t("manage.settings.kitchen")),
      el("div", { class: "form-grid" },
        field(t("manage.settings.unseen"), secs("unseen_after_seconds", { min: "1", max: "600" }), t("manage.settings.unseen_help")),
        field(t("manage.settings.pace"), numberInput(d.course_pace_seconds, (v) => { d.course_pace_seconds = v; }, {
          id: "set-course_pace_seconds", min: "1", max: "7200", placeholder: t("manage.settings.no_pacing"),
        }), t("manage.settings.pace_help")))));
}

// ---------------------------------------------------------------------------------------------
// 86 and limited stock: at once, not part of the draft

function renderStock() {
  const box = $("stock-form");
  const c = state.saved;
  const rows = [];
  for (const cat of c.categories) {
    const items = c.items.filter((i) => i.category === cat.id);
    if (!items.length) continue;
    rows.push(el("tr", { class: "cat-row" }, el("th", { colspan: "4", scope: "colgroup" }, cat.name)));
    for (const item of items) rows.push(stockRow(item));
  }
  const focused = document.activeElement?.closest?.("#stock-form tr")?.dataset.item;
  const focusKind = document.activeElement?.dataset?.kind;
  box.replaceChildren(el("table", { class: "grid stock" },
    el("thead", {}, el("tr", {},
      el("th", { scope: "col" }, t("manage.stock.item")),
      el("th", { scope: "col" }, t("manage.stock.status")),
      el("th", { scope: "col" }, t("manage.stock.eighty_six")),
      el("th", { scope: "col" }, t("manage.stock.limited")))),
    el("tbody", {}, rows)));
  if (focused && focusKind) box.querySelector(`tr[data-item="${CSS.escape(focused)}"] [data-kind="${focusKind}"]`)?.focus();
}

function stockRow(item) {
  const out = state.eightySixed.has(item.id);
  const left = state.stock.get(item.id);
  const status = out ? ["out", t("manage.stock.out")]
    : left === 0 ? ["out", t("manage.stock.sold_out")]
      : left !== undefined ? ["few", t("manage.stock.left", { count: left })]
        : ["ok", t("manage.stock.available")];
  const count = el("input", {
    type: "number", min: "0", max: "99999", step: "1", class: "short", "data-kind": "count",
    "aria-label": t("manage.stock.count_of", { name: item.name }), placeholder: left !== undefined ? String(left) : "",
  });
  const act = (fn) => async () => {
    try {
      const info = await fn();
      if (info) {
        state.eightySixed = new Set(info.eighty_sixed || []);
        state.stock = new Map((info.stock || []).map((s) => [s.item, s.left]));
      }
      renderStock();
    } catch (e) {
      toast(t("common.error", { message: e.message || e.code }), true);
    }
  };
  const path = (kind) => `/${kind}/${encodeURIComponent(item.id)}`;
  return el("tr", { "data-item": item.id, class: `stock-${status[0]}` },
    el("th", { scope: "row" }, item.name),
    el("td", { class: `status ${status[0]}` }, status[1]),
    el("td", {}, out
      ? el("button", {
        type: "button", class: "good small-btn", "data-kind": "restore", "aria-label": t("manage.stock.restore_named", { name: item.name }),
        onclick: act(() => api(state.dev, "DELETE", path("86"))),
      }, t("manage.stock.restore"))
      : el("button", {
        type: "button", class: "danger small-btn", "data-kind": "86", "aria-label": t("manage.stock.eighty_six_named", { name: item.name }),
        onclick: act(() => api(state.dev, "PUT", path("86"))),
      }, t("manage.stock.eighty_six_do"))),
    el("td", { class: "count-cell" },
      count,
      el("button", {
        type: "button", class: "small-btn", "data-kind": "set", "aria-label": t("manage.stock.set_named", { name: item.name }),
        onclick: act(async () => {
          const n = Number(count.value);
          if (count.value === "" || !Number.isInteger(n) || n < 0) { count.focus(); return null; }
          return api(state.dev, "PUT", path("stock"), { count: n });
        }),
      }, t("manage.stock.set")),
      left !== undefined
        ? el("button", {
          type: "button", class: "small-btn", "data-kind": "lift", "aria-label": t("manage.stock.lift_named", { name: item.name }),
          onclick: act(() => api(state.dev, "DELETE", path("stock"))),
        }, t("manage.stock.lift"))
        : null));
}

// ---------------------------------------------------------------------------------------------
// Devices: tokens, pairing links, QR codes

function renderDeviceForm() {
  const c = state.saved;
  const stationSel = $("tok-station");
  const keep = stationSel.value;
  stationSel.replaceChildren(
    el("option", { value: "" }, t("manage.devices.all_stations")),
    ...c.stations.filter((s) => s.kind !== "expo").map((s) => el("option", { value: s.id }, s.name)));
  stationSel.value = [...stationSel.options].some((o) => o.value === keep) ? keep : "";
  const tableSel = $("tok-table");
  const keepTable = tableSel.value;
  const tables = [...c.tables].sort((a, b) => (a.kind === "qr" ? 0 : 1) - (b.kind === "qr" ? 0 : 1));
  tableSel.replaceChildren(...tables.map((x) => el("option", { value: x.id }, x.name)));
  if ([...tableSel.options].some((o) => o.value === keepTable)) tableSel.value = keepTable;
  syncDeviceForm();
}

function syncDeviceForm() {
  const role = $("tok-role").value;
  $("tok-station-field").hidden = role !== "kitchen";
  $("tok-table-field").hidden = role !== "guest";
}

/** The page a device runs: kitchen → /kitchen (the expo station's → /expo), guest → its /menu. */
function pagePath(d) {
  return d.role === "kitchen"
    ? d.station && d.station === expoStation() ? "/expo" : "/kitchen"
    : d.role === "guest" ? `/menu/${encodeURIComponent(d.table)}`
      : `/${d.role === "manager" ? "manage" : d.role}`;
}

/** What a device opens: its page, with the token in the fragment. */
function pairingLink(issued) {
  return `${location.origin}${pagePath(issued)}#token=${issued.token}`;
}

/** What a device opens to pair with a code at once: its page, with `#pair=<branch>:<code>`. */
function codeLink(pairing) {
  return `${location.origin}${pagePath(pairing.device)}#pair=${encodeURIComponent(state.dev.branch)}:${pairing.code}`;
}

/** The body of POST /tokens and /pairings, from the form. */
function deviceRequest() {
  const role = $("tok-role").value;
  const body = { role: role === "expo" ? "kitchen" : role, ttl_seconds: Number($("tok-ttl").value) };
  if (role === "kitchen" && $("tok-station").value) body.station = $("tok-station").value;
  if (role === "expo") body.station = expoStation();
  if (role === "guest") body.table = $("tok-table").value;
  const name = $("tok-device").value.trim();
  if (name) body.device = name;
  return { role, body };
}

/** The form makes a code (its first button, and Enter) or a link (`#tok-issue`). */
function onDeviceSubmit(e) {
  e.preventDefault();
  if (e.submitter?.id === "tok-issue") issueToken();
  else makeCode();
}

function expoStation() {
  return state.saved.stations.find((s) => s.kind === "expo")?.id;
}

async function issueToken() {
  const { role, body } = deviceRequest();
  const err = $("token-error");
  err.hidden = true;
  $("tok-issue").disabled = true;
  try {
    const issued = await api(state.dev, "POST", "/tokens", body);
    state.lastResult = "token";
    $("code-result").hidden = true;
    showToken(issued, role);
    refreshDevices();
  } catch (x) {
    err.hidden = false;
    err.textContent = t("common.error", { message: x.message || x.code });
  } finally {
    $("tok-issue").disabled = false;
  }
}

// ----- Pairing codes

async function makeCode() {
  const { role, body } = deviceRequest();
  const err = $("token-error");
  err.hidden = true;
  $("code-make").disabled = true;
  try {
    const pairing = await api(state.dev, "POST", "/pairings", body);
    state.code = { pairing, role, paired: false };
    state.lastResult = "code";
    $("token-result").hidden = true;
    renderCode();
    $("code-result").scrollIntoView?.({ block: "nearest" });
    state.devicesAt = Date.now(); // the device is listed once it pairs: polled from now on
  } catch (x) {
    err.hidden = false;
    err.textContent = t("common.error", { message: x.message || x.code });
  } finally {
    $("code-make").disabled = false;
  }
}

/** Milliseconds left on the code shown, by the server's clock. */
function codeLeft() {
  const now = state.live ? state.live.now() : Date.now();
  return Date.parse(state.code.pairing.expires_at) - now;
}

function renderCode() {
  const box = $("code-result");
  const code = state.code;
  if (!code || state.lastResult !== "code") {
    box.hidden = true;
    return;
  }
  const p = code.pairing;
  const what = describeDevice(p.device, code.role);
  const link = codeLink(p);
  box.hidden = false;
  $("h-code").textContent = t("manage.code.title", { what, name: p.device.name });
  $("code-how").textContent = t("manage.code.how", { url: `${location.origin}${pagePath(p.device)}` });
  $("code-value").textContent = p.code;
  $("code-branch").textContent = state.dev.branch;
  $("code-qr").replaceChildren(qrSvg(link, t("manage.code.qr_alt", { what })));
  const a = $("code-link");
  a.href = link;
  a.textContent = t("manage.code.open_link");
  tickCode();
}

/** The countdown to the code's expiry, or that the device paired with it. */
function tickCode() {
  const code = state.code;
  if (!code || state.lastResult !== "code") return;
  const value = $("code-value");
  const timer = $("code-timer");
  const left = codeLeft();
  const stateNow = code.paired ? "paired" : left <= 0 ? "expired" : left <= 60000 ? "ending" : "waiting";
  value.dataset.state = stateNow;
  timer.dataset.state = stateNow;
  $("code-result").dataset.state = stateNow;
  $("code-result").querySelector(".code-scan").hidden = stateNow === "paired" || stateNow === "expired";
  const text = stateNow === "paired" ? t("manage.code.paired", { name: code.pairing.device.name })
    : stateNow === "expired" ? t("manage.code.expired")
      : t("manage.code.expires_in", { time: clock(left / 1000) });
  // The screen reader hears a change of state, not every second of the countdown.
  if (timer.dataset.said !== stateNow || stateNow === "waiting" || stateNow === "ending") {
    const live = timer.dataset.said !== stateNow;
    timer.setAttribute("aria-live", live ? "polite" : "off");
    timer.dataset.said = stateNow;
    timer.textContent = text;
  }
}

// ----- The device list

function tickDevices() {
  if (state.section !== "devices" || document.hidden) return;
  tickCode();
  const pending = state.code && !state.code.paired && codeLeft() > -5000;
  if (Date.now() - state.devicesAt >= (pending ? DEVICES_PENDING_MS : DEVICES_MS)) refreshDevices();
}

let devicesLoading = false;
async function refreshDevices() {
  if (devicesLoading) return;
  devicesLoading = true;
  state.devicesAt = Date.now();
  try {
    state.devices = await api(state.dev, "GET", "/devices", undefined, { attempts: 1 });
    state.devicesError = null;
    if (state.code && !state.code.paired && state.devices.some((d) => d.device === state.code.pairing.device.device)) {
      state.code.paired = true;
      toast(t("manage.code.paired", { name: state.code.pairing.device.name }));
    }
  } catch (e) {
    state.devicesError = t("common.error", { message: e.message || e.code });
  } finally {
    devicesLoading = false;
  }
  if (state.section === "devices") {
    renderDevices();
    tickCode();
  }
}

function formatWhen(iso) {
  return new Intl.DateTimeFormat(currentLang() === "tr" ? "tr-TR" : "en-GB", {
    day: "numeric", month: "short", hour: "2-digit", minute: "2-digit", timeZone: state.saved.time_zone || undefined,
  }).format(new Date(iso));
}

/** "just now", "4 minutes ago", or the day and time. */
function formatSeen(iso) {
  if (!iso) return t("manage.list.seen_never");
  const now = state.live ? state.live.now() : Date.now();
  const ago = Math.max(0, (now - Date.parse(iso)) / 1000);
  if (ago < 60) return t("manage.list.seen_now");
  const rel = new Intl.RelativeTimeFormat(currentLang() === "tr" ? "tr-TR" : "en-GB", { numeric: "always" });
  if (ago < 3600) return rel.format(-Math.floor(ago / 60), "minute");
  if (ago < 6 * 3600) return rel.format(-Math.floor(ago / 3600), "hour");
  return formatWhen(iso);
}

/** The device's kind as the form names it (a kitchen screen of the expo station is "Expo screen"). */
function kindOf(d) {
  return d.role === "kitchen" && d.station && d.station === expoStation() ? "expo" : d.role;
}

function whereOf(d) {
  if (d.role === "kitchen") return d.station ? stationName(d.station) : t("manage.devices.all_stations");
  if (d.role === "guest") return d.table ? tableName(d.table) : "–";
  return "–";
}

function renderDevices() {
  const list = state.devices;
  const err = $("devices-error");
  err.hidden = !state.devicesError;
  err.textContent = state.devicesError || "";
  const body = $("device-rows");
  if (!list) {
    body.replaceChildren();
    $("devices-none").hidden = true;
    $("device-count").textContent = "";
    return;
  }
  const now = state.live ? state.live.now() : Date.now();
  const ended = (d) => !!d.revoked_at || Date.parse(d.expires_at) <= now;
  const rows = [...list.filter((d) => !ended(d)), ...list.filter(ended)];
  const mine = state.dev.claims.jti;
  // The control focused before the list is drawn again is focused after (same row, same kind).
  const active0 = document.activeElement;
  const inRows = active0?.closest?.("#device-rows");
  const focus = inRows && active0.dataset.kind
    ? { kind: active0.dataset.kind, device: active0.closest("tr")?.dataset.device || active0.closest("tr")?.dataset.confirm }
    : null;
  const out = [];
  for (const d of rows) {
    const revoked = !!d.revoked_at;
    const expired = !revoked && Date.parse(d.expires_at) <= now;
    const justPaired = state.code?.paired && state.code.pairing.device.device === d.device;
    const status = revoked ? ["revoked", t("manage.list.revoked_at", { time: formatWhen(d.revoked_at) })]
      : expired ? ["expired", t("manage.list.expired")]
        : ["active", t("manage.list.active")];
    const confirming = state.confirmRevoke === d.device && !revoked;
    out.push(el("tr", {
      "data-device": d.device, "data-name": d.name,
      class: `device-row status-${status[0]}${justPaired ? " just-paired" : ""}${confirming ? " confirming" : ""}`,
    },
    el("th", { scope: "row", class: "device-name" }, d.name,
      d.device === mine ? el("span", { class: "tag this-device" }, t("manage.list.this_screen")) : null),
    el("td", {}, t(`manage.role.${kindOf(d)}`)),
    el("td", {}, whereOf(d)),
    el("td", { class: "when" }, formatWhen(d.issued_at)),
    el("td", { class: "when" }, formatWhen(d.expires_at)),
    el("td", { class: "when seen" }, formatSeen(d.last_seen)),
    el("td", { class: `status ${status[0]}` }, status[1]),
    el("td", { class: "actions" }, revoked || expired ? null : el("button", {
      type: "button", class: "danger small-btn revoke", "data-kind": "revoke", "aria-expanded": String(confirming),
      "aria-label": t("manage.list.revoke_named", { name: d.name }), disabled: state.revoking === d.device || undefined,
      onclick: () => {
        state.confirmRevoke = confirming ? null : d.device;
        renderDevices();
        $("device-rows").querySelector('[data-kind="confirm"]')?.focus();
      },
    }, t("manage.list.revoke")))));
    if (confirming) {
      out.push(el("tr", { class: "confirm-row", "data-confirm": d.device },
        el("td", { colspan: "8" },
          el("div", { class: "confirm-box", role: "group", "aria-label": t("manage.list.confirm_label", { name: d.name }) },
            el("p", { class: "confirm-text" },
              el("strong", {}, t("manage.list.confirm", { name: d.name })), " ",
              t(d.device === mine ? "manage.list.confirm_mine" : "manage.list.confirm_help")),
            el("button", {
              type: "button", class: "danger", "data-kind": "confirm", disabled: state.revoking === d.device || undefined,
              onclick: () => revoke(d),
            }, state.revoking === d.device ? t("manage.list.revoking") : t("manage.list.revoke_confirm", { name: d.name })),
            el("button", {
              type: "button", "data-kind": "cancel",
              onclick: () => {
                state.confirmRevoke = null;
                renderDevices();
                $("device-rows").querySelector(`tr[data-device="${CSS.escape(d.device)}"] [data-kind="revoke"]`)?.focus();
              },
            }, t("common.cancel"))))));
    }
  }
  body.replaceChildren(...out);
  if (focus?.device) {
    const row = body.querySelector(`tr[data-device="${CSS.escape(focus.device)}"], tr[data-confirm="${CSS.escape(focus.device)}"]`);
    const again = [...body.querySelectorAll(`tr[data-device="${CSS.escape(focus.device)}"] [data-kind], tr[data-confirm="${CSS.escape(focus.device)}"] [data-kind]`)]
      .find((n) => n.dataset.kind === focus.kind);
    (again || row?.querySelector("[data-kind]"))?.focus();
  }
  const active = rows.filter((d) => !ended(d)).length;
  $("device-count").textContent = t("manage.list.count", { active, revoked: rows.filter((d) => d.revoked_at).length });
  $("devices-none").hidden = rows.length > 0;
  $("devices-table").hidden = rows.length === 0;
}

async function revoke(d) {
  state.revoking = d.device;
  renderDevices();
  try {
    await api(state.dev, "POST", `/devices/${encodeURIComponent(d.device)}/revoke`);
    state.confirmRevoke = null;
    toast(t("manage.list.revoked_toast", { name: d.name }));
  } catch (e) {
    toast(t("common.error", { message: e.message || e.code }), true);
  } finally {
    state.revoking = null;
  }
  await refreshDevices();
}

function describeDevice(issued, role) {
  const what = t(`manage.role.${role}`);
  if (role === "kitchen") return `${what} · ${issued.station ? stationName(issued.station) : t("manage.devices.all_stations")}`;
  if (role === "guest") return `${what} · ${tableName(issued.table)}`;
  return what;
}

function showToken(issued, role) {
  state.lastToken = { issued, role };
  const link = pairingLink(issued);
  const what = describeDevice(issued, role);
  $("token-result").hidden = false;
  $("h-token").textContent = what;
  $("token-qr").replaceChildren(qrSvg(link, t("manage.devices.qr_alt", { what })));
  $("token-link").value = link;
  $("token-open").href = link;
  $("token-expiry").textContent = t("manage.devices.expires", {
    device: issued.device,
    time: new Intl.DateTimeFormat(document.documentElement.lang === "tr" ? "tr-TR" : "en-GB", {
      dateStyle: "medium", timeStyle: "short", timeZone: state.saved.time_zone || undefined,
    }).format(new Date(issued.expires_at)),
  });
}

/** A QR code of `text` as an inline SVG (dark modules on white, with the quiet zone). */
function qrSvg(text, label) {
  const qr = window.qrcode(0, "M");
  qr.addData(text);
  qr.make();
  const n = qr.getModuleCount();
  const margin = 4;
  const size = n + margin * 2;
  let d = "";
  for (let r = 0; r < n; r++) {
    for (let c = 0; c < n; c++) if (qr.isDark(r, c)) d += `M${c + margin} ${r + margin}h1v1h-1z`;
  }
  const svg = document.createElementNS(SVG, "svg");
  svg.setAttribute("viewBox", `0 0 ${size} ${size}`);
  svg.setAttribute("role", "img");
  svg.setAttribute("aria-label", label);
  svg.setAttribute("shape-rendering", "crispEdges");
  svg.classList.add("qr-code");
  const bg = document.createElementNS(SVG, "rect");
  bg.setAttribute("width", String(size));
  bg.setAttribute("height", String(size));
  bg.setAttribute("fill", "#fff");
  const path = document.createElementNS(SVG, "path");
  path.setAttribute("d", d);
  path.setAttribute("fill", "#000");
  svg.append(bg, path);
  return svg;
}

async function copyLink() {
  const input = $("token-link");
  try {
    await navigator.clipboard.writeText(input.value);
  } catch {
    input.select();
    document.execCommand("copy");
  }
  toast(t("manage.devices.copied"));
}

/** Both languages' text of a key, for cards guests read whatever the screen's language. */
async function bothLanguages(key) {
  const out = [];
  for (const lang of ["tr", "en"]) {
    if (!state.catalogues[lang]) {
      try { state.catalogues[lang] = await (await fetch(`/static/i18n/${lang}.json`)).json(); } catch { state.catalogues[lang] = {}; }
    }
    if (state.catalogues[lang][key]) out.push(state.catalogues[lang][key]);
  }
  return out;
}

async function printCards(tables) {
  const dialog = $("print-dialog");
  const cards = $("print-cards");
  cards.replaceChildren(el("p", { class: "muted" }, t("manage.print.making")));
  dialog.showModal();
  const scan = await bothLanguages("manage.print.scan");
  const made = [];
  for (const id of tables) {
    try {
      const issued = await api(state.dev, "POST", "/tokens", { role: "guest", table: id, device: `qr-card-${id}`.slice(0, 64), ttl_seconds: QR_TTL });
      const link = pairingLink(issued);
      made.push(el("article", { class: "print-card", "data-table": id },
        el("p", { class: "card-branch" }, state.saved.name),
        el("h3", { class: "card-table" }, tableName(id)),
        qrSvg(link, t("manage.devices.qr_alt", { what: tableName(id) })),
        ...scan.map((s) => el("p", { class: "card-scan" }, s))));
    } catch (e) {
      made.push(el("p", { class: "form-error" }, `${tableName(id)}: ${t("common.error", { message: e.message || e.code })}`));
    }
  }
  cards.replaceChildren(...made);
}

// ---------------------------------------------------------------------------------------------
// Controls

function wire() {
  for (const b of document.querySelectorAll(".side [data-go]")) b.addEventListener("click", () => go(b.dataset.go));
  $("save").addEventListener("click", save);
  $("discard").addEventListener("click", discard);
  $("add-item").addEventListener("click", addItem);
  $("speed-window").addEventListener("change", refreshService);
  $("speed-refresh").addEventListener("click", refreshService);
  $("tok-role").addEventListener("change", syncDeviceForm);
  $("token-form").addEventListener("submit", onDeviceSubmit);
  $("code-again").addEventListener("click", () => makeCode());
  $("devices-refresh").addEventListener("click", () => refreshDevices());
  $("token-copy").addEventListener("click", copyLink);
  $("print-close").addEventListener("click", () => $("print-dialog").close());
  $("print-go").addEventListener("click", () => window.print());
  document.addEventListener("keydown", (e) => {
    if ((e.ctrlKey || e.metaKey) && e.key === "s") { e.preventDefault(); save(); }
  });
}

let toastTimer = null;
function toast(text, error = false) {
  const box = $("toast");
  box.textContent = text;
  box.classList.toggle("error", error);
  box.hidden = false;
  clearTimeout(toastTimer);
  toastTimer = setTimeout(() => { box.hidden = true; }, 2600);
}
