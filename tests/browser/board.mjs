// Drives the kitchen board in headless Chromium: a demo order appears on its stations, cooks
// bump it, expo sends it, the waiter marks it served; one station's kitchen token opens that
// station's screen alone and cooks a ticket there; a device that may not follow the branch is
// told so. Usage: node board.mjs <base-url> <manager-token> <grill-token> <refused-token> [png]
import { chromium } from "playwright-core";

const [base, token, grillToken, refusedToken, screenshot] = process.argv.slice(2);
if (!refusedToken) {
  throw new Error("usage: node board.mjs <base-url> <manager-token> <grill-kitchen-token> <token-that-may-not-follow-the-branch> [screenshot.png]");
}

const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM_PATH || "/usr/bin/chromium",
  args: ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync"],
});
const fail = (msg) => { throw new Error(msg); };
try {
  const page = await browser.newPage({ viewport: { width: 1400, height: 800 } });
  const errors = [];
  page.on("pageerror", (e) => errors.push(e.message));
  page.on("dialog", (d) => { errors.push(`dialog: ${d.message()}`); d.dismiss(); });
  // Without a token the board explains how to get one and opens no socket.
  const blank = await browser.newPage();
  let sockets = 0;
  blank.on("websocket", () => sockets++);
  await blank.goto(base + "/");
  await blank.waitForSelector("#status.signin", { timeout: 10000 });
  const said = await blank.textContent("#status");
  if (!said.includes("token")) fail(`no sign-in message without a token: ${said}`);
  await blank.waitForTimeout(300);
  if (sockets !== 0) fail("the board opened a websocket without a token");
  await blank.close();

  // A device that may not follow the whole branch (a guest's phone) is told so on the board
  // instead of waiting on an empty page.
  const refused = await browser.newPage();
  await refused.goto(base + "/#token=" + refusedToken);
  await refused.waitForSelector("#status.refused", { timeout: 10000 });
  const why = await refused.textContent("#status");
  if (!why.includes("forbidden")) fail(`the refusal is not shown: ${why}`);
  if (await refused.locator("section.station").count() !== 0) fail("a refused board shows stations");
  await refused.close();

  await page.goto(base + "/#token=" + token);
  await page.waitForSelector("#status.live", { timeout: 10000 });
  if (page.url().includes("token")) fail("the token stayed in the address bar");
  const columns = await page.locator("section.station").count();
  if (columns !== 6) fail(`expected 6 station columns, saw ${columns}`);

  await page.click("#place");
  const expoCard = page.locator('section[data-station="expo"] .ticket');
  await expoCard.first().waitFor({ timeout: 10000 });
  const orderId = await expoCard.first().getAttribute("data-order");
  const sendButton = expoCard.first().locator("button.bump");
  if (await sendButton.isEnabled()) fail("expo could send before the kitchen cooked");

  // Every cooking station bumps its part of the order.
  const cooking = page.locator(`section.station:not(.expo) .ticket[data-order="${orderId}"]`);
  const parts = await cooking.count();
  if (parts < 1) fail("the order reached no cooking station");
  for (let i = 0; i < parts; i++) {
    const card = cooking.first();
    await card.locator("button.start").click();
    await page.locator(`section.station:not(.expo) .ticket.started[data-order="${orderId}"]`).first().waitFor();
    await page.locator(`section.station:not(.expo) .ticket.started[data-order="${orderId}"] button.bump`).first().click();
    await page.waitForFunction(([id, left]) =>
      document.querySelectorAll(`section.station:not(.expo) .ticket[data-order="${id}"]`).length === left,
      [orderId, parts - i - 1]);
  }

  // Expo sees every part ready and sends the order; the waiter is told.
  await page.locator(`section[data-station="expo"] .ticket.parts-ready[data-order="${orderId}"]`).waitFor();
  if (screenshot) await page.screenshot({ path: screenshot });
  await page.locator(`section[data-station="expo"] .ticket[data-order="${orderId}"] button.bump`).click();
  const notice = page.locator(`#ready .notice[data-order="${orderId}"]`);
  await notice.waitFor({ timeout: 10000 });
  await notice.locator("button.served").click();
  await notice.waitFor({ state: "detached", timeout: 10000 });

  const res = await page.request.get(`${base}/api/v1/branches/demo/orders/${orderId}`,
    { headers: { authorization: `Bearer ${token}` } });
  const order = await res.json();
  if (!order.closed_at) fail(`order not closed: ${JSON.stringify(order)}`);
  if (order.lines.some((l) => l.status !== "served")) fail("a line was not served");

  // The grill's own screen: its column alone, nothing to place or serve; a steak fired at the
  // pass lands there and the cook starts and bumps it.
  const grill = await browser.newPage({ viewport: { width: 600, height: 800 } });
  grill.on("pageerror", (e) => errors.push(`grill: ${e.message}`));
  grill.on("dialog", (d) => { errors.push(`grill dialog: ${d.message()}`); d.dismiss(); });
  await grill.goto(base + "/#token=" + grillToken);
  await grill.waitForSelector("#status.live", { timeout: 10000 });
  const shown = await grill.locator("section.station").evaluateAll((ns) => ns.map((n) => n.dataset.station));
  if (shown.join() !== "grill") fail(`the grill's screen shows stations ${shown.join()}`);
  if (await grill.isVisible("#place")) fail("the grill's screen offers to place orders");
  if (await grill.isVisible("aside")) fail("the grill's screen offers to serve orders");
  const api = `${base}/api/v1/branches/demo`;
  const auth = { authorization: `Bearer ${token}` };
  const opened = await page.request.post(`${api}/orders`, { headers: auth, data: { table: "t1" } });
  if (!opened.ok()) fail(`open: ${opened.status()} ${await opened.text()}`);
  const steakOrder = (await opened.json()).id;
  for (const [path, data] of [["lines", { lines: [{ item: "steak" }] }], ["fire", {}]]) {
    const res = await page.request.post(`${api}/orders/${steakOrder}/${path}`, { headers: auth, data });
    if (!res.ok()) fail(`${path}: ${res.status()} ${await res.text()}`);
  }
  const steak = grill.locator(`.ticket[data-order="${steakOrder}"]`);
  await steak.waitFor({ timeout: 10000 });
  await steak.locator("button.start").click();
  await grill.locator(`.ticket.started[data-order="${steakOrder}"] button.bump`).click();
  await steak.waitFor({ state: "detached", timeout: 10000 });
  // The manager's board saw the grill's bump: expo has every part of that order.
  await page.locator(`section[data-station="expo"] .ticket.parts-ready[data-order="${steakOrder}"]`)
    .waitFor({ timeout: 10000 });
  await grill.close();

  if (errors.length) fail(`page errors: ${errors.join("; ")}`);
  console.log(`board ok: order ${orderId} went through ${parts} station(s) and expo; the grill's screen cooked order ${steakOrder}`);
} finally {
  await browser.close();
}
