// The kitchen display's machinery, shared by /kitchen (one cooking station) and /expo (the
// pass): the device and its branch, the live station feed (snapshot, events, resume, delivery
// receipts), the tickets' state and flags, age timers and their colours, the header, paging and
// selection, the bump-bar keys and their per-screen settings, the help overlay, the all-day and
// recall panels, sounds and translated error messages, and the pairing form while the screen
// is not paired or a manager unpaired it (static/pairing.js). Each page subclasses `Screen`
// and draws its own card bodies (kitchen.js, expo.js).

import {
  device, api, ApiError, Live, setLang, t, translate, langSwitch, chime, unlockSound, muted,
  setMuted, el, ticketNo, clock, timeOfDay, connectionBadge,
} from "./rail.js";
import { pairingView, refusalOf } from "./pairing.js";

export { el, t, api };

const SEEN_MAX = 500;
const ROLES = ["manager", "pos", "waiter", "kitchen", "guest"];
const RECALL_WINDOW_MS = 30 * 60 * 1000;
const VOIDED_SHOWN_MS = 15 * 1000;
const CONFIG_REFRESH_MS = 60 * 1000;
// The heartbeat's limit (static/rail.js): no word from the server for this long is stale.
const STALE_MS = 2500;
export const DEFAULT_WARNING = 300;
export const DEFAULT_LATE = 480;

/** Engine refusals a cook can meet, each with its own message (`kitchen.err.<code>`). */
const KNOWN_ERRORS = [
  "parts_pending", "invalid_transition", "unknown_ticket", "forbidden", "network", "conflict",
  "owner_unavailable", "journal_unavailable", "overloaded", "item_86", "item_eighty_sixed",
  "item_sold_out", "unknown_item", "unknown_order", "order_closed", "unknown_station",
  "wrong_branch", "nothing_to_fire", "invalid_token", "unauthenticated", "token_expired",
  "rate_limited", "internal",
];

/** A refusal as a cook reads it: the translated reason, the engine's words as detail. */
export function errorText(e) {
  const code = e?.code === "item_eighty_sixed" ? "item_86" : e?.code;
  if (code && KNOWN_ERRORS.includes(code)) {
    return { text: t(`kitchen.err.${code}`), detail: e.message && e.message !== code ? e.message : "" };
  }
  return { text: t("common.error", { message: e?.message || code || "?" }), detail: "" };
}

// ---------------------------------------------------------------------------------------------
// Keys

/** Every action a key can do, with its default keys (KeyboardEvent.key, letters lower case). */
export const KEY_DEFAULTS = {
  select1: ["1"], select2: ["2"], select3: ["3"], select4: ["4"], select5: ["5"],
  select6: ["6"], select7: ["7"], select8: ["8"], select9: ["9"],
  bump: ["Enter", "b"],
  start: ["s"],
  recall: ["r"],
  prev: ["ArrowLeft", "ArrowUp"],
  next: ["ArrowRight", "ArrowDown"],
  pageUp: ["PageUp"],
  pageDown: ["PageDown"],
  home: ["Home"],
  allDay: ["a"],
  recalls: ["l"],
  help: ["h", "?"],
  mute: ["m"],
};

function normKey(k) {
  return k.length === 1 ? k.toLowerCase() : k;
}

/** A key as printed on a key cap. */
export function keyLabel(k) {
  const names = { " ": "Space", ArrowLeft: "←", ArrowRight: "→", ArrowUp: "↑", ArrowDown: "↓", PageUp: "PgUp", PageDown: "PgDn", Escape: "Esc" };
  return names[k] || (k.length === 1 ? k.toUpperCase() : k);
}

// ---------------------------------------------------------------------------------------------
// Small shared helpers

function load(key, fallback) {
  try {
    const v = JSON.parse(localStorage.getItem(key));
    return v ?? fallback;
  } catch {
    return fallback;
  }
}

function save(key, value) {
  try { localStorage.setItem(key, JSON.stringify(value)); } catch { /* storage full: kept in memory */ }
}

export function isLive(t) {
  return t.status === "new" || t.status === "started";
}

/** The station's order: rush first, then oldest first, then by ticket number. */
export function stationOrder(a, b) {
  return (b.priority === true) - (a.priority === true)
    || Date.parse(a.fired_at) - Date.parse(b.fired_at)
    || a.ticket_no - b.ticket_no;
}

/** Applies a ticket event to a ticket, as the engine does (actors/src/order.rs). */
export function applyToTicket(tk, ev, at) {
  switch (ev.type) {
    case "ticket_started": tk.status = "started"; tk.started_at = at; break;
    case "ticket_bumped": tk.status = "bumped"; tk.bumped_at = at; tk.unseen = false; break;
    case "ticket_recalled":
      tk.status = tk.kind === "expo" ? "new" : "started";
      tk.bumped_at = null;
      if (tk.kind !== "expo" && !tk.started_at) tk.started_at = at;
      break;
    case "ticket_voided": tk.status = "voided"; break;
    case "expo_ready": tk.parts_ready = true; break;
    case "expo_waiting": tk.parts_ready = false; break;
    case "ticket_unseen": tk.unseen = true; break;
    case "ticket_seen": tk.unseen = false; break;
    case "priority_changed": tk.priority = ev.priority; break;
    case "order_moved": tk.table = ev.to; tk.moved_from = ev.from; break;
    case "line_voided": for (const l of tk.lines) if (l.line_id === ev.line_id) l.voided = true; break;
    default: break;
  }
}

/** Runs `jobs` (functions returning promises) at most `n` at once. */
async function limited(jobs, n = 4) {
  const queue = [...jobs];
  await Promise.all(Array.from({ length: Math.min(n, queue.length) }, async () => {
    while (queue.length) {
      try { await queue.shift()(); } catch { /* each job reports its own failure */ }
    }
  }));
}

// ---------------------------------------------------------------------------------------------
// The screen

export class Screen {
  /**
   * `page`: "kitchen" or "expo" (key prefix, storage, the path). Subclasses draw
   * `cardBody(t)` and may add `cardTags(t)`, `cardButtons(t)`, `topics()`, and hooks.
   */
  constructor(page) {
    this.page = page;
    this.tickets = new Map(); // id -> ticket of this station (live ones, and bumped ones for recall)
    this.flags = new Map(); // id -> { modified, recalled, voidedAt, busy }
    this.orders = new Map(); // order id -> { guests, next_course, external_ref, table }
    this.acked = new Set(); // tickets acknowledged (seen) since the last subscribe
    this.selected = null;
    this.pageStart = 0;
    this.pageHistory = [];
    this.visible = []; // ticket ids drawn on this page, in order
    this.allDay = null;
    this.stock = [];
    this.eightySixed = [];
    this.pendingChimes = new Set();
    this.renderQueued = false;
    this.loadedOrders = new Set();
    this.coming = new Map(); // order id -> { course, at, table }: paced courses on their way here
    this.keys = this.loadKeys();
    this.capture = null; // an action whose key the settings panel waits for
    this.actions = Object.keys(KEY_DEFAULTS);
    this.refetchOnSnapshot = false; // read the orders again on each snapshot (expo's parts)
  }

  // ----- start-up

  async start() {
    await setLang();
    this.chrome();
    document.addEventListener("rail:lang", () => this.relabel());
    this.dev = device();
    if (!this.dev) return this.showPair(false);
    return this.run();
  }

  /** The screen of a paired device: its branch, its station, its live feed. */
  async run() {
    if (!["kitchen", "manager"].includes(this.dev.role)) {
      return this.showBlocked(t("kitchen.wrong_role", { role: t(`kitchen.role.${ROLES.includes(this.dev.role) ? this.dev.role : "other"}`) }), "");
    }
    // The branch's configuration first (stations, tables, menu, timers); until the server
    // answers, the screen says so and asks again.
    for (;;) {
      try {
        await this.loadBranch();
        break;
      } catch (e) {
        if (e instanceof ApiError && e.status === 401) return this.showPair(true, e.code === "token_revoked" ? "revoked" : null);
        if (e instanceof ApiError && e.status === 403) return this.showBlocked(errorText(e).text);
        this.toast(errorText(e), true);
        await new Promise((r) => setTimeout(r, 3000));
      }
    }
    const station = await this.chooseStation();
    if (!station) return;
    this.station = station;
    this.stationInfo = this.config.stations.find((s) => s.id === station);
    this.restoreState();
    this.relabel();
    this.connect();
    this.refreshRecalls();
    setInterval(() => this.tick(), 1000);
    setInterval(() => this.refreshBranch(), CONFIG_REFRESH_MS);
    window.addEventListener("resize", () => this.render());
  }

  async loadBranch() {
    const info = await api(this.dev, "GET", "");
    this.setBranch(info);
  }

  setBranch(info) {
    this.config = info.config;
    this.eightySixed = info.eighty_sixed || [];
    if (info.stock) this.stock = info.stock;
    this.items = new Map(this.config.items.map((i) => [i.id, i]));
    this.categories = new Map(this.config.categories.map((c) => [c.id, c]));
    this.stations = new Map(this.config.stations.map((s) => [s.id, s]));
    this.tables = new Map(this.config.tables.map((x) => [x.id, x]));
  }

  async refreshBranch() {
    try {
      this.setBranch(await api(this.dev, "GET", ""));
      this.render();
    } catch { /* kept as it was; the next refresh tries again */ }
  }

  /** The station this screen shows; null while it waits for a choice (the picker). */
  async chooseStation() {
    return this.dev.claims.station || null;
  }

  topics() {
    return [{ station: this.station }];
  }

  connect() {
    this.started = true;
    const badge = connectionBadge(this.$("#conn"), this.$("#stale"));
    const show = () => {
      const s = this.shownState();
      if (s === this.state) return;
      this.state = s;
      badge(s);
    };
    this.live = new Live(this.dev, {
      topics: this.topics(),
      onFrame: (f) => this.onFrame(f),
      onState: (s) => {
        show();
        if (s === "signin") {
          this.live?.close();
          refusalOf(this.dev).then((why) => this.showPair(true, why));
        }
        if (s === "live") {
          this.ackAll();
          if (this.wasDown) this.refreshBranch();
          this.wasDown = false;
        } else if (s === "stale" || s === "reconnecting") {
          this.wasDown = true;
        }
      },
    });
    // Between two attempts to reconnect the socket says nothing: the screen is stale once the
    // server has not been heard for the heartbeat's limit, whatever the attempts say.
    setInterval(show, 250);
  }

  /** What the screen says of its connection. */
  shownState() {
    const live = this.live;
    if (!live) return "connecting";
    const s = live.state;
    if (s === "signin" || s === "live") return s;
    if (live.lastHeard && Date.now() - live.lastHeard > STALE_MS) return "stale";
    return s === "stale" && !live.lastHeard ? "reconnecting" : s;
  }

  // ----- state kept on the device

  storeKey(what) {
    return `rail-${this.page}-${what}:${this.dev.branch}:${this.station}`;
  }

  restoreState() {
    const flags = load(this.storeKey("flags"), {});
    for (const [id, f] of Object.entries(flags)) this.flags.set(id, { modified: !!f.modified, recalled: !!f.recalled });
    this.bumpStack = load(this.storeKey("bumps"), []);
    this.recent = load(this.storeKey("recent"), []).slice(0, 60);
  }

  saveState() {
    const flags = {};
    for (const [id, f] of this.flags) {
      const tk = this.tickets.get(id);
      if (tk && isLive(tk) && (f.modified || f.recalled)) flags[id] = { modified: f.modified, recalled: f.recalled };
    }
    save(this.storeKey("flags"), flags);
    save(this.storeKey("bumps"), this.bumpStack.slice(-50));
    save(this.storeKey("recent"), this.recent.slice(0, 60));
  }

  flag(id) {
    let f = this.flags.get(id);
    if (!f) this.flags.set(id, (f = { modified: false, recalled: false }));
    return f;
  }

  // ----- frames

  onFrame(frame) {
    switch (frame.type) {
      case "snapshot":
        if (frame.topic?.kind === "station" && frame.topic.id === this.station) this.onSnapshot(frame);
        else this.onOtherSnapshot(frame);
        break;
      case "event":
        if (frame.topic?.kind === "station" && frame.topic.id === this.station) this.onStationEvent(frame);
        else this.onOtherEvent(frame);
        break;
      case "all_day":
        if (frame.station === this.station) {
          this.allDay = frame.items;
          this.renderAllDay();
        }
        return;
      case "stock":
        this.stock = frame.items;
        this.renderAllDay();
        return;
      case "subscribed":
        // A (re)subscription: the engine waits for this screen's receipts again.
        this.acked.clear();
        this.ackAll();
        return;
      case "error":
        if (["forbidden", "unknown_station", "wrong_branch"].includes(frame.code)) {
          this.live.close();
          this.showBlocked(errorText(frame).text, frame.message);
        } else {
          this.toast(errorText(frame), true);
        }
        return;
      default:
        return;
    }
    this.queueRender();
  }

  onOtherSnapshot() {}
  onOtherEvent() {}

  onSnapshot(frame) {
    const before = this.tickets;
    const next = new Map();
    // Bumped tickets stay known for recall; the snapshot holds the live ones.
    for (const [id, tk] of before) if (tk.status === "bumped") next.set(id, tk);
    const fresh = [];
    for (const tk of frame.snapshot.tickets) {
      const had = before.get(tk.id);
      if (this.hadSnapshot && (!had || !isLive(had))) fresh.push(tk);
      next.set(tk.id, tk);
    }
    this.tickets = next;
    for (const id of [...this.flags.keys()]) if (!next.has(id)) this.flags.delete(id);
    if (fresh.length) this.chimeLater("new");
    if (frame.reset) this.notice(t("conn.reset"));
    this.hadSnapshot = true;
    this.acked.clear();
    this.loadOrders(frame.snapshot.tickets.map((x) => x.order_id), this.refetchOnSnapshot);
    this.saveState();
  }

  /** The events of this station's topic. Subclasses add theirs and call this. */
  onStationEvent(frame) {
    const ev = frame.event;
    const at = frame.at;
    const mine = (ref) => ref.station === this.station && this.tickets.has(ref.ticket_id);
    switch (ev.type) {
      case "course_fired": {
        let added = 0;
        for (const tk of ev.tickets) {
          if (tk.station !== this.station) continue;
          if (!this.tickets.has(tk.id)) added++;
          this.tickets.set(tk.id, tk);
          this.flags.set(tk.id, { modified: false, recalled: false });
        }
        const info = this.orders.get(ev.order_id);
        if (info?.next_course && (ev.course == null || ev.course >= info.next_course.course)) info.next_course = null;
        const next = this.coming.get(ev.order_id);
        if (next && (ev.course == null || ev.course >= next.course)) this.coming.delete(ev.order_id);
        if (added) {
          this.chimeLater("new");
          this.loadOrders([ev.order_id]);
        }
        break;
      }
      case "orders_merged":
        for (const tk of ev.tickets) {
          if (tk.station !== this.station) continue;
          this.tickets.set(tk.id, tk);
          if (isLive(tk)) this.flag(tk.id).modified = true;
        }
        this.orders.delete(ev.from);
        this.loadOrders([ev.order_id], true);
        this.chimeLater("changed");
        break;
      case "line_voided":
      case "priority_changed":
      case "order_moved": {
        let touched = false;
        for (const ref of ev.tickets.filter(mine)) {
          const tk = this.tickets.get(ref.ticket_id);
          applyToTicket(tk, ev, at);
          if (isLive(tk)) {
            this.flag(tk.id).modified = true;
            touched = true;
          }
        }
        if (ev.type === "order_moved") {
          const info = this.orders.get(ev.order_id);
          if (info) info.table = ev.to;
          const next = this.coming.get(ev.order_id);
          if (next) next.table = ev.to;
        }
        if (touched) this.chimeLater(ev.type === "line_voided" ? "voided" : "changed");
        break;
      }
      case "course_scheduled": {
        const info = this.orders.get(ev.order_id) || { loaded: false };
        info.next_course = { course: ev.course, at: ev.at };
        info.table = ev.table;
        this.orders.set(ev.order_id, info);
        this.coming.set(ev.order_id, { course: ev.course, at: ev.at, table: ev.table });
        this.loadOrders([ev.order_id]);
        break;
      }
      default:
        if (ev.ticket_id && ev.station === this.station) this.onTicketEvent(ev, at);
    }
    this.saveState();
  }

  onTicketEvent(ev, at) {
    const tk = this.tickets.get(ev.ticket_id);
    if (!tk) {
      // Recalled from before this screen knew it (bumped before a reload): read it back.
      if (ev.type === "ticket_recalled") {
        this.flag(ev.ticket_id).recalled = true;
        this.fetchLive();
      }
      return;
    }
    applyToTicket(tk, ev, at);
    const f = this.flag(tk.id);
    switch (ev.type) {
      case "ticket_bumped":
        f.recalled = false;
        f.busy = null;
        this.remember(tk, at);
        break;
      case "ticket_recalled":
        f.recalled = true;
        this.acked.delete(tk.id);
        this.recent = this.recent.filter((r) => r.id !== tk.id);
        this.chimeLater("new");
        break;
      case "ticket_voided":
        f.voidedAt = Date.now();
        this.chimeLater("voided");
        setTimeout(() => this.queueRender(), VOIDED_SHOWN_MS + 100);
        break;
      case "ticket_unseen":
        // Escalated: acknowledged again with the next drawing.
        this.acked.delete(tk.id);
        break;
      case "ticket_started":
        f.busy = null;
        break;
      default:
        break;
    }
  }

  /** Reads the station's live tickets back by REST and takes in what is missing. */
  async fetchLive() {
    try {
      const list = await api(this.dev, "GET", `/stations/${encodeURIComponent(this.station)}/tickets`);
      for (const tk of list) if (!this.tickets.has(tk.id) || !isLive(this.tickets.get(tk.id))) this.tickets.set(tk.id, tk);
      this.queueRender();
    } catch (e) {
      this.toast(errorText(e), true);
    }
  }

  /** A bumped ticket, for the recall list (the last 30 minutes). */
  remember(tk, at) {
    const stamp = Date.parse(at) || this.now();
    this.recent = [
      { id: tk.id, order_id: tk.order_id, ticket_no: tk.ticket_no, table: tk.table, source: tk.source, at: stamp, lines: tk.lines.filter((l) => !l.voided).map((l) => `${l.quantity}× ${l.name}`) },
      ...this.recent.filter((r) => r.id !== tk.id),
    ].filter((r) => this.now() - r.at < RECALL_WINDOW_MS).slice(0, 60);
  }

  /** Reads the orders behind tickets (guests, paced courses, another system's reference). */
  loadOrders(ids, again = false) {
    const wanted = [...new Set(ids)].filter((id) => again || !this.loadedOrders.has(id));
    for (const id of wanted) this.loadedOrders.add(id);
    limited(wanted.map((id) => async () => {
      try {
        const o = await api(this.dev, "GET", `/orders/${id}`);
        this.takeOrder(o);
      } catch {
        this.loadedOrders.delete(id);
      }
    })).then(() => wanted.length && this.queueRender());
  }

  takeOrder(o) {
    this.orders.set(o.id, { guests: o.guests, next_course: o.next_course, external_ref: o.external_ref, table: o.table, closed: !!o.closed_at, loaded: true });
  }

  // ----- receipts

  /** Acknowledges every ticket drawn (cards and queue chips) not acknowledged since subscribing. */
  ackAll() {
    if (!this.live || !this.station) return;
    const drawn = this.drawn || [];
    const fresh = drawn.filter((id) => !this.acked.has(id));
    for (let i = 0; i < fresh.length; i += SEEN_MAX) {
      const chunk = fresh.slice(i, i + SEEN_MAX);
      if (this.live.send({ type: "seen", station: this.station, tickets: chunk })) chunk.forEach((id) => this.acked.add(id));
    }
  }

  // ----- timers

  thresholds(source) {
    const c = this.config || {};
    const by = (c.timers_by_source && source && c.timers_by_source[source]) || {};
    const late = by.late_after_seconds ?? c.late_after_seconds ?? DEFAULT_LATE;
    let warn = by.warning_after_seconds ?? c.warning_after_seconds ?? DEFAULT_WARNING;
    if (warn > late) warn = late;
    return { warn, late };
  }

  now() {
    return this.live ? this.live.now() : Date.now();
  }

  /** How old a ticket is and how that reads: waiting (before its start time), normal, warning, late. */
  age(tk) {
    const ready = this.live && this.live.offsets.length > 0;
    const now = this.now();
    const fired = Date.parse(tk.fired_at);
    const starts = tk.starts_at ? Date.parse(tk.starts_at) : null;
    const seconds = Math.max(0, (now - fired) / 1000);
    if (!ready) return { seconds: 0, level: "normal", ready };
    if (starts && now < starts) return { seconds, level: "waiting", ready, startsIn: (starts - now) / 1000 };
    const counted = Math.max(0, (now - Math.max(fired, starts || fired)) / 1000);
    const { warn, late } = this.thresholds(tk.source);
    return { seconds, level: counted >= late ? "late" : counted >= warn ? "warning" : "normal", ready };
  }

  tick() {
    const shownLive = this.liveList();
    let late = 0;
    for (const tk of shownLive) {
      const a = this.age(tk);
      if (a.level === "late") late++;
      for (const node of document.querySelectorAll(`[data-timer="${tk.id}"]`)) this.paintTimer(node, tk, a);
    }
    this.setLateCount(late);
    const c = this.$("#clock");
    if (c) c.textContent = timeOfDay(new Date(this.now()).toISOString(), this.config?.time_zone);
    // Fully voided tickets leave after a while.
    if ([...this.flags.values()].some((f) => f.voidedAt && Date.now() - f.voidedAt > VOIDED_SHOWN_MS)) this.queueRender();
    this.tickExtra();
  }

  tickExtra() {}

  paintTimer(node, tk, a = this.age(tk)) {
    node.textContent = a.ready ? clock(a.seconds) : "–:––";
    const card = node.closest(".ticket, .chip");
    const starts = card?.querySelector(".starts");
    if (starts && tk.starts_at) {
      const at = t("kitchen.start_at", { time: timeOfDay(tk.starts_at, this.config.time_zone) });
      starts.textContent = a.level === "waiting" ? `${at} · ${t("kitchen.starts_in", { time: clock(a.startsIn) })}` : at;
    }
    if (card) {
      card.classList.toggle("warning", a.level === "warning");
      card.classList.toggle("late", a.level === "late");
      card.classList.toggle("waiting", a.level === "waiting");
    }
  }

  setLateCount(n) {
    const box = this.$("#late");
    if (!box) return;
    box.dataset.count = String(n);
    box.classList.toggle("has-late", n > 0);
    box.textContent = t("kitchen.late_count", { n });
  }

  // ----- the list, paging, selection

  /** Tickets on the screen: live ones, and fully voided ones for a moment. */
  liveList() {
    const list = [];
    for (const tk of this.tickets.values()) {
      if (isLive(tk)) list.push(tk);
      else if (tk.status === "voided") {
        const f = this.flags.get(tk.id);
        if (f?.voidedAt && Date.now() - f.voidedAt < VOIDED_SHOWN_MS) list.push(tk);
      }
    }
    return list.sort(stationOrder);
  }

  queueRender() {
    if (this.renderQueued) return;
    this.renderQueued = true;
    queueMicrotask(() => this.flushRender());
  }

  flushRender() {
    if (!this.renderQueued) return;
    // A finger on the screen: its button stays where it is until the tap ends (a press held
    // longer than a tap does not hold the screen back).
    const held = this.pressing ? Date.now() - this.pressing : Infinity;
    if (held < 1000) {
      setTimeout(() => this.flushRender(), 1000 - held + 10);
      return;
    }
    this.renderQueued = false;
    this.render();
  }

  render() {
    if (!this.station || !this.config) return;
    const list = this.liveList();
    this.list = list;
    if (this.pageStart >= list.length) {
      this.pageStart = 0;
      this.pageHistory = [];
    }
    const board = this.$("#board");
    if (!board) return;
    const onPage = list.slice(this.pageStart);
    board.replaceChildren(...onPage.map((tk) => this.card(tk)));
    if (!list.length) board.append(el("p", { class: "empty" }, this.hadSnapshot ? t("kitchen.empty") : t("kitchen.loading")));
    // What fits on the page, in order; the rest is listed in the queue below.
    const box = board.getBoundingClientRect();
    const cards = [...board.querySelectorAll(".ticket")];
    let fits = 0;
    for (const c of cards) {
      const rects = [...c.getClientRects()];
      const inside = rects.every((r) => r.right <= box.right + 1 && r.bottom <= box.bottom + 1);
      if (!inside && fits > 0) break;
      fits++;
    }
    cards.slice(fits).forEach((c) => c.remove());
    this.visible = onPage.slice(0, fits).map((x) => x.id);
    cards.slice(0, fits).forEach((c, i) => {
      const pos = c.querySelector(".pos");
      if (pos) pos.textContent = i < 9 ? String(i + 1) : "";
    });
    // A ticket gone (bumped): the one that took its place is selected.
    if (!this.visible.includes(this.selected)) this.selected = this.visible[Math.min(this.selectedAt || 0, this.visible.length - 1)] || null;
    this.selectedAt = Math.max(0, this.visible.indexOf(this.selected));
    for (const c of cards.slice(0, fits)) {
      c.classList.toggle("selected", c.dataset.ticket === this.selected);
      c.setAttribute("aria-current", c.dataset.ticket === this.selected ? "true" : "false");
    }
    this.renderQueue(list, fits);
    this.renderHeader(list);
    this.drawn = list.map((x) => x.id).filter((id) => isLive(this.tickets.get(id)));
    this.ackAll();
    for (const tk of list) for (const node of document.querySelectorAll(`[data-timer="${tk.id}"]`)) this.paintTimer(node, tk);
    this.setLateCount(list.filter((x) => isLive(x) && this.age(x).level === "late").length);
    this.renderAllDay();
    this.flushChimes();
  }

  /** Tickets off this page: small chips, earlier ones first, each jumps to its page. */
  renderQueue(list, fits) {
    const queue = this.$("#queue");
    const before = list.slice(0, this.pageStart);
    const after = list.slice(this.pageStart + fits);
    const chip = (tk) => el("button", { type: "button", class: `chip${tk.priority ? " rush" : ""}`, "data-chip": tk.id, onclick: () => this.jumpTo(tk.id), "aria-label": t("kitchen.chip_label", { no: ticketNo(tk.ticket_no), table: this.tableName(tk.table) }) },
      el("span", { class: "chip-no" }, ticketNo(tk.ticket_no)),
      el("span", { class: "chip-table" }, this.tableName(tk.table)),
      el("span", { class: "chip-timer", "data-timer": tk.id }, ""));
    const parts = [];
    const soon = [...this.coming.values()].filter((c) => this.now() - Date.parse(c.at) < 60000).sort((x, y) => Date.parse(x.at) - Date.parse(y.at));
    for (const c of soon) {
      parts.push(el("span", { class: "coming" }, t("kitchen.coming", { table: this.tableName(c.table), n: c.course, time: timeOfDay(c.at, this.config.time_zone) })));
    }
    if (before.length) parts.push(el("span", { class: "queue-label" }, t("kitchen.earlier", { n: before.length })), ...before.map(chip));
    if (after.length) parts.push(el("span", { class: "queue-label after" }, t("kitchen.more", { n: after.length })), ...after.map(chip));
    // Always there (the page's height does not change under the cards): with nothing off the
    // page, where the keys are.
    if (!parts.length) parts.push(el("span", { class: "queue-hint" }, t("kitchen.queue_hint", { keys: this.keys.help.map(keyLabel).join(" / ") })));
    queue.replaceChildren(...parts);
    // The next tickets in view: where "more" begins.
    const next = queue.querySelector(".queue-label.after");
    queue.scrollLeft = next ? Math.max(0, next.offsetLeft - queue.offsetLeft - 120) : 0;
    this.$("#page-info").textContent = list.length > fits || this.pageStart > 0
      ? t("kitchen.page_info", { from: list.length ? this.pageStart + 1 : 0, to: this.pageStart + fits, total: list.length })
      : "";
    this.fits = fits;
  }

  renderHeader(list) {
    this.$("#count").textContent = t("kitchen.ticket_count", { n: list.filter(isLive).length });
  }

  jumpTo(id) {
    const i = (this.list || []).findIndex((x) => x.id === id);
    if (i < 0) return;
    // The page that holds it, counting pages from the first as PageDown does.
    const history = [];
    let start = 0;
    for (let guard = 0; guard < 200; guard++) {
      this.pageStart = start;
      this.render();
      if (i < start + (this.fits || 1)) break;
      history.push(start);
      start += this.fits || 1;
    }
    this.pageHistory = history;
    this.selected = id;
    this.render();
  }

  select(id) {
    this.selected = id;
    this.selectedAt = Math.max(0, this.visible.indexOf(id));
    for (const c of this.$("#board").querySelectorAll(".ticket")) {
      c.classList.toggle("selected", c.dataset.ticket === id);
      c.setAttribute("aria-current", c.dataset.ticket === id ? "true" : "false");
    }
  }

  move(step) {
    const list = this.list || [];
    if (!list.length) return;
    const i = Math.max(0, list.findIndex((x) => x.id === this.selected));
    const j = Math.min(list.length - 1, Math.max(0, i + step));
    const id = list[j].id;
    if (!this.visible.includes(id)) {
      if (step > 0) this.pageDown();
      else this.pageUp();
    }
    this.selected = id;
    this.render();
  }

  pageDown() {
    const list = this.list || [];
    if (this.pageStart + (this.fits || 1) >= list.length) return;
    this.pageHistory.push(this.pageStart);
    this.pageStart += this.fits || 1;
    this.selected = null;
    this.selectedAt = 0;
    this.render();
  }

  firstPage() {
    this.pageStart = 0;
    this.pageHistory = [];
    this.selected = null;
    this.selectedAt = 0;
    this.render();
  }

  pageUp() {
    if (this.pageStart === 0) return;
    this.pageStart = this.pageHistory.pop() ?? 0;
    this.selected = null;
    this.selectedAt = 0;
    this.render();
  }

  // ----- the card

  tableName(id) {
    return this.tables?.get(id)?.name || id;
  }

  card(tk) {
    const f = this.flag(tk.id);
    const voided = tk.status === "voided";
    const info = this.orders.get(tk.order_id);
    const cls = ["ticket", `status-${tk.status}`, tk.priority && "rush", f.recalled && "recalled", f.modified && "modified", voided && "voided", f.busy && "busy", ...this.cardClasses(tk)]
      .filter(Boolean).join(" ");
    const label = t("kitchen.card_label", { no: ticketNo(tk.ticket_no), table: this.tableName(tk.table) });
    const card = el("article", { class: cls, "data-ticket": tk.id, "data-order": tk.order_id, "aria-label": label },
      el("div", { class: "t-head" },
        el("span", { class: "pos", "aria-hidden": "true" }, ""),
        el("span", { class: "no" }, ticketNo(tk.ticket_no)),
        el("span", { class: "timer", "data-timer": tk.id, role: "timer", "aria-label": t("kitchen.age") }, "")),
      el("div", { class: "t-meta" },
        el("span", { class: "where" }, this.tableName(tk.table)),
        tk.source ? el("span", { class: `tag src-${tk.source}` }, t(`source.${tk.source}`)) : null,
        info?.guests ? el("span", { class: "guests" }, t("kitchen.guests", { n: info.guests })) : null,
        info?.external_ref ? el("span", { class: "ref" }, info.external_ref) : null,
        tk.course ? el("span", { class: "course" }, t("kitchen.course", { n: tk.course })) : null),
      this.tagRow(tk, f, info),
      this.cardBody(tk),
      voided ? null : el("div", { class: "t-actions" }, ...this.cardButtons(tk)));
    card.addEventListener("click", (e) => {
      if (e.target.closest("button")) return;
      this.select(tk.id);
    });
    return card;
  }

  cardClasses() {
    return [];
  }

  tagRow(tk, f, info) {
    const tags = [];
    if (tk.priority) tags.push(el("span", { class: "tag rush" }, t("kitchen.rush")));
    if (tk.status === "voided") tags.push(el("span", { class: "tag void" }, t("kitchen.void")));
    if (f.recalled) tags.push(el("span", { class: "tag recalled" }, t("kitchen.recalled")));
    if (f.modified) tags.push(el("span", { class: "tag modified" }, t("kitchen.modified")));
    if (tk.moved_from) tags.push(el("span", { class: "moved" }, t("kitchen.moved_from", { table: this.tableName(tk.moved_from) })));
    if (tk.starts_at) {
      const at = timeOfDay(tk.starts_at, this.config.time_zone);
      tags.push(el("span", { class: "starts", "data-starts": tk.id }, t("kitchen.start_at", { time: at })));
    }
    if (info?.next_course) {
      tags.push(el("span", { class: "next-course" }, t("kitchen.next_course", { n: info.next_course.course, time: timeOfDay(info.next_course.at, this.config.time_zone) })));
    }
    tags.push(...this.cardTags(tk));
    return tags.length ? el("div", { class: "t-tags" }, ...tags) : null;
  }

  cardTags() {
    return [];
  }

  cardBody() {
    return null;
  }

  cardButtons(tk) {
    const busy = this.flag(tk.id).busy;
    return [
      tk.status === "new" ? el("button", { type: "button", class: "start", disabled: !!busy, onclick: () => this.act("start", tk.id) }, t("kitchen.start")) : null,
      el("button", { type: "button", class: "bump primary", disabled: !!busy, onclick: () => this.act("bump", tk.id) }, t("kitchen.bump")),
    ];
  }

  // ----- commands

  async act(type, id) {
    const tk = this.tickets.get(id);
    if (!tk || !this.live) return;
    if (type !== "recall" && !isLive(tk)) return;
    const f = this.flag(id);
    if (f.busy) return;
    f.busy = type;
    this.queueRender();
    try {
      await this.live.command(type, this.station, id);
      if (type === "bump") {
        this.bumpStack = [...this.bumpStack.filter((x) => x !== id), id].slice(-50);
        this.saveState();
      }
    } catch (e) {
      this.toast(errorText(e), true);
    } finally {
      f.busy = null;
      this.queueRender();
    }
  }

  /** R: the last ticket this screen bumped (again: the one before), else the station's last bump. */
  async recallLast() {
    while (this.bumpStack.length) {
      const id = this.bumpStack.pop();
      this.saveState();
      const tk = this.tickets.get(id);
      const stillBumped = tk ? tk.status === "bumped" : this.recent.some((r) => r.id === id);
      if (stillBumped) return this.recall(id);
    }
    let r = this.recentList()[0];
    if (!r) {
      await this.refreshRecalls();
      r = this.recentList()[0];
    }
    if (r) return this.recall(r.id);
    this.toast({ text: t("kitchen.nothing_to_recall"), detail: "" });
  }

  async recall(id) {
    if (!this.live) return;
    try {
      await this.live.command("recall", this.station, id);
      this.recent = this.recent.filter((r) => r.id !== id);
      this.saveState();
      this.selected = id;
      this.queueRender();
      if (this.$("#recalls").open) this.renderRecalls();
    } catch (e) {
      this.toast(errorText(e), true);
      if (e.code === "invalid_transition" || e.code === "unknown_ticket") {
        this.recent = this.recent.filter((r) => r.id !== id);
        this.saveState();
        if (this.$("#recalls").open) this.renderRecalls();
      }
    }
  }

  recentList() {
    return this.recent.filter((r) => this.now() - r.at < RECALL_WINDOW_MS && !(this.tickets.get(r.id) && isLive(this.tickets.get(r.id))));
  }

  // ----- sounds

  chimeLater(kind) {
    this.pendingChimes.add(kind);
    this.queueRender();
  }

  flushChimes() {
    // One sound of each kind per change, the most telling first.
    for (const kind of ["voided", "new", "changed", "ready"]) if (this.pendingChimes.has(kind)) chime(kind);
    this.pendingChimes.clear();
  }

  // ----- keys

  loadKeys() {
    const saved = load(`rail-keys:${this.page}`, {});
    const keys = {};
    for (const [action, defaults] of Object.entries(KEY_DEFAULTS)) {
      keys[action] = Array.isArray(saved[action]) && saved[action].length ? saved[action] : defaults;
    }
    return keys;
  }

  saveKeys() {
    const changed = {};
    for (const a of this.actions) {
      if (JSON.stringify(this.keys[a]) !== JSON.stringify(KEY_DEFAULTS[a])) changed[a] = this.keys[a];
    }
    save(`rail-keys:${this.page}`, changed);
  }

  actionOf(key) {
    const k = normKey(key);
    return this.actions.find((a) => this.keys[a].some((x) => normKey(x) === k)) || null;
  }

  onKey(e) {
    if (e.ctrlKey || e.metaKey || e.altKey) return;
    if (this.capture) {
      e.preventDefault();
      if (e.key !== "Escape") {
        const k = normKey(e.key);
        for (const a of this.actions) this.keys[a] = this.keys[a].filter((x) => normKey(x) !== k);
        this.keys[this.capture] = [k];
        this.saveKeys();
      }
      this.capture = null;
      this.renderSettings();
      return;
    }
    const target = e.target;
    if (target && target.closest && target.closest("input, select, textarea")) return;
    // A focused button takes its own Enter and Space.
    if ((e.key === "Enter" || e.key === " ") && target?.closest?.("button")) return;
    const help = this.$("#help");
    const settings = this.$("#settings");
    const recalls = this.$("#recalls");
    const action = this.actionOf(e.key);
    if (settings.open) return;
    if (help.open) {
      if (action === "help") {
        e.preventDefault();
        help.close();
      }
      return;
    }
    if (recalls.open) {
      const n = action?.startsWith("select") ? Number(action.slice(6)) : 0;
      if (n) {
        e.preventDefault();
        const r = this.recentList()[n - 1];
        if (r) this.recall(r.id).then(() => recalls.close());
      } else if (action === "recalls") {
        e.preventDefault();
        recalls.close();
      }
      return;
    }
    if (!action) return;
    e.preventDefault();
    this.doAction(action);
  }

  doAction(action) {
    if (action.startsWith("select")) {
      const id = this.visible[Number(action.slice(6)) - 1];
      if (id) this.select(id);
      return;
    }
    switch (action) {
      case "bump": if (this.selected) this.act("bump", this.selected); break;
      case "start": if (this.selected && this.tickets.get(this.selected)?.status === "new") this.act("start", this.selected); break;
      case "recall": this.recallLast(); break;
      case "prev": this.move(-1); break;
      case "next": this.move(1); break;
      case "pageUp": this.pageUp(); break;
      case "pageDown": this.pageDown(); break;
      case "home": this.firstPage(); break;
      case "allDay": this.toggleAllDay(); break;
      case "recalls": this.openRecalls(); break;
      case "help": this.openHelp(); break;
      case "mute": this.toggleMute(); break;
      default: break;
    }
  }

  // ----- the page's frame: header, banners, panels

  $(sel) {
    return document.querySelector(sel);
  }

  chrome() {
    const bar = this.$("#bar");
    const tools = this.$("#tools");
    tools.append(
      el("button", { type: "button", id: "btn-allday", class: "tool", "aria-controls": "allday", "aria-expanded": "false", onclick: () => this.toggleAllDay() }, ""),
      el("button", { type: "button", id: "btn-recalls", class: "tool", onclick: () => this.openRecalls() }, ""),
      el("button", { type: "button", id: "btn-help", class: "tool", onclick: () => this.openHelp() }, ""),
      el("button", { type: "button", id: "btn-settings", class: "tool", onclick: () => this.openSettings() }, ""),
      el("button", { type: "button", id: "btn-mute", class: "tool", "aria-pressed": String(muted()), onclick: () => this.toggleMute() }, ""),
    );
    bar.append(langSwitch());
    const prompt = this.$("#sound-prompt");
    const unlock = () => {
      unlockSound();
      prompt.hidden = true;
      document.removeEventListener("pointerdown", unlock, true);
      document.removeEventListener("keydown", unlock, true);
    };
    document.addEventListener("pointerdown", unlock, true);
    document.addEventListener("keydown", unlock, true);
    prompt.addEventListener("click", unlock);
    document.addEventListener("keydown", (e) => this.onKey(e));
    document.addEventListener("pointerdown", () => { this.pressing = Date.now(); }, true);
    const release = () => {
      // After the click that ends the tap.
      setTimeout(() => {
        this.pressing = 0;
        this.flushRender();
      }, 0);
    };
    document.addEventListener("pointerup", release, true);
    document.addEventListener("pointercancel", release, true);
    this.$("#help-settings").addEventListener("click", () => {
      this.$("#help").close();
      this.openSettings();
    });
    for (const d of document.querySelectorAll("dialog")) {
      d.querySelector(".close")?.addEventListener("click", () => d.close());
      // Back on the tickets, the bump bar's Enter bumps: it must not press the button that
      // opened the panel.
      d.addEventListener("close", () => {
        const f = document.activeElement;
        if (f && f !== document.body && !f.closest("dialog")) f.blur();
      });
    }
    // A tapped button keeps no focus, for the same reason (a key press still focuses).
    document.addEventListener("click", (e) => {
      const b = e.target.closest?.("button");
      if (b && e.detail > 0 && !b.closest("dialog")) b.blur();
    });
    this.$("#allday-close").addEventListener("click", () => this.toggleAllDay(false));
    this.$("#keys-reset").addEventListener("click", () => {
      this.keys = Object.fromEntries(Object.entries(KEY_DEFAULTS).map(([a, k]) => [a, [...k]]));
      this.saveKeys();
      this.renderSettings();
    });
    this.$("#settings").addEventListener("close", () => { this.capture = null; });
    this.relabel();
  }

  /** Everything drawn with words, again (a language switch). */
  relabel() {
    translate(document);
    const set = (sel, text) => { const n = this.$(sel); if (n) n.textContent = text; };
    set("#btn-allday", t("kitchen.all_day"));
    set("#btn-recalls", t("kitchen.recalls"));
    set("#btn-help", t("kitchen.help"));
    set("#btn-settings", t("kitchen.keys"));
    this.paintMute();
    if (this.state) connectionBadge(this.$("#conn"), this.$("#stale"))(this.state);
    this.$("#station-name").textContent = this.stationInfo ? this.stationInfo.name : t(`${this.page}.title`);
    if (this.stationInfo) {
      this.$("#branch-name").textContent = this.config.name;
      document.title = `${this.stationInfo.name} · ${t(`${this.page}.title`)}`;
    }
    this.render();
    if (this.$("#help").open) this.renderHelp();
    if (this.$("#settings").open) this.renderSettings();
    if (this.$("#recalls").open) this.renderRecalls();
    this.tick();
  }

  paintMute() {
    const b = this.$("#btn-mute");
    if (!b) return;
    b.setAttribute("aria-pressed", String(muted()));
    b.textContent = muted() ? t("common.sound_off") : t("common.sound_on");
    b.classList.toggle("off", muted());
  }

  toggleMute() {
    setMuted(!muted());
    this.paintMute();
  }

  toast(msg, error = false) {
    const box = this.$("#toast");
    box.replaceChildren(el("strong", {}, msg.text), msg.detail ? el("div", { class: "detail" }, msg.detail) : null);
    box.classList.toggle("error", error);
    box.hidden = false;
    clearTimeout(this.toastTimer);
    this.toastTimer = setTimeout(() => { box.hidden = true; }, 6000);
  }

  notice(text) {
    const box = this.$("#notice");
    box.textContent = text;
    box.hidden = false;
    clearTimeout(this.noticeTimer);
    this.noticeTimer = setTimeout(() => { box.hidden = true; }, 15000);
  }

  /**
   * No token, or a refused one: the pairing form (static/pairing.js), no socket. `why` is
   * "revoked" when a manager unpaired this screen. Paired from here, the screen starts at once;
   * one that ran before starts over.
   */
  showPair(refused, why = null) {
    if (refused) this.dev?.forget();
    const main = this.$("#main");
    if (!this.boardNodes) this.boardNodes = [...main.childNodes];
    main.replaceChildren(pairingView({
      reason: why === "revoked" ? "revoked" : null,
      before: refused && why !== "revoked" ? ["kitchen.pair_refused"] : [],
      notes: [`${this.page}.pair_which`],
      accepts: (issued) => ["kitchen", "manager"].includes(issued.role),
      onPaired: () => {
        if (this.started) return location.reload();
        main.replaceChildren(...this.boardNodes);
        this.boardNodes = null;
        this.dev = device();
        if (this.dev) this.run();
        else this.showPair(false);
      },
    }));
    const c = this.$("#conn");
    c.dataset.state = "signin";
    c.textContent = t("conn.signin");
  }

  showBlocked(text, detail) {
    const main = this.$("#main");
    main.replaceChildren(el("section", { class: "signin", role: "alert" },
      el("h2", {}, text), detail ? el("p", { class: "muted" }, detail) : null,
      el("p", {}, t(`${this.page}.pair_which`))));
  }

  // ----- help

  openHelp() {
    this.renderHelp();
    const d = this.$("#help");
    if (!d.open) d.showModal();
  }

  renderHelp() {
    const list = this.$("#help-keys");
    const rows = [];
    const selects = this.actions.filter((a) => a.startsWith("select"));
    const asShipped = selects.every((a) => this.keys[a].join() === KEY_DEFAULTS[a].join());
    const selKeys = asShipped
      ? [el("kbd", {}, "1"), "–", el("kbd", {}, "9")]
      : selects.flatMap((a) => this.keys[a].map((k) => el("kbd", {}, keyLabel(k))));
    rows.push(el("div", { class: "key-row", "data-action": "select" }, el("dt", {}, ...selKeys), el("dd", {}, t("kitchen.key.select"))));
    for (const a of this.actions.filter((x) => !x.startsWith("select"))) {
      rows.push(el("div", { class: "key-row", "data-action": a },
        el("dt", {}, ...this.keys[a].map((k) => el("kbd", {}, keyLabel(k)))),
        el("dd", {}, t(`kitchen.key.${a}`))));
    }
    rows.push(el("div", { class: "key-row" }, el("dt", {}, el("kbd", {}, keyLabel("Escape"))), el("dd", {}, t("kitchen.key.close"))));
    list.replaceChildren(...rows);
  }

  // ----- key settings

  openSettings() {
    this.renderSettings();
    const d = this.$("#settings");
    if (!d.open) d.showModal();
  }

  renderSettings() {
    const list = this.$("#settings-keys");
    list.replaceChildren(...this.actions.map((a) => {
      const label = a.startsWith("select") ? t("kitchen.key.select_n", { n: a.slice(6) }) : t(`kitchen.key.${a}`);
      const waiting = this.capture === a;
      return el("div", { class: "set-row", "data-action": a },
        el("span", { class: "set-label", id: `set-${a}` }, label),
        el("span", { class: "set-keys" }, ...this.keys[a].map((k) => el("kbd", {}, keyLabel(k)))),
        el("button", { type: "button", class: waiting ? "primary" : "", "aria-describedby": `set-${a}`, onclick: () => { this.capture = a; this.renderSettings(); } },
          waiting ? t("kitchen.press_key") : t("kitchen.change_key")));
    }));
  }

  // ----- recall list

  openRecalls() {
    this.renderRecalls();
    const d = this.$("#recalls");
    if (!d.open) d.showModal();
    this.refreshRecalls();
  }

  /** What the station bumped lately, checked against the orders as they are now. */
  async refreshRecalls() {
    if (this.bumpedEndpoint !== false) {
      try {
        const bumped = await api(this.dev, "GET", `/stations/${encodeURIComponent(this.station)}/bumped?minutes=30`);
        this.bumpedEndpoint = true;
        this.recent = [];
        for (const tk of bumped) {
          if (!this.tickets.has(tk.id) || !isLive(this.tickets.get(tk.id))) this.tickets.set(tk.id, tk);
          this.remember(tk, tk.bumped_at);
        }
        // Latest bumped first, as the engine lists them.
        this.recent.reverse();
        this.saveState();
        if (this.$("#recalls").open) this.renderRecalls();
        return;
      } catch (e) {
        // An engine without the list: what this screen saw, checked against the orders.
        if (e.status !== 404 || e.code === "unknown_station") return;
        this.bumpedEndpoint = false;
      }
    }
    const orders = [...new Set(this.recentList().map((r) => r.order_id))];
    const drop = new Set();
    await limited(orders.map((id) => async () => {
      try {
        const o = await api(this.dev, "GET", `/orders/${id}`);
        for (const r of this.recent.filter((x) => x.order_id === id)) {
          const now = o.tickets.find((x) => x.id === r.id);
          if (o.closed_at || !now || now.status !== "bumped") drop.add(r.id);
          else if (!this.tickets.has(r.id)) this.tickets.set(r.id, now);
        }
      } catch (e) {
        if (e.code === "unknown_order") for (const r of this.recent.filter((x) => x.order_id === id)) drop.add(r.id);
      }
    }));
    if (drop.size) {
      this.recent = this.recent.filter((r) => !drop.has(r.id));
      this.saveState();
    }
    if (this.$("#recalls").open) this.renderRecalls();
  }

  renderRecalls() {
    const list = this.$("#recalls-list");
    const items = this.recentList();
    if (!items.length) {
      list.replaceChildren(el("p", { class: "muted" }, t("kitchen.recalls_empty")));
      return;
    }
    list.replaceChildren(...items.map((r, i) => el("div", { class: "recall-row", "data-recall": r.id },
      el("span", { class: "pos", "aria-hidden": "true" }, i < 9 ? String(i + 1) : ""),
      el("span", { class: "no" }, ticketNo(r.ticket_no)),
      el("span", { class: "where" }, this.tableName(r.table)),
      el("span", { class: "what" }, r.lines.join(", ")),
      el("span", { class: "when" }, t("kitchen.bumped_at", { time: timeOfDay(new Date(r.at).toISOString(), this.config.time_zone) })),
      el("button", { type: "button", class: "primary", onclick: () => this.recall(r.id) }, t("kitchen.recall")))));
  }

  // ----- all-day and stock

  toggleAllDay(force) {
    const panel = this.$("#allday");
    const open = force ?? panel.hidden;
    panel.hidden = !open;
    this.$("#btn-allday").setAttribute("aria-expanded", String(open));
    document.body.classList.toggle("with-allday", open);
    if (open) {
      this.fetchAllDay();
      this.renderAllDay();
    }
    this.render();
  }

  async fetchAllDay() {
    try {
      const a = await api(this.dev, "GET", `/stations/${encodeURIComponent(this.station)}/all-day`);
      this.allDay = a.items;
      this.renderAllDay();
    } catch (e) {
      this.toast(errorText(e), true);
    }
  }

  /** Items this station prepares (its routing), for the stock list. */
  stationItems() {
    return this.config.items.filter((i) => this.routes(i.id).includes(this.station));
  }

  /** The stations an item goes to: its own, else its category's. */
  routes(itemId) {
    const item = this.items.get(itemId);
    if (!item) return [];
    if (item.stations?.length) return item.stations;
    return this.categories.get(item.category)?.stations || [];
  }

  mayEightySix() {
    return ["manager", "pos", "kitchen"].includes(this.dev?.role);
  }

  renderAllDay() {
    const panel = this.$("#allday");
    if (!panel || panel.hidden || !this.config) return;
    const rows = (this.allDay || []).map((a) => el("tr", { "data-item": a.item },
      el("td", { class: "qty" }, String(a.quantity)),
      el("th", { scope: "row" }, a.name),
      el("td", { class: "tk" }, t("kitchen.on_tickets", { n: a.tickets }))));
    this.$("#allday-list").replaceChildren(rows.length ? el("table", { class: "allday-table" },
      el("caption", { class: "sr-only" }, t("kitchen.all_day")),
      el("thead", {}, el("tr", {}, el("th", { scope: "col" }, t("kitchen.qty")), el("th", { scope: "col" }, t("kitchen.item")), el("th", { scope: "col" }, t("kitchen.tickets")))),
      el("tbody", {}, ...rows)) : el("p", { class: "muted" }, t("kitchen.all_day_empty")));
    const left = new Map(this.stock.map((s) => [s.item, s.left]));
    const stockRows = this.stationItems().map((i) => {
      const out = this.eightySixed.includes(i.id);
      const n = left.get(i.id);
      const state = out ? el("span", { class: "tag out" }, t("kitchen.eighty_sixed"))
        : n === 0 ? el("span", { class: "tag out" }, t("kitchen.sold_out"))
          : n != null ? el("span", { class: "tag limited" }, t("kitchen.left", { n })) : el("span", { class: "muted" }, t("kitchen.available"));
      return el("li", { class: `stock-row${out ? " is-out" : ""}`, "data-item": i.id },
        el("span", { class: "stock-name" }, i.name), state,
        this.mayEightySix() ? el("button", { type: "button", class: out ? "good" : "danger", onclick: () => this.eightySix(i.id, !out), "aria-label": (out ? t("kitchen.restore_item", { item: i.name }) : t("kitchen.eighty_six_item", { item: i.name })) },
          out ? t("kitchen.restore") : t("kitchen.eighty_six")) : null);
    });
    this.$("#stock-list").replaceChildren(...stockRows);
  }

  async eightySix(item, out) {
    try {
      const info = await api(this.dev, out ? "PUT" : "DELETE", `/86/${encodeURIComponent(item)}`);
      if (info) this.setBranch(info);
      this.renderAllDay();
    } catch (e) {
      this.toast(errorText(e), true);
    }
  }
}
