// Drives the guest's QR menu (/menu/qr-5) on a phone in headless Chromium: pairing and a token
// for another table are explained; a caesar and a burger (with any required choice) are sent
// to the kitchen in one call and reach the cold station as a QR ticket; the order's progress
// follows the kitchen (received, cooking, ready, served); fries 86'd while in the cart are
// marked at once and block sending; sending too fast shows the rate-limit message; the page is
// checked with axe-core and in Turkish. Screenshots: menu-en.png, menu-tr.png (390x844).
//
// Usage: node menu.mjs <base-url> <tokens.json> <artefact-dir>
import { chromium } from "playwright-core";
import { readFileSync, mkdirSync } from "node:fs";
import { createRequire } from "node:module";
import path from "node:path";

const [base, tokensFile, outDir] = process.argv.slice(2);
if (!outDir) throw new Error("usage: node menu.mjs <base-url> <tokens.json> <artefact-dir>");
const tokens = JSON.parse(readFileSync(tokensFile, "utf8"));
mkdirSync(outDir, { recursive: true });
const require = createRequire(import.meta.url);
const axeSource = readFileSync(require.resolve("axe-core/axe.min.js"), "utf8");
const TABLE = "qr-5";
const started = Date.now();

const fail = (msg) => { throw new Error(msg); };
const step = (msg) => console.log(`  menu: ${msg} (${((Date.now() - started) / 1000).toFixed(1)} s)`);

/** A REST call as a device; throws with the engine's answer unless it succeeds. */
async function rest(token, method, p, body) {
  const res = await fetch(`${base}/api/v1/branches/demo${p}`, {
    method,
    headers: { authorization: `Bearer ${token}`, ...(body ? { "content-type": "application/json" } : {}) },
    body: body ? JSON.stringify(body) : undefined,
  });
  const text = await res.text();
  if (!res.ok) {
    const e = new Error(`${method} ${p}: ${res.status} ${text}`);
    e.status = res.status;
    throw e;
  }
  return text ? JSON.parse(text) : null;
}

async function until(what, fn, ms = 10000) {
  const end = Date.now() + ms;
  for (;;) {
    const v = await fn();
    if (v) return v;
    if (Date.now() > end) fail(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM_PATH || "/usr/bin/chromium",
  args: ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync"],
});
const phone = { viewport: { width: 390, height: 844 }, hasTouch: true, isMobile: true, deviceScaleFactor: 1, locale: "en-GB" };
const errors = [];
let allowStatus = new Set(); // HTTP refusals the current step expects the browser to log
const created = new Set(); // orders this test opened (cleaned up at the end)

function watch(page, name) {
  page.on("pageerror", (e) => errors.push(`${name}: ${e.message}`));
  page.on("dialog", (d) => { errors.push(`${name}: dialog ${d.message()}`); d.dismiss(); });
  page.on("console", (m) => {
    const text = m.text();
    if (text.startsWith("untranslated:")) errors.push(`${name}: ${text}`);
    if (m.type() !== "error") return;
    const status = /status of (\d{3})/.exec(text)?.[1];
    if (status && allowStatus.has(Number(status))) return;
    errors.push(`${name}: console error: ${text}`);
  });
}

function checkErrors() {
  if (errors.length) fail(`page errors: ${errors.join("; ")}`);
}

async function axe(page, label) {
  if (!(await page.evaluate(() => !!window.axe))) await page.evaluate(axeSource);
  const result = await page.evaluate(() => window.axe.run(document, { resultTypes: ["violations"] }));
  const bad = result.violations.filter((v) => v.impact === "serious" || v.impact === "critical");
  if (bad.length) {
    fail(`axe (${label}): ${bad.map((v) => `${v.id} [${v.impact}] at ${v.nodes.slice(0, 3).map((n) => n.target.join(" ")).join(", ")}`).join("; ")}`);
  }
}

/** No element shows a catalogue key instead of its text. */
async function noRawKeys(page, label) {
  const raw = await page.evaluate(() => {
    const re = /\b(menu|common|conn|source|manage)\.[a-z_]+(\.[a-z_]+)*\b/;
    const hits = [];
    for (const node of document.querySelectorAll("body *")) {
      if (node.closest("[hidden]") || node.closest("script")) continue;
      for (const c of node.childNodes) if (c.nodeType === 3 && re.test(c.textContent)) hits.push(c.textContent.trim());
      for (const a of ["aria-label", "placeholder", "title", "alt"]) {
        const v = node.getAttribute(a);
        if (v && re.test(v)) hits.push(`${a}=${v}`);
      }
    }
    return hits;
  });
  if (raw.length) fail(`${label}: raw catalogue keys on the page: ${raw.slice(0, 5).join(" | ")}`);
}

async function tap(page, selector) {
  await page.locator(selector).first().tap();
}

async function addItem(page, item) {
  await tap(page, `#menu .item[data-item="${item}"]`);
  await page.locator("#item-dialog[open]").waitFor();
  // Every required group blocks adding until a choice is made.
  const required = page.locator("#item-groups fieldset.required");
  const groups = await required.count();
  for (let i = 0; i < groups; i++) {
    if (!(await page.locator("#item-add").isDisabled())) fail(`${item}: Add is enabled with a required choice missing`);
    if (!(await page.locator("#item-reason").isVisible())) fail(`${item}: no reason shown for the disabled Add`);
    await required.nth(i).locator("label.option").first().tap();
  }
  if (await page.locator("#item-add").isDisabled()) fail(`${item}: Add stays disabled: ${await page.textContent("#item-reason")}`);
  await tap(page, "#item-add");
  await page.locator("#item-dialog[open]").waitFor({ state: "detached" });
}

async function cartCount(page) {
  return Number(await page.textContent("#cart-count"));
}

let okLine = null;
try {
  // Without a token: how to pair, and no socket.
  {
    const ctx = await browser.newContext(phone);
    const page = await ctx.newPage();
    watch(page, "unpaired");
    let sockets = 0;
    page.on("websocket", () => sockets++);
    await page.goto(`${base}/menu/${TABLE}`);
    await page.locator("#pair").waitFor({ state: "visible", timeout: 10000 });
    const said = await page.textContent("#pair");
    if (!said.includes("not paired")) fail(`no pairing help without a token: ${said}`);
    await page.waitForTimeout(300);
    if (sockets) fail("the menu opened a websocket without a token");
    await axe(page, "unpaired");
    await ctx.close();
  }

  // A guest token of another table says so.
  {
    const other = await rest(tokens.manager, "POST", "/tokens", { role: "guest", table: "t1", device: "menu-test-t1", ttl_seconds: 600 });
    const ctx = await browser.newContext(phone);
    const page = await ctx.newPage();
    watch(page, "other table");
    await page.goto(`${base}/menu/${TABLE}#token=${other.token}`);
    await page.locator("#refused").waitFor({ state: "visible", timeout: 10000 });
    const said = await page.textContent("#refused");
    if (!said.includes("another table") || !said.includes("t1")) fail(`a token for t1 is not refused as another table's: ${said}`);
    if (await page.locator("#menu .item").count()) fail("another table's phone is shown the menu to order");
    await ctx.close();
  }
  // A token the engine refuses (a bad signature) says the QR code is no longer valid.
  {
    const forged = tokens.guest_qr5.replace(/.{6}$/, "AAAAAA");
    const ctx = await browser.newContext(phone);
    const page = await ctx.newPage();
    watch(page, "refused token");
    allowStatus = new Set([401]);
    await page.goto(`${base}/menu/${TABLE}#token=${forged}`);
    await page.locator("#refused").waitFor({ state: "visible", timeout: 10000 });
    allowStatus = new Set();
    const said = await page.textContent("#refused");
    if (!said.includes("no longer valid")) fail(`a refused token is not explained: ${said}`);
    await ctx.close();
  }
  step("pairing, another table's token and a refused token explained");

  const ctx = await browser.newContext(phone);
  const page = await ctx.newPage();
  watch(page, "menu");
  await page.goto(`${base}/menu/${TABLE}#token=${tokens.guest_qr5}`);
  await page.locator('#menu .item[data-item="caesar"]').waitFor({ timeout: 10000 });
  if (page.url().includes("token=")) fail("the token stayed in the address bar");
  await page.locator('#conn[data-state="live"]').waitFor({ timeout: 10000 });
  const tableShown = await page.textContent("#table-name");
  if (!tableShown.includes("Table 5")) fail(`the table is not named: ${tableShown}`);
  const categories = await page.locator("#cats .chip").count();
  if (categories < 3) fail(`expected the menu's categories, saw ${categories}`);
  const price = await page.textContent('#menu .item[data-item="caesar"] .item-cost');
  if (!/9[.,]50/.test(price)) fail(`the caesar's price reads ${price}`);
  await axe(page, "menu");

  // The menu's choices: a group of one choice keeps one; a required group blocks adding
  // until chosen (an item of the menu with one, if it has any).
  const menu = (await rest(tokens.guest_qr5, "GET", "")).config;
  const single = menu.items.find((i) => (i.modifier_groups || []).some((g) => g.max === 1 && !g.required && g.options.length > 1));
  if (single) {
    const g = single.modifier_groups.find((x) => x.max === 1 && !x.required && x.options.length > 1);
    await tap(page, `#menu .item[data-item="${single.id}"]`);
    await page.locator("#item-dialog[open]").waitFor();
    const options = page.locator(`#item-groups fieldset[data-group="${g.id}"] label.option`);
    await options.nth(0).tap();
    await options.nth(1).tap();
    const checked = await page.locator(`#item-groups fieldset[data-group="${g.id}"] input:checked`).count();
    if (checked !== 1) fail(`${single.id}: ${checked} choices of '${g.name}' (at most 1) are kept`);
    await tap(page, "#item-close");
  }
  const needy = menu.items.find((i) => (i.modifier_groups || []).some((g) => g.required));
  if (needy) {
    await tap(page, `#menu .item[data-item="${needy.id}"]`);
    await page.locator("#item-dialog[open]").waitFor();
    if (!(await page.locator("#item-add").isDisabled())) fail(`${needy.id}: Add is enabled before its required choice`);
    const reason = await page.textContent("#item-reason");
    const group = needy.modifier_groups.find((g) => g.required);
    if (!reason.includes(group.name)) fail(`${needy.id}: the disabled Add does not say to choose ${group.name}: ${reason}`);
    await axe(page, "item options");
    await tap(page, "#item-close");
  }

  // A caesar and a burger (with its required choices, if the menu gives it any).
  await addItem(page, "caesar");
  await addItem(page, "burger");
  if ((await cartCount(page)) !== 2) fail(`the cart holds ${await cartCount(page)} items, expected 2`);
  await tap(page, "#open-cart");
  await page.locator("#cart-dialog[open]").waitFor();
  const lines = await page.locator("#cart-lines .cart-line").count();
  if (lines !== 2) fail(`the cart shows ${lines} lines`);
  await axe(page, "cart");

  // Send; a table's limit may still be spent by an earlier run on this server: wait it out.
  let orderId = null;
  for (let attempt = 0; attempt < 4 && !orderId; attempt++) {
    allowStatus = new Set([429]);
    const before = await page.locator(".order-card").count();
    await tap(page, "#send");
    await until("the order to be sent or refused", async () =>
      (await page.locator(".order-card").count()) > before || (await page.locator("#send-error").isVisible()));
    allowStatus = new Set();
    if (await page.locator("#send-error").isVisible()) {
      const why = await page.textContent("#send-error");
      if (!why.includes("taking a lot of orders")) fail(`sending was refused: ${why}`);
      await page.waitForTimeout(11000);
      continue;
    }
    orderId = await page.locator(".order-card").first().getAttribute("data-order");
  }
  if (!orderId) fail("the order was never sent");
  created.add(orderId);
  const card = page.locator(`.order-card[data-order="${orderId}"]`);
  await card.locator('.step.current[data-step="received"]').waitFor({ timeout: 10000 });
  if (!(await card.textContent()).includes("Received")) fail("the progress does not say Received");
  if (await page.isVisible("#cart-bar")) fail("the cart was not emptied after sending");
  step("order sent: received");

  // The cold station has the caesar, from the QR menu.
  const cold = await rest(tokens.cold, "GET", "/stations/cold/tickets");
  const coldTicket = cold.find((tk) => tk.order_id === orderId);
  if (!coldTicket) fail("the cold station has no ticket of the order");
  if (coldTicket.source !== "qr") fail(`the cold ticket's source is ${coldTicket.source}`);
  if (!coldTicket.lines.some((l) => l.item === "caesar")) fail("the cold ticket has no caesar");

  // The kitchen starts: cooking. Every station bumps, then expo: ready. The waiter serves: served.
  await rest(tokens.cold, "POST", `/stations/cold/tickets/${coldTicket.id}/start`);
  await card.locator('.step.current[data-step="cooking"]').waitFor({ timeout: 10000 });
  step("started by the cold station: cooking");
  await axe(page, "progress");
  const order = await rest(tokens.manager, "GET", `/orders/${orderId}`);
  for (const tk of order.tickets.filter((x) => x.kind !== "expo")) {
    if (tk.status === "new") await rest(tokens[tk.station], "POST", `/stations/${tk.station}/tickets/${tk.id}/start`);
    await rest(tokens[tk.station], "POST", `/stations/${tk.station}/tickets/${tk.id}/bump`);
  }
  const expo = order.tickets.find((x) => x.kind === "expo");
  await until("expo to have every part", async () =>
    (await rest(tokens.expo, "GET", "/stations/expo/tickets")).some((tk) => tk.id === expo.id && tk.parts_ready));
  if ((await card.getAttribute("data-stage")) === "ready") fail("the order read ready before expo sent it");
  await rest(tokens.expo, "POST", `/stations/expo/tickets/${expo.id}/bump`);
  await card.locator('.step.current[data-step="ready"]').waitFor({ timeout: 10000 });
  if (!(await card.textContent()).includes("on its way")) fail("the ready order does not say it is on its way");
  step("bumped everywhere and sent by expo: ready");
  await rest(tokens.waiter, "POST", `/orders/${orderId}/serve`, {});
  await card.locator('.step.current[data-step="served"]').waitFor({ timeout: 10000 });
  step("served");

  // Fries in the cart, then 86'd by a manager: marked at once, Send blocked until removed.
  await addItem(page, "fries");
  await rest(tokens.manager, "PUT", "/86/fries");
  const outAt = Date.now();
  try {
    await page.locator("#cart-bar.warn").waitFor({ timeout: 12000 });
    step(`the cart marked the 86 after ${Date.now() - outAt} ms`);
    const warn = await page.textContent("#cart-warning");
    if (!warn.includes("no longer available")) fail(`the cart bar warns: ${warn}`);
    if (!(await page.locator('#menu .item.out[data-item="fries"]').count())) fail("the menu does not mark the fries sold out");
    await tap(page, "#open-cart");
    const fries = page.locator('#cart-lines .cart-line.unavailable[data-item="fries"]');
    await fries.waitFor({ timeout: 5000 });
    if (!(await fries.textContent()).includes("No longer available")) fail("the fries line does not say it is unavailable");
    if (!(await page.locator("#send").isDisabled())) fail("Send is not blocked with an 86'd item in the cart");
    const reason = await page.textContent("#send-reason");
    if (!reason.includes("no longer available")) fail(`Send is blocked without the reason: ${reason}`);
    await axe(page, "cart with an 86'd item");
    step("fries 86'd in the cart: marked, Send blocked");
    await fries.locator("button.remove").tap();
    await page.locator("#cart-dialog[open]").waitFor({ state: "detached" });
    if (await page.isVisible("#cart-bar")) fail("the cart bar stays after its last line was removed");
  } finally {
    await rest(tokens.manager, "DELETE", "/86/fries");
  }
  await page.locator('#menu .item.out[data-item="fries"]').waitFor({ state: "detached", timeout: 12000 });

  // Sending faster than the guest limit (RAIL_GUEST_ORDERS_PER_MINUTE, 6 by default): the
  // kind message, and nothing sent.
  let sends = 1;
  let limited = false;
  allowStatus = new Set([429]);
  for (let i = 0; i < 10 && !limited; i++) {
    await addItem(page, "espresso");
    await tap(page, "#open-cart");
    await page.locator("#cart-dialog[open]").waitFor();
    const before = await page.locator(".order-card").count();
    await tap(page, "#send");
    await until("the espresso to be sent or refused", async () =>
      (await page.locator(".order-card").count()) > before || (await page.locator("#send-error").isVisible()));
    if (await page.locator("#send-error").isVisible()) {
      limited = true;
      const why = await page.textContent("#send-error");
      if (!why.includes("The kitchen is taking a lot of orders from this table: please wait a minute and try again")) {
        fail(`the rate limit reads: ${why}`);
      }
      if ((await page.locator("#cart-lines .cart-line").count()) !== 1) fail("the refused order left the cart");
      await axe(page, "rate limited");
      await page.screenshot({ path: path.join(outDir, "menu-rate-limited-en.png") });
      await tap(page, "#cart-lines .cart-line button.remove");
      await page.locator("#cart-dialog[open]").waitFor({ state: "detached" });
    } else {
      sends++;
      created.add(await page.locator(".order-card").first().getAttribute("data-order"));
    }
  }
  allowStatus = new Set();
  if (!limited) fail(`${sends} orders in a row were never rate limited`);
  step(`rate limited after ${sends} orders this minute`);

  await addItem(page, "lemonade");
  await page.evaluate(() => window.scrollTo(0, 0));
  await noRawKeys(page, "en");
  await page.screenshot({ path: path.join(outDir, "menu-en.png") });

  // Turkish, switched with the page's own switch.
  await tap(page, '.lang button[data-lang="tr"]');
  await page.waitForFunction(() => document.documentElement.lang === "tr");
  await page.locator("#open-cart").filter({ hasText: "Siparişi gör" }).waitFor({ timeout: 5000 });
  const served = await page.locator('.order-card[data-stage="served"] .step.current').first().textContent();
  if (!served.includes("Servis edildi")) fail(`the served step reads ${served} in Turkish`);
  if (!/9,50/.test(await page.textContent('#menu .item[data-item="caesar"] .item-cost'))) fail("prices are not in Turkish format");
  await noRawKeys(page, "tr");
  await axe(page, "menu in Turkish");
  await page.screenshot({ path: path.join(outDir, "menu-tr.png") });
  await tap(page, "#open-cart");
  await page.locator("#send").filter({ hasText: "Mutfağa gönder" }).waitFor({ timeout: 5000 });
  await noRawKeys(page, "tr cart");
  await axe(page, "cart in Turkish");
  await tap(page, "#cart-lines .cart-line button.remove");
  await page.locator("#cart-dialog[open]").waitFor({ state: "detached" });
  checkErrors();
  await ctx.close();
  okLine = (`menu ok: order ${orderId} went received → cooking → ready → served; 86 marked in the cart; rate limited after ${sends} orders (${((Date.now() - started) / 1000).toFixed(1)} s)`);
} finally {
  // Leave the table as it was: void what the test's orders still hold, close them.
  for (const id of created) {
    try {
      const o = await rest(tokens.manager, "GET", `/orders/${id}`);
      if (o.closed_at) continue;
      for (const l of o.lines.filter((x) => x.status !== "served" && x.status !== "voided")) {
        await rest(tokens.manager, "POST", `/orders/${id}/lines/${l.id}/void`, { reason: "browser test" });
      }
      await rest(tokens.manager, "POST", `/orders/${id}/close`);
    } catch (e) {
      console.error(`  menu: cleanup of ${id}: ${e.message}`);
    }
  }
  await browser.close();
}
console.log(okLine);
