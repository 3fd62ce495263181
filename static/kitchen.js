// The kitchen display (/kitchen): one cooking station's tickets at 1920x1080, read from 3 m.
// Its station is the token's; a device paired without one (or a manager) picks it here, and
// the choice stays on the device (`?station=grill` also chooses). Each card shows its lines
// with seats, courses, modifiers, notes, allergies and where else the item is made; the shared
// machinery (feed, timers, keys, panels) is static/tickets.js.

import { Screen, el, t } from "./tickets.js";

const PICK_KEY = "rail-kitchen-station";
const ALLERGY = /allerg|alerj/i;

class Kitchen extends Screen {
  constructor() {
    super("kitchen");
  }

  async chooseStation() {
    const own = this.dev.claims.station;
    if (own) return this.cooking(own) ? own : this.elsewhere(own);
    const asked = new URLSearchParams(location.search).get("station");
    if (asked && this.cooking(asked)) {
      localStorage.setItem(PICK_KEY, asked);
      return this.withPicker(asked);
    }
    if (asked && this.stations.get(asked)?.kind === "expo") return this.elsewhere(asked);
    const kept = localStorage.getItem(PICK_KEY);
    if (kept && this.cooking(kept)) return this.withPicker(kept);
    return this.withPicker(await this.pick());
  }

  cooking(id) {
    return this.stations.get(id)?.kind === "cooking";
  }

  /** The expo station's screen is /expo: the same device goes there, paired the same. */
  elsewhere(id) {
    if (this.stations.get(id)?.kind === "expo") {
      location.replace(`/expo#token=${encodeURIComponent(this.dev.token)}`);
      return null;
    }
    this.showBlocked(t("kitchen.err.unknown_station"), id);
    return null;
  }

  /** A device without a station of its own may change it from the header. */
  withPicker(id) {
    const b = el("button", { type: "button", id: "btn-station", class: "tool", "data-i18n": "kitchen.change_station", onclick: () => {
      localStorage.removeItem(PICK_KEY);
      location.replace(location.pathname);
    } }, t("kitchen.change_station"));
    this.$("#tools").prepend(b);
    return id;
  }

  pick() {
    return new Promise((resolve) => {
      const cooking = this.config.stations.filter((s) => s.kind === "cooking");
      const main = this.$("#main");
      const saved = [...main.childNodes];
      main.replaceChildren(el("section", { class: "picker", "aria-labelledby": "pick-title" },
        el("h2", { id: "pick-title", "data-i18n": "kitchen.pick_station" }, t("kitchen.pick_station")),
        el("div", { class: "picker-grid" }, ...cooking.map((s) => el("button", { type: "button", class: "primary", "data-station": s.id, onclick: () => {
          localStorage.setItem(PICK_KEY, s.id);
          main.replaceChildren(...saved);
          resolve(s.id);
        } }, s.name))),
        el("p", {}, el("a", { href: `/expo#token=${encodeURIComponent(this.dev.token)}`, "data-i18n": "kitchen.open_expo" }, t("kitchen.open_expo")))));
    });
  }

  /** Stations other than this one that make the item too. */
  alsoAt(itemId) {
    return this.routes(itemId).filter((s) => s !== this.station).map((s) => this.stations.get(s)?.name || s);
  }

  /** The option names marked as allergens in the item's modifier groups. */
  allergens(itemId) {
    const item = this.items.get(itemId);
    const names = new Set();
    for (const g of item?.modifier_groups || []) {
      for (const o of g.options || []) if (o.allergen) names.add(String(o.name).toLowerCase());
    }
    return names;
  }

  cardBody(tk) {
    // A line's course is worth printing when the ticket mixes courses or is not the first's.
    const courses = new Set(tk.lines.map((l) => l.course));
    const showCourse = tk.course == null && (courses.size > 1 || [...courses].some((c) => c > 1));
    return el("ul", { class: "lines" }, ...tk.lines.map((l) => this.line(l, showCourse)));
  }

  line(l, showCourse) {
    const flagged = this.allergens(l.item);
    const isAllergy = (text) => ALLERGY.test(text) || flagged.has(String(text).toLowerCase());
    const allergy = l.modifiers.some(isAllergy) || (l.note && isAllergy(l.note));
    const also = this.alsoAt(l.item);
    return el("li", { class: `line${l.voided ? " voided" : ""}${allergy ? " allergy" : ""}`, "data-line": String(l.line_id), "data-item": l.item },
      el("div", { class: "l-main" },
        el("span", { class: "qty" }, `${l.quantity}×`),
        el("span", { class: "name" }, l.name),
        l.voided ? el("span", { class: "tag void" }, t("kitchen.void")) : null,
        allergy ? el("span", { class: "tag allergy-tag" }, t("kitchen.allergy")) : null),
      !l.seat && !showCourse ? null : el("div", { class: "l-sub" },
        l.seat ? el("span", { class: "seat" }, t("kitchen.seat", { n: l.seat })) : null,
        showCourse ? el("span", { class: "lcourse" }, t("kitchen.course_short", { n: l.course })) : null),
      l.modifiers.length ? el("ul", { class: "mods" }, ...l.modifiers.map((m) => el("li", { class: isAllergy(m) ? "mod allergen" : "mod" }, m))) : null,
      l.note ? el("div", { class: `note${isAllergy(l.note) ? " allergen" : ""}` }, l.note) : null,
      also.length ? el("div", { class: "also" }, t("kitchen.also_at", { stations: also.join(", ") })) : null);
  }
}

new Kitchen().start();
