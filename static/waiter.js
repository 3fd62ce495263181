// The waiter tablet (/waiter, 1280x800, touch first; waiter or manager devices): the floor of
// the branch's tables coloured by where their orders stand, live from the branch
// subscription; a table's order (lines with their state, seat and course, send, hold, fire a
// course, serve, void, rush, move, close the check); the menu with 86'd and limited items;
// "ready to run" notices with a chime that stay until acknowledged.

import {
  COURSES, OrderBook, api, ask, busy, chime, chooseLine, cookingSeconds, el, finished, follow,
  frame, lineDetail, lineStatusTag, menuPanel, orderState, showError, t, toast,
} from "/static/ordering.js";
import { clock, ticketNo } from "/static/rail.js";

const DINE_KINDS = ["dine_in", "qr"];
const RANK = ["open", "held", "fired", "late", "ready"];
const ACK_KEY = "rail-waiter-ready-ack";
const VOID_REASONS = ["changed_mind", "mistake", "too_long", "quality", "out_of_stock"];

const start = await frame({ page: "waiter", roles: ["waiter", "manager"] });
if (start) run(start);

function run({ dev, setState, main }) {
  const book = new OrderBook(dev);
  const live = follow(dev, book, setState);
  const now = () => live.now();
  const drafts = new Map(); // order id -> lines not yet sent
  const picks = new Map(); // order id -> {seat, course} for the next items
  const acked = new Set(JSON.parse(localStorage.getItem(ACK_KEY) || "[]"));
  const menu = menuPanel(book, (item) => addItem(item));
  let view = { kind: "floor" };
  let draftSeq = 0;
  let signature = "";
  let queued = false;

  document.addEventListener("rail:lang", () => schedule());
  book.on((c) => {
    if (c.type === "snapshot" && c.reset) toast(t("conn.reset"));
    if (c.type === "error") showError(c.error);
    if (c.type === "event") {
      const e = c.event;
      if (e.type === "order_ready" && DINE_KINDS.includes(kindOf(c.order.table)) && !acked.has(`${c.order.id}:${e.fire_no}`)) {
        chime("ready");
      }
      if (view.kind === "order" && view.orderId === c.order.id) {
        if (e.type === "order_moved") toast(t("waiter.moved_to", { table: tableName(e.to) }));
        if (e.type === "order_closed" || e.type === "merged_into") {
          view = { kind: "floor" };
          toast(t("waiter.closed_elsewhere", { table: tableName(e.table) }));
        }
      }
      if (e.type === "order_closed" || e.type === "merged_into") drafts.delete(c.order.id);
    }
    schedule();
  });

  setInterval(() => {
    const n = now();
    for (const node of document.querySelectorAll("[data-since]")) {
      node.textContent = clock((n - Number(node.dataset.since)) / 1000);
    }
    if (book.config && states() !== signature) schedule();
  }, 1000);
  schedule();

  // -------------------------------------------------------------------------------------------
  // Drawing

  function schedule() {
    if (queued) return;
    queued = true;
    requestAnimationFrame(() => {
      queued = false;
      render();
    });
  }

  function render() {
    if (book.signedOut) return; // the pairing help is on the page
    const cfg = book.config;
    document.getElementById("branch-name").textContent = cfg ? `· ${cfg.name}` : "";
    const focus = focusKey(document.activeElement);
    const scrolls = [...document.querySelectorAll("[data-scroll]")].map((n) => [n.dataset.scroll, n.scrollTop]);
    renderNotices();
    if (!cfg) {
      main.replaceChildren(el("p", { class: "loading muted" }, t("waiter.loading")));
      return;
    }
    signature = states();
    let order = view.kind === "order" ? book.orders.get(view.orderId) : null;
    if (view.kind === "order" && !order) view = { kind: "floor" };
    main.replaceChildren(order ? orderView(order) : floor());
    if (order) menu.draw();
    for (const [key, top] of scrolls) {
      const n = document.querySelector(`[data-scroll="${key}"]`);
      if (n) n.scrollTop = top;
    }
    if (focus) document.querySelector(focus)?.focus();
  }

  function focusKey(node) {
    if (!node || node === document.body || !node.dataset) return null;
    for (const a of ["focus", "item", "table", "category"]) {
      if (node.dataset[a]) return `[data-${a}="${CSS.escape(node.dataset[a])}"]`;
    }
    return node.id ? `#${CSS.escape(node.id)}` : null;
  }

  function kindOf(table) {
    return book.table(table)?.kind || "dine_in";
  }

  function tableName(id) {
    return book.table(id)?.name || id;
  }

  function stateOf(order) {
    return orderState(order, now(), book.lateAfter(order.source));
  }

  function tableState(table) {
    const orders = book.at(table);
    if (!orders.length) return { state: "free", orders };
    let state = "open";
    for (const o of orders) {
      const s = stateOf(o);
      if (RANK.indexOf(s) > RANK.indexOf(state)) state = s;
    }
    return { state, orders };
  }

  function states() {
    return book.tables(DINE_KINDS).map((tb) => {
      const { state, orders } = tableState(tb.id);
      const o = orders[0];
      const cooking = o ? cookingSeconds(o, now()) : null;
      return `${state}${cooking !== null && cooking >= book.warnAfter(o.source) ? "!" : ""}`;
    }).join();
  }

  // The floor -----------------------------------------------------------------------------------

  function floor() {
    const tables = book.tables(DINE_KINDS);
    const tally = { ready: 0, late: 0 };
    const tiles = tables.map((tb) => {
      const { state, orders } = tableState(tb.id);
      if (state in tally) tally[state]++;
      return tile(tb, state, orders);
    });
    const summary = el("p", { class: "floor-summary" },
      el("span", { class: "sum ready" }, t("waiter.summary_ready", { n: tally.ready })),
      el("span", { class: "sum late" }, t("waiter.summary_late", { n: tally.late })),
      el("span", { class: "sum open" }, t("waiter.summary_open", { n: tables.filter((tb) => book.at(tb.id).length).length, of: tables.length })));
    return el("section", { class: "floor", "aria-labelledby": "floor-title" },
      el("div", { class: "floor-head" }, el("h2", { id: "floor-title" }, t("waiter.floor")), summary),
      tiles.length ? el("div", { class: "tiles" }, tiles) : el("p", { class: "muted" }, t("waiter.no_tables")),
      el("ul", { class: "legend", "aria-label": t("waiter.legend") },
        ["free", "open", "held", "fired", "late", "ready"].map((s) =>
          el("li", { class: `key st-${s}` }, el("span", { class: "swatch", "aria-hidden": "true" }), t(`waiter.state.${s}`)))));
  }

  function tile(tb, state, orders) {
    const o = orders[0];
    const cooking = o ? cookingSeconds(o, now()) : null;
    const since = o ? (cooking !== null ? now() - cooking * 1000 : Date.parse(o.opened_at)) : null;
    const held = orders.reduce((n, x) => n + x.lines.filter((l) => l.status === "held").length, 0);
    const b = el("button", { type: "button", class: `tile st-${state}`, "data-table": tb.id, "data-state": state },
      el("span", { class: "tile-top" },
        el("span", { class: "tile-name" }, tb.name),
        o?.priority ? el("span", { class: "tag rush" }, t("waiter.rush")) : null),
      el("span", { class: "tile-state" }, t(`waiter.state.${state}`)),
      o ? el("span", { class: "tile-meta" },
        o.guests ? t("waiter.guests_n", { n: o.guests }) : null,
        el("span", { class: "tno" }, `#${ticketNo(o.ticket_no)}`)) : el("span", { class: "tile-meta muted" }, t("waiter.tap_to_open")),
      o ? el("span", { class: "tile-foot" },
        el("span", { class: "tile-time-label" }, t(cooking !== null ? "waiter.cooking_for" : "waiter.seated_for")),
        el("span", { class: `tile-time${cooking !== null && cooking >= book.warnAfter(o.source) ? " warn" : ""}`, "data-since": String(since) },
          clock((now() - since) / 1000))) : null,
      held && state !== "held" ? el("span", { class: "tile-held" }, t("waiter.held_n", { n: held })) : null,
      orders.length > 1 ? el("span", { class: "tile-more" }, t("waiter.checks_n", { n: orders.length })) : null);
    b.addEventListener("click", () => (state === "free" ? openTable(tb) : showOrder(o.id)));
    return b;
  }

  // The ready notices ---------------------------------------------------------------------------

  function renderNotices() {
    const box = document.getElementById("ready");
    const notices = [];
    for (const o of book.orders.values()) {
      if (!DINE_KINDS.includes(kindOf(o.table))) continue;
      const byFire = new Map();
      for (const l of o.lines) {
        if (l.status !== "ready") continue;
        if (!byFire.has(l.fire_no)) byFire.set(l.fire_no, []);
        byFire.get(l.fire_no).push(l);
      }
      for (const [fire, lines] of byFire) {
        const key = `${o.id}:${fire}`;
        if (!acked.has(key)) notices.push({ o, lines, key });
      }
    }
    // Keyed: a notice already shown stays the same node, so it is announced once.
    const keep = new Set(notices.map((n) => n.key));
    for (const node of [...box.children]) if (!keep.has(node.dataset.key)) node.remove();
    for (const { o, lines, key } of notices) {
      const sig = `${document.documentElement.lang}|${tableName(o.table)}|${lines.map((l) => `${l.id}:${l.quantity}`).join()}`;
      const have = [...box.children].find((n) => n.dataset.key === key);
      if (have && have.dataset.sig === sig) continue;
      const node = notice(o, lines, key);
      node.dataset.sig = sig;
      if (have) have.replaceWith(node);
      else box.append(node);
    }
  }

  function notice(o, lines, key) {
    const served = el("button", { type: "button", class: "good served", "data-focus": `served:${key}` }, t("waiter.served"));
    served.addEventListener("click", () => busy(served, async () => {
      book.put(await api(dev, "POST", `/orders/${o.id}/serve`, { lines: lines.map((l) => l.id) }));
      ack(key);
    }));
    const open = el("button", { type: "button", class: "open-order", "data-focus": `open:${key}` }, t("waiter.open_order"));
    open.addEventListener("click", () => showOrder(o.id));
    const ok = el("button", { type: "button", class: "ack", "data-focus": `ack:${key}` }, t("waiter.acknowledge"));
    ok.addEventListener("click", () => ack(key));
    return el("article", { class: "ready-notice", "data-order": o.id, "data-table": o.table, "data-key": key },
      el("div", { class: "ready-text" },
        el("strong", { class: "ready-title" }, t("waiter.ready_to_run", { table: tableName(o.table) })),
        el("span", { class: "ready-lines" }, lines.map((l) => `${l.quantity}× ${l.name}${l.seat ? ` (${t("waiter.seat_n", { n: l.seat })})` : ""}`).join(" · "))),
      served, open, ok);
  }

  function ack(key) {
    acked.add(key);
    localStorage.setItem(ACK_KEY, JSON.stringify([...acked].slice(-300)));
    schedule();
  }

  // One table's order ---------------------------------------------------------------------------

  function pickOf(o) {
    if (!picks.has(o.id)) picks.set(o.id, { seat: null, course: 1 });
    return picks.get(o.id);
  }

  function orderView(o) {
    const orders = book.at(o.table);
    const state = stateOf(o);
    const draft = drafts.get(o.id) || [];
    const back = el("button", { type: "button", class: "back", "data-focus": "back" }, `← ${t("waiter.floor")}`);
    back.addEventListener("click", () => { view = { kind: "floor" }; schedule(); requestAnimationFrame(() => document.querySelector(`[data-table="${CSS.escape(o.table)}"]`)?.focus()); });

    const opened = Date.parse(o.opened_at);
    const head = el("div", { class: "order-head" },
      el("div", { class: "oh-row" }, back,
        el("h2", { id: "order-title" }, tableName(o.table)),
        el("span", { class: `order-state st-${state}`, "data-state": state }, t(`waiter.state.${state}`)),
        o.priority ? el("span", { class: "tag rush" }, t("waiter.rush")) : null),
      el("div", { class: "oh-meta" },
        el("span", { class: "tno" }, `#${ticketNo(o.ticket_no)}`),
        o.guests ? el("span", { class: "guests" }, t("waiter.guests_n", { n: o.guests })) : null,
        el("span", { class: "since-box" }, `${t("waiter.seated_for")} `,
          el("span", { class: "since", "data-since": String(opened) }, clock((now() - opened) / 1000)))));

    const checks = orders.length > 1 ? el("div", { class: "checks", role: "group", "aria-label": t("waiter.checks") },
      orders.map((x, i) => {
        const b = el("button", { type: "button", "aria-pressed": String(x.id === o.id), "data-focus": `check:${x.id}` },
          t("waiter.check_n", { n: i + 1 }), ` #${ticketNo(x.ticket_no)}`);
        b.addEventListener("click", () => showOrder(x.id));
        return b;
      })) : null;

    const ready = o.lines.filter((l) => l.status === "ready");
    const rush = el("button", { type: "button", class: `rush-toggle${o.priority ? " on" : ""}`, "aria-pressed": String(o.priority), "data-focus": "rush" }, t("waiter.rush"));
    rush.addEventListener("click", () => busy(rush, async () => {
      book.put(await api(dev, "POST", `/orders/${o.id}/priority`, { priority: !o.priority }));
      toast(t(o.priority ? "waiter.rush_on" : "waiter.rush_off"));
    }));
    const move = el("button", { type: "button", class: "move", "data-focus": "move" }, t("waiter.move"));
    move.addEventListener("click", () => moveOrder(o));
    const serve = el("button", { type: "button", class: "good serve", "data-focus": "serve", disabled: !ready.length },
      ready.length ? t("waiter.served_n", { n: ready.length }) : t("waiter.served"));
    serve.addEventListener("click", () => busy(serve, async () => {
      book.put(await api(dev, "POST", `/orders/${o.id}/serve`, {}));
      toast(t("waiter.marked_served"));
    }));
    const done = finished(o) && o.lines.length > 0;
    const close = el("button", { type: "button", class: `close-check${done ? " primary" : ""}`, "data-focus": "close" }, t("waiter.close_check"));
    close.addEventListener("click", () => closeCheck(o, close));
    const actions = el("div", { class: "order-actions" }, rush, move, serve, close);

    // Lines by course
    const courses = [...new Set(o.lines.map((l) => l.course))].sort((a, b) => a - b);
    const lineList = el("div", { class: "lines", "data-scroll": "lines", tabindex: "0", role: "region", "aria-label": t("waiter.order_lines") },
      courses.length ? courses.map((c) => {
        const lines = o.lines.filter((l) => l.course === c);
        const held = lines.filter((l) => l.status === "held").length;
        let fire = null;
        if (held) {
          fire = el("button", { type: "button", class: "fire-course primary", "data-focus": `fire:${c}` }, t("waiter.fire_course", { n: c }));
          fire.addEventListener("click", () => busy(fire, async () => {
            book.put(await api(dev, "POST", `/orders/${o.id}/fire`, { course: c }));
            toast(t("waiter.course_fired", { n: c }));
          }));
        }
        const next = o.next_course?.course === c ? el("span", { class: "next-course muted" }, t("waiter.fires_at", { time: new Date(o.next_course.at).toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" }) })) : null;
        return el("section", { class: "course", "data-course": String(c) },
          el("h3", {}, courseName(c), next, fire),
          el("ul", {}, lines.map((l) => lineRow(o, l))));
      }) : el("p", { class: "muted empty" }, t("waiter.no_lines")));

    return el("section", { class: "order-view", "aria-labelledby": "order-title" },
      el("div", { class: "order-pane" }, head, checks, actions, lineList, draftPanel(o, draft)),
      el("div", { class: "menu-pane" }, pickers(o), menu.node));
  }

  function courseName(c) {
    return COURSES.includes(c) ? t("waiter.course_named", { n: c, name: t(`ordering.course.${c}`) }) : t("waiter.course_n", { n: c });
  }

  function lineRow(o, l) {
    const canVoid = ["held", "fired", "started"].includes(l.status);
    let voidBtn = null;
    if (canVoid) {
      voidBtn = el("button", { type: "button", class: "void", "data-focus": `void:${l.id}`, "aria-label": t("waiter.void_line", { item: l.name }) }, t("waiter.void"));
      voidBtn.addEventListener("click", () => voidLine(o, l));
    }
    return el("li", { class: `line st-${l.status}`, "data-line": String(l.id), "data-item": undefined },
      el("span", { class: "qty" }, `${l.quantity}×`),
      el("div", { class: "line-main" }, el("span", { class: "name" }, l.name), lineDetail(l, book.item(l.item))),
      l.seat ? el("span", { class: "seat" }, t("waiter.seat_short", { n: l.seat })) : null,
      lineStatusTag(l.status),
      voidBtn);
  }

  function draftPanel(o, draft) {
    const blocked = draft.filter((d) => book.availability(d.item).state);
    const held = o.lines.some((l) => l.status === "held");
    const rows = draft.map((d) => {
      const out = book.availability(d.item).state;
      const minus = el("button", { type: "button", class: "step", "data-focus": `dminus:${d.key}`, "aria-label": t("waiter.less_of", { item: d.name }) }, "−");
      const plus = el("button", { type: "button", class: "step", "data-focus": `dplus:${d.key}`, "aria-label": t("waiter.more_of", { item: d.name }) }, "+");
      const edit = el("button", { type: "button", class: "edit", "data-focus": `dedit:${d.key}`, "aria-label": t("waiter.edit_line", { item: d.name }) }, "✎");
      const remove = el("button", { type: "button", class: "remove", "data-focus": `drm:${d.key}`, "aria-label": t("waiter.remove_line", { item: d.name }) }, "✕");
      minus.addEventListener("click", () => {
        if (d.quantity > 1) d.quantity--;
        else draft.splice(draft.indexOf(d), 1);
        schedule();
      });
      plus.addEventListener("click", () => { d.quantity = Math.min(99, d.quantity + 1); schedule(); });
      edit.addEventListener("click", async () => {
        const item = book.item(d.item);
        if (!item) return;
        const r = await chooseLine(item, { initial: d });
        if (r) Object.assign(d, r);
        schedule();
      });
      remove.addEventListener("click", () => { draft.splice(draft.indexOf(d), 1); schedule(); });
      return el("li", { class: `draft-line${out ? " out" : ""}`, "data-draft": d.item },
        minus, el("span", { class: "qty" }, `${d.quantity}×`), plus,
        el("div", { class: "line-main" }, el("span", { class: "name" }, d.name), lineDetail(d, book.item(d.item)),
          out ? el("span", { class: "out-flag" }, t(out === "out" ? "ordering.eighty_sixed" : "ordering.sold_out")) : null),
        el("span", { class: "seat" }, d.seat ? t("waiter.seat_short", { n: d.seat }) : t("waiter.shared")),
        el("span", { class: "course-chip" }, t("waiter.course_short", { n: d.course })),
        edit, remove);
    });
    const hold = el("button", { type: "button", class: "hold", "data-focus": "hold", disabled: !draft.length || blocked.length > 0 }, t("waiter.hold"));
    hold.addEventListener("click", () => send(o, false, hold));
    const sendNow = el("button", { type: "button", class: "primary send", "data-focus": "send", disabled: (!draft.length && !held) || blocked.length > 0 }, t("waiter.send_now"));
    sendNow.addEventListener("click", () => send(o, true, sendNow));
    return el("section", { class: "draft", "aria-labelledby": "draft-title" },
      el("h3", { id: "draft-title" }, t("waiter.new_items"), draft.length ? el("span", { class: "count" }, ` (${draft.reduce((n, d) => n + d.quantity, 0)})`) : null),
      draft.length ? el("ul", { class: "draft-lines", "data-scroll": "draft" }, rows) : el("p", { class: "muted empty" }, t("waiter.draft_empty")),
      blocked.length ? el("p", { class: "blocked", role: "alert" }, t("waiter.remove_out")) : null,
      el("div", { class: "draft-actions" }, hold, sendNow));
  }

  function pickers(o) {
    const p = pickOf(o);
    const seats = Math.max(1, Math.min(o.guests || 4, 20));
    const seatBtns = [null, ...Array.from({ length: seats }, (_, i) => i + 1)].map((s) => {
      const b = el("button", { type: "button", class: "pick", "aria-pressed": String(p.seat === s), "data-focus": `seat:${s ?? 0}` },
        s === null ? t("waiter.shared") : String(s));
      b.addEventListener("click", () => { p.seat = s; schedule(); });
      return b;
    });
    const courseBtns = COURSES.map((c) => {
      const b = el("button", { type: "button", class: "pick course-pick", "aria-pressed": String(p.course === c), "data-focus": `course:${c}` },
        el("span", { class: "n" }, String(c)), " ", t(`ordering.course.${c}`));
      b.addEventListener("click", () => { p.course = c; schedule(); });
      return b;
    });
    return el("div", { class: "pickers" },
      el("div", { class: "picker", role: "group", "aria-labelledby": "seat-label" },
        el("span", { id: "seat-label", class: "picker-label" }, t("waiter.seat")), seatBtns),
      el("div", { class: "picker", role: "group", "aria-labelledby": "course-label" },
        el("span", { id: "course-label", class: "picker-label" }, t("waiter.course")), courseBtns));
  }

  // Actions ------------------------------------------------------------------------------------

  function showOrder(id) {
    view = { kind: "order", orderId: id };
    render();
    document.querySelector("[data-focus=back]")?.focus();
  }

  async function openTable(tb) {
    const guests = await askGuests(tb.name);
    if (!guests) return;
    const order = await busy(null, () => api(dev, "POST", "/orders", { table: tb.id, guests }));
    if (!order) return;
    book.put(order);
    showOrder(order.id);
  }

  function askGuests(name) {
    let n = 2;
    const value = el("output", { class: "guests-value", "aria-live": "polite" }, "2");
    const nums = el("div", { class: "guest-nums", role: "group", "aria-label": t("waiter.guests") });
    const draw = () => {
      value.textContent = String(n);
      for (const b of nums.querySelectorAll("button")) b.setAttribute("aria-pressed", String(Number(b.dataset.n) === n));
    };
    for (let i = 1; i <= 12; i++) {
      const b = el("button", { type: "button", class: "guest-n", "data-n": String(i) }, String(i));
      b.addEventListener("click", () => { n = i; draw(); });
      nums.append(b);
    }
    const minus = el("button", { type: "button", class: "step", "aria-label": t("ordering.less") }, "−");
    const plus = el("button", { type: "button", class: "step", "aria-label": t("ordering.more") }, "+");
    minus.addEventListener("click", () => { n = Math.max(1, n - 1); draw(); });
    plus.addEventListener("click", () => { n = Math.min(100, n + 1); draw(); });
    draw();
    return ask(t("waiter.open_title", { table: name }),
      [el("p", {}, t("waiter.how_many")), nums, el("div", { class: "qty guests-step" }, minus, value, plus)],
      [{ text: t("common.cancel"), value: null }, { text: t("waiter.open"), class: "primary", role: "open", value: () => n }]);
  }

  async function addItem(item) {
    const o = view.kind === "order" ? book.orders.get(view.orderId) : null;
    if (!o) return;
    const p = pickOf(o);
    let line = { quantity: 1, modifiers: [], note: null };
    if (item.modifier_groups?.length) {
      const chosen = await chooseLine(item);
      if (!chosen) return;
      line = chosen;
      // It may have been 86'd while the chooser was open.
      const state = book.availability(item.id).state;
      if (state) {
        toast(t(state === "out" ? "ordering.refused_86" : "ordering.refused_sold_out", { item: item.name }), { error: true });
        return;
      }
    }
    if (!drafts.has(o.id)) drafts.set(o.id, []);
    const list = drafts.get(o.id);
    const plain = !line.modifiers.length && !line.note;
    const same = plain && list.find((d) => d.item === item.id && d.seat === p.seat && d.course === p.course && !d.modifiers.length && !d.note);
    if (same) same.quantity = Math.min(99, same.quantity + line.quantity);
    else list.push({ key: ++draftSeq, item: item.id, name: item.name, seat: p.seat, course: p.course, ...line });
    schedule();
  }

  async function send(o, fire, button) {
    const list = drafts.get(o.id) || [];
    await busy(button, async () => {
      if (list.length) {
        const lines = list.map((d) => ({
          item: d.item, quantity: d.quantity, modifiers: d.modifiers, note: d.note || null,
          seat: d.seat, course: d.course,
        }));
        book.put(await api(dev, "POST", `/orders/${o.id}/lines`, { lines }));
        drafts.delete(o.id);
      }
      if (fire) {
        book.put(await api(dev, "POST", `/orders/${o.id}/fire`, {}));
        toast(t("waiter.sent"));
      } else {
        toast(t("waiter.held_toast"));
      }
    });
    schedule();
  }

  async function closeCheck(o, button) {
    const closed = await busy(button, () => api(dev, "POST", `/orders/${o.id}/close`));
    if (!closed) return;
    book.put(closed);
    drafts.delete(o.id);
    view = { kind: "floor" };
    toast(t("waiter.check_closed", { table: tableName(o.table) }));
    render();
    document.querySelector(`[data-table="${CSS.escape(o.table)}"]`)?.focus();
  }

  async function voidLine(o, l) {
    let reason = null;
    const other = el("input", { type: "text", id: "void-other", maxlength: "200", autocomplete: "off" });
    const choices = el("div", { class: "reasons", role: "radiogroup", "aria-label": t("waiter.void_reason") },
      VOID_REASONS.map((r) => {
        const b = el("button", { type: "button", role: "radio", "aria-checked": "false", class: "reason", "data-reason": r }, t(`waiter.reason.${r}`));
        b.addEventListener("click", () => {
          reason = t(`waiter.reason.${r}`);
          other.value = "";
          for (const x of choices.querySelectorAll("button")) x.setAttribute("aria-checked", String(x === b));
        });
        return b;
      }));
    other.addEventListener("input", () => {
      reason = other.value.trim() || null;
      for (const x of choices.querySelectorAll("button")) x.setAttribute("aria-checked", "false");
    });
    const ok = await ask(t("waiter.void_title", { item: `${l.quantity}× ${l.name}` }),
      [el("p", { class: "muted" }, t(l.status === "held" ? "waiter.void_held" : "waiter.void_fired")), choices,
        el("label", { for: "void-other" }, t("waiter.reason_other")), other],
      [{ text: t("common.cancel"), value: false }, { text: t("waiter.void"), class: "danger", role: "void", value: true }]);
    if (!ok) return;
    const answer = await busy(null, () => api(dev, "POST", `/orders/${o.id}/lines/${l.id}/void`, reason ? { reason } : {}));
    if (answer) {
      book.put(answer);
      toast(t("waiter.voided", { item: l.name }));
    }
    schedule();
  }

  async function moveOrder(o) {
    const free = book.tables(DINE_KINDS).filter((tb) => tb.id !== o.table && !book.at(tb.id).length);
    if (!free.length) {
      toast(t("waiter.no_free_tables"), { error: true });
      return;
    }
    const to = await ask(t("waiter.move_title", { table: tableName(o.table) }),
      [el("p", { class: "muted" }, t("waiter.move_help"))],
      [...free.map((tb) => ({ text: tb.name, class: "move-to", role: "move", value: tb.id })),
        { text: t("common.cancel"), value: null }]);
    if (!to) return;
    const moved = await busy(null, () => api(dev, "POST", `/orders/${o.id}/move`, { table: to }));
    if (moved) {
      book.put(moved);
      toast(t("waiter.moved_to", { table: tableName(to) }));
    }
    schedule();
  }
}
