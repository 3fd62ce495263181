// The counter POS (/pos, 1280x800; pos or manager devices): the menu as large tiles with 86'd
// and sold-out items greyed live, a cart with quantities and modifiers, the dining option (for
// here, to go, delivery, pickup) as the ticket's source, one tap sends the whole order to the
// kitchen in one call and shows its ticket number large for calling out, and the day's open
// counter, takeaway and delivery orders, live, with Served and Close.

import {
  OrderBook, api, busy, chime, chooseLine, el, finished, follow, frame, lineDetail, menuPanel,
  money, orderState, priceOf, showError, t, toast,
} from "/static/ordering.js";
import { clock, ticketNo } from "/static/rail.js";

// How the guest eats, the kind of table the order goes to and the source on its tickets.
const OPTIONS = [
  { id: "here", kind: "counter", source: "counter" },
  { id: "to_go", kind: "takeaway", source: "takeaway" },
  { id: "delivery", kind: "delivery", source: "delivery" },
  { id: "pickup", kind: "takeaway", source: "takeaway" },
];
const COUNTER_SOURCES = ["counter", "takeaway", "delivery"];
const ORDER_RANK = { ready: 0, late: 1, cooking: 2, held: 3, open: 4, served: 5 };

const start = await frame({ page: "pos", roles: ["pos", "manager"] });
if (start) run(start);

function run({ dev, setState, main }) {
  const book = new OrderBook(dev);
  const live = follow(dev, book, setState);
  const now = () => live.now();
  const menu = menuPanel(book, (item) => addItem(item));
  let cart = [];
  let option = "here";
  let called = null; // the order just sent: its number stays large until the next order
  let cartSeq = 0;
  let queued = false;

  const cartPane = el("section", { class: "cart-pane", "aria-labelledby": "cart-title" });
  const ordersPane = el("section", { class: "orders-pane", "aria-labelledby": "orders-title" });
  const layout = el("div", { class: "pos-layout" }, el("div", { class: "menu-pane" }, menu.node), cartPane, ordersPane);

  document.addEventListener("rail:lang", () => schedule());
  book.on((c) => {
    if (c.type === "snapshot" && c.reset) toast(t("conn.reset"));
    if (c.type === "error") showError(c.error);
    if (c.type === "event" && c.event.type === "order_ready" && isCounter(c.order)) {
      chime("ready");
      toast(t("pos.ready_call", { no: ticketNo(c.order.ticket_no) }));
    }
    schedule();
  });
  setInterval(() => {
    const n = now();
    for (const node of document.querySelectorAll("[data-since]")) {
      node.textContent = clock((n - Number(node.dataset.since)) / 1000);
    }
  }, 1000);
  schedule();

  function schedule() {
    if (queued) return;
    queued = true;
    requestAnimationFrame(() => {
      queued = false;
      render();
    });
  }

  function isCounter(o) {
    const kind = book.table(o.table)?.kind;
    return COUNTER_SOURCES.includes(o.source) || COUNTER_SOURCES.includes(kind);
  }

  function render() {
    if (book.signedOut) return; // the pairing help is on the page
    const cfg = book.config;
    document.getElementById("branch-name").textContent = cfg ? `· ${cfg.name}` : "";
    if (!cfg) {
      main.replaceChildren(el("p", { class: "loading muted" }, t("pos.loading")));
      return;
    }
    if (layout.parentNode !== main) main.replaceChildren(layout);
    const focus = focusKey(document.activeElement);
    const scrolls = [...document.querySelectorAll("[data-scroll]")].map((n) => [n.dataset.scroll, n.scrollTop]);
    menu.draw();
    drawCart();
    drawOrders();
    for (const [key, top] of scrolls) {
      const n = document.querySelector(`[data-scroll="${key}"]`);
      if (n) n.scrollTop = top;
    }
    if (focus && !document.activeElement?.matches?.(focus)) document.querySelector(focus)?.focus();
  }

  function focusKey(node) {
    if (!node || node === document.body || !node.dataset) return null;
    for (const a of ["focus", "item", "category"]) {
      if (node.dataset[a]) return `[data-${a}="${CSS.escape(node.dataset[a])}"]`;
    }
    return null;
  }

  // The cart -----------------------------------------------------------------------------------

  function drawCart() {
    const options = el("div", { class: "options-row", role: "radiogroup", "aria-label": t("pos.dining") },
      OPTIONS.map((o) => {
        const has = book.tables([o.kind]).length > 0;
        const b = el("button", {
          type: "button", role: "radio", class: `dining src-${o.source}`, "aria-checked": String(option === o.id),
          "data-option": o.id, "data-focus": `option:${o.id}`, disabled: !has,
        }, t(`pos.option.${o.id}`));
        b.addEventListener("click", () => { option = o.id; schedule(); });
        return b;
      }));
    const blocked = cart.filter((c) => book.availability(c.item).state);
    const total = cart.reduce((n, c) => n + priceOf(book.item(c.item), c.modifiers) * c.quantity, 0);
    const count = cart.reduce((n, c) => n + c.quantity, 0);
    const rows = cart.map((c) => cartRow(c));
    const send = el("button", {
      type: "button", class: "primary send-kitchen", "data-focus": "send",
      disabled: !cart.length || blocked.length > 0,
    }, t("pos.send"));
    send.addEventListener("click", () => sendOrder(send));
    const clear = el("button", { type: "button", class: "clear", "data-focus": "clear", disabled: !cart.length }, t("pos.clear"));
    clear.addEventListener("click", () => { cart = []; schedule(); });

    let top = null;
    if (called && !cart.length) {
      const next = el("button", { type: "button", class: "next-order", "data-focus": "next" }, t("pos.new_order"));
      next.addEventListener("click", () => { called = null; schedule(); });
      top = el("section", { class: "called", "aria-labelledby": "called-label" },
        el("p", { id: "called-label", class: "called-label" }, t("pos.ticket_number")),
        el("p", { class: "called-no", "data-ticket": String(called.ticket_no) }, ticketNo(called.ticket_no)),
        el("p", { class: "called-meta" }, el("span", { class: `tag src-${called.source}` }, t(`pos.option.${called.option}`)),
          " ", t("pos.sent_to_kitchen")),
        next);
    }
    cartPane.replaceChildren(...[
      el("h2", { id: "cart-title" }, t("pos.current_order")),
      options,
      top || (cart.length
        ? el("ul", { class: "cart-lines", "data-scroll": "cart", tabindex: "0", "aria-labelledby": "cart-title" }, rows)
        : el("p", { class: "muted empty cart-empty" }, t("pos.cart_empty"))),
      blocked.length ? el("p", { class: "blocked", role: "alert" }, t("pos.remove_out")) : null,
      el("div", { class: "cart-total" },
        el("span", {}, t("pos.total_items", { n: count })),
        el("strong", { class: "total" }, money(total))),
      el("div", { class: "cart-actions" }, clear, send)].filter(Boolean));
  }

  function cartRow(c) {
    const out = book.availability(c.item).state;
    const item = book.item(c.item);
    const minus = el("button", { type: "button", class: "step", "data-focus": `minus:${c.key}`, "aria-label": t("pos.less_of", { item: c.name }) }, "−");
    const plus = el("button", { type: "button", class: "step", "data-focus": `plus:${c.key}`, "aria-label": t("pos.more_of", { item: c.name }) }, "+");
    const edit = el("button", { type: "button", class: "edit", "data-focus": `edit:${c.key}`, "aria-label": t("pos.edit_line", { item: c.name }) }, "✎");
    minus.addEventListener("click", () => {
      if (c.quantity > 1) c.quantity--;
      else cart = cart.filter((x) => x !== c);
      schedule();
    });
    plus.addEventListener("click", () => { c.quantity = Math.min(99, c.quantity + 1); schedule(); });
    edit.addEventListener("click", async () => {
      if (!item) return;
      const r = await chooseLine(item, { initial: c });
      if (r) Object.assign(c, r);
      schedule();
    });
    return el("li", { class: `cart-line${out ? " out" : ""}`, "data-cart": c.item },
      el("div", { class: "line-main" }, el("span", { class: "name" }, c.name), lineDetail(c, item),
        out ? el("span", { class: "out-flag" }, t(out === "out" ? "ordering.eighty_sixed" : "ordering.sold_out")) : null),
      el("span", { class: "line-price" }, money(priceOf(item, c.modifiers) * c.quantity)),
      el("div", { class: "line-tools" }, minus, el("span", { class: "qty" }, String(c.quantity)), plus, edit));
  }

  async function addItem(item) {
    let line = { quantity: 1, modifiers: [], note: null };
    if (item.modifier_groups?.length) {
      const chosen = await chooseLine(item);
      if (!chosen) return;
      const state = book.availability(item.id).state;
      if (state) {
        toast(t(state === "out" ? "ordering.refused_86" : "ordering.refused_sold_out", { item: item.name }), { error: true });
        return;
      }
      line = chosen;
    }
    called = null;
    const plain = !line.modifiers.length && !line.note;
    const same = plain && cart.find((c) => c.item === item.id && !c.modifiers.length && !c.note);
    if (same) same.quantity = Math.min(99, same.quantity + line.quantity);
    else cart.push({ key: ++cartSeq, item: item.id, name: item.name, ...line });
    schedule();
  }

  async function sendOrder(button) {
    const opt = OPTIONS.find((o) => o.id === option);
    const table = book.tables([opt.kind])[0];
    if (!table) {
      toast(t("pos.no_table", { option: t(`pos.option.${opt.id}`) }), { error: true });
      return;
    }
    const lines = cart.map((c) => ({ item: c.item, quantity: c.quantity, modifiers: c.modifiers, note: c.note || null }));
    const order = await busy(button, () => api(dev, "POST", "/orders", { table: table.id, source: opt.source, lines, fire: {} }));
    if (!order) return;
    book.put(order);
    cart = [];
    called = { id: order.id, ticket_no: order.ticket_no, source: opt.source, option: opt.id };
    render();
    document.querySelector("[data-focus=next]")?.focus();
  }

  // The day's open counter orders ---------------------------------------------------------------

  function posState(o) {
    const s = orderState(o, now(), book.lateAfter(o.source));
    if (s === "fired") return "cooking";
    if (s === "open" && o.lines.length && finished(o)) return "served";
    return s;
  }

  function drawOrders() {
    const orders = [...book.orders.values()].filter(isCounter)
      .map((o) => ({ o, state: posState(o) }))
      .sort((a, b) => (ORDER_RANK[a.state] - ORDER_RANK[b.state]) || (a.o.opened_at < b.o.opened_at ? -1 : 1));
    ordersPane.replaceChildren(
      el("h2", { id: "orders-title" }, t("pos.open_orders"), el("span", { class: "count" }, ` (${orders.length})`)),
      orders.length
        ? el("ul", { class: "pos-orders", "data-scroll": "orders", tabindex: "0", "aria-labelledby": "orders-title" }, orders.map(({ o, state }) => orderCard(o, state)))
        : el("p", { class: "muted empty" }, t("pos.no_open_orders")));
  }

  function orderCard(o, state) {
    const ready = o.lines.some((l) => l.status === "ready");
    const kind = book.table(o.table)?.kind;
    const source = o.source || kind || "counter";
    const buttons = [];
    if (ready) {
      const b = el("button", { type: "button", class: "good served", "data-focus": `served:${o.id}` }, t("pos.served"));
      b.addEventListener("click", () => busy(b, async () => {
        book.put(await api(dev, "POST", `/orders/${o.id}/serve`, {}));
        toast(t("pos.marked_served", { no: ticketNo(o.ticket_no) }));
      }));
      buttons.push(b);
    }
    if (state === "served") {
      const b = el("button", { type: "button", class: "primary close", "data-focus": `close:${o.id}` }, t("pos.close"));
      b.addEventListener("click", () => busy(b, async () => {
        book.put(await api(dev, "POST", `/orders/${o.id}/close`));
        toast(t("pos.closed", { no: ticketNo(o.ticket_no) }));
      }));
      buttons.push(b);
    }
    const since = Date.parse(o.opened_at);
    const lines = o.lines.filter((l) => l.status !== "voided");
    return el("li", { class: `pos-order st-${state === "cooking" ? "fired" : state}`, "data-order": o.id, "data-state": state },
      el("div", { class: "po-head" },
        el("span", { class: "po-no" }, ticketNo(o.ticket_no)),
        el("span", { class: `tag src-${source}` }, t(`source.${source}`)),
        el("span", { class: "po-state" }, t(`pos.state.${state}`)),
        el("span", { class: "po-age", "data-since": String(since) }, clock((now() - since) / 1000))),
      el("p", { class: "po-lines" }, lines.map((l) => `${l.quantity}× ${l.name}`).join(", ")),
      buttons.length ? el("div", { class: "po-actions" }, buttons) : null);
  }
}
