// Drives the kitchen board in headless Chromium: a demo order appears on its stations, cooks
// bump it, expo sends it, the waiter marks it served; a device that may not follow the branch is
// told so. Usage: node board.mjs <base-url> <token> <refused-token> [png]
import { chromium } from "playwright-core";

const [base, token, refusedToken, screenshot] = process.argv.slice(2);
if (!refusedToken) {
  throw new Error("usage: node board.mjs <base-url> <token> <token-that-may-not-follow-the-branch> [screenshot.png]");
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

  // A device that may not follow the whole branch (one station's kitchen screen) is told so on
  // the board instead of waiting on an empty page.
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
  if (errors.length) fail(`page errors: ${errors.join("; ")}`);
  console.log(`board ok: order ${orderId} went through ${parts} station(s) and expo`);
} finally {
  await browser.close();
}
