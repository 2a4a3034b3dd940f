// Walks serve's setup page in a real headless Chromium (Debian's), as an operator would: install
// the HighLevel app for an agency (the mock approves at once and sends the browser back), add a
// location with a private integration token, connect its Dialpad, check it, send a test event
// and see it land, and validate a configuration. Prints what it saw as one JSON object; the Rust
// test (tests/tests/setup_browser.rs) checks it against the mocks.
//
// usage: node setup.mjs <admin url> [screenshot.png]
import { chromium } from "playwright-core";

const [url, screenshot] = process.argv.slice(2);
const executablePath = process.env.CHROMIUM || "/usr/bin/chromium";
const browser = await chromium.launch({
  executablePath,
  headless: true,
  args: ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
         "--disable-component-update", "--disable-sync"],
});
const seen = {};
const errors = [];
const page = await browser.newPage();
try {
  page.setDefaultTimeout(20000);
  page.on("console", message => {
    if (message.type() === "error" && !message.text().includes("404")) errors.push(message.text());
  });
  page.on("pageerror", error => errors.push(String(error)));
  await page.goto(`${url}/setup`);
  seen.title = await page.title();

  // 1. Install for an agency: off to HighLevel (the mock) and back.
  await page.getByRole("link", { name: "Install for an agency (choose locations)" }).click();
  await page.waitForURL(u => String(u).includes("/setup?installed="));
  seen.after_install_url = page.url();
  const result = page.locator("#tenant-result");
  await result.filter({ hasText: "Installed:" }).waitFor();
  seen.install_result = await result.textContent();

  // 2. A location with a private integration token.
  await page.getByText("Or add one location with a private integration token").click();
  await page.locator("#private-id").fill("acme");
  await page.locator("#private-location").fill(process.env.PRIVATE_LOCATION);
  await page.locator("#private-token").fill(process.env.PRIVATE_TOKEN);
  await page.getByRole("button", { name: "Add location" }).click();
  await page.locator("#private-result").filter({ hasText: "Added acme" }).waitFor();
  await page.locator("#tenants tr").filter({ hasText: "acme" }).waitFor();
  seen.tenant_rows = await page.locator("#tenants tr").count();

  // 3. Connect its Dialpad: the key's field (found by its label), then its button.
  const row = page.locator("#tenants tr").filter({ hasText: "acme" });
  await row.getByLabel("Dialpad API key").fill(process.env.DIALPAD_KEY);
  await row.getByRole("button", { name: "Connect Dialpad" }).click();
  await result.filter({ hasText: "Dialpad connected" }).waitFor();
  seen.connect_result = await result.textContent();

  // 4. A test event lands.
  await page.locator("#tenants tr").filter({ hasText: "acme" }).getByRole("button", { name: "Send test event" }).click();
  await result.filter({ hasText: /Test event #\d+: (done|failed)/ }).waitFor({ timeout: 30000 });
  seen.test_result = await result.textContent();

  // 5. The check.
  await page.locator("#tenants tr").filter({ hasText: "acme" }).getByRole("button", { name: "Check" }).click();
  await result.filter({ hasText: "Check of acme" }).waitFor();
  seen.check_items = await result.locator("li").allTextContents();

  // 6. A configuration with a mistake, then a valid one.
  await page.locator("#config-text").fill('{"location_id": 5}');
  await page.getByRole("button", { name: "Validate" }).click();
  await page.locator("#config-result li").first().waitFor();
  seen.invalid_config = await page.locator("#config-result").textContent();
  await page.locator("#config-text").fill('{"location_id": "abc"}');
  await page.getByRole("button", { name: "Validate" }).click();
  await page.locator("#config-result").filter({ hasText: "valid" }).waitFor();
  seen.valid_config = await page.locator("#config-result").textContent();

  await page.setViewportSize({ width: 390, height: 844 });
  seen.phone_overflow = await page.evaluate(() => document.documentElement.scrollWidth > window.innerWidth + 1);
  if (screenshot) await page.screenshot({ path: screenshot, fullPage: true });
  seen.errors = errors;
} catch (error) {
  seen.error = String(error);
  // What the page said last, to tell a refusal from a hang.
  seen.last_result = await page.locator("#tenant-result").textContent().catch(() => null);
  seen.errors_so_far = errors;
}
await browser.close();
console.log(JSON.stringify(seen));
process.exit(seen.error ? 1 : 0);
