// The expo screen (/expo): the pass. One card per fire of an order (its expo ticket) with the
// order's lines grouped by the station that makes them, each part ticked when its station
// bumps it; the card turns green once every part is ready (`parts_ready`) and its bump sends
// the food (the waiter's tablet is told `order_ready`). Parts are learnt from the fire itself,
// from the station's events, from the branch's events for a manager's screen, and from the
// orders (REST) while a part is still cooking. The shared machinery is static/tickets.js.

import { Screen, el, t, api, isLive } from "./tickets.js";

/** How often a cooking part's order is read again when no event says it was bumped. */
const PARTS_POLL_MS = 3000;
const PARTS_POLL_WITH_EVENTS_MS = 15000;

class Expo extends Screen {
  constructor() {
    super("expo");
    this.actions = this.actions.filter((a) => a !== "start");
    this.parts = new Map(); // order id -> Map(ticket id -> cooking ticket)
    this.partsAt = new Map(); // order id -> branch position the parts were last read at
    this.partEvents = false; // the feed carries the other stations' ticket events
    this.lastPoll = 0;
    // The snapshot names the expo tickets; their parts are read from the orders each time.
    this.refetchOnSnapshot = true;
  }

  async chooseStation() {
    const own = this.dev.claims.station;
    const expo = this.config.stations.find((s) => s.kind === "expo")?.id;
    if (own && own !== expo) {
      // A cooking station's screen is /kitchen: the same device goes there, paired the same.
      location.replace(`/kitchen#token=${encodeURIComponent(this.dev.token)}`);
      return null;
    }
    return expo || null;
  }

  topics() {
    // A manager's screen follows the branch too: every station's bumps, as they happen.
    return this.dev.role === "manager" ? [{ station: this.station }, {}] : [{ station: this.station }];
  }

  /** Expo may 86 anything on the menu. */
  stationItems() {
    return this.config.items;
  }

  // ----- parts

  partsOf(orderId) {
    let m = this.parts.get(orderId);
    if (!m) this.parts.set(orderId, (m = new Map()));
    return m;
  }

  takePart(tk, position) {
    if (tk.kind === "expo") return;
    this.partsOf(tk.order_id).set(tk.id, structuredClone(tk));
    if (position) this.partsAt.set(tk.order_id, Math.max(position, this.partsAt.get(tk.order_id) || 0));
  }

  takeOrder(o) {
    super.takeOrder(o);
    if ((this.partsAt.get(o.id) || 0) > o.position) return; // an event newer than this read
    const m = new Map();
    for (const tk of o.tickets) if (tk.kind !== "expo") m.set(tk.id, tk);
    this.parts.set(o.id, m);
    this.partsAt.set(o.id, o.position);
  }

  /** A cooking part's ticket event (from the expo topic, when sent there, or the branch's). */
  partEvent(ev, frame) {
    const m = this.parts.get(ev.order_id);
    const part = m?.get(ev.ticket_id);
    if (!part) {
      this.loadOrders([ev.order_id], true);
      return;
    }
    this.applyPart(part, ev, frame.at);
    this.partsAt.set(ev.order_id, Math.max(frame.position || 0, this.partsAt.get(ev.order_id) || 0));
  }

  applyPart(part, ev, at) {
    switch (ev.type) {
      case "ticket_started": part.status = "started"; break;
      case "ticket_bumped": part.status = "bumped"; part.bumped_at = at; part.unseen = false; break;
      case "ticket_recalled": part.status = "started"; part.bumped_at = null; break;
      case "ticket_voided": part.status = "voided"; break;
      case "ticket_unseen": part.unseen = true; break;
      case "ticket_seen": part.unseen = false; break;
      default: break;
    }
  }

  /** Events about the order's tickets, whichever topic brought them. */
  orderEvent(frame) {
    const ev = frame.event;
    switch (ev.type) {
      case "course_fired":
        for (const tk of ev.tickets) this.takePart(tk, frame.position);
        break;
      case "orders_merged":
        for (const tk of ev.tickets) this.takePart(tk, frame.position);
        this.parts.delete(ev.from);
        break;
      case "line_voided":
        for (const ref of ev.tickets) {
          const part = this.parts.get(ev.order_id)?.get(ref.ticket_id);
          if (part) for (const l of part.lines) if (l.line_id === ev.line_id) l.voided = true;
        }
        break;
      case "ticket_started":
      case "ticket_bumped":
      case "ticket_recalled":
      case "ticket_voided":
      case "ticket_unseen":
      case "ticket_seen":
        if (ev.station !== this.station) this.partEvent(ev, frame);
        break;
      default:
        break;
    }
  }

  onStationEvent(frame) {
    const ev = frame.event;
    const others = ["ticket_started", "ticket_bumped", "ticket_recalled", "ticket_voided"];
    if (others.includes(ev.type) && ev.station !== this.station) this.partEvents = true;
    super.onStationEvent(frame);
    this.orderEvent(frame);
    if (ev.type === "expo_ready" && ev.station === this.station) {
      // Every cooking part of that fire is done.
      const m = this.parts.get(ev.order_id);
      if (m) for (const p of m.values()) if (p.fire_no === ev.fire_no && p.status !== "voided") p.status = "bumped";
      this.chimeLater("ready");
    }
    if (ev.type === "expo_waiting" && ev.station === this.station) this.loadOrders([ev.order_id], true);
  }

  onOtherSnapshot(frame) {
    if (frame.topic?.kind !== "branch") return;
    for (const o of frame.snapshot.orders) this.takeOrder(o);
    this.partEvents = true;
  }

  onOtherEvent(frame) {
    if (frame.topic?.kind !== "branch") return;
    this.orderEvent(frame);
    this.queueRender();
  }

  tickExtra() {
    const every = this.partEvents ? PARTS_POLL_WITH_EVENTS_MS : PARTS_POLL_MS;
    if (Date.now() - this.lastPoll < every || this.state !== "live") return;
    this.lastPoll = Date.now();
    const waiting = [...this.tickets.values()].filter((x) => isLive(x) && !x.parts_ready).map((x) => x.order_id);
    if (waiting.length) this.loadOrders(waiting, true);
  }

  // ----- drawing

  renderHeader(list) {
    super.renderHeader(list);
    const ready = list.filter((x) => isLive(x) && x.parts_ready).length;
    const box = this.$("#ready-count");
    box.textContent = t("expo.ready_count", { n: ready });
    box.classList.toggle("has-ready", ready > 0);
  }

  cardClasses(tk) {
    return [tk.parts_ready && isLive(tk) ? "ready" : ""];
  }

  cardTags(tk) {
    const unseen = this.firePartsOf(tk).filter((p) => p.unseen && (p.status === "new" || p.status === "started"));
    return unseen.map((p) => el("span", { class: "tag unseen" }, t("expo.not_seen", { station: this.stations.get(p.station)?.name || p.station })));
  }

  firePartsOf(tk) {
    return [...(this.parts.get(tk.order_id)?.values() || [])].filter((p) => p.fire_no === tk.fire_no && p.kind !== "expo");
  }

  /** The parts of the fire by station, in the branch's station order, with their lines. */
  cardBody(tk) {
    const parts = this.firePartsOf(tk);
    const order = this.config.stations.map((s) => s.id);
    const byStation = new Map();
    for (const p of parts) {
      const had = byStation.get(p.station);
      // A station with several tickets of one fire (merged orders): the least done one counts.
      if (!had || rank(p.status) < rank(had.status)) byStation.set(p.station, { status: p.status, unseen: p.unseen, lines: [...(had?.lines || []), ...p.lines.map((l) => l.line_id)] });
      else had.lines.push(...p.lines.map((l) => l.line_id));
    }
    // Before the parts are read, the routing says where each line goes.
    for (const l of tk.lines) {
      for (const s of this.routes(l.item)) {
        if (!byStation.has(s)) byStation.set(s, { status: "unknown", lines: [] });
        const b = byStation.get(s);
        if (b.status === "unknown" && !b.lines.includes(l.line_id)) b.lines.push(l.line_id);
      }
    }
    const stations = [...byStation.keys()].sort((a, b) => order.indexOf(a) - order.indexOf(b));
    return el("div", { class: "parts" }, ...stations.map((s) => {
      const p = byStation.get(s);
      const state = tk.parts_ready ? (p.status === "voided" ? "voided" : "ready") : partState(p.status);
      const lines = tk.lines.filter((l) => p.lines.includes(l.line_id));
      return el("section", { class: `part part-${state}`, "data-station": s, "data-state": state, "aria-label": `${this.stations.get(s)?.name || s}: ${t(`expo.part_${state}`)}` },
        el("div", { class: "part-head" },
          el("span", { class: "part-mark", "aria-hidden": "true" }, MARKS[state]),
          el("span", { class: "part-name" }, this.stations.get(s)?.name || s),
          el("span", { class: "part-state" }, t(`expo.part_${state}`))),
        lines.length ? el("ul", { class: "part-lines" }, ...lines.map((l) => el("li", { class: l.voided ? "voided" : "" },
          el("span", { class: "qty" }, `${l.quantity}×`), " ", el("span", { class: "name" }, l.name),
          l.seat ? el("span", { class: "seat" }, ` · ${t("kitchen.seat", { n: l.seat })}`) : null,
          l.modifiers.length ? el("span", { class: "pmods" }, ` — ${l.modifiers.join(", ")}`) : null,
          l.voided ? el("span", { class: "tag void" }, t("kitchen.void")) : null))) : null);
    }));
  }

  cardButtons(tk) {
    const busy = this.flag(tk.id).busy;
    const ready = tk.parts_ready;
    return [el("button", { type: "button", class: `bump send ${ready ? "good" : ""}`, disabled: !!busy || !ready, onclick: () => this.act("bump", tk.id) },
      ready ? t("expo.send") : t("expo.waiting"))];
  }
}

const MARKS = { ready: "✓", cooking: "●", new: "○", voided: "✕", unknown: "…" };

function partState(status) {
  return { bumped: "ready", started: "cooking", new: "new", voided: "voided" }[status] || "unknown";
}

function rank(status) {
  return { new: 0, started: 1, unknown: 0, bumped: 2, voided: 3 }[status] ?? 0;
}

new Expo().start();
