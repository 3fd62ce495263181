// Drives the counter POS (/pos) in headless Chromium at 1280x800: without a token it shows how
// to pair; a cashier builds an order of two items, picks "to go" and sends it in one tap; the
// ticket number shows large; the cold and bar stations have its lines with source takeaway;
// the order is in the open counter orders, cooking, and turns ready (with the ready chime)
// once the kitchen and expo bump it; Served and Close finish it. A manager 86's an item and
// the POS greys it live and refuses it. Then the same in Turkish, switched on the page. axe-core
// runs on every state shown; no raw catalogue key, untranslated warning, page or console error
// is allowed.
//
// Usage: node tests/browser/pos.mjs <base-url> <tokens.json> <artefact-dir>
import { chromium } from "playwright-core";
import { readFileSync, mkdirSync } from "node:fs";
import { createRequire } from "node:module";
import { join, dirname } from "node:path";
import { fileURLToPath } from "node:url";

const [base, tokensFile, artefacts] = process.argv.slice(2);
if (!artefacts) throw new Error("usage: node pos.mjs <base-url> <tokens.json> <artefact-dir>");
const tokens = JSON.parse(readFileSync(tokensFile, "utf8"));
mkdirSync(artefacts, { recursive: true });
const require = createRequire(import.meta.url);
// axe is evaluated in the page rather than added as a script tag: the page's CSP (scripts from
// its own server only) stays in force while it is checked.
const axeSource = readFileSync(require.resolve("axe-core/axe.min.js"), "utf8");
const root = join(dirname(fileURLToPath(import.meta.url)), "..", "..");
const catalogue = (lang) => JSON.parse(readFileSync(join(root, "static", "i18n", `${lang}.json`), "utf8"));
const EN = catalogue("en");
const TR = catalogue("tr");
const KEYS = [...new Set([...Object.keys(EN), ...Object.keys(TR)])].filter((k) => k.includes("."));
const API = `${base}/api/v1/branches/demo`;
const OUT = "espresso"; // the item this script 86's

const fail = (msg) => { throw new Error(msg); };
const fill = (text, vars = {}) => text.replace(/\{(\w+)\}/g, (_, k) => String(vars[k] ?? `{${k}}`));

async function rest(token, method, path, body) {
  const res = await fetch(API + path, {
    method,
    headers: { authorization: `Bearer ${token}`, ...(body === undefined ? {} : { "content-type": "application/json" }) },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await res.text();
  if (!res.ok) fail(`${method} ${path}: ${res.status} ${text}`);
  return text ? JSON.parse(text) : null;
}

/** The order's live tickets at every station, by station. */
async function ticketsOf(orderId) {
  const config = (await rest(tokens.manager, "GET", "")).config;
  const found = {};
  for (const s of config.stations) {
    const list = (await rest(tokens[s.id], "GET", `/stations/${s.id}/tickets`)).filter((x) => x.order_id === orderId);
    if (list.length) found[s.id] = list;
  }
  return { found, expo: config.stations.find((s) => s.kind === "expo").id };
}

/** Bumps every live ticket of the order at its cooking stations, then at expo. */
async function cookAndSend(orderId) {
  const { found, expo } = await ticketsOf(orderId);
  for (const [station, list] of Object.entries(found)) {
    if (station === expo) continue;
    for (const tk of list) await rest(tokens[station], "POST", `/stations/${station}/tickets/${tk.id}/bump`);
  }
  if (!found[expo]) fail("expo has no ticket of the order");
  for (const tk of found[expo]) await rest(tokens[expo], "POST", `/stations/${expo}/tickets/${tk.id}/bump`);
}

async function axe(page, state) {
  if (!(await page.evaluate(() => !!window.axe))) await page.evaluate(axeSource);
  const result = await page.evaluate(() => window.axe.run());
  const bad = result.violations.filter((v) => ["serious", "critical"].includes(v.impact));
  if (bad.length) {
    fail(`axe (${state}): ${bad.map((v) => `${v.id}: ${v.nodes.slice(0, 3).map((n) => n.target.join(" ")).join(", ")}`).join("; ")}`);
  }
}

/** No catalogue key and no unfilled {placeholder} anywhere a user reads or hears. */
async function noRawKeys(page, state) {
  const found = await page.evaluate((keys) => {
    const texts = [document.body.innerText, document.title];
    for (const n of document.querySelectorAll("[aria-label],[title],[placeholder],[alt]")) {
      for (const a of ["aria-label", "title", "placeholder", "alt"]) if (n.hasAttribute(a)) texts.push(n.getAttribute(a));
    }
    const all = texts.join("\n");
    const raw = keys.filter((k) => new RegExp(`(^|[^\\w.])${k.replace(/[.]/g, "\\.")}($|[^\\w.])`).test(all));
    const holes = all.match(/\{[a-z_]+\}/g) || [];
    return [...raw, ...holes];
  }, KEYS);
  if (found.length) fail(`raw text on the page (${state}): ${found.join(", ")}`);
}

const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM_PATH || "/usr/bin/chromium",
  args: ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync"],
});
const problems = [];
const watch = (page, name) => {
  page.on("pageerror", (e) => problems.push(`${name} page error: ${e.message}`));
  page.on("console", (m) => {
    if (m.type() === "error") problems.push(`${name} console error: ${m.text()}`);
    if (m.type() === "warning" && m.text().startsWith("untranslated")) problems.push(`${name}: ${m.text()}`);
  });
  page.on("dialog", (d) => { problems.push(`${name} dialog: ${d.message()}`); d.dismiss(); });
};
const check = () => { if (problems.length) fail(problems.join("; ")); };

/** Taps a menu item, opening its category first; an item with modifier groups gets its
 *  required options chosen in the chooser. */
async function tapItem(page, category, item) {
  await page.locator(`.cat[data-category="${category}"]`).tap();
  await page.locator(`[data-item="${item}"]`).tap();
  const chooser = page.locator("dialog.chooser[open]");
  if (await chooser.count()) {
    const required = chooser.locator("fieldset.group.required");
    for (let i = 0; i < await required.count(); i++) await required.nth(i).locator(".option").first().tap();
    await chooser.locator('[data-role="add"]').tap();
    await chooser.waitFor({ state: "detached" });
  }
  await page.locator(`.cart-line[data-cart="${item}"]`).waitFor();
}

/** The order the POS just sent: its number on the screen, its id from the open orders. */
async function sentOrder(page) {
  const no = (await page.locator(".called-no").innerText()).trim();
  if (!/^\d{4}$/.test(no)) fail(`the ticket number is not shown as 4 digits: "${no}"`);
  const orders = await rest(tokens.pos, "GET", "/orders");
  const order = orders.find((o) => String(o.ticket_no).padStart(4, "0") === no && !o.closed_at);
  if (!order) fail(`no open order with ticket number ${no}`);
  return { no, order };
}

try {
  const blank = await browser.newPage({ viewport: { width: 1280, height: 800 }, locale: "en-GB" });
  watch(blank, "unpaired");
  let sockets = 0;
  blank.on("websocket", () => sockets++);
  await blank.goto(`${base}/pos`);
  await blank.getByText(EN["common.pair_title"]).waitFor({ timeout: 10000 });
  await blank.waitForTimeout(300);
  if (sockets) fail("the POS opened a websocket without a token");
  await axe(blank, "unpaired");
  await blank.close();

  const context = await browser.newContext({ viewport: { width: 1280, height: 800 }, locale: "en-GB", hasTouch: true });
  const page = await context.newPage();
  watch(page, "pos");
  await page.addInitScript(() => {
    window.__sounds = [];
    document.addEventListener("rail:sound", (e) => window.__sounds.push(e.detail));
  });
  await page.goto(`${base}/pos#token=${tokens.pos}`);
  await page.waitForSelector('.conn[data-state="live"]', { timeout: 10000 });
  if (page.url().includes("token")) fail("the token stayed in the address bar");
  await page.locator(".cart-empty").waitFor();
  await axe(page, "empty");
  await noRawKeys(page, "empty");

  // ---- English: two items, to go, one tap -----------------------------------------------------
  await tapItem(page, "starters", "caesar");
  await tapItem(page, "drinks", "lemonade");
  await page.locator('.cart-line[data-cart="lemonade"] button[data-focus^="plus:"]').tap();
  await page.locator('.cart-line[data-cart="lemonade"] .qty', { hasText: "2" }).waitFor();
  await page.locator('.dining[data-option="to_go"]').tap();
  await page.locator('.dining[data-option="to_go"][aria-checked="true"]').waitFor({ timeout: 2000 });
  await axe(page, "cart");
  await page.locator('[data-focus="send"]').tap();
  await page.locator(".called-no").waitFor({ timeout: 10000 });
  const { no, order } = await sentOrder(page);
  if (order.source !== "takeaway") fail(`the order's source is ${order.source}`);
  const fontSize = await page.locator(".called-no").evaluate((n) => parseFloat(getComputedStyle(n).fontSize));
  if (fontSize < 72) fail(`the ticket number is not large (${fontSize}px)`);
  if (await page.locator(".cart-line").count()) fail("the cart was not emptied after sending");
  await axe(page, "called");
  await noRawKeys(page, "called");

  const { found } = await ticketsOf(order.id);
  const cold = found.cold?.[0];
  const bar = found.bar?.[0];
  if (!cold?.lines.some((l) => l.item === "caesar") || cold.source !== "takeaway") fail(`cold: ${JSON.stringify(found.cold)}`);
  if (!bar?.lines.some((l) => l.item === "lemonade" && l.quantity === 2) || bar.source !== "takeaway") fail(`bar: ${JSON.stringify(found.bar)}`);
  if (cold.ticket_no !== Number(no)) fail(`the station's ticket number ${cold.ticket_no} is not the one shown (${no})`);

  const card = page.locator(`.pos-order[data-order="${order.id}"]`);
  await card.waitFor();
  if (await card.getAttribute("data-state") !== "cooking") fail(`the open order is ${await card.getAttribute("data-state")}, not cooking`);
  if ((await card.locator(".po-no").innerText()).trim() !== no) fail("the open order does not show its number");
  await cookAndSend(order.id);
  await page.locator(`.pos-order[data-order="${order.id}"][data-state="ready"]`).waitFor({ timeout: 10000 });
  await page.waitForFunction(() => window.__sounds.includes("ready"), null, { timeout: 5000 });
  await page.locator("#toast", { hasText: fill(EN["pos.ready_call"], { no }) }).waitFor();
  await axe(page, "ready");
  await page.screenshot({ path: join(artefacts, "pos-en.png") });
  await card.locator("button.served").tap();
  await page.locator(`.pos-order[data-order="${order.id}"][data-state="served"]`).waitFor({ timeout: 10000 });
  await card.locator("button.close").tap();
  await card.waitFor({ state: "detached", timeout: 10000 });
  if (!(await rest(tokens.pos, "GET", `/orders/${order.id}`)).closed_at) fail("the order is not closed");

  // 86 an item from another device: greyed live, refused.
  await page.locator('[data-focus="next"]').tap();
  await page.locator('.cat[data-category="drinks"]').tap();
  await rest(tokens.manager, "PUT", `/86/${OUT}`);
  const out = page.locator(`[data-item="${OUT}"].out`);
  await out.waitFor({ timeout: 5000 });
  if ((await out.locator(".badge").innerText()).trim().split(/\s/)[0] !== "0") fail("the 86'd item does not show 0");
  await out.tap({ force: true }); // greyed (aria-disabled) yet tappable: it says why
  await page.locator("#toast.error", { hasText: fill(EN["ordering.refused_86"], { item: "Espresso" }) }).waitFor({ timeout: 5000 });
  if (await page.locator(`.cart-line[data-cart="${OUT}"]`).count()) fail("the 86'd item went into the cart");
  await axe(page, "86");
  check();

  // ---- Turkish, switched on the page ----------------------------------------------------------
  await page.locator('.lang button[data-lang="tr"]').tap();
  await page.waitForFunction(() => document.documentElement.lang === "tr");
  await page.locator("#cart-title", { hasText: TR["pos.current_order"] }).waitFor();
  await noRawKeys(page, "empty tr");
  await tapItem(page, "mains", "burger");
  await page.locator('.dining[data-option="delivery"]').tap();
  if ((await page.locator('[data-focus="send"]').innerText()).trim() !== TR["pos.send"]) fail("the send button is not in Turkish");
  await page.locator('.cat[data-category="drinks"]').tap();
  await page.locator(`[data-item="${OUT}"].out`).waitFor();
  await noRawKeys(page, "cart tr");
  await axe(page, "cart tr");
  await page.locator('[data-focus="send"]').tap();
  await page.locator(".called-no").waitFor({ timeout: 10000 });
  const sent = await sentOrder(page);
  if (sent.order.source !== "delivery") fail(`the Turkish order's source is ${sent.order.source}`);
  const trCard = page.locator(`.pos-order[data-order="${sent.order.id}"]`);
  await trCard.waitFor();
  if ((await trCard.locator(".po-state").textContent()) !== TR["pos.state.cooking"]) fail("the open order's state is not in Turkish");
  await noRawKeys(page, "called tr");
  await axe(page, "called tr");
  await page.screenshot({ path: join(artefacts, "pos-tr.png") });
  await cookAndSend(sent.order.id);
  await page.locator(`.pos-order[data-order="${sent.order.id}"][data-state="ready"]`).waitFor({ timeout: 10000 });
  await noRawKeys(page, "ready tr");
  await trCard.locator("button.served").tap();
  await page.locator(`.pos-order[data-order="${sent.order.id}"][data-state="served"]`).waitFor({ timeout: 10000 });
  await trCard.locator("button.close").tap();
  await trCard.waitFor({ state: "detached", timeout: 10000 });
  check();
  await context.close();
  console.log("pos ok");
} finally {
  await fetch(`${API}/86/${OUT}`, { method: "DELETE", headers: { authorization: `Bearer ${tokens.manager}` } }).catch(() => {});
  await browser.close();
}
