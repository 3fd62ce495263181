// Drives the manager's screen (/manage) at 1280x800 in headless Chromium: a table renamed and
// an item added (with a modifier group) through the forms are saved and read back by REST; a
// bad edit (an empty table name) shows the engine's refusal and changes nothing; a kitchen
// token for the grill is shown as a QR code and a link that pairs a second page, is listed among
// the paired devices and is revoked there (after a confirm on the page); a QR table's
// printable card; 86 and a limited count take effect at once; an unseen ticket is alerted and
// speed of service shows numbers once tickets are bumped; axe-core on every state, English
// and Turkish. Screenshots: manage-en.png, manage-tr.png. The branch's configuration, 86 list
// and counts are put back as they were at the end.
//
// Usage: node manage.mjs <base-url> <tokens.json> <artefact-dir>
import { chromium } from "playwright-core";
import { readFileSync, mkdirSync } from "node:fs";
import { createRequire } from "node:module";
import path from "node:path";

const [base, tokensFile, outDir] = process.argv.slice(2);
if (!outDir) throw new Error("usage: node manage.mjs <base-url> <tokens.json> <artefact-dir>");
const tokens = JSON.parse(readFileSync(tokensFile, "utf8"));
mkdirSync(outDir, { recursive: true });
const require = createRequire(import.meta.url);
const axeSource = readFileSync(require.resolve("axe-core/axe.min.js"), "utf8");
const started = Date.now();

const fail = (msg) => { throw new Error(msg); };
const step = (msg) => console.log(`  manage: ${msg} (${((Date.now() - started) / 1000).toFixed(1)} s)`);

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

function claims(jwt) {
  return JSON.parse(Buffer.from(jwt.split(".")[1], "base64url").toString("utf8"));
}

const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM_PATH || "/usr/bin/chromium",
  args: ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync"],
});
const desk = { viewport: { width: 1280, height: 800 }, hasTouch: true, locale: "en-GB" };
const errors = [];
let allowStatus = new Set();

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
    const re = /\b(menu|common|conn|source|manage)\.[a-z_]+(\.[a-z_0-9]+)*\b/;
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

async function go(page, section) {
  await page.locator(`.side [data-go="${section}"]`).click();
  await page.locator(`#sec-${section}`).waitFor({ state: "visible" });
}

const original = await rest(tokens.manager, "GET", "");
const opened = [];
let okLine = null;
try {
  // Without a token: how to pair, no socket; another role's token: refused.
  {
    const ctx = await browser.newContext(desk);
    const page = await ctx.newPage();
    watch(page, "unpaired");
    let sockets = 0;
    page.on("websocket", () => sockets++);
    await page.goto(`${base}/manage`);
    await page.locator("#pair").waitFor({ state: "visible", timeout: 10000 });
    if (!(await page.textContent("#pair")).includes("not paired")) fail("no pairing help without a token");
    await page.locator("#pair #pair-code").waitFor({ state: "visible" });
    if (!(await page.textContent("#pair-submit")).includes("Pair this device")) fail("no pairing form without a token");
    await page.waitForTimeout(300);
    if (sockets) fail("the manager screen opened a websocket without a token");
    await page.goto(`${base}/manage#token=${tokens.waiter}`);
    await page.reload();
    await page.locator("#refused").waitFor({ state: "visible", timeout: 10000 });
    if (!(await page.textContent("#refused")).includes("for managers")) fail("a waiter's token is not refused");
    allowStatus = new Set([401]);
    await page.goto(`${base}/manage#token=${tokens.manager.replace(/.{6}$/, "AAAAAA")}`);
    await page.reload();
    await page.locator("#refused", { hasText: "no longer valid" }).waitFor({ timeout: 10000 });
    allowStatus = new Set();
    await ctx.close();
  }
  step("pairing and another role's token explained");

  // A ticket left unacknowledged (no pastry screen in this test): alerted, then bumped.
  const brownie = await rest(tokens.manager, "POST", "/orders", { table: "t3", lines: [{ item: "brownie" }], fire: {} });
  opened.push(brownie.id);
  const pastryTicket = brownie.tickets.find((tk) => tk.station === "pastry");
  const expoTicket = brownie.tickets.find((tk) => tk.kind === "expo");
  // And one left waiting at the bar, still alerted when the screen is photographed.
  const lemonade = await rest(tokens.manager, "POST", "/orders", { table: "t2", lines: [{ item: "lemonade" }], fire: {} });
  opened.push(lemonade.id);
  const barTicket = lemonade.tickets.find((tk) => tk.station === "bar");

  const ctx = await browser.newContext(desk);
  const page = await ctx.newPage();
  watch(page, "manage");
  await page.goto(`${base}/manage#token=${tokens.manager}`);
  await page.locator('#conn[data-state="live"]').waitFor({ timeout: 10000 });
  if (page.url().includes("token=")) fail("the token stayed in the address bar");
  if (!(await page.textContent("h1")).includes(original.config.name)) fail("the branch is not named in the header");
  const rows = await page.locator("#speed-rows tr").count();
  if (rows !== original.config.stations.length) fail(`speed of service lists ${rows} stations`);
  await axe(page, "service");

  // Rename a table and add an item (with a modifier group) through the forms; save.
  await go(page, "tables");
  const t4 = page.locator('#tables-form tr[data-table="t4"] input[data-field="name"]');
  await t4.fill("Table 4 · Garden");
  if (!(await page.isVisible("#savebar"))) fail("no save bar after an edit");
  await axe(page, "tables");
  await go(page, "items");
  await page.locator("#add-item").click();
  await page.locator("#item-name").pressSequentially("Mercimek Çorbası");
  const newId = await page.locator('#item-detail input[data-role="id"]').inputValue();
  if (newId !== "mercimek-corbasi") fail(`the new item's id follows its name as ${newId}`);
  await page.locator("#item-category").selectOption("starters");
  await page.locator("#item-price").fill("85");
  await page.locator("#item-prep").fill("240");
  const withGroups = await page.locator("#add-group").count();
  if (withGroups) {
    await page.locator("#add-group").click();
    const group = page.locator("#item-detail .group-edit").last();
    await group.locator('input[data-field="group-name"]').fill("Portion");
    await group.locator("table.options tbody tr").first().locator("input").first().fill("Small bowl");
    await group.getByRole("button", { name: "Add an option" }).click();
    const second = page.locator("#item-detail .group-edit").last().locator("table.options tbody tr").nth(1);
    await second.locator("input").first().fill("Large bowl");
    await second.locator('input[type="number"]').fill("20");
    await page.locator("#item-detail .group-edit").last().locator(".group-row input[type=checkbox]").check();
  }
  await axe(page, "item form");
  await page.locator("#save").click();
  await page.locator("#savebar").waitFor({ state: "hidden", timeout: 10000 });
  let config = (await rest(tokens.manager, "GET", "")).config;
  if (config.tables.find((x) => x.id === "t4")?.name !== "Table 4 · Garden") fail("the table's new name was not saved");
  const soup = config.items.find((i) => i.id === "mercimek-corbasi");
  if (!soup) fail("the new item was not saved");
  if (soup.price_cents !== 8500 || soup.category !== "starters" || soup.prep_seconds !== 240) fail(`the new item reads ${JSON.stringify(soup)}`);
  if (withGroups) {
    const g = soup.modifier_groups?.[0];
    if (!g || g.name !== "Portion" || !g.required || g.options.map((o) => o.name).join() !== "Small bowl,Large bowl" || g.options[1].price_cents !== 2000) {
      fail(`the new item's modifier group reads ${JSON.stringify(soup.modifier_groups)}`);
    }
  }
  step("table renamed and item added: saved");

  // A bad edit: the engine's refusal next to the form, nothing saved.
  await go(page, "tables");
  await page.locator('#tables-form tr[data-table="t1"] input[data-field="name"]').fill("");
  allowStatus = new Set([422]);
  await page.locator("#save").click();
  await page.locator("#save-error").waitFor({ state: "visible", timeout: 10000 });
  allowStatus = new Set();
  const refusal = await page.textContent("#save-error");
  if (!refusal.includes("table name must be 1 to 100 characters")) fail(`the engine's refusal is not shown: ${refusal}`);
  const after = (await rest(tokens.manager, "GET", "")).config;
  if (JSON.stringify(after) !== JSON.stringify(config)) fail("a refused configuration changed the branch");
  await axe(page, "refused save");
  await page.locator("#discard").click();
  await page.locator("#savebar").waitFor({ state: "hidden" });
  if ((await page.locator('#tables-form tr[data-table="t1"] input[data-field="name"]').inputValue()) !== "Table 1") fail("discard did not bring the name back");
  step("empty table name refused by the engine, nothing changed");

  // The table's QR card to print.
  await page.locator('#tables-form button.print-qr[data-table="qr-5"]').click();
  await page.locator('#print-dialog[open] .print-card[data-table="qr-5"] svg.qr-code path').waitFor({ timeout: 10000 });
  const cardText = await page.textContent("#print-cards");
  if (!cardText.includes("Table 5") || !cardText.includes("Scan to see the menu") || !cardText.includes("okutun")) fail(`the QR card reads ${cardText}`);
  await axe(page, "QR card");
  await page.locator("#print-close").click();

  // A kitchen token for the grill: a QR code and a link that pairs another page.
  await go(page, "devices");
  await page.locator("#tok-role").selectOption("kitchen");
  await page.locator("#tok-station").selectOption("grill");
  await page.locator("#tok-device").fill("grill-test");
  await page.locator("#tok-issue").click();
  await page.locator("#token-qr svg.qr-code path").waitFor({ timeout: 10000 });
  const link = await page.locator("#token-link").inputValue();
  if (!link.startsWith(`${new URL(base).origin}/kitchen#token=`)) fail(`the pairing link is ${link}`);
  const issued = link.split("#token=")[1];
  const c = claims(issued);
  if (c.role !== "kitchen" || c.station !== "grill" || c.sub !== "grill-test") fail(`the token is for ${JSON.stringify(c)}`);
  await rest(issued, "GET", "");
  await axe(page, "devices");
  const screen = await ctx.newPage();
  const res = await screen.goto(link);
  if (!res.ok()) fail(`the pairing link's page answered ${res.status()}`);
  const grillShown = await screen.waitForFunction(() => document.body.innerText.includes("Grill"), null, { timeout: 8000 }).then(() => true, () => false);
  await screen.close();
  step(`grill token: QR and link; the link's page loads${grillShown ? " and shows the grill" : ""}`);

  // The device is listed; revoked from the list (a confirm on the page), its token is refused.
  const deviceRow = page.locator(`#device-rows tr[data-device="${c.jti}"]`);
  await deviceRow.waitFor({ timeout: 10000 });
  const deviceText = await deviceRow.innerText();
  if (!deviceText.includes("Kitchen screen") || !deviceText.includes("Grill") || !deviceText.includes("Active")) fail(`the grill's device row reads ${deviceText}`);
  await deviceRow.locator('button[data-kind="revoke"]').click();
  await page.locator("#device-rows tr.confirm-row", { hasText: "Unpair grill-test?" }).waitFor({ timeout: 5000 });
  await axe(page, "revoke confirm");
  await page.locator('#device-rows tr.confirm-row button[data-kind="confirm"]').click();
  await page.locator(`#device-rows tr[data-device="${c.jti}"].status-revoked`).waitFor({ timeout: 10000 });
  const refused = await fetch(`${base}/api/v1/branches/demo`, { headers: { authorization: `Bearer ${issued}` } });
  const refusedBody = await refused.json();
  if (refused.status !== 401 || refusedBody.error?.code !== "token_revoked") fail(`a revoked token answers ${refused.status} ${JSON.stringify(refusedBody)}`);
  step("the grill device listed, revoked from the list: its token is refused");

  // 86 and a limited count, at once.
  await go(page, "stock");
  const espresso = page.locator('#stock-form tr[data-item="espresso"]');
  await espresso.locator('button[data-kind="86"]').click();
  await espresso.locator("td.status.out").waitFor({ timeout: 5000 });
  if (!(await rest(tokens.manager, "GET", "")).eighty_sixed.includes("espresso")) fail("86 did not reach the engine");
  await axe(page, "stock");
  await espresso.locator('button[data-kind="restore"]').click();
  await espresso.locator("td.status.ok").waitFor({ timeout: 5000 });
  const salmon = page.locator('#stock-form tr[data-item="salmon"]');
  await salmon.locator('input[data-kind="count"]').fill("5");
  await salmon.locator('button[data-kind="set"]').click();
  await salmon.locator("td.status.few", { hasText: "5 left" }).waitFor({ timeout: 5000 });
  if ((await rest(tokens.manager, "GET", "")).stock.find((s) => s.item === "salmon")?.left !== 5) fail("the limited count did not reach the engine");
  await salmon.locator('button[data-kind="lift"]').click();
  await salmon.locator("td.status.ok").waitFor({ timeout: 5000 });
  step("86 and limited count set and lifted");

  // The brownie no screen showed is alerted; once bumped, speed of service has numbers.
  await go(page, "service");
  const alert = page.locator(`#alerts li.unseen[data-ticket="${pastryTicket.id}"]`);
  await alert.waitFor({ timeout: 15000 });
  if (!(await alert.textContent()).includes("Pastry")) fail("the unseen alert does not name the station");
  step("unseen pastry ticket alerted");
  await rest(tokens.pastry, "POST", `/stations/pastry/tickets/${pastryTicket.id}/start`);
  await rest(tokens.pastry, "POST", `/stations/pastry/tickets/${pastryTicket.id}/bump`);
  await page.locator(`#alerts li[data-ticket="${pastryTicket.id}"]`).waitFor({ state: "detached", timeout: 10000 });
  await rest(tokens.expo, "POST", `/stations/expo/tickets/${expoTicket.id}/bump`);
  await page.locator("#speed-refresh").click();
  const pastryRow = page.locator('#speed-rows tr[data-station="pastry"]');
  await page.waitForFunction(() => {
    const row = document.querySelector('#speed-rows tr[data-station="pastry"]');
    return row && Number(row.querySelector(".tickets").textContent) >= 1 && /^\d+:\d\d$/.test(row.querySelector(".mean").textContent);
  }, null, { timeout: 15000 });
  const mean = await pastryRow.locator(".mean").textContent();
  const p90 = await pastryRow.locator(".p90").textContent();
  if (!/^\d+:\d\d$/.test(p90)) fail(`the pastry's 90th percentile reads ${p90}`);
  step(`speed of service: pastry mean ${mean}, p90 ${p90}`);
  await page.locator(`#alerts li.unseen[data-ticket="${barTicket.id}"]`).waitFor({ timeout: 10000 });
  if (Number(await page.textContent("#kpi-unseen")) < 1) fail("the unseen count does not count the bar's ticket");
  await axe(page, "service with numbers");
  await noRawKeys(page, "en");
  await page.evaluate(() => window.scrollTo(0, 0));
  await page.screenshot({ path: path.join(outDir, "manage-en.png") });

  // Turkish, with the page's switch.
  await page.locator('.lang button[data-lang="tr"]').click();
  await page.waitForFunction(() => document.documentElement.lang === "tr");
  await page.locator('.side [data-go="items"]', { hasText: "Menü ürünleri" }).waitFor({ timeout: 5000 });
  if (!(await page.textContent("#h-speed")).includes("Servis hızı")) fail("the speed panel is not in Turkish");
  await noRawKeys(page, "tr service");
  await axe(page, "service in Turkish");
  await page.evaluate(() => window.scrollTo(0, 0));
  await page.screenshot({ path: path.join(outDir, "manage-tr.png") });
  for (const section of ["items", "categories", "stations", "tables", "settings", "stock", "devices"]) {
    await go(page, section);
    await noRawKeys(page, `tr ${section}`);
    await axe(page, `${section} in Turkish`);
  }
  if (!(await page.textContent("#sec-devices")).includes("Cihaz eşleştir")) fail("the devices section is not in Turkish");
  if (!(await page.textContent("#sec-devices")).includes("Eşleşik cihazlar")) fail("the device list is not in Turkish");
  await go(page, "service");
  if (errors.length) fail(`page errors: ${errors.join("; ")}`);
  await ctx.close();
  okLine = `manage ok: saved a rename and a new item, refused an empty name, paired a grill screen by QR, alerted and timed the pastry station (${((Date.now() - started) / 1000).toFixed(1)} s)`;
} finally {
  // Put the branch back as it was.
  try {
    await rest(tokens.manager, "PUT", "", original.config);
    await rest(tokens.manager, "DELETE", "/86/espresso");
    await rest(tokens.manager, "DELETE", "/stock/salmon");
    for (const id of opened) {
      const o = await rest(tokens.manager, "GET", `/orders/${id}`);
      if (o.closed_at) continue;
      if (o.lines.some((x) => x.status === "ready")) await rest(tokens.manager, "POST", `/orders/${id}/serve`, {});
      for (const l of o.lines.filter((x) => !["served", "voided", "ready"].includes(x.status))) {
        await rest(tokens.manager, "POST", `/orders/${id}/lines/${l.id}/void`, { reason: "browser test" });
      }
      await rest(tokens.manager, "POST", `/orders/${id}/close`);
    }
  } catch (e) {
    console.error(`  manage: putting the branch back: ${e.message}`);
  }
  await browser.close();
}
console.log(okLine);
