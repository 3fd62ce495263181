// The pairing view every screen shows while it is not paired (kitchen, expo, waiter, POS, QR
// menu, manage): the branch and the 8-character code a manager made on /manage (typed on a
// touch screen or a keyboard; case, spaces and dashes do not matter), sent to POST .../pair;
// the token it answers is kept as a `#token=` link keeps it and the page starts. A link or QR
// code `<page>#pair=<branch>:<CODE>` pairs at once. It also tells why a running screen lost
// its pairing (a manager revoked it, or the engine refused its token) and where a device
// paired for another page belongs.

import { ApiError, claimsOf, device, el, lastBranch, normalCode, pair, t, takePairing } from "/static/rail.js";

const CODE_LEN = 8;
// The engine's codes have no look-alikes: never 0, O, 1, I or L.
const ALPHABET = /^[ABCDEFGHJKMNPQRSTUVWXYZ23456789]*$/;
const BRANCH = /^[a-z0-9_][a-z0-9_-]{0,63}$/;

let mounted = 0; // pairing views on the page

// A `#pair=` link opened while this page already runs: the page starts over to pair.
window.addEventListener("hashchange", () => {
  if (!mounted && new URLSearchParams(location.hash.slice(1)).has("pair")) location.reload();
});

/** The page a device runs on: its role's screen (a kitchen screen's /kitchen sends expo on). */
export function homeOf(issued) {
  switch (issued.role) {
    case "kitchen": return "/kitchen";
    case "guest": return `/menu/${encodeURIComponent(issued.table || "")}`;
    case "manager": return "/manage";
    default: return `/${issued.role}`;
  }
}

/**
 * Why the engine refused a running screen's token (its socket said "signin"): "revoked" (a
 * manager unpaired it), "expired", or "refused" (another secret, a damaged token).
 */
export async function refusalOf(dev) {
  const claims = dev?.token ? claimsOf(dev.token) : null;
  if (claims?.exp && claims.exp * 1000 < Date.now()) return "expired";
  try {
    const res = await fetch(`/api/v1/branches/${encodeURIComponent(dev.branch)}`, {
      headers: { authorization: `Bearer ${dev.token}` },
    });
    if (res.ok) return "refused";
    const body = await res.json().catch(() => null);
    const code = body?.error?.code;
    if (code === "token_revoked") return "revoked";
    if (code === "token_expired") return "expired";
    return "refused";
  } catch {
    return "refused";
  }
}

/** The code as shown: ABCD-EFGH (as far as typed). */
export function formatCode(text) {
  const c = normalCode(text).replace(/[^A-Z0-9]/g, "").slice(0, CODE_LEN);
  return c.length > 4 ? `${c.slice(0, 4)}-${c.slice(4)}` : c;
}

/**
 * The pairing form, for a page's "not paired" view.
 * - `reason`: "revoked" (a manager unpaired this screen) or null.
 * - `accepts(issued)`: whether this page runs as the paired device; a device paired for
 *   another page is sent there with its token.
 * - `onPaired(issued)`: the token is kept; the page starts (or reloads).
 * - `focus`: put the caret in the form at once (a phone that came to scan may not want its
 *   keyboard up: false).
 */
export function pairingForm({ reason = null, accepts = () => true, onPaired, focus = true }) {
  style();
  const params = new URLSearchParams(location.search);
  const branch = el("input", {
    id: "pair-branch", class: "pair-branch", name: "branch", type: "text", required: true,
    autocomplete: "off", autocapitalize: "none", spellcheck: "false", maxlength: "64",
    "aria-describedby": "pair-branch-hint",
  });
  branch.value = (params.get("branch") || lastBranch() || "").trim().toLowerCase();
  const code = el("input", {
    id: "pair-code", class: "pair-code", name: "code", type: "text", required: true,
    autocomplete: "off", autocapitalize: "characters", autocorrect: "off", spellcheck: "false",
    inputmode: "text", enterkeyhint: "go", placeholder: "ABCD-EFGH", "aria-describedby": "pair-code-hint",
  });
  const error = el("div", { id: "pair-error", class: "pair-error", role: "alert", hidden: true });
  const submit = el("button", { type: "submit", id: "pair-submit", class: "primary pair-submit" }, t("pairing.submit"));
  const status = el("p", { id: "pair-status", class: "pair-status", role: "status" });
  const form = el("form", { class: "pair-form", id: "pair-form", novalidate: true, "data-i18n-aria-label": "pairing.form_label", "aria-label": t("pairing.form_label") },
    reason === "revoked" ? el("p", { class: "pair-reason refused", "data-i18n": "pairing.revoked" }, t("pairing.revoked")) : null,
    el("p", { class: "pair-lead", "data-i18n": "pairing.lead" }, t("pairing.lead")),
    el("div", { class: "pair-fields" },
      el("label", { class: "pair-field pair-field-branch", for: "pair-branch" },
        el("span", { class: "pair-label", "data-i18n": "pairing.branch" }, t("pairing.branch")),
        branch,
        el("span", { class: "pair-hint", id: "pair-branch-hint", "data-i18n": "pairing.branch_hint" }, t("pairing.branch_hint"))),
      el("label", { class: "pair-field pair-field-code", for: "pair-code" },
        el("span", { class: "pair-label", "data-i18n": "pairing.code" }, t("pairing.code")),
        code,
        el("span", { class: "pair-hint", id: "pair-code-hint", "data-i18n": "pairing.code_hint" }, t("pairing.code_hint")))),
    error,
    submit,
    status);

  let shown = null; // the error shown: {key, vars, detail}, said again in a new language
  let blockedUntil = 0;
  let blockTimer = 0;
  let busy = false;
  let done = false;

  const say = (msg) => {
    shown = msg;
    error.hidden = !msg;
    error.replaceChildren();
    if (!msg) return;
    error.append(el("strong", {}, t(msg.key, msg.vars)));
    if (msg.detail) error.append(el("span", { class: "pair-detail" }, msg.detail));
  };
  // While rate limited, the button counts down (the alert is said once, not every second).
  const drawSubmit = () => {
    const left = Math.ceil((blockedUntil - Date.now()) / 1000);
    submit.textContent = left > 0 ? t("pairing.retry_in", { seconds: left }) : t("pairing.submit");
  };
  document.addEventListener("rail:lang", () => {
    say(shown);
    drawSubmit();
    if (busy) status.textContent = t("pairing.pairing");
  });

  // As typed: upper case, ABCD-EFGH, the caret kept after the same character.
  code.addEventListener("input", () => {
    const raw = code.value;
    const caret = code.selectionStart ?? raw.length;
    const before = normalCode(raw.slice(0, caret)).replace(/[^A-Z0-9]/g, "").length;
    const shownCode = formatCode(raw);
    if (shownCode !== raw) {
      code.value = shownCode;
      const at = before > 4 ? before + 1 : before;
      code.setSelectionRange(at, at);
    }
    if (shown?.key === "pairing.err.short" || shown?.key === "pairing.err.lookalike") say(null);
  });
  branch.addEventListener("input", () => {
    if (shown?.key === "pairing.err.branch" || shown?.key === "pairing.err.unknown_branch") say(null);
  });

  const unblock = () => {
    clearInterval(blockTimer);
    blockedUntil = 0;
    submit.disabled = busy;
    drawSubmit();
    if (shown?.key === "pairing.err.rate_limited") say(null);
  };

  const send = async () => {
    if (busy || done || Date.now() < blockedUntil) return;
    const b = branch.value.trim().toLowerCase();
    const c = normalCode(code.value);
    branch.value = b;
    if (!BRANCH.test(b)) {
      say({ key: "pairing.err.branch" });
      branch.focus();
      return;
    }
    if (!ALPHABET.test(c.replace(/[^A-Z0-9]/g, "")) || /[^A-Z0-9]/.test(c)) {
      say({ key: "pairing.err.lookalike" });
      code.focus();
      return;
    }
    if (c.length !== CODE_LEN) {
      say({ key: "pairing.err.short", vars: { n: CODE_LEN } });
      code.focus();
      return;
    }
    busy = true;
    submit.disabled = true;
    say(null);
    status.textContent = t("pairing.pairing");
    try {
      const issued = await pair(b, c);
      done = true;
      mounted = Math.max(0, mounted - 1);
      status.textContent = t("pairing.paired", { device: issued.device });
      if (!accepts(issued)) {
        // Paired for another screen: that page, with the token (not kept for this one).
        device()?.forget();
        location.replace(`${homeOf(issued)}#token=${encodeURIComponent(issued.token)}`);
        return;
      }
      onPaired(issued);
    } catch (e) {
      status.textContent = "";
      const err = e instanceof ApiError ? e : new ApiError(0, "network", String(e));
      const detail = err.code === "network" || err.code === "invalid_pairing_code" ? "" : err.message;
      if (err.code === "rate_limited") {
        blockedUntil = Date.now() + Math.max(err.retryAfter || 60, 1) * 1000;
        say({ key: "pairing.err.rate_limited", detail });
        drawSubmit();
        clearInterval(blockTimer);
        blockTimer = setInterval(() => (Date.now() >= blockedUntil ? unblock() : drawSubmit()), 1000);
      } else if (err.code === "invalid_pairing_code") {
        say({ key: "pairing.err.invalid_pairing_code" });
        code.select();
      } else if (err.code === "unknown_branch" || err.status === 404) {
        say({ key: "pairing.err.unknown_branch", vars: { branch: b } });
        branch.focus();
      } else if (err.code === "network") {
        say({ key: "pairing.err.network" });
      } else {
        say({ key: "common.error", vars: { message: err.message || err.code }, detail: "" });
      }
    } finally {
      busy = false;
      if (!done) submit.disabled = Date.now() < blockedUntil;
    }
  };

  form.addEventListener("submit", (e) => {
    e.preventDefault();
    send();
  });

  // A `#pair=<branch>:<code>` link: pairs at once.
  const fromLink = () => {
    const link = takePairing();
    if (!link) return;
    if (link.branch) branch.value = link.branch.toLowerCase();
    code.value = formatCode(link.code);
    send();
  };
  const onHash = () => { if (!done) fromLink(); };
  window.addEventListener("hashchange", onHash);
  mounted += 1;
  queueMicrotask(() => {
    fromLink();
    if (focus && !busy && !done && form.isConnected) (branch.value ? code : branch).focus({ preventScroll: true });
  });
  return form;
}

/**
 * A whole "not paired" section: the title, why (when a running screen lost its pairing), the
 * form, how else to pair, and the page's own notes (catalogue keys).
 */
export function pairingView({ reason = null, notes = [], before = [], accepts, onPaired } = {}) {
  return el("section", { class: "signin pairing", id: "pairing", "aria-labelledby": "pair-title" },
    el("h2", { id: "pair-title", "data-i18n": "common.pair_title" }, t("common.pair_title")),
    ...before.map((node) => (typeof node === "string" ? el("p", { class: "refused", "data-i18n": node }, t(node)) : node)),
    pairingForm({ reason, accepts, onPaired }),
    el("p", { class: "pair-other", "data-i18n": "common.pair_help" }, t("common.pair_help")),
    ...notes.map((key) => el("p", { class: "muted", "data-i18n": key }, t(key))));
}

/** The view's look, once per page (the pages' own files style the rest of the page). */
function style() {
  if (document.getElementById("pairing-style")) return;
  const css = `
.pairing { max-width: 46rem; }
.pairing h2 { margin-top: 0; }
.pair-form { display: flex; flex-direction: column; gap: 14px; margin: 8px 0 18px; }
.pair-lead { margin: 0; font-size: 1.05em; }
.pair-reason { margin: 0; padding: 10px 14px; border-radius: 8px; background: #450a0a; color: #fecaca; font-weight: 700; border-left: 6px solid #f87171; }
.pair-fields { display: grid; grid-template-columns: minmax(0, 1fr); gap: 12px; }
.pair-field { display: flex; flex-direction: column; gap: 6px; }
.pair-label { font-weight: 700; }
.pair-hint { color: var(--muted); font-size: 15px; }
.pair-branch { font-size: 22px; min-height: 52px; padding: 8px 14px; font-family: ui-monospace, SFMono-Regular, Menlo, monospace; width: 100%; max-width: 22rem; }
.pair-code {
  font: 700 clamp(30px, 8vw, 52px)/1.1 ui-monospace, SFMono-Regular, Menlo, monospace;
  letter-spacing: .12em; text-align: center; text-transform: uppercase; min-height: 84px;
  padding: 10px 14px; width: 100%; background: #0b0f14; border: 2px solid #475569;
}
.pair-code::placeholder { color: #6b7685; letter-spacing: .12em; }
.pair-code:focus-visible, .pair-branch:focus-visible { border-color: var(--focus); }
.pair-submit { min-height: 64px; font-size: 22px; font-weight: 700; }
.pair-error { background: #7f1d1d; color: #fff; border-radius: 8px; padding: 10px 14px; display: flex; flex-direction: column; gap: 4px; }
.pair-error[hidden] { display: none; }
.pair-detail { font-size: 15px; font-family: ui-monospace, monospace; opacity: .9; }
.pair-status { margin: 0; min-height: 1.35em; color: var(--muted); }
.pair-other { margin-bottom: 4px; }
`;
  document.head.append(el("style", { id: "pairing-style" }, css));
}
