/**
 * The inspector in a real headless Chromium (Debian's `chromium`, driven by
 * playwright-core): the page loads what is stored, rows appear live as the
 * library sends, a click shows the JSON and the validation reasons, message
 * data stays text, the filters and the keyboard work, a flood is capped, and
 * Clear, once confirmed (declined, nothing goes), empties it; a bad row shows its first reason, a re-send
 * its dup badge, and the duplicates filter survives a reload; with a plan, a violation shows in its row and
 * the detail, a blocked event has its badge, and the plan filter survives a reload; messages of no or an unknown type have their counter, and
 * a filtered DELETE takes its rows away; markup in any event field stays text
 * (no `<script>`, `<img onerror>` or `<svg onload>` runs), and a page on
 * another site (http://evil.test, mapped to 127.0.0.1 in the browser) can
 * neither post events (form or fetch), nor read, stream or delete them, nor
 * reach the collector under its own name (DNS rebinding). Screenshots (light
 * and dark) go to .test-artifacts/.
 *
 * Runs on Deno (with the suite's scoped permissions, plus --allow-write for
 * the screenshots), on Bun, and on Node against the npm build. Without
 * /usr/bin/chromium it fails and says how to install it.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import fs from "node:fs";
import { fileURLToPath } from "node:url";
import type { Browser, Page } from "playwright-core";
import { startCollector } from "../serve/mod.ts";
import { Analytics } from "../mod.ts";
import { answerRefusedProbes, CHROMIUM } from "./fixtures/browser.ts";

const ARTIFACTS = fileURLToPath(new URL("../.test-artifacts/", import.meta.url));
const ROW = 'tr[data-testid="event-row"]';
const JSON_PANE = '[data-testid="event-json"]';
const REASONS = '[data-testid="reasons"]';

/** Resolves once `expression` is true in the page (a string: it is evaluated there). */
const until = (page: Page, expression: string): Promise<unknown> =>
  page.waitForFunction(expression, undefined, { timeout: 10_000 });
const rowsBecome = (page: Page, n: number): Promise<unknown> =>
  until(page, `document.querySelectorAll('${ROW}').length === ${n}`);
const rowCount = (page: Page): Promise<number> => page.locator(ROW).count();
/** The Type column of every row, top to bottom. */
const rowTypes = (page: Page): Promise<string[]> => page.locator(`${ROW} td.type`).allInnerTexts();
const shownJson = async (page: Page): Promise<Record<string, unknown>> =>
  JSON.parse(await page.locator(JSON_PANE).innerText());
const focusedId = (page: Page): Promise<string | null> => page.evaluate("document.activeElement?.id ?? null");
const delay = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

/** Posts raw messages, as a client other than the library would. */
async function post(url: string, path: string, body: unknown): Promise<void> {
  const res = await fetch(`${url}${path}`, {
    method: "POST",
    headers: { "content-type": "application/json", authorization: `Basic ${btoa("KEY:")}` },
    body: JSON.stringify(body),
  });
  await res.body?.cancel();
  assert.equal(res.status, 200, `POST ${path}`);
}

test("the inspector shows stored and live messages, their JSON and reasons, filters them, and clears", async () => {
  assert.ok(
    fs.existsSync(CHROMIUM),
    `Cannot run the inspector's browser test: ${CHROMIUM} is missing. Install Debian's Chromium ` +
      "(sudo apt-get install -y chromium), as .ci/run does.",
  );
  let collector = await startCollector({ port: 0 });
  const analytics = new Analytics({ writeKey: "KEY", host: collector.url });
  const undoProbes = answerRefusedProbes();
  let browser: Browser | undefined;
  try {
    // Stored before the page opens: it comes from GET /api/events.
    analytics.identify("user-1", { email: "ann@example.com", name: "Ann" });
    await analytics.flush();

    const { chromium } = await import("playwright-core"); // imported here: loading it probes the host
    browser = await chromium.launch({ executablePath: CHROMIUM, args: ["--no-sandbox"] });
    const page = await browser.newPage({ viewport: { width: 1366, height: 768 }, colorScheme: "light" });
    const problems: string[] = [];
    page.on("pageerror", (error) => problems.push(String(error)));
    page.on("console", (message) => void (message.type() === "error" && problems.push(message.text())));
    /** What the next confirm is answered: Clear asks before it wipes. */
    let confirmClear: boolean | undefined;
    page.on("dialog", (dialog) => {
      if (
        dialog.type() === "confirm" && confirmClear !== undefined && /^Forget all \d+ stored/.test(dialog.message())
      ) {
        return void (confirmClear ? dialog.accept() : dialog.dismiss());
      }
      problems.push(`a dialog opened: ${dialog.message()}`);
      void dialog.dismiss();
    });

    await page.goto(`${collector.url}/`);
    await page.waitForSelector('#conn[data-state="live"]', { timeout: 10_000 });
    await rowsBecome(page, 1);
    assert.deepEqual(await rowTypes(page), ["identify"]);

    // Sent after the page loaded: they can only arrive through the live stream.
    analytics.track("user-1", "Order Completed", { revenue: 12.5, currency: "EUR" });
    analytics.page("user-2", "Docs", "Install");
    await analytics.flush();
    const markup = `<img src=x onerror="window.__injected=1"><b>bold</b>`;
    await post(collector.url, "/v1/track", { userId: "user-4", event: markup, messageId: "markup-1" });
    await post(collector.url, "/v1/track", {
      userId: "user-3",
      messageId: "bad-1",
      timestamp: new Date().toISOString(),
    });
    await rowsBecome(page, 5);

    const rows = await page.locator(ROW).allInnerTexts();
    assert.deepEqual(await rowTypes(page), ["track", "track", "page", "track", "identify"], "newest first");
    assert.match(rows[0], /user-3/);
    assert.equal(await page.locator(`${ROW} .badge`).first().innerText(), "bad");
    assert.match(rows[2], /user-2\s+Docs \/ Install\s+good/);
    assert.match(rows[3], /Order Completed/);
    assert.match(rows[4], /user-1\s+ann@example\.com/);

    // Message data is text, never markup.
    assert.equal(await page.locator(`${ROW} td.what`).nth(1).innerText(), markup);
    assert.equal(await page.locator("#rows img, #rows b").count(), 0);
    assert.equal(await page.evaluate("window.__injected"), undefined);

    // Counters per type and in total, pushed by the stream.
    await until(page, `document.getElementById("total").textContent === "5"`);
    await until(page, `document.querySelector('[data-testid="type-track"]').ariaLabel === "track: 3 messages, 1 bad"`);
    assert.equal(await page.locator('[data-testid="bad"]').innerText(), "1");
    assert.equal(await page.locator('[data-testid="evicted"]').innerText(), "0");
    assert.equal(await page.getAttribute('[data-testid="type-page"]', "aria-label"), "page: 1 message, 0 bad");

    // A click shows the message as it arrived, and why it is bad.
    await page.locator(ROW).first().click();
    assert.match(await page.locator(REASONS).innerText(), /^1 problem\nevent is missing/i);
    assert.deepEqual(
      { messageId: (await shownJson(page)).messageId, userId: (await shownJson(page)).userId },
      { messageId: "bad-1", userId: "user-3" },
    );
    assert.equal(await page.locator(`${ROW}[aria-selected="true"]`).count(), 1);
    assert.equal(await focusedId(page), await page.locator(ROW).first().getAttribute("id"));

    // The keyboard moves the selection (arrows, j/k, Home/End) and the detail follows.
    await page.keyboard.press("ArrowDown");
    assert.equal((await shownJson(page)).messageId, "markup-1");
    await page.keyboard.press("j");
    await page.keyboard.press("j");
    assert.equal((await shownJson(page)).event, "Order Completed");
    assert.equal(await page.locator(REASONS).count(), 0, "a good message has no reasons");
    assert.equal(await page.locator('[data-testid="valid"]').count(), 1);
    await page.keyboard.press("k");
    assert.equal((await shownJson(page)).name, "Install");
    await page.keyboard.press("End");
    assert.equal((await shownJson(page)).type, "identify");
    await page.keyboard.press("Home");
    assert.equal((await shownJson(page)).messageId, "bad-1");
    await page.keyboard.press("ArrowDown");
    await page.keyboard.press("ArrowDown");
    await page.keyboard.press("ArrowDown");
    assert.equal((await shownJson(page)).event, "Order Completed");
    fs.mkdirSync(ARTIFACTS, { recursive: true });
    await page.screenshot({ path: `${ARTIFACTS}inspector.png` });

    // Filters: by type (the counters are the buttons), by status, by text anywhere in the JSON.
    await page.click('[data-testid="type-track"]');
    assert.equal(await page.getAttribute('[data-testid="type-track"]', "aria-pressed"), "true");
    assert.deepEqual(await rowTypes(page), ["track", "track", "track"]);
    await page.selectOption("#status-filter", "bad");
    assert.equal(await rowCount(page), 1);
    assert.equal(await page.locator('[data-testid="shown"]').innerText(), "1 of 5 shown");
    await page.click('[data-testid="type-track"]'); // pressed again: all types
    await page.selectOption("#status-filter", "");
    assert.deepEqual(await rowTypes(page), ["track", "track", "page", "track", "identify"], "all back, newest first");
    await page.locator(ROW).nth(2).focus();
    await page.keyboard.press("/");
    assert.equal(await focusedId(page), "search");
    await page.keyboard.type("ann@example");
    assert.deepEqual(await rowTypes(page), ["identify"]);
    await page.keyboard.type("-nobody");
    assert.equal(await rowCount(page), 0);
    assert.ok(await page.locator('[data-testid="empty"]').isVisible());
    await page.keyboard.press("Escape"); // empties the search
    assert.equal(await rowCount(page), 5);
    await page.keyboard.press("Escape"); // back to the list, on the selected row
    assert.equal(await focusedId(page), await page.locator(`${ROW}[aria-selected="true"]`).getAttribute("id"));
    await page.keyboard.press("Enter");
    assert.equal((await shownJson(page)).event, "Order Completed");

    await page.emulateMedia({ colorScheme: "dark" });
    await page.screenshot({ path: `${ARTIFACTS}inspector-dark.png` });
    await page.emulateMedia({ colorScheme: "light" });

    // A flood: the page keeps the newest 2000 rows, and stays responsive.
    const flood = Array.from({ length: 2100 }, (_, i) => ({
      type: "track",
      userId: `flood-${i}`,
      event: "Flooded",
      messageId: `flood-${i}`,
    }));
    await post(collector.url, "/v1/batch", { batch: flood });
    await until(page, `document.getElementById("total").textContent === "2105"`);
    await rowsBecome(page, 2000);
    assert.match(await page.locator(ROW).first().innerText(), /flood-2099/);
    assert.equal(await page.evaluate("1 + 1"), 2);

    // The collector restarts, as when `tally serve` is run again: the page says so, reconnects, and shows
    // what the new one holds.
    const { port } = collector;
    await collector.stop();
    await until(page, `document.getElementById("conn").dataset.state !== "live"`);
    collector = await startCollector({ port });
    await post(collector.url, "/v1/track", { userId: "user-5", event: "After Restart", messageId: "restart-1" });
    await page.waitForSelector('#conn[data-state="live"]', { timeout: 10_000 });
    await rowsBecome(page, 1);
    assert.match(await page.locator(ROW).first().innerText(), /After Restart/);

    // Clear asks first: declined, nothing goes.
    confirmClear = false;
    await page.click('[data-testid="clear"]');
    await delay(200);
    assert.equal(await rowCount(page), 1, "Clear declined: the messages stay");
    assert.equal(collector.stats().total, 1);
    confirmClear = true;
    await page.click('[data-testid="clear"]');
    await rowsBecome(page, 0);
    await until(page, `document.getElementById("total").textContent === "0"`);
    assert.equal(collector.stats().total, 0);
    assert.match(await page.locator('[data-testid="empty"]').innerText(), /No messages yet/);
    assert.match(await page.locator('[data-testid="detail"]').innerText(), /Select a message/);
    assert.deepEqual(problems, [], "no script errors on the page");
  } finally {
    await browser?.close();
    undoProbes();
    await analytics.close({ timeout: 1000 });
    await collector.stop();
  }
});

test("messages of an unknown type or none have their own counter, the counters add up, and a filtered DELETE removes rows", async () => {
  assert.ok(fs.existsSync(CHROMIUM), `Cannot run the inspector's browser test: ${CHROMIUM} is missing`);
  const collector = await startCollector({ port: 0 });
  const undoProbes = answerRefusedProbes();
  let browser: Browser | undefined;
  try {
    await post(collector.url, "/v1/batch", {
      batch: [
        { type: "track", messageId: "t1", userId: "u1", event: "Signed Up" },
        { type: "identify", messageId: "i1", userId: "u1" },
        { type: "foo", messageId: "f1", userId: "u2" },
        { messageId: "n1", userId: "u3" },
      ],
    });
    const { chromium } = await import("playwright-core");
    browser = await chromium.launch({ executablePath: CHROMIUM, args: ["--no-sandbox"] });
    const page = await browser.newPage({ viewport: { width: 1366, height: 768 } });
    const problems: string[] = [];
    page.on("pageerror", (error) => problems.push(String(error)));
    page.on("console", (message) => void (message.type() === "error" && problems.push(message.text())));
    await page.goto(`${collector.url}/`);
    await page.waitForSelector('#conn[data-state="live"]', { timeout: 10_000 });
    await rowsBecome(page, 4);

    const unknown = '[data-testid="type-unknown"]';
    await until(page, `document.querySelector('${unknown}')?.ariaLabel === "unknown: 2 messages, 2 bad"`);
    /** Each chip's count, by its type ("" for all). */
    const counts = (): Promise<Record<string, number>> =>
      page.evaluate(`Object.fromEntries([...document.querySelectorAll("#types .chip")]
        .map((b) => [b.dataset.type, Number(b.querySelector(".n").textContent)]))`);
    const before = await counts();
    assert.deepEqual(before, { "": 4, identify: 1, track: 1, page: 0, screen: 0, group: 0, alias: 0, unknown: 2 });
    const { "": all, ...perType } = before;
    assert.equal(Object.values(perType).reduce((a, b) => a + b, 0), all, "the counters add up to all");

    await page.click(unknown);
    assert.deepEqual(await rowTypes(page), ["", "foo"], "the unknown counter filters them");
    await page.locator(ROW).first().click();
    assert.equal(await page.locator(".detail h2 .type-tag").innerText(), "no type");
    assert.match(await page.locator(REASONS).innerText(), /type is missing/);
    // The row itself says why, before any click: its first reason.
    assert.deepEqual(await page.locator('[data-testid="row-reason"]').allInnerTexts(), [
      "type is missing: it must be one of identify, track, page, screen, group, alias",
      'type "foo" is not one of identify, track, page, screen, group, alias',
    ]);
    await page.click(unknown);
    assert.equal(await rowCount(page), 4);

    // A filtered DELETE from elsewhere (a script, another page): its rows go, and so do their counts.
    const removed = await fetch(`${collector.url}/api/events?status=bad`, { method: "DELETE" });
    assert.deepEqual(await removed.json(), { deleted: 2 });
    await rowsBecome(page, 2);
    assert.deepEqual(await rowTypes(page), ["identify", "track"]);
    await until(page, `document.getElementById("total").textContent === "2"`);
    await until(page, `document.querySelector('${unknown}') === null`);
    assert.match(await page.locator('[data-testid="detail"]').innerText(), /Select a message/, "its detail is gone");
    const after = await counts();
    assert.equal(after[""], 2);

    // A re-send (the same messageId again) has a dup badge, a counter, and a filter kept in the address.
    await post(collector.url, "/v1/batch", {
      batch: [{ type: "track", messageId: "t1", userId: "u1", event: "Signed Up" }],
    });
    await rowsBecome(page, 3);
    await until(page, `document.getElementById("duplicates").textContent === "1"`);
    assert.equal(await page.locator(`${ROW} [data-testid="duplicate"]`).count(), 1);
    assert.equal(await page.locator(ROW).first().locator('[data-testid="duplicate"]').count(), 1, "the newest");
    await page.check('[data-testid="duplicate-filter"]');
    assert.equal(await rowCount(page), 1);
    assert.match(new URL(page.url()).hash, /duplicate=true/);
    await page.reload();
    await page.waitForSelector('#conn[data-state="live"]', { timeout: 10_000 });
    await rowsBecome(page, 1);
    assert.equal(await page.isChecked('[data-testid="duplicate-filter"]'), true, "the filter survives a reload");
    await page.locator(ROW).first().click();
    assert.match(await page.locator('[data-testid="detail"]').innerText(), /Duplicate\s+a message with this messageId/);
    assert.deepEqual(problems, [], "no script errors on the page");
  } finally {
    await browser?.close();
    undoProbes();
    await collector.stop();
  }
});

test("event fields cannot run script in the inspector, and a page on another site can neither read, post nor delete", async () => {
  assert.ok(fs.existsSync(CHROMIUM), `Cannot run the inspector's browser test: ${CHROMIUM} is missing`);
  const collector = await startCollector({ port: 0 });
  // The other site: a page on http://evil.test (mapped to 127.0.0.1 inside the browser only) that tries each way a
  // page can reach the collector without the user's say: a form, no-cors fetches, a DELETE, and the API by name.
  const { createServer } = await import("node:http");
  const target = collector.url;
  const attack = `<!doctype html><meta charset="utf-8"><title>other site</title>
<iframe name="sink"></iframe>
<form id="f" method="POST" enctype="text/plain" action="${target}/v1/track" target="sink">
<input name='{"type":"track","userId":"forged","messageId":"forged-form","event":"Forged","x":"' value='"}'></form>
<script>
window.results = {};
const note = (name, p) => p.then((r) => { window.results[name] = "answered " + r.type + " " + r.status; },
  (e) => { window.results[name] = "failed"; });
note("post", fetch("${target}/v1/batch", { method: "POST", mode: "no-cors", headers: { "content-type": "text/plain" },
  body: JSON.stringify({ batch: [{ type: "track", userId: "forged", messageId: "forged-fetch", event: "Forged" }] }) }));
note("delete", fetch("${target}/api/events", { method: "DELETE" }));
note("read", fetch("${target}/api/events"));
const stream = new EventSource("${target}/api/stream");
stream.onerror = () => { window.results.stream = "failed"; stream.close(); };
stream.onmessage = () => { window.results.stream = "read"; };
document.getElementById("f").submit();
</script>`;
  const evil = createServer((_req, res) => {
    res.writeHead(200, { "content-type": "text/html; charset=utf-8" });
    res.end(attack);
  });
  await new Promise<void>((resolve) => evil.listen(0, "127.0.0.1", resolve));
  const evilPort = (evil.address() as { port: number }).port;
  const undoProbes = answerRefusedProbes();
  let browser: Browser | undefined;
  try {
    const markup = [
      `<script>window.__injected = 1</script>`,
      `<img src=x onerror="window.__injected = 2">`,
      `"><svg onload="window.__injected = 3">`,
    ];
    await post(collector.url, "/v1/batch", {
      batch: markup.map((text, i) => ({
        type: "track",
        messageId: `markup-${i}`,
        userId: text,
        event: text,
        properties: { [text]: text, nested: { html: text } },
        context: { page: { title: text } },
      })),
    });
    const { chromium } = await import("playwright-core");
    browser = await chromium.launch({
      executablePath: CHROMIUM,
      args: ["--no-sandbox", "--host-resolver-rules=MAP evil.test 127.0.0.1"],
    });
    const page = await browser.newPage({ viewport: { width: 1366, height: 768 } });
    const problems: string[] = [];
    page.on("pageerror", (error) => problems.push(String(error)));
    page.on("dialog", (dialog) => void problems.push(`a dialog opened: ${dialog.message()}`));
    await page.goto(`${collector.url}/`);
    await page.waitForSelector('#conn[data-state="live"]', { timeout: 10_000 });
    await rowsBecome(page, 3);
    for (let i = 0; i < 3; i++) {
      await page.locator(ROW).nth(i).click();
      const shown = await shownJson(page);
      assert.equal(shown.event, markup[2 - i], "the detail shows the markup as text");
    }
    assert.deepEqual(await page.locator(`${ROW} td.what`).allInnerTexts(), [...markup].reverse());
    assert.equal(await page.locator("#rows img, #rows script, #rows svg, #detail img, #detail svg").count(), 0);
    assert.equal(await page.evaluate("document.querySelectorAll('script').length"), 1, "only the page's own script");
    assert.equal(await page.evaluate("window.__injected"), undefined, "no event field ran as script");

    // The other site's page.
    const other = await browser.newPage();
    await other.goto(`http://evil.test:${evilPort}/`);
    await other.waitForFunction("['post', 'delete', 'read', 'stream'].every((k) => k in window.results)", undefined, {
      timeout: 10_000,
    });
    const results = await other.evaluate("window.results") as Record<string, string>;
    assert.equal(results.delete, "failed", "the DELETE never left the browser: its preflight was refused");
    assert.equal(results.read, "failed", "the API cannot be read from another site");
    assert.equal(results.stream, "failed", "nor the stream");
    // The form's POST, into the iframe, and the no-cors fetch: both reach the collector, and are refused.
    for (const end = Date.now() + 5000; collector.stats().requests < 3 && Date.now() < end;) await delay(20);
    // DNS rebinding: another name for 127.0.0.1, on the collector's own port.
    const rebound = await other.goto(`http://evil.test:${collector.port}/api/events`);
    assert.equal(rebound?.status(), 403);
    assert.equal((await other.goto(`http://evil.test:${collector.port}/`))?.status(), 403, "nor the inspector");

    const stored = collector.events();
    assert.equal(stored.length, 3, "nothing forged was stored, nothing deleted");
    assert.ok(stored.every((e) => e.message.userId !== "forged"));
    assert.equal(collector.stats().requests, 1 + 2, "the form and the fetch reached it, and were refused");
    assert.equal(results.post, "answered opaque 0", "a no-cors POST cannot read its answer either");
    assert.deepEqual(problems, [], "no script errors or dialogs on the inspector");
  } finally {
    await browser?.close();
    undoProbes();
    await new Promise((resolve) => evil.close(resolve));
    await collector.stop();
  }
});

test("with a plan: a violation shows in its row and in the detail, blocked has its badge, and the plan filter survives a reload", async () => {
  assert.ok(fs.existsSync(CHROMIUM), `Cannot run the inspector's browser test: ${CHROMIUM} is missing`);
  const collector = await startCollector({ port: 0, plan: "examples/plan.json", planMode: "block-unplanned" });
  const undoProbes = answerRefusedProbes();
  let browser: Browser | undefined;
  try {
    const marked = '<img src=x onerror="window.__pwned=1">';
    await post(collector.url, "/v1/batch", {
      batch: [
        { type: "track", messageId: "p1", userId: "u1", event: "Signed Up", properties: { plan: "Pro" } },
        { type: "track", messageId: "p2", userId: "u1", event: "Signed Up", properties: { plan: "Gold" } },
        // A field name from the event is shown as text, never as markup.
        { type: "track", messageId: "p3", userId: "u1", event: "Order Shipped" },
        {
          type: "track",
          messageId: "p4",
          userId: "u1",
          event: "Order Completed",
          properties: { order_id: "o1", total: 1, currency: "EUR", products: [], [marked]: 1 },
        },
      ],
    });
    const { chromium } = await import("playwright-core");
    browser = await chromium.launch({ executablePath: CHROMIUM, args: ["--no-sandbox"] });
    const page = await browser.newPage({ viewport: { width: 1366, height: 768 } });
    const problems: string[] = [];
    page.on("pageerror", (error) => problems.push(String(error)));
    page.on("console", (message) => void (message.type() === "error" && problems.push(message.text())));
    await page.goto(`${collector.url}/`);
    await page.waitForSelector('#conn[data-state="live"]', { timeout: 10_000 });
    await rowsBecome(page, 4);
    // Newest first: p4, p3, p2, p1; the planned one has no violation.
    const shown = await page.locator(`${ROW} [data-testid="row-violation"]`).allInnerTexts();
    assert.ok(shown[0].startsWith("additional_property at ") && shown[0].includes("<img src=x onerror="), shown[0]);
    assert.deepEqual(shown.slice(1), [
      'unplanned_event at $.event: event "Order Shipped" is not in the plan',
      'enum_mismatch at $.properties.plan: expected one of "Free", "Pro", "Enterprise", got "Gold"',
    ]);
    assert.equal(await page.locator(`${ROW} [data-testid="plan-badge"]`).count(), 3);
    assert.equal(await page.locator(`${ROW} [data-testid="blocked"]`).count(), 1);
    assert.equal(await page.locator(ROW).nth(1).locator('[data-testid="blocked"]').count(), 1, "the unplanned one");
    await until(page, `document.getElementById("off-plan").textContent === "3"`);
    assert.equal(await page.locator('[data-testid="blocked-count"]').innerText(), "1");
    assert.equal(await page.isVisible('[data-testid="plan-filter"]'), true, "the plan filter shows with a plan");

    await page.locator(ROW).first().click();
    const items = await page.locator('[data-testid="violation"]').allInnerTexts();
    assert.ok(items.length >= 1, "the detail lists the violations");
    assert.ok(
      items.some((t) => t.startsWith("additional_property") && t.includes("<img src=x onerror=")),
      items.join("\n"),
    );
    await page.locator(ROW).nth(1).click();
    assert.match(await page.locator('[data-testid="detail"]').innerText(), /Blocked\s+an unplanned event/);
    assert.equal(await page.evaluate("window.__pwned === undefined && !document.querySelector('#detail img')"), true);

    await page.selectOption('[data-testid="plan-filter"]', "enum_mismatch");
    assert.equal(await rowCount(page), 1);
    assert.match(new URL(page.url()).hash, /plan=enum_mismatch/);
    await page.reload();
    await page.waitForSelector('#conn[data-state="live"]', { timeout: 10_000 });
    await rowsBecome(page, 1);
    assert.equal(await page.inputValue('[data-testid="plan-filter"]'), "enum_mismatch", "the filter survives a reload");
    await page.selectOption('[data-testid="plan-filter"]', "blocked");
    assert.equal(await rowCount(page), 1);
    await page.selectOption('[data-testid="plan-filter"]', "none");
    assert.equal(await rowCount(page), 1);
    await page.selectOption('[data-testid="plan-filter"]', "any");
    assert.equal(await rowCount(page), 3);
    assert.equal(await page.evaluate("window.__pwned"), undefined, "no markup from an event ran");
    assert.deepEqual(problems, [], "no script errors on the page");
  } finally {
    await browser?.close();
    undoProbes();
    await collector.stop();
  }
});
