/**
 * The collector's analytics.js surface (`tally serve` for a web app): the
 * one-letter endpoints (`/v1/t`, `/i`, `/p`, `/s`, `/g`, `/a`, `/b`) and
 * `/v1/m` (metrics, counted and not stored), text/plain bodies, the write key
 * in Basic auth or in the body (never stored), `_metadata` left alone by the
 * checks, CORS (preflight and simple requests) for the origins it takes and
 * none for others, the settings endpoint analytics.js loads from `cdnURL`,
 * each event's source (library, user agent, origin, endpoint) and its
 * filter, and duplicate messageIds flagged, counted, filtered and bounded.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Analytics } from "../mod.ts";
import { type Collector, startCollector } from "../serve/mod.ts";
import { canWrite, raw, withCollector } from "./fixtures/collector_helpers.ts";

const KEY = "wk_web_SECRET_123";
const PAGE = "http://localhost:3000";
const BROWSER_UA = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0 Safari/537.36";
const AJS = { name: "analytics.js", version: "npm:next-1.84.3" };

/** A POST as analytics.js makes it: text/plain, from a page, with a browser's user agent. */
const fromPage = (collector: Collector, path: string, body: unknown, headers: Record<string, string> = {}) =>
  raw(collector, "POST", path, {
    "content-type": "text/plain",
    origin: PAGE,
    "user-agent": BROWSER_UA,
    ...headers,
  }, JSON.stringify(body));

let counter = 0;
/** A message as analytics.js builds it: its context.library, `_metadata`, `sentAt`, the key in the body. */
function ajsMessage(type: string, fields: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    type,
    messageId: `ajs-next-${++counter}`,
    anonymousId: "anon-1",
    timestamp: new Date().toISOString(),
    context: { library: AJS, page: { path: "/", url: `${PAGE}/` }, userAgent: BROWSER_UA },
    integrations: {},
    writeKey: KEY,
    sentAt: new Date().toISOString(),
    _metadata: { bundled: ["Segment.io"], unbundled: [], bundledIds: [] },
    ...fields,
  };
}

const basic = (key: string): string => `Basic ${btoa(`${key}:`)}`;

async function apiJson(collector: Collector, path: string): Promise<Record<string, unknown>> {
  const answer = await fetch(`${collector.url}${path}`);
  assert.equal(answer.status, 200, path);
  return await answer.json();
}

test("each analytics.js endpoint takes one text/plain message of its type; /v1/b and /v1/batch take batches", async () => {
  await withCollector({ writeKey: KEY }, async (collector) => {
    const singles: [string, string, Record<string, unknown>][] = [
      ["/v1/t", "track", { event: "Clicked" }],
      ["/v1/i", "identify", { userId: "u1", traits: { email: "ann@example.com" } }],
      ["/v1/p", "page", { name: "Home", properties: { path: "/" } }],
      ["/v1/s", "screen", { name: "Home" }],
      ["/v1/g", "group", { groupId: "g1", traits: { name: "Acme" } }],
      ["/v1/a", "alias", { userId: "u1", previousId: "anon-1" }],
    ];
    for (const [path, type, fields] of singles) {
      const answer = await fromPage(collector, path, ajsMessage(type, fields));
      assert.equal(answer.status, 200, `${path}: ${answer.text}`);
      assert.deepEqual(JSON.parse(answer.text), { success: true });
      const [stored] = collector.events({ limit: 1 });
      assert.equal(stored.message.type, type, path);
      assert.equal(stored.status, "good", `${path}: ${stored.reasons.join("; ")}`);
      assert.equal(stored.source.endpoint, path);
    }
    // The message may leave out its type: the endpoint gives it; a type the endpoint does not take is a reason.
    const { type: _, ...untyped } = ajsMessage("track", { event: "No Type" });
    assert.equal((await fromPage(collector, "/v1/t", untyped)).status, 200);
    assert.equal(collector.events({ limit: 1 })[0].message.type, "track");
    await fromPage(collector, "/v1/t", ajsMessage("identify", { userId: "u1" }));
    assert.deepEqual(collector.events({ limit: 1 })[0].reasons, ['type string "identify" was sent to /v1/t (track)']);

    // Batching delivery: /v1/b as analytics.js sends it (key in the body and in Basic auth), and /v1/batch.
    const batch = [ajsMessage("track", { event: "A" }), ajsMessage("page", { name: "B" })];
    const b = await fromPage(collector, "/v1/b", { writeKey: KEY, batch, sentAt: new Date().toISOString() }, {
      authorization: basic(KEY),
    });
    assert.equal(b.status, 200, b.text);
    const viaBatch = await fromPage(collector, "/v1/batch", { batch: [ajsMessage("track", { event: "C" })] }, {
      authorization: basic(KEY),
    });
    assert.equal(viaBatch.status, 200, viaBatch.text);
    const newest = collector.events({ limit: 3 });
    assert.deepEqual(newest.map((e) => e.source.endpoint), ["/v1/batch", "/v1/b", "/v1/b"]);
    assert.deepEqual(newest.map((e) => e.status), ["good", "good", "good"]);

    // The `_metadata` analytics.js adds is kept as sent and is no reason.
    assert.deepEqual(newest[0].message._metadata, { bundled: ["Segment.io"], unbundled: [], bundledIds: [] });
    assert.equal(collector.stats().bad, 1, "only the wrong type");
    // The write key is never stored.
    const served = await (await fetch(`${collector.url}/api/events?limit=100`)).text();
    assert.ok(!served.includes(KEY), "no stored event holds the write key");
    assert.ok(collector.events().every((e) => !("writeKey" in e.message)));
  });
});

test("the write key is taken from Basic auth or from the body; a wrong or missing one is refused with 401", async () => {
  await withCollector({ writeKey: KEY }, async (collector) => {
    const viaBasic = ajsMessage("track", { event: "Basic" });
    delete viaBasic.writeKey;
    assert.equal((await fromPage(collector, "/v1/t", viaBasic, { authorization: basic(KEY) })).status, 200);
    assert.equal((await fromPage(collector, "/v1/t", ajsMessage("track", { event: "Body" }))).status, 200);
    const wrong = await fromPage(collector, "/v1/t", ajsMessage("track", { event: "Wrong", writeKey: "nope" }));
    assert.equal(wrong.status, 401);
    assert.match(JSON.parse(wrong.text).error, /^Cannot accept the request: a wrong write key/);
    assert.equal(wrong.headers["access-control-allow-origin"], PAGE, "the page can read why");
    const none = ajsMessage("track", { event: "None" });
    delete none.writeKey;
    assert.equal((await fromPage(collector, "/v1/t", none)).status, 401);
    assert.deepEqual(collector.events().map((e) => e.message.event), ["Body", "Basic"]);
  });
});

test("CORS: a preflight from a page it takes is answered with its origin; other origins get no CORS headers", async () => {
  await withCollector({ allowOrigins: ["https://app.example.com"] }, async (collector) => {
    const preflight = (path: string, origin: string) =>
      raw(collector, "OPTIONS", path, {
        origin,
        "access-control-request-method": "POST",
        "access-control-request-headers": "content-type,authorization,x-retry-count",
      });
    for (const path of ["/v1/t", "/v1/i", "/v1/p", "/v1/s", "/v1/g", "/v1/a", "/v1/b", "/v1/batch", "/v1/m"]) {
      for (const origin of [PAGE, "http://127.0.0.1:5173", "https://app.example.com"]) {
        const ok = await preflight(path, origin);
        assert.equal(ok.status, 204, `${path} from ${origin}`);
        assert.equal(ok.headers["access-control-allow-origin"], origin);
        const allowed = String(ok.headers["access-control-allow-headers"]).toLowerCase().split(/,\s*/);
        for (const header of ["content-type", "authorization", "x-retry-count"]) {
          assert.ok(allowed.includes(header), `${path}: ${header} allowed`);
        }
        assert.match(String(ok.headers["access-control-allow-methods"]), /POST/);
        assert.match(String(ok.headers.vary), /origin/i);
        assert.ok(Number(ok.headers["access-control-max-age"]) > 0);
      }
      const foreign = await preflight(path, "https://evil.example");
      assert.equal(foreign.status, 403, path);
      for (const name of Object.keys(foreign.headers)) assert.ok(!name.startsWith("access-control-"), name);
    }
    // Simple requests: the answer names the page's origin, so the page may read it; a foreign page gets 403 and
    // no CORS headers, and nothing is stored.
    const simple = await fromPage(collector, "/v1/t", ajsMessage("track", { event: "Simple" }));
    assert.equal(simple.status, 200);
    assert.equal(simple.headers["access-control-allow-origin"], PAGE);
    assert.match(String(simple.headers.vary), /origin/i);
    const foreign = await fromPage(collector, "/v1/t", ajsMessage("track", { event: "Forged" }), {
      origin: "https://evil.example",
    });
    assert.equal(foreign.status, 403);
    for (const name of Object.keys(foreign.headers)) assert.ok(!name.startsWith("access-control-"), name);
    assert.deepEqual(collector.events().map((e) => e.message.event), ["Simple"]);
  });
});

test("/v1/m takes analytics.js metrics: counted in /api/stats, never stored as events", async () => {
  await withCollector({}, async (collector) => {
    const series = {
      series: [
        { type: "Counter", metric: "analytics_js.invoke", value: 1, tags: { type: "track", library: "analytics.js" } },
        { type: "Counter", metric: "analytics_js.invoke", value: 1, tags: { type: "page", library: "analytics.js" } },
      ],
    };
    const answer = await fromPage(collector, "/v1/m", series);
    assert.equal(answer.status, 200, answer.text);
    assert.equal(answer.headers["access-control-allow-origin"], PAGE);
    assert.equal((await fromPage(collector, "/v1/m", { series: [series.series[0]] })).status, 200);
    assert.equal((await fromPage(collector, "/v1/m", "not json")).status, 200, "analytics.js ignores the answer");
    const bad = await raw(collector, "POST", "/v1/m", { "content-type": "text/plain" }, "{not json");
    assert.equal(bad.status, 400);
    assert.match(JSON.parse(bad.text).error, /not valid JSON/);
    assert.equal(collector.events().length, 0);
    const stats = await apiJson(collector, "/api/stats");
    assert.equal(stats.metrics, 3, "data points received");
    assert.equal(stats.total, 0);
    assert.equal(collector.stats().metrics, 3);
  });
});

test("GET /v1/projects/:writeKey/settings answers what analytics.js needs, pointing it back at the collector", async () => {
  const lines: string[] = [];
  await withCollector({ log: (line) => lines.push(line) }, async (collector) => {
    const answer = await raw(collector, "GET", `/v1/projects/${KEY}/settings`, { origin: PAGE });
    assert.equal(answer.status, 200, answer.text);
    assert.match(String(answer.headers["content-type"]), /application\/json/);
    assert.equal(answer.headers["access-control-allow-origin"], PAGE);
    const settings = JSON.parse(answer.text);
    const host = `127.0.0.1:${collector.port}`;
    assert.deepEqual(settings.integrations["Segment.io"], {
      apiKey: KEY,
      apiHost: `${host}/v1`,
      protocol: "http",
      unbundledIntegrations: [],
      addBundledMetadata: true,
      maybeBundledConfigIds: {},
      versionSettings: { componentTypes: ["browser"] },
    });
    assert.deepEqual(Object.keys(settings.integrations), ["Segment.io"], "no device-mode destination to load");
    assert.equal(settings.analyticsNextEnabled, true);
    assert.deepEqual(settings.edgeFunction, {});
    assert.deepEqual(settings.plan, { track: { __default: { enabled: true, integrations: {} } } });
    assert.equal(settings.metrics.host, `${host}/v1`);
    assert.deepEqual(settings.remotePlugins, []);

    // Asked for under another name (a container's, the machine's address): apiHost follows the request.
    const other = await raw(collector, "GET", `/v1/projects/${KEY}/settings`, { host: `localhost:${collector.port}` });
    assert.equal(JSON.parse(other.text).integrations["Segment.io"].apiHost, `localhost:${collector.port}/v1`);
    const odd = await raw(collector, "GET", `/v1/projects/${KEY}/settings`, { host: "a b/<x>" });
    assert.equal(JSON.parse(odd.text).integrations["Segment.io"].apiHost, `${host}/v1`, "a Host that is no host");

    // A foreign page gets no settings; other methods get 405.
    const foreign = await raw(collector, "GET", `/v1/projects/${KEY}/settings`, { origin: "https://evil.example" });
    assert.equal(foreign.status, 403);
    assert.equal(foreign.headers["access-control-allow-origin"], undefined);
    assert.equal((await raw(collector, "POST", `/v1/projects/${KEY}/settings`, {}, "{}")).status, 405);
    assert.equal((await raw(collector, "GET", "/v1/projects//settings")).status, 404);
    assert.ok(lines.length > 0);
    assert.ok(lines.every((line) => !line.includes(KEY)), "the key asked for is never logged");
    assert.equal(collector.stats().requests, 0, "settings are not ingestion");
  });
  await withCollector({ writeKey: KEY }, async (collector) => {
    assert.equal((await raw(collector, "GET", `/v1/projects/${KEY}/settings`)).status, 200);
    const wrong = await raw(collector, "GET", "/v1/projects/not-the-key/settings", { origin: PAGE });
    assert.equal(wrong.status, 401);
    assert.match(JSON.parse(wrong.text).error, /^Cannot give settings: the write key .*--write-key/);
    assert.ok(!wrong.text.includes("not-the-key") && !wrong.text.includes(KEY));
  });
});

test("each stored event keeps its source (library, user agent, origin, endpoint); ?source= filters, NDJSON keeps it", async () => {
  const dir = canWrite ? mkdtempSync(join(tmpdir(), "tally-web-")) : undefined;
  const out = dir === undefined ? undefined : join(dir, "events.ndjson");
  try {
    await withCollector({ out }, async (collector) => {
      await fromPage(collector, "/v1/t", ajsMessage("track", { event: "From The Page" }));
      const analytics = new Analytics({ writeKey: KEY, host: collector.url });
      analytics.track("u1", "From The Server");
      await analytics.close({ timeout: 5000 });
      await raw(
        collector,
        "POST",
        "/v1/track",
        { "content-type": "application/json" },
        JSON.stringify({
          type: "track",
          userId: "u2",
          event: "Curl",
          messageId: "curl-1",
        }),
      );

      const [curl, server, page] = collector.events();
      assert.deepEqual(page.source, {
        library: "analytics.js",
        version: "npm:next-1.84.3",
        userAgent: BROWSER_UA,
        origin: PAGE,
        endpoint: "/v1/t",
      });
      assert.equal(server.source.library, "@tally/analytics");
      assert.equal(server.source.endpoint, "/v1/batch");
      assert.equal(server.source.origin, undefined);
      assert.equal(curl.source.library, undefined, "no context.library: no library");
      assert.equal(curl.source.endpoint, "/v1/track");

      const byLibrary = async (query: string) =>
        ((await apiJson(collector, `/api/events?${query}`)).events as { message: { event: string } }[])
          .map((e) => e.message.event);
      assert.deepEqual(await byLibrary("source=analytics.js"), ["From The Page"]);
      assert.deepEqual(await byLibrary("source=%40tally%2Fanalytics"), ["From The Server"]);
      assert.deepEqual(await byLibrary("library=analytics.js"), ["From The Page"], "library= is the same filter");
      assert.deepEqual(await byLibrary("source=nothing"), []);
      assert.deepEqual(collector.events({ source: "analytics.js" }).map((e) => e.message.event), ["From The Page"]);
      const both = await fetch(`${collector.url}/api/events?source=a&library=b`);
      assert.equal(both.status, 400);
      assert.match((await both.json()).error, /source and library/);
    });
    if (out !== undefined) {
      const lines = readFileSync(out, "utf8").trim().split("\n").map((line) => JSON.parse(line));
      assert.equal(lines.length, 3);
      assert.equal(lines[0].source.library, "analytics.js");
      assert.equal(lines[0].source.origin, PAGE);
      assert.ok(!readFileSync(out, "utf8").includes(KEY));
    }
  } finally {
    if (dir !== undefined) rmSync(dir, { recursive: true, force: true });
  }
});

test("a messageId already stored is flagged duplicate, counted in /api/stats, and ?duplicate= filters", async () => {
  await withCollector({}, async (collector) => {
    const first = ajsMessage("track", { event: "Once", messageId: "dup-1" });
    await fromPage(collector, "/v1/t", first);
    await fromPage(collector, "/v1/t", { ...first, _metadata: { retryCount: 1 } }); // analytics.js retrying
    await fromPage(collector, "/v1/b", { batch: [ajsMessage("track", { event: "Twice", messageId: "dup-2" })] });
    await fromPage(collector, "/v1/b", {
      batch: [ajsMessage("track", { event: "Twice", messageId: "dup-2" }), ajsMessage("track", { event: "Fresh" })],
    });
    const events = collector.events();
    assert.deepEqual(events.map((e) => [e.message.event, e.duplicate === true]), [
      ["Fresh", false],
      ["Twice", true],
      ["Twice", false],
      ["Once", true],
      ["Once", false],
    ]);
    assert.ok(events.filter((e) => e.duplicate !== true).every((e) => !("duplicate" in e)), "absent when not one");
    const stats = await apiJson(collector, "/api/stats");
    assert.equal(stats.duplicates, 2);
    assert.equal(stats.total, 5, "a duplicate is stored, and counted as a message too");
    const dups = await apiJson(collector, "/api/events?duplicate=true");
    assert.deepEqual((dups.events as { id: number }[]).map((e) => e.id), [events[1].id, events[3].id]);
    const originals = await apiJson(collector, "/api/events?duplicate=false");
    assert.equal((originals.events as unknown[]).length, 3);
    const badValue = await fetch(`${collector.url}/api/events?duplicate=yes`);
    assert.equal(badValue.status, 400);
    assert.match((await badValue.json()).error, /duplicate must be "true" or "false"/);

    // Deleting the duplicates takes them out of the count; clearing forgets the ids seen.
    const deleted = await fetch(`${collector.url}/api/events?duplicate=true`, { method: "DELETE" });
    assert.deepEqual(await deleted.json(), { deleted: 2 });
    assert.equal(collector.stats().duplicates, 0);
    collector.clear();
    await fromPage(collector, "/v1/t", first);
    assert.equal(collector.events()[0].duplicate, undefined, "after a clear, an id is new again");
  });
});

test("the ids it remembers for duplicates are bounded: past the bound the oldest are forgotten", async () => {
  await withCollector({ maxEvents: 2, maxSeenIds: 3 }, async (collector) => {
    const send = (id: string) =>
      raw(
        collector,
        "POST",
        "/v1/track",
        { "content-type": "application/json" },
        JSON.stringify({
          type: "track",
          userId: "u1",
          event: "E",
          messageId: id,
        }),
      );
    for (const id of ["a", "b", "c"]) await send(id);
    await send("a"); // remembered though its event was evicted (maxEvents 2): flagged
    assert.equal(collector.events()[0].duplicate, true);
    for (const id of ["d", "e", "f"]) await send(id); // a, b, c forgotten: seen holds the newest 3 ids
    await send("b");
    assert.equal(collector.events()[0].duplicate, undefined, "forgotten past the bound: taken as new");
    await send("f");
    assert.equal(collector.events()[0].duplicate, true);
    assert.equal(collector.stats().duplicates, 2);
    assert.equal(collector.stats().evicted, 7, "the events were evicted, the count stays");
  });
  await assert.rejects(startCollector({ maxSeenIds: 0 }), /Cannot start the collector: maxSeenIds must be/);
});
