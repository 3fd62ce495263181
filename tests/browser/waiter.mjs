// Drives the waiter tablet (/waiter) in headless Chromium at 1280x800: without a token it shows
// how to pair; a waiter opens table t4 for 2 guests; an item's required modifier group blocks
// adding it until chosen; the waiter orders a burger (with its modifiers, within its groups'
// `max`) and a caesar, sends them, and the grill and cold stations have them; a manager 86's fries and limits the steak to 2, and the open tablet greys fries
// with "0", refuses it and shows "2 left" without a reload; the check refuses to close while
// food is cooking; the kitchen bumps every part and expo sends it, the tablet says "Table 4:
// ready to run" with the ready chime; the waiter marks it served, closes the check and the
// table is free again. Then the same in Turkish, switched on the page, with a held line voided
// for a reason and a course fired. axe-core runs on every
// state shown; no raw catalogue key, untranslated warning, page or console error is allowed.
//
// Usage: node tests/browser/waiter.mjs <base-url> <tokens.json> <artefact-dir>
import { chromium } from "playwright-core";
import { readFileSync, mkdirSync } from "node:fs";
import { createRequire } from "node:module";
import { join, dirname } from "node:path";
import { fileURLToPath } from "node:url";

const [base, tokensFile, artefacts] = process.argv.slice(2);
if (!artefacts) throw new Error("usage: node waiter.mjs <base-url> <tokens.json> <artefact-dir>");
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
const TABLE = "t4";

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

/** Bumps every live ticket of the order at its cooking stations, then at expo. */
async function cookAndSend(orderId) {
  const config = (await rest(tokens.manager, "GET", "")).config;
  const expo = config.stations.find((s) => s.kind === "expo").id;
  for (const s of config.stations.filter((x) => x.kind !== "expo")) {
    const tickets = await rest(tokens[s.id], "GET", `/stations/${s.id}/tickets`);
    for (const tk of tickets.filter((x) => x.order_id === orderId)) {
      await rest(tokens[s.id], "POST", `/stations/${s.id}/tickets/${tk.id}/bump`);
    }
  }
  const expoTickets = (await rest(tokens[expo], "GET", `/stations/${expo}/tickets`)).filter((x) => x.order_id === orderId);
  if (!expoTickets.length) fail("expo has no ticket of the order");
  for (const tk of expoTickets) await rest(tokens[expo], "POST", `/stations/${expo}/tickets/${tk.id}/bump`);
}

async function openOrderAt(table) {
  const orders = await rest(tokens.manager, "GET", "/orders");
  return orders.find((o) => o.table === table && !o.closed_at);
}

/** Frees a table another script may have left an order at: voids, serves and closes it. */
async function freeTable(table) {
  const orders = await rest(tokens.manager, "GET", "/orders");
  for (const o of orders.filter((x) => x.table === table && !x.closed_at)) {
    for (const l of o.lines.filter((x) => ["held", "fired", "started"].includes(x.status))) {
      await rest(tokens.manager, "POST", `/orders/${o.id}/lines/${l.id}/void`, { reason: "test set-up" });
    }
    if (o.lines.some((l) => l.status === "ready")) await rest(tokens.manager, "POST", `/orders/${o.id}/serve`, {});
    await rest(tokens.manager, "POST", `/orders/${o.id}/close`);
  }
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
// Refusals the script provokes on purpose: the browser logs their HTTP status as an error.
const expected = [];
const watch = (page, name) => {
  page.on("pageerror", (e) => problems.push(`${name} page error: ${e.message}`));
  page.on("console", (m) => {
    if (m.type() === "error") {
      const status = m.text().match(/^Failed to load resource: the server responded with a status of (\d+)/)?.[1];
      const i = status ? expected.indexOf(Number(status)) : -1;
      if (i >= 0) expected.splice(i, 1);
      else problems.push(`${name} console error: ${m.text()}`);
    }
    if (m.type() === "warning" && m.text().startsWith("untranslated")) problems.push(`${name}: ${m.text()}`);
  });
  page.on("dialog", (d) => { problems.push(`${name} dialog: ${d.message()}`); d.dismiss(); });
};
const check = () => { if (problems.length) fail(problems.join("; ")); };

try {
  // Without a token: how to pair, and no socket.
  const blank = await browser.newPage({ viewport: { width: 1280, height: 800 }, locale: "en-GB" });
  watch(blank, "unpaired");
  let sockets = 0;
  blank.on("websocket", () => sockets++);
  await blank.goto(`${base}/waiter`);
  await blank.getByText(EN["common.pair_title"]).waitFor({ timeout: 10000 });
  await blank.waitForTimeout(300);
  if (sockets) fail("the tablet opened a websocket without a token");
  await axe(blank, "unpaired");
  await blank.close();

  await freeTable(TABLE);
  const config = (await rest(tokens.manager, "GET", "")).config;
  // The item whose required modifier group is checked: the burger when it has one, else the
  // first item of the menu that has one.
  const hasRequired = (i) => i.modifier_groups?.some((g) => g.required);
  const strict = hasRequired(config.items.find((i) => i.id === "burger"))
    ? config.items.find((i) => i.id === "burger") : config.items.find(hasRequired);
  if (!strict) fail("no item of the menu has a required modifier group");

  const context = await browser.newContext({ viewport: { width: 1280, height: 800 }, locale: "en-GB", hasTouch: true });
  const page = await context.newPage();
  watch(page, "tablet");
  await page.addInitScript(() => {
    window.__sounds = [];
    document.addEventListener("rail:sound", (e) => window.__sounds.push(e.detail));
  });
  await page.goto(`${base}/waiter#token=${tokens.waiter}`);
  await page.waitForSelector('.conn[data-state="live"]', { timeout: 10000 });
  if (page.url().includes("token")) fail("the token stayed in the address bar");
  const tile = page.locator(`.tile[data-table="${TABLE}"]`);
  await tile.waitFor();
  if (await tile.getAttribute("data-state") !== "free") fail(`${TABLE} is not free at the start`);
  await axe(page, "floor");
  await noRawKeys(page, "floor");

  // ---- English -------------------------------------------------------------------------------
  await tile.tap();
  const guestsDialog = page.locator("dialog.ask[open]");
  await guestsDialog.waitFor();
  await axe(page, "guests");
  await guestsDialog.locator('[data-n="2"]').tap();
  await guestsDialog.locator('[data-role="open"]').tap();
  await page.locator("#order-title", { hasText: "Table 4" }).waitFor();
  if (!(await page.locator(".order-head").innerText()).includes(fill(EN["waiter.guests_n"], { n: 2 }))) fail("the order does not say 2 guests");
  await axe(page, "order");

  // An item's required modifier group blocks adding until chosen.
  await page.locator(`.cat[data-category="${strict.category}"]`).tap();
  await page.locator(`[data-item="${strict.id}"]`).tap();
  const chooser = page.locator("dialog.chooser[open]");
  await chooser.waitFor();
  const add = chooser.locator('[data-role="add"]');
  const required = chooser.locator("fieldset.group.required");
  const requiredCount = await required.count();
  if (requiredCount !== strict.modifier_groups.filter((g) => g.required).length) fail(`the chooser of ${strict.name} shows ${requiredCount} required group(s)`);
  if (await add.isEnabled()) fail(`the chooser lets ${strict.name} be added before its required group is chosen`);
  if (!(await chooser.locator(".hint").innerText()).startsWith(fill(EN["ordering.choose_first"], { group: "" }).trim())) fail("the chooser does not say what to choose");
  await axe(page, "chooser");
  for (let i = 0; i < requiredCount; i++) {
    if (i === requiredCount - 1 && !(await add.isDisabled())) fail("adding was allowed with a required group left");
    await required.nth(i).locator(".option").first().tap();
  }
  if (!(await add.isEnabled())) fail("the chooser still blocks adding after the required groups were chosen");
  if (strict.id !== "burger") {
    await chooser.locator("button.cancel").tap();
    await chooser.waitFor({ state: "detached" });
    if (await page.locator(`.draft-line[data-draft="${strict.id}"]`).count()) fail("a cancelled chooser added its item");
    await page.locator('.cat[data-category="mains"]').tap();
    await page.locator('[data-item="burger"]').tap();
  }

  // The burger, with what its groups offer: `max` limits a group's choices.
  const burger = config.items.find((i) => i.id === "burger");
  if (burger.modifier_groups?.length) {
    await chooser.waitFor();
    for (let i = 0; i < await required.count(); i++) await required.nth(i).locator(".option").first().tap();
    const limited = burger.modifier_groups.find((g) => !g.required && g.max);
    if (limited) {
      const options = chooser.locator(`fieldset[data-group="${limited.id}"] .option`);
      const n = await options.count();
      for (let i = 0; i < Math.min(n, limited.max); i++) await options.nth(i).tap();
      if (n > limited.max && await options.nth(limited.max).isEnabled()) fail(`the chooser allows more than ${limited.max} of ${limited.name}`);
    }
    const allergy = burger.modifier_groups.flatMap((g) => g.options.map((o) => ({ g, o }))).find((x) => x.o.allergen);
    if (allergy) await chooser.locator(`fieldset[data-group="${allergy.g.id}"] .option[data-option="${allergy.o.name}"]`).tap();
    await chooser.locator(".free input").fill("no pickles");
    await chooser.locator(".mod-add").tap();
    await add.tap();
    await chooser.waitFor({ state: "detached" });
  }
  const burgerDraft = page.locator('.draft-line[data-draft="burger"]');
  await burgerDraft.waitFor();
  if (burger.modifier_groups?.length && !(await burgerDraft.innerText()).includes("no pickles")) fail("the burger's free-text modifier is not on the line");

  await page.locator('.cat[data-category="starters"]').tap();
  await page.locator('[data-item="caesar"]').tap();
  if (config.items.find((i) => i.id === "caesar").modifier_groups?.length) {
    await chooser.waitFor();
    await add.tap();
    await chooser.waitFor({ state: "detached" });
  }
  await page.locator('.draft-line[data-draft="caesar"]').waitFor();
  await page.locator('[data-focus="send"]').tap();
  await page.locator(".line.st-fired").nth(1).waitFor({ timeout: 10000 });
  if (await page.locator(".draft-line").count()) fail("the sent lines stayed in the draft");
  const lineTexts = await page.locator(".line").allInnerTexts();
  if (!lineTexts.some((x) => x.includes("Bistro Burger")) || !lineTexts.some((x) => x.includes("Caesar Salad"))) fail(`lines shown: ${lineTexts.join(" | ")}`);
  if (await tile.count()) fail("the floor is still shown in the order view");

  const order = await openOrderAt(TABLE);
  if (!order) fail("no open order at t4");
  const grill = await rest(tokens.grill, "GET", "/stations/grill/tickets");
  const grillTicket = grill.find((tk) => tk.order_id === order.id);
  if (!grillTicket?.lines.some((l) => l.item === "burger")) fail(`the grill has no burger of the order: ${JSON.stringify(grill)}`);
  const cold = await rest(tokens.cold, "GET", "/stations/cold/tickets");
  if (!cold.find((tk) => tk.order_id === order.id)?.lines.some((l) => l.item === "caesar")) fail("cold has no caesar of the order");
  const burgerLine = order.lines.find((l) => l.item === "burger");
  if (burger.modifier_groups?.length && !burgerLine.modifiers.includes("no pickles")) fail(`the burger's modifiers did not reach the engine: ${burgerLine.modifiers}`);

  // The check cannot close while food is cooking: the engine's refusal, translated.
  expected.push(409);
  await page.locator('[data-focus="close"]').tap();
  await page.locator("#toast.error", { hasText: EN["ordering.error.order_not_finished"] }).waitFor({ timeout: 5000 });

  // 86 fries and limit the steak, from another device: the open tablet follows.
  await rest(tokens.manager, "PUT", "/86/fries");
  await rest(tokens.manager, "PUT", "/stock/steak", { count: 2 });
  await page.locator('.cat[data-category="sides"]').tap();
  const fries = page.locator('[data-item="fries"]');
  await page.locator('[data-item="fries"].out').waitFor({ timeout: 5000 });
  if ((await fries.locator(".badge").innerText()).trim().split(/\s/)[0] !== "0") fail("86'd fries do not show 0");
  await fries.tap({ force: true }); // greyed (aria-disabled) yet tappable: it says why
  await page.locator("#toast.error", { hasText: fill(EN["ordering.refused_86"], { item: "Fries" }) }).waitFor({ timeout: 5000 });
  if (await page.locator('.draft-line[data-draft="fries"]').count()) fail("86'd fries were added");
  await axe(page, "86");
  await page.locator('.cat[data-category="mains"]').tap();
  await page.locator('[data-item="steak"] .badge', { hasText: fill(EN["ordering.left"], { n: 2 }) }).waitFor({ timeout: 5000 });

  // The kitchen cooks, expo sends: ready to run, with the chime.
  await cookAndSend(order.id);
  const notice = page.locator(`.ready-notice[data-table="${TABLE}"]`);
  await notice.waitFor({ timeout: 10000 });
  const said = await notice.innerText();
  if (!said.includes(fill(EN["waiter.ready_to_run"], { table: "Table 4" }))) fail(`the notice says: ${said}`);
  await page.waitForFunction(() => window.__sounds.includes("ready"), null, { timeout: 5000 });
  await page.locator(".line.st-ready").nth(1).waitFor();
  await axe(page, "ready");
  await noRawKeys(page, "ready");
  await page.screenshot({ path: join(artefacts, "waiter-en.png") });

  // The notice stays until acknowledged: back on the floor it is still there, the tile ready.
  await page.locator('[data-focus="back"]').tap();
  await page.locator(`.tile[data-table="${TABLE}"][data-state="ready"]`).waitFor();
  if (!(await notice.isVisible())) fail("the ready notice went away by itself");
  await notice.locator("button.served").tap();
  await notice.waitFor({ state: "detached", timeout: 10000 });
  await page.locator(`.tile[data-table="${TABLE}"][data-state="open"]`).waitFor({ timeout: 10000 });
  await tile.tap();
  await page.locator(".line.st-served").nth(1).waitFor();
  await page.locator('[data-focus="close"]').tap();
  await page.locator(`.tile[data-table="${TABLE}"][data-state="free"]`).waitFor({ timeout: 10000 });
  const closed = await rest(tokens.manager, "GET", `/orders/${order.id}`);
  if (!closed.closed_at) fail("the check is not closed");
  check();

  // ---- Turkish, switched on the page ---------------------------------------------------------
  await page.locator('.lang button[data-lang="tr"]').tap();
  await page.waitForFunction(() => document.documentElement.lang === "tr");
  await page.locator("#floor-title", { hasText: TR["waiter.floor"] }).waitFor();
  if (await tile.locator(".tile-state").textContent() !== TR["waiter.state.free"]) fail("the free tile is not in Turkish");
  await noRawKeys(page, "floor tr");
  await axe(page, "floor tr");
  await tile.tap();
  await guestsDialog.waitFor();
  if (!(await guestsDialog.innerText()).includes(TR["waiter.how_many"])) fail("the guests dialog is not in Turkish");
  await guestsDialog.locator('[data-n="3"]').tap();
  await guestsDialog.locator('[data-role="open"]').tap();
  await page.locator("#order-title").waitFor();
  await page.locator('.pick[data-focus="seat:2"]').tap();
  await page.locator('.cat[data-category="starters"]').tap();
  await page.locator('[data-item="caesar"]').tap();
  if (await chooser.count()) {
    await add.tap();
    await chooser.waitFor({ state: "detached" });
  }
  await page.locator('.cat[data-category="mains"]').tap();
  await page.locator(`[data-item="${strict.id}"]`).tap();
  await chooser.waitFor();
  if ((await add.textContent()) !== TR["ordering.add_to_order"]) fail("the chooser is not in Turkish");
  await noRawKeys(page, "chooser tr");
  await axe(page, "chooser tr");
  for (let i = 0; i < await required.count(); i++) await required.nth(i).locator(".option").last().tap();
  await add.tap();
  await chooser.waitFor({ state: "detached" });
  await page.locator('.cat[data-category="sides"]').tap();
  await page.locator('[data-item="fries"].out .badge', { hasText: "0" }).waitFor();
  await noRawKeys(page, "order tr");
  await axe(page, "order tr");
  await page.locator('[data-focus="hold"]').tap();
  await page.locator(".line.st-held").nth(1).waitFor({ timeout: 10000 });
  if (!(await page.locator(".line.st-held").first().textContent()).includes(TR["ordering.line.held"])) fail("a held line does not say so in Turkish");
  if (!(await page.locator('[data-focus="send"]').isEnabled())) fail("Send now is not offered for held lines");

  // Void it with a reason.
  await page.locator(`.line:has-text("${strict.name}") button.void`).tap();
  const voidDialog = page.locator("dialog.ask[open]");
  await voidDialog.waitFor();
  await noRawKeys(page, "void tr");
  await axe(page, "void tr");
  await voidDialog.locator('[data-reason="mistake"]').tap();
  await voidDialog.locator('[data-role="void"]').tap();
  await page.locator(`.line.st-voided:has-text("${strict.name}")`).waitFor({ timeout: 10000 });
  await page.locator('[data-focus="fire:1"]').tap();
  await page.locator(".line.st-fired").first().waitFor({ timeout: 10000 });
  const trOrder = await openOrderAt(TABLE);
  if (trOrder.lines[0].seat !== 2) fail(`the seat was not sent: ${JSON.stringify(trOrder.lines[0])}`);
  if (trOrder.lines[1].status !== "voided") fail(`${strict.name} is not voided: ${trOrder.lines[1].status}`);
  await cookAndSend(trOrder.id);
  await notice.waitFor({ timeout: 10000 });
  if (!(await notice.innerText()).includes(fill(TR["waiter.ready_to_run"], { table: "Table 4" }))) fail("the ready notice is not in Turkish");
  await noRawKeys(page, "ready tr");
  await axe(page, "ready tr");
  await page.screenshot({ path: join(artefacts, "waiter-tr.png") });
  await page.locator('[data-focus="serve"]').tap();
  await page.locator(".line.st-served").first().waitFor({ timeout: 10000 });
  await notice.waitFor({ state: "detached", timeout: 10000 });
  await page.locator('[data-focus="close"]').tap();
  await page.locator(`.tile[data-table="${TABLE}"][data-state="free"]`).waitFor({ timeout: 10000 });
  await page.locator("#toast", { hasText: fill(TR["waiter.check_closed"], { table: "Table 4" }) }).waitFor();
  check();
  await context.close();
  console.log("waiter ok");
} finally {
  // Leave the menu as it was for the next script.
  await fetch(`${API}/86/fries`, { method: "DELETE", headers: { authorization: `Bearer ${tokens.manager}` } }).catch(() => {});
  await fetch(`${API}/stock/steak`, { method: "DELETE", headers: { authorization: `Bearer ${tokens.manager}` } }).catch(() => {});
  await browser.close();
}
