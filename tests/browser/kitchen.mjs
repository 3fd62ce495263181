// Drives the kitchen display (/kitchen) in headless Chromium at 1920x1080, as a cook and a bump
// bar would: tickets fired by REST land on the grill's screen (only its own lines, "also at"
// the fryer, allergies marked), a rush comes first, a void strikes its line, a move tags the
// ticket, each with its own sound; the keys select, bump, recall, show the all-day and the help
// (and can be changed); the age is right with the device's clock 10 minutes off and turns late
// with small thresholds; a network cut through a TCP proxy shows the red banner and loses or
// doubles no ticket; English and Turkish, axe-core on every state, screenshots.
// Usage: node kitchen.mjs <base-url> <tokens.json> <artefact-dir>
import { chromium } from "playwright-core";
import net from "node:net";
import fs from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";

const [base, tokensFile, artefacts] = process.argv.slice(2);
if (!artefacts) {
  console.error("usage: node kitchen.mjs <base-url> <tokens.json> <artefact-dir>");
  process.exit(2);
}
const tokens = JSON.parse(fs.readFileSync(tokensFile, "utf8"));
const here = path.dirname(fileURLToPath(import.meta.url));
const AXE_SOURCE = fs.readFileSync(path.join(here, "node_modules", "axe-core", "axe.min.js"), "utf8");
fs.mkdirSync(artefacts, { recursive: true });
const started = Date.now();
const step = (what) => console.log(`  ${((Date.now() - started) / 1000).toFixed(1)}s ${what}`);
const fail = (msg) => { throw new Error(msg); };

// ---------------------------------------------------------------------------------------------
// REST, as the test's other devices (a waiter, the grill's cooks, a manager) call it

async function rest(token, method, p, body, branch = "demo") {
  const res = await fetch(`${base}/api/v1/branches/${branch}${p}`, {
    method,
    headers: { authorization: `Bearer ${token}`, ...(body !== undefined ? { "content-type": "application/json" } : {}) },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await res.text();
  const data = text ? JSON.parse(text) : null;
  if (!res.ok) {
    const e = new Error(`${method} ${p}: ${res.status} ${text}`);
    e.code = data?.error?.code;
    e.status = res.status;
    throw e;
  }
  return data;
}

const fire = (order, branch = "demo", token = tokens.waiter) => rest(token, "POST", "/orders", { ...order, fire: {} }, branch);
const ticketAt = (order, station) => order.tickets.find((x) => x.station === station);
const lineOf = (order, item) => order.lines.find((l) => l.item === item);

// ---------------------------------------------------------------------------------------------
// The browser

const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM_PATH || "/usr/bin/chromium",
  args: ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync"],
});
const problems = [];

/** A fresh device (its own storage) with one page, every error and untranslated key noted. */
async function screen(name, { clockOffsetMs = 0, locale = "en-US", cutNetwork = false } = {}) {
  const context = await browser.newContext({ viewport: { width: 1920, height: 1080 }, locale });
  const page = await context.newPage();
  page.on("pageerror", (e) => problems.push(`${name}: page error: ${e.message}`));
  page.on("console", (m) => {
    // The screen that goes through the test's proxy (which the test cuts) hears the browser
    // report each refused reconnect, and each read of an order the cut interrupted (the
    // screen reads it again once the network is back).
    const refused = cutNetwork && (/^WebSocket connection to .* failed/.test(m.text())
      || /^Failed to load resource: net::ERR_(CONNECTION_RESET|CONNECTION_REFUSED|EMPTY_RESPONSE|CONNECTION_CLOSED)/.test(m.text()));
    if (m.type() === "error" && !refused) problems.push(`${name}: console error: ${m.text()}`);
    if (m.type() === "warning" && m.text().includes("untranslated")) problems.push(`${name}: ${m.text()}`);
  });
  page.on("dialog", (d) => { problems.push(`${name}: dialog: ${d.message()}`); d.dismiss(); });
  await page.addInitScript((offset) => {
    // What the page plays, as the test hears it.
    window.__sounds = [];
    document.addEventListener("rail:sound", (e) => window.__sounds.push(e.detail));
    if (offset) {
      // This device's clock is wrong by `offset`.
      const RealDate = Date;
      class SkewedDate extends RealDate {
        constructor(...args) {
          if (args.length === 0) super(RealDate.now() + offset);
          else super(...args);
        }
        static now() { return RealDate.now() + offset; }
      }
      globalThis.Date = SkewedDate;
    }
  }, clockOffsetMs);
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
  if (bad.length) {
    fail(`axe (${state}): ${bad.map((v) => `${v.id} [${v.impact}]: ${v.nodes.slice(0, 3).map((n) => n.target.join(" ")).join(", ")}`).join("; ")}`);
  }
}

/** No catalogue key shows as text or in a label. */
async function noRawKeys(page, state) {
  const raw = await page.evaluate(() => {
    const re = /\b(kitchen|expo|common|conn|source)\.[a-z_]+(\.[a-z_A-Z]+)?\b/;
    const found = [];
    const walker = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
    while (walker.nextNode()) if (re.test(walker.currentNode.nodeValue)) found.push(walker.currentNode.nodeValue.trim());
    for (const n of document.querySelectorAll("[aria-label], [title], [placeholder]")) {
      for (const a of ["aria-label", "title", "placeholder"]) if (re.test(n.getAttribute(a) || "")) found.push(`${a}=${n.getAttribute(a)}`);
    }
    if (re.test(document.title)) found.push(`title=${document.title}`);
    return found;
  });
  if (raw.length) fail(`raw catalogue keys (${state}): ${raw.slice(0, 5).join(" | ")}`);
}

const card = (page, id) => page.locator(`.ticket[data-ticket="${id}"]`);
const sounds = (page) => page.evaluate(() => window.__sounds.slice());

async function waitSound(page, kind, since) {
  await page.waitForFunction(([k, n]) => window.__sounds.slice(n).includes(k), [kind, since], { timeout: 5000 })
    .catch(() => fail(`no "${kind}" sound`));
}

/** Brings a ticket onto the page (tapping its chip in the queue when it is on another). */
async function onPage(page, id) {
  await page.locator(`.ticket[data-ticket="${id}"], .chip[data-chip="${id}"]`).first().waitFor({ timeout: 10000 });
  if (!(await card(page, id).count())) await page.locator(`.chip[data-chip="${id}"]`).click();
  await card(page, id).waitFor({ timeout: 5000 });
}

/** Presses the number printed on the ticket's card, as a cook on a bump bar does. */
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

// ---------------------------------------------------------------------------------------------
// A TCP proxy between the browser and the engine, to cut the network

async function proxy(target) {
  const up = new URL(target);
  const sockets = new Set();
  let refusing = false;
  const server = net.createServer((client) => {
    if (refusing) {
      client.destroy();
      return;
    }
    const upstream = net.connect(Number(up.port || 80), up.hostname);
    sockets.add(client);
    sockets.add(upstream);
    const end = () => {
      client.destroy();
      upstream.destroy();
      sockets.delete(client);
      sockets.delete(upstream);
    };
    client.on("error", end).on("close", end);
    upstream.on("error", end).on("close", end);
    client.pipe(upstream);
    upstream.pipe(client);
  });
  await new Promise((r) => server.listen(0, "127.0.0.1", r));
  return {
    url: `http://127.0.0.1:${server.address().port}`,
    cut() {
      refusing = true;
      for (const s of sockets) s.destroy();
      sockets.clear();
    },
    restore() { refusing = false; },
    close() {
      for (const s of sockets) s.destroy();
      server.close();
    },
  };
}

// ---------------------------------------------------------------------------------------------

let restoreConfig = null;
const cleanups = [];
try {
  // ----- Without a token: how to pair, and no socket.
  {
    const { context, page } = await screen("unpaired");
    let sockets = 0;
    page.on("websocket", () => sockets++);
    await page.goto(`${base}/kitchen`);
    await page.locator(".signin h2").waitFor({ timeout: 10000 });
    const said = await page.locator(".signin").innerText();
    if (!said.includes("not paired")) fail(`no pairing help without a token: ${said}`);
    await page.waitForTimeout(300);
    if (sockets) fail("the kitchen page opened a websocket without a token");
    await axe(page, "unpaired");
    await context.close();
    step("unpaired screen shows how to pair");
  }

  // ----- A screen paired without a station picks one, and keeps the choice.
  {
    const { context, page } = await screen("kitchen without a station");
    await page.goto(`${base}/kitchen#token=${tokens.kitchen}`);
    await page.locator(".picker").waitFor({ timeout: 10000 });
    await axe(page, "station picker");
    await page.click('.picker button[data-station="fryer"]');
    await page.waitForFunction(() => document.querySelector("#station-name")?.textContent === "Fryer");
    await page.waitForSelector('#conn[data-state="live"]', { timeout: 10000 });
    await page.reload();
    await page.waitForSelector('#conn[data-state="live"]', { timeout: 10000 });
    if (await page.locator(".picker").count()) fail("the station chosen on this screen was not remembered");
    if ((await page.textContent("#station-name")) !== "Fryer") fail("the remembered station is not the fryer");
    await page.goto(`${base}/kitchen?station=cold`);
    await page.waitForFunction(() => document.querySelector("#station-name")?.textContent === "Cold", null, { timeout: 10000 });
    await page.waitForSelector('#conn[data-state="live"]', { timeout: 10000 });
    check();
    await context.close();
    step("a screen without a station picks the fryer, keeps it, and ?station=cold chooses the cold station");
  }

  // ----- The grill's screen, its device clock 10 minutes fast.
  const { context, page } = await screen("grill", { clockOffsetMs: 10 * 60 * 1000 });
  await page.goto(`${base}/kitchen#token=${tokens.grill}`);
  await page.waitForSelector('#conn[data-state="live"]', { timeout: 10000 });
  if (page.url().includes("token=")) fail("the token stayed in the address bar");
  if (!(await page.isVisible("#sound-prompt"))) fail("no 'tap to enable sound' prompt before the first tap");
  await page.click("#sound-prompt");
  await page.waitForSelector("#sound-prompt", { state: "hidden" });
  await setLang(page, "en");
  const stationTitle = await page.textContent("#station-name");
  if (stationTitle.trim() !== "Grill") fail(`the header names ${stationTitle}, not the grill`);

  // A burger (grill and fryer), a steak (grill) and a caesar (cold).
  let heard = (await sounds(page)).length;
  const a = await fire({ table: "t4", guests: 2, lines: [
    { item: "burger", modifiers: ["No onion", "Nut allergy"], seat: 1 },
    { item: "steak", note: "well done", seat: 2 },
    { item: "caesar", seat: 1 },
  ] });
  const aGrill = ticketAt(a, "grill").id;
  await onPage(page, aGrill);
  const aCard = card(page, aGrill);
  const text = await aCard.innerText();
  if (!text.includes("Bistro Burger") || !text.includes("Ribeye Steak")) fail(`the grill's ticket lacks its lines: ${text}`);
  if (text.includes("Caesar")) fail("the grill's screen shows the cold station's caesar");
  if (await page.locator(`.ticket[data-order="${a.id}"]`).count() !== 1) fail("the order shows more than one ticket on the grill");
  if (!text.includes("Table 4")) fail(`no table name on the ticket: ${text}`);
  if (!(await aCard.locator(".tag.src-dine_in").count())) fail("no source tag on the ticket");
  if (!text.includes("2 guests")) fail(`no guests on the ticket: ${text}`);
  const also = await aCard.locator('.line[data-item="burger"] .also').innerText();
  if (!also.includes("Fryer")) fail(`the burger is not "also at" the fryer: ${also}`);
  if (await aCard.locator('.line[data-item="steak"] .also').count()) fail("the steak says it is made elsewhere too");
  if (!(await aCard.locator('.line.allergy[data-item="burger"] .mod.allergen').count())) fail("the nut allergy is not highlighted");
  await waitSound(page, "new", heard);
  // The age comes from the server's clock: not ten minutes, not negative, not late.
  await page.waitForTimeout(1200);
  const age = (await aCard.locator(".timer").innerText()).trim();
  if (!/^0:[0-5]\d$/.test(age)) fail(`a fresh ticket's age reads ${age} with the device clock 10 minutes fast`);
  if (await aCard.evaluate((n) => n.classList.contains("late") || n.classList.contains("warning"))) fail("a fresh ticket is coloured late");
  step(`the grill shows its ticket ${a.ticket_no} (age ${age}, device clock +10 min)`);

  // A rush comes first.
  const b = await fire({ table: "takeaway", priority: true, lines: [{ item: "steak" }] });
  const bGrill = ticketAt(b, "grill").id;
  await onPage(page, bGrill);
  await onPage(page, aGrill);
  await page.keyboard.press("Home");
  const order = await page.$$eval(".ticket, .chip", (ns) => ns.map((n) => n.dataset.ticket || n.dataset.chip));
  if (order.indexOf(bGrill) > order.indexOf(aGrill)) fail("the rush ticket is not before the older one");
  const rushTag = await page.locator(`.ticket[data-ticket="${bGrill}"] .tag.rush, .chip.rush[data-chip="${bGrill}"]`).count();
  if (!rushTag) fail("the rush ticket is not marked RUSH");
  step("a rush comes first, marked");

  // A void strikes the line and tags the ticket, with its sound.
  heard = (await sounds(page)).length;
  await rest(tokens.waiter, "POST", `/orders/${a.id}/lines/${lineOf(a, "steak").id}/void`, { reason: "guest changed mind" });
  await onPage(page, aGrill);
  await aCard.locator('.line.voided[data-item="steak"] .tag.void').waitFor({ timeout: 5000 });
  await aCard.locator(".tag.modified").waitFor({ timeout: 5000 });
  await waitSound(page, "voided", heard);
  if (await aCard.locator('.line.voided[data-item="burger"]').count()) fail("the burger was struck too");
  // A ticket whose every line is voided stays a moment, struck and tagged VOID.
  const d = await fire({ table: "t1", lines: [{ item: "salmon" }] });
  const dGrill = ticketAt(d, "grill").id;
  await onPage(page, dGrill);
  heard = (await sounds(page)).length;
  await rest(tokens.waiter, "POST", `/orders/${d.id}/lines/${lineOf(d, "salmon").id}/void`, {});
  await page.waitForSelector(`.ticket.voided[data-ticket="${dGrill}"] .t-tags .tag.void`, { timeout: 5000 });
  if (await card(page, dGrill).locator("button.bump").count()) fail("a voided ticket offers to bump it");
  await waitSound(page, "voided", heard);
  step("a void strikes its line, tags the ticket MODIFIED, sounds; a fully voided ticket reads VOID");

  // A move is a change: the table and where it came from, and its sound.
  heard = (await sounds(page)).length;
  await rest(tokens.waiter, "POST", `/orders/${a.id}/move`, { table: "t3" });
  await aCard.locator(".moved").waitFor({ timeout: 5000 });
  const moved = await aCard.innerText();
  if (!moved.includes("Moved from Table 4") || !moved.includes("Table 3")) fail(`the moved ticket reads: ${moved}`);
  await waitSound(page, "changed", heard);
  step("a move shows the new table and where it came from, sounds");
  await axe(page, "tickets");
  await noRawKeys(page, "tickets (en)");
  await page.screenshot({ path: path.join(artefacts, "kitchen-en.png") });

  // The all-day panel (A) counts what the station has to cook.
  await page.keyboard.press("a");
  await page.waitForSelector("#allday:not([hidden])");
  const expected = await rest(tokens.grill, "GET", "/stations/grill/all-day");
  const burger = expected.items.find((i) => i.item === "burger");
  if (!burger) fail("the engine's all-day has no burger");
  await page.waitForFunction((q) => document.querySelector('#allday tr[data-item="burger"] td.qty')?.textContent === String(q), burger.quantity, { timeout: 5000 })
    .catch(() => fail(`the all-day panel does not count ${burger.quantity} burger(s)`));
  // The cook 86es the salmon from the panel; every device is told, and it comes back.
  cleanups.push(() => rest(tokens.manager, "DELETE", "/86/salmon"));
  await page.click('#stock-list .stock-row[data-item="salmon"] button');
  await page.waitForSelector('#stock-list .stock-row.is-out[data-item="salmon"]', { timeout: 5000 });
  if (!(await rest(tokens.waiter, "GET", "")).eighty_sixed.includes("salmon")) fail("the 86 from the panel did not reach the engine");
  await axe(page, "all-day");
  await page.click('#stock-list .stock-row[data-item="salmon"] button');
  await page.waitForSelector('#stock-list .stock-row:not(.is-out)[data-item="salmon"]', { timeout: 5000 });
  if ((await rest(tokens.waiter, "GET", "")).eighty_sixed.includes("salmon")) fail("the salmon did not come back on");
  await page.keyboard.press("a");
  await page.waitForSelector("#allday", { state: "hidden" });
  step(`the all-day (A) counts ${burger.quantity} burger(s); the salmon is 86'd from it and put back`);

  // M mutes, and again brings the sound back.
  await page.keyboard.press("m");
  await page.waitForSelector('#btn-mute[aria-pressed="true"]');
  if (!(await page.textContent("#btn-mute")).includes("Sound off")) fail("the mute toggle does not say the sound is off");
  await page.click("#btn-mute");
  await page.waitForSelector('#btn-mute[aria-pressed="false"]');

  // The help (H) lists the keys.
  await page.keyboard.press("h");
  await page.waitForSelector("#help[open]");
  const help = await page.locator("#help").innerText();
  for (const k of ["Enter", "B", "S", "R", "PgUp", "PgDn", "A", "?", "Bump the selected ticket", "Recall the last bumped ticket"]) {
    if (!help.includes(k)) fail(`the help does not list "${k}": ${help}`);
  }
  await axe(page, "help");
  await page.keyboard.press("Escape");
  await page.waitForSelector("#help", { state: "hidden" });

  // The key map is this screen's to change (and to reset).
  await page.click("#btn-settings");
  await page.waitForSelector("#settings[open]");
  await axe(page, "key settings");
  await page.click('#settings .set-row[data-action="start"] button');
  await page.keyboard.press("x");
  await page.waitForFunction(() => document.querySelector('#settings .set-row[data-action="start"] kbd')?.textContent === "X");
  await page.click("#settings .close");
  await page.keyboard.press("?");
  await page.waitForSelector("#help[open]");
  if (!(await page.locator('#help .key-row[data-action="start"]').innerText()).includes("X")) fail("the help does not show the changed key");
  await page.click("#help-settings");
  await page.waitForSelector("#settings[open]");
  await page.click("#keys-reset");
  await page.waitForFunction(() => document.querySelector('#settings .set-row[data-action="start"] kbd')?.textContent === "S");
  await page.keyboard.press("Escape");
  await page.waitForSelector("#settings", { state: "hidden" });
  step("the help (H) lists the keys; the key map can be changed and reset");

  // The cook selects the ticket by its number and bumps it with Enter; R brings it back.
  const n = await pressNumberOf(page, aGrill);
  await page.keyboard.press("Enter");
  await aCard.waitFor({ state: "detached", timeout: 5000 });
  await page.keyboard.press("r");
  await onPage(page, aGrill);
  await aCard.locator(".tag.recalled").waitFor({ timeout: 5000 });
  step(`"${n}" then Enter bumped the ticket; R recalled it, tagged RECALLED`);

  // S starts the selected ticket (the rush); a tap selects, B bumps; the Bump button bumps.
  await pressNumberOf(page, bGrill);
  await page.keyboard.press("s");
  await page.waitForSelector(`.ticket.status-started[data-ticket="${bGrill}"]`, { timeout: 5000 });
  await card(page, bGrill).locator(".t-meta").click();
  await page.waitForSelector(`.ticket.selected[data-ticket="${bGrill}"]`);
  await page.keyboard.press("b");
  await card(page, bGrill).waitFor({ state: "detached", timeout: 5000 });
  await onPage(page, aGrill);
  await aCard.locator("button.bump").click();
  await aCard.waitFor({ state: "detached", timeout: 5000 });
  // R again recalls the last one bumped here, and again the one before.
  await page.keyboard.press("r");
  await onPage(page, aGrill);
  await page.keyboard.press("r");
  await onPage(page, bGrill);
  await card(page, bGrill).locator(".tag.recalled").waitFor();
  step("S starts, a tap selects and B bumps, the card's Bump bumps; R, R recall both in turn");

  // The recall list: what was bumped lately.
  await onPage(page, aGrill);
  await card(page, aGrill).locator("button.bump").click();
  await card(page, aGrill).waitFor({ state: "detached", timeout: 5000 });
  await page.keyboard.press("l");
  await page.waitForSelector(`#recalls[open] [data-recall="${aGrill}"]`, { timeout: 5000 });
  await axe(page, "recall list");
  await page.keyboard.press("Escape");
  await onPage(page, bGrill);
  await card(page, bGrill).locator("button.bump").click();
  await card(page, bGrill).waitFor({ state: "detached", timeout: 5000 });
  // Another grill screen, fresh: the station's recent bumps come from the engine.
  const listed = await rest(tokens.grill, "GET", "/stations/grill/bumped?minutes=30").catch((e) => (e.status === 404 ? null : Promise.reject(e)));
  if (listed) {
    const { context: other, page: fresh } = await screen("another grill screen");
    await fresh.goto(`${base}/kitchen#token=${tokens.grill}`);
    await fresh.waitForSelector('#conn[data-state="live"]', { timeout: 10000 });
    await fresh.click("#btn-recalls");
    await fresh.waitForSelector(`#recalls[open] [data-recall="${aGrill}"]`, { timeout: 5000 })
      .catch(() => fail("a fresh grill screen's recall list lacks the ticket bumped on the other"));
    await fresh.keyboard.press("Escape");
    await other.close();
  }
  step(`the recall list shows the bumped ticket${listed ? ", on a fresh screen too (from the engine)" : ""}`);

  // Turkish, switched on the page.
  await setLang(page, "tr");
  const c = await fire({ table: "t2", guests: 3, lines: [
    { item: "burger", modifiers: ["soğansız", "fıstık alerjisi"], seat: 1 },
    { item: "salmon", note: "sos ayrı", seat: 2 },
  ] });
  const cGrill = ticketAt(c, "grill").id;
  await onPage(page, cGrill);
  const trText = await page.locator("body").textContent();
  for (const w of ["Geciken", "Fiş", "Hazır", "Ayrıca: Fryer", "Alerji"]) if (!trText.includes(w)) fail(`no "${w}" in Turkish: ${trText.slice(0, 400)}`);
  if (await page.locator(`.ticket[data-ticket="${cGrill}"] .line.allergy[data-item="burger"]`).count() !== 1) fail("the Turkish allergy (alerji) is not highlighted");
  await noRawKeys(page, "tickets (tr)");
  await axe(page, "tickets (tr)");
  await page.keyboard.press("h");
  await page.waitForSelector("#help[open]");
  if (!(await page.locator("#help").innerText()).includes("Seçili fişi hazır ver")) fail("the help is not in Turkish");
  await noRawKeys(page, "help (tr)");
  await axe(page, "help (tr)");
  await page.keyboard.press("Escape");
  await page.keyboard.press("a");
  await page.waitForSelector("#allday:not([hidden])");
  await noRawKeys(page, "all-day (tr)");
  await page.keyboard.press("a");
  await page.screenshot({ path: path.join(artefacts, "kitchen-tr.png") });
  await setLang(page, "en");
  await card(page, cGrill).locator("button.bump").click();
  await card(page, cGrill).waitFor({ state: "detached", timeout: 5000 });
  check();
  await context.close();
  step("Turkish: no raw key, highlighted alerji, screenshots taken");

  // ----- The network cut: the page through a proxy that drops every socket for 4 seconds.
  {
    const cut = await proxy(base);
    const { context: ctx, page: p } = await screen("grill via proxy", { clockOffsetMs: -10 * 60 * 1000, cutNetwork: true });
    await p.goto(`${cut.url}/kitchen#token=${tokens.grill}`);
    await p.waitForSelector('#conn[data-state="live"]', { timeout: 10000 });
    await setLang(p, "en");
    const first = await fire({ table: "t1", lines: [{ item: "steak" }] });
    const firstId = ticketAt(first, "grill").id;
    await onPage(p, firstId);
    // The banner's appearance is timed in the page (the driver's polling adds its own delay).
    await p.evaluate(() => {
      const banner = document.querySelector(".stale-banner");
      window.__cutAt = performance.now();
      new MutationObserver(() => {
        if (!banner.hidden && window.__bannerAt === undefined) window.__bannerAt = performance.now();
      }).observe(banner, { attributes: true, attributeFilter: ["hidden"] });
    });
    const t0 = Date.now();
    cut.cut();
    await p.waitForSelector(".stale-banner:not([hidden])", { timeout: 4000 })
      .catch(() => fail("no red stale banner after the cut"));
    const bannerAfter = Math.round(await p.evaluate(() => window.__bannerAt - window.__cutAt));
    if (!(bannerAfter <= 3000)) fail(`the stale banner came ${bannerAfter} ms after the cut (more than 3 s)`);
    const banner = await p.textContent(".stale-banner");
    if (!banner.includes("stale")) fail(`the stale banner reads: ${banner}`);
    const two = [
      await fire({ table: "t1", lines: [{ item: "steak", note: "during the cut 1" }] }),
      await fire({ table: "t2", lines: [{ item: "salmon", note: "during the cut 2" }] }),
    ];
    await p.waitForTimeout(Math.max(0, 4000 - (Date.now() - t0)));
    cut.restore();
    for (const o of two) await p.locator(`.ticket[data-ticket="${ticketAt(o, "grill").id}"], .chip[data-chip="${ticketAt(o, "grill").id}"]`).first().waitFor({ timeout: 15000 });
    await p.waitForSelector(".stale-banner", { state: "hidden", timeout: 5000 });
    await p.waitForSelector('#conn[data-state="live"]');
    const ids = await p.$$eval(".ticket[data-ticket], .chip[data-chip]", (ns) => ns.map((n) => n.dataset.ticket || n.dataset.chip));
    const twice = ids.filter((id, i) => ids.indexOf(id) !== i);
    if (twice.length) fail(`tickets shown twice after the reconnect: ${twice.join(", ")}`);
    if (!ids.includes(firstId)) fail("the ticket shown before the cut is gone");
    // With the device clock 10 minutes slow, the age still counts up from the fire.
    await onPage(p, firstId);
    const slowAge = (await card(p, firstId).locator(".timer").innerText()).trim();
    if (!/^0:\d\d$/.test(slowAge) || slowAge === "0:00") fail(`the age reads ${slowAge} with the device clock 10 minutes slow`);
    for (const o of [first, ...two]) await rest(tokens.grill, "POST", `/stations/grill/tickets/${ticketAt(o, "grill").id}/bump`);
    check();
    await ctx.close();
    cut.close();
    step(`cut: banner after ${bannerAfter} ms, both tickets fired meanwhile shown once after the reconnect`);
  }

  // ----- Late: a branch with small thresholds, an old ticket turns late.
  {
    const small = { warning_after_seconds: 2, late_after_seconds: 4, unseen_after_seconds: 2 };
    // The demo branch's menu, as this engine reads it.
    const demo = (await rest(tokens.manager, "GET", "")).config;
    let branch = "kds-test";
    let grillToken;
    let waiterToken;
    const configure = async (b, cfg) => {
      try {
        await rest(tokens.manager, "PUT", "", { ...cfg, ...small }, b);
        return true;
      } catch (e) {
        if (e.code !== "invalid_input") throw e;
        // An engine without warning_after_seconds yet: the late threshold alone.
        await rest(tokens.manager, "PUT", "", { ...cfg, late_after_seconds: small.late_after_seconds, unseen_after_seconds: small.unseen_after_seconds }, b);
        return false;
      }
    };
    let withWarning;
    try {
      withWarning = await configure(branch, { ...demo, name: "KDS test" });
      const mint = (body) => rest(tokens.manager, "POST", "/tokens", body, branch).then((r) => r.token);
      grillToken = await mint({ role: "kitchen", station: "grill", device: "kds-test-grill" });
      waiterToken = await mint({ role: "waiter", device: "kds-test-waiter" });
    } catch (e) {
      if (e.code !== "wrong_branch" && e.code !== "forbidden") throw e;
      // This engine lets a manager configure only its own branch: the demo branch takes the
      // small thresholds for this check, and gets its configuration back after it.
      branch = "demo";
      const before = (await rest(tokens.manager, "GET", "")).config;
      restoreConfig = async () => rest(tokens.manager, "PUT", "", before);
      withWarning = await configure(branch, before);
      grillToken = tokens.grill;
      waiterToken = tokens.waiter;
    }
    const { context: ctx, page: p } = await screen("late");
    await p.goto(`${base}/kitchen#token=${grillToken}`);
    await p.waitForSelector('#conn[data-state="live"]', { timeout: 10000 });
    await setLang(p, "en");
    const old = await fire({ table: "t1", lines: [{ item: "steak" }] }, branch, waiterToken);
    const oldId = ticketAt(old, "grill").id;
    await onPage(p, oldId);
    if (withWarning) {
      await p.waitForSelector(`.ticket.warning[data-ticket="${oldId}"], .chip.warning[data-chip="${oldId}"]`, { timeout: 5000 })
        .catch(() => fail("the ticket did not turn to warning"));
    }
    await p.waitForSelector(`.ticket.late[data-ticket="${oldId}"], .chip.late[data-chip="${oldId}"]`, { timeout: 8000 })
      .catch(() => fail("the old ticket did not turn late"));
    const late = await p.locator("#late").innerText();
    if (!/Late: [1-9]/.test(late)) fail(`the header's late count reads ${late}`);
    // The screen acknowledged what it drew: past the branch's 2 s, the ticket is not unseen.
    const shown = (await rest(grillToken, "GET", "/stations/grill/tickets", undefined, branch)).find((x) => x.id === oldId);
    if (!shown || shown.unseen) fail(`the grill's screen showed ticket ${oldId}, yet the engine has it unseen`);
    await axe(p, "late");
    await rest(grillToken, "POST", `/stations/grill/tickets/${oldId}/bump`, undefined, branch);
    if (restoreConfig) {
      await restoreConfig();
      restoreConfig = null;
    }
    check();
    await ctx.close();
    step(`late: turned late on branch ${branch} (${late})${withWarning ? ", warning first" : ""}; acknowledged, not unseen`);
  }
  check();
} finally {
  for (const c of cleanups) await c().catch(() => {});
  if (restoreConfig) await restoreConfig().catch((e) => console.error(`could not restore the demo configuration: ${e.message}`));
  await browser.close();
}
console.log("kitchen ok");
