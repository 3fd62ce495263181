// The guest's QR menu (/menu/{table}): a phone at one table reads the branch's menu by
// category, builds a cart (quantity, modifier choices, a note), sends it to the kitchen in one
// call (POST .../orders {table, lines, fire: {}}), and follows the orders it sent live
// (received, cooking, ready, served) on its table's subscription.
//
// What is out of stock: a table's subscription is sent `item_eighty_sixed` / `item_restored`
// (they go to every topic) and the `stock` frame (what is left of limited items), so a cart line
// whose item runs out is marked at once. `branch_configured` goes to the branch's subscribers
// only, which a guest may not follow: the page also reads `GET ""` every few seconds for menu
// changes, and as a safety net for the 86 list while the socket is down.
//
// Not paired (or unpaired by a manager), the phone shows how to pair: the table's QR code, or
// a code from the staff typed into the pairing form (static/pairing.js).

import {
  device, api, Live, setLang, t, langSwitch, el, money, ticketNo, timeOfDay,
  connectionBadge, chime, unlockSound,
} from "/static/rail.js";
import { pairingForm, refusalOf } from "/static/pairing.js";

const TABLE = decodeURIComponent(location.pathname.replace(/^\/menu\/?/, "").split("/")[0] || "");
const POLL_MS = 8000;
const KEEP_ORDERS_MS = 12 * 3600 * 1000;
const MAX_ORDERS = 10;
const STAGES = ["received", "cooking", "ready", "served"];

const $ = (id) => document.getElementById(id);

const state = {
  dev: null,
  config: null,
  configJson: "",
  eightySixed: new Set(),
  stock: new Map(), // item -> portions left (limited items only)
  cart: [], // {item, quantity, modifiers: [], note}
  orders: new Map(), // order id -> order (as the engine sends it)
  tracked: [], // [{id, at}] orders this phone sent
  sending: false,
  sendError: null, // {text, detail}
  blockedUntil: 0, // rate limited: no sending before this (epoch ms)
  pending: null, // the item being added: {item, quantity, chosen: Map(group id -> Set(names)), note}
  live: null,
};

// ---------------------------------------------------------------------------------------------
// Start

await setLang();
$("lang-slot").replaceWith(langSwitch());
document.addEventListener("rail:lang", () => {
  $("toast").hidden = true;
  if (state.refusal) refuse(state.refusal.titleKey, state.refusal.textKey, state.refusal.vars);
  else renderAll();
});
document.addEventListener("pointerdown", () => unlockSound(), { once: true });

state.dev = device();
if (!state.dev) {
  unpaired(null);
} else {
  begin();
}

/** A paired phone: this table's menu, or why not. */
function begin() {
  if (state.dev.role !== "guest" || state.dev.claims.table !== TABLE) {
    refuse("menu.other_table_title", state.dev.role === "guest" ? "menu.other_table" : "menu.not_guest",
      { table: state.dev.claims.table || "?" });
  } else {
    start();
  }
}

/**
 * How to pair (the table's QR code, or a code from the staff), with the pairing form
 * (static/pairing.js). `why` is "revoked" when a manager unpaired this phone; one that ran
 * the menu before starts over once paired again.
 */
function unpaired(why) {
  if (why === "revoked") state.dev?.forget();
  state.refusal = null;
  for (const id of ["content", "cart-bar", "conn", "refused"]) $(id).hidden = true;
  const box = $("pair");
  box.querySelector(".pair-form")?.remove();
  box.querySelector("p").after(pairingForm({
    reason: why,
    accepts: (issued) => issued.role === "guest" && issued.table === TABLE,
    focus: false,
    onPaired: () => {
      if (state.started) return location.reload();
      box.hidden = true;
      box.querySelector(".pair-form")?.remove();
      state.dev = device();
      if (state.dev) begin();
      else unpaired(null);
    },
  }));
  box.hidden = false;
}

/** Says why this phone cannot order here (keys, so that a language switch re-says it). */
function refuse(titleKey, textKey, vars = {}) {
  state.refusal = { titleKey, textKey, vars };
  $("content").hidden = true;
  $("cart-bar").hidden = true;
  $("conn").hidden = true;
  $("refused").hidden = false;
  $("refused-title").textContent = t(titleKey);
  $("refused-text").textContent = t(textKey, vars);
}

async function start() {
  const dev = state.dev;
  state.started = true;
  const keys = `${dev.branch}:${TABLE}`;
  state.cartKey = `rail-menu-cart:${keys}`;
  state.ordersKey = `rail-menu-orders:${keys}`;
  state.cart = readJson(state.cartKey, [])
    .filter((l) => l && typeof l.item === "string" && Number.isInteger(l.quantity) && l.quantity > 0)
    .map((l) => ({ item: l.item, quantity: Math.min(99, l.quantity), modifiers: Array.isArray(l.modifiers) ? l.modifiers : [], note: l.note || "" }));
  state.tracked = readJson(state.ordersKey, []).filter((o) => o && o.id && Date.now() - o.at < KEEP_ORDERS_MS);
  wire();
  try {
    applyBranch(await api(dev, "GET", ""));
  } catch (e) {
    if (e.status === 401) return e.code === "token_revoked" ? unpaired("revoked") : refuse("menu.signin_title", "menu.signin");
    if (e.status === 403) return refuse("menu.other_table_title", "menu.not_guest");
    toast(t("menu.err.load"), true);
  }
  $("content").hidden = false;
  keepHeadHeight();
  renderAll();
  const badge = connectionBadge($("conn"), $("stale"));
  $("conn").hidden = false;
  state.live = new Live(dev, {
    topics: [{ table: TABLE }],
    onFrame,
    onState: (s) => {
      badge(s);
      if (s === "signin") {
        state.live.close();
        refusalOf(dev).then((why) => (why === "revoked" ? unpaired("revoked") : refuse("menu.signin_title", "menu.signin")));
      }
    },
  });
  setInterval(poll, POLL_MS);
  document.addEventListener("visibilitychange", () => { if (!document.hidden) poll(); });
  for (const o of state.tracked) fetchOrder(o.id);
}

/** The sticky category strip sits under the header, whatever the header's height. */
function keepHeadHeight() {
  const head = document.querySelector(".menu-bar");
  const set = () => document.documentElement.style.setProperty("--head", `${head.offsetHeight}px`);
  new ResizeObserver(set).observe(head);
  set();
}

function readJson(key, fallback) {
  try {
    const v = JSON.parse(localStorage.getItem(key));
    return Array.isArray(v) ? v : fallback;
  } catch {
    return fallback;
  }
}

function saveCart() {
  localStorage.setItem(state.cartKey, JSON.stringify(state.cart));
}

function saveTracked() {
  localStorage.setItem(state.ordersKey, JSON.stringify(state.tracked));
}

// ---------------------------------------------------------------------------------------------
// The branch: menu, 86 list, limited counts

function applyBranch(info) {
  if (!info) return;
  const json = JSON.stringify(info.config);
  const menuChanged = json !== state.configJson;
  state.config = info.config;
  state.configJson = json;
  const out = new Set(info.eighty_sixed || []);
  const outChanged = !sameSet(out, state.eightySixed);
  state.eightySixed = out;
  const stock = new Map((info.stock || []).map((s) => [s.item, s.left]));
  const stockChanged = !sameMap(stock, state.stock);
  state.stock = stock;
  if (menuChanged) renderAll();
  else if (outChanged || stockChanged) renderAvailability();
}

async function poll() {
  if (!state.dev || document.hidden) return;
  try {
    applyBranch(await api(state.dev, "GET", "", undefined, { attempts: 1 }));
  } catch {
    // The next poll tries again; the connection badge says when the server is unreachable.
  }
}

function sameSet(a, b) {
  return a.size === b.size && [...a].every((x) => b.has(x));
}

function sameMap(a, b) {
  return a.size === b.size && [...a].every(([k, v]) => b.get(k) === v);
}

function itemOf(id) {
  return state.config?.items.find((i) => i.id === id) || null;
}

/** Why an item cannot be ordered now (null when it can). */
function unavailable(id) {
  if (!itemOf(id)) return "gone";
  if (state.eightySixed.has(id)) return "out";
  if (state.stock.get(id) === 0) return "out";
  return null;
}

function groupsOf(item) {
  return Array.isArray(item?.modifier_groups) ? item.modifier_groups : [];
}

/** Unit price of an item with the chosen option names. */
function unitPrice(item, modifiers) {
  let cents = item.price_cents || 0;
  for (const g of groupsOf(item)) {
    for (const o of g.options || []) if (modifiers.includes(o.name)) cents += o.price_cents || 0;
  }
  return cents;
}

// ---------------------------------------------------------------------------------------------
// Live: the table's orders, limited counts

function onFrame(frame) {
  switch (frame.type) {
    case "snapshot": {
      const orders = frame.snapshot?.orders || [];
      const open = new Set();
      for (const o of orders) {
        open.add(o.id);
        if (isTracked(o.id)) setOrder(o);
      }
      // Orders closed (or served and closed) since: read them once.
      for (const o of state.tracked) if (!open.has(o.id)) fetchOrder(o.id);
      break;
    }
    case "event": {
      const ev = frame.event || {};
      if (ev.type === "item_eighty_sixed") { state.eightySixed.add(ev.item); renderAvailability(); }
      else if (ev.type === "item_restored") { state.eightySixed.delete(ev.item); renderAvailability(); }
      else if (ev.type === "branch_configured") poll();
      if (ev.order_id && isTracked(ev.order_id)) {
        if (ev.type === "merged_into" && ev.into) track(ev.into);
        fetchOrder(ev.order_id);
      }
      break;
    }
    case "stock":
      state.stock = new Map((frame.items || []).map((s) => [s.item, s.left]));
      renderAvailability();
      break;
  }
}

function isTracked(id) {
  return state.tracked.some((o) => o.id === id);
}

function track(id) {
  if (isTracked(id)) return;
  state.tracked.push({ id, at: Date.now() });
  while (state.tracked.length > MAX_ORDERS) state.tracked.shift();
  saveTracked();
}

const fetching = new Map();
function fetchOrder(id) {
  clearTimeout(fetching.get(id));
  fetching.set(id, setTimeout(async () => {
    fetching.delete(id);
    try {
      setOrder(await api(state.dev, "GET", `/orders/${encodeURIComponent(id)}`));
    } catch (e) {
      // Moved to another table (no longer this phone's to read), or gone.
      if (e.status === 403 || e.status === 404) {
        state.tracked = state.tracked.filter((o) => o.id !== id);
        state.orders.delete(id);
        saveTracked();
        renderOrders();
      }
    }
  }, 120));
}

function setOrder(order) {
  const before = state.orders.get(order.id);
  state.orders.set(order.id, order);
  if (before && stageOf(before) !== "ready" && stageOf(order) === "ready") chime("ready");
  renderOrders();
}

/** Where an order is, as the guest sees it. */
function stageOf(order) {
  const lines = (order.lines || []).filter((l) => l.status !== "voided");
  if (!lines.length) return "cancelled";
  if (lines.every((l) => l.status === "served")) return "served";
  if (lines.every((l) => l.status === "ready" || l.status === "served")) return "ready";
  const cooking = (order.tickets || []).some((tk) => tk.kind !== "expo" && (tk.status === "started" || tk.status === "bumped"));
  if (cooking || lines.some((l) => l.status === "started")) return "cooking";
  return "received";
}

// ---------------------------------------------------------------------------------------------
// Rendering

function renderAll() {
  if (!state.config) return;
  $("branch-name").textContent = state.config.name;
  const table = state.config.tables.find((x) => x.id === TABLE);
  $("table-name").textContent = table ? table.name : TABLE;
  document.title = `${state.config.name} · ${t("menu.title")}`;
  renderMenu();
  renderOrders();
  renderCart();
}

function renderMenu() {
  const cats = $("cats");
  const menu = $("menu");
  cats.replaceChildren();
  menu.replaceChildren();
  let shown = 0;
  for (const cat of state.config.categories) {
    const items = state.config.items.filter((i) => i.category === cat.id);
    if (!items.length) continue;
    shown += items.length;
    const headId = `cat-${cat.id}`;
    cats.append(el("button", {
      type: "button", class: "chip", "data-cat": cat.id,
      onclick: () => $(headId).scrollIntoView({ behavior: "smooth", block: "start" }),
    }, cat.name));
    menu.append(el("section", { class: "cat", "aria-labelledby": `${headId}-h`, id: headId },
      el("h2", { id: `${headId}-h` }, cat.name),
      el("ul", { class: "items" }, items.map((item) => el("li", {}, itemButton(item))))));
  }
  $("menu-empty").hidden = shown > 0;
  renderAvailability();
}

function itemButton(item) {
  const groups = groupsOf(item);
  return el("button", {
    type: "button", class: "item", "data-item": item.id,
    onclick: () => openItem(item.id),
  },
  el("span", { class: "item-main" },
    el("span", { class: "item-name" }, item.name),
    groups.length
      ? el("span", { class: "item-groups" }, groups.map((g) => g.name).join(" · "))
      : null,
    el("span", { class: "item-flag", hidden: true })),
  el("span", { class: "item-side" },
    el("span", { class: "item-cost" }, money(item.price_cents || 0)),
    el("span", { class: "item-plus", "aria-hidden": "true" }, "+")));
}

/** Marks sold-out items on the menu and in the cart, and what is left of limited ones. */
function renderAvailability() {
  for (const b of document.querySelectorAll("#menu .item")) {
    const id = b.dataset.item;
    const why = unavailable(id);
    const left = state.stock.get(id);
    b.classList.toggle("out", !!why);
    b.disabled = !!why;
    const flag = b.querySelector(".item-flag");
    if (why) {
      flag.hidden = false;
      flag.className = "item-flag out";
      flag.textContent = t("menu.sold_out");
    } else if (left !== undefined && left <= 10) {
      flag.hidden = false;
      flag.className = "item-flag few";
      flag.textContent = t("menu.left", { count: left });
    } else {
      flag.hidden = true;
    }
  }
  renderCart();
  if ($("item-dialog").open) renderPending();
}

function renderOrders() {
  const list = $("order-list");
  const orders = [...state.tracked].reverse().map((o) => state.orders.get(o.id)).filter(Boolean);
  $("orders").hidden = orders.length === 0;
  list.replaceChildren(...orders.map(orderCard));
}

function orderCard(order) {
  const stage = stageOf(order);
  const at = STAGES.indexOf(stage);
  const lines = (order.lines || []).filter((l) => l.status !== "voided");
  const zone = state.config?.time_zone;
  return el("li", { class: `order-card stage-${stage}`, "data-order": order.id, "data-stage": stage },
    el("div", { class: "order-head" },
      el("h3", {}, t("menu.order_no", { no: ticketNo(order.ticket_no) })),
      el("span", { class: "muted" }, order.opened_at ? timeOfDay(order.opened_at, zone) : "")),
    el("p", { class: "order-items" }, lines.map((l) => `${l.quantity}× ${l.name}`).join(", ")),
    stage === "cancelled"
      ? null
      : el("ol", { class: "steps", "aria-label": t("menu.progress") },
        STAGES.map((s, i) => el("li", {
          class: `step ${i < at ? "done" : ""} ${i === at ? "current" : ""}`.trim(),
          "data-step": s,
          "aria-current": i === at ? "step" : undefined,
        }, el("span", { class: "dot", "aria-hidden": "true" }, i < at ? "✓" : String(i + 1)),
        el("span", { class: "step-name" }, t(`menu.stage.${s}`))))),
    el("p", { class: "stage-text", role: "status" }, t(`menu.stage_text.${stage}`)));
}

// ---------------------------------------------------------------------------------------------
// Adding an item

function openItem(id) {
  const item = itemOf(id);
  if (!item || unavailable(id)) return;
  state.pending = { item: id, quantity: 1, chosen: new Map(), note: "" };
  $("item-note").value = "";
  $("item-title").textContent = item.name;
  renderPendingGroups(item);
  renderPending();
  $("item-dialog").showModal();
}

function renderPendingGroups(item) {
  const box = $("item-groups");
  box.replaceChildren();
  for (const g of groupsOf(item)) {
    const single = g.max === 1;
    const radio = single && g.required;
    const hint = [g.required ? t("menu.required") : t("menu.optional")];
    if (g.max && !single) hint.push(t("menu.choose_up_to", { max: g.max }));
    if (single) hint.push(t("menu.choose_one"));
    const set = new Set();
    state.pending.chosen.set(g.id, set);
    const fs = el("fieldset", { class: `group ${g.required ? "required" : ""}`, "data-group": g.id },
      el("legend", {}, el("span", { class: "group-name" }, g.name), " ",
        el("span", { class: `group-hint ${g.required ? "req" : ""}` }, hint.join(" · "))));
    (g.options || []).forEach((o, i) => {
      const inputId = `opt-${g.id}-${i}`;
      const input = el("input", {
        type: radio ? "radio" : "checkbox", id: inputId, name: `g-${g.id}`, value: o.name,
      });
      input.addEventListener("change", () => {
        if (radio) {
          set.clear();
          set.add(o.name);
        } else if (input.checked) {
          if (single) {
            set.clear();
            for (const other of fs.querySelectorAll("input")) if (other !== input) other.checked = false;
          }
          set.add(o.name);
        } else {
          set.delete(o.name);
        }
        renderPending();
      });
      fs.append(el("label", { class: "option", for: inputId }, input,
        el("span", { class: "option-name" }, o.name),
        o.allergen ? el("span", { class: "tag allergen" }, t("menu.allergen")) : null,
        o.price_cents ? el("span", { class: "option-price" }, `+${money(o.price_cents)}`) : null));
    });
    box.append(fs);
  }
}

function pendingModifiers() {
  const item = itemOf(state.pending.item);
  const out = [];
  for (const g of groupsOf(item)) {
    const set = state.pending.chosen.get(g.id) || new Set();
    for (const o of g.options || []) if (set.has(o.name)) out.push(o.name);
  }
  return out;
}

/** What stops the pending item from being added (null when nothing does). */
function pendingBlock() {
  const item = itemOf(state.pending.item);
  if (!item || unavailable(item.id)) return t("menu.sold_out_reason");
  for (const g of groupsOf(item)) {
    if (g.required && !(state.pending.chosen.get(g.id)?.size)) return t("menu.choose_required", { group: g.name });
  }
  const left = state.stock.get(item.id);
  const inCart = state.cart.filter((l) => l.item === item.id).reduce((n, l) => n + l.quantity, 0);
  if (left !== undefined && inCart + state.pending.quantity > left) return t("menu.only_left", { count: left });
  return null;
}

function renderPending() {
  const p = state.pending;
  if (!p) return;
  const item = itemOf(p.item);
  if (!item) return;
  const mods = pendingModifiers();
  $("item-price").textContent = money(item.price_cents || 0);
  $("qty").textContent = String(p.quantity);
  $("qty-minus").disabled = p.quantity <= 1;
  $("qty-plus").disabled = p.quantity >= 99;
  // Enforce each group's most choices.
  for (const g of groupsOf(item)) {
    if (!g.max || g.max === 1) continue;
    const set = p.chosen.get(g.id) || new Set();
    for (const input of document.querySelectorAll(`#item-groups fieldset[data-group="${CSS.escape(g.id)}"] input`)) {
      input.disabled = !input.checked && set.size >= g.max;
    }
  }
  const status = $("item-status");
  const left = state.stock.get(item.id);
  if (unavailable(item.id)) {
    status.hidden = false;
    status.textContent = t("menu.sold_out");
  } else if (left !== undefined && left <= 10) {
    status.hidden = false;
    status.textContent = t("menu.left", { count: left });
  } else {
    status.hidden = true;
  }
  const block = pendingBlock();
  const add = $("item-add");
  add.disabled = !!block;
  add.textContent = t("menu.add", { price: money(unitPrice(item, mods) * p.quantity) });
  $("item-reason").hidden = !block;
  $("item-reason").textContent = block || "";
}

function addPending() {
  const p = state.pending;
  if (!p || pendingBlock()) return;
  const item = itemOf(p.item);
  const modifiers = pendingModifiers();
  const note = $("item-note").value.trim();
  const same = state.cart.find((l) => l.item === p.item && l.note === note && sameList(l.modifiers, modifiers));
  if (same) same.quantity = Math.min(99, same.quantity + p.quantity);
  else state.cart.push({ item: p.item, quantity: p.quantity, modifiers, note });
  saveCart();
  state.pending = null;
  $("item-dialog").close();
  state.sendError = null;
  renderCart();
  toast(t("menu.added", { name: item.name }));
}

function sameList(a, b) {
  return a.length === b.length && a.every((x, i) => x === b[i]);
}

// ---------------------------------------------------------------------------------------------
// The cart

/** Why the cart cannot be sent now (null when it can). */
function cartBlock() {
  if (!state.cart.length) return t("menu.cart_empty");
  if (state.cart.some((l) => unavailable(l.item))) return t("menu.remove_unavailable");
  for (const [item, qty] of cartTotals()) {
    const left = state.stock.get(item);
    if (left !== undefined && qty > left) return t("menu.too_many", { name: itemOf(item)?.name || item, count: left });
  }
  for (const l of state.cart) {
    const missing = groupsOf(itemOf(l.item)).find((g) => g.required && !(g.options || []).some((o) => l.modifiers.includes(o.name)));
    if (missing) return t("menu.line_needs", { name: itemOf(l.item).name, group: missing.name });
  }
  const wait = Math.ceil((state.blockedUntil - Date.now()) / 1000);
  if (wait > 0) return t("menu.wait_seconds", { seconds: wait });
  return null;
}

function cartTotals() {
  const totals = new Map();
  for (const l of state.cart) totals.set(l.item, (totals.get(l.item) || 0) + l.quantity);
  return totals;
}

function cartSum() {
  let cents = 0;
  for (const l of state.cart) {
    const item = itemOf(l.item);
    if (item) cents += unitPrice(item, l.modifiers) * l.quantity;
  }
  return cents;
}

function renderCart() {
  if (!state.config) return;
  const count = state.cart.reduce((n, l) => n + l.quantity, 0);
  const bar = $("cart-bar");
  bar.hidden = count === 0;
  $("cart-count").textContent = String(count);
  $("cart-count").setAttribute("aria-label", t("menu.items_count", { count }));
  $("cart-total").textContent = money(cartSum());
  const bad = state.cart.filter((l) => unavailable(l.item));
  $("cart-warning").hidden = bad.length === 0;
  $("cart-warning").textContent = bad.length ? t("menu.cart_warning", { count: bad.length }) : "";
  bar.classList.toggle("warn", bad.length > 0);

  const lines = $("cart-lines");
  lines.replaceChildren(...state.cart.map((l, i) => cartLine(l, i)));
  $("cart-empty").hidden = state.cart.length > 0;
  $("cart-sum").textContent = money(cartSum());
  const block = state.sending ? t("menu.sending") : cartBlock();
  const send = $("send");
  send.disabled = !!block;
  send.textContent = state.sending ? t("menu.sending") : t("menu.send");
  const reason = $("send-reason");
  reason.hidden = !block || state.sending || !state.cart.length;
  reason.textContent = block || "";
  const err = $("send-error");
  err.hidden = !state.sendError;
  err.replaceChildren();
  if (state.sendError) {
    err.append(el("p", { class: "err-text" }, state.sendError.text));
    if (state.sendError.detail) err.append(el("p", { class: "err-detail" }, state.sendError.detail));
  }
}

function cartLine(line, index) {
  const item = itemOf(line.item);
  const why = unavailable(line.item);
  const name = item ? item.name : line.item;
  const qtyId = `cart-qty-${index}`;
  const left = state.stock.get(line.item);
  return el("li", { class: `cart-line ${why ? "unavailable" : ""}`, "data-item": line.item },
    el("div", { class: "line-main" },
      el("span", { class: "line-name" }, name),
      el("span", { class: "line-cost" }, item ? money(unitPrice(item, line.modifiers) * line.quantity) : "")),
    line.modifiers.length ? el("p", { class: "line-mods" }, modifierList(item, line.modifiers)) : null,
    line.note ? el("p", { class: "line-note" }, `“${line.note}”`) : null,
    why ? el("p", { class: "line-flag", role: "status" }, t("menu.line_unavailable"))
      : left !== undefined && left < (cartTotals().get(line.item) || 0)
        ? el("p", { class: "line-flag", role: "status" }, t("menu.only_left", { count: left }))
        : null,
    el("div", { class: "line-actions" },
      el("div", { class: "stepper", role: "group", "aria-label": t("menu.quantity_of", { name }) },
        el("button", {
          type: "button", class: "step", "aria-label": t("menu.less"), disabled: line.quantity <= 1 || undefined,
          onclick: () => changeQty(index, -1),
        }, "−"),
        el("output", { id: qtyId, class: "line-qty" }, String(line.quantity)),
        el("button", {
          type: "button", class: "step", "aria-label": t("menu.more"), disabled: line.quantity >= 99 || !!why || undefined,
          onclick: () => changeQty(index, 1),
        }, "+")),
      el("button", { type: "button", class: "remove", onclick: () => removeLine(index) }, t("menu.remove"))));
}

/** A line's choices, allergy alerts marked as the kitchen will see them. */
function modifierList(item, modifiers) {
  const allergens = new Set();
  for (const g of groupsOf(item)) for (const o of g.options || []) if (o.allergen) allergens.add(o.name);
  const out = [];
  modifiers.forEach((m, i) => {
    if (i) out.push(" · ");
    out.push(allergens.has(m) ? el("span", { class: "mod-allergen" }, `⚠ ${m}`) : m);
  });
  return out;
}

function changeQty(index, by) {
  const line = state.cart[index];
  if (!line) return;
  line.quantity = Math.max(1, Math.min(99, line.quantity + by));
  saveCart();
  renderCart();
}

function removeLine(index) {
  state.cart.splice(index, 1);
  saveCart();
  state.sendError = null;
  renderCart();
  if (!state.cart.length) $("cart-dialog").close();
}

async function send() {
  if (state.sending || cartBlock()) return;
  state.sending = true;
  state.sendError = null;
  renderCart();
  const lines = state.cart.map((l) => {
    const line = { item: l.item, quantity: l.quantity };
    if (l.modifiers.length) line.modifiers = l.modifiers;
    if (l.note) line.note = l.note;
    return line;
  });
  try {
    const order = await api(state.dev, "POST", "/orders", { table: TABLE, lines, fire: {} });
    track(order.id);
    state.cart = [];
    saveCart();
    setOrder(order);
    $("cart-dialog").close();
    toast(t("menu.sent", { no: ticketNo(order.ticket_no) }));
    $("orders").scrollIntoView({ behavior: "smooth", block: "start" });
  } catch (e) {
    state.sendError = describe(e);
    if (["item_86", "item_sold_out", "unknown_item", "modifier_required"].includes(e.code)) poll();
  } finally {
    state.sending = false;
    renderCart();
  }
}

/** A refusal in the guest's words, with the engine's message as detail. */
function describe(e) {
  const detail = e.message && e.code !== "network" ? e.message : "";
  switch (e.code) {
    case "rate_limited": {
      let text = t("menu.err.rate_limited");
      if (e.retryAfter > 0) {
        text += " " + t("menu.err.retry_in", { seconds: e.retryAfter });
        state.blockedUntil = Date.now() + e.retryAfter * 1000;
        countdown();
      }
      return { text, detail };
    }
    case "item_86":
    case "item_eighty_sixed":
      return { text: t("menu.err.item_86"), detail };
    case "item_sold_out":
      return { text: t("menu.err.sold_out"), detail };
    case "modifier_required":
      return { text: t("menu.err.modifier_required"), detail };
    case "unknown_item":
      return { text: t("menu.err.menu_changed"), detail };
    case "forbidden":
    case "wrong_branch":
      return { text: t("menu.not_guest"), detail };
    case "invalid_token":
    case "unauthenticated":
      return { text: t("menu.signin"), detail };
    case "network":
      return { text: t("menu.err.network"), detail: "" };
    case "overloaded":
    case "journal_unavailable":
    case "owner_unavailable":
      return { text: t("common.retry_later"), detail };
    default:
      return { text: t("common.error", { message: e.message || e.code }), detail: "" };
  }
}

let countdownTimer = null;
function countdown() {
  clearInterval(countdownTimer);
  countdownTimer = setInterval(() => {
    if (Date.now() >= state.blockedUntil) clearInterval(countdownTimer);
    renderCart();
  }, 1000);
}

// ---------------------------------------------------------------------------------------------
// Controls

function wire() {
  $("qty-minus").addEventListener("click", () => { state.pending.quantity = Math.max(1, state.pending.quantity - 1); renderPending(); });
  $("qty-plus").addEventListener("click", () => { state.pending.quantity = Math.min(99, state.pending.quantity + 1); renderPending(); });
  $("item-form").addEventListener("submit", (e) => { e.preventDefault(); addPending(); });
  $("item-close").addEventListener("click", () => $("item-dialog").close());
  $("item-dialog").addEventListener("close", () => { state.pending = null; });
  $("open-cart").addEventListener("click", () => { renderCart(); $("cart-dialog").showModal(); });
  $("cart-close").addEventListener("click", () => $("cart-dialog").close());
  $("send").addEventListener("click", send);
  // A tap on the dimmed backdrop closes a sheet.
  for (const d of [$("item-dialog"), $("cart-dialog")]) {
    d.addEventListener("click", (e) => { if (e.target === d) d.close(); });
  }
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
