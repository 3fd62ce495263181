// What the waiter tablet (/waiter) and the POS (/pos) share: the page's frame (pairing,
// header, connection, sound, language), the branch's open orders kept live from the branch
// subscription, the menu's item buttons (86'd and limited items), the modifier chooser,
// line and order states, and translated refusals in a toast.

import {
  ApiError, Live, api, chime, connectionBadge, device, el, langSwitch, money, muted, setLang,
  setMuted, t, unlockSound,
} from "/static/rail.js";
import { pairingView, refusalOf } from "/static/pairing.js";

export { api, ApiError, el, t, money, chime };

// ---------------------------------------------------------------------------------------------
// The page's frame

/** The roles the page serves (frame's `roles`): a device paired for another goes to its page. */
let pageRoles = [];

/**
 * Sets up the header (language switch, sound toggle, connection badge) and decides whether
 * the page can run: without a token it shows the pairing form and opens no socket; a token of
 * a role the page does not serve is refused on the page, with the form. Resolves with the
 * device once it is paired for this page.
 */
export async function frame({ page, roles }) {
  await setLang();
  const titleKey = `${page}.title`;
  const setTitle = () => { document.title = t(titleKey); };
  setTitle();
  document.addEventListener("rail:lang", setTitle);

  const tools = document.getElementById("tools");
  const sound = el("button", { type: "button", id: "sound", class: "sound" });
  let unlocked = false;
  const drawSound = () => {
    sound.setAttribute("aria-pressed", String(!muted()));
    sound.textContent = t(muted() ? "common.sound_off" : unlocked ? "common.sound_on" : "common.tap_for_sound");
  };
  let enabling = false; // the tap that unlocks sound on this button enables it, not mutes it
  sound.addEventListener("click", () => {
    if (enabling) {
      enabling = false;
      return;
    }
    setMuted(!muted());
    unlockSound();
    drawSound();
  });
  document.addEventListener("rail:lang", drawSound);
  drawSound();
  tools.append(sound, langSwitch());

  // Browsers start sound only after a gesture: the first tap anywhere unlocks it.
  const unlock = (e) => {
    if (unlocked) return;
    enabling = sound.contains(e.target) && !muted();
    unlockSound();
    unlocked = true;
    drawSound();
  };
  document.addEventListener("pointerdown", unlock, { capture: true });
  document.addEventListener("keydown", unlock, { capture: true });

  const badge = document.getElementById("conn");
  const banner = document.getElementById("stale");
  const showState = connectionBadge(badge, banner);
  let state = "connecting";
  document.addEventListener("rail:lang", () => showState(state));
  const setState = (s) => {
    state = s;
    showState(s);
  };

  pageRoles = roles;
  let dev = device();
  const main = document.getElementById("main");
  if (!dev || !roles.includes(dev.role)) {
    // Until it is paired for this page: the pairing form (static/pairing.js), no socket.
    const other = dev;
    setState("signin");
    dev = await new Promise((resolve) => {
      main.replaceChildren(pairing(roles, {
        before: other ? [el("p", { class: "refused" }, tr(`${page}.wrong_role`, { role: other.role }))] : [],
        onPaired: () => resolve(device()),
      }));
    });
  }
  setState("connecting");
  return { dev, setState, main };
}

/** The pairing view, translated whenever the language changes. */
function pairing(roles, { reason = null, before = [], onPaired }) {
  const view = pairingView({ reason, before, accepts: (issued) => roles.includes(issued.role), onPaired });
  view.setAttribute("role", "region");
  return view;
}

/** A text node that follows the language: `t(key, vars)` now and after every switch. */
export function tr(key, vars) {
  const node = el("span", { "data-tr": key });
  node.textContent = t(key, vars);
  trNodes.add(new WeakRef(node));
  node._vars = vars;
  return node;
}
const trNodes = new Set();
document.addEventListener("rail:lang", () => {
  for (const ref of trNodes) {
    const n = ref.deref();
    if (!n || !n.isConnected) {
      if (!n) trNodes.delete(ref);
      continue;
    }
    n.textContent = t(n.dataset.tr, n._vars);
  }
});

/**
 * Follows the branch over the websocket and keeps the book of open orders. `onSignin` runs
 * when the engine refuses the token.
 */
export function follow(dev, book, setState) {
  const live = new Live(dev, {
    topics: [{}],
    onFrame: (f) => book.frame(f),
    onState: (s) => {
      setState(s);
      if (s === "signin") {
        book.signedOut = true;
        // No order stays on an unpaired screen.
        document.getElementById("ready")?.replaceChildren();
        // Why: a manager unpaired this device, or its token is refused. Paired again, the
        // page starts over.
        refusalOf(dev).then((why) => {
          if (why === "revoked") dev.forget();
          const main = document.getElementById("main");
          main.replaceChildren(pairing(pageRoles, {
            reason: why === "revoked" ? "revoked" : null,
            before: why === "revoked" ? [] : [el("p", { class: "refused", "data-i18n": "ordering.refused_token" }, t("ordering.refused_token"))],
            onPaired: () => location.reload(),
          }));
        });
      }
    },
  });
  book.live = live;
  return live;
}

// ---------------------------------------------------------------------------------------------
// Refusals and notices

const ERRORS = [
  "item_86", "item_eighty_sixed", "item_sold_out", "nothing_to_fire", "nothing_to_serve",
  "invalid_transition", "order_closed", "order_not_finished", "conflict", "rate_limited",
  "forbidden", "unknown_item", "unknown_table", "unknown_order", "unknown_line",
  "invalid_input", "modifier_required", "network", "overloaded", "journal_unavailable",
  "owner_unavailable", "parts_pending", "unauthenticated", "invalid_token", "token_expired",
  "wrong_branch", "idempotency_key_reused",
];

/** What a user reads for an engine refusal: a translated sentence. */
export function errorText(e) {
  const code = e instanceof ApiError ? e.code : "";
  if (ERRORS.includes(code)) return t(`ordering.error.${code}`);
  return t("common.error", { message: e?.message || String(e) });
}

let toastTimer = 0;
// A notice in the language just left would stay on screen untranslated: it goes.
document.addEventListener("rail:lang", () => {
  const box = document.getElementById("toast");
  if (box) box.hidden = true;
});

/** A short message at the bottom of the screen; `detail` in smaller type under it. */
export function toast(message, { error = false, detail = "" } = {}) {
  let box = document.getElementById("toast");
  if (!box) {
    box = el("div", { id: "toast", class: "toast", role: "status", "aria-live": "polite" });
    document.body.append(box);
  }
  box.className = `toast${error ? " error" : ""}`;
  box.setAttribute("role", error ? "alert" : "status");
  box.replaceChildren(el("div", { class: "toast-main" }, message),
    detail ? el("div", { class: "toast-detail" }, detail) : "");
  box.hidden = false;
  clearTimeout(toastTimer);
  toastTimer = setTimeout(() => { box.hidden = true; }, error ? 7000 : 3500);
}

/** Shows an engine refusal, translated, with the engine's own words as detail. */
export function showError(e) {
  const detail = e instanceof ApiError && e.message && ERRORS.includes(e.code) ? e.message : "";
  toast(errorText(e), { error: true, detail });
}

/** Runs `fn` with `button` disabled meanwhile; a refusal is shown. Resolves to fn's value. */
export async function busy(button, fn) {
  if (button) button.disabled = true;
  try {
    return await fn();
  } catch (e) {
    showError(e);
    return undefined;
  } finally {
    if (button && button.isConnected) button.disabled = false;
  }
}

// ---------------------------------------------------------------------------------------------
// The branch's open orders, kept from the branch snapshot and its events

export class OrderBook {
  constructor(dev) {
    this.dev = dev;
    this.config = null;
    this.orders = new Map();
    this.out = new Set(); // 86'd items
    this.stock = new Map(); // item -> portions left (limited items only)
    this.listeners = [];
    this.live = null;
    this.fetching = new Set();
  }

  on(fn) {
    this.listeners.push(fn);
  }

  emit(change) {
    for (const fn of this.listeners) fn(change);
  }

  frame(f) {
    switch (f.type) {
      case "snapshot": {
        const s = f.snapshot;
        if (s.kind !== "branch") return;
        this.config = s.config;
        this.out = new Set(s.eighty_sixed || []);
        this.orders = new Map((s.orders || []).map((o) => [o.id, o]));
        // What is left of limited items follows the snapshot in a `stock` frame, and only
        // while some item is limited.
        this.stock = new Map();
        this.emit({ type: "snapshot", reset: !!f.reset });
        return;
      }
      case "stock":
        this.stock = new Map((f.items || []).map((i) => [i.item, i.left]));
        this.emit({ type: "stock" });
        return;
      case "event":
        this.apply(f);
        return;
      case "error":
        if (!f.id) this.emit({ type: "error", error: new ApiError(0, f.code, f.message) });
        return;
      default:
    }
  }

  /** Keeps an order as a REST answer gave it, unless the book has a later state of it. */
  put(order) {
    if (!order) return;
    const have = this.orders.get(order.id);
    if (have && have.position >= order.position) return;
    if (order.closed_at) this.orders.delete(order.id);
    else this.orders.set(order.id, order);
    this.emit({ type: "order", order });
  }

  async fetch(id) {
    if (this.fetching.has(id)) return;
    this.fetching.add(id);
    try {
      this.put(await api(this.dev, "GET", `/orders/${id}`));
    } catch {
      // The next event of the order or the next snapshot brings it.
    } finally {
      this.fetching.delete(id);
    }
  }

  apply(f) {
    const e = f.event;
    switch (e.type) {
      case "branch_configured":
        this.config = e.config;
        this.emit({ type: "config" });
        return;
      case "item_eighty_sixed":
        this.out.add(e.item);
        this.emit({ type: "menu", item: e.item });
        return;
      case "item_restored":
        this.out.delete(e.item);
        this.emit({ type: "menu", item: e.item });
        return;
      case "item_count_set":
        if (e.count === null || e.count === undefined) this.stock.delete(e.item);
        else this.stock.set(e.item, e.count);
        this.emit({ type: "menu", item: e.item });
        return;
      default:
    }
    if (!e.order_id) return;
    let o = this.orders.get(e.order_id);
    if (e.type === "order_opened") {
      if (o) return;
      o = {
        id: e.order_id, table: e.table, ticket_no: e.ticket_no, day: e.day, guests: e.guests,
        source: e.source, external_ref: e.external_ref, priority: !!e.priority, next_course: null,
        opened_at: f.at, closed_at: null, lines: [], tickets: [], fires: 0, position: f.position,
      };
      this.orders.set(o.id, o);
      this.emit({ type: "event", event: e, order: o, at: f.at });
      return;
    }
    if (!o) {
      // An order the book does not hold (opened before a reset it missed): read it whole.
      if (!["order_closed", "merged_into"].includes(e.type)) this.fetch(e.order_id);
      return;
    }
    if (f.position <= o.position) return; // already in the order as a REST answer left it
    o.position = f.position;
    const ticket = (id) => o.tickets.find((x) => x.id === id);
    const line = (id) => o.lines.find((x) => x.id === id);
    switch (e.type) {
      case "lines_added":
        for (const l of e.lines) if (!line(l.id)) o.lines.push(l);
        break;
      case "line_voided": {
        const l = line(e.line_id);
        if (l) l.status = "voided";
        for (const tk of o.tickets) for (const tl of tk.lines) if (tl.line_id === e.line_id) tl.voided = true;
        break;
      }
      case "course_fired":
        o.fires = e.fire_no;
        for (const tk of e.tickets) {
          for (const tl of tk.lines) {
            const l = line(tl.line_id);
            if (l) {
              l.status = "fired";
              l.fire_no = e.fire_no;
            }
          }
          if (!ticket(tk.id)) o.tickets.push(tk);
        }
        if (o.next_course && (e.course === null || e.course === o.next_course.course)) o.next_course = null;
        if (!o.lines.some((l) => l.status === "held")) o.next_course = null;
        break;
      case "ticket_started": {
        const tk = ticket(e.ticket_id);
        if (tk) {
          tk.status = "started";
          tk.started_at = f.at;
          for (const tl of tk.lines) {
            const l = line(tl.line_id);
            if (l && l.status === "fired") l.status = "started";
          }
        }
        break;
      }
      case "ticket_bumped": {
        const tk = ticket(e.ticket_id);
        if (tk) {
          tk.status = "bumped";
          tk.bumped_at = f.at;
          tk.unseen = false;
        }
        break;
      }
      case "ticket_recalled": {
        const tk = ticket(e.ticket_id);
        if (tk) {
          const expo = tk.kind === "expo";
          tk.status = expo ? "new" : "started";
          tk.bumped_at = null;
          if (!expo && !tk.started_at) tk.started_at = f.at;
          if (expo) {
            for (const tl of tk.lines) {
              const l = line(tl.line_id);
              if (l && l.status === "ready") l.status = "started";
            }
          }
        }
        break;
      }
      case "ticket_voided": {
        const tk = ticket(e.ticket_id);
        if (tk) tk.status = "voided";
        break;
      }
      case "ticket_unseen":
      case "ticket_seen": {
        const tk = ticket(e.ticket_id);
        if (tk) tk.unseen = e.type === "ticket_unseen";
        break;
      }
      case "expo_ready":
      case "expo_waiting": {
        const tk = ticket(e.ticket_id);
        if (tk) tk.parts_ready = e.type === "expo_ready";
        break;
      }
      case "order_ready":
        for (const id of e.lines) {
          const l = line(id);
          if (l) l.status = "ready";
        }
        break;
      case "lines_served":
        for (const id of e.lines) {
          const l = line(id);
          if (l) l.status = "served";
        }
        break;
      case "priority_changed":
        o.priority = e.priority;
        for (const r of e.tickets) {
          const tk = ticket(r.ticket_id);
          if (tk) tk.priority = e.priority;
        }
        break;
      case "order_moved":
        o.table = e.to;
        for (const tk of o.tickets) {
          tk.table = e.to;
          tk.moved_from = e.from;
        }
        break;
      case "orders_merged":
        for (const l of e.lines) if (!line(l.id)) o.lines.push(l);
        for (const tk of e.tickets) if (!ticket(tk.id)) o.tickets.push(tk);
        o.fires += e.fires;
        break;
      case "course_scheduled":
        o.next_course = { course: e.course, at: e.at };
        break;
      case "order_closed":
      case "merged_into":
        o.closed_at = f.at;
        this.orders.delete(o.id);
        break;
      default:
    }
    this.emit({ type: "event", event: e, order: o, at: f.at });
  }

  /** The open orders at a table, oldest first. */
  at(table) {
    return [...this.orders.values()].filter((o) => o.table === table)
      .sort((a, b) => (a.opened_at < b.opened_at ? -1 : 1));
  }

  tables(kinds) {
    return (this.config?.tables || []).filter((tb) => kinds.includes(tb.kind || "dine_in"));
  }

  table(id) {
    return (this.config?.tables || []).find((tb) => tb.id === id);
  }

  item(id) {
    return (this.config?.items || []).find((i) => i.id === id);
  }

  /** "out" (86'd), "sold_out" (limited, none left), or null; with `left` for limited items. */
  availability(itemId) {
    if (this.out.has(itemId)) return { state: "out", left: 0 };
    if (this.stock.has(itemId)) {
      const left = this.stock.get(itemId);
      return { state: left <= 0 ? "sold_out" : null, left };
    }
    return { state: null, left: null };
  }

  /** Seconds after its fire at which an order of `source` is getting old. */
  warnAfter(source) {
    const c = this.config || {};
    return c.timers_by_source?.[source]?.warning_after_seconds ?? c.warning_after_seconds ?? 300;
  }

  /** Seconds after its fire at which an order of `source` is late. */
  lateAfter(source) {
    const c = this.config || {};
    return c.timers_by_source?.[source]?.late_after_seconds ?? c.late_after_seconds ?? 480;
  }
}

// ---------------------------------------------------------------------------------------------
// Lines and orders

export const COURSES = [1, 2, 3];

/** When a fired line went to the kitchen (its fire's tickets' time), as epoch ms. */
export function firedAt(order, line) {
  const tk = order.tickets.find((x) => x.fire_no === line.fire_no && x.lines.some((l) => l.line_id === line.id))
    || order.tickets.find((x) => x.fire_no === line.fire_no);
  return tk ? Date.parse(tk.fired_at) : null;
}

/**
 * Where an order stands, for its colour: "open" (seated, nothing cooking), "held" (lines not
 * fired), "fired" (cooking), "late" (cooking longer than the branch allows), "ready" (expo
 * sent it: run the food). The most urgent wins.
 */
export function orderState(order, now, lateAfter) {
  const lines = order.lines.filter((l) => l.status !== "voided");
  if (lines.some((l) => l.status === "ready")) return "ready";
  const cooking = lines.filter((l) => l.status === "fired" || l.status === "started");
  if (cooking.length) {
    const oldest = Math.min(...cooking.map((l) => firedAt(order, l) ?? now));
    return now - oldest >= lateAfter * 1000 ? "late" : "fired";
  }
  if (lines.some((l) => l.status === "held")) return "held";
  return "open";
}

/** The time the order's oldest cooking line has been at the kitchen, in seconds, or null. */
export function cookingSeconds(order, now) {
  const cooking = order.lines.filter((l) => l.status === "fired" || l.status === "started");
  if (!cooking.length) return null;
  const oldest = Math.min(...cooking.map((l) => firedAt(order, l) ?? now));
  return (now - oldest) / 1000;
}

/** Every line served or voided (and at least one line): the check can close. */
export function finished(order) {
  return order.lines.every((l) => l.status === "served" || l.status === "voided");
}

export function lineStatusTag(status) {
  return el("span", { class: `state st-${status}` }, tr(`ordering.line.${status}`));
}

/** A line's modifiers and note, as the kitchen reads them; allergy options stand out. */
export function lineDetail(line, item) {
  const allergens = new Set();
  for (const g of item?.modifier_groups || []) for (const o of g.options || []) if (o.allergen) allergens.add(o.name);
  const parts = [];
  for (const m of line.modifiers || []) {
    if (parts.length) parts.push(", ");
    parts.push(allergens.has(m) ? el("span", { class: "mod allergen-mod" }, `⚠ ${m}`) : el("span", { class: "mod" }, m));
  }
  if (line.note) parts.push(parts.length ? " · " : "", el("span", { class: "note" }, `“${line.note}”`));
  return parts.length ? el("div", { class: "detail" }, parts) : null;
}

export function priceOf(item, modifiers = []) {
  let cents = item?.price_cents || 0;
  for (const g of item?.modifier_groups || []) {
    for (const o of g.options || []) if (modifiers.includes(o.name)) cents += o.price_cents || 0;
  }
  return cents;
}

// ---------------------------------------------------------------------------------------------
// The menu

/**
 * The menu: category tabs and large item buttons. `onPick(item)` runs for an item that can be
 * ordered; one that is 86'd or sold out is refused with a notice. Returns {node, draw}.
 */
export function menuPanel(book, onPick) {
  let category = null;
  const tabs = el("div", { class: "cats", role: "tablist", "aria-label": t("ordering.categories") });
  const grid = el("div", { class: "items", role: "tabpanel", id: "menu-items" });
  const node = el("section", { class: "menu", "aria-labelledby": "menu-title" },
    el("h2", { id: "menu-title", class: "sr-only", "data-i18n": "ordering.menu" }, t("ordering.menu")), tabs, grid);

  function draw() {
    const cats = book.config?.categories || [];
    tabs.setAttribute("aria-label", t("ordering.categories"));
    if (!cats.some((c) => c.id === category)) category = cats[0]?.id ?? null;
    tabs.replaceChildren(...cats.map((c) => {
      const b = el("button", {
        type: "button", role: "tab", class: "cat", "data-category": c.id,
        "aria-selected": String(c.id === category), "aria-controls": "menu-items",
        tabindex: c.id === category ? "0" : "-1",
      }, c.name);
      b.addEventListener("click", () => { category = c.id; draw(); });
      return b;
    }));
    const items = (book.config?.items || []).filter((i) => i.category === category);
    const keep = document.activeElement?.dataset?.item;
    grid.replaceChildren(...items.map((i) => itemButton(book, i, onPick)));
    if (keep) grid.querySelector(`[data-item="${CSS.escape(keep)}"]`)?.focus();
  }
  tabs.addEventListener("keydown", (e) => {
    if (!["ArrowLeft", "ArrowRight"].includes(e.key)) return;
    const all = [...tabs.querySelectorAll("[role=tab]")];
    const i = all.indexOf(document.activeElement);
    const next = all[(i + (e.key === "ArrowRight" ? 1 : all.length - 1)) % all.length];
    next?.click();
    tabs.querySelector(`[data-category="${CSS.escape(next?.dataset.category || "")}"]`)?.focus();
  });
  return { node, draw };
}

function itemButton(book, item, onPick) {
  const { state, left } = book.availability(item.id);
  const cls = ["item"];
  let badge = null;
  if (state === "out") {
    cls.push("out");
    badge = el("span", { class: "badge zero" }, "0",
      el("span", { class: "sr-only" }, ` ${t("ordering.eighty_sixed")}`));
  } else if (state === "sold_out") {
    cls.push("out");
    badge = el("span", { class: "badge zero" }, t("ordering.sold_out"));
  } else if (left !== null) {
    cls.push("limited");
    badge = el("span", { class: "badge left" }, t("ordering.left", { n: left }));
  }
  const b = el("button", {
    type: "button", class: cls.join(" "), "data-item": item.id,
    "aria-disabled": state ? "true" : undefined,
  },
  el("span", { class: "item-name" }, item.name),
  el("span", { class: "item-foot" },
    el("span", { class: "price" }, money(item.price_cents || 0)),
    item.modifier_groups?.length ? el("span", { class: "has-mods", "aria-hidden": "true" }, "⋯") : null,
    badge));
  b.addEventListener("click", () => {
    const now = book.availability(item.id).state;
    if (now === "out") toast(t("ordering.refused_86", { item: item.name }), { error: true });
    else if (now === "sold_out") toast(t("ordering.refused_sold_out", { item: item.name }), { error: true });
    else onPick(item);
  });
  return b;
}

// ---------------------------------------------------------------------------------------------
// The modifier chooser

let chooserSeq = 0;

/**
 * Asks for an item's modifiers, free-text modifiers, note and quantity. A required group
 * blocks adding until an option of it is chosen; a group's `max` limits how many may be
 * chosen. Resolves with {quantity, modifiers, note} or null when cancelled.
 */
export function chooseLine(item, { initial = null, withQuantity = true } = {}) {
  const groups = item.modifier_groups || [];
  const id = `chooser-${++chooserSeq}`;
  const chosen = new Map(groups.map((g) => [g.id, new Set()]));
  const free = [];
  let quantity = initial?.quantity || 1;
  if (initial) {
    for (const m of initial.modifiers || []) {
      const g = groups.find((gr) => (gr.options || []).some((o) => o.name === m) && !chosen.get(gr.id).has(m));
      if (g) chosen.get(g.id).add(m);
      else free.push(m);
    }
  }

  return new Promise((resolve) => {
    const dialog = el("dialog", { class: "chooser", "aria-labelledby": `${id}-title` });
    const addBtn = el("button", { type: "button", class: "primary add", "data-role": "add" });
    const hint = el("p", { class: "hint", role: "status" });
    const total = el("span", { class: "total" });
    const groupNodes = groups.map((g) => {
      // `max` absent: any number of its options.
      const max = g.max ? Math.max(1, g.max) : (g.options || []).length;
      let rule;
      if (g.required) {
        if (g.max === 1) rule = t("ordering.choose_one");
        else if (g.max) rule = t("ordering.choose_required_max", { n: g.max });
        else rule = t("ordering.choose_required_any");
      } else {
        rule = g.max ? t("ordering.choose_up_to", { n: g.max }) : t("ordering.optional");
      }
      const options = el("div", { class: "options" });
      const box = el("fieldset", { class: `group${g.required ? " required" : ""}`, "data-group": g.id },
        el("legend", {}, g.name, " ", el("span", { class: "rule" }, rule)), options);
      const drawOptions = () => {
        const set = chosen.get(g.id);
        options.replaceChildren(...(g.options || []).map((o) => {
          const on = set.has(o.name);
          const full = !on && set.size >= max && max > 1; // one of one swaps instead
          const b = el("button", {
            type: "button", class: `option${on ? " on" : ""}`, "aria-pressed": String(on),
            "data-option": o.name, disabled: full,
          }, el("span", {}, o.name),
          o.price_cents ? el("span", { class: "price" }, `+${money(o.price_cents)}`) : null,
          o.allergen ? el("span", { class: "allergen" }, t("ordering.allergen")) : null);
          b.addEventListener("click", () => {
            if (on) set.delete(o.name);
            else {
              if (max === 1) set.clear();
              if (set.size < max) set.add(o.name);
            }
            drawOptions();
            check();
            dialog.querySelector(`[data-group="${CSS.escape(g.id)}"] [data-option="${CSS.escape(o.name)}"]`)?.focus();
          });
          return b;
        }));
      };
      drawOptions();
      return box;
    });

    const modInput = el("input", { id: `${id}-mod`, type: "text", maxlength: "200", autocomplete: "off",
      placeholder: t("ordering.modifier_placeholder") });
    const chips = el("div", { class: "chips" });
    const drawChips = () => {
      chips.replaceChildren(...free.map((m, i) => {
        const b = el("button", { type: "button", class: "chip", "aria-label": t("ordering.remove_modifier", { text: m }) }, m, " ×");
        b.addEventListener("click", () => { free.splice(i, 1); drawChips(); check(); });
        return b;
      }));
    };
    const addFree = () => {
      const text = modInput.value.trim();
      if (text && !free.includes(text) && free.length + [...chosen.values()].reduce((n, s) => n + s.size, 0) < 20) free.push(text);
      modInput.value = "";
      drawChips();
      check();
    };
    modInput.addEventListener("keydown", (e) => {
      if (e.key === "Enter") { e.preventDefault(); addFree(); }
    });
    const modAdd = el("button", { type: "button", class: "mod-add" }, t("ordering.add_modifier"));
    modAdd.addEventListener("click", addFree);
    const note = el("textarea", { id: `${id}-note`, rows: "2", maxlength: "200" });
    note.value = initial?.note || "";

    const qty = el("output", { class: "qty-value", "aria-live": "polite", id: `${id}-qty` }, String(quantity));
    const minus = el("button", { type: "button", class: "step", "aria-label": t("ordering.less") }, "−");
    const plus = el("button", { type: "button", class: "step", "aria-label": t("ordering.more") }, "+");
    minus.addEventListener("click", () => { quantity = Math.max(1, quantity - 1); check(); });
    plus.addEventListener("click", () => { quantity = Math.min(99, quantity + 1); check(); });

    const cancel = el("button", { type: "button", class: "cancel" }, t("common.cancel"));

    function modifiers() {
      const list = [];
      for (const g of groups) for (const o of g.options || []) if (chosen.get(g.id).has(o.name)) list.push(o.name);
      return [...list, ...free];
    }
    function check() {
      const missing = groups.filter((g) => g.required && chosen.get(g.id).size === 0);
      addBtn.disabled = missing.length > 0;
      addBtn.setAttribute("aria-describedby", `${id}-hint`);
      hint.id = `${id}-hint`;
      hint.textContent = missing.length ? t("ordering.choose_first", { group: missing.map((g) => g.name).join(", ") }) : "";
      qty.textContent = String(quantity);
      minus.disabled = quantity <= 1;
      total.textContent = money(priceOf(item, modifiers()) * quantity);
      addBtn.textContent = initial ? t("ordering.update") : t("ordering.add_to_order");
    }

    dialog.append(
      el("header", { class: "chooser-head" },
        el("h2", { id: `${id}-title` }, item.name), el("span", { class: "price" }, money(item.price_cents || 0))),
      el("div", { class: "chooser-body" },
        ...groupNodes,
        el("div", { class: "free" },
          el("label", { for: `${id}-mod` }, t("ordering.modifier")),
          el("div", { class: "free-row" }, modInput, modAdd), chips),
        el("div", { class: "note-row" }, el("label", { for: `${id}-note` }, t("ordering.note")), note)),
      el("footer", { class: "chooser-foot" },
        withQuantity ? el("div", { class: "qty", role: "group", "aria-label": t("ordering.quantity") }, minus, qty, plus) : null,
        total, hint, cancel, addBtn));

    const done = (value) => {
      dialog.close();
      dialog.remove();
      resolve(value);
    };
    cancel.addEventListener("click", () => done(null));
    dialog.addEventListener("cancel", (e) => { e.preventDefault(); done(null); });
    addBtn.addEventListener("click", () => {
      if (addBtn.disabled) return;
      done({ quantity, modifiers: modifiers(), note: note.value.trim() || null });
    });
    drawChips();
    check();
    document.body.append(dialog);
    dialog.showModal();
    // Straight to the choice that is needed, else to adding.
    (dialog.querySelector(".group.required .option") || addBtn).focus();
  });
}

/** A modal asking one question; `body` nodes, buttons [{key, class, value}]. Resolves value. */
export function ask(titleText, body, buttons) {
  const id = `ask-${++chooserSeq}`;
  return new Promise((resolve) => {
    const dialog = el("dialog", { class: "ask", "aria-labelledby": `${id}-title` });
    const done = (v) => { dialog.close(); dialog.remove(); resolve(v); };
    const foot = el("footer", { class: "ask-foot" }, ...buttons.map((b) => {
      const n = el("button", { type: "button", class: b.class || "", "data-role": b.role || "" }, b.text);
      n.addEventListener("click", () => done(typeof b.value === "function" ? b.value() : b.value));
      return n;
    }));
    dialog.append(el("h2", { id: `${id}-title` }, titleText), el("div", { class: "ask-body" }, body), foot);
    dialog.addEventListener("cancel", (e) => { e.preventDefault(); done(null); });
    document.body.append(dialog);
    dialog.showModal();
    (dialog.querySelector("[autofocus]") || foot.querySelector("button.primary") || foot.querySelector("button"))?.focus();
  });
}

