// Pairing devices by code, in headless Chromium: a manager on /manage (1280x800) makes a code
// for a grill screen and sees it large with its countdown and a QR code; a kitchen screen
// (/kitchen, 1920x1080, no token) types it into its pairing form (lower case, a space for the
// dash) and comes up as the grill's live screen without a reload (a ticket fired by REST
// appears); the same code typed on a third screen is refused with its message; a `#pair=` link
// pairs a waiter tablet at once; the manager revokes the grill screen in the Devices list (a
// confirm step on the page) and the kitchen page shows that a manager unpaired it within 2 s
// (the server closes its socket). English and Turkish, axe-core on every state shown.
// Screenshots: pairing-en.png, pairing-tr.png (manage), kitchen-pairing-en.png (the kitchen
// pairing view). What it made is put back at the end (its order closed, its devices revoked).
//
// Usage: node pairing.mjs <base-url> <tokens.json> <artefact-dir>
import { chromium } from "playwright-core";
import { readFileSync, mkdirSync } from "node:fs";
import { createRequire } from "node:module";
import path from "node:path";

const [base, tokensFile, outDir] = process.argv.slice(2);
if (!outDir) {
  console.error("usage: node pairing.mjs <base-url> <tokens.json> <artefact-dir>");
  process.exit(2);
}
const tokens = JSON.parse(readFileSync(tokensFile, "utf8"));
mkdirSync(outDir, { recursive: true });
const require = createRequire(import.meta.url);
const axeSource = readFileSync(require.resolve("axe-core/axe.min.js"), "utf8");
const origin = new URL(base).origin;
const started = Date.now();
const run = Math.random().toString(36).slice(2, 7);
const GRILL = `grill-pair-${run}`;
const WAITER = `waiter-pair-${run}`;
const TABLE = "t4";
const CODE = /^[ABCDEFGHJKMNPQRSTUVWXYZ23456789]{4}-[ABCDEFGHJKMNPQRSTUVWXYZ23456789]{4}$/;

const fail = (msg) => { throw new Error(msg); };
const step = (msg) => console.log(`  pairing: ${msg} (${((Date.now() - started) / 1000).toFixed(1)} s)`);

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

const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM_PATH || "/usr/bin/chromium",
  args: ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync"],
});
const desk = { viewport: { width: 1280, height: 800 }, hasTouch: true, locale: "en-GB" };
const kds = { viewport: { width: 1920, height: 1080 }, locale: "en-GB" };
const errors = [];

/** Records page errors, console errors (but HTTP statuses the step expects) and untranslated keys. */
function watch(page, name) {
  page.allow = new Set();
  page.on("pageerror", (e) => errors.push(`${name}: ${e.message}`));
  page.on("dialog", (d) => { errors.push(`${name}: dialog ${d.message()}`); d.dismiss(); });
  page.on("console", (m) => {
    const text = m.text();
    if (text.startsWith("untranslated:")) errors.push(`${name}: ${text}`);
    if (m.type() !== "error") return;
    const status = /status of (\d{3})/.exec(text)?.[1];
    if (status && page.allow.has(Number(status))) return;
    errors.push(`${name}: console error: ${text}`);
  });
  return page;
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

async function noRawKeys(page, label) {
  const raw = await page.evaluate(() => {
    const re = /\b(pairing|manage|kitchen|waiter|ordering|common|conn|source)\.[a-z_]+(\.[a-z_0-9]+)*\b/;
    const hits = [];
    for (const node of document.querySelectorAll("body *")) {
      if (node.closest("[hidden]") || node.closest("script, style")) continue;
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

async function section(page, name) {
  await page.locator(`.side [data-go="${name}"]`).click();
  await page.locator(`#sec-${name}`).waitFor({ state: "visible" });
}

/** Makes a pairing code on the manager's screen; returns {code, link}. */
async function makeCode(page, { role, station, name }) {
  const before = (await page.locator("#code-value").textContent()) || "";
  await page.locator("#tok-role").selectOption(role);
  if (station) await page.locator("#tok-station").selectOption(station);
  await page.locator("#tok-device").fill(name);
  await page.locator("#code-make").click();
  await page.waitForFunction((prev) => {
    const v = document.querySelector("#code-value");
    return v && v.offsetParent && v.textContent && v.textContent !== prev;
  }, before, { timeout: 10000 });
  const code = (await page.textContent("#code-value")).trim();
  if (!CODE.test(code)) fail(`the pairing code reads "${code}"`);
  const link = await page.locator("#code-link").getAttribute("href");
  return { code, link };
}

async function tr(page) {
  await page.locator('.lang button[data-lang="tr"]').click();
  await page.waitForFunction(() => document.documentElement.lang === "tr");
}

let orderId = null;
let okLine = null;
try {
  // ----- The manager makes a code for a grill screen.
  const mctx = await browser.newContext(desk);
  const manage = watch(await mctx.newPage(), "manage");
  await manage.goto(`${base}/manage#token=${tokens.manager}`);
  await manage.locator('#conn[data-state="live"]').waitFor({ timeout: 10000 });
  await section(manage, "devices");
  await manage.locator("#h-device-list", { hasText: "Paired devices" }).waitFor();
  await axe(manage, "devices");
  const grill = await makeCode(manage, { role: "kitchen", station: "grill", name: GRILL });
  if (grill.link !== `${origin}/kitchen#pair=demo:${grill.code}`) fail(`the grill code's link is ${grill.link}`);
  const timer = await manage.textContent("#code-timer");
  if (!/^Expires in (10:00|9:[0-5]\d)$/.test(timer.trim())) fail(`the countdown reads "${timer}"`);
  if (!(await manage.textContent("#h-code")).includes(GRILL)) fail("the code's panel does not name the device");
  if ((await manage.textContent("#code-branch")).trim() !== "demo") fail("the code's panel does not name the branch");
  await manage.locator("#code-qr svg.qr-code path").waitFor();
  const fontSize = await manage.locator("#code-value").evaluate((n) => parseFloat(getComputedStyle(n).fontSize));
  if (fontSize < 60) fail(`the code is shown at ${fontSize}px`);
  await manage.waitForTimeout(1500);
  const later = (await manage.textContent("#code-timer")).trim();
  if (later === timer.trim()) fail(`the countdown does not count down: ${timer} then ${later}`);
  await axe(manage, "pairing code");
  await noRawKeys(manage, "manage en");
  await manage.screenshot({ path: path.join(outDir, "pairing-en.png") });
  step(`code ${grill.code} for ${GRILL}: large, counting down (${later}), with a QR code of ${grill.link}`);

  // ----- A kitchen screen without a token types it.
  const kctx = await browser.newContext(kds);
  const kitchen = watch(await kctx.newPage(), "kitchen");
  let loads = 0;
  kitchen.on("load", () => loads++);
  await kitchen.goto(`${base}/kitchen`);
  await kitchen.locator("#pair-code").waitFor({ timeout: 10000 });
  if (!(await kitchen.locator(".signin").innerText()).includes("not paired")) fail("the kitchen page does not say it is not paired");
  if ((await kitchen.inputValue("#pair-branch")) !== "") fail("a fresh screen prefills a branch");
  await kitchen.locator("#pair-branch").fill("demo");
  await axe(kitchen, "kitchen pairing view");
  await noRawKeys(kitchen, "kitchen pairing en");
  await kitchen.screenshot({ path: path.join(outDir, "kitchen-pairing-en.png") });
  await kitchen.locator("#pair-code").click();
  await kitchen.locator("#pair-code").pressSequentially(grill.code.toLowerCase().replace("-", " "));
  const typed = await kitchen.inputValue("#pair-code");
  if (typed !== grill.code) fail(`the code field shows "${typed}" for "${grill.code.toLowerCase().replace("-", " ")}"`);
  await kitchen.keyboard.press("Enter");
  await kitchen.locator('#conn[data-state="live"]').waitFor({ timeout: 10000 });
  await kitchen.locator("#station-name", { hasText: "Grill" }).waitFor({ timeout: 5000 });
  if (loads !== 1) fail(`the kitchen page loaded ${loads} times to pair`);
  if (await kitchen.locator("#pair-code").count()) fail("the pairing form stays on the paired screen");
  const order = await rest(tokens.manager, "POST", "/orders", { table: TABLE, lines: [{ item: "steak", note: `pairing ${run}` }], fire: {} });
  orderId = order.id;
  const ticket = order.tickets.find((tk) => tk.station === "grill");
  await kitchen.locator(`#board .ticket[data-ticket="${ticket.id}"]`).waitFor({ timeout: 10000 });
  step("the kitchen screen paired by the typed code without a reload: live as the grill, the fired ticket on it");

  await manage.locator('#code-result[data-state="paired"]').waitFor({ timeout: 10000 });
  if (!(await manage.textContent("#code-timer")).includes(`${GRILL} is now paired`)) fail("the manager is not told the code was used");
  const row = manage.locator(`#device-rows tr[data-name="${GRILL}"]`);
  await row.waitFor({ timeout: 5000 });
  const rowText = await row.innerText();
  if (!rowText.includes("Kitchen screen") || !rowText.includes("Grill") || !rowText.includes("Active")) fail(`the grill's row reads ${rowText}`);
  await axe(manage, "code used");
  step("the manager's screen says the code was used; the grill is in the device list");

  // ----- The same code again, on a third screen: refused with its message.
  const xctx = await browser.newContext(kds);
  const third = watch(await xctx.newPage(), "third");
  let sockets = 0;
  third.on("websocket", () => sockets++);
  await third.goto(`${base}/kitchen?branch=demo`);
  await third.locator("#pair-code").waitFor({ timeout: 10000 });
  if ((await third.inputValue("#pair-branch")) !== "demo") fail("?branch= does not prefill the branch");
  // A look-alike is caught before it costs a try.
  await third.locator("#pair-code").fill("OO11-IILL");
  await third.locator("#pair-submit").click();
  await third.locator("#pair-error", { hasText: "never contain 0, O, 1, I or L" }).waitFor({ timeout: 5000 });
  third.allow = new Set([401]);
  await third.locator("#pair-code").fill(grill.code);
  await third.locator("#pair-submit").click();
  await third.locator("#pair-error", { hasText: "This code is not valid: it was mistyped, used already or is over 10 minutes old" }).waitFor({ timeout: 5000 });
  await axe(third, "code refused");
  await tr(third);
  await third.locator("#pair-error", { hasText: "Bu kod geçerli değil" }).waitFor({ timeout: 5000 });
  if (!(await third.textContent("#pair-submit")).includes("Bu cihazı eşleştir")) fail("the pairing form is not in Turkish");
  await noRawKeys(third, "refused code tr");
  await axe(third, "code refused, Turkish");
  if (sockets) fail("an unpaired screen opened a websocket");
  await xctx.close();
  step("the code used once is refused on a third screen, in English and Turkish");

  // ----- A `#pair=` link pairs a waiter tablet at once.
  const waiterCode = await makeCode(manage, { role: "waiter", name: WAITER });
  if (waiterCode.link !== `${origin}/waiter#pair=demo:${waiterCode.code}`) fail(`the waiter code's link is ${waiterCode.link}`);
  const wctx = await browser.newContext(desk);
  const tablet = watch(await wctx.newPage(), "waiter");
  await tablet.goto(waiterCode.link);
  await tablet.locator('#conn[data-state="live"]').waitFor({ timeout: 10000 });
  await tablet.locator(`[data-table="${TABLE}"]`).waitFor({ timeout: 10000 });
  if (tablet.url().includes("pair=")) fail(`the pairing code stayed in the address bar: ${tablet.url()}`);
  await manage.locator('#code-result[data-state="paired"]').waitFor({ timeout: 10000 });
  await manage.locator(`#device-rows tr[data-name="${WAITER}"]`).waitFor({ timeout: 5000 });
  step("a #pair= link paired the waiter tablet at once (the code left the address bar)");

  // ----- The manager revokes the grill screen: its page is unpaired within 2 s.
  await row.locator('button[data-kind="revoke"]').click();
  const confirm = manage.locator("#device-rows tr.confirm-row");
  await confirm.waitFor({ timeout: 5000 });
  if (!(await confirm.innerText()).includes(`Unpair ${GRILL}?`)) fail(`the confirm step reads ${await confirm.innerText()}`);
  await axe(manage, "revoke confirm");
  // Cancel first: nothing happens.
  await confirm.locator('button[data-kind="cancel"]').click();
  await confirm.waitFor({ state: "detached" });
  if (!(await row.innerText()).includes("Active")) fail("cancelling the revoke changed the device");
  await row.locator('button[data-kind="revoke"]').click();
  await confirm.waitFor();
  kitchen.allow = new Set([401]);
  const revokedAt = Date.now();
  await confirm.locator('button[data-kind="confirm"]').click();
  await kitchen.locator(".pairing", { hasText: "This screen was unpaired by a manager" }).waitFor({ timeout: 2000 });
  const took = Date.now() - revokedAt;
  await kitchen.locator("#pair-code").waitFor();
  if ((await kitchen.inputValue("#pair-branch")) !== "demo") fail("the unpaired screen does not keep its branch");
  if ((await kitchen.getAttribute("#conn", "data-state")) !== "signin") fail("the unpaired screen's badge is not 'Not paired'");
  await manage.locator(`#device-rows tr[data-name="${GRILL}"].status-revoked`, { hasText: "Unpaired" }).waitFor({ timeout: 5000 });
  await axe(kitchen, "unpaired by a manager");
  await noRawKeys(kitchen, "unpaired en");
  step(`revoked from the device list (after a confirm on the page): the kitchen page said so in ${took} ms`);

  // In Turkish, then after a reload: the token is forgotten, the branch kept.
  await tr(kitchen);
  await kitchen.locator(".pairing", { hasText: "Bu ekranın eşleşmesini bir yönetici kaldırdı" }).waitFor({ timeout: 5000 });
  await noRawKeys(kitchen, "unpaired tr");
  await axe(kitchen, "unpaired by a manager, Turkish");
  let kitchenSockets = 0;
  kitchen.on("websocket", () => kitchenSockets++);
  await kitchen.reload();
  await kitchen.locator("#pair-code").waitFor({ timeout: 10000 });
  if ((await kitchen.inputValue("#pair-branch")) !== "demo") fail("the branch is not prefilled from the last one used");
  await kitchen.waitForTimeout(300);
  if (kitchenSockets) fail("the revoked screen opened a websocket after a reload");
  if (!(await kitchen.textContent("#pair-submit")).includes("Bu cihazı eşleştir")) fail("the language was not kept");
  step("the revoked screen stays unpaired after a reload, its branch prefilled, in Turkish");

  // ----- The manager's screen in Turkish.
  await tr(manage);
  await manage.locator("#h-device-list", { hasText: "Eşleşik cihazlar" }).waitFor({ timeout: 5000 });
  await manage.locator(`#device-rows tr[data-name="${GRILL}"]`, { hasText: "Kaldırıldı" }).waitFor({ timeout: 5000 });
  const trCode = await makeCode(manage, { role: "pos", name: `pos-pair-${run}` });
  if (trCode.link !== `${origin}/pos#pair=demo:${trCode.code}`) fail(`the POS code's link is ${trCode.link}`);
  if (!/^Kalan süre: (10:00|9:[0-5]\d)$/.test((await manage.textContent("#code-timer")).trim())) fail(`the Turkish countdown reads ${await manage.textContent("#code-timer")}`);
  if (!(await manage.textContent("#code-make")).includes("Eşleştirme kodu göster")) fail("the code button is not in Turkish");
  await noRawKeys(manage, "manage tr");
  await axe(manage, "devices, Turkish");
  await manage.evaluate(() => window.scrollTo(0, 0));
  await manage.screenshot({ path: path.join(outDir, "pairing-tr.png") });
  step("the Devices section in Turkish");

  checkErrors();
  await mctx.close();
  await kctx.close();
  await wctx.close();
  okLine = `pairing ok: a grill screen paired by a typed code in ${((Date.now() - started) / 1000).toFixed(1)} s total, the used code refused, a waiter paired by link, the grill unpaired in ${took} ms`;
} finally {
  // Put back what this test made: its order closed, its devices unpaired.
  try {
    if (orderId) {
      const o = await rest(tokens.manager, "GET", `/orders/${orderId}`);
      if (!o.closed_at) {
        for (const l of o.lines.filter((x) => !["served", "voided"].includes(x.status))) {
          await rest(tokens.manager, "POST", `/orders/${orderId}/lines/${l.id}/void`, { reason: "browser test" });
        }
        await rest(tokens.manager, "POST", `/orders/${orderId}/close`);
      }
    }
    for (const d of await rest(tokens.manager, "GET", "/devices")) {
      if (d.name.endsWith(`-pair-${run}`) && !d.revoked_at) await rest(tokens.manager, "POST", `/devices/${d.device}/revoke`);
    }
  } catch (e) {
    console.error(`  pairing: putting the branch back: ${e.message}`);
  }
  await browser.close();
}
console.log(okLine);
