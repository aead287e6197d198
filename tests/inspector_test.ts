/**
 * The inspector in a real headless Chromium (Debian's `chromium`, driven by
 * playwright-core): the page loads, rows appear live as the library sends,
 * a click shows the JSON and the validation reasons, the filters and the
 * keyboard work, and Clear empties it. A screenshot goes to .test-artifacts/.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { existsSync, mkdirSync } from "node:fs";
import { fileURLToPath } from "node:url";
import type { Browser, Page } from "playwright-core";
import { startCollector } from "../lib/collector/mod.ts";
import { Analytics } from "../mod.ts";

const CHROMIUM = "/usr/bin/chromium";
const ARTIFACTS = fileURLToPath(new URL("../.test-artifacts/", import.meta.url));
const ROW = 'tr[data-testid="event-row"]';

/** Resolves once the page shows `n` message rows. */
const rowsBecome = (page: Page, n: number): Promise<unknown> =>
  page.waitForFunction(`document.querySelectorAll('${ROW}').length === ${n}`, undefined, { timeout: 10_000 });
const rowCount = (page: Page): Promise<number> => page.locator(ROW).count();
const rowTexts = (page: Page): Promise<string[]> => page.locator(ROW).allInnerTexts();

// playwright-core reads /proc/sys/fs/binfmt_misc at launch, which Deno allows only under --allow-all; the suite
// runs Deno with scoped permissions, so this test runs on Bun and on Node (the npm build) and is skipped on Deno.
const skip = "Deno" in globalThis ? "needs --allow-all on Deno (playwright reads /proc); runs on Bun and Node" : false;

test("the inspector shows messages live, their JSON and reasons, filters them, and clears", { skip }, async () => {
  assert.ok(existsSync(CHROMIUM), `${CHROMIUM} is missing: install Debian's chromium (apt-get install chromium)`);
  const collector = await startCollector({ port: 0 });
  let browser: Browser | undefined;
  const analytics = new Analytics({ writeKey: "KEY", host: collector.url });
  try {
    const { chromium } = await import("playwright-core"); // imported here: loading it reads the home directory
    browser = await chromium.launch({ executablePath: CHROMIUM, args: ["--no-sandbox"] });
    const page = await browser.newPage({ viewport: { width: 1366, height: 768 } });
    const problems: string[] = [];
    page.on("pageerror", (error) => problems.push(String(error)));
    page.on("console", (message) => void (message.type() === "error" && problems.push(message.text())));

    await page.goto(`${collector.url}/`);
    await page.waitForSelector('#conn[data-state="live"]', { timeout: 10_000 });
    assert.equal(await rowCount(page), 0);

    // Sent after the page loaded: they can only arrive through the live stream.
    analytics.identify("user-1", { email: "ann@example.com", name: "Ann" });
    analytics.track("user-1", "Order Completed", { revenue: 12.5, currency: "EUR" });
    analytics.page("user-2", "Docs", "Install");
    await analytics.flush();
    const bad = await fetch(`${collector.url}/v1/track`, {
      method: "POST",
      headers: { "content-type": "application/json", authorization: `Basic ${btoa("KEY:")}` },
      body: JSON.stringify({ userId: "user-3", messageId: "bad-1", timestamp: new Date().toISOString() }),
    });
    await bad.body?.cancel();
    await rowsBecome(page, 4);

    const texts = await rowTexts(page);
    assert.match(texts[0], /track\s+user-3/, "newest first");
    assert.match(texts[0], /bad/);
    assert.match(texts[2], /Order Completed/);
    assert.match(texts[3], /identify\s+user-1/);
    await page.waitForFunction(
      `document.querySelector('[data-testid="count-track"]')?.textContent === "track 2 (1 bad)"`,
      undefined,
      { timeout: 10_000 },
    );

    // A click shows the message as it arrived and why it is bad.
    await page.locator(ROW).first().click();
    assert.match(await page.locator('[data-testid="reasons"]').innerText(), /event/);
    const shown = JSON.parse(await page.locator('[data-testid="event-json"]').innerText());
    assert.equal(shown.messageId, "bad-1");
    assert.equal(shown.userId, "user-3");

    // The keyboard moves the selection: down twice reaches the good track.
    await page.keyboard.press("ArrowDown");
    await page.keyboard.press("j");
    assert.equal(JSON.parse(await page.locator('[data-testid="event-json"]').innerText()).event, "Order Completed");
    assert.equal(await page.locator('[data-testid="reasons"]').count(), 0, "a good message has no reasons");
    mkdirSync(ARTIFACTS, { recursive: true });
    await page.screenshot({ path: `${ARTIFACTS}inspector.png` });

    // Filters: by type, by status, and by text anywhere in the JSON ("/" focuses the search box).
    await page.selectOption("#type-filter", "track");
    assert.equal(await rowCount(page), 2);
    await page.selectOption("#status-filter", "bad");
    assert.equal(await rowCount(page), 1);
    await page.selectOption("#type-filter", "");
    await page.selectOption("#status-filter", "");
    await page.keyboard.press("/");
    await page.keyboard.type("ann@example");
    assert.deepEqual((await rowTexts(page)).map((t) => t.split(/\s+/)[1]), ["identify"]);
    await page.keyboard.press("Escape");
    assert.equal(await rowCount(page), 4);

    await page.click("#clear");
    await rowsBecome(page, 0);
    assert.equal(collector.stats().total, 0);
    assert.deepEqual(problems, [], "no script errors on the page");
  } finally {
    await browser?.close();
    await analytics.close({ timeout: 1000 });
    await collector.stop();
  }
});
