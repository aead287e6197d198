/**
 * The local collector (serve/, `tally serve`): every endpoint and
 * limit, gzip, auth, each validation rule, eviction, the NDJSON file, the
 * event stream, scripted replies, the fault flags against the library's
 * retry policy, and the `tally serve` command.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { Buffer } from "node:buffer";
import { spawn } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { request } from "node:http";
import { tmpdir } from "node:os";
import { join } from "node:path";
import process from "node:process";
import { fileURLToPath } from "node:url";
import { createGzip, gzipSync } from "node:zlib";
import { Analytics, type AnalyticsOptions, type DeliveryError, type Message } from "../mod.ts";
import {
  type Collector,
  type CollectorOptions,
  REQUEST_LIMIT,
  serve,
  startCollector,
  type StoredEvent,
} from "../serve/mod.ts";
import { canWrite, delay, withCollector } from "./fixtures/collector_helpers.ts";

const FAST = { minRetryDelay: 0.01, maxRetryDelay: 0.05 } as const;
const ROOT = fileURLToPath(new URL("..", import.meta.url));
const SERVE_CHILD = fileURLToPath(new URL("./fixtures/collector_serve.ts", import.meta.url));

let counter = 0;
/** A valid track message with a fresh messageId. */
function track(fields: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    type: "track",
    messageId: `m-${++counter}`,
    timestamp: new Date().toISOString(),
    userId: "u1",
    event: "Signed Up",
    properties: { plan: "Enterprise" },
    ...fields,
  };
}

async function post(
  collector: Collector,
  path: string,
  body: unknown,
  headers: Record<string, string> = {},
): Promise<{ status: number; json: Record<string, unknown>; headers: Headers }> {
  const response = await fetch(collector.url + path, {
    method: "POST",
    headers: { "content-type": "application/json", ...headers },
    body: typeof body === "string" || body instanceof Uint8Array ? body as BodyInit : JSON.stringify(body),
  });
  const text = await response.text();
  return { status: response.status, json: text === "" ? {} : JSON.parse(text), headers: response.headers };
}

// deno-lint-ignore no-explicit-any
const getJson = async (collector: Collector, path: string): Promise<{ status: number; json: any }> => {
  const response = await fetch(collector.url + path);
  return { status: response.status, json: await response.json() };
};

/**
 * POSTs on a connection of its own and tells what happened: the status, or "dropped". (fetch reuses pooled
 * connections, and Deno's fetch silently resends a request whose pooled connection was closed.)
 */
function rawPost(collector: Collector, path: string, body: string): Promise<number | "dropped"> {
  return new Promise((resolve) => {
    const req = request(`${collector.url}${path}`, { method: "POST", agent: false }, (res) => {
      res.resume();
      res.on("end", () => resolve(res.statusCode ?? 0));
    });
    req.on("error", () => resolve("dropped"));
    req.end(body);
  });
}

function client(collector: Collector, options: AnalyticsOptions = {}): Analytics {
  return new Analytics({ writeKey: "KEY", host: collector.url, ...FAST, ...options });
}

function errorLog() {
  const calls: { error: DeliveryError; messages: Message[] }[] = [];
  return {
    calls,
    onError: (error: DeliveryError, messages: Message[]): void => void calls.push({ error, messages }),
    count: (): number => calls.reduce((n, call) => n + call.messages.length, 0),
  };
}

// ---- ingestion and the query API

test("a batch is answered 200 {success:true} and its messages are stored as good, newest first", async () => {
  await withCollector({}, async (collector) => {
    const batch = [track({ event: "A" }), track({ event: "B" }), track({ event: "C" })];
    const answer = await post(collector, "/v1/batch", { batch, sentAt: new Date().toISOString(), writeKey: "K" });
    assert.equal(answer.status, 200);
    assert.deepEqual(answer.json, { success: true });
    assert.equal(answer.headers.get("content-type"), "application/json");
    const events = collector.events();
    assert.deepEqual(events.map((e) => e.message.event), ["C", "B", "A"]);
    assert.deepEqual(events.map((e) => e.id), [3, 2, 1]);
    for (const [i, event] of events.entries()) {
      assert.equal(event.status, "good");
      assert.deepEqual(event.reasons, []);
      assert.deepEqual(event.message, batch[2 - i]);
      assert.ok(Math.abs(Date.parse(event.receivedAt) - Date.now()) < 5000);
    }
    const api = await getJson(collector, "/api/events");
    assert.equal(api.status, 200);
    assert.deepEqual(api.json, { events, evicted: 0 });
  });
});

test("/v1/import takes a batch as /v1/batch does", async () => {
  await withCollector({}, async (collector) => {
    const answer = await post(collector, "/v1/import", { batch: [track(), track()] });
    assert.equal(answer.status, 200);
    assert.equal(collector.stats().good, 2);
  });
});

test("each single-message endpoint stores its message, taking the type from the path when absent", async () => {
  await withCollector({}, async (collector) => {
    const bodies: Record<string, Record<string, unknown>> = {
      identify: { userId: "u1", traits: { email: "a@example.com" } },
      track: { userId: "u1", event: "Signed Up" },
      page: { userId: "u1", name: "Docs" },
      screen: { userId: "u1", name: "Settings" },
      group: { userId: "u1", groupId: "g1" },
      alias: { userId: "u1", previousId: "p1" },
    };
    for (const [type, body] of Object.entries(bodies)) {
      const answer = await post(collector, `/v1/${type}`, { messageId: `single-${type}`, ...body });
      assert.equal(answer.status, 200, type);
      const [event] = collector.events({ limit: 1 });
      assert.equal(event.message.type, type);
      assert.equal(event.status, "good", `${type}: ${event.reasons}`);
    }
    await post(collector, "/v1/track", { type: "identify", messageId: "x", userId: "u1", event: "E" });
    assert.match(collector.events()[0].reasons.join("\n"), /type string "identify" was sent to \/v1\/track/);
    assert.deepEqual(collector.stats().byType, {
      // The mismatched message keeps its own type.
      identify: { good: 1, bad: 1 },
      track: { good: 1, bad: 0 },
      page: { good: 1, bad: 0 },
      screen: { good: 1, bad: 0 },
      group: { good: 1, bad: 0 },
      alias: { good: 1, bad: 0 },
    });
  });
});

test("a batch's top-level context and integrations are merged into each message, the message's own keys winning", async () => {
  await withCollector({ recordRequests: true }, async (collector) => {
    const own = track({ context: { ip: "10.0.0.1", locale: "fr" }, integrations: { Mixpanel: false } });
    await post(collector, "/v1/batch", {
      batch: [own, track()],
      context: { locale: "en", app: { name: "demo" } },
      integrations: { All: true, Mixpanel: true },
    });
    const [second, first] = collector.events();
    assert.deepEqual(first.message.context, { locale: "fr", app: { name: "demo" }, ip: "10.0.0.1" });
    assert.deepEqual(first.message.integrations, { All: true, Mixpanel: false });
    assert.deepEqual(second.message.context, { locale: "en", app: { name: "demo" } });
    assert.deepEqual(collector.requests[0].body.batch?.[0], own, "the request log keeps the body as sent");
  });
});

test("GET /api/events filters by type, userId, anonymousId, event, status and limit", async () => {
  await withCollector({}, async (collector) => {
    await post(collector, "/v1/batch", {
      batch: [
        track({ userId: "u1", event: "A" }),
        track({ userId: "u2", event: "A" }),
        track({ userId: undefined, anonymousId: "anon", event: "B" }),
        { type: "identify", messageId: "i1", userId: "u1", traits: { age: "old" } },
        { type: "page", messageId: "p1", userId: "u1", name: "Home" },
      ],
    });
    const ids = async (query: string): Promise<number[]> => {
      const { status, json } = await getJson(collector, `/api/events?${query}`);
      assert.equal(status, 200, query);
      return json.events.map((e: StoredEvent) => e.id);
    };
    assert.deepEqual(await ids(""), [5, 4, 3, 2, 1]);
    assert.deepEqual(await ids("type=track"), [3, 2, 1]);
    assert.deepEqual(await ids("userId=u1"), [5, 4, 1]);
    assert.deepEqual(await ids("anonymousId=anon"), [3]);
    assert.deepEqual(await ids("event=A"), [2, 1]);
    assert.deepEqual(await ids("status=bad"), [4]);
    assert.deepEqual(await ids("status=good&userId=u1"), [5, 1]);
    assert.deepEqual(await ids("type=track&limit=2"), [3, 2]);
    assert.deepEqual(await ids("limit=0"), []);
    assert.deepEqual(await ids("userId=nobody"), []);
    assert.deepEqual(collector.events({ type: "track", event: "A", userId: "u2" }).map((e) => e.id), [2]);
    const badStatus = await getJson(collector, "/api/events?status=ok");
    assert.equal(badStatus.status, 400);
    assert.equal(badStatus.json.success, false);
    assert.match(badStatus.json.error, /status must be "good" or "bad"/);
    assert.equal((await getJson(collector, "/api/events?limit=-1")).status, 400);
    assert.equal((await getJson(collector, "/api/events?limit=abc")).status, 400);
  });
});

test("messages of a type outside the spec, or of none, are counted under unknown: byType adds up to total", async () => {
  await withCollector({}, async (collector) => {
    await post(collector, "/v1/batch", {
      batch: [track(), { type: "foo", messageId: "f", userId: "u" }, { messageId: "n", userId: "u" }, 42],
    });
    await post(collector, "/v1/track", { type: "Track", messageId: "t", userId: "u", event: "E" });
    const stats = (await getJson(collector, "/api/stats")).json;
    assert.deepEqual(stats.byType, { track: { good: 1, bad: 0 }, unknown: { good: 0, bad: 4 } });
    let sum = 0;
    for (const counts of Object.values(stats.byType) as { good: number; bad: number }[]) {
      sum += counts.good + counts.bad;
    }
    assert.equal(sum, stats.total);
    assert.equal(stats.total, 5);
  });
});

test("GET /api/events compares ids as strings: userId=42 finds the number 42 as well as the string", async () => {
  await withCollector({}, async (collector) => {
    await post(collector, "/v1/batch", {
      batch: [
        track({ userId: 42 }),
        track({ userId: "42" }),
        track({ userId: undefined, anonymousId: 7 }),
        track({ userId: 4.5 }),
        track({ userId: { id: 42 } }),
        track({ userId: true }),
        track({ userId: "u1" }),
      ],
    });
    const ids = async (query: string): Promise<number[]> => {
      const { status, json } = await getJson(collector, `/api/events?${query}`);
      assert.equal(status, 200, query);
      return json.events.map((e: StoredEvent) => e.id);
    };
    assert.deepEqual(await ids("userId=42"), [2, 1]);
    assert.deepEqual(await ids("anonymousId=7"), [3]);
    assert.deepEqual(await ids("userId=4.5"), [4]);
    assert.deepEqual(await ids("userId=true"), [], "only strings and numbers are ids");
    assert.deepEqual(await ids("userId=%5Bobject%20Object%5D"), []);
    assert.deepEqual(await ids("userId=u1"), [7]);
    assert.deepEqual(collector.events({ userId: 42 }).map((e) => e.id), [2, 1], "a number filter, in code");
    assert.deepEqual(collector.events({ userId: "42" }).map((e) => e.id), [2, 1]);
    assert.deepEqual(collector.events({ anonymousId: 7 }).map((e) => e.id), [3]);
  });
});

test("DELETE /api/events with filters deletes only the matching messages and answers how many", async () => {
  await withCollector({}, async (collector) => {
    const seen: string[] = [];
    collector.subscribe((e) => void seen.push(e.kind === "delete" ? `delete ${e.ids.join(",")}` : e.kind));
    await post(collector, "/v1/batch", {
      batch: [
        track({ userId: "u1", event: "A" }),
        track({ userId: "u2", event: 42 }),
        track({ userId: "u1", event: "B" }),
        { type: "identify", messageId: "i1", userId: "u1" },
        { type: "bogus", messageId: "b1", userId: "u3" },
      ],
    });
    const remove = async (query: string): Promise<{ status: number; json: Record<string, unknown> }> => {
      const response = await fetch(`${collector.url}/api/events?${query}`, { method: "DELETE" });
      return { status: response.status, json: await response.json() };
    };
    assert.deepEqual(await remove("status=bad"), { status: 200, json: { deleted: 2 } });
    assert.deepEqual(collector.events().map((e) => e.id), [4, 3, 1]);
    assert.deepEqual(collector.stats().byType, { track: { good: 2, bad: 0 }, identify: { good: 1, bad: 0 } });
    assert.deepEqual([collector.stats().total, collector.stats().good, collector.stats().bad], [3, 3, 0]);

    assert.deepEqual(await remove("type=track&userId=u1&limit=1"), { status: 200, json: { deleted: 1 } });
    assert.deepEqual(collector.events().map((e) => e.id), [4, 1], "limit: the newest matching one");
    assert.deepEqual(await remove("userId=nobody"), { status: 200, json: { deleted: 0 } });
    assert.equal(collector.delete({ type: "identify" }), 1, "the same in code");
    assert.deepEqual(collector.events().map((e) => e.id), [1]);
    assert.deepEqual(seen.slice(5), ["delete 5,2", "delete 3", "delete 4"]);
    assert.equal(collector.stats().requests, 1, "request counters stay");

    await post(collector, "/v1/batch", { batch: [track()] });
    assert.deepEqual(collector.events().map((e) => e.id), [6, 1], "ids keep increasing");
  });
});

test("after a filtered DELETE the store still evicts the oldest once full", async () => {
  await withCollector({ maxEvents: 3 }, async (collector) => {
    await post(collector, "/v1/batch", {
      batch: [track({ event: "1" }), track({ event: "2" }), track({ event: "3" }), track({ event: "4" })],
    });
    assert.equal(collector.delete({ event: "3" }), 1);
    assert.deepEqual(collector.events().map((e) => e.message.event), ["4", "2"]);
    await post(collector, "/v1/batch", { batch: [track({ event: "5" }), track({ event: "6" })] });
    assert.deepEqual(collector.events().map((e) => e.message.event), ["6", "5", "4"]);
    assert.equal(collector.stats().evicted, 2);
    assert.equal(collector.stats().total, 5, "4 + 2 received, 1 deleted");
  });
});

test("unknown and empty filters are refused with 400 naming them, by GET and DELETE alike; nothing is deleted", async () => {
  await withCollector({}, async (collector) => {
    await post(collector, "/v1/batch", { batch: [track(), track({ event: 42 })] });
    const cases: [string, string, RegExp][] = [
      ["DELETE", "stauts=bad", /Cannot filter by "stauts": the filters are type, userId, anonymousId, event, status/],
      ["DELETE", "status=bad&user_id=1&x=2", /Cannot filter by "user_id", "x"/],
      ["GET", "userid=42", /Cannot filter by "userid"/],
      ["DELETE", "status=", /status is empty/],
      ["DELETE", "userId=", /userId is empty/],
      ["DELETE", "status=ok", /status must be "good" or "bad", got "ok"/],
      ["DELETE", "limit=x", /limit must be a whole number/],
    ];
    for (const [method, query, message] of cases) {
      const response = await fetch(`${collector.url}/api/events?${query}`, { method });
      assert.equal(response.status, 400, `${method} ${query}`);
      const json = await response.json();
      assert.equal(json.success, false);
      assert.match(json.error, message, `${method} ${query}`);
    }
    assert.equal(collector.events().length, 2, "nothing was deleted");
    assert.equal((await getJson(collector, "/api/events?status=")).json.events.length, 2, "GET ignores an empty one");
    const all = await fetch(`${collector.url}/api/events`, { method: "DELETE" });
    assert.equal(all.status, 204, "without a query, DELETE still clears everything");
    await all.body?.cancel();
    assert.equal(collector.events().length, 0);
  });
});

test("GET /api/stats counts messages by type and status, requests and wire bytes; DELETE /api/events clears all", async () => {
  await withCollector({}, async (collector) => {
    const first = JSON.stringify({ batch: [track(), track({ event: 42 }), { type: "bogus", messageId: "b" }] });
    const second = gzipSync(JSON.stringify({ batch: [{ type: "identify", messageId: "i", userId: "u" }] }));
    await post(collector, "/v1/batch", first);
    await post(collector, "/v1/batch", second, { "content-encoding": "gzip" });
    await post(collector, "/v1/batch", "not json");
    const { status, json } = await getJson(collector, "/api/stats");
    assert.equal(status, 200);
    assert.deepEqual(json, {
      total: 4,
      good: 2,
      bad: 2,
      byType: { track: { good: 1, bad: 1 }, unknown: { good: 0, bad: 1 }, identify: { good: 1, bad: 0 } },
      requests: 3,
      bytes: Buffer.byteLength(first) + second.length + "not json".length,
      evicted: 0,
      duplicates: 0,
      metrics: 0,
    });
    assert.deepEqual(collector.stats(), json);

    const cleared = await fetch(`${collector.url}/api/events`, { method: "DELETE" });
    assert.equal(cleared.status, 204);
    assert.equal(await cleared.text(), "");
    assert.deepEqual(collector.events(), []);
    assert.deepEqual(collector.stats(), {
      total: 0,
      good: 0,
      bad: 0,
      byType: {},
      requests: 0,
      bytes: 0,
      evicted: 0,
      duplicates: 0,
      metrics: 0,
    });
    await post(collector, "/v1/batch", { batch: [track()] });
    assert.equal(collector.events()[0].id, 5, "ids keep increasing after a clear");
  });
});

test("memory is bounded by maxEvents: the oldest events are evicted and counted", async () => {
  await withCollector({ maxEvents: 3 }, async (collector) => {
    await post(collector, "/v1/batch", { batch: [track({ event: "1" }), track({ event: "2" })] });
    await post(collector, "/v1/batch", {
      batch: [track({ event: "3" }), track({ event: "4" }), track({ event: "5" })],
    });
    assert.deepEqual(collector.events().map((e) => e.message.event), ["5", "4", "3"]);
    assert.deepEqual(collector.events({ limit: 2 }).map((e) => e.id), [5, 4]);
    assert.equal(collector.stats().evicted, 2);
    assert.equal(collector.stats().total, 5, "counters include evicted events");
    const { json } = await getJson(collector, "/api/events");
    assert.equal(json.evicted, 2);
    assert.equal(json.events.length, 3);
  });
});

test("GET / serves the inspector page as HTML, and unknown paths and methods get JSON errors", async () => {
  await withCollector({}, async (collector) => {
    const page = await fetch(collector.url + "/");
    assert.equal(page.status, 200);
    assert.match(page.headers.get("content-type") ?? "", /^text\/html/);
    assert.match(await page.text(), /<html|<!doctype html/i);

    const missing = await fetch(collector.url + "/v2/batch");
    assert.equal(missing.status, 404);
    assert.equal((await missing.json()).success, false);
    const missingApi = await fetch(collector.url + "/api/nothing");
    assert.equal(missingApi.status, 404);
    await missingApi.body?.cancel();

    const get = await fetch(collector.url + "/v1/batch");
    assert.equal(get.status, 405);
    assert.equal(get.headers.get("allow"), "POST");
    assert.match((await get.json()).error, /POST/);
    const postStats = await fetch(collector.url + "/api/stats", { method: "POST", body: "{}" });
    assert.equal(postStats.status, 405);
    await postStats.body?.cancel();
  });
});

// ---- gzip, JSON and limits

test("a gzip body is decoded; a broken gzip body, an unknown encoding and invalid JSON get 400 with a JSON error", async () => {
  await withCollector({}, async (collector) => {
    const body = gzipSync(JSON.stringify({ batch: [track(), track()] }));
    const ok = await post(collector, "/v1/batch", body, { "content-encoding": "gzip" });
    assert.equal(ok.status, 200);
    assert.equal(collector.stats().good, 2);

    const cases: [Uint8Array | string, Record<string, string>, RegExp][] = [
      [new Uint8Array([1, 2, 3, 4]), { "content-encoding": "gzip" }, /not valid gzip/],
      ['{"batch":[]}', { "content-encoding": "br" }, /Content-Encoding "br" is not accepted/],
      ["{batch:", {}, /not valid JSON/],
      ['{"batch":{}}', {}, /"batch" array/],
      ["[1,2]", {}, /"batch" array/],
    ];
    for (const [payload, headers, error] of cases) {
      const answer = await post(collector, "/v1/batch", payload, headers);
      assert.equal(answer.status, 400, String(error));
      assert.equal(answer.json.success, false);
      assert.match(answer.json.error as string, error);
    }
    const notMessage = await post(collector, "/v1/track", "[]");
    assert.equal(notMessage.status, 400);
    assert.equal(collector.stats().total, 2, "nothing stored from refused requests");
  });
});

test("a message over 32 KB gets 400; the request is refused and the oversized message is kept as bad", async () => {
  await withCollector({}, async (collector) => {
    const big = track({ properties: { blob: "x".repeat(33_000) } });
    const answer = await post(collector, "/v1/batch", { batch: [track(), big] });
    assert.equal(answer.status, 400);
    assert.match(answer.json.error as string, /batch\[1\] is \d+ bytes, over the 32768-byte limit/);
    const events = collector.events();
    assert.equal(events.length, 1, "only the oversized message is kept");
    assert.equal(events[0].status, "bad");
    assert.equal(events[0].message.messageId, big.messageId);
    assert.match(events[0].reasons[0], /over Segment's 32768-byte \(32 KB\) limit/);

    // Multi-byte characters count as their UTF-8 bytes.
    const wide = track({ properties: { text: "é".repeat(16_400) } });
    assert.equal((await post(collector, "/v1/track", wide)).status, 400);
    const fits = track({ properties: { text: "x".repeat(32_000) } });
    assert.equal((await post(collector, "/v1/batch", { batch: [fits] })).status, 200);
    assert.equal(collector.events()[0].status, "good");
  });
});

test("a batch of more than 2500 messages gets 400 and nothing is stored; 2500 are taken", async () => {
  await withCollector({}, async (collector) => {
    const small = (i: number) => ({ type: "track", messageId: `b${i}`, userId: "u", event: "E" });
    const over = await post(collector, "/v1/batch", { batch: Array.from({ length: 2501 }, (_, i) => small(i)) });
    assert.equal(over.status, 400);
    assert.match(over.json.error as string, /2501 messages, over the 2500-message limit/);
    assert.equal(collector.stats().total, 0);
    const at = await post(collector, "/v1/batch", { batch: Array.from({ length: 2500 }, (_, i) => small(i)) });
    assert.equal(at.status, 200);
    assert.equal(collector.stats().good, 2500);
  });
});

test("a body declared over 500 KB is refused with 400 and Connection: close, none of it kept or counted", async () => {
  await withCollector({}, async (collector) => {
    const answer = await post(collector, "/v1/batch", new Uint8Array(REQUEST_LIMIT + 1));
    assert.equal(answer.status, 400);
    assert.match(answer.json.error as string, /512001 bytes, over the 512000-byte limit/);
    assert.equal(answer.headers.get("connection"), "close");
    assert.equal(collector.stats().bytes, 0);
    const at = JSON.stringify({ batch: [track()], pad: " ".repeat(REQUEST_LIMIT) }).slice(0, REQUEST_LIMIT);
    assert.equal((await post(collector, "/v1/batch", at)).status, 400, "invalid JSON, but read: within the limit");
    assert.equal(collector.stats().bytes, REQUEST_LIMIT);
  });
});

test("a streamed 50 MB body is answered 400 once 4 MB past the limit are read and dropped, while the client still sends", async () => {
  const log: string[] = [];
  await withCollector({ log: (line) => void log.push(line) }, async (collector) => {
    const total = 50 * 1024 * 1024;
    const outcome = await new Promise<{ status?: number; body: string; written: number }>((resolve) => {
      let written = 0;
      let body = "";
      let status: number | undefined;
      const req = request(`${collector.url}/v1/batch`, {
        method: "POST",
        headers: { "content-type": "application/json", "transfer-encoding": "chunked" },
      }, (res) => {
        status = res.statusCode;
        res.on("data", (chunk) => void (body += chunk));
        res.on("end", () => resolve({ status, body, written }));
        res.on("error", () => resolve({ status, body, written }));
      });
      // The server closes the connection once it has answered: a write error may come before or after the answer.
      req.on("error", () => void setTimeout(() => resolve({ status, body, written }), 500));
      const chunk = Buffer.alloc(64 * 1024, 32);
      const pump = (): void => {
        while (written < total) {
          written += chunk.length;
          if (!req.write(chunk)) return void req.once("drain", pump);
        }
        req.end();
      };
      pump();
    });
    assert.equal(outcome.status, 400);
    assert.match(outcome.body, /over the 512000-byte limit/);
    assert.ok(outcome.written < total / 2, `the client had written ${outcome.written} bytes when answered`);
    const kept = collector.stats().bytes;
    assert.ok(kept > REQUEST_LIMIT && kept <= REQUEST_LIMIT + 256 * 1024, `the collector counted ${kept} bytes`);
    const refused = log.find((line) => line.includes(" 400 refused: "));
    const read = Number(/stopped reading at ([\d.]+) MB/.exec(refused ?? "")?.[1]);
    assert.ok(read > 4.4 && read < 5, `the collector read ${read} MB: ${refused}`);
    assert.equal(collector.stats().total, 0);
  });
});

test("a gzip bomb is refused with 400 once it inflates past 500 KB, without inflating the rest", async () => {
  // 400 MB of zeros, about 400 KB compressed: within the wire limit.
  const gzip = createGzip({ level: 9 });
  const parts: Buffer[] = [];
  gzip.on("data", (part: Buffer) => parts.push(part));
  const ended = new Promise((resolve) => gzip.on("end", resolve));
  const zeros = Buffer.alloc(1024 * 1024);
  for (let i = 0; i < 400; i++) gzip.write(zeros);
  gzip.end();
  await ended;
  const bomb = Buffer.concat(parts);
  assert.ok(bomb.length < REQUEST_LIMIT, `the bomb is ${bomb.length} bytes`);

  await withCollector({}, async (collector) => {
    const before = process.memoryUsage().rss;
    const started = performance.now();
    const answer = await post(collector, "/v1/batch", new Uint8Array(bomb), { "content-encoding": "gzip" });
    const ms = performance.now() - started;
    const grown = process.memoryUsage().rss - before;
    assert.equal(answer.status, 400);
    assert.match(answer.json.error as string, /inflates past the 512000-byte limit/);
    assert.ok(ms < 1000, `took ${ms} ms`);
    assert.ok(grown < 100 * 1024 * 1024, `RSS grew by ${grown} bytes`);
    assert.equal(collector.stats().total, 0);
  });
});

// ---- auth

test("without writeKey any key or none is accepted", async () => {
  await withCollector({}, async (collector) => {
    assert.equal((await post(collector, "/v1/batch", { batch: [track()] })).status, 200);
    const other = { authorization: "Basic " + btoa("whatever:") };
    assert.equal((await post(collector, "/v1/batch", { batch: [track()] }, other)).status, 200);
  });
});

test("with writeKey a request needs it as Basic auth or in the body; others get 401", async () => {
  await withCollector({ writeKey: "SECRET" }, async (collector) => {
    const body = { batch: [track()] };
    const none = await post(collector, "/v1/batch", body);
    assert.equal(none.status, 401);
    assert.equal(none.json.success, false);
    assert.match(none.json.error as string, /no write key/);
    const wrong = await post(collector, "/v1/batch", body, { authorization: "Basic " + btoa("OTHER:") });
    assert.equal(wrong.status, 401);
    assert.match(wrong.json.error as string, /wrong write key/);
    assert.ok(!(wrong.json.error as string).includes("SECRET"), "the key is never echoed");
    assert.equal((await post(collector, "/v1/batch", { ...body, writeKey: "NOPE" })).status, 401);
    assert.equal(collector.stats().total, 0);

    assert.equal((await post(collector, "/v1/batch", body, { authorization: "Basic " + btoa("SECRET:") })).status, 200);
    assert.equal((await post(collector, "/v1/batch", { batch: [track()], writeKey: "SECRET" })).status, 200);
    assert.equal((await post(collector, "/v1/track", { ...track(), writeKey: "SECRET" })).status, 200);
    assert.equal(collector.stats().good, 3);
    assert.equal((await getJson(collector, "/api/stats")).status, 200, "the query API stays open");
  });
});

test("the library with the right write key delivers to a collector that requires it, and a wrong key fails", async () => {
  await withCollector({ writeKey: "SECRET" }, async (collector) => {
    const good = client(collector, { writeKey: "SECRET" });
    good.track({ userId: "u1", event: "Signed Up" });
    assert.deepEqual(await good.flush(), { delivered: 1, failed: 0, pending: 0 });
    const log = errorLog();
    const bad = client(collector, { writeKey: "WRONG", onError: log.onError });
    bad.track({ userId: "u1", event: "Signed Up" });
    assert.deepEqual(await bad.flush(), { delivered: 0, failed: 1, pending: 0 });
    assert.equal(log.calls[0].error.status, 401);
  });
});

// ---- validation

const T = "2024-05-01T12:00:00.000Z";
const BAD_CASES: [string, Record<string, unknown>, RegExp][] = [
  ["type missing", { type: undefined }, /^type is missing/],
  ["type unknown", { type: "trak" }, /^type "trak" is not one of identify, track, page, screen, group, alias$/],
  ["type not a string", { type: 7 }, /^type must be a string, got number 7$/],
  ["messageId missing", { messageId: undefined }, /^messageId is missing/],
  ["messageId a number", { messageId: 12 }, /^messageId must be a string, got number 12$/],
  ["messageId empty", { messageId: "" }, /^messageId is an empty string$/],
  ["messageId too long", { messageId: "m".repeat(101) }, /^messageId is 101 characters/],
  ["no id at all", { userId: undefined }, /^userId and anonymousId are both missing/],
  ["null ids", { userId: null, anonymousId: null }, /^userId and anonymousId are both missing/],
  ["userId a number", { userId: 42 }, /^userId must be a string, got number 42: send it as "42"$/],
  ["userId empty", { userId: "" }, /^userId is an empty string$/],
  ["anonymousId an object", { userId: undefined, anonymousId: {} }, /^anonymousId must be a string, got an object$/],
  ["track without event", { event: undefined }, /^event is missing/],
  ["track event a number", { event: 5 }, /^event must be a string, got number 5$/],
  ["track event blank", { event: "  " }, /^event is an empty string$/],
  ["group without groupId", { type: "group", event: undefined }, /^groupId is missing/],
  ["group groupId a number", { type: "group", event: undefined, groupId: 3 }, /^groupId must be a string/],
  ["alias without previousId", { type: "alias", event: undefined }, /^previousId is missing/],
  [
    "alias without userId",
    { type: "alias", event: undefined, userId: undefined, anonymousId: "a", previousId: "p" },
    /^userId is missing: an alias/,
  ],
  ["timestamp without zone", { timestamp: "2024-05-01T12:00:00" }, /has no time zone/],
  ["timestamp not ISO", { timestamp: "May 1, 2024" }, /is not an ISO 8601 date-time with a zone$/],
  ["timestamp not a date", { timestamp: "2024-13-45T12:00:00Z" }, /is not a real date$/],
  ["timestamp before 2000", { timestamp: "1970-01-01T00:00:01Z" }, /before 2000/],
  [
    "timestamp in the future",
    { timestamp: new Date(Date.now() + 48 * 3600_000).toISOString() },
    /more than 24 hours in the future/,
  ],
  ["timestamp a number", { timestamp: 1714564800000 }, /^timestamp must be an ISO 8601 string, got number/],
  ["context a string", { context: "web" }, /^context must be an object, got string "web"$/],
  ["integrations an array", { integrations: [] }, /^integrations must be an object, got an array$/],
  ["properties an array", { properties: [1] }, /^properties must be an object, got an array$/],
  [
    "track revenue a string",
    { properties: { revenue: "12.5" } },
    /^properties.revenue must be a number, got string "12.5"$/,
  ],
  ["track value a string", { properties: { value: "1" } }, /^properties.value must be a number/],
  [
    "track currency not ISO 4217",
    { properties: { currency: "dollars" } },
    /^properties.currency must be an ISO 4217 currency code/,
  ],
  [
    "page url a number",
    { type: "page", event: undefined, properties: { url: 1 } },
    /^properties.url must be a string, got number 1$/,
  ],
  [
    "page path an object",
    { type: "page", event: undefined, properties: { path: {} } },
    /^properties.path must be a string/,
  ],
  [
    "page referrer a number",
    { type: "page", event: undefined, properties: { referrer: 0 } },
    /^properties.referrer must be a string/,
  ],
  [
    "page search a boolean",
    { type: "page", event: undefined, properties: { search: true } },
    /^properties.search must be a string/,
  ],
  [
    "page title null-free",
    { type: "page", event: undefined, properties: { title: 9 } },
    /^properties.title must be a string/,
  ],
  [
    "page keywords a string",
    { type: "page", event: undefined, properties: { keywords: "a,b" } },
    /^properties.keywords must be an array of strings/,
  ],
  [
    "page keywords with a number",
    { type: "page", event: undefined, properties: { keywords: ["a", 1] } },
    /^properties.keywords\[1\] must be a string, got number 1$/,
  ],
  ["page name a number", { type: "page", event: undefined, name: 3 }, /^name must be a string, got number 3$/],
  ["screen category a number", { type: "screen", event: undefined, category: 3 }, /^category must be a string/],
  [
    "identify traits an array",
    { type: "identify", event: undefined, traits: [] },
    /^traits must be an object, got an array$/,
  ],
  [
    "identify email a number",
    { type: "identify", event: undefined, traits: { email: 5 } },
    /^traits.email must be a string, got number 5$/,
  ],
  [
    "identify email not an address",
    { type: "identify", event: undefined, traits: { email: "john" } },
    /^traits.email string "john" is not an email address$/,
  ],
  [
    "identify age a string",
    { type: "identify", event: undefined, traits: { age: "30" } },
    /^traits.age must be a number, got string "30"$/,
  ],
  [
    "identify birthday not a date",
    { type: "identify", event: undefined, traits: { birthday: "May 1" } },
    /^traits.birthday must be an ISO 8601 date string/,
  ],
  [
    "identify createdAt a number",
    { type: "identify", event: undefined, traits: { createdAt: 1714564800 } },
    /^traits.createdAt must be an ISO 8601 date string/,
  ],
  [
    "identify address a string",
    { type: "identify", event: undefined, traits: { address: "1 Main St" } },
    /^traits.address must be an object/,
  ],
  [
    "identify company a string",
    { type: "identify", event: undefined, traits: { company: "Initech" } },
    /^traits.company must be an object/,
  ],
  [
    "identify firstName a number",
    { type: "identify", event: undefined, traits: { firstName: 1 } },
    /^traits.firstName must be a string/,
  ],
  [
    "identify phone a number",
    { type: "identify", event: undefined, traits: { phone: 5551234 } },
    /^traits.phone must be a string/,
  ],
  [
    "identify website an array",
    { type: "identify", event: undefined, traits: { website: [] } },
    /^traits.website must be a string/,
  ],
  [
    "group employees a boolean",
    { type: "group", event: undefined, groupId: "g", traits: { employees: true } },
    /^traits.employees must be a string or a number/,
  ],
  [
    "group plan a number",
    { type: "group", event: undefined, groupId: "g", traits: { plan: 1 } },
    /^traits.plan must be a string/,
  ],
  [
    "group industry a number",
    { type: "group", event: undefined, groupId: "g", traits: { industry: 1 } },
    /^traits.industry must be a string/,
  ],
  [
    "group createdAt not a date",
    { type: "group", event: undefined, groupId: "g", traits: { createdAt: "yesterday" } },
    /^traits.createdAt must be an ISO 8601 date string/,
  ],
];

const GOOD_CASES: [string, Record<string, unknown>][] = [
  ["a track with revenue, value and currency", { properties: { revenue: 12.5, value: 3, currency: "USD" } }],
  ["an anonymous track", { userId: undefined, anonymousId: "a1" }],
  ["a timestamp with an offset", { timestamp: "2024-05-01T14:00:00+02:00" }],
  ["no timestamp (Segment uses receivedAt)", { timestamp: undefined }],
  ["a timestamp 23 hours ahead", { timestamp: new Date(Date.now() + 23 * 3600_000).toISOString() }],
  ["null fields", { context: null, properties: null }],
  ["unreserved properties of any type", { properties: { url: 5, email: 1, items: [{ sku: 1 }] } }],
  [
    "an identify with every reserved trait typed right",
    {
      type: "identify",
      event: undefined,
      traits: {
        address: { city: "Paris" },
        company: { name: "Initech" },
        age: 30,
        birthday: "1990-05-01",
        createdAt: "2024-01-01T00:00:00Z",
        avatar: "https://example.com/a.png",
        description: "d",
        email: "john@example.com",
        firstName: "John",
        gender: "m",
        id: "u1",
        lastName: "Smith",
        name: "John Smith",
        phone: "+33 1 23",
        title: "CTO",
        username: "john",
        website: "https://example.com",
        friends: 30,
        revenue: "not reserved for identify",
      },
    },
  ],
  [
    "a group with employees as a number",
    { type: "group", event: undefined, groupId: "g1", traits: { name: "Initech", employees: 329, plan: "enterprise" } },
  ],
  [
    "a page with every reserved property",
    {
      type: "page",
      event: undefined,
      name: "Docs",
      category: "Python",
      properties: {
        name: "Docs",
        path: "/docs",
        referrer: "",
        search: "?q=1",
        title: "T",
        url: "http://x",
        keywords: ["a"],
      },
    },
  ],
  ["a screen", { type: "screen", event: undefined, name: "Settings", properties: { from: "Home" } }],
  ["an alias", { type: "alias", event: undefined, anonymousId: undefined, previousId: "p1" }],
];

test("each validation rule marks the message bad with one reason naming the field", async () => {
  await withCollector({}, async (collector) => {
    const batch = BAD_CASES.map(([, fields], i) => {
      const message: Record<string, unknown> = { ...track({ timestamp: T }), messageId: `bad-${i}`, ...fields };
      for (const key of Object.keys(message)) if (message[key] === undefined) delete message[key];
      return message;
    });
    assert.equal((await post(collector, "/v1/batch", { batch })).status, 200, "bad messages are still answered 200");
    const events = collector.events().reverse();
    assert.equal(events.length, BAD_CASES.length);
    for (const [i, [name, , reason]] of BAD_CASES.entries()) {
      const { status, reasons } = events[i];
      assert.equal(status, "bad", name);
      assert.equal(reasons.length, 1, `${name}: ${JSON.stringify(reasons)}`);
      assert.match(reasons[0], reason, name);
    }
  });
});

test("messages that follow the spec are good, whatever else they carry", async () => {
  await withCollector({}, async (collector) => {
    const batch = GOOD_CASES.map(([, fields], i) => {
      const message: Record<string, unknown> = { ...track({ timestamp: T }), messageId: `good-${i}`, ...fields };
      for (const key of Object.keys(message)) if (message[key] === undefined) delete message[key];
      return message;
    });
    await post(collector, "/v1/batch", { batch });
    const events = collector.events().reverse();
    for (const [i, [name]] of GOOD_CASES.entries()) {
      assert.deepEqual(events[i].reasons, [], name);
      assert.equal(events[i].status, "good", name);
    }
  });
});

test("an item of a batch that is not an object is stored as bad, and several problems give several reasons", async () => {
  await withCollector({}, async (collector) => {
    await post(collector, "/v1/batch", { batch: ["x", { type: "track" }] });
    const [several, item] = collector.events();
    assert.deepEqual(item.message, { value: "x" });
    assert.deepEqual(item.reasons, ['batch[0] is string "x", not a message object']);
    assert.equal(several.reasons.length, 3);
    assert.match(several.reasons.join("\n"), /messageId is missing[\s\S]*both missing[\s\S]*event is missing/);
  });
});

test("every call the library makes, in both styles, arrives good", async () => {
  await withCollector({}, async (collector) => {
    const analytics = client(collector, { uploadInterval: 60 });
    analytics.identify("u1", { email: "john@example.com", name: "John Smith", friends: 30 });
    analytics.track("u1", "Signed Up", { plan: "Enterprise", revenue: 10, currency: "EUR" });
    analytics.page("u1", "Docs", "Python", { url: "http://segment.com" });
    analytics.screen("u1", "Settings", "Brightness", { from: "Home Screen" });
    analytics.group("u1", "g1", { name: "Initech", employees: 10 });
    analytics.alias("prev1", "u1");
    analytics.track({ anonymousId: "a1", event: "Viewed", timestamp: new Date() });
    analytics.identify({ userId: 42, traits: { createdAt: new Date() } });
    assert.deepEqual(await analytics.flush(), { delivered: 8, failed: 0, pending: 0 });
    const stats = collector.stats();
    assert.equal(stats.good, 8, JSON.stringify(collector.events({ status: "bad" })));
    assert.equal(stats.bad, 0);
  });
});

// ---- the NDJSON file

test("with out, every stored event is appended to the NDJSON file, flushed by stop()", {
  skip: canWrite ? false : "needs --allow-write on Deno",
}, async () => {
  const dir = mkdtempSync(join(tmpdir(), "tally-collector-"));
  try {
    const file = join(dir, "events.ndjson");
    const collector = await startCollector({ out: file });
    await post(collector, "/v1/batch", { batch: [track(), track({ event: 1 })] });
    await post(collector, "/v1/track", { messageId: "t", userId: "u", event: "E" });
    const stored = collector.events().reverse();
    await collector.stop();
    const lines = readFileSync(file, "utf8").split("\n");
    assert.equal(lines.pop(), "", "the file ends with a newline");
    assert.deepEqual(lines.map((line) => JSON.parse(line)), stored);
    assert.equal(lines[1], JSON.stringify(stored[1]), "each line is the StoredEvent's JSON");

    // Appends: a second run adds to the same file.
    const again = await startCollector({ out: file });
    await post(again, "/v1/batch", { batch: [track()] });
    await again.stop();
    assert.equal(readFileSync(file, "utf8").trimEnd().split("\n").length, 4);
    await assert.rejects(startCollector({ out: join(dir, "missing", "x.ndjson") }), /ENOENT|No such file/i);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

// ---- the event stream

/** Reads server-sent events from /api/stream. */
async function openStream(collector: Collector) {
  const controller = new AbortController();
  const response = await fetch(`${collector.url}/api/stream`, { signal: controller.signal });
  assert.equal(response.status, 200);
  assert.match(response.headers.get("content-type") ?? "", /^text\/event-stream/);
  const reader = response.body!.pipeThrough(new TextDecoderStream()).getReader();
  const events: { event: string; data: string }[] = [];
  let buffer = "";
  let comments = 0;
  const pump = (async () => {
    try {
      for (;;) {
        const { value, done } = await reader.read();
        if (done) return;
        buffer += value;
        for (let end = buffer.indexOf("\n\n"); end >= 0; end = buffer.indexOf("\n\n")) {
          const block = buffer.slice(0, end);
          buffer = buffer.slice(end + 2);
          if (block.startsWith(":")) comments++;
          const event = /^event: (.*)$/m.exec(block)?.[1];
          const data = /^data: (.*)$/m.exec(block)?.[1];
          if (event !== undefined && data !== undefined) events.push({ event, data });
        }
      }
    } catch {
      // aborted
    }
  })();
  return {
    events,
    comments: () => comments,
    async until(predicate: () => boolean, what: string, ms = 3000): Promise<void> {
      const end = Date.now() + ms;
      while (!predicate()) {
        if (Date.now() > end) throw new Error(`waited ${ms} ms for ${what}; got ${JSON.stringify(events)}`);
        await delay(10);
      }
    },
    async close(): Promise<void> {
      controller.abort();
      // Cancelling the reader ends the pump's pending read: Deno's fetch does not always error a body that is
      // being read through a pipe when the request is aborted (seen after a dozen earlier tests in this file).
      await reader.cancel().catch(() => {});
      await pump;
    },
  };
}

test("GET /api/stream sends stats at once, each stored message, throttled stats, the ids a filtered DELETE took, and clear", async () => {
  await withCollector({}, async (collector) => {
    const stream = await openStream(collector);
    try {
      await stream.until(() => stream.events.length >= 1, "the first stats");
      assert.equal(stream.events[0].event, "stats");
      assert.equal(JSON.parse(stream.events[0].data).total, 0);

      await post(collector, "/v1/batch", { batch: [track({ event: "A" }), track({ event: 3 })] });
      await post(collector, "/v1/batch", { batch: [track({ event: "C" })] });
      const messages = () => stream.events.filter((e) => e.event === "message");
      await stream.until(() => messages().length === 3, "three messages");
      const received = messages().map((e) => JSON.parse(e.data) as StoredEvent);
      assert.deepEqual(received, collector.events().reverse(), "each message once, as stored, in order");
      await stream.until(
        () => stream.events.some((e) => e.event === "stats" && JSON.parse(e.data).total === 3),
        "stats",
      );
      const statsEvents = stream.events.filter((e) => e.event === "stats");
      assert.ok(statsEvents.length <= 3, `stats are throttled: ${statsEvents.length}`);
      assert.deepEqual(JSON.parse(statsEvents.at(-1)!.data), collector.stats());

      const deleted = await fetch(`${collector.url}/api/events?status=bad`, { method: "DELETE" });
      await deleted.body?.cancel();
      await stream.until(() => stream.events.some((e) => e.event === "delete"), "delete");
      assert.deepEqual(JSON.parse(stream.events.find((e) => e.event === "delete")!.data), { ids: [received[1].id] });
      await stream.until(
        () => stream.events.at(-1)?.event === "stats" && JSON.parse(stream.events.at(-1)!.data).total === 2,
        "stats without the deleted one",
      );

      const cleared = await fetch(`${collector.url}/api/events`, { method: "DELETE" });
      await cleared.body?.cancel();
      await stream.until(() => stream.events.some((e) => e.event === "clear"), "clear");
      await stream.until(
        () => stream.events.at(-1)?.event === "stats" && JSON.parse(stream.events.at(-1)!.data).total === 0,
        "zeroed stats",
      );
    } finally {
      await stream.close();
    }
  });
});

test("subscribe() reports stored events and clears to code in the same process", async () => {
  await withCollector({}, async (collector) => {
    const seen: string[] = [];
    const unsubscribe = collector.subscribe((e) => void seen.push(e.kind === "message" ? `#${e.event.id}` : "clear"));
    await post(collector, "/v1/batch", { batch: [track(), track()] });
    collector.clear();
    unsubscribe();
    await post(collector, "/v1/batch", { batch: [track()] });
    assert.deepEqual(seen, ["#1", "#2", "clear"]);
  });
});

test("stop() ends open streams and hanging requests", async () => {
  const collector = await startCollector();
  const stream = await openStream(collector);
  collector.setDefaultReply({ hang: true });
  const hanging = fetch(`${collector.url}/v1/batch`, { method: "POST", body: "{}" }).then(
    () => "answered",
    () => "failed",
  );
  await delay(50);
  const started = Date.now();
  await collector.stop();
  assert.ok(Date.now() - started < 2000);
  assert.equal(await hanging, "failed");
  await stream.close();
});

// ---- scripted replies and the request log

test("scripted replies answer the next requests in order, then the default, then normal processing again", async () => {
  await withCollector({ recordRequests: true }, async (collector) => {
    const seen: string[] = [];
    const off = collector.onRequest((r) => void seen.push(r.path));
    collector.script({ status: 503, body: "busy", headers: { "x-test": "1" } }, { drop: true });
    const first = await fetch(`${collector.url}/v1/batch`, {
      method: "POST",
      body: JSON.stringify({ batch: [track()] }),
    });
    assert.equal(first.status, 503);
    assert.equal(first.headers.get("x-test"), "1");
    assert.equal(await first.text(), "busy");
    assert.equal(await rawPost(collector, "/v1/batch?x=1", '{"batch":[]}'), "dropped");
    assert.equal((await post(collector, "/v1/batch", { batch: [track()] })).status, 200);
    assert.equal(collector.stats().total, 1, "scripted answers store nothing");

    collector.setDefaultReply({ status: 429, headers: { "retry-after": "3" } });
    const limited = await post(collector, "/v1/track", "{}");
    assert.equal(limited.status, 429);
    collector.setDefaultReply({ hang: true });
    await assert.rejects(
      fetch(`${collector.url}/v1/batch`, { method: "POST", body: "{}", signal: AbortSignal.timeout(100) }),
    );
    collector.setDefaultReply(undefined);
    assert.equal((await post(collector, "/v1/batch", { batch: [track()] })).status, 200);
    off();
    await post(collector, "/v1/batch", { batch: [] });

    assert.deepEqual(seen, ["/v1/batch", "/v1/batch?x=1", "/v1/batch", "/v1/track", "/v1/batch", "/v1/batch"]);
    const log = collector.requests;
    assert.equal(log.length, 7);
    assert.equal(log[0].method, "POST");
    assert.equal(log[0].path, "/v1/batch");
    assert.equal(log[0].headers["content-length"], String(log[0].wireBytes));
    assert.equal(log[0].body.batch?.length, 1);
    assert.equal(log[1].path, "/v1/batch?x=1");
    assert.deepEqual(log[3].body, {});
    assert.ok(log.every((r, i) => i === 0 || r.at >= log[i - 1].at));
  });
});

test("the request log keeps the wire size and the decoded body of a gzip request", async () => {
  await withCollector({ recordRequests: true }, async (collector) => {
    const body = { batch: [track()], sentAt: T, writeKey: "K" };
    const wire = gzipSync(JSON.stringify(body));
    await post(collector, "/v1/batch", wire, { "content-encoding": "gzip", authorization: "Basic " + btoa("K:") });
    const [entry] = collector.requests;
    assert.equal(entry.wireBytes, wire.length);
    assert.deepEqual(entry.body, body);
    assert.equal(entry.headers["content-encoding"], "gzip");
    assert.equal(entry.headers["authorization"], "Basic " + btoa("K:"));
  });
});

// ---- fault injection against the library's retry policy

test("failRate 1 answers failStatus with Retry-After, and the library reports onError after maxRetries", async () => {
  await withCollector({ failRate: 1, failStatus: 503, retryAfter: 1, seed: 1 }, async (collector) => {
    const direct = await post(collector, "/v1/batch", { batch: [track()] });
    assert.equal(direct.status, 503);
    assert.equal(direct.headers.get("retry-after"), "1");
    assert.deepEqual(direct.json, { success: false, error: "injected failure (fail rate)" });

    const log = errorLog();
    const analytics = client(collector, { maxRetries: 2, onError: log.onError });
    analytics.track({ userId: "u1", event: "A" });
    analytics.track({ userId: "u1", event: "B" });
    const started = Date.now();
    assert.deepEqual(await analytics.flush(), { delivered: 0, failed: 2, pending: 0 });
    assert.ok(Date.now() - started < 2000, "Retry-After is capped by maxRetryDelay");
    assert.equal(log.calls.length, 1);
    assert.equal(log.calls[0].error.reason, "http_status");
    assert.equal(log.calls[0].error.status, 503);
    assert.equal(log.calls[0].error.retries, 2);
    assert.equal(log.count(), 2);
    assert.equal(collector.stats().requests, 1 + 3, "one try and two retries");
    assert.equal(collector.stats().total, 0);
  });
});

test("failRate 0.5 with a seed: the library delivers everything after retries, each message stored once", async () => {
  await withCollector({ failRate: 0.5, seed: 7 }, async (collector) => {
    const log = errorLog();
    const analytics = client(collector, { maxRetries: 10, uploadSize: 10, onError: log.onError });
    for (let i = 0; i < 100; i++) analytics.track({ userId: "u1", event: "Tested", properties: { i } });
    assert.deepEqual(await analytics.flush(), { delivered: 100, failed: 0, pending: 0 });
    assert.equal(log.count(), 0);
    const stats = collector.stats();
    assert.equal(stats.good, 100);
    assert.ok(stats.requests > 10, `${stats.requests} requests for 10 batches: some were failed and retried`);
    assert.ok(analytics.stats().retries > 0);
  });
});

test("the same seed gives the same faults in the same order", async () => {
  const sequence = async (seed: number): Promise<string> => {
    const collector = await startCollector({ failRate: 0.5, dropConnectionRate: 0.2, seed });
    try {
      let statuses = "";
      for (let i = 0; i < 24; i++) {
        const status = await rawPost(collector, "/v1/batch", '{"batch":[]}');
        statuses += status === "dropped" ? "D" : status === 200 ? "." : "F";
      }
      return statuses;
    } finally {
      await collector.stop();
    }
  };
  const a = await sequence(42);
  assert.equal(await sequence(42), a);
  assert.match(a, /\./);
  assert.match(a, /F/);
  assert.match(a, /D/);
  assert.notEqual(await sequence(43), a);
});

test("dropConnectionRate closes connections without an answer, and the library retries them as network errors", async () => {
  await withCollector({ dropConnectionRate: 0.5, seed: 3 }, async (collector) => {
    const log = errorLog();
    const analytics = client(collector, { maxRetries: 10, uploadSize: 10, onError: log.onError });
    for (let i = 0; i < 50; i++) analytics.track({ userId: "u1", event: "Tested", properties: { i } });
    assert.deepEqual(await analytics.flush(), { delivered: 50, failed: 0, pending: 0 });
    assert.equal(collector.stats().good, 50);
    assert.ok(collector.stats().requests > 5);

    const all = await startCollector({ dropConnectionRate: 1 });
    try {
      const failing = errorLog();
      const doomed = client(all, { maxRetries: 1, onError: failing.onError });
      doomed.track({ userId: "u1", event: "Lost" });
      assert.deepEqual(await doomed.flush(), { delivered: 0, failed: 1, pending: 0 });
      assert.equal(failing.calls[0].error.reason, "network");
    } finally {
      await all.stop();
    }
  });
});

test("latency delays each answer, and a library timeout shorter than it reports timeout", async () => {
  await withCollector({ latency: 300 }, async (collector) => {
    const started = Date.now();
    assert.equal((await post(collector, "/v1/batch", { batch: [track()] })).status, 200);
    assert.ok(Date.now() - started >= 280, `answered after ${Date.now() - started} ms`);

    const log = errorLog();
    const analytics = client(collector, { timeout: 0.1, maxRetries: 1, onError: log.onError });
    analytics.track({ userId: "u1", event: "Slow" });
    assert.deepEqual(await analytics.flush(), { delivered: 0, failed: 1, pending: 0 });
    assert.equal(log.calls[0].error.reason, "timeout");

    const patient = client(collector, { timeout: 2 });
    patient.track({ userId: "u1", event: "Patient" });
    assert.deepEqual(await patient.flush(), { delivered: 1, failed: 0, pending: 0 });
  });
});

test("failStatus 429 with retryAfter: the library waits as told (within maxRetryDelay) and delivers once it passes", async () => {
  await withCollector({ failRate: 0.5, failStatus: 429, retryAfter: 0.05, seed: 11 }, async (collector) => {
    const analytics = client(collector, { maxRetries: 10, uploadSize: 5, maxRetryDelay: 1 });
    for (let i = 0; i < 20; i++) analytics.track({ userId: "u1", event: "Tested" });
    assert.deepEqual(await analytics.flush(), { delivered: 20, failed: 0, pending: 0 });
    assert.equal(collector.stats().good, 20);
  });
});

// ---- options

test("startCollector checks its options and binds 127.0.0.1 by default", async () => {
  const bad: [CollectorOptions, RegExp][] = [
    [{ port: -1 }, /port must be an integer from 0 to 65535/],
    [{ maxEvents: 0 }, /maxEvents must be a positive integer/],
    [{ failRate: 2 }, /failRate must be a number from 0 to 1/],
    [{ dropConnectionRate: -0.1 }, /dropConnectionRate/],
    [{ failStatus: 200 }, /failStatus must be an integer from 400 to 599/],
    [{ retryAfter: -1 }, /retryAfter/],
    [{ latency: Number.NaN }, /latency/],
    [{ writeKey: "" }, /writeKey must be a non-empty string/],
  ];
  for (const [options, message] of bad) await assert.rejects(startCollector(options), message);
  await withCollector({}, (collector) => {
    assert.equal(collector.url, `http://127.0.0.1:${collector.port}`);
    assert.ok(collector.port > 0);
    return Promise.resolve();
  });
});

// ---- tally serve

test("tally serve rejects a bad flag with one line naming it and exit code 2", async () => {
  const cases: [string[], RegExp][] = [
    [["--port", "abc"], /--port must be a port number from 0 to 65535, got "abc"/],
    [["--fail-rate", "1.5"], /--fail-rate must be a number from 0 to 1/],
    [["--fail-status", "200"], /--fail-status must be an HTTP status from 400 to 599/],
    [["--drop-connection-rate", "x"], /--drop-connection-rate/],
    [["--lose-ack-rate", "2"], /--lose-ack-rate must be a number from 0 to 1/],
    [["--latency", "-5"], /--latency/],
    [["--retry-after", "soon"], /--retry-after/],
    [["--max-events", "0"], /--max-events/],
    [["--seed", "1.5"], /--seed must be a whole number/],
    [["--prot", "1"], /--prot/],
    [["extra"], /extra/],
    [["--out", "x.ndjson", "--no-out"], /--out and --no-out/],
  ];
  for (const [args, message] of cases) {
    const out: string[] = [];
    const err: string[] = [];
    const code = await serve(args, { out: (l) => void out.push(l), err: (l) => void err.push(l) });
    assert.equal(code, 2, args.join(" "));
    assert.equal(err.length, 1, args.join(" "));
    assert.match(err[0], /^tally: /);
    assert.match(err[0], message);
    assert.ok(!err[0].includes("\n"));
    assert.deepEqual(out, []);
  }
  const help: string[] = [];
  assert.equal(await serve(["--help"], { out: (l) => void help.push(l), err: () => {} }), 0);
  assert.match(help.join("\n"), /--fail-rate[\s\S]*--drop-connection-rate[\s\S]*--lose-ack-rate[\s\S]*--seed/);
});

test("loseAckRate stores a batch, then closes the connection unanswered: the client re-sends, and each re-send is a counted duplicate", async () => {
  await withCollector({ loseAckRate: 0.3, seed: 7 }, async (collector) => {
    const log = errorLog();
    const analytics = client(collector, { uploadSize: 10, maxRetries: 20, onError: log.onError });
    const ids: string[] = [];
    for (let i = 0; i < 300; i++) ids.push(analytics.track({ userId: "u1", event: "Lost Ack", messageId: `ack-${i}` }));
    const result = await analytics.flush();
    assert.deepEqual(result, { delivered: 300, failed: 0, pending: 0 });
    assert.deepEqual(log.calls, []);
    const events = collector.events({ limit: 10_000 });
    assert.deepEqual(
      [...new Set(events.map((e) => e.message.messageId))].sort(),
      [...ids].sort(),
      "every message stored",
    );
    const duplicates = events.filter((e) => e.duplicate).length;
    assert.ok(duplicates > 0, "some acknowledgements were lost");
    assert.equal(events.length, 300 + duplicates, "what was stored twice is exactly what is flagged");
    assert.equal(collector.stats().duplicates, duplicates);
    assert.equal(duplicates % 10, 0, "whole batches are re-sent");
    await analytics.close();
  });
});

test("tally serve prints where it listens, logs a line per request and bad message, and stops cleanly", async () => {
  const out: string[] = [];
  const stop = new AbortController();
  const running = serve(["--port", "0", "--no-out"], {
    out: (l) => void out.push(l),
    err: (l) => void out.push(l),
    signal: stop.signal,
  });
  const end = Date.now() + 3000;
  while (out.length < 2 && Date.now() < end) await delay(10);
  const url = /^Tally collector listening on (http:\/\/127\.0\.0\.1:\d+)$/.exec(out[0])?.[1];
  assert.ok(url, out[0]);
  assert.equal(out[1], `Inspector: ${url}/`);
  const response = await fetch(`${url}/v1/batch`, {
    method: "POST",
    body: JSON.stringify({ batch: [track(), track({ event: undefined })] }),
  });
  assert.equal(response.status, 200);
  await response.body?.cancel();
  stop.abort();
  assert.equal(await running, 0);
  const log = out.join("\n");
  assert.match(log, /POST \/v1\/batch 200 2 messages \(1 bad\)/);
  assert.match(log, / {2}bad #2 track user u1: event is missing/);
  assert.match(out.at(-1)!, /^Stopped\. 2 messages \(1 good, 1 bad\) in 1 request\.$/);
  await assert.rejects(fetch(`${url}/api/stats`), "no longer listening");
});

test("tally serve --quiet logs no requests; a port in use is one error line and exit code 1", async () => {
  await withCollector({}, async (taken) => {
    const err: string[] = [];
    const code = await serve(["--port", String(taken.port), "--no-out"], {
      out: () => {},
      err: (l) => void err.push(l),
    });
    assert.equal(code, 1);
    assert.equal(err.length, 1);
    assert.match(err[0], /^tally: Cannot listen on 127\.0\.0\.1:\d+: the port is in use/);
  });
  const out: string[] = [];
  const stop = new AbortController();
  const running = serve(["--port", "0", "--no-out", "--quiet"], {
    out: (l) => void out.push(l),
    err: () => {},
    signal: stop.signal,
  });
  const end = Date.now() + 3000;
  while (out.length < 2 && Date.now() < end) await delay(10);
  const url = out[0].split(" ").at(-1)!;
  await (await fetch(`${url}/v1/batch`, { method: "POST", body: '{"batch":[]}' })).body?.cancel();
  stop.abort();
  assert.equal(await running, 0);
  assert.ok(!out.some((line) => line.includes("POST")), out.join("\n"));
});

test("tally serve in its own process stops on SIGTERM with exit code 0", async () => {
  const args = "Deno" in globalThis
    ? ["run", "--allow-net=127.0.0.1", "--allow-read", "--allow-env", SERVE_CHILD]
    : [SERVE_CHILD];
  const child = spawn(process.execPath, [...args, "--port", "0", "--no-out"], {
    cwd: ROOT,
    stdio: ["ignore", "pipe", "pipe"],
  });
  let stdout = "";
  let stderr = "";
  child.stdout.on("data", (chunk) => void (stdout += chunk));
  child.stderr.on("data", (chunk) => void (stderr += chunk));
  const closed = new Promise<string>((resolve) => child.on("close", (code, signal) => resolve(`${code} ${signal}`)));
  const killer = setTimeout(() => child.kill("SIGKILL"), 15_000);
  try {
    const end = Date.now() + 10_000;
    while (!stdout.includes("Inspector:") && Date.now() < end) await delay(20);
    const url = /^Tally collector listening on (http:\/\/127\.0\.0\.1:\d+)$/m.exec(stdout)?.[1];
    assert.ok(url, `stdout: ${stdout} stderr: ${stderr}`);
    assert.ok(stdout.startsWith(`Tally collector listening on ${url}\nInspector: ${url}/\n`), stdout);
    const analytics = new Analytics({ writeKey: "K", host: url });
    analytics.track({ userId: "u1", event: "From a child" });
    assert.deepEqual(await analytics.flush(), { delivered: 1, failed: 0, pending: 0 });
    child.kill("SIGTERM");
    // Deno's node:child_process reports the signal it sent even when the child handled it and exited 0.
    assert.equal(await closed, "Deno" in globalThis ? "null SIGTERM" : "0 null", `stderr: ${stderr}`);
    assert.match(stdout, /Stopped\. 1 message \(1 good, 0 bad\) in 1 request\.\n$/, "stopped cleanly");
  } finally {
    clearTimeout(killer);
    if (child.exitCode === null && child.signalCode === null) child.kill("SIGKILL");
    await closed;
  }
});
