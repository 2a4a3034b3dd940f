// Drives serve's operator console in a real headless Chromium (Debian's), as a person would:
// open the page, see a synced delivery, open it to read its plan and HTTP operations, press
// Replay on a failed one, and see it go through. Prints what it saw as one JSON object; the
// Rust test (tests/tests/browser.rs) checks it against the mock API. The console's own walks
// are console.mjs (tests/tests/console_browser.rs).
//
// usage: [ADMIN_TOKEN=…] node monitor.mjs <admin url> [screenshot.png]
// With ADMIN_TOKEN, the page first sends the browser to /login, where the token is typed.
import { chromium } from "playwright-core";

const [url, screenshot] = process.argv.slice(2);
const executablePath = process.env.CHROMIUM || "/usr/bin/chromium";
const browser = await chromium.launch({
  executablePath,
  headless: true,
  // The machine's network is closed: without these, Chromium keeps trying to reach Google.
  args: ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
         "--disable-component-update", "--disable-sync"],
});
const seen = {};
try {
  const page = await browser.newPage();
  page.setDefaultTimeout(20000);
  const errors = [];
  // Errors but the favicon's 404: a script or style the Content-Security-Policy blocks, an
  // exception in the page's script.
  page.on("console", message => {
    if (message.type() === "error" && !message.text().includes("404")) errors.push(message.text());
  });
  page.on("pageerror", error => errors.push(String(error)));
  await page.goto(url);
  if (process.env.ADMIN_TOKEN) {
    seen.login_url = page.url();
    seen.login_title = await page.title();
    await page.locator('input[name="token"]').fill(process.env.ADMIN_TOKEN);
    await Promise.all([page.waitForURL(u => !String(u).includes("/login")), page.locator('button[type="submit"]').click()]);
  }
  seen.title = await page.title();

  const synced = page.locator('#deliveries tbody tr[data-state="synced"]').first();
  await synced.waitFor();
  seen.synced_row = await synced.innerText();

  // The delivery opened from its row's link, with its toggles (plan, HTTP operations, body) open.
  await synced.locator("a.open").click();
  await page.locator("#detail li.exchange").first().waitFor({ state: "attached" });
  await page.$$eval("#detail details", list => list.forEach(d => { d.open = true; }));
  seen.detail = await page.locator("#detail").innerText();

  // The failed delivery (a dead letter), replayed from its detail.
  const letter = page.locator('#deliveries tbody tr[data-state="failed"]').first();
  await letter.waitFor();
  seen.dead_letter = await letter.innerText();
  await letter.locator("a.open").click();
  await page.locator("#replay-one").click();
  await page.locator("#action-result").filter({ hasText: "queued again" }).waitFor();
  seen.message = await page.locator("#action-result").innerText();
  await page.locator("#failed-count").filter({ hasText: /^0$/ }).waitFor();
  const replayed = page.locator('#deliveries tbody tr[data-state="synced"]').first();
  seen.replayed_row = await replayed.innerText();
  seen.queue_depth = await page.locator("#queue-depth").innerText();
  seen.page_text = await page.locator("body").innerText();
  if (screenshot) await page.screenshot({ path: screenshot, fullPage: true });
  seen.chromium = browser.version();
  // A Content-Security-Policy violation shows here (the page's script or style blocked).
  seen.console_errors = errors;
} catch (error) {
  seen.error = String(error);
}
await browser.close();
console.log(JSON.stringify(seen));
process.exit(seen.error ? 1 : 0);
