/**
 * Delivery over real HTTP: the request on the wire, batching triggers, gzip,
 * retries, timeouts, flush/close bounds, queue overflow, callbacks, bounded
 * fan-out and sync mode, against the recording receiver in `receiver.ts`.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { Buffer } from "node:buffer";
import { createServer, type IncomingMessage, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { Analytics, type AnalyticsOptions, type Context, type DeliveryError, type Message, VERSION } from "../mod.ts";
import { type Received, startReceiver } from "./receiver.ts";

const KEY = "KEY";
/** Fast retries, so failure tests take milliseconds. */
const FAST = { minRetryDelay: 0.01, maxRetryDelay: 0.05 } as const;
const LIBRARY = { name: "@tally/analytics", version: VERSION };
const ISO_MS = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$/;
const UUID_V4 = /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;

const delay = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

async function until(condition: () => boolean, what: string, ms = 3000): Promise<void> {
  const end = Date.now() + ms;
  while (!condition()) {
    if (Date.now() > end) throw new Error(`waited ${ms} ms for ${what}`);
    await delay(5);
  }
}

/** Records every onError call, to check that each undelivered message is reported exactly once. */
function errorLog() {
  const calls: { error: DeliveryError; messages: Message[] }[] = [];
  return {
    calls,
    onError: (error: DeliveryError, messages: Message[]): void => void calls.push({ error, messages }),
    /** Messages reported, summed over calls. */
    count: (): number => calls.reduce((n, call) => n + call.messages.length, 0),
    ids: (): string[] => calls.flatMap((call) => call.messages.map((m) => m.messageId)),
    reasons: (): string[] => [...new Set(calls.map((call) => call.error.reason))],
  };
}
type ErrorLog = ReturnType<typeof errorLog>;

/** The messages reported to onError are exactly `undelivered`: the same count, each id once. */
function assertReportedOnce(log: ErrorLog, undelivered: string[]): void {
  assert.equal(log.count(), undelivered.length, "messages passed to onError, summed over calls");
  const ids = log.ids();
  assert.equal(new Set(ids).size, ids.length, "no message reported twice");
  assert.deepEqual([...ids].sort(), [...undelivered].sort());
}

const batchOf = (request: Received): Record<string, unknown>[] => request.body.batch ?? [];
const idsOf = (messages: Record<string, unknown>[]): string[] => messages.map((m) => m.messageId as string);

/**
 * Every id arrived exactly once, and each request holds a run of consecutive
 * calls in call order (requests in parallel may arrive in any order).
 */
function assertDeliveredInRuns(requests: Received[], ids: string[]): void {
  const arrived = requests.flatMap((r) => idsOf(batchOf(r)));
  assert.equal(arrived.length, ids.length, "messages delivered");
  assert.deepEqual([...arrived].sort(), [...ids].sort());
  for (const r of requests) {
    const batch = idsOf(batchOf(r));
    const start = ids.indexOf(batch[0]);
    assert.deepEqual(batch, ids.slice(start, start + batch.length), "a batch is a run of consecutive calls");
  }
}

function client(url: string, options: AnalyticsOptions = {}): Analytics {
  return new Analytics({ writeKey: KEY, host: url, ...options });
}

/** Tracks `n` small messages and returns their messageIds. */
function trackMany(analytics: Analytics, n: number, properties: Record<string, unknown> = {}): string[] {
  const ids: string[] = [];
  for (let i = 0; i < n; i++) {
    ids.push(analytics.track({ userId: "u1", event: "Tested", properties: { i, ...properties } }));
  }
  return ids;
}

test("every call type in both styles is POSTed to /v1/batch with the documented headers and body", async () => {
  const receiver = await startReceiver();
  const analytics = client(receiver.url, { uploadInterval: 60 });
  try {
    const ts = "2024-05-01T12:00:00.000Z";
    const o = (messageId: string) => ({ messageId, timestamp: ts });
    const ctx = { library: LIBRARY };
    analytics.identify("u1", { email: "john@example.com" }, o("p-identify"));
    analytics.track("u1", "Signed Up", { plan: "Enterprise" }, {
      ...o("p-track"),
      integrations: { All: false, KISSmetrics: true },
      context: { ip: "10.0.0.1" },
    });
    analytics.page("u1", "Docs", "Python", { url: "http://segment.com" }, o("p-page"));
    analytics.screen("u1", "Settings", "Brightness", { from: "Home Screen" }, o("p-screen"));
    analytics.group("u1", "g1", { name: "Initech" }, o("p-group"));
    analytics.alias("prev1", "u1", o("p-alias"));
    analytics.identify({ userId: "u1", traits: { email: "john@example.com" }, ...o("o-identify") });
    analytics.track({ anonymousId: "a1", event: "Signed Up", properties: { plan: "Enterprise" }, ...o("o-track") });
    analytics.page({
      userId: "u1",
      category: "Docs",
      name: "Python",
      properties: { url: "http://segment.com" },
      ...o("o-page"),
    });
    analytics.screen({
      userId: "u1",
      category: "Settings",
      name: "Brightness",
      properties: { from: "Home Screen" },
      ...o("o-screen"),
    });
    analytics.group({ userId: "u1", groupId: "g1", traits: { name: "Initech" }, ...o("o-group") });
    analytics.alias({ previousId: "prev1", userId: "u1", ...o("o-alias") });
    const result = await analytics.flush();
    assert.deepEqual(result, { delivered: 12, failed: 0, pending: 0 });

    assert.equal(receiver.requests.length, 1);
    const [request] = receiver.requests;
    assert.equal(request.method, "POST");
    assert.equal(request.path, "/v1/batch");
    assert.equal(request.headers["content-type"], "application/json");
    assert.equal(request.headers["authorization"], "Basic " + btoa("KEY:"));
    assert.equal(request.headers["authorization"], "Basic S0VZOg==");
    assert.ok(request.headers["user-agent"].startsWith("@tally/analytics/"), request.headers["user-agent"]);
    assert.equal(request.headers["x-retry-count"], undefined);
    assert.equal(request.headers["content-encoding"], undefined);
    assert.deepEqual(Object.keys(request.body).sort(), ["batch", "sentAt", "writeKey"]);
    assert.equal(request.body.writeKey, KEY);
    assert.match(request.body.sentAt as string, ISO_MS);
    assert.ok(Math.abs(Date.parse(request.body.sentAt as string) - Date.now()) < 60_000);

    const base = { timestamp: ts, context: ctx };
    assert.deepEqual(request.body.batch, [
      { ...base, type: "identify", messageId: "p-identify", userId: "u1", traits: { email: "john@example.com" } },
      {
        ...base,
        type: "track",
        messageId: "p-track",
        userId: "u1",
        event: "Signed Up",
        properties: { plan: "Enterprise" },
        context: { ip: "10.0.0.1", library: LIBRARY },
        integrations: { All: false, KISSmetrics: true },
      },
      {
        ...base,
        type: "page",
        messageId: "p-page",
        userId: "u1",
        category: "Docs",
        name: "Python",
        properties: { url: "http://segment.com" },
      },
      {
        ...base,
        type: "screen",
        messageId: "p-screen",
        userId: "u1",
        category: "Settings",
        name: "Brightness",
        properties: { from: "Home Screen" },
      },
      { ...base, type: "group", messageId: "p-group", userId: "u1", groupId: "g1", traits: { name: "Initech" } },
      { ...base, type: "alias", messageId: "p-alias", previousId: "prev1", userId: "u1" },
      { ...base, type: "identify", messageId: "o-identify", userId: "u1", traits: { email: "john@example.com" } },
      {
        ...base,
        type: "track",
        messageId: "o-track",
        anonymousId: "a1",
        event: "Signed Up",
        properties: { plan: "Enterprise" },
      },
      {
        ...base,
        type: "page",
        messageId: "o-page",
        userId: "u1",
        category: "Docs",
        name: "Python",
        properties: { url: "http://segment.com" },
      },
      {
        ...base,
        type: "screen",
        messageId: "o-screen",
        userId: "u1",
        category: "Settings",
        name: "Brightness",
        properties: { from: "Home Screen" },
      },
      { ...base, type: "group", messageId: "o-group", userId: "u1", groupId: "g1", traits: { name: "Initech" } },
      { ...base, type: "alias", messageId: "o-alias", previousId: "prev1", userId: "u1" },
    ]);
    const stats = analytics.stats();
    assert.equal(stats.delivered, 12);
    assert.equal(stats.batches, 1);
    assert.equal(stats.retries, 0);
    assert.equal(stats.bytesSent, request.wireBytes);
  } finally {
    await analytics.close({ timeout: 100 });
    await receiver.stop();
  }
});

test("a message without messageId or timestamp gets a UUID v4 and the current time", async () => {
  const receiver = await startReceiver();
  const analytics = client(receiver.url, { uploadInterval: 60 });
  try {
    const before = Date.now();
    const ids = [
      analytics.identify("u1"),
      analytics.track("u1", "Signed Up"),
      analytics.page("u1"),
      analytics.screen("u1"),
      analytics.group("u1", 42),
      analytics.alias(7, "u1"),
    ];
    const after = Date.now();
    await analytics.flush();
    const messages = receiver.messages();
    assert.deepEqual(idsOf(messages), ids);
    assert.deepEqual(messages.map((m) => m.type), ["identify", "track", "page", "screen", "group", "alias"]);
    for (const m of messages) {
      assert.match(m.messageId as string, UUID_V4);
      assert.match(m.timestamp as string, ISO_MS);
      const t = Date.parse(m.timestamp as string);
      assert.ok(t >= before - 1 && t <= after + 1, `timestamp ${m.timestamp} taken at the call`);
      assert.deepEqual(m.context, { library: LIBRARY });
      assert.equal("integrations" in m, false, "absent fields are omitted, not null");
      assert.equal("properties" in m, false);
      assert.equal("anonymousId" in m, false);
    }
    assert.equal(messages[4].groupId, "42", "numeric ids are sent as strings");
    assert.equal(messages[5].previousId, "7");
  } finally {
    await analytics.close({ timeout: 100 });
    await receiver.stop();
  }
});

test("a retried request carries X-Retry-Count and a fresh sentAt", async () => {
  const receiver = await startReceiver();
  const log = errorLog();
  const analytics = client(receiver.url, { ...FAST, maxRetries: 3, onError: log.onError });
  try {
    receiver.reply({ status: 500 }, { status: 503 });
    const ids = trackMany(analytics, 3);
    const result = await analytics.flush();
    assert.deepEqual(result, { delivered: 3, failed: 0, pending: 0 });
    assert.equal(receiver.requests.length, 3);
    assert.deepEqual(receiver.requests.map((r) => r.headers["x-retry-count"]), [undefined, "1", "2"]);
    const sentAt = receiver.requests.map((r) => Date.parse(r.body.sentAt as string));
    assert.ok(sentAt[0] < sentAt[1] && sentAt[1] < sentAt[2], `sentAt re-stamped per attempt: ${sentAt}`);
    for (const r of receiver.requests) assert.deepEqual(idsOf(batchOf(r)), ids, "the same messages each attempt");
    // The message timestamps do not change between attempts; only sentAt does.
    assert.deepEqual(batchOf(receiver.requests[0]), batchOf(receiver.requests[2]));
    assertReportedOnce(log, []);
    const stats = analytics.stats();
    assert.equal(stats.delivered, 3);
    assert.equal(stats.failed, 0);
    assert.equal(stats.retries, 2);
    assert.equal(stats.batches, 1);
    assert.equal(stats.bytesSent, receiver.requests.reduce((n, r) => n + r.wireBytes, 0));
  } finally {
    await analytics.close({ timeout: 100 });
    await receiver.stop();
  }
});

test("uploadSize starts a batch by count: 12 calls with uploadSize 5 go out as 5, 5 and 2", async () => {
  const receiver = await startReceiver();
  const analytics = client(receiver.url, { uploadSize: 5, uploadInterval: 60 });
  try {
    const ids = trackMany(analytics, 12);
    // The two full batches go out without flush() or the (long) interval.
    await receiver.waitForMessages(10, 2000);
    await delay(50);
    assert.deepEqual(receiver.requests.map((r) => batchOf(r).length), [5, 5]);
    assert.equal(analytics.stats().queued, 2);
    const result = await analytics.flush();
    assert.deepEqual(result, { delivered: 2, failed: 0, pending: 0 });
    assert.deepEqual(receiver.requests.map((r) => batchOf(r).length), [5, 5, 2]);
    assertDeliveredInRuns(receiver.requests, ids);
    assert.equal(analytics.stats().batches, 3);
    assert.equal(analytics.stats().delivered, 12);
  } finally {
    await analytics.close({ timeout: 100 });
    await receiver.stop();
  }
});

test("uploadInterval sends a partial batch without flush()", async () => {
  const receiver = await startReceiver();
  const analytics = client(receiver.url, { uploadInterval: 0.1 });
  try {
    const start = Date.now();
    const ids = trackMany(analytics, 3);
    await receiver.waitForMessages(3, 1000);
    const elapsed = Date.now() - start;
    assert.ok(elapsed >= 50, `waited for the interval (${elapsed} ms), not sent at once`);
    assert.equal(receiver.requests.length, 1);
    assert.deepEqual(idsOf(receiver.messages()), ids);
    await until(() => analytics.stats().delivered === 3, "delivered count");
  } finally {
    await analytics.close({ timeout: 100 });
    await receiver.stop();
  }
});

test("the byte limit starts a batch: 30 KB messages never make a body over 512000 bytes", async () => {
  const receiver = await startReceiver();
  const log = errorLog();
  const analytics = client(receiver.url, { uploadSize: 100, uploadInterval: 60, onError: log.onError });
  try {
    const pad = "x".repeat(30_000);
    const ids = trackMany(analytics, 40, { pad });
    // 40 x 30 KB is over 512000 bytes: full-by-bytes batches go out without flush().
    await receiver.waitForMessages(16, 2000);
    const result = await analytics.flush();
    assert.equal(result.failed, 0);
    assert.equal(result.pending, 0);
    assertDeliveredInRuns(receiver.requests, ids);
    for (const r of receiver.requests) {
      assert.ok(r.wireBytes <= 512000, `request of ${r.wireBytes} bytes`);
      assert.ok(batchOf(r).every((m) => (m.properties as { pad: string }).pad === pad));
    }
    // Batches are filled up to the limit, not sent one message at a time.
    assert.ok(receiver.requests.length <= 4, `${receiver.requests.length} requests for 40 messages`);
    assertReportedOnce(log, []);
    assert.equal(analytics.stats().delivered, 40);
  } finally {
    await analytics.close({ timeout: 100 });
    await receiver.stop();
  }
});

test("a batch never holds more than 2500 messages", async () => {
  const receiver = await startReceiver();
  const analytics = client(receiver.url, { uploadSize: 2500, uploadInterval: 60, maxQueueSize: 20000 });
  try {
    const ids: string[] = [];
    for (let i = 0; i < 3000; i++) ids.push(analytics.track({ anonymousId: "a", event: "e" }));
    const result = await analytics.flush();
    assert.deepEqual(result, { delivered: 3000, failed: 0, pending: 0 });
    const sizes = receiver.requests.map((r) => batchOf(r).length);
    assert.ok(sizes.every((n) => n <= 2500), `batch sizes ${sizes}`);
    assert.ok(receiver.requests.every((r) => r.wireBytes <= 512000));
    assert.equal(sizes.reduce((a, b) => a + b, 0), 3000);
    assertDeliveredInRuns(receiver.requests, ids);
  } finally {
    await analytics.close({ timeout: 100 });
    await receiver.stop();
  }
});

test("multi-byte text is measured in UTF-8 bytes, not characters", async () => {
  const receiver = await startReceiver();
  const log = errorLog();
  const analytics = client(receiver.url, { uploadInterval: 60, onError: log.onError });
  try {
    // About 10 KB of UTF-16 code units but 30 KB of UTF-8 each: a count by characters would send ~1.5 MB bodies.
    const euro = "€".repeat(10_000); // 3 bytes per char
    const emoji = "😀".repeat(3_700); // 4 bytes per 2 code units
    const ids: string[] = [];
    for (let i = 0; i < 60; i++) {
      ids.push(analytics.track({ userId: "ü", event: "Ünïcödé", properties: { i, text: i % 2 ? euro : emoji } }));
    }
    const result = await analytics.flush();
    assert.deepEqual(result, { delivered: 60, failed: 0, pending: 0 });
    assert.ok(receiver.requests.length > 1);
    for (const r of receiver.requests) assert.ok(r.wireBytes <= 512000, `request of ${r.wireBytes} bytes`);
    assertDeliveredInRuns(receiver.requests, ids);
    for (const m of receiver.messages()) {
      const { i, text } = m.properties as { i: number; text: string };
      assert.equal(text, i % 2 ? euro : emoji);
      assert.equal(m.event, "Ünïcödé");
      assert.equal(m.userId, "ü");
    }
    assertReportedOnce(log, []);
  } finally {
    await analytics.close({ timeout: 100 });
    await receiver.stop();
  }
});

test("gzip: true sends Content-Encoding gzip and the receiver decodes the same messages", async () => {
  const receiver = await startReceiver();
  const analytics = client(receiver.url, { gzip: true, uploadInterval: 60 });
  try {
    const ids: string[] = [];
    for (let i = 0; i < 50; i++) {
      ids.push(analytics.track({
        userId: `user-${i % 7}`,
        event: "Order Completed",
        properties: { orderId: `order-${i}`, revenue: 25.5 + i, currency: "USD", products: [{ sku: "ABC", qty: 1 }] },
        context: { ip: "10.0.0.1", locale: "en-US" },
      }));
    }
    const result = await analytics.flush();
    assert.deepEqual(result, { delivered: 50, failed: 0, pending: 0 });
    assert.equal(receiver.requests.length, 1);
    const [request] = receiver.requests;
    assert.equal(request.headers["content-encoding"], "gzip");
    assert.equal(request.headers["content-type"], "application/json");
    assert.equal(request.body.writeKey, KEY);
    assert.deepEqual(idsOf(batchOf(request)), ids);
    assert.deepEqual(batchOf(request)[3].properties, {
      orderId: "order-3",
      revenue: 28.5,
      currency: "USD",
      products: [{ sku: "ABC", qty: 1 }],
    });
    const plain = Buffer.byteLength(JSON.stringify(request.body));
    assert.ok(request.wireBytes < plain, `gzip ${request.wireBytes} bytes, plain ${plain} bytes`);
    assert.equal(analytics.stats().bytesSent, request.wireBytes, "bytesSent counts the compressed bytes");
  } finally {
    await analytics.close({ timeout: 100 });
    await receiver.stop();
  }
});

test("a 500 is retried and then delivered", async () => {
  const receiver = await startReceiver();
  const log = errorLog();
  const analytics = client(receiver.url, { ...FAST, maxRetries: 3, onError: log.onError });
  try {
    receiver.reply({ status: 500, body: "boom" });
    const ids = trackMany(analytics, 4);
    const result = await analytics.flush();
    assert.deepEqual(result, { delivered: 4, failed: 0, pending: 0 });
    assert.equal(receiver.requests.length, 2);
    assert.deepEqual(idsOf(batchOf(receiver.requests[1])), ids);
    assertReportedOnce(log, []);
    const stats = analytics.stats();
    assert.equal(stats.delivered, 4);
    assert.equal(stats.retries, 1);
    assert.equal(stats.failed, 0);
  } finally {
    await analytics.close({ timeout: 100 });
    await receiver.stop();
  }
});

test("a 429 with Retry-After: 1 waits about a second before the retry", async () => {
  const receiver = await startReceiver();
  const log = errorLog();
  // maxRetryDelay also caps Retry-After (documented), so it is raised above 1 s here.
  const analytics = client(receiver.url, {
    minRetryDelay: 0.01,
    maxRetryDelay: 2,
    maxRetries: 2,
    onError: log.onError,
  });
  try {
    receiver.reply({ status: 429, headers: { "Retry-After": "1" } });
    const ids = trackMany(analytics, 2);
    const result = await analytics.flush();
    assert.deepEqual(result, { delivered: 2, failed: 0, pending: 0 });
    assert.equal(receiver.requests.length, 2);
    const waited = receiver.requests[1].at - receiver.requests[0].at;
    assert.ok(waited >= 900, `retried after ${waited} ms`);
    assert.ok(waited < 1900, `retried after ${waited} ms`);
    assert.deepEqual(idsOf(receiver.messages().slice(2)), ids);
    assertReportedOnce(log, []);
    assert.equal(analytics.stats().retries, 1);
  } finally {
    await analytics.close({ timeout: 100 });
    await receiver.stop();
  }
});

test("a 503 with Retry-After as an HTTP date waits until that date", async () => {
  const receiver = await startReceiver();
  const analytics = client(receiver.url, { minRetryDelay: 0.01, maxRetryDelay: 3, maxRetries: 2 });
  try {
    // HTTP dates have whole seconds: two seconds ahead is at least one second away.
    receiver.reply({ status: 503, headers: { "Retry-After": new Date(Date.now() + 2000).toUTCString() } });
    trackMany(analytics, 1);
    const result = await analytics.flush();
    assert.deepEqual(result, { delivered: 1, failed: 0, pending: 0 });
    assert.equal(receiver.requests.length, 2);
    const waited = receiver.requests[1].at - receiver.requests[0].at;
    assert.ok(waited >= 900, `retried after ${waited} ms`);
  } finally {
    await analytics.close({ timeout: 100 });
    await receiver.stop();
  }
});

test("a 400 is not retried and is reported once with reason http_status", async () => {
  const receiver = await startReceiver();
  const log = errorLog();
  const analytics = client(receiver.url, { ...FAST, maxRetries: 3, onError: log.onError });
  try {
    receiver.reply({ status: 400, body: '{"error":"bad"}' });
    const ids = trackMany(analytics, 5);
    const result = await analytics.flush();
    assert.deepEqual(result, { delivered: 0, failed: 5, pending: 0 });
    assert.equal(receiver.requests.length, 1);
    assert.equal(log.calls.length, 1);
    const { error } = log.calls[0];
    assert.equal(error.reason, "http_status");
    assert.equal(error.status, 400);
    assert.equal(error.retries, 0);
    assert.equal(error.name, "DeliveryError");
    assert.ok(!error.message.includes(KEY + ":"), "the write key is never in an error message");
    assertReportedOnce(log, ids);
    const stats = analytics.stats();
    assert.equal(stats.failed, 5);
    assert.equal(stats.delivered, 0);
    assert.equal(stats.retries, 0);
  } finally {
    await analytics.close({ timeout: 100 });
    await receiver.stop();
  }
});

test("501, 505 and other 4xx answers are not retried", async () => {
  const receiver = await startReceiver();
  try {
    for (const status of [501, 505, 401, 403, 404, 422]) {
      const log = errorLog();
      const analytics = client(receiver.url, { ...FAST, maxRetries: 3, onError: log.onError });
      receiver.reply({ status });
      const before = receiver.requests.length;
      const ids = trackMany(analytics, 2);
      const result = await analytics.flush();
      assert.deepEqual(result, { delivered: 0, failed: 2, pending: 0 }, `status ${status}`);
      assert.equal(receiver.requests.length - before, 1, `status ${status} sent once`);
      assert.deepEqual(log.reasons(), ["http_status"]);
      assert.equal(log.calls[0].error.status, status);
      assertReportedOnce(log, ids);
      assert.equal(analytics.stats().retries, 0);
      assert.equal(analytics.stats().failed, 2);
      await analytics.close();
    }
  } finally {
    await receiver.stop();
  }
});

test("408, 410, 429, 460, 502, 503 and 504 are retried", async () => {
  const receiver = await startReceiver();
  try {
    for (const status of [408, 410, 429, 460, 502, 503, 504]) {
      const log = errorLog();
      const analytics = client(receiver.url, { ...FAST, maxRetries: 2, onError: log.onError });
      receiver.reply({ status });
      const before = receiver.requests.length;
      const ids = trackMany(analytics, 2);
      const result = await analytics.flush();
      assert.deepEqual(result, { delivered: 2, failed: 0, pending: 0 }, `status ${status}`);
      assert.equal(receiver.requests.length - before, 2, `status ${status} retried once`);
      assert.deepEqual(idsOf(batchOf(receiver.requests[receiver.requests.length - 1])), ids);
      assertReportedOnce(log, []);
      assert.equal(analytics.stats().retries, 1);
      await analytics.close();
    }
  } finally {
    await receiver.stop();
  }
});

test("after maxRetries retries the batch is reported once", async () => {
  const receiver = await startReceiver();
  const log = errorLog();
  const analytics = client(receiver.url, { ...FAST, maxRetries: 2, onError: log.onError });
  try {
    receiver.setDefault({ status: 500 });
    const ids = trackMany(analytics, 7);
    const result = await analytics.flush();
    assert.deepEqual(result, { delivered: 0, failed: 7, pending: 0 });
    assert.equal(receiver.requests.length, 3);
    assert.deepEqual(receiver.requests.map((r) => r.headers["x-retry-count"]), [undefined, "1", "2"]);
    assert.equal(log.calls.length, 1);
    assert.equal(log.calls[0].error.reason, "http_status");
    assert.equal(log.calls[0].error.status, 500);
    assert.equal(log.calls[0].error.retries, 2);
    assertReportedOnce(log, ids);
    const stats = analytics.stats();
    assert.equal(stats.failed, 7);
    assert.equal(stats.retries, 2);
    assert.equal(stats.delivered, 0);
    assert.equal(stats.queued + stats.inFlight, 0);
  } finally {
    await analytics.close({ timeout: 100 });
    await receiver.stop();
  }
});

test("a dropped connection is a network error and is retried", async () => {
  const receiver = await startReceiver();
  const log = errorLog();
  const analytics = client(receiver.url, { ...FAST, maxRetries: 2, onError: log.onError });
  try {
    receiver.reply({ drop: true });
    const ids = trackMany(analytics, 3);
    const result = await analytics.flush();
    assert.deepEqual(result, { delivered: 3, failed: 0, pending: 0 });
    assert.equal(receiver.requests.length, 2);
    assert.equal(receiver.requests[1].headers["x-retry-count"], "1");
    assert.deepEqual(idsOf(batchOf(receiver.requests[1])), ids);
    assertReportedOnce(log, []);
    assert.equal(analytics.stats().retries, 1);
    assert.equal(analytics.stats().delivered, 3);
  } finally {
    await analytics.close({ timeout: 100 });
    await receiver.stop();
  }
});

test("a connection dropped on every attempt fails with reason network", async () => {
  const receiver = await startReceiver();
  const log = errorLog();
  const analytics = client(receiver.url, { ...FAST, maxRetries: 1, onError: log.onError });
  try {
    receiver.setDefault({ drop: true });
    const ids = trackMany(analytics, 3);
    const result = await analytics.flush();
    assert.deepEqual(result, { delivered: 0, failed: 3, pending: 0 });
    assert.equal(receiver.requests.length, 2);
    assert.deepEqual(log.reasons(), ["network"]);
    assert.equal(log.calls[0].error.status, undefined);
    assert.equal(log.calls[0].error.retries, 1);
    assertReportedOnce(log, ids);
    assert.equal(analytics.stats().failed, 3);
  } finally {
    await analytics.close({ timeout: 100 });
    await receiver.stop();
  }
});

test("a 413 splits the batch in half and retries each half", async () => {
  const receiver = await startReceiver();
  const log = errorLog();
  const analytics = client(receiver.url, { ...FAST, maxRetries: 2, uploadInterval: 60, onError: log.onError });
  try {
    receiver.reply({ status: 413 });
    const callbacks: (DeliveryError | undefined)[] = [];
    const ids: string[] = [];
    for (let i = 0; i < 10; i++) {
      ids.push(analytics.track({ userId: "u1", event: "Split", properties: { i } }, (error) => callbacks.push(error)));
    }
    const result = await analytics.flush();
    assert.deepEqual(result, { delivered: 10, failed: 0, pending: 0 });
    assert.deepEqual(receiver.requests.map((r) => batchOf(r).length), [10, 5, 5]);
    assert.deepEqual(idsOf(batchOf(receiver.requests[1])), ids.slice(0, 5));
    assert.deepEqual(idsOf(batchOf(receiver.requests[2])), ids.slice(5));
    assert.deepEqual(callbacks, new Array(10).fill(undefined), "each callback once, after the split too");
    assertReportedOnce(log, []);
    const stats = analytics.stats();
    assert.equal(stats.delivered, 10);
    assert.equal(stats.batches, 3, "a split counts each half");
  } finally {
    await analytics.close({ timeout: 100 });
    await receiver.stop();
  }
});

test("a 413 on every split reports each message once with reason too_large", async () => {
  const receiver = await startReceiver();
  const log = errorLog();
  const analytics = client(receiver.url, { ...FAST, maxRetries: 2, uploadInterval: 60, onError: log.onError });
  try {
    receiver.setDefault({ status: 413 });
    const ids = trackMany(analytics, 3);
    const result = await analytics.flush();
    assert.deepEqual(result, { delivered: 0, failed: 3, pending: 0 });
    // [3] -> [2] [1] -> [2] splits to [1] [1]: 3 single messages answered 413.
    assert.deepEqual(receiver.requests.map((r) => batchOf(r).length), [3, 2, 1, 1, 1]);
    assert.deepEqual(log.reasons(), ["too_large"]);
    assertReportedOnce(log, ids);
    assert.equal(analytics.stats().failed, 3);
  } finally {
    await analytics.close({ timeout: 100 });
    await receiver.stop();
  }
});

test("a single message answered 413 fails with reason too_large", async () => {
  const receiver = await startReceiver();
  const log = errorLog();
  const analytics = client(receiver.url, { ...FAST, maxRetries: 3, onError: log.onError });
  try {
    receiver.reply({ status: 413 });
    const ids = trackMany(analytics, 1);
    const result = await analytics.flush();
    assert.deepEqual(result, { delivered: 0, failed: 1, pending: 0 });
    assert.equal(receiver.requests.length, 1);
    assert.equal(log.calls.length, 1);
    assert.equal(log.calls[0].error.reason, "too_large");
    assert.equal(log.calls[0].error.status, 413);
    assertReportedOnce(log, ids);
    assert.equal(analytics.stats().failed, 1);
    assert.equal(analytics.stats().retries, 0);
  } finally {
    await analytics.close({ timeout: 100 });
    await receiver.stop();
  }
});

test('a 200 whose body says {"success":false} or {"ok":false} is a failure', async () => {
  const receiver = await startReceiver();
  try {
    for (const body of ['{"success":false}', '{"ok":false,"error":"bad write key"}']) {
      const log = errorLog();
      const analytics = client(receiver.url, { ...FAST, maxRetries: 2, onError: log.onError });
      receiver.reply({ status: 200, body, headers: { "content-type": "application/json" } });
      const before = receiver.requests.length;
      const ids = trackMany(analytics, 3);
      const result = await analytics.flush();
      assert.deepEqual(result, { delivered: 0, failed: 3, pending: 0 }, body);
      assert.equal(receiver.requests.length - before, 1);
      assert.deepEqual(log.reasons(), ["http_status"]);
      assert.equal(log.calls[0].error.status, 200);
      assertReportedOnce(log, ids);
      assert.equal(analytics.stats().delivered, 0);
      assert.equal(analytics.stats().failed, 3);
      await analytics.close();
    }
  } finally {
    await receiver.stop();
  }
});

test("a server that never answers fails the batch with reason timeout", async () => {
  const receiver = await startReceiver();
  const log = errorLog();
  const analytics = client(receiver.url, { ...FAST, timeout: 0.2, maxRetries: 1, onError: log.onError });
  try {
    receiver.setDefault({ hang: true });
    const ids = trackMany(analytics, 4);
    const start = Date.now();
    const result = await analytics.flush();
    const elapsed = Date.now() - start;
    assert.deepEqual(result, { delivered: 0, failed: 4, pending: 0 });
    assert.ok(elapsed >= 350, `two attempts of 0.2 s took ${elapsed} ms`);
    assert.ok(elapsed < 3000, `two attempts of 0.2 s took ${elapsed} ms`);
    assert.equal(receiver.requests.length, 2);
    assert.deepEqual(log.reasons(), ["timeout"]);
    assert.equal(log.calls[0].error.retries, 1);
    assertReportedOnce(log, ids);
    const stats = analytics.stats();
    assert.equal(stats.failed, 4);
    assert.equal(stats.retries, 1);
  } finally {
    await analytics.close({ timeout: 100 });
    await receiver.stop();
  }
});

test("flush({ timeout }) returns in time with messages pending when the server hangs", async () => {
  const receiver = await startReceiver();
  const log = errorLog();
  const analytics = client(receiver.url, { ...FAST, timeout: 30, maxRetries: 1, onError: log.onError });
  try {
    receiver.setDefault({ hang: true });
    const ids = trackMany(analytics, 5);
    const start = Date.now();
    const result = await analytics.flush({ timeout: 300 });
    const elapsed = Date.now() - start;
    assert.ok(elapsed >= 250 && elapsed < 2000, `flush returned after ${elapsed} ms`);
    assert.deepEqual(result, { delivered: 0, failed: 0, pending: 5 });
    assert.equal(log.count(), 0, "nothing reported yet: the request is still open");
    assert.equal(analytics.stats().inFlight, 5);

    const closed = await analytics.close({ timeout: 100 });
    assert.equal(closed.delivered, 0);
    assert.equal(closed.failed + closed.pending, 5, "close() accounts for every message");
    assert.deepEqual(log.reasons(), ["closed"]);
    assertReportedOnce(log, ids);
    const stats = analytics.stats();
    assert.equal(stats.failed, 5);
    assert.equal(stats.inFlight, 0);
  } finally {
    await analytics.close({ timeout: 100 });
    await receiver.stop();
  }
});

test("close({ timeout }) resolves in time and reports unsent messages once as closed", async () => {
  const receiver = await startReceiver();
  const log = errorLog();
  // uploadSize 1: four requests in flight (all hanging) and two still queued when close() gives up.
  const analytics = client(receiver.url, { ...FAST, timeout: 30, uploadSize: 1, onError: log.onError });
  try {
    receiver.setDefault({ hang: true });
    const callbacks = new Map<string, (DeliveryError | undefined)[]>();
    const ids: string[] = [];
    for (let i = 0; i < 6; i++) {
      const id: string = analytics.track({ userId: "u1", event: "Closing", properties: { i } }, (error, ctx) => {
        callbacks.set(ctx.id, [...(callbacks.get(ctx.id) ?? []), error]);
      });
      ids.push(id);
    }
    const start = Date.now();
    const result = await analytics.close({ timeout: 300 });
    const elapsed = Date.now() - start;
    assert.ok(elapsed >= 250 && elapsed < 2000, `close resolved after ${elapsed} ms`);
    assert.equal(result.delivered, 0);
    assert.equal(result.failed + result.pending, 6, "close() accounts for every message");
    assert.equal(receiver.requests.length, 4, "in flight is bounded");
    assert.deepEqual(log.reasons(), ["closed"]);
    assertReportedOnce(log, ids);
    for (const id of ids) {
      const seen = callbacks.get(id) ?? [];
      assert.equal(seen.length, 1, `callback of ${id} called once`);
      assert.equal(seen[0]?.reason, "closed");
    }
    const stats = analytics.stats();
    assert.equal(stats.failed, 6);
    assert.equal(stats.queued, 0);
    assert.equal(stats.inFlight, 0);
    await delay(50);
    assert.equal(log.count(), 6, "nothing reported again later");
    assert.equal(receiver.requests.length, 4, "nothing sent after close() gave up");
  } finally {
    await analytics.close({ timeout: 100 });
    await receiver.stop();
  }
});

test("close({ timeout }) during a retry wait gives up at the timeout without sending again", async () => {
  const receiver = await startReceiver();
  const log = errorLog();
  // The first answer is a 500; the retry would wait 1 s; the server hangs after that.
  const analytics = client(receiver.url, {
    minRetryDelay: 1,
    maxRetryDelay: 1,
    maxRetries: 3,
    timeout: 3,
    onError: log.onError,
  });
  try {
    receiver.reply({ status: 500 });
    receiver.setDefault({ hang: true });
    const ids = trackMany(analytics, 3);
    const start = Date.now();
    const result = await analytics.close({ timeout: 300 });
    const elapsed = Date.now() - start;
    assert.equal(result.delivered, 0);
    assert.equal(result.failed + result.pending, 3, "close() accounts for every message");
    assert.deepEqual(log.reasons(), ["closed"]);
    assertReportedOnce(log, ids);
    assert.equal(analytics.stats().failed, 3);
    assert.ok(elapsed < 2000, `close({ timeout: 300 }) resolved after ${elapsed} ms`);
    assert.equal(receiver.requests.length, 1, "no new request after close() gave up");
  } finally {
    await analytics.close({ timeout: 100 });
    await receiver.stop();
  }
});

test("a full queue drops new messages and reports them in one onError call", async () => {
  const receiver = await startReceiver();
  const log = errorLog();
  const analytics = client(receiver.url, { maxQueueSize: 10, uploadInterval: 60, onError: log.onError });
  try {
    const ids = trackMany(analytics, 25);
    assert.equal(analytics.stats().dropped, 15);
    assert.equal(analytics.stats().queued, 10);
    const result = await analytics.flush();
    assert.deepEqual(result, { delivered: 10, failed: 0, pending: 0 });
    assert.deepEqual(idsOf(receiver.messages()), ids.slice(0, 10));
    assert.equal(log.calls.length, 1, "a burst of refusals is one onError call");
    assert.equal(log.calls[0].error.reason, "queue_full");
    assertReportedOnce(log, ids.slice(10));
    const stats = analytics.stats();
    assert.equal(stats.dropped, 15);
    assert.equal(stats.delivered, 10);
    assert.equal(stats.failed, 0);
  } finally {
    await analytics.close({ timeout: 100 });
    await receiver.stop();
  }
});

test("concurrent flush() calls both wait for delivery", async () => {
  const receiver = await startReceiver();
  const log = errorLog();
  const analytics = client(receiver.url, { ...FAST, maxRetries: 3, uploadInterval: 60, onError: log.onError });
  try {
    // Two failed attempts keep the batch in flight for a while.
    receiver.reply({ status: 503 }, { status: 503 });
    trackMany(analytics, 5);
    const seen: number[] = [];
    const first = analytics.flush().then((result) => {
      seen.push(analytics.stats().delivered);
      return result;
    });
    await until(() => receiver.requests.length >= 1, "the first attempt");
    // The batch is in flight and the queue is empty: this flush must still wait for it.
    const second = analytics.flush().then((result) => {
      seen.push(analytics.stats().delivered);
      return result;
    });
    const results = await Promise.all([first, second]);
    assert.deepEqual(seen, [5, 5], "neither flush resolved before delivery");
    assert.equal(receiver.requests.length, 3);
    assert.deepEqual(results[0], { delivered: 5, failed: 0, pending: 0 });
    assert.deepEqual(results[1], { delivered: 5, failed: 0, pending: 0 });
    assertReportedOnce(log, []);
    assert.equal(analytics.stats().retries, 2);
  } finally {
    await analytics.close({ timeout: 100 });
    await receiver.stop();
  }
});

test("flush() on an empty client resolves at once with zero counts", async () => {
  const receiver = await startReceiver();
  const analytics = client(receiver.url);
  try {
    const start = Date.now();
    assert.deepEqual(await analytics.flush(), { delivered: 0, failed: 0, pending: 0 });
    assert.deepEqual(await analytics.flush({ timeout: 1000 }), { delivered: 0, failed: 0, pending: 0 });
    assert.ok(Date.now() - start < 500);
    assert.equal(receiver.requests.length, 0);
    trackMany(analytics, 2);
    await analytics.flush();
    // Everything settled: a later flush has nothing to wait for.
    assert.deepEqual(await analytics.flush(), { delivered: 0, failed: 0, pending: 0 });
    assert.equal(receiver.requests.length, 1);
  } finally {
    await analytics.close({ timeout: 100 });
    await receiver.stop();
  }
});

test("flush() counts delivered, failed and pending", async () => {
  const receiver = await startReceiver();
  const log = errorLog();
  const analytics = client(receiver.url, { ...FAST, uploadSize: 5, uploadInterval: 60, onError: log.onError });
  try {
    receiver.reply({ status: 400 });
    const ids = trackMany(analytics, 8);
    const result = await analytics.flush();
    assert.deepEqual(result, { delivered: 3, failed: 5, pending: 0 });
    assert.deepEqual(receiver.requests.map((r) => batchOf(r).length), [5, 3]);
    assertReportedOnce(log, ids.slice(0, 5));
    const stats = analytics.stats();
    assert.equal(stats.delivered, 3);
    assert.equal(stats.failed, 5);
  } finally {
    await analytics.close({ timeout: 100 });
    await receiver.stop();
  }
});

test("calls after close() are reported as closed, not thrown", async () => {
  const receiver = await startReceiver();
  const log = errorLog();
  const analytics = client(receiver.url, { onError: log.onError });
  try {
    const delivered = trackMany(analytics, 2);
    const result = await analytics.close();
    assert.deepEqual(result, { delivered: 2, failed: 0, pending: 0 });
    assert.deepEqual(idsOf(receiver.messages()), delivered);

    const errors: (DeliveryError | undefined)[] = [];
    const late = [
      analytics.track({ userId: "u1", event: "Too Late" }, (error) => errors.push(error)),
      analytics.identify("u1", { late: true }),
      analytics.alias("a", "b"),
    ];
    await delay(10);
    assert.equal(errors.length, 1);
    assert.equal(errors[0]?.reason, "closed");
    assert.deepEqual(log.reasons(), ["closed"]);
    assertReportedOnce(log, late);
    await analytics.flush();
    assert.equal(receiver.requests.length, 1, "nothing sent after close()");
    const stats = analytics.stats();
    assert.equal(stats.dropped, 3);
    assert.equal(stats.delivered, 2);
    assert.equal(stats.queued, 0);
  } finally {
    await analytics.close({ timeout: 100 });
    await receiver.stop();
  }
});

test("a per-call callback gets undefined on delivery and the DeliveryError on failure", async () => {
  const receiver = await startReceiver();
  const log = errorLog();
  const analytics = client(receiver.url, { ...FAST, maxRetries: 0, uploadInterval: 60, onError: log.onError });
  try {
    const calls: { error: DeliveryError | undefined; message: Message }[] = [];
    const callback = (error: DeliveryError | undefined, ctx: Context) => calls.push({ error, message: ctx.event });
    const ok = [
      analytics.track({ userId: "u1", event: "Good" }, callback),
      analytics.identify("u1", { a: 1 }, {}, callback),
      analytics.page("u1", "Docs", "Intro", {}, {}, callback),
    ];
    await analytics.flush();
    assert.equal(calls.length, 3);
    assert.deepEqual(calls.map((c) => c.error), [undefined, undefined, undefined]);
    assert.deepEqual(calls.map((c) => c.message.messageId), ok);
    assert.equal(calls[0].message.event, "Good");

    receiver.reply({ status: 400 });
    calls.length = 0;
    const failed = [
      analytics.group({ userId: "u1", groupId: "g1" }, callback),
      analytics.alias("prev", "u1", {}, callback),
    ];
    await analytics.flush();
    await delay(20);
    assert.equal(calls.length, 2, "each callback called once");
    assert.deepEqual(calls.map((c) => c.message.messageId), failed);
    for (const { error } of calls) {
      assert.equal(error?.name, "DeliveryError");
      assert.equal(error?.reason, "http_status");
      assert.equal(error?.status, 400);
    }
    assert.equal(calls[0].error, log.calls[0].error, "the same error onError gets");
    assertReportedOnce(log, failed);
    assert.equal(analytics.stats().delivered, 3);
    assert.equal(analytics.stats().failed, 2);
  } finally {
    await analytics.close({ timeout: 100 });
    await receiver.stop();
  }
});

/**
 * A server that answers each request after `ms` and counts how many are open
 * at once (receiver.ts answers at once or never, and does not count).
 */
async function startSlowServer(ms: number) {
  const state = { open: 0, maxOpen: 0, requests: 0, messages: 0 };
  const server = createServer((req: IncomingMessage, res: ServerResponse) => {
    state.open++;
    state.maxOpen = Math.max(state.maxOpen, state.open);
    state.requests++;
    res.on("close", () => void state.open--);
    const chunks: Uint8Array[] = [];
    req.on("data", (chunk: Uint8Array) => chunks.push(chunk));
    req.on("end", () => {
      const body = JSON.parse(Buffer.concat(chunks).toString("utf8"));
      setTimeout(() => {
        state.messages += body.batch.length;
        res.writeHead(200, { "content-type": "application/json" });
        res.end('{"success":true}');
      }, ms);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    state,
    stop: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections?.();
        server.close(() => resolve());
      }),
  };
}

test("a burst never has more than 4 requests open at once", async () => {
  const server = await startSlowServer(20);
  const log = errorLog();
  const analytics = client(server.url, { uploadSize: 10, onError: log.onError });
  try {
    trackMany(analytics, 2000);
    let maxInFlight = 0;
    const watch = setInterval(() => void (maxInFlight = Math.max(maxInFlight, analytics.stats().inFlight)), 5);
    const result = await analytics.flush();
    clearInterval(watch);
    assert.deepEqual(result, { delivered: 2000, failed: 0, pending: 0 });
    assert.equal(server.state.messages, 2000);
    assert.equal(server.state.requests, 200);
    assert.ok(server.state.maxOpen <= 4, `${server.state.maxOpen} requests open at once`);
    assert.ok(server.state.maxOpen >= 2, "requests do run in parallel");
    assert.ok(maxInFlight <= 40, `${maxInFlight} messages in flight at once`);
    assertReportedOnce(log, []);
  } finally {
    await analytics.close({ timeout: 100 });
    await server.stop();
  }
});

test("syncMode starts one request per call and flush() awaits them", async () => {
  const server = await startSlowServer(100);
  const receiver = await startReceiver();
  const analytics = client(server.url, { syncMode: true, uploadInterval: 60 });
  const direct = client(receiver.url, { syncMode: true, uploadInterval: 60 });
  try {
    // Each call starts its request at once, with neither flush() nor the interval.
    const ids = [direct.track("u1", "One"), direct.track("u1", "Two"), direct.identify("u1")];
    await receiver.waitForMessages(3, 1000);
    assert.deepEqual(receiver.requests.map((r) => batchOf(r).length), [1, 1, 1]);
    assert.deepEqual(receiver.requests.map((r) => batchOf(r)[0].messageId).sort(), [...ids].sort());

    // Against a slow server, flush() resolves only when all three have been answered.
    trackMany(analytics, 3);
    await until(() => server.state.requests === 3, "three requests");
    assert.equal(server.state.messages, 0);
    const result = await analytics.flush();
    assert.deepEqual(result, { delivered: 3, failed: 0, pending: 0 });
    assert.equal(server.state.messages, 3);
    assert.equal(analytics.stats().delivered, 3);
    assert.equal(analytics.stats().batches, 3);
  } finally {
    await analytics.close({ timeout: 100 });
    await direct.close({ timeout: 100 });
    await server.stop();
    await receiver.stop();
  }
});

test("send: false sends nothing but still calls the callback without an error", async () => {
  const receiver = await startReceiver();
  const log = errorLog();
  const analytics = client(receiver.url, { send: false, uploadSize: 1, onError: log.onError });
  try {
    const calls: { error: DeliveryError | undefined; message: Message }[] = [];
    const id = analytics.track(
      { userId: "u1", event: "Dry Run" },
      (error, ctx) => calls.push({ error, message: ctx.event }),
    );
    trackMany(analytics, 5);
    assert.deepEqual(await analytics.flush(), { delivered: 0, failed: 0, pending: 0 });
    await delay(100);
    assert.equal(receiver.requests.length, 0);
    assert.equal(calls.length, 1);
    assert.equal(calls[0].error, undefined);
    assert.equal(calls[0].message.messageId, id);
    assert.equal(calls[0].message.event, "Dry Run");
    assert.equal(log.count(), 0);
    const stats = analytics.stats();
    assert.equal(stats.queued, 0);
    assert.equal(stats.batches, 0);
    assert.equal(stats.bytesSent, 0);
  } finally {
    await analytics.close({ timeout: 100 });
    await receiver.stop();
  }
});
