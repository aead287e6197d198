/**
 * `tally serve` for a web app, end to end: the real `@segment/analytics-next`
 * (its UMD build, from node_modules) in headless Chromium, on a page served
 * from 127.0.0.1, sends to the collector: once with only `cdnURL` pointing at
 * it (settings loaded from `/v1/projects/:writeKey/settings`, standard
 * delivery), once with explicit `cdnSettings` and
 * `integrations["Segment.io"]` (batching delivery, and its metrics to
 * `/v1/m`). identify, track, page, group and alias all arrive and are good;
 * the inspector, in the same browser, shows them beside what Tally (the
 * library) sent in the same run, with their sources told apart; the source
 * filter in the URL survives a reload; at 420 px the status column is in
 * view (screenshot into a temp dir); markup in an event name stays text.
 *
 * Runs where tests/inspector_test.ts runs (Deno with the suite's scoped
 * permissions, Bun, Node on the npm build), with the same Chromium rule:
 * without /usr/bin/chromium it fails and says how to install it.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import fs from "node:fs";
import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import os from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import type { Browser, Page } from "playwright-core";
import { Analytics } from "../mod.ts";
import { type Collector, startCollector, type StoredEvent } from "../serve/mod.ts";
import { answerRefusedProbes, CHROMIUM } from "./fixtures/browser.ts";
import { canWrite, delay } from "./fixtures/collector_helpers.ts";

/** analytics-next's browser build, from the nearest node_modules above this file (the npm build runs the tests deeper). */
const AJS =
  ["../", "../../", "../../../"].map((up) =>
    fileURLToPath(new URL(`${up}node_modules/@segment/analytics-next/dist/umd/index.js`, import.meta.url))
  ).find((path) => fs.existsSync(path)) ?? "node_modules/@segment/analytics-next/dist/umd/index.js (not found)";
const WRITE_KEY = "wk_browser_test_KEY";
const ROW = 'tr[data-testid="event-row"]';
const MARKUP = `<img src=x onerror="window.__injected=1">`;

/** The page a web app would be: analytics.js, and a function the test calls to load it and send five calls. */
const PAGE = `<!doctype html><meta charset="utf-8"><title>web app</title><link rel="icon" href="data:,">
<script src="/analytics.js"></script>
<script>
window.run = async (tag, settings, options, extra) => {
  const analytics = AnalyticsNext.AnalyticsBrowser.load(settings, options);
  await analytics.identify("web-" + tag, { email: tag + "@example.com", name: "Web " + tag });
  await analytics.track("Web Clicked " + tag, { button: "buy", revenue: 3.5, currency: "EUR" });
  for (const name of extra) await analytics.track(name);
  await analytics.page("Docs", "Home " + tag);
  await analytics.group("group-" + tag, { name: "Acme " + tag, employees: 12 });
  await analytics.alias("web-" + tag + "-new", "web-" + tag);
  return true;
};
</script>`;

/** Resolves once `check` holds, polling; fails with `what` after `ms`. */
async function eventually(what: string, check: () => boolean, ms = 15_000): Promise<void> {
  for (const end = Date.now() + ms; !check();) {
    if (Date.now() > end) assert.fail(`Timed out waiting for ${what}`);
    await delay(25);
  }
}

const webEvents = (collector: Collector, tag: string): StoredEvent[] =>
  collector.events({ source: "analytics.js" }).filter((e) =>
    JSON.stringify(e.message).includes(`web-${tag}`) || JSON.stringify(e.message).includes(` ${tag}`)
  );

test("analytics.js in Chromium sends to tally serve (cdnURL, or cdnSettings; standard and batching), and the inspector shows it beside Tally's", async () => {
  assert.ok(
    fs.existsSync(CHROMIUM),
    `Cannot run the browser test: ${CHROMIUM} is missing. Install Debian's Chromium (sudo apt-get install -y ` +
      "chromium), as .ci/run does.",
  );
  const collector = await startCollector({ port: 0 });
  const script = fs.readFileSync(AJS);
  const site = createServer((req, res) => {
    if (req.url === "/analytics.js") {
      res.writeHead(200, { "content-type": "text/javascript", "content-length": String(script.length) });
      return void res.end(script);
    }
    res.writeHead(req.url === "/" ? 200 : 404, { "content-type": "text/html; charset=utf-8" });
    res.end(req.url === "/" ? PAGE : "");
  });
  await new Promise<void>((resolve) => site.listen(0, "127.0.0.1", resolve));
  const siteUrl = `http://127.0.0.1:${(site.address() as AddressInfo).port}`;
  const analytics = new Analytics({ writeKey: WRITE_KEY, host: collector.url });
  const shots = canWrite ? fs.mkdtempSync(join(os.tmpdir(), "tally-browser-")) : undefined;
  const undoProbes = answerRefusedProbes();
  let browser: Browser | undefined;
  try {
    const { chromium } = await import("playwright-core"); // imported here: loading it probes the host
    browser = await chromium.launch({ executablePath: CHROMIUM, args: ["--no-sandbox"] });
    const problems: string[] = [];
    const watch = (page: Page, name: string): Page => {
      page.on("pageerror", (error) => problems.push(`${name}: ${error}`));
      page.on("console", (message) => {
        // A failed request is reported below, with its address.
        if (message.type() === "error" && !message.text().startsWith("Failed to load resource")) {
          problems.push(`${name}: ${message.text()}`);
        }
      });
      page.on("response", (response) => {
        if (response.status() >= 400) problems.push(`${name}: ${response.status()} ${response.url()}`);
      });
      return page;
    };

    // 1. The two-line setup: only cdnURL; settings come from the collector; standard delivery (one request each).
    const app = watch(await browser.newPage(), "web app (cdnURL)");
    await app.goto(`${siteUrl}/`);
    const sent = await app.evaluate(
      ([url, key, markup]) =>
        (window as unknown as { run: (...args: unknown[]) => Promise<boolean> }).run(
          "std",
          {
            writeKey: key,
            cdnURL: url,
          },
          {},
          [markup],
        ),
      [collector.url, WRITE_KEY, MARKUP],
    );
    assert.equal(sent, true);
    await eventually("the five calls sent with cdnURL", () => webEvents(collector, "std").length === 6);

    // 2. The explicit way: cdnSettings (no settings request) and integrations["Segment.io"], batching delivery.
    const apiHost = `127.0.0.1:${collector.port}/v1`;
    const explicit = watch(await browser.newPage(), "web app (cdnSettings)");
    await explicit.goto(`${siteUrl}/`);
    await explicit.evaluate(
      ([key, host]) =>
        (window as unknown as { run: (...args: unknown[]) => Promise<boolean> }).run("batch", {
          writeKey: key,
          cdnSettings: {
            integrations: { "Segment.io": { apiKey: key, apiHost: host, protocol: "http" } },
            metrics: { sampleRate: 1, flushTimer: 300 },
          },
        }, {
          integrations: {
            "Segment.io": {
              apiHost: host,
              protocol: "http",
              deliveryStrategy: { strategy: "batching", config: { size: 3, timeout: 200 } },
            },
          },
        }, []),
      [WRITE_KEY, apiHost],
    );
    await eventually("the five calls sent in batches", () => webEvents(collector, "batch").length === 5);
    await eventually("analytics.js metrics at /v1/m", () => collector.stats().metrics > 0);

    // 3. The server side of the same app, through Tally.
    analytics.identify("server-user", { email: "server@example.com" });
    analytics.track("server-user", "Server Order Completed", { revenue: 20, currency: "USD" });
    await analytics.flush();

    const std = webEvents(collector, "std");
    const batch = webEvents(collector, "batch");
    for (const event of [...std, ...batch]) {
      assert.equal(event.status, "good", `${event.message.type}: ${event.reasons.join("; ")}`);
      assert.equal(event.source.library, "analytics.js");
      assert.equal(event.source.origin, siteUrl);
      assert.match(event.source.userAgent ?? "", /Chrome/);
      assert.ok(!JSON.stringify(event).includes(`"writeKey"`), "no write key stored");
    }
    const types = (events: StoredEvent[]) => events.map((e) => e.message.type).sort();
    assert.deepEqual(types(std), ["alias", "group", "identify", "page", "track", "track"]);
    assert.deepEqual(types(batch), ["alias", "group", "identify", "page", "track"]);
    assert.deepEqual(
      [...new Set(std.map((e) => e.source.endpoint))].sort(),
      ["/v1/a", "/v1/g", "/v1/i", "/v1/p", "/v1/t"],
      "standard delivery: one request per call, to its one-letter endpoint",
    );
    assert.deepEqual([...new Set(batch.map((e) => e.source.endpoint))], ["/v1/b"], "batching delivery: /v1/b");
    // analytics.js's alias (it sends the user's current id as both): what the collector stored is what it sent.
    const alias = std.find((e) => e.message.type === "alias")!;
    assert.equal(typeof alias.message.userId, "string");
    assert.equal(typeof alias.message.previousId, "string");
    assert.match(String(alias.source.version), /next-1\./);
    const server = collector.events({ source: "@tally/analytics" });
    assert.equal(server.length, 2);
    assert.ok(server.every((e) => e.status === "good" && e.source.origin === undefined));
    assert.equal(collector.stats().total, 13, "nothing else was stored (metrics are not events)");

    // 4. The inspector, in the same browser: both streams side by side, told apart by their source.
    const inspector = watch(await browser.newPage({ viewport: { width: 1366, height: 768 } }), "inspector");
    await inspector.goto(`${collector.url}/`);
    await inspector.waitForSelector('#conn[data-state="live"]', { timeout: 10_000 });
    await inspector.waitForFunction(`document.querySelectorAll('${ROW}').length === 13`, undefined, {
      timeout: 10_000,
    });
    const sources = await inspector.locator(`${ROW} td.source`).allInnerTexts();
    assert.deepEqual([...new Set(sources)].sort(), ["@tally/analytics", "analytics.js"]);
    assert.equal(await inspector.locator(`${ROW} .badge.good`).count(), 13);
    // Markup in an event name, sent by analytics.js, is text.
    const names = await inspector.locator(`${ROW} td.what`).allInnerTexts();
    assert.ok(names.includes(MARKUP), "the markup is shown as text");
    assert.equal(await inspector.locator("#rows img").count(), 0);
    assert.equal(await inspector.evaluate("window.__injected"), undefined);

    // The source filter, kept in the URL: a reload (or a shared link) shows the same view.
    await inspector.selectOption('[data-testid="source-filter"]', "analytics.js");
    assert.equal(await inspector.locator(ROW).count(), 11);
    await inspector.selectOption('[data-testid="status-filter"]', "good");
    assert.match(new URL(inspector.url()).hash, /source=analytics\.js/);
    assert.match(new URL(inspector.url()).hash, /status=good/);
    await inspector.reload();
    await inspector.waitForSelector('#conn[data-state="live"]', { timeout: 10_000 });
    await inspector.waitForFunction(`document.querySelectorAll('${ROW}').length === 11`, undefined, {
      timeout: 10_000,
    });
    assert.equal(await inspector.inputValue('[data-testid="source-filter"]'), "analytics.js");
    assert.equal(await inspector.inputValue('[data-testid="status-filter"]'), "good");
    const shared = watch(await browser.newPage(), "shared link");
    await shared.goto(`${collector.url}/#source=%40tally%2Fanalytics`);
    await shared.waitForFunction(`document.querySelectorAll('${ROW}').length === 2`, undefined, { timeout: 10_000 });

    // The detail pane tells where a message came from.
    await inspector.locator(ROW).first().click();
    const detail = await inspector.locator('[data-testid="detail"]').innerText();
    assert.match(detail, /Library\s+analytics\.js next-1\./);
    assert.match(detail, new RegExp(`Origin\\s+${siteUrl.replace(/\./g, "\\.")}`));

    // 420 px wide: the status column stays in view.
    await inspector.setViewportSize({ width: 420, height: 800 });
    const header = await inspector.locator("th.c-status").boundingBox();
    assert.ok(header !== null && header.width > 40, "the status header is shown");
    assert.ok(header.x >= 0 && header.x + header.width <= 420, `the status header is within 420 px: ${header.x}`);
    const cell = await inspector.locator(`${ROW} td.status`).first().boundingBox();
    assert.ok(cell !== null && cell.x + cell.width <= 420);
    assert.ok(await inspector.locator(`${ROW} td.status .badge`).first().isVisible());
    const width = await inspector.evaluate("document.documentElement.scrollWidth");
    assert.ok(Number(width) <= 420, `no horizontal scrolling at 420 px (page is ${width} px wide)`);
    if (shots !== undefined) await inspector.screenshot({ path: join(shots, "inspector-420.png"), fullPage: true });

    assert.deepEqual(problems, [], "no script errors in the app or the inspector");
  } finally {
    await browser?.close();
    undoProbes();
    await analytics.close({ timeout: 1000 });
    await new Promise((resolve) => site.close(resolve));
    await collector.stop();
    if (shots !== undefined) fs.rmSync(shots, { recursive: true, force: true });
  }
});
