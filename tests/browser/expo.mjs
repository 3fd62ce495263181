// Drives the expo screen (/expo) in headless Chromium at 1920x1080: an order of a burger
// (grill and fryer) and a caesar (cold) shows its parts by station; each station's bump ticks
// its part; with every part ready the order turns green, and expo sends it with the keyboard;
// the waiter's side then reads the order ready. Sending too soon is refused with a translated
// message; a manager's expo screen ticks parts from the branch's events. English and Turkish,
// axe-core on every state, screenshots expo-en.png and expo-tr.png.
// Usage: node expo.mjs <base-url> <tokens.json> <artefact-dir>
import { chromium } from "playwright-core";
import fs from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";

const [base, tokensFile, artefacts] = process.argv.slice(2);
if (!artefacts) {
  console.error("usage: node expo.mjs <base-url> <tokens.json> <artefact-dir>");
  process.exit(2);
}
const tokens = JSON.parse(fs.readFileSync(tokensFile, "utf8"));
const here = path.dirname(fileURLToPath(import.meta.url));
const AXE_SOURCE = fs.readFileSync(path.join(here, "node_modules", "axe-core", "axe.min.js"), "utf8");
fs.mkdirSync(artefacts, { recursive: true });
const started = Date.now();
const step = (what) => console.log(`  ${((Date.now() - started) / 1000).toFixed(1)}s ${what}`);
const fail = (msg) => { throw new Error(msg); };

async function rest(token, method, p, body) {
  const res = await fetch(`${base}/api/v1/branches/demo${p}`, {
    method,
    headers: { authorization: `Bearer ${token}`, ...(body !== undefined ? { "content-type": "application/json" } : {}) },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await res.text();
  if (!res.ok) fail(`${method} ${p}: ${res.status} ${text}`);
  return text ? JSON.parse(text) : null;
}

const fire = (order) => rest(tokens.waiter, "POST", "/orders", { ...order, fire: {} });
const ticketAt = (order, station) => order.tickets.find((x) => x.station === station);
const cook = (order, station, action) => rest(tokens[station], "POST", `/stations/${station}/tickets/${ticketAt(order, station).id}/${action}`);

const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM_PATH || "/usr/bin/chromium",
  args: ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync"],
});
const problems = [];

async function screen(name) {
  const context = await browser.newContext({ viewport: { width: 1920, height: 1080 }, locale: "en-US" });
  const page = await context.newPage();
  page.on("pageerror", (e) => problems.push(`${name}: page error: ${e.message}`));
  page.on("console", (m) => {
    if (m.type() === "error") problems.push(`${name}: console error: ${m.text()}`);
    if (m.type() === "warning" && m.text().includes("untranslated")) problems.push(`${name}: ${m.text()}`);
  });
  page.on("dialog", (d) => { problems.push(`${name}: dialog: ${d.message()}`); d.dismiss(); });
  await page.addInitScript(() => {
    window.__sounds = [];
    document.addEventListener("rail:sound", (e) => window.__sounds.push(e.detail));
  });
  return { context, page };
}

function check() {
  if (problems.length) fail(problems.join("\n"));
}

async function axe(page, state) {
  // Evaluated through the driver: the page's policy allows no inline script tag.
  if (!(await page.evaluate(() => typeof window.axe !== "undefined"))) await page.evaluate(AXE_SOURCE);
  const result = await page.evaluate(() => window.axe.run(document, { resultTypes: ["violations"] }));
  const bad = result.violations.filter((v) => v.impact === "serious" || v.impact === "critical");
  if (bad.length) fail(`axe (${state}): ${bad.map((v) => `${v.id} [${v.impact}]: ${v.nodes.slice(0, 3).map((n) => n.target.join(" ")).join(", ")}`).join("; ")}`);
}

async function noRawKeys(page, state) {
  const raw = await page.evaluate(() => {
    const re = /\b(kitchen|expo|common|conn|source)\.[a-z_]+(\.[a-z_A-Z]+)?\b/;
    const found = [];
    const walker = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
    while (walker.nextNode()) if (re.test(walker.currentNode.nodeValue)) found.push(walker.currentNode.nodeValue.trim());
    for (const n of document.querySelectorAll("[aria-label], [title]")) {
      for (const a of ["aria-label", "title"]) if (re.test(n.getAttribute(a) || "")) found.push(`${a}=${n.getAttribute(a)}`);
    }
    if (re.test(document.title)) found.push(`title=${document.title}`);
    return found;
  });
  if (raw.length) fail(`raw catalogue keys (${state}): ${raw.slice(0, 5).join(" | ")}`);
}

const card = (page, id) => page.locator(`.ticket[data-ticket="${id}"]`);
const part = (page, id, station) => card(page, id).locator(`.part[data-station="${station}"]`);

async function onPage(page, id) {
  await page.locator(`.ticket[data-ticket="${id}"], .chip[data-chip="${id}"]`).first().waitFor({ timeout: 10000 });
  if (!(await card(page, id).count())) await page.locator(`.chip[data-chip="${id}"]`).click();
  await card(page, id).waitFor({ timeout: 5000 });
}

async function partState(page, id, station, state, timeout = 8000) {
  await onPage(page, id);
  await page.waitForSelector(`.ticket[data-ticket="${id}"] .part[data-station="${station}"][data-state="${state}"]`, { timeout })
    .catch(async () => fail(`expo: the ${station} part is not ${state}: ${await part(page, id, station).getAttribute("data-state").catch(() => "missing")}`));
}

async function pressNumberOf(page, id) {
  await onPage(page, id);
  const n = (await card(page, id).locator(".pos").textContent()).trim();
  if (/^[1-9]$/.test(n)) {
    await page.keyboard.press(n);
    await page.waitForSelector(`.ticket.selected[data-ticket="${id}"]`, { timeout: 3000 });
    return n;
  }
  // Past the ninth card of a crowded page (tickets left by others): the arrows reach it.
  await page.keyboard.press("Home");
  for (let i = 0; i < 300 && !(await page.locator(`.ticket.selected[data-ticket="${id}"]`).count()); i++) await page.keyboard.press("ArrowRight");
  await page.waitForSelector(`.ticket.selected[data-ticket="${id}"]`, { timeout: 3000 });
  return "→";
}

async function setLang(page, lang) {
  await page.click(`.lang button[data-lang="${lang}"]`);
  await page.waitForFunction((l) => document.documentElement.lang === l, lang);
}

try {
  const { context, page } = await screen("expo");
  await page.goto(`${base}/expo#token=${tokens.expo}`);
  await page.waitForSelector('#conn[data-state="live"]', { timeout: 10000 });
  await page.click("#sound-prompt");
  await setLang(page, "en");
  if ((await page.textContent("#station-name")).trim() !== "Expo") fail("the header does not name the expo station");

  const order = await fire({ table: "t2", guests: 2, lines: [
    { item: "burger", modifiers: ["no onion"], seat: 1 },
    { item: "caesar", note: "dressing on the side", seat: 2 },
  ] });
  const expoId = ticketAt(order, "expo").id;
  await onPage(page, expoId);
  for (const s of ["grill", "fryer", "cold"]) await part(page, expoId, s).waitFor({ timeout: 5000 });
  const stations = await card(page, expoId).locator(".part").evaluateAll((ns) => ns.map((n) => n.dataset.station));
  if (stations.join() !== "grill,fryer,cold") fail(`the expo card's parts are ${stations.join()}`);
  const cardText = await card(page, expoId).innerText();
  for (const w of ["Bistro Burger", "Caesar Salad", "Table 2", "2 guests", "Waiting for the kitchen"]) if (!cardText.includes(w)) fail(`the expo card lacks "${w}": ${cardText}`);
  if (await card(page, expoId).evaluate((n) => n.classList.contains("ready"))) fail("the order is ready before anything was cooked");
  await axe(page, "expo waiting");
  step("expo shows the order's parts: grill, fryer, cold");

  // Sending too soon: the engine refuses, the screen says why.
  await pressNumberOf(page, expoId);
  await page.keyboard.press("Enter");
  await page.waitForSelector("#toast:not([hidden])", { timeout: 5000 });
  const refusal = await page.textContent("#toast");
  if (!refusal.includes("Not every part of this order is ready")) fail(`the early send reads: ${refusal}`);
  step("an early send is refused with a clear message");

  // The grill bumps: its part is ticked, the others are not.
  await cook(order, "grill", "bump");
  await partState(page, expoId, "grill", "ready");
  for (const s of ["fryer", "cold"]) if ((await part(page, expoId, s).getAttribute("data-state")) === "ready") fail(`${s} ticked before it bumped`);
  // The fryer starts: its part is cooking.
  await cook(order, "fryer", "start");
  await partState(page, expoId, "fryer", "cooking");
  step("the grill's bump ticks its part; the fryer's start shows it cooking");

  // Every part done: the order turns green, with its sound.
  const heard = await page.evaluate(() => window.__sounds.length);
  await cook(order, "fryer", "bump");
  await cook(order, "cold", "bump");
  await page.waitForSelector(`.ticket.ready[data-ticket="${expoId}"]`, { timeout: 8000 });
  for (const s of ["grill", "fryer", "cold"]) await partState(page, expoId, s, "ready", 2000);
  await page.waitForFunction((n) => window.__sounds.slice(n).includes("ready"), heard, { timeout: 5000 })
    .catch(() => fail("no 'ready' sound when the order's parts were all ready"));
  if (!/Ready: [1-9]/.test(await page.textContent("#ready-count"))) fail("the header does not count the ready order");
  // The grill recalls its part: the order waits again, until the grill bumps it again.
  await cook(order, "grill", "recall");
  await page.waitForSelector(`.ticket[data-ticket="${expoId}"]:not(.ready)`, { timeout: 5000 });
  await partState(page, expoId, "grill", "cooking");
  await cook(order, "grill", "bump");
  await page.waitForSelector(`.ticket.ready[data-ticket="${expoId}"]`, { timeout: 8000 });
  await axe(page, "expo ready");
  await page.screenshot({ path: path.join(artefacts, "expo-en.png") });
  step("every part bumped: the order is green; a part recalled makes it wait again");

  // Expo sends it with the keyboard; the waiter's side reads the order ready.
  await pressNumberOf(page, expoId);
  await page.keyboard.press("b");
  await card(page, expoId).waitFor({ state: "detached", timeout: 5000 });
  const read = await rest(tokens.waiter, "GET", `/orders/${order.id}`);
  const notReady = read.lines.filter((l) => l.status !== "ready");
  if (notReady.length) fail(`after expo sent it, lines are ${notReady.map((l) => `${l.item}:${l.status}`).join(", ")}`);
  step("expo sent it with the keyboard: the waiter reads every line ready");

  // R recalls the sent order to the pass, H shows the keys.
  await page.keyboard.press("r");
  await onPage(page, expoId);
  await card(page, expoId).locator(".tag.recalled").waitFor({ timeout: 5000 });
  await page.keyboard.press("h");
  await page.waitForSelector("#help[open]");
  const help = await page.locator("#help").innerText();
  if (help.includes("Start the selected ticket")) fail("expo's help offers to start tickets");
  if (!help.includes("Bump the selected ticket")) fail("expo's help lacks the bump key");
  await axe(page, "expo help");
  await page.keyboard.press("Escape");
  await page.waitForSelector("#help", { state: "hidden" });
  await pressNumberOf(page, expoId);
  await page.keyboard.press("Enter");
  await card(page, expoId).waitFor({ state: "detached", timeout: 5000 });
  step("R recalls the sent order; it is sent again");

  // Turkish.
  await setLang(page, "tr");
  const second = await fire({ table: "t1", guests: 4, lines: [{ item: "steak", seat: 1 }, { item: "fries" }, { item: "lemonade" }] });
  const secondId = ticketAt(second, "expo").id;
  await onPage(page, secondId);
  await cook(second, "grill", "bump");
  await partState(page, secondId, "grill", "ready");
  const tr = await card(page, secondId).textContent();
  for (const w of ["Hazır", "Bekliyor", "Mutfak bekleniyor", "4 kişi"]) if (!tr.includes(w)) fail(`no "${w}" in Turkish: ${tr}`);
  if (!(await page.textContent("#ready-count")).includes("Hazır")) fail("the header's count is not in Turkish");
  await noRawKeys(page, "expo (tr)");
  await axe(page, "expo (tr)");
  await page.screenshot({ path: path.join(artefacts, "expo-tr.png") });
  await setLang(page, "en");
  step("Turkish: no raw key");

  // A manager's expo screen follows the branch too: a bump is ticked as it happens.
  const { context: mctx, page: mgr } = await screen("manager expo");
  await mgr.goto(`${base}/expo#token=${tokens.manager}`);
  await mgr.waitForSelector('#conn[data-state="live"]', { timeout: 10000 });
  await setLang(mgr, "en");
  await onPage(mgr, secondId);
  await partState(mgr, secondId, "grill", "ready");
  await cook(second, "fryer", "bump");
  await partState(mgr, secondId, "fryer", "ready", 1500);
  await partState(page, secondId, "fryer", "ready");
  await cook(second, "bar", "bump");
  await mgr.waitForSelector(`.ticket.ready[data-ticket="${secondId}"]`, { timeout: 5000 });
  await axe(mgr, "manager expo");
  await card(mgr, secondId).locator("button.send").click();
  await card(mgr, secondId).waitFor({ state: "detached", timeout: 5000 });
  await card(page, secondId).waitFor({ state: "detached", timeout: 5000 });
  await mctx.close();
  step("a manager's expo ticks the fryer's bump at once and sends with the button");
  check();
  await context.close();
} finally {
  await browser.close();
}
console.log("expo ok");
