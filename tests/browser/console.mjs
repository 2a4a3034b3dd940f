// Drives serve's operator console in a real headless Chromium (Debian's), as an operator
// would, for one scenario of tests/tests/console_browser.rs; prints what it saw as one JSON
// object, which the Rust test checks against the API and the mock HighLevel.
//
// usage: [ADMIN_TOKEN=… ADMIN_NAME=…] node console.mjs <scenario> <admin url> <screenshot dir>
//   search      find one call among 10,000 (env NEEDLE, NEEDLE_PHONE, NEEDLE_CALL, NEEDLE_CONTACT,
//               SEEDED_EMAIL, SEEDED_ID)
//   story       a call's story (env CALL, LEGS)
//   replay-all  replay every failed delivery of a view (env EXPECT_FAILED)
//   burst       the banner and the chart after a burst of failures, and the phone width
// Screenshots: <dir>/<name>.png, listed in `shots` as {file, id}: the element of monitor.html
// each one shows (docs/console.md names the same ids).
import { chromium } from "playwright-core";

const [scenario, url, shotsDir] = process.argv.slice(2);
const env = process.env;
const browser = await chromium.launch({
  executablePath: env.CHROMIUM || "/usr/bin/chromium",
  headless: true,
  // The machine's network is closed: without these, Chromium keeps trying to reach Google.
  args: ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
         "--disable-component-update", "--disable-sync", "--font-render-hinting=none"],
});
const seen = { scenario, shots: [], console_errors: [] };

/// A new page at `width`×`height`, logged in when ADMIN_TOKEN is set, at `path`.
async function open(path, width = 1280, height = 900) {
  const context = await browser.newContext({ viewport: { width, height }, locale: "en-GB", timezoneId: "Europe/London" });
  const page = await context.newPage();
  page.setDefaultTimeout(20000);
  // Errors but a 404 (the favicon): a script or style the Content-Security-Policy blocks, an
  // exception in the page's script.
  page.on("console", message => {
    if (message.type() === "error" && !message.text().includes("404")) seen.console_errors.push(message.text());
  });
  page.on("pageerror", error => seen.console_errors.push(String(error)));
  await page.goto(url + path);
  if (env.ADMIN_TOKEN) {
    seen.login_url = page.url();
    const name = page.locator('input[name="name"]');
    if (env.ADMIN_NAME && await name.count()) await name.fill(env.ADMIN_NAME);
    await page.locator('input[name="token"]').fill(env.ADMIN_TOKEN);
    await Promise.all([page.waitForURL(u => !String(u).includes("/login")), page.locator('button[type="submit"]').click()]);
    if (!page.url().endsWith(path)) await page.goto(url + path);
  }
  await page.locator("#updated").filter({ hasText: "updated" }).waitFor();
  return page;
}

/// A screenshot of the viewport with `#id` scrolled into it.
async function shot(page, name, id, options = {}) {
  const target = page.locator(`#${id}`);
  if (options.top) await target.evaluate(node => node.scrollIntoView({ block: "start" }));
  else if (options.pageTop) await page.evaluate(() => window.scrollTo(0, 0));
  else await target.scrollIntoViewIfNeeded();
  await target.waitFor();
  // The page settles (the chart's size, a poll) before the picture.
  await page.waitForTimeout(300);
  await page.screenshot({ path: `${shotsDir}/${name}.png`, fullPage: !!options.full });
  seen.shots.push({ file: `${name}.png`, id });
}

/// The rows of the history table: id, state, text, and where a replay went.
async function rows(page) {
  return page.$$eval("#deliveries tbody tr[data-id]", trs => trs.map(tr => {
    const replayedBy = tr.querySelector(".replayed-by a");
    return { id: Number(tr.dataset.id), state: tr.dataset.state, text: tr.innerText, replayed_by: replayedBy ? Number(replayedBy.dataset.delivery) : null };
  }));
}

/// Waits until the table's caption says the view matches `text` and the rows are drawn.
async function settled(page, text) {
  await page.waitForFunction(t => document.getElementById("view-summary").textContent.includes(t), text);
}

async function view(page, text) {
  await settled(page, text);
  const list = await rows(page);
  return { count: list.length, rows: list, states: list.map(r => r.state), first_id: list[0]?.id ?? null, last_id: list.at(-1)?.id ?? null,
    older: !(await page.locator("#older").isDisabled()), url: page.url(),
    empty: list.length ? null : await page.locator("#deliveries td.empty").innerText() };
}

/// Searches with the search box as a person types it (Enter).
async function search(page, term) {
  await page.locator("#f-q").fill(term);
  await page.locator("#f-q").press("Enter");
  return view(page, `matching “${term}”`);
}

async function detailText(page) {
  // The toggles (plan, HTTP operations, body) opened, so their text is read too.
  await page.$$eval("#detail details", list => list.forEach(d => { d.open = true; }));
  return page.locator("#detail").innerText();
}

const scenarios = {
  async search() {
    const page = await open("/");
    seen.first_page = await view(page, "(#10000 to #9951)");
    await shot(page, "history", "history", { pageTop: true });
    seen.phone_search = await search(page, env.NEEDLE_PHONE);
    seen.call_search = await search(page, env.NEEDLE_CALL);
    seen.contact_search = await search(page, env.NEEDLE_CONTACT);
    // The view is in the URL: a reload (or a shared link) shows the same.
    await search(page, env.NEEDLE_PHONE);
    await page.reload();
    seen.after_reload = Object.assign(await view(page, `matching “${env.NEEDLE_PHONE}”`), { q: await page.locator("#f-q").inputValue() });
    // Enter on the row's link opens it; a poll afterwards leaves the focus where it is.
    await page.locator(`#deliveries a.open[data-delivery="${env.NEEDLE}"]`).focus();
    await page.keyboard.press("Enter");
    await page.locator("#detail-title").filter({ hasText: `Delivery #${env.NEEDLE}` }).waitFor();
    await page.locator("#detail-links a, #detail .panel-head").first().waitFor();
    seen.keyboard_detail = await detailText(page);
    // The row's link keeps the focus through a poll (the table is updated in place).
    await page.locator(`#deliveries a.open[data-delivery="${env.NEEDLE}"]`).focus();
    await page.waitForTimeout(3500);
    seen.keyboard_focus_kept = await page.evaluate(n => document.activeElement && document.activeElement.dataset.delivery === n, env.NEEDLE);
    await page.locator("#detail-close").click();
    seen.email_search = await search(page, env.SEEDED_EMAIL);
    await page.locator("#f-q").fill("");
    await page.selectOption("#f-state", "failed");
    seen.failed_view = await view(page, "state failed");
    await page.selectOption("#f-state", "");
    await page.selectOption("#f-kind", "sms");
    seen.sms_view = await view(page, "kind sms");
    await page.locator("#f-clear").click();
    await settled(page, "every tenant, kind and time");
    // A range that starts tomorrow holds nothing.
    const tomorrow = await page.evaluate(() => {
      const d = new Date(Date.now() + 86400000);
      const pad = v => String(v).padStart(2, "0");
      return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())}T${pad(d.getHours())}:${pad(d.getMinutes())}`;
    });
    await page.locator("#f-from").fill(tomorrow);
    await page.locator("#f-from").dispatchEvent("change");
    seen.future_view = await view(page, "received from");
    await page.locator("#f-clear").click();
    await view(page, "(#10000 to #9951)");
    await page.locator("#older").click();
    seen.older_page = await view(page, "(#9950 to #9901)");
    await page.locator("#newer").click();
    seen.newer_page = await view(page, "(#10000 to #9951)");
  },

  async story() {
    const page = await open(`/?q=${env.CALL}`);
    const list = await view(page, `matching “${env.CALL}”`);
    seen.rows = list.rows;
    // The hangup (the third leg) opened, then its whole call.
    const hangup = list.rows[list.rows.length - 3];
    await page.locator(`#deliveries a.open[data-delivery="${hangup.id}"]`).click();
    await page.locator("#see-call").click();
    await page.waitForFunction(n => document.querySelectorAll("#story ol.events > li").length === n, Number(env.LEGS));
    seen.title = await page.locator("#story-title").innerText();
    seen.events = await page.$$eval("#story ol.events > li", items => items.map(li => ({
      id: Number(li.dataset.id), step: li.querySelector(".step").textContent, state: li.querySelector(".badge").textContent,
      text: li.innerText, changes: [...li.querySelectorAll("ul.changes li")].map(c => c.textContent),
    })));
    seen.links = await page.$$eval("#story .links a", list => list.map(a => ({ text: a.textContent, href: a.href, target: a.target, rel: a.rel, class: a.className })));
    seen.url = page.url();
    await shot(page, "story", "story", { top: true });
    seen.back_to = (await page.locator("#story-back").innerText()).replace(/^←\s*/, "");
    await page.locator("#story-back").click();
    await page.locator("#detail-title").filter({ hasText: `Delivery #${hangup.id}` }).waitFor();
  },

  async "replay-all"() {
    const page = await open("/?state=failed");
    const expected = Number(env.EXPECT_FAILED);
    await page.waitForFunction(n => document.querySelectorAll("#deliveries tbody tr[data-state=failed]").length === n, expected);
    seen.failed_rows = await rows(page);
    seen.banners = await page.$$eval("#incidents .incident", list => list.map(b => b.innerText));
    await page.locator("#deliveries a.open").first().click();
    await page.locator("#replay-one").waitFor();
    // The discard form opens inline, with its label, and closes again.
    await page.locator("#discard-one").click();
    seen.discard_label = await page.locator('label[for="discard-reason"]').innerText();
    await page.locator("#discard-form button.secondary").click();
    seen.failed_detail = await page.locator("#detail").innerText();
    await shot(page, "detail", "detail");
    await page.locator("#bulk-replay").click();
    seen.bulk_confirm = await page.locator("#bulk-confirm-text").innerText();
    await page.locator("#bulk-replay-go").click();
    await page.locator("#bulk-result").filter({ hasText: "queued again" }).waitFor();
    seen.bulk_result = await page.locator("#bulk-result").innerText();
    // Each failed row links to its replay once the page reads the list again.
    await page.waitForFunction(n => document.querySelectorAll("#deliveries tbody tr .replayed-by a").length === n, expected);
    seen.replayed_rows = await rows(page);
    const first = seen.replayed_rows[0];
    await page.locator(`#deliveries tr[data-id="${first.id}"] .replayed-by a`).click();
    await page.locator("#detail-title").filter({ hasText: `Delivery #${first.replayed_by}` }).waitFor();
    // The page follows the replay until it is handled, without closing what was opened in it.
    await page.locator("#detail-http summary").click();
    await page.locator("#detail-title .badge.synced").waitFor();
    await page.waitForTimeout(3500);
    seen.toggle_kept_open = await page.locator("#detail-http").evaluate(d => d.open);
    const replayOf = await page.locator("#detail dl.facts a[data-delivery]").first().getAttribute("data-delivery");
    seen.replay_detail = { from: first.id, id: first.replayed_by, replay_of: Number(replayOf), state: await page.locator("#detail-title .badge").innerText(),
      text: await page.locator("#detail").innerText() };
    await page.locator("#failed-count").filter({ hasText: /^0$/ }).waitFor();
    seen.failed_count_after = await page.locator("#failed-count").innerText();
    await page.locator("#audit-log tbody tr[data-id]").first().waitFor();
    seen.audit = await page.locator("#audit-log").innerText();
    await shot(page, "replay-all", "history", { top: true });
  },

  async burst() {
    const page = await open("/");
    await page.locator("#incidents .incident").first().waitFor();
    seen.banners = await page.$$eval("#incidents .incident", list => list.map(b => ({ role: b.getAttribute("role"), text: b.innerText })));
    await page.locator("#chart canvas").first().waitFor();
    // The burst happened just now: the last hour shows it bar by bar.
    await page.selectOption("#chart-range", String(3600 * 1000));
    await page.waitForFunction(() => document.getElementById("chart-summary").textContent.includes("one bar per 1 min"));
    seen.chart = {
      canvas: await page.locator("#chart canvas").count() > 0,
      summary: await page.locator("#chart-summary").innerText(),
      series: await page.$$eval("#chart .u-legend .u-series .u-label", list => list.map(l => l.textContent).filter(t => t && t !== "Time")),
    };
    // The whole page: the banner on top, the failures in the table, the chart below them.
    await shot(page, "charts", "charts", { full: true });
    await page.evaluate(() => window.scrollTo(0, 0));
    const phone = await open("/", 390, 844);
    await phone.locator("#incidents .incident").first().waitFor();
    await phone.locator("#deliveries tbody tr[data-id]").first().waitFor();
    seen.phone = await phone.evaluate(() => ({
      page_width: document.documentElement.scrollWidth,
      rows_as_cards: getComputedStyle(document.querySelector("#deliveries tbody tr[data-id]")).display === "block",
      banner_visible: !document.getElementById("incidents").hidden,
    }));
    // The filters fold away behind one button at phone width, and open with it.
    seen.phone.filters_folded = !(await phone.locator("#f-q").isVisible());
    await phone.locator("#filters-toggle").click();
    seen.phone.filters_open = await phone.locator("#f-q").isVisible();
    await phone.locator("#filters-toggle").click();
    await shot(phone, "phone", "incidents", { pageTop: true });
    await phone.close();

    // One failed delivery discarded from its detail (the reason in an inline form), then every
    // other failed one of the view at once.
    await page.locator("#f-state").selectOption("failed");
    await page.waitForFunction(() => document.getElementById("view-summary").textContent.includes("state failed"));
    const failed = await rows(page);
    await page.locator(`#deliveries a.open[data-delivery="${failed[0].id}"]`).click();
    await page.locator("#discard-one").click();
    await page.locator("#discard-reason").fill("a test call to our own number");
    await page.locator("#discard-go").click();
    await page.locator("#action-result").filter({ hasText: "discarded" }).waitFor();
    await page.locator("#detail-title .badge.discarded").waitFor();
    seen.discard_one = { id: failed[0].id, result: await page.locator("#action-result").innerText(), state: await page.locator("#detail-title .badge").innerText() };
    await page.locator("#bulk-discard").click();
    await page.locator("#bulk-reason").fill("HighLevel was down; these calls were entered by hand");
    await page.locator("#bulk-discard-go").click();
    await page.locator("#bulk-result").filter({ hasText: "discarded" }).waitFor();
    seen.discard_all = await page.locator("#bulk-result").innerText();
    await page.locator("#failed-count").filter({ hasText: /^0$/ }).waitFor();
    await page.waitForFunction(() => document.querySelectorAll("#audit-log tbody tr[data-id]").length === 2);
    seen.audit = await page.locator("#audit-log").innerText();
  },
};

try {
  if (!scenarios[scenario]) throw new Error(`no scenario ${scenario}`);
  await scenarios[scenario]();
  seen.chromium = browser.version();
} catch (error) {
  seen.error = String(error && error.stack || error);
}
await browser.close();
console.log(JSON.stringify(seen));
process.exit(seen.error ? 1 : 0);
