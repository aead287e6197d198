/**
 * analytics-node compatibility (issue 8): @segment/analytics-node's own
 * public-API tests (segmentio/analytics-next, packages/node/src/__tests__/*
 * and plugins/segmentio/__tests__/publisher.test.ts), translated to Tally.
 * One `describe` per analytics-node test file; each test names the test it
 * mirrors. Delivery runs over real HTTP against the project's collector
 * (`tests/receiver.ts`) with scripted answers; a custom `httpClient` appears
 * only where the `httpClient` contract itself is the point.
 *
 * Where Tally deliberately does not do what analytics-node does, the
 * analytics-node test is kept as a skipped test whose reason says why, beside
 * the Tally behaviour that replaces it.
 */
import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { existsSync, readFileSync } from "node:fs";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import analyticsDefault, {
  Analytics,
  type AnalyticsOptions,
  DeliveryError,
  type FlushOptions,
  type FlushResult,
  LIBRARY_NAME,
  type Message,
  type Stats,
  ValidationError,
  VERSION,
} from "../mod.ts";
import type { Context, EmitterEvents, ErrorEvent, HttpRequestEvent, HttpResponseEvent } from "../mod.ts";
import { type Receiver, startReceiver } from "./receiver.ts";

// ---- analytics-node's API as its users call it
//
// The client is used through this interface (one cast, in `createTestAnalytics`), so the
// file runs whatever state lib/ is in; tests/fixtures/node_compat_typedefs.ts checks
// the real types without casts (see the typedef-tests describe).

/** analytics-node's `Context`, `ErrorEvent` and event map, as Tally exports them. */
type Ctx = Context;
type NodeCallback = (err: DeliveryError | undefined, ctx: Ctx) => unknown;
type Events = EmitterEvents;
type Listen = <K extends keyof Events>(name: K, listener: (...args: Events[K]) => void) => unknown;
type CallType = "identify" | "track" | "page" | "screen" | "group" | "alias";
type PluginResult = Ctx | undefined | Promise<Ctx | undefined>;
interface NodePlugin {
  name: string;
  type: "before" | "enrichment" | "destination";
  version: string;
  isLoaded(): boolean;
  load(ctx: Ctx, analytics: NodeAnalytics): unknown;
  unload?(ctx: Ctx, analytics: NodeAnalytics): unknown;
  identify?(ctx: Ctx): PluginResult;
  track?(ctx: Ctx): PluginResult;
  page?(ctx: Ctx): PluginResult;
  screen?(ctx: Ctx): PluginResult;
  group?(ctx: Ctx): PluginResult;
  alias?(ctx: Ctx): PluginResult;
}
type Params = Record<string, unknown>;
interface NodeAnalytics {
  readonly VERSION: string;
  readonly ready: Promise<unknown>;
  identify(params: Params, callback?: NodeCallback): string;
  track(params: Params, callback?: NodeCallback): string;
  page(params: Params, callback?: NodeCallback): string;
  screen(params: Params, callback?: NodeCallback): string;
  group(params: Params, callback?: NodeCallback): string;
  alias(params: Params, callback?: NodeCallback): string;
  on: Listen;
  once: Listen;
  off: Listen;
  flush(options?: FlushOptions): Promise<FlushResult>;
  closeAndFlush(options?: FlushOptions): Promise<unknown>;
  register(...plugins: NodePlugin[]): Promise<unknown>;
  deregister(...names: string[]): Promise<unknown>;
  stats(): Stats;
}
/** The options object, loosely typed so analytics-node's names can be passed as its users do. */
type Settings = Record<string, unknown>;
/** The object an `httpClient`'s `makeRequest` gets. */
interface HttpClientRequest {
  url: string;
  method: string;
  headers: Record<string, string>;
  body: string;
  httpRequestTimeout: number;
  signal?: AbortSignal;
}

// ---- helpers

/** analytics-node's test write key: `Basic Zm9vOg==`. */
const KEY = "foo";
const BASIC_FOO = "Basic Zm9vOg==";
/** A key long enough that any trace of it in a payload is a leak. */
const SECRET = "wk_live_4f9a8b7c6d5e3f21";
const REDACTED = "[write key]";
/** Retries in milliseconds, so failure tests stay short. */
const FAST = { minRetryDelay: 0.01, maxRetryDelay: 0.05 } as const;
const LIBRARY = { name: LIBRARY_NAME, version: VERSION };
const ISO_MS = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$/;
const UUID_V4 = /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;
const quiet = { debug() {}, info() {}, warn() {}, error() {} };

class WaitTimeout extends Error {
  override name = "WaitTimeout";
}

const delay = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

/** Sleeps started by test plugins; each scenario waits for them before it ends, so no timer outlives its test. */
const sleeps = new Set<Promise<void>>();
function sleep(ms: number): Promise<void> {
  const p = delay(ms);
  sleeps.add(p);
  void p.then(() => sleeps.delete(p));
  return p;
}

/** `promise`, or a rejection after `ms` naming `what`. */
function within<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new WaitTimeout(`waited ${ms} ms for ${what}`)), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

async function until(condition: () => boolean, what: string, ms = 3000): Promise<void> {
  const end = Date.now() + ms;
  while (!condition()) {
    if (Date.now() > end) throw new WaitTimeout(`waited ${ms} ms for ${what}`);
    await delay(5);
  }
}

/** The value `promise` rejects with; fails if it resolves, rethrows a wait timeout. */
async function rejection(promise: Promise<unknown>, what: string): Promise<unknown> {
  try {
    await promise;
  } catch (error) {
    if (error instanceof WaitTimeout) throw error;
    return error;
  }
  return assert.fail(`${what} resolved; expected it to reject`);
}

/** A function that records its calls. */
function spy<A extends unknown[], R = undefined>(impl?: (...args: A) => R): ((...args: A) => R) & { calls: A[] } {
  const calls: A[] = [];
  const fn = (...args: A): R => {
    calls.push(args);
    return impl?.(...args) as R;
  };
  return Object.assign(fn, { calls });
}

const json = <T>(value: T): T => JSON.parse(JSON.stringify(value));

/** analytics-node's `createTestAnalytics`: writeKey "foo", flushInterval 100, here sent to the collector. */
function createTestAnalytics(receiver: Receiver | undefined, settings: Settings = {}): NodeAnalytics {
  const options = {
    writeKey: KEY,
    flushInterval: 100,
    logger: quiet,
    ...FAST,
    ...(receiver ? { host: receiver.url } : {}),
    ...settings,
  };
  return new Analytics(options as AnalyticsOptions) as unknown as NodeAnalytics;
}

type Make = (settings?: Settings) => NodeAnalytics;

/** Runs `body` with a fresh collector; closes every client it made and stops the collector afterwards. */
async function withCollector(body: (receiver: Receiver, make: Make) => Promise<void>): Promise<void> {
  const receiver = await startReceiver();
  const clients: NodeAnalytics[] = [];
  const make: Make = (settings = {}) => {
    const client = createTestAnalytics(receiver, settings);
    clients.push(client);
    return client;
  };
  try {
    await body(receiver, make);
  } finally {
    await within(Promise.all([...sleeps]), 3000, "test plugins' sleeps").catch(() => {});
    for (const client of clients) {
      await within(Promise.resolve(client.closeAndFlush({ timeout: 200 })), 1000, "closeAndFlush").catch(() => {});
    }
    await receiver.stop();
  }
}

/** analytics-node's `resolveCtx`: the ctx of the next delivered message of `type`, or the next error event. */
function resolveCtx(analytics: NodeAnalytics, type: CallType, ms = 5000): Promise<Ctx> {
  return within(
    new Promise<Ctx>((resolve, reject) => {
      analytics.once(type, resolve);
      analytics.once("error", reject);
    }),
    ms,
    `the ${type} event`,
  );
}

/** What the callback passed to `invoke` is called with. */
function callbackOf(invoke: (callback: NodeCallback) => unknown, ms = 5000): Promise<[DeliveryError | undefined, Ctx]> {
  return within(
    new Promise<[DeliveryError | undefined, Ctx]>((resolve) => void invoke((err, ctx) => resolve([err, ctx]))),
    ms,
    "the callback",
  );
}

/** An `httpClient` object (analytics-node's `HTTPClient`) that sends through the real collector and records each request. */
function forwardingClient() {
  const requests: HttpClientRequest[] = [];
  return {
    requests,
    async makeRequest(
      options: HttpClientRequest,
    ): Promise<{ status: number; statusText: string; headers: Record<string, string> }> {
      requests.push(options);
      const response = await fetch(options.url, {
        method: options.method,
        headers: options.headers,
        body: options.body,
        signal: options.signal,
      });
      await response.body?.cancel();
      // No text(): analytics-node's HTTPResponse makes it optional.
      return {
        status: response.status,
        statusText: response.statusText,
        headers: Object.fromEntries(response.headers),
      };
    },
  };
}

function plugin(fields: Partial<NodePlugin> & { name: string }): NodePlugin {
  return { type: "enrichment", version: "0.1.0", isLoaded: () => true, load: () => Promise.resolve(), ...fields };
}

const batchOf = (receiver: Receiver, i: number): Record<string, unknown>[] => receiver.requests[i].body.batch ?? [];
const batchSizes = (receiver: Receiver): number[] => receiver.requests.map((r) => (r.body.batch ?? []).length);
const header = (headers: Record<string, string>, name: string): string | undefined =>
  Object.entries(headers).find(([key]) => key.toLowerCase() === name.toLowerCase())?.[1];
const trackCall = (analytics: NodeAnalytics, callback?: NodeCallback): string =>
  analytics.track({ userId: "foo", event: "Thing Updated" }, callback);

// ---- argument-validation.integration.test.ts

describe("argument-validation.integration.test.ts", () => {
  test("track with neither userId nor anonymousId throws a ValidationError naming userId (mirrors 'should throw an error if userId/anonId/groupId is not specified')", async () => {
    await withCollector(async (receiver, make) => {
      const analytics = make();
      assert.throws(
        () => analytics.track({ event: "foo", anonymousId: undefined, userId: undefined }),
        (error: unknown) => error instanceof ValidationError && /userId/.test(error.message),
      );
      assert.throws(
        () => analytics.group({ userId: "foo", groupId: undefined }),
        (error: unknown) => error instanceof ValidationError && /groupId/.test(error.message),
      );
      await analytics.flush();
      assert.equal(receiver.requests.length, 0, "nothing was sent");
    });
  });
});

// ---- callback.test.ts

describe("callback.test.ts", () => {
  test("the callback gets (undefined, ctx) with ctx.event as sent when delivery succeeds (mirrors 'should handle success')", async () => {
    await withCollector(async (receiver, make) => {
      const analytics = make({ flushAt: 1 });
      let id = "";
      const [err, ctx] = await callbackOf((cb) => {
        id = analytics.track({ anonymousId: "bar", event: "event name" }, cb);
      });
      assert.equal(err, undefined);
      assert.equal(ctx.event.event, "event name");
      assert.equal(ctx.event.anonymousId, "bar");
      assert.equal(ctx.failedDelivery(), undefined);
      assert.equal(ctx.id, id, "ctx.id is the messageId the call returned");
      assert.equal(ctx.event.messageId, id);
      assert.deepEqual(ctx.event.context.library, LIBRARY);
      assert.deepEqual(receiver.messages(), [json(ctx.event)], "ctx.event is the message as sent");
    });
  });

  test("the callback gets the DeliveryError and ctx when the server answers 404, without a retry (mirrors 'should handle errors')", async () => {
    await withCollector(async (receiver, make) => {
      receiver.setDefault({ status: 404 });
      const analytics = make({ flushAt: 1 });
      const [err, ctx] = await callbackOf((cb) => analytics.track({ anonymousId: "bar", event: "event name" }, cb));
      assert.equal(ctx.event.event, "event name");
      assert.equal(ctx.event.anonymousId, "bar");
      // analytics-node: new Error("[404] Not Found"); Tally: a DeliveryError with the status.
      assert.ok(err instanceof DeliveryError, `expected a DeliveryError, got ${err}`);
      assert.equal(err.reason, "http_status");
      assert.equal(err.status, 404);
      assert.match(err.message, /404/);
      assert.equal(ctx.failedDelivery()?.reason, err, "ctx.failedDelivery().reason is the same error");
      assert.equal(receiver.requests.length, 1);
    });
  });
});

// ---- disable.integration.test.ts

describe("disable.integration.test.ts", () => {
  test("disable: true emits no http_request and sends nothing, and the callback is still called (mirrors 'should not emit an http request if disabled')", async () => {
    await withCollector(async (receiver, make) => {
      const analytics = make({ disable: true });
      const onRequest = spy();
      analytics.on("http_request", onRequest);
      const [err, ctx] = await callbackOf((cb) => analytics.track({ anonymousId: "foo", event: "bar" }, cb));
      assert.equal(err, undefined);
      assert.equal(ctx.event.event, "bar");
      await analytics.flush();
      assert.equal(onRequest.calls.length, 0);
      assert.equal(receiver.requests.length, 0);
    });
  });

  test("disable: false sends through the httpClient once (mirrors 'should call .send if disabled is false')", async () => {
    await withCollector(async (receiver, make) => {
      const httpClient = forwardingClient();
      const analytics = make({ disable: false, httpClient });
      const [err] = await callbackOf((cb) => analytics.track({ anonymousId: "foo", event: "bar" }, cb));
      assert.equal(err, undefined);
      assert.equal(httpClient.requests.length, 1);
      assert.equal(receiver.requests.length, 1);
    });
  });

  test("disable: true never calls the httpClient (mirrors 'should not call .send if disabled is true')", async () => {
    await withCollector(async (receiver, make) => {
      const httpClient = forwardingClient();
      const analytics = make({ disable: true, httpClient });
      await callbackOf((cb) => analytics.track({ anonymousId: "foo", event: "bar" }, cb));
      await analytics.flush();
      assert.equal(httpClient.requests.length, 0);
      assert.equal(receiver.requests.length, 0);
    });
  });
});

// ---- emitter.integration.test.ts

/** analytics-node's `assertHttpRequestEmittedEvent`. */
function assertHttpRequestEmittedEvent(event: HttpRequestEvent): void {
  const body = JSON.parse(event.body);
  assert.ok(Array.isArray(body.batch));
  assert.equal(body.batch.length, 1);
  assert.equal(typeof event.headers, "object");
  assert.equal(typeof event.method, "string");
  assert.equal(typeof event.url, "string");
}

describe("emitter.integration.test.ts", () => {
  test("http_request is emitted once with url, method, headers and the JSON body on success (mirrors 'emits an http_request event if success')", async () => {
    await withCollector(async (receiver, make) => {
      const analytics = make();
      const onRequest = spy((_event: HttpRequestEvent) => undefined);
      analytics.on("http_request", onRequest);
      await callbackOf((cb) => analytics.track({ anonymousId: "foo", event: "bar" }, cb));
      assert.equal(onRequest.calls.length, 1);
      const [event] = onRequest.calls[0];
      assertHttpRequestEmittedEvent(event);
      assert.equal(event.url, `${receiver.url}/v1/batch`);
      assert.equal(event.method, "POST");
      assert.equal(header(event.headers, "content-type"), "application/json");
      assert.deepEqual(JSON.parse(event.body).batch, receiver.messages(), "the body is the batch as sent");
    });
  });

  test("http_request hides the write key: Authorization and the body's writeKey read [write key] (Tally: the key is a secret)", async () => {
    await withCollector(async (receiver, make) => {
      const analytics = make({ writeKey: SECRET });
      const onRequest = spy((_event: HttpRequestEvent) => undefined);
      analytics.on("http_request", onRequest);
      await callbackOf((cb) => analytics.track({ anonymousId: "foo", event: "bar" }, cb));
      const [event] = onRequest.calls[0];
      const basic = btoa(`${SECRET}:`);
      assert.equal(JSON.parse(event.body).writeKey, REDACTED);
      assert.match(header(event.headers, "authorization") ?? "", /\[write key\]/);
      const everything = JSON.stringify(event);
      assert.ok(!everything.includes(SECRET) && !everything.includes(basic), "no trace of the key in the event");
      // The wire still carries the real key.
      assert.equal(receiver.requests[0].headers["authorization"], `Basic ${basic}`);
      assert.equal(receiver.requests[0].body.writeKey, SECRET);
    });
  });

  test("http_request is emitted when the server answers an error (mirrors 'emits an http_request event if error')", async () => {
    await withCollector(async (receiver, make) => {
      receiver.setDefault({ status: 404 });
      const analytics = make({ maxRetries: 0 });
      const onRequest = spy((_event: HttpRequestEvent) => undefined);
      analytics.on("http_request", onRequest);
      const [err] = await callbackOf((cb) => analytics.track({ anonymousId: "foo", event: "bar" }, cb));
      assert.ok(err instanceof DeliveryError);
      assert.equal(onRequest.calls.length, 1);
      assertHttpRequestEmittedEvent(onRequest.calls[0][0]);
    });
  });

  test("http_request is emitted on every retry: three times for maxRetries 2 against 500s (mirrors 'if error, emits an http_request event on every retry')", async () => {
    await withCollector(async (receiver, make) => {
      receiver.setDefault({ status: 500, body: "Internal Server Error" });
      const analytics = make({ maxRetries: 2 });
      const onRequest = spy((_event: HttpRequestEvent) => undefined);
      analytics.on("http_request", onRequest);
      const [err] = await callbackOf((cb) => analytics.track({ anonymousId: "foo", event: "bar" }, cb));
      assert.ok(err instanceof DeliveryError);
      assert.equal(err.status, 500);
      assert.equal(onRequest.calls.length, 3);
      assert.equal(receiver.requests.length, 3);
    });
  });

  test("http_response carries status, statusText, url, body and lower-cased headers (app/emitter.ts 'http_response')", async () => {
    await withCollector(async (receiver, make) => {
      receiver.reply({ status: 200, body: '{"success":true}', headers: { "X-Custom-Header": "yes" } });
      const analytics = make({ writeKey: SECRET });
      const onResponse = spy((_event: HttpResponseEvent) => undefined);
      analytics.on("http_response", onResponse);
      await callbackOf((cb) => analytics.track({ anonymousId: "foo", event: "bar" }, cb));
      assert.equal(onResponse.calls.length, 1);
      const [event] = onResponse.calls[0];
      assert.equal(event.status, 200);
      assert.equal(event.statusText, "OK");
      assert.equal(event.url, `${receiver.url}/v1/batch`);
      assert.equal(typeof event.body, "string");
      assert.equal(event.headers["x-custom-header"], "yes");
      for (const name of Object.keys(event.headers)) assert.equal(name, name.toLowerCase(), "header names lower-cased");
      assert.ok(!JSON.stringify(event).includes(SECRET), "no trace of the key in the event");
    });
  });

  test("http_response is emitted for an error answer too, with its status and statusText", async () => {
    await withCollector(async (receiver, make) => {
      receiver.setDefault({ status: 400, body: '{"error":"bad"}' });
      const analytics = make({ maxRetries: 0 });
      const onResponse = spy((_event: HttpResponseEvent) => undefined);
      analytics.on("http_response", onResponse);
      await callbackOf((cb) => analytics.track({ anonymousId: "foo", event: "bar" }, cb));
      assert.equal(onResponse.calls.length, 1);
      assert.equal(onResponse.calls[0][0].status, 400);
      assert.equal(onResponse.calls[0][0].statusText, "Bad Request");
    });
  });

  test("error is emitted once per undelivered message as { code: 'delivery_failure', reason, ctx }, and the seed's onError keeps its (error, messages) shape", async () => {
    await withCollector(async (receiver, make) => {
      receiver.setDefault({ status: 400 });
      const onError = spy((_error: DeliveryError, _messages: Message[]) => undefined);
      const analytics = make({ flushAt: 3, flushInterval: 10_000, onError });
      const onErrorEvent = spy((_event: ErrorEvent) => undefined);
      analytics.on("error", onErrorEvent);
      const ids = [trackCall(analytics), trackCall(analytics), trackCall(analytics)];
      await until(() => onErrorEvent.calls.length === 3, "three error events");
      await delay(50);
      assert.equal(onErrorEvent.calls.length, 3, "one error event per message, no more");
      for (const [event] of onErrorEvent.calls) {
        assert.equal(event.code, "delivery_failure");
        assert.ok(event.reason instanceof DeliveryError);
        assert.equal(event.reason.status, 400);
      }
      assert.deepEqual(onErrorEvent.calls.map(([event]) => event.ctx.event.messageId).sort(), [...ids].sort());
      assert.equal(onError.calls.length, 1, "onError once for the batch");
      const [error, messages] = onError.calls[0];
      assert.ok(error instanceof DeliveryError);
      assert.deepEqual(messages.map((m) => m.messageId).sort(), [...ids].sort());
      assert.equal(onErrorEvent.calls[0][0].reason, error, "the same DeliveryError");
      assert.equal(receiver.requests.length, 1);
    });
  });

  test("on, once and off with event names Tally never emits do not throw (analytics-node's emitter accepts any name)", async () => {
    const analytics = createTestAnalytics(undefined, { disable: true });
    const listener = () => {};
    const loose = analytics as unknown as Record<"on" | "once" | "off", (name: string, fn: () => void) => unknown>;
    for (const name of ["initialize", "nope", "http_request_v2", ""]) {
      loose.on(name, listener);
      loose.once(name, listener);
      loose.off(name, listener);
    }
    loose.off("never-added", listener);
    await analytics.closeAndFlush({ timeout: 200 });
  });

  test("once hears one delivery and off stops a listener", async () => {
    await withCollector(async (_receiver, make) => {
      const analytics = make({ flushAt: 1 });
      const onTrack = spy((_ctx: Ctx) => undefined);
      const onceTrack = spy((_ctx: Ctx) => undefined);
      const removed = spy((_ctx: Ctx) => undefined);
      analytics.on("track", onTrack);
      analytics.once("track", onceTrack);
      analytics.on("track", removed);
      analytics.off("track", removed);
      await callbackOf((cb) => trackCall(analytics, cb));
      await callbackOf((cb) => trackCall(analytics, cb));
      await until(() => onTrack.calls.length === 2, "two track events");
      assert.equal(onceTrack.calls.length, 1);
      assert.equal(removed.calls.length, 0);
    });
  });
});

// ---- graceful-shutdown-integration.test.ts

describe("graceful-shutdown-integration.test.ts", () => {
  /** analytics-node's `ajs`: writeKey "abc123", flushAt 1, no flushInterval (10 s by default there). */
  const ajsSettings = { writeKey: "abc123", flushAt: 1, flushInterval: 10_000 };

  describe("drained emitted event", () => {
    test("drained is emitted after a single call is delivered (mirrors 'emits a drained event if only one event is dispatched')", async () => {
      await withCollector(async (_receiver, make) => {
        const ajs = make(ajsSettings);
        trackCall(ajs);
        await within(new Promise<void>((resolve) => ajs.once("drained", () => resolve())), 5000, "drained");
      });
    });

    test("drained is emitted once for three calls made together (mirrors 'emits a drained event if multiple events are dispatched')", async () => {
      await withCollector(async (receiver, make) => {
        const ajs = make(ajsSettings);
        let drainedCalls = 0;
        ajs.on("drained", () => void drainedCalls++);
        trackCall(ajs);
        trackCall(ajs);
        trackCall(ajs);
        await receiver.waitForMessages(3, 3000);
        await until(() => drainedCalls > 0, "drained");
        await delay(200);
        assert.equal(drainedCalls, 1);
      });
    });

    test("drained waits for a message still held by an async plugin (analytics-node counts a message as pending from its call, app/analytics-node.ts _pendingEvents)", async () => {
      await withCollector(async (receiver, make) => {
        const ajs = make(ajsSettings);
        await ajs.register(plugin({
          name: "slow for some",
          track: async (ctx) => {
            if (ctx.event.event === "Slow") await sleep(300);
            return ctx;
          },
        }));
        const drainedAt: number[] = [];
        ajs.on("drained", () => void drainedAt.push(receiver.messages().length));
        ajs.track({ userId: "foo", event: "Fast" });
        ajs.track({ userId: "foo", event: "Slow" });
        await receiver.waitForMessages(2, 3000);
        await until(() => drainedAt.length > 0, "drained");
        await delay(100);
        assert.deepEqual(drainedAt, [2], "drained once, after both messages arrived");
      });
    });

    test("closeAndFlush() calls every pending callback (mirrors 'all callbacks should be called')", async () => {
      await withCollector(async (_receiver, make) => {
        const ajs = make(ajsSettings);
        const cb = spy();
        ajs.track({ userId: "foo", event: "bar" }, cb);
        assert.equal(cb.calls.length, 0, "not called synchronously");
        await within(Promise.resolve(ajs.closeAndFlush()), 5000, "closeAndFlush");
        assert.equal(cb.calls.length, 1);
      });
    });

    test("closeAndFlush() waits for the promise an async callback returns (mirrors 'all async callbacks should be called')", async () => {
      await withCollector(async (_receiver, make) => {
        const ajs = make(ajsSettings);
        let settledCtx: Ctx | undefined;
        ajs.track({ userId: "abc", event: "def" }, (_err, ctx) => sleep(200).then(() => void (settledCtx = ctx)));
        const start = Date.now();
        await within(Promise.resolve(ajs.closeAndFlush()), 5000, "closeAndFlush");
        assert.ok(settledCtx !== undefined, "the callback's promise settled before closeAndFlush resolved");
        assert.equal(settledCtx.event.event, "def");
        assert.ok(Date.now() - start >= 150, `closeAndFlush took ${Date.now() - start} ms`);
      });
    });
  });

  describe(".closeAndFlush()", () => {
    test("default timeout should be at least 75 seconds", {
      skip:
        "reads the private _closeAndFlushDefaultTimeout; Tally's closeAndFlush() without a timeout is bounded by the retry policy instead (DESIGN 2.4)",
    }, () => {});

    test("default timeout should scale with large flushInterval", {
      skip: "reads the private _closeAndFlushDefaultTimeout; Tally has no derived default close timeout",
    }, () => {});

    test("closeAndFlush({ timeout: 300 }) resolves at about 300 ms while a plugin holds a message for 1 s, which is then reported as closed (mirrors 'should force resolve if method call execution time exceeds specified timeout')", async () => {
      await withCollector(async (receiver, make) => {
        const ajs = make(ajsSettings);
        await ajs.register(plugin({
          name: "slow",
          track: async (ctx) => {
            await sleep(1000);
            return ctx;
          },
        }));
        const result = callbackOf((cb) => trackCall(ajs, cb), 4000);
        const start = Date.now();
        await within(Promise.resolve(ajs.closeAndFlush({ timeout: 300 })), 3000, "closeAndFlush");
        const elapsed = Date.now() - start;
        assert.ok(elapsed >= 290, `resolved after ${elapsed} ms, before the timeout`);
        assert.ok(elapsed < 800, `resolved after ${elapsed} ms, long after the 300 ms timeout`);
        const [err] = await result;
        assert.ok(err instanceof DeliveryError, "the held message is reported");
        assert.equal(err.reason, "closed");
        assert.equal(receiver.requests.length, 0, "nothing is sent after the close timed out");
      });
    });

    test("after closeAndFlush() starts, new calls are refused and only the earlier one is delivered (mirrors 'no new events should be accepted (but existing ones should be flushed)')", async () => {
      await withCollector(async (receiver, make) => {
        const ajs = make(ajsSettings);
        let trackCallCount = 0;
        ajs.on("track", () => void trackCallCount++);
        trackCall(ajs);
        const closed = ajs.closeAndFlush();
        trackCall(ajs);
        trackCall(ajs);
        await within(Promise.resolve(closed), 5000, "closeAndFlush");
        assert.equal(receiver.requests.length, 1);
        assert.equal(trackCallCount, 1);
      });
    });

    test("calls made after close emit call_after_close with the message, and their callbacks get reason closed (mirrors 'any events created after close should be emitted')", async () => {
      await withCollector(async (receiver, make) => {
        const ajs = make(ajsSettings);
        const events: Message[] = [];
        ajs.on("call_after_close", (event) => void events.push(event));
        trackCall(ajs);
        const closed = ajs.closeAndFlush();
        const late = [callbackOf((cb) => trackCall(ajs, cb)), callbackOf((cb) => trackCall(ajs, cb))];
        assert.equal(events.length, 2, "emitted at the call");
        assert.ok(events.every((e) => e.type === "track"));
        assert.ok(events.every((e) => e.event === "Thing Updated" && e.userId === "foo"));
        await within(Promise.resolve(closed), 5000, "closeAndFlush");
        for (const [err, ctx] of await Promise.all(late)) {
          assert.ok(err instanceof DeliveryError);
          assert.equal(err.reason, "closed");
          assert.equal(ctx.event.type, "track");
        }
        assert.equal(receiver.messages().length, 1);
      });
    });

    test("closeAndFlush() delivers every message held by a slow plugin, emits track for each and drained once (mirrors 'if queue has multiple track events, all of those items should be dispatched, and drain and track events should be emitted')", async () => {
      await withCollector(async (receiver, make) => {
        const ajs = make(ajsSettings);
        let drainedCalls = 0;
        ajs.on("drained", () => void drainedCalls++);
        let trackCalls = 0;
        ajs.on("track", () => void trackCalls++);
        await ajs.register(plugin({
          name: "slow",
          track: async (ctx) => {
            await sleep(300);
            return ctx;
          },
        }));
        trackCall(ajs);
        trackCall(ajs);
        await within(Promise.resolve(ajs.closeAndFlush()), 5000, "closeAndFlush");
        assert.equal(receiver.requests.length, 2);
        assert.equal(trackCalls, 2);
        assert.equal(drainedCalls, 1);
      });
    });

    test("closeAndFlush() with nothing pending resolves at once (mirrors 'if no pending events, resolves immediately')", async () => {
      await withCollector(async (_receiver, make) => {
        const ajs = make(ajsSettings);
        const start = performance.now();
        await within(Promise.resolve(ajs.closeAndFlush()), 2000, "closeAndFlush");
        const elapsed = performance.now() - start;
        // analytics-node allows 20 ms; this machine is shared, and the point is "not after flushInterval (10 s)".
        assert.ok(elapsed < 200, `took ${elapsed} ms`);
      });
    });

    test("closeAndFlush() with nothing pending does not emit drained (mirrors 'if no pending events, drained should not be emitted an extra time when close is called')", async () => {
      await withCollector(async (_receiver, make) => {
        const ajs = make(ajsSettings);
        let called = false;
        ajs.on("drained", () => void (called = true));
        await within(Promise.resolve(ajs.closeAndFlush()), 2000, "closeAndFlush");
        assert.equal(called, false);
      });
    });

    test("closeAndFlush() sends a partial batch at once instead of waiting for flushInterval (mirrors 'should flush immediately if close is called and there are events in the segment.io plugin, but no more are expected')", async () => {
      await withCollector(async (receiver, make) => {
        const httpClient = forwardingClient();
        const analytics = make({ writeKey: KEY, flushInterval: 10_000, flushAt: 15, httpClient });
        trackCall(analytics);
        trackCall(analytics);
        await delay(100);
        assert.equal(receiver.requests.length, 0, "still queued");
        const start = performance.now();
        await within(Promise.resolve(analytics.closeAndFlush()), 3000, "closeAndFlush");
        const elapsed = performance.now() - start;
        assert.ok(elapsed < 1000, `took ${elapsed} ms`);
        assert.equal(httpClient.requests.length, 1);
        assert.equal(JSON.parse(httpClient.requests[0].body).batch.length, 2);
      });
    });

    test("closeAndFlush() waits for messages still in a plugin, then sends them in one batch (mirrors 'should wait to flush if close is called and an event has not made it to the segment.io plugin yet')", async () => {
      await withCollector(async (_receiver, make) => {
        const TRACK_DELAY = 100;
        const httpClient = forwardingClient();
        const analytics = make({ writeKey: KEY, flushInterval: 10_000, flushAt: 15, httpClient });
        await analytics.register(plugin({
          name: "delay",
          track: async (ctx) => {
            await sleep(TRACK_DELAY);
            return ctx;
          },
        }));
        trackCall(analytics);
        trackCall(analytics);
        const start = performance.now();
        await within(Promise.resolve(analytics.closeAndFlush()), 3000, "closeAndFlush");
        const elapsed = performance.now() - start;
        assert.ok(elapsed >= TRACK_DELAY - 10, `took ${elapsed} ms`);
        assert.ok(elapsed < TRACK_DELAY * 2 + 300, `took ${elapsed} ms`);
        assert.equal(httpClient.requests.length, 1);
        assert.equal(JSON.parse(httpClient.requests[0].body).batch.length, 2);
      });
    });
  });

  describe(".flush()", () => {
    /** analytics-node's `.flush()` client: maxEventsInBatch 15, flushInterval 10 s by default. */
    const flushSettings = { writeKey: "abc123", maxEventsInBatch: 15, flushInterval: 10_000 };

    test("flush() can be called repeatedly: each delivers what was queued and emits drained once (mirrors 'should be able to flush multiple times')", async () => {
      await withCollector(async (receiver, make) => {
        const ajs = make(flushSettings);
        let drainedCalls = 0;
        ajs.on("drained", () => void drainedCalls++);
        let trackCalls = 0;
        ajs.on("track", () => void trackCalls++);
        trackCall(ajs);
        assert.deepEqual(await within(ajs.flush(), 5000, "flush"), { delivered: 1, failed: 0, pending: 0 });
        assert.equal(receiver.requests.length, 1);
        assert.equal(trackCalls, 1);
        assert.equal(drainedCalls, 1);
        trackCall(ajs);
        trackCall(ajs);
        assert.deepEqual(await within(ajs.flush(), 5000, "flush"), { delivered: 2, failed: 0, pending: 0 });
        assert.equal(drainedCalls, 2);
        assert.equal(receiver.requests.length, 2);
        assert.equal(trackCalls, 3);
      });
    });

    test("a call made after flush() started is not awaited by it and goes in the next flush (mirrors 'should handle events normally if new events enter the pipeline _after_ flush is called')", async () => {
      await withCollector(async (receiver, make) => {
        const ajs = make(flushSettings);
        let drainedCalls = 0;
        ajs.on("drained", () => void drainedCalls++);
        let trackCallCount = 0;
        ajs.on("track", () => void trackCallCount++);
        trackCall(ajs);
        const flushed = ajs.flush();
        await delay(100);
        trackCall(ajs);
        await within(flushed, 5000, "flush");
        assert.equal(trackCallCount, 1);
        assert.equal(receiver.requests.length, 1);
        assert.equal(drainedCalls, 1);
        trackCall(ajs);
        await within(ajs.flush(), 5000, "flush");
        assert.equal(drainedCalls, 2);
        assert.equal(receiver.requests.length, 2);
        assert.equal(trackCallCount, 3);
      });
    });

    test("overlapping flush calls should be ignored with a wwarning", {
      skip: "Tally shares concurrent flush() calls and none resolves early (README 'How do I flush right now?!'; " +
        "SEGMENT_API.md lists analytics-node's early-returning second flush as a complaint), so there is no warning",
    }, () => {});

    test("overlapping flush() calls share the work and both resolve after it, without a warning (Tally's answer to 'overlapping flush calls should be ignored with a wwarning')", async () => {
      await withCollector(async (receiver, make) => {
        const warnings: unknown[][] = [];
        const ajs = make({
          ...flushSettings,
          maxEventsInBatch: 2,
          logger: { ...quiet, warn: (...a: unknown[]) => void warnings.push(a) },
        });
        let drainedCalls = 0;
        ajs.on("drained", () => void drainedCalls++);
        let trackCallCount = 0;
        ajs.on("track", () => void trackCallCount++);
        trackCall(ajs);
        const flushes = Promise.all([ajs.flush(), ajs.flush()]);
        trackCall(ajs);
        trackCall(ajs);
        const [first, second] = await within(flushes, 5000, "both flushes");
        assert.ok(trackCallCount >= 1, "the first message was delivered before either flush resolved");
        assert.equal(first.pending, 0);
        assert.equal(first.failed, 0);
        assert.deepEqual(second, first, "the second flush shares the first one's work");
        await until(() => trackCallCount === 3, "three deliveries");
        assert.equal(drainedCalls, 1);
        assert.deepEqual(warnings, []);
        trackCall(ajs);
        await within(ajs.flush(), 5000, "flush");
        assert.equal(trackCallCount, 4);
        assert.equal(drainedCalls, 2);
        assert.equal(receiver.messages().length, 4);
      });
    });

    test("flush() with nothing queued resolves without emitting drained again, and nothing warns (Tally's answer to 'should call console.warn only once')", async () => {
      await withCollector(async (_receiver, make) => {
        const warnings: unknown[][] = [];
        const ajs = make({ ...flushSettings, logger: { ...quiet, warn: (...a: unknown[]) => void warnings.push(a) } });
        let drainedCalls = 0;
        ajs.on("drained", () => void drainedCalls++);
        trackCall(ajs);
        await within(Promise.all([ajs.flush(), ajs.flush()]), 5000, "both flushes");
        assert.equal(drainedCalls, 1);
        trackCall(ajs);
        await within(ajs.flush(), 5000, "flush");
        assert.equal(drainedCalls, 2);
        assert.deepEqual(await within(ajs.flush(), 5000, "flush"), { delivered: 0, failed: 0, pending: 0 });
        assert.equal(drainedCalls, 2);
        assert.deepEqual(warnings, []);
      });
    });
  });
});

// ---- http-client.integration.test.ts

describe("http-client.integration.test.ts", () => {
  test("an httpClient object's makeRequest gets url, method, the three headers, the JSON body and httpRequestTimeout (mirrors 'can be a regular custom HTTP client')", async () => {
    await withCollector(async (receiver, make) => {
      const httpClient = forwardingClient();
      const analytics = make({ httpClient, httpRequestTimeout: 2000 });
      assert.equal(httpClient.requests.length, 0);
      const [err] = await callbackOf((cb) => analytics.track({ event: "foo", userId: "bar" }, cb));
      assert.equal(err, undefined, "a response without text() is a success");
      assert.equal(httpClient.requests.length, 1);
      const [options] = httpClient.requests;
      assert.equal(options.url, `${receiver.url}/v1/batch`);
      assert.equal(options.method, "POST");
      assert.deepEqual(Object.keys(options.headers).sort(), ["Authorization", "Content-Type", "User-Agent"]);
      assert.equal(options.headers["Authorization"], BASIC_FOO);
      assert.equal(options.headers["Content-Type"], "application/json");
      // analytics-node: "analytics-node-next/latest".
      assert.ok(options.headers["User-Agent"].startsWith(`${LIBRARY_NAME}/${VERSION}`), options.headers["User-Agent"]);
      assert.equal(options.httpRequestTimeout, 2000);
      assert.equal(typeof options.body, "string");
      const batch = JSON.parse(options.body).batch;
      assert.equal(batch.length, 1);
      assert.match(batch[0].messageId, UUID_V4);
      assert.match(batch[0].timestamp, ISO_MS);
      // analytics-node also sends _metadata, integrations: {} and properties: {} (see the skipped http-integration test).
      assert.deepEqual(batch[0], {
        messageId: batch[0].messageId,
        timestamp: batch[0].timestamp,
        context: { library: LIBRARY },
        event: "foo",
        type: "track",
        userId: "bar",
      });
      assert.deepEqual(receiver.messages(), batch, "the collector got what makeRequest was given");
    });
  });

  test("a fetch-compatible httpClient function gets the URL and an init with method, headers, a string body and an AbortSignal (mirrors 'can be a simple function that matches the fetch interface')", async () => {
    await withCollector(async (receiver, make) => {
      const calls: [string, RequestInit][] = [];
      const testFetch = (url: string, init: RequestInit): Promise<Response> => {
        calls.push([url, init]);
        return fetch(url, init);
      };
      const analytics = make({ httpClient: testFetch });
      assert.equal(calls.length, 0);
      const [err] = await callbackOf((cb) => analytics.track({ event: "foo", userId: "bar" }, cb));
      assert.equal(err, undefined);
      assert.equal(calls.length, 1);
      const [url, init] = calls[0];
      assert.equal(url, `${receiver.url}/v1/batch`);
      assert.equal(init.method, "POST");
      const headers = init.headers as Record<string, string>;
      assert.equal(headers["Authorization"], BASIC_FOO);
      assert.equal(headers["Content-Type"], "application/json");
      // analytics-node's HTTPFetchRequest.body is a string, and its test JSON.parse()s it.
      assert.equal(typeof init.body, "string", "the body is the JSON text");
      const batch = JSON.parse(init.body as string).batch;
      assert.equal(batch.length, 1);
      assert.equal(batch[0].event, "foo");
      assert.ok(init.signal instanceof AbortSignal);
    });
  });
});

// ---- http-integration.test.ts

describe("http-integration.test.ts", () => {
  describe("Method Smoke Tests", () => {
    test("Metadata: should show appropriate metadata", {
      skip: "analytics-node adds _metadata { nodeVersion, jsRuntime } to each message; Tally sends only Segment-spec " +
        "fields (DESIGN 2.3) and names the runtime in User-Agent instead",
    }, () => {});

    test("Headers: a request has Basic authorization, application/json and Tally's User-Agent (mirrors 'A request should have the expected headers')", async () => {
      await withCollector(async (receiver, make) => {
        const ajs = make();
        const identified = resolveCtx(ajs, "identify");
        ajs.identify({ userId: "my_user_id", traits: { foo: "bar" } });
        await identified;
        const { headers } = receiver.requests[0];
        assert.equal(headers["authorization"], BASIC_FOO);
        assert.equal(headers["content-type"], "application/json");
        // analytics-node: "analytics-node-next/latest".
        assert.ok(headers["user-agent"].startsWith(`${LIBRARY_NAME}/${VERSION}`), headers["user-agent"]);
      });
    });

    test("Request Bodies: integrations, userId and a Date timestamp are sent as given (mirrors 'Generic Properties')", async () => {
      await withCollector(async (receiver, make) => {
        const ajs = make();
        const event = {
          event: "foo",
          userId: "foo",
          properties: { hello: "world" },
          integrations: { foo: true },
          timestamp: new Date(),
        };
        const tracked = resolveCtx(ajs, "track");
        ajs.track(event);
        await tracked;
        const [call] = receiver.messages();
        assert.equal(call.timestamp, event.timestamp.toISOString());
        assert.equal(call.userId, event.userId);
        assert.deepEqual(call.integrations, event.integrations);
      });
    });

    test("Request Bodies: analytics-node's default integrations: {}, properties: {} and traits: {}", {
      skip: "Tally omits absent optional fields instead of sending empty objects (DESIGN 2.3 'Absent optional fields " +
        "are omitted'); Segment treats both the same",
    }, () => {});

    const bodies: [string, CallType, Params, Record<string, unknown>][] = [
      ["Identify", "identify", { userId: "my_user_id", traits: { foo: "bar" } }, {
        type: "identify",
        userId: "my_user_id",
        traits: { foo: "bar" },
      }],
      ["Track", "track", { event: "foo", userId: "foo", properties: { hello: "world" } }, {
        type: "track",
        event: "foo",
        userId: "foo",
        properties: { hello: "world" },
      }],
      ["Page", "page", { name: "page", anonymousId: "foo" }, { type: "page", name: "page", anonymousId: "foo" }],
      ["Group", "group", { groupId: "myGroupId", anonymousId: "foo", traits: { some_traits: 123 } }, {
        type: "group",
        groupId: "myGroupId",
        anonymousId: "foo",
        traits: { some_traits: 123 },
      }],
      ["Alias", "alias", { userId: "alias", previousId: "previous" }, {
        type: "alias",
        userId: "alias",
        previousId: "previous",
      }],
      ["Screen", "screen", { name: "screen", anonymousId: "foo", properties: { title: "wip" } }, {
        type: "screen",
        name: "screen",
        anonymousId: "foo",
        properties: { title: "wip" },
      }],
    ];
    for (const [name, type, params, expected] of bodies) {
      test(`Request Bodies: ${type}() posts { batch: [the message], sentAt, writeKey } with context.library (mirrors '${name}')`, async () => {
        await withCollector(async (receiver, make) => {
          const ajs = make();
          const delivered = resolveCtx(ajs, type);
          ajs[type](params);
          await delivered;
          assert.equal(receiver.requests.length, 1);
          const { body } = receiver.requests[0];
          assert.deepEqual(Object.keys(body).sort(), ["batch", "sentAt", "writeKey"]);
          assert.equal(body.writeKey, KEY);
          assert.match(body.sentAt as string, ISO_MS);
          assert.equal(body.batch?.length, 1);
          const [message] = body.batch ?? [];
          assert.match(message.messageId as string, UUID_V4);
          assert.match(message.timestamp as string, ISO_MS);
          assert.ok(!Number.isNaN(Date.parse(message.timestamp as string)));
          assert.deepEqual(message, {
            ...expected,
            messageId: message.messageId,
            timestamp: message.timestamp,
            context: { library: { name: "@tally/analytics", version: VERSION } },
          });
        });
      });
    }
  });

  describe("Client: requestTimeout", () => {
    test("should timeout immediately if request timeout is set to 0", {
      skip: "in Tally httpRequestTimeout: 0 means no per-request timeout (issue 8 contract), not an instant one",
    }, () => {});

    test("httpRequestTimeout: 0 sets no per-request timeout: an answer that takes 300 ms is still delivered (Tally's reading of 'should timeout immediately if request timeout is set to 0')", async () => {
      await withCollector(async (receiver, make) => {
        const slowFetch = async (url: string, init: RequestInit): Promise<Response> => {
          await sleep(300);
          return fetch(url, init);
        };
        const ajs = make({ flushAt: 1, httpRequestTimeout: 0, maxRetries: 0, httpClient: slowFetch });
        const [err, ctx] = await callbackOf((cb) => ajs.track({ event: "foo", userId: "foo" }, cb));
        assert.equal(err, undefined, "no timeout cut the request short");
        assert.equal(ctx.failedDelivery(), undefined);
        assert.equal(receiver.requests.length, 1);
      });
    });

    test("httpRequestTimeout: 100 against a server that never answers fails with reason timeout and an error event carrying ctx (the timeout that 'should timeout immediately if request timeout is set to 0' checks)", async () => {
      await withCollector(async (receiver, make) => {
        receiver.reply({ hang: true });
        const ajs = make({ flushAt: 1, httpRequestTimeout: 100, maxRetries: 0 });
        const tracked = resolveCtx(ajs, "track");
        const start = Date.now();
        ajs.track({ event: "foo", userId: "foo", properties: { hello: "world" } });
        const err = await rejection(tracked, "the track event") as ErrorEvent;
        assert.equal(err.code, "delivery_failure");
        assert.ok(err.reason instanceof DeliveryError);
        assert.equal(err.reason.reason, "timeout");
        assert.equal(err.ctx.event.event, "foo");
        assert.ok(Date.now() - start < 2000, `failed after ${Date.now() - start} ms`);
      });
    });
  });
});

// ---- integration.test.ts

describe("integration.test.ts", () => {
  const timestamp = new Date();

  describe("Settings / Configuration Init", () => {
    test("throws if no writeKey", {
      skip: "Tally allows a client without a write key until its first call (the seed's module-level client gets " +
        "analytics.writeKey after import); the next test checks that form",
    }, () => {});

    test("a missing writeKey does not throw at construction; the first call throws a ValidationError naming writeKey (Tally's form of 'throws if no writeKey')", async () => {
      await withCollector(async (receiver, make) => {
        const analytics = make({ writeKey: undefined });
        assert.throws(
          () => analytics.track({ event: "foo", userId: "sup" }),
          (error: unknown) =>
            error instanceof ValidationError && error.field === "writeKey" && /writeKey/i.test(error.message),
        );
        await analytics.flush();
        assert.equal(receiver.requests.length, 0);
      });
    });

    test("host and path override the default endpoint (mirrors 'allows host/path to override default client')", async () => {
      await withCollector(async (receiver, make) => {
        const httpClient = forwardingClient();
        const analytics = make({ host: receiver.url, path: "/v1/import", httpClient });
        const track = resolveCtx(analytics, "track");
        analytics.track({ event: "foo", userId: "sup" });
        await track;
        assert.equal(httpClient.requests[0].url, `${receiver.url}/v1/import`);
        assert.equal(receiver.requests[0].path, "/v1/import");
      });
    });

    test("path works with or without its leading slash, and a trailing slash is dropped", async () => {
      await withCollector(async (receiver, make) => {
        for (
          const [host, path] of [[receiver.url, "v1/import"], [receiver.url, "/v1/import/"], [
            `${receiver.url}/`,
            "v1/import/",
          ]]
        ) {
          const httpClient = forwardingClient();
          const analytics = make({ host, path, httpClient });
          const track = resolveCtx(analytics, "track");
          analytics.track({ event: "foo", userId: "sup" });
          await track;
          assert.equal(httpClient.requests[0].url, `${receiver.url}/v1/import`, `host ${host}, path ${path}`);
        }
      });
    });

    test("a host that is not a URL throws a TypeError naming host (mirrors 'throws if host / path is bad')", () => {
      assert.throws(
        () => createTestAnalytics(undefined, { writeKey: KEY, host: "SHOULD_FAIL", path: "/bar" }),
        (error: unknown) => error instanceof TypeError && /host/.test(error.message),
      );
    });
  });

  describe("Error handling", () => {
    test("a call with no fields throws from the call (mirrors 'surfaces property thrown errors')", async () => {
      await withCollector(async (receiver, make) => {
        const analytics = make();
        assert.throws(() => analytics.track({}), ValidationError);
        await analytics.flush();
        assert.equal(receiver.requests.length, 0);
      });
    });

    test("a 503 with maxRetries 0 emits error { code: 'delivery_failure', reason } (mirrors 'should emit on an error')", async () => {
      await withCollector(async (receiver, make) => {
        receiver.setDefault({ status: 503 });
        const analytics = make({ maxRetries: 0 });
        const promise = resolveCtx(analytics, "track");
        analytics.track({ event: "foo", userId: "sup" });
        const err = await rejection(promise, "the track event") as ErrorEvent;
        // analytics-node: reason is new Error("[503] Service Unavailable").
        assert.ok(err.reason instanceof DeliveryError);
        assert.equal(err.reason.status, 503);
        assert.match(err.reason.message, /503/);
        assert.match(err.code, /delivery_failure/);
        assert.equal(err.ctx.event.event, "foo");
      });
    });
  });

  describe("alias", () => {
    test("alias() builds an alias with userId, previousId, the given timestamp and a messageId (mirrors 'generates alias events')", async () => {
      await withCollector(async (_receiver, make) => {
        const analytics = make();
        analytics.alias({ userId: "chris radek", previousId: "chris", timestamp });
        const ctx = await resolveCtx(analytics, "alias");
        assert.equal(ctx.event.userId, "chris radek");
        assert.equal(ctx.event.previousId, "chris");
        // analytics-node keeps the Date; ctx.event is the message as sent, so Tally has its ISO string.
        assert.equal(ctx.event.timestamp, timestamp.toISOString());
        assert.equal(typeof ctx.event.messageId, "string");
      });
    });

    test("alias() keeps a given messageId (mirrors 'allows messageId to be overridden')", async () => {
      await withCollector(async (_receiver, make) => {
        const analytics = make({ httpClient: forwardingClient() });
        analytics.alias({ userId: "foo", previousId: "bar", messageId: "overridden" });
        const ctx = await resolveCtx(analytics, "alias");
        assert.equal(ctx.event.messageId, "overridden");
      });
    });
  });

  describe("group", () => {
    test("group() builds a group with groupId, traits, both ids and the timestamp (mirrors 'generates group events')", async () => {
      await withCollector(async (_receiver, make) => {
        const analytics = make();
        analytics.group({
          groupId: "coolKids",
          traits: { coolKids: true },
          userId: "foo",
          anonymousId: "bar",
          timestamp,
        });
        const ctx = await resolveCtx(analytics, "group");
        assert.equal(ctx.event.groupId, "coolKids");
        assert.deepEqual(ctx.event.traits, { coolKids: true });
        assert.equal(ctx.event.userId, "foo");
        assert.equal(ctx.event.anonymousId, "bar");
        assert.equal(ctx.event.timestamp, timestamp.toISOString());
        assert.equal(typeof ctx.event.messageId, "string");
      });
    });

    test("one group() call does not leak into the next (mirrors 'invocations are isolated')", async () => {
      await withCollector(async (_receiver, make) => {
        const analytics = make();
        analytics.group({ groupId: "coolKids", traits: { foo: "foo" }, anonymousId: "unknown" });
        const ctx1 = await resolveCtx(analytics, "group");
        analytics.group({ groupId: "coolKids", traits: { bar: "bar" }, userId: "me" });
        const ctx2 = await resolveCtx(analytics, "group");
        assert.deepEqual(ctx1.event.traits, { foo: "foo" });
        assert.equal(ctx1.event.anonymousId, "unknown");
        assert.equal(ctx1.event.userId, undefined);
        assert.deepEqual(ctx2.event.traits, { bar: "bar" });
        assert.equal(ctx2.event.anonymousId, undefined);
        assert.equal(ctx2.event.userId, "me");
      });
    });

    test("group() keeps a given messageId (mirrors 'allows messageId to be overridden')", async () => {
      await withCollector(async (_receiver, make) => {
        const analytics = make({ httpClient: forwardingClient() });
        analytics.group({ groupId: "foo", userId: "sup", messageId: "overridden" });
        const ctx = await resolveCtx(analytics, "group");
        assert.equal(ctx.event.messageId, "overridden");
      });
    });
  });

  describe("identify", () => {
    test("identify() builds identifies with and without traits and timestamp (mirrors 'generates identify events')", async () => {
      await withCollector(async (_receiver, make) => {
        const analytics = make();
        analytics.identify({ timestamp, userId: "user-id", traits: { name: "Chris Radek" } });
        const ctx1 = await resolveCtx(analytics, "identify");
        assert.equal(ctx1.event.userId, "user-id");
        assert.equal(ctx1.event.anonymousId, undefined);
        assert.deepEqual(ctx1.event.traits, { name: "Chris Radek" });
        assert.equal(ctx1.event.timestamp, timestamp.toISOString());

        const before = Date.now();
        analytics.identify({ userId: "user-id", anonymousId: "unknown" });
        const ctx2 = await resolveCtx(analytics, "identify");
        assert.equal(ctx2.event.userId, "user-id");
        assert.equal(ctx2.event.anonymousId, "unknown");
        // analytics-node: traits {}; Tally omits absent fields (DESIGN 2.3).
        assert.equal(ctx2.event.traits, undefined);
        assert.match(ctx2.event.timestamp, ISO_MS);
        assert.ok(Date.parse(ctx2.event.timestamp) >= before - 1, "stamped at the call");
      });
    });
  });

  describe("page", () => {
    test("page() builds pages with name, ids, properties and timestamp; category stays a top-level field (mirrors 'generates page events')", async () => {
      await withCollector(async (_receiver, make) => {
        const analytics = make();
        const category = "Docs";
        const name = "How to write a test";
        analytics.page({ category, name, anonymousId: "unknown", timestamp });
        const ctx1 = await resolveCtx(analytics, "page");
        assert.equal(ctx1.event.type, "page");
        assert.equal(ctx1.event.name, name);
        assert.equal(ctx1.event.anonymousId, "unknown");
        assert.equal(ctx1.event.userId, undefined);
        // analytics-node: properties { category }; Tally sends the spec's top-level category (see the skipped test).
        assert.equal(ctx1.event.category, category);
        assert.equal(ctx1.event.properties, undefined);
        assert.equal(ctx1.event.timestamp, timestamp.toISOString());
        assert.equal(typeof ctx1.event.messageId, "string");

        analytics.page({ name, properties: { title: "wip" }, userId: "user-id" });
        const ctx2 = await resolveCtx(analytics, "page");
        assert.equal(ctx2.event.type, "page");
        assert.equal(ctx2.event.name, name);
        assert.equal(ctx2.event.anonymousId, undefined);
        assert.equal(ctx2.event.userId, "user-id");
        assert.deepEqual(ctx2.event.properties, { title: "wip" });
        assert.match(ctx2.event.timestamp, ISO_MS);
        assert.equal(typeof ctx2.event.messageId, "string");

        analytics.page({ properties: { title: "invisible" }, userId: "user-id" });
        const ctx3 = await resolveCtx(analytics, "page");
        assert.equal(ctx3.event.type, "page");
        assert.equal(ctx3.event.name, undefined);
        assert.equal(ctx3.event.anonymousId, undefined);
        assert.equal(ctx3.event.userId, "user-id");
        assert.deepEqual(ctx3.event.properties, { title: "invisible" });
        assert.equal(typeof ctx3.event.messageId, "string");
      });
    });

    test("page category goes into properties.category", {
      skip: "analytics-node moves page/screen category into properties; Tally sends the Segment spec's top-level " +
        "category field, as analytics-python does (SEGMENT_API.md: page has name, category, properties)",
    }, () => {});

    test("page() keeps a given messageId (mirrors 'allows messageId to be overridden')", async () => {
      await withCollector(async (_receiver, make) => {
        const analytics = make({ httpClient: forwardingClient() });
        analytics.page({ name: "foo", userId: "sup", messageId: "overridden" });
        const ctx = await resolveCtx(analytics, "page");
        assert.equal(ctx.event.messageId, "overridden");
      });
    });
  });

  describe("screen", () => {
    test("screen() builds screens with and without name and timestamp (mirrors 'generates screen events')", async () => {
      await withCollector(async (_receiver, make) => {
        const analytics = make();
        const name = "Home Screen";
        analytics.screen({ name, properties: { title: "wip" }, userId: "user-id", timestamp });
        const ctx1 = await resolveCtx(analytics, "screen");
        assert.equal(ctx1.event.type, "screen");
        assert.equal(ctx1.event.name, name);
        assert.equal(ctx1.event.anonymousId, undefined);
        assert.equal(ctx1.event.userId, "user-id");
        assert.deepEqual(ctx1.event.properties, { title: "wip" });
        assert.equal(ctx1.event.timestamp, timestamp.toISOString());
        assert.equal(typeof ctx1.event.messageId, "string");

        analytics.screen({ properties: { title: "invisible" }, userId: "user-id" });
        const ctx2 = await resolveCtx(analytics, "screen");
        assert.equal(ctx2.event.type, "screen");
        assert.equal(ctx2.event.name, undefined);
        assert.equal(ctx2.event.anonymousId, undefined);
        assert.equal(ctx2.event.userId, "user-id");
        assert.deepEqual(ctx2.event.properties, { title: "invisible" });
        assert.match(ctx2.event.timestamp, ISO_MS);
        assert.equal(typeof ctx2.event.messageId, "string");
      });
    });

    test("screen() keeps a given messageId (mirrors 'allows messageId to be overridden')", async () => {
      await withCollector(async (_receiver, make) => {
        const analytics = make({ httpClient: forwardingClient() });
        analytics.screen({ name: "foo", userId: "sup", messageId: "overridden" });
        const ctx = await resolveCtx(analytics, "screen");
        assert.equal(ctx.event.messageId, "overridden");
      });
    });
  });

  describe("track", () => {
    test("the request body carries an ISO sentAt (mirrors 'sends sentAt field in payload')", async () => {
      await withCollector(async (_receiver, make) => {
        const httpClient = forwardingClient();
        const analytics = make({ httpClient });
        const track = resolveCtx(analytics, "track");
        analytics.track({ event: "hello", userId: "foo" });
        await track;
        assert.match(JSON.parse(httpClient.requests[0].body).sentAt, ISO_MS);
      });
    });

    test("track() builds tracks with event, ids, properties and timestamp (mirrors 'generates track events')", async () => {
      await withCollector(async (_receiver, make) => {
        const analytics = make();
        const eventName = "Test Event";
        analytics.track({ event: eventName, anonymousId: "unknown", userId: "known", timestamp });
        const ctx1 = await resolveCtx(analytics, "track");
        assert.equal(ctx1.event.type, "track");
        assert.equal(ctx1.event.event, eventName);
        // analytics-node: properties {}; Tally omits absent fields (DESIGN 2.3).
        assert.equal(ctx1.event.properties, undefined);
        assert.equal(ctx1.event.anonymousId, "unknown");
        assert.equal(ctx1.event.userId, "known");
        assert.equal(ctx1.event.timestamp, timestamp.toISOString());
        assert.equal(typeof ctx1.event.messageId, "string");

        analytics.track({ event: eventName, properties: { foo: "bar" }, userId: "known" });
        const ctx2 = await resolveCtx(analytics, "track");
        assert.equal(ctx2.event.type, "track");
        assert.equal(ctx2.event.event, eventName);
        assert.deepEqual(ctx2.event.properties, { foo: "bar" });
        assert.equal(ctx2.event.anonymousId, undefined);
        assert.equal(ctx2.event.userId, "known");
        assert.match(ctx2.event.timestamp, ISO_MS);
        assert.equal(typeof ctx2.event.messageId, "string");
      });
    });

    test("track() keeps a given messageId (mirrors 'allows messageId to be overridden')", async () => {
      await withCollector(async (_receiver, make) => {
        const analytics = make({ httpClient: forwardingClient() });
        analytics.track({ event: "foo", userId: "sup", messageId: "overridden" });
        const ctx = await resolveCtx(analytics, "track");
        assert.equal(ctx.event.messageId, "overridden");
      });
    });

    test("every call returns the messageId, which ctx.id and the sent message carry (Tally: analytics-node returns void)", async () => {
      await withCollector(async (receiver, make) => {
        const analytics = make({ flushAt: 6, flushInterval: 10_000 });
        const ctxs: Ctx[] = [];
        const cb: NodeCallback = (_err, ctx) => void ctxs.push(ctx);
        const ids = [
          analytics.identify({ userId: "u" }, cb),
          analytics.track({ userId: "u", event: "e" }, cb),
          analytics.page({ userId: "u" }, cb),
          analytics.screen({ userId: "u" }, cb),
          analytics.group({ userId: "u", groupId: "g" }, cb),
          analytics.alias({ userId: "u", previousId: "p" }, cb),
        ];
        for (const id of ids) assert.match(id, UUID_V4);
        await receiver.waitForMessages(6, 3000);
        await until(() => ctxs.length === 6, "six callbacks");
        assert.deepEqual(receiver.messages().map((m) => m.messageId), ids);
        assert.deepEqual(ctxs.map((ctx) => ctx.id).sort(), [...ids].sort());
      });
    });
  });

  describe("register", () => {
    test("register(plugin) loads it once, with the client (mirrors 'registers a plugin')", async () => {
      await withCollector(async (_receiver, make) => {
        const analytics = make();
        const load = spy((_ctx: Ctx, _analytics: NodeAnalytics) => Promise.resolve());
        await analytics.register(plugin({ name: "Test Plugin", type: "destination", load }));
        assert.equal(load.calls.length, 1);
        assert.equal(load.calls[0][1], analytics, "load(ctx, analytics) gets the client");
      });
    });

    test(
      "a call made just before register() reaches the plugin after registration is announced (mirrors 'should wait for plugins to be registered before dispatching events')",
      {
        skip:
          "Tally's calls take effect synchronously (no promise per call), so a plugin registered after a call does not see it; calls made while a registration is pending wait for it (tested below)",
      },
      async () => {
        await withCollector(async (_receiver, make) => {
          const analytics = make();
          analytics.identify({ userId: "foo" });
          const register = new Promise<string>((resolve) =>
            analytics.on("register", (plugins) => {
              if (plugins.includes("Test Plugin")) resolve("register");
            })
          );
          let resolveIdentify: (value: string) => void = () => {};
          const identifyPluginCall = new Promise<string>((resolve) => void (resolveIdentify = resolve));
          void analytics.register(plugin({
            name: "Test Plugin",
            type: "destination",
            identify: (ctx) => {
              resolveIdentify("identify");
              return Promise.resolve(ctx);
            },
          }));
          const result = await within(Promise.race([identifyPluginCall, register]), 3000, "register or identify");
          assert.equal(result, "register");
          assert.equal(await within(identifyPluginCall, 3000, "the plugin's identify"), "identify");
        });
      },
    );
  });

  describe("deregister", () => {
    test("deregister(name) calls the plugin's unload once (mirrors 'deregisters a plugin given its name')", async () => {
      await withCollector(async (_receiver, make) => {
        const analytics = make();
        const unload = spy((_ctx: Ctx, _analytics: NodeAnalytics) => Promise.resolve());
        await analytics.register(plugin({ name: "Test Plugin", type: "destination", unload }));
        await analytics.deregister("Test Plugin");
        assert.equal(unload.calls.length, 1);
      });
    });
  });

  describe("version", () => {
    test("analytics.VERSION is the library's VERSION, on instances and on the default export (mirrors 'should return the version')", () => {
      const analytics = createTestAnalytics(undefined, { disable: true });
      assert.equal(analytics.VERSION, VERSION);
      assert.match(analytics.VERSION, /^\d+\.\d+\.\d+/);
      assert.equal((analyticsDefault as unknown as { VERSION: string }).VERSION, VERSION);
    });
  });

  describe("ready", () => {
    test("analytics.ready resolves to undefined (mirrors 'should only resolve when plugin registration is done')", async () => {
      const analytics = createTestAnalytics(undefined, { disable: true });
      assert.ok(analytics.ready instanceof Promise, "ready is a promise");
      assert.equal(await within(analytics.ready, 2000, "ready"), undefined);
    });
  });
});

// ---- plugins.test.ts

describe("plugins.test.ts", () => {
  test("Initialize: loads analytics-node-next plugin", {
    skip: "looks up analytics-node's internal Segment.io destination in the private _queue.plugins; Tally's " +
      "delivery is built in, not a plugin (the tests below cover the plugin API itself)",
  }, () => {});

  test("a before plugin can replace fields of ctx.event, and the changed message is sent without touching the caller's objects", async () => {
    await withCollector(async (receiver, make) => {
      const analytics = make({ flushAt: 1 });
      await analytics.register(plugin({
        name: "scrub",
        type: "before",
        track: (ctx) => {
          ctx.event.properties = { ...ctx.event.properties, email: undefined, plan: "hidden" };
          delete ctx.event.properties.email;
          return ctx;
        },
      }));
      const properties = { email: "a@b.c", plan: "Pro", seats: 3 };
      const [err, ctx] = await callbackOf((cb) => analytics.track({ userId: "u", event: "Upgraded", properties }, cb));
      assert.equal(err, undefined);
      assert.deepEqual(receiver.messages()[0].properties, { plan: "hidden", seats: 3 });
      assert.deepEqual(ctx.event.properties, { plan: "hidden", seats: 3 });
      assert.deepEqual(properties, { email: "a@b.c", plan: "Pro", seats: 3 }, "the caller's object is unchanged");
    });
  });

  test("an enrichment plugin can set a nested field with ctx.updateEvent(path, value), sync or async", async () => {
    await withCollector(async (receiver, make) => {
      const analytics = make({ flushAt: 2, flushInterval: 10_000 });
      await analytics.register(
        plugin({
          name: "app",
          identify: (ctx) => {
            ctx.updateEvent("context.app.name", "api");
            return ctx;
          },
        }),
        plugin({
          name: "region",
          identify: async (ctx) => {
            await sleep(10);
            ctx.updateEvent("traits.region", "eu");
            return ctx;
          },
        }),
      );
      analytics.identify({ userId: "u", traits: { plan: "Free" } });
      analytics.identify({ userId: "v" });
      await receiver.waitForMessages(2, 3000);
      const [first, second] = receiver.messages();
      assert.deepEqual(first.context, { app: { name: "api" }, library: LIBRARY });
      assert.deepEqual(first.traits, { plan: "Free", region: "eu" });
      assert.deepEqual(second.traits, { region: "eu" });
    });
  });

  test("a plugin that returns nothing keeps the event as it is", async () => {
    await withCollector(async (receiver, make) => {
      const analytics = make({ flushAt: 1 });
      const seen = spy((_ctx: Ctx) => undefined);
      await analytics.register(plugin({ name: "observer", type: "before", track: seen }));
      const [err] = await callbackOf((cb) => analytics.track({ userId: "u", event: "Kept", properties: { a: 1 } }, cb));
      assert.equal(err, undefined);
      assert.equal(seen.calls.length, 1);
      assert.equal(receiver.messages()[0].event, "Kept");
      assert.deepEqual(receiver.messages()[0].properties, { a: 1 });
    });
  });

  test("ctx.cancel() in a plugin drops the message: nothing is sent and no error is reported", async () => {
    await withCollector(async (receiver, make) => {
      const onError = spy();
      const analytics = make({ flushAt: 1, onError });
      const errors = spy();
      analytics.on("error", errors);
      await analytics.register(plugin({
        name: "drop health checks",
        type: "before",
        track: (ctx) => {
          if (ctx.event.event === "Health Check") ctx.cancel();
          return ctx;
        },
      }));
      analytics.track({ userId: "u", event: "Health Check" });
      const [err] = await callbackOf((cb) => analytics.track({ userId: "u", event: "Signed Up" }, cb));
      assert.equal(err, undefined);
      await within(analytics.flush(), 3000, "flush");
      assert.deepEqual(receiver.messages().map((m) => m.event), ["Signed Up"]);
      assert.equal(onError.calls.length, 0);
      assert.equal(errors.calls.length, 0);
    });
  });

  test("an enrichment plugin that throws reports the message through onError and the error event with reason middleware", async () => {
    await withCollector(async (receiver, make) => {
      const onError = spy((_error: DeliveryError, _messages: Message[]) => undefined);
      const analytics = make({ flushAt: 1, onError });
      const errors = spy((_event: ErrorEvent) => undefined);
      analytics.on("error", errors);
      await analytics.register(plugin({
        name: "broken",
        track: () => {
          throw new Error("enrichment broke");
        },
      }));
      let id = "";
      const [err, ctx] = await callbackOf((cb) => {
        id = analytics.track({ userId: "u", event: "Signed Up" }, cb);
      });
      assert.ok(err instanceof DeliveryError);
      assert.equal(err.reason, "middleware");
      assert.equal(ctx.id, id);
      await until(() => errors.calls.length === 1 && onError.calls.length === 1, "error event and onError");
      assert.equal(errors.calls[0][0].code, "delivery_failure");
      assert.equal(errors.calls[0][0].reason.reason, "middleware");
      assert.equal(errors.calls[0][0].ctx.id, id);
      assert.equal(onError.calls[0][0].reason, "middleware");
      assert.deepEqual(onError.calls[0][1].map((m) => m.messageId), [id]);
      await within(analytics.flush(), 3000, "flush");
      assert.equal(receiver.requests.length, 0);
    });
  });

  test("a destination plugin's method gets the message of its type only", async () => {
    await withCollector(async (receiver, make) => {
      const analytics = make({ flushAt: 1 });
      const track = spy((ctx: Ctx) => Promise.resolve(ctx));
      await analytics.register(plugin({ name: "Test Plugin", type: "destination", track }));
      analytics.identify({ userId: "u" });
      const id = analytics.track({ userId: "u", event: "Signed Up" });
      await receiver.waitForMessages(2, 3000);
      await until(() => track.calls.length === 1, "the destination's track");
      assert.equal(track.calls[0][0].event.messageId, id);
      assert.equal(track.calls[0][0].event.event, "Signed Up");
      await delay(50);
      assert.equal(track.calls.length, 1, "identify did not reach track()");
    });
  });

  test("a deregistered plugin no longer runs", async () => {
    await withCollector(async (receiver, make) => {
      const analytics = make({ flushAt: 1 });
      await analytics.register(plugin({
        name: "tagger",
        track: (ctx) => {
          ctx.updateEvent("properties.tagged", true);
          return ctx;
        },
      }));
      await callbackOf((cb) => analytics.track({ userId: "u", event: "Before" }, cb));
      await analytics.deregister("tagger");
      await callbackOf((cb) => analytics.track({ userId: "u", event: "After" }, cb));
      const [before, after] = receiver.messages();
      assert.deepEqual(before.properties, { tagged: true });
      assert.equal(after.properties, undefined);
    });
  });
});

// ---- settings.test.ts

describe("settings.test.ts", () => {
  test("no writeKey: construction succeeds and the first call throws a ValidationError naming writeKey (Tally's form of validateSettings 'should throw an error if no write key')", () => {
    const analytics = createTestAnalytics(undefined, { writeKey: undefined, host: "http://127.0.0.1:9" });
    assert.throws(
      () => analytics.identify({ userId: "u" }),
      (error: unknown) => error instanceof ValidationError && /writeKey/i.test(error.message),
    );
  });

  test("with disable: true no writeKey is needed", async () => {
    const analytics = createTestAnalytics(undefined, { writeKey: undefined, disable: true });
    const [err] = await callbackOf((cb) => analytics.track({ userId: "u", event: "e" }, cb));
    assert.equal(err, undefined);
  });

  test("every analytics-node option name is accepted", async () => {
    await withCollector(async (receiver, make) => {
      const analytics = make({
        writeKey: KEY,
        host: receiver.url,
        path: "/v1/batch",
        maxRetries: 3,
        flushAt: 15,
        flushInterval: 10_000,
        httpRequestTimeout: 10_000,
        disable: false,
        httpClient: forwardingClient(),
        maxTotalBackoffDuration: 43200,
        maxRateLimitDuration: 43200,
      });
      analytics.track({ userId: "u", event: "e" });
      assert.deepEqual(await within(analytics.flush(), 3000, "flush"), { delivered: 1, failed: 0, pending: 0 });
      make({ maxEventsInBatch: 15 });
    });
  });

  const invalid: [Settings, typeof TypeError | typeof RangeError, RegExp][] = [
    [{ flushAt: 0 }, RangeError, /flushAt/],
    [{ maxEventsInBatch: 0 }, RangeError, /maxEventsInBatch/],
    [{ flushInterval: "soon" }, TypeError, /flushInterval/],
    [{ flushInterval: -1 }, RangeError, /flushInterval/],
    [{ maxRetries: -1 }, RangeError, /maxRetries/],
    [{ maxRetries: 1.5 }, TypeError, /maxRetries/],
    [{ httpRequestTimeout: -1 }, RangeError, /httpRequestTimeout/],
    [{ httpRequestTimeout: "10s" }, TypeError, /httpRequestTimeout/],
    [{ httpClient: 42 }, TypeError, /httpClient/],
    [{ httpClient: {} }, TypeError, /httpClient/],
    [{ host: "SHOULD_FAIL" }, TypeError, /host/],
    [{ host: "ftp://example.com" }, TypeError, /host/],
    [{ path: 42 }, TypeError, /path/],
    [{ disable: "yes" }, TypeError, /disable/],
    [{ maxTotalBackoffDuration: -1 }, RangeError, /maxTotalBackoffDuration/],
    [{ maxRateLimitDuration: "1h" }, TypeError, /maxRateLimitDuration/],
    [{ oauthSettings: 42 }, TypeError, /oauthSettings/],
  ];
  for (const [settings, kind, name] of invalid) {
    test(`${JSON.stringify(settings)} throws a ${kind.name} naming the option, without the write key`, () => {
      assert.throws(
        () => createTestAnalytics(undefined, { writeKey: SECRET, ...settings }),
        (error: unknown) => {
          assert.ok(error instanceof kind, `expected a ${kind.name}, got ${error}`);
          if (kind === TypeError) assert.ok(!(error instanceof RangeError));
          assert.match(error.message, name);
          assert.ok(!error.message.includes(SECRET), "the write key is not in the message");
          return true;
        },
      );
    });
  }
});

// ---- typedef-tests.ts

/**
 * tests/fixtures/node_compat_typedefs.ts holds analytics-node's typedef-tests
 * (user code that must, or with `@ts-expect-error` must not, compile) against
 * Tally's real types. It opens with `@ts-nocheck`, so the static `deno check
 * tests/` leaves it alone; here a copy without that line, importing mod.ts by
 * absolute URL, is type-checked once, and each `// case:` section becomes a
 * test that passes when no error falls in it.
 */
const FIXTURES = fileURLToPath(new URL("./fixtures/", import.meta.url));
const TYPEDEFS = join(FIXTURES, "node_compat_typedefs.ts");
const ROOT = join(FIXTURES, "..", "..");
const DENO = join(ROOT, "node_modules", ".bin", "deno");
const canTypecheck = existsSync(TYPEDEFS) && existsSync(DENO) && existsSync(join(ROOT, "mod.ts"));

interface TypeCheck {
  /** Errors inside the fixture, by line. */
  errors: { line: number; text: string }[];
  /** Errors elsewhere (in lib/ itself): they fail every case. */
  elsewhere: string[];
}
let typeCheck: Promise<TypeCheck> | undefined;

function checkTypedefs(): Promise<TypeCheck> {
  typeCheck ??= (async () => {
    const dir = await mkdtemp(join(tmpdir(), "tally-typedefs-"));
    try {
      // Line for line the fixture (so error lines match its cases), checked, with mod.ts by absolute URL.
      const source = readFileSync(TYPEDEFS, "utf8")
        .replace(/^\/\/ @ts-nocheck.*$/m, "//")
        .replaceAll('"../../mod.ts"', JSON.stringify(pathToFileURL(join(ROOT, "mod.ts")).href));
      const copy = join(dir, "node_compat_typedefs.ts");
      await writeFile(copy, source);
      const output = await new Promise<string>((resolve, reject) => {
        execFile(
          DENO,
          ["check", "--config", join(ROOT, "deno.json"), copy],
          { cwd: ROOT, timeout: 120_000, env: { ...process.env, NO_COLOR: "1" } },
          (error, stdout, stderr) => {
            const text = `${stdout}\n${stderr}`;
            if (error && !/\[ERROR\]/.test(text)) {
              reject(new Error(`deno check did not run: ${error.message}\n${text}`));
            } else resolve(text);
          },
        );
      });
      const result: TypeCheck = { errors: [], elsewhere: [] };
      for (const block of output.split(/(?=TS\d{4,5} \[ERROR\])/).filter((b) => /^TS\d/.test(b))) {
        // The block ends at its location line; what follows is deno's summary.
        const at = /node_compat_typedefs\.ts:(\d+):\d+/.exec(block);
        const end = at ? at.index + at[0].length : block.indexOf("\n");
        const text = block.slice(0, end < 0 ? undefined : end).replace(/\s+/g, " ").trim().slice(0, 400);
        if (at) result.errors.push({ line: Number(at[1]), text });
        else result.elsewhere.push(text);
      }
      return result;
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  })();
  return typeCheck;
}

/** The fixture's `// case: NAME` sections, with their line ranges. */
function typedefCases(): { name: string; from: number; to: number; source: string }[] {
  if (!existsSync(TYPEDEFS)) return [];
  const lines = readFileSync(TYPEDEFS, "utf8").split("\n");
  const cases: { name: string; from: number; to: number; source: string }[] = [];
  lines.forEach((line, i) => {
    const match = /^\/\/ case: (.+)$/.exec(line.trim());
    if (!match) return;
    if (cases.length > 0) cases[cases.length - 1].to = i;
    cases.push({ name: match[1], from: i + 1, to: lines.length, source: "" });
  });
  for (const c of cases) c.source = lines.slice(c.from, c.to).join("\n");
  return cases;
}

/** Names the checker says mod.ts does not export (reported on the import lines, in the first case). */
const missingExports = (errors: TypeCheck["errors"]): string[] =>
  errors.flatMap((e) => /has no exported member(?: named)? '(\w+)'/.exec(e.text)?.[1] ?? []);

describe("typedef-tests.ts", () => {
  const skip = canTypecheck ? false : "needs the TypeScript sources and node_modules/.bin/deno (not in the npm build)";
  const cases = typedefCases();
  test("the typedef fixture has its cases", { skip }, () => {
    assert.ok(cases.length >= 8, `found ${cases.length} cases in ${TYPEDEFS}`);
  });
  for (const [i, { name, from, to, source }] of cases.entries()) {
    const deliberate = name.includes("require either userId or anonymousId")
      ? "Tally's params types keep userId and anonymousId optional (the seed's positional style takes null ids); a call with neither is a ValidationError at run time"
      : false;
    test(`typedef: ${name}`, { skip: skip || deliberate }, async () => {
      const { errors, elsewhere } = await checkTypedefs();
      const mine = errors.filter((e) => e.line >= from && e.line <= to).map((e) => `line ${e.line}: ${e.text}`);
      // An unresolved import type-checks as anything, so a case that uses one proves nothing: it fails too.
      const uses = i === 0 ? [] : missingExports(errors).filter((n) => new RegExp(`\\b${n}\\b`).test(source));
      assert.deepEqual([...elsewhere, ...mine, ...uses.map((n) => `uses ${n}, which mod.ts does not export`)], []);
    });
  }
});

// ---- plugins/segmentio/__tests__/publisher.test.ts

describe("plugins/segmentio/__tests__/publisher.test.ts", () => {
  const aliasCall = (analytics: NodeAnalytics, callback?: NodeCallback): string =>
    analytics.alias({ userId: "to", previousId: "from" }, callback);

  test("one request carries a track, an alias and an identify when flushAt is 3 (mirrors 'supports multiple events in a batch')", async () => {
    await withCollector(async (receiver, make) => {
      const analytics = make({ maxRetries: 3, flushAt: 3, flushInterval: 10_000 });
      const ctxs: Ctx[] = [];
      const cb: NodeCallback = (_err, ctx) => void ctxs.push(ctx);
      analytics.track({ event: "test event", properties: { foo: "bar" }, userId: "foo-user-id" }, cb);
      analytics.alias({ userId: "to", previousId: "from" }, cb);
      analytics.identify({ userId: "foo-user-id", traits: { name: "Chris Radek" } }, cb);
      await receiver.waitForMessages(3, 2000);
      assert.equal(receiver.requests.length, 1);
      assert.deepEqual(batchOf(receiver, 0).map((m) => m.type), ["track", "alias", "identify"]);
      await until(() => ctxs.length === 3, "three callbacks");
      assert.deepEqual(
        batchOf(receiver, 0),
        ["track", "alias", "identify"].map((type) => json(ctxs.find((c) => c.event.type === type)!.event)),
        "each message as its ctx.event",
      );
    });
  });

  test("a partial batch waits for flushInterval, then goes out (mirrors 'supports waiting a max amount of time before sending')", async () => {
    await withCollector(async (receiver, make) => {
      const analytics = make({ maxRetries: 3, flushAt: 3, flushInterval: 400 });
      const start = Date.now();
      const done = callbackOf((cb) => aliasCall(analytics, cb), 3000);
      await delay(200);
      assert.equal(receiver.requests.length, 0, "not before the interval");
      await receiver.waitForMessages(1, 2000);
      assert.ok(Date.now() - start >= 350, `sent after ${Date.now() - start} ms`);
      const [err, ctx] = await done;
      assert.equal(err, undefined);
      assert.equal(ctx.failedDelivery(), undefined);
      assert.equal(receiver.requests.length, 1);
    });
  });

  test("a full batch goes out at once and the rest after flushInterval (mirrors 'sends as soon as batch fills up or max time is reached')", async () => {
    await withCollector(async (receiver, make) => {
      const analytics = make({ maxRetries: 3, flushAt: 2, flushInterval: 400 });
      const done = [0, 1, 2].map(() => callbackOf((cb) => aliasCall(analytics, cb), 3000));
      await receiver.waitForMessages(2, 300);
      assert.deepEqual(batchSizes(receiver), [2], "the full batch, without waiting");
      await delay(150);
      assert.equal(receiver.requests.length, 1, "the partial batch waits");
      await receiver.waitForMessages(3, 2000);
      assert.deepEqual(batchSizes(receiver), [2, 1]);
      for (const [err, ctx] of await Promise.all(done)) {
        assert.equal(err, undefined);
        assert.equal(ctx.failedDelivery(), undefined);
      }
    });
  });

  test("20 calls with flushAt 10 go out as two requests of 10 at once, without waiting for flushInterval (issue 8)", async () => {
    await withCollector(async (receiver, make) => {
      const analytics = make({ flushAt: 10, flushInterval: 10_000 });
      for (let i = 0; i < 20; i++) analytics.track({ userId: "u", event: "e", properties: { i } });
      await receiver.waitForMessages(20, 1000);
      assert.deepEqual(batchSizes(receiver), [10, 10]);
      assert.deepEqual(receiver.messages().map((m) => (m.properties as { i: number }).i), [...Array(20).keys()]);
    });
  });

  test("a batch goes out before flushInterval when the next message would take it over the byte limit (mirrors 'sends if batch will exceed max size in bytes when adding event')", async () => {
    await withCollector(async (receiver, make) => {
      // analytics-node cuts at ~480 KB (16 x 30 KB); Tally at Segment's 500 KB (512000 bytes), so 20 messages.
      const analytics = make({ maxRetries: 3, flushAt: 25, flushInterval: 10_000 });
      const pad = "x".repeat(30 * 1024);
      const done = Array.from(
        { length: 20 },
        (_, index) =>
          callbackOf(
            (cb) => analytics.track({ event: "Test Event", properties: { pad, index }, anonymousId: "foo" }, cb),
            5000,
          ),
      );
      await within(until(() => receiver.requests.length >= 1, "the first request", 2000), 3000, "the first request");
      await analytics.flush();
      assert.equal(receiver.requests.length, 2);
      assert.equal(batchSizes(receiver).reduce((a, b) => a + b, 0), 20);
      for (const r of receiver.requests) assert.ok(r.wireBytes <= 512000, `a request of ${r.wireBytes} bytes`);
      for (const [err, ctx] of await Promise.all(done)) {
        assert.equal(err, undefined);
        assert.equal(ctx.failedDelivery(), undefined);
      }
    });
  });

  describe("flushAfterClose", () => {
    test("closeAndFlush() sends what is queued at once, whatever flushAt is (mirrors 'sends immediately once all pending events reach the segment plugin, regardless of settings like batch size')", async () => {
      await withCollector(async (receiver, make) => {
        const analytics = make({ flushAt: 20, flushInterval: 10_000 });
        trackCall(analytics);
        trackCall(analytics);
        trackCall(analytics);
        await delay(20);
        assert.equal(receiver.requests.length, 0);
        const start = performance.now();
        await within(Promise.resolve(analytics.closeAndFlush()), 3000, "closeAndFlush");
        assert.ok(performance.now() - start < 1000);
        assert.deepEqual(batchSizes(receiver), [3]);
      });
    });

    test("with flushAt 1 each message is its own request through close (mirrors 'continues to flush on each event if batch size is 1')", async () => {
      await withCollector(async (receiver, make) => {
        const analytics = make({ flushAt: 1, flushInterval: 10_000 });
        trackCall(analytics);
        trackCall(analytics);
        trackCall(analytics);
        await within(Promise.resolve(analytics.closeAndFlush()), 3000, "closeAndFlush");
        assert.deepEqual(batchSizes(receiver), [1, 1, 1]);
      });
    });

    test("five calls with flushAt 3 go out as 3 at once and 2 on close (mirrors 'sends immediately once there are no pending items, even if pending events exceeds batch size')", async () => {
      await withCollector(async (receiver, make) => {
        const analytics = make({ flushAt: 3, flushInterval: 10_000 });
        for (let i = 0; i < 5; i++) trackCall(analytics);
        await receiver.waitForMessages(3, 1000);
        assert.deepEqual(batchSizes(receiver), [3]);
        await within(Promise.resolve(analytics.closeAndFlush()), 3000, "closeAndFlush");
        assert.deepEqual(batchSizes(receiver), [3, 2]);
      });
    });

    test("works if there are previous items in the batch", {
      skip: "drives the private publisher.flush(pendingCount) with events still arriving; the public behaviour is " +
        "covered by the closeAndFlush tests (graceful-shutdown and above)",
    }, () => {});

    test("works if there are previous items in the batch AND pending items > batch size", {
      skip: "drives the private publisher.flush(pendingCount); covered through closeAndFlush above",
    }, () => {});
  });

  describe("error handling", () => {
    test("excludes events that are too large", {
      skip: "analytics-node reports a message over 32 KB through the callback; in Tally it is a programmer error " +
        "thrown at the call (DESIGN 2.3), checked by the next test",
    }, () => {});

    test("a message over 32 KB is refused at the call with a ValidationError and nothing is sent (Tally's form of 'excludes events that are too large')", async () => {
      await withCollector(async (receiver, make) => {
        const analytics = make({ flushAt: 1 });
        assert.throws(
          () =>
            analytics.track({
              event: "Test Event",
              properties: { largeBuffer: "x".repeat(500 * 1024) },
              anonymousId: "foo",
            }),
          (error: unknown) => error instanceof ValidationError && /32768|32 KB/.test(error.message),
        );
        await analytics.flush();
        assert.equal(receiver.requests.length, 0);
      });
    });

    test("a 400 is not retried and fails the message (mirrors 'does not retry 400 errors')", async () => {
      await withCollector(async (receiver, make) => {
        receiver.setDefault({ status: 400 });
        const analytics = make({ flushAt: 1 });
        const [err, ctx] = await callbackOf((cb) => aliasCall(analytics, cb));
        assert.equal(receiver.requests.length, 1);
        assert.ok(ctx.failedDelivery());
        assert.ok(err instanceof DeliveryError);
        assert.equal(err.status, 400);
        assert.match(err.message, /400/);
        assert.deepEqual(batchOf(receiver, 0), [json(ctx.event)]);
      });
    });

    test("a 429 with Retry-After keeps the batch pending until the retry succeeds (mirrors '429 with Retry-After keeps batch pending until retry succeeds')", async () => {
      await withCollector(async (receiver, make) => {
        receiver.reply({ status: 429, headers: { "Retry-After": "1" } });
        const analytics = make({ maxRetries: 3, flushAt: 1, maxRetryDelay: 2 });
        const [err, ctx] = await callbackOf((cb) => aliasCall(analytics, cb), 5000);
        assert.equal(err, undefined);
        assert.equal(ctx.failedDelivery(), undefined);
        assert.equal(receiver.requests.length, 2);
      });
    });

    test("500s are retried maxRetries times, then the message fails with the status (mirrors 'retries 500 errors')", async () => {
      await withCollector(async (receiver, make) => {
        receiver.setDefault({ status: 500 });
        const analytics = make({ maxRetries: 2, flushAt: 1 });
        const [err, ctx] = await callbackOf((cb) => aliasCall(analytics, cb));
        assert.equal(receiver.requests.length, 3);
        assert.ok(ctx.failedDelivery());
        assert.ok(ctx.failedDelivery()?.reason instanceof Error);
        assert.ok(err instanceof DeliveryError);
        assert.match(err.message, /500/);
      });
    });

    test("a 1xx final answer from an httpClient is retried like a server error (mirrors 'retries 1xx (<200) statuses (not a valid final response)')", async () => {
      // No real server can give a 1xx as its final answer; only an httpClient can, which is the point here.
      const makeRequest = spy((_options: HttpClientRequest) =>
        Promise.resolve({ status: 100, statusText: "Continue" })
      );
      const analytics = createTestAnalytics(undefined, { maxRetries: 2, flushAt: 1, httpClient: { makeRequest } });
      try {
        const [err, ctx] = await callbackOf((cb) => aliasCall(analytics, cb));
        assert.equal(makeRequest.calls.length, 3, "1 request + 2 retries");
        assert.ok(ctx.failedDelivery());
        assert.ok(err instanceof DeliveryError);
      } finally {
        await within(Promise.resolve(analytics.closeAndFlush({ timeout: 200 })), 1000, "closeAndFlush").catch(() => {});
      }
    });

    test("dropped connections are retried, then the message fails with reason network (mirrors 'retries fetch errors')", async () => {
      await withCollector(async (receiver, make) => {
        receiver.setDefault({ drop: true });
        const analytics = make({ maxRetries: 2, flushAt: 1 });
        const [err, ctx] = await callbackOf((cb) => analytics.alias({ userId: "my", previousId: "from" }, cb));
        assert.equal(receiver.requests.length, 3);
        assert.ok(ctx.failedDelivery());
        assert.ok(err instanceof DeliveryError);
        assert.equal(err.reason, "network");
      });
    });

    test("with maxRetries 0 a dropped connection is tried once (mirrors 'should fetch only once if maxRetries is 0')", async () => {
      await withCollector(async (receiver, make) => {
        receiver.setDefault({ drop: true });
        const analytics = make({ maxRetries: 0, flushAt: 1 });
        await callbackOf((cb) => trackCall(analytics, cb));
        assert.equal(receiver.requests.length, 1);
      });
    });
  });

  describe("http_request emitter event", () => {
    test("http_request carries the request of one message (mirrors 'should emit an http_request object')", async () => {
      await withCollector(async (_receiver, make) => {
        const analytics = make({ flushAt: 1 });
        const onRequest = spy((_event: HttpRequestEvent) => undefined);
        analytics.on("http_request", onRequest);
        await callbackOf((cb) => analytics.track({ event: "foo", userId: "foo-user-id" }, cb));
        assertHttpRequestEmittedEvent(onRequest.calls[onRequest.calls.length - 1][0]);
      });
    });
  });

  describe("retry semantics", () => {
    const retryCounts = (receiver: Receiver): (string | undefined)[] =>
      receiver.requests.map((r) => r.headers["x-retry-count"]);
    /** What the callback of one tracked message (flushAt 1) gets. */
    async function trackAfter(
      make: Make,
      settings: Settings,
      ms = 5000,
    ): Promise<[DeliveryError | undefined, Ctx]> {
      const analytics = make({ flushAt: 1, ...settings });
      return await callbackOf(
        (cb) => analytics.track({ event: "test event", properties: { foo: "bar" }, userId: "foo-user-id" }, cb),
        ms,
      );
    }

    test("T01 Success: no retry, no X-Retry-Count", async () => {
      await withCollector(async (receiver, make) => {
        const [err] = await trackAfter(make, {});
        assert.equal(err, undefined);
        assert.deepEqual(retryCounts(receiver), [undefined]);
      });
    });

    test("T02 Retryable 500: retried with X-Retry-Count 1, 2", async () => {
      await withCollector(async (receiver, make) => {
        receiver.reply({ status: 500 }, { status: 500 });
        const [err] = await trackAfter(make, { maxRetries: 3 });
        assert.equal(err, undefined);
        assert.deepEqual(retryCounts(receiver), [undefined, "1", "2"]);
      });
    });

    for (const [id, status] of [["T03", 501], ["T04", 505]] as const) {
      test(`${id} Non-retryable 5xx: ${status}`, async () => {
        await withCollector(async (receiver, make) => {
          receiver.setDefault({ status });
          const [err, ctx] = await trackAfter(make, { maxRetries: 3 });
          assert.deepEqual(retryCounts(receiver), [undefined]);
          assert.ok(ctx.failedDelivery());
          assert.ok(err instanceof DeliveryError);
          assert.match(err.message, new RegExp(String(status)));
        });
      });
    }

    test("T05 Non-retryable 5xx: 511 (no auth)", {
      skip: "Tally retries every 5xx but 501 and 505 (DESIGN 2.4; the issue 8 contract: '5xx and 429 retried')",
    }, () => {});

    test("T05b 5xx: 511 with token manager retries and clears token", {
      skip: "injects a private _tokenManager into the publisher; OAuth has its own suite",
    }, () => {});

    test("T06 429 with Retry-After: waits, then retries without consuming the retry budget", async () => {
      await withCollector(async (receiver, make) => {
        receiver.reply({ status: 429, headers: { "Retry-After": "1" } });
        const [err] = await trackAfter(make, { maxRetries: 3, maxRetryDelay: 2 });
        assert.equal(err, undefined);
        assert.deepEqual(retryCounts(receiver), [undefined, "1"]);
        const waited = receiver.requests[1].at - receiver.requests[0].at;
        assert.ok(waited >= 900, `retried after ${waited} ms`);
      });
    });

    for (const [id, status] of [["T07", 408], ["T08", 503]] as const) {
      test(`${id} ${status} with Retry-After is retried once (analytics-node ignores its Retry-After and backs off; Tally honours it, capped by maxRetryDelay)`, async () => {
        await withCollector(async (receiver, make) => {
          receiver.reply({ status, headers: { "Retry-After": "1" } });
          const [err] = await trackAfter(make, { maxRetries: 3 });
          assert.equal(err, undefined);
          assert.deepEqual(retryCounts(receiver), [undefined, "1"]);
        });
      });
    }

    for (const [id, status] of [["T09", 429], ["T10", 408], ["T11", 410], ["T13", 460]] as const) {
      test(`${id} Retryable: ${status} without Retry-After is retried with backoff`, async () => {
        await withCollector(async (receiver, make) => {
          receiver.reply({ status });
          const [err] = await trackAfter(make, { maxRetries: 3 });
          assert.equal(err, undefined);
          assert.deepEqual(retryCounts(receiver), [undefined, "1"]);
          assert.ok(receiver.requests[1].at >= receiver.requests[0].at);
        });
      });
    }

    test("T12 413 on a one-message batch is not retried (Tally splits a larger batch in half instead, DESIGN 2.4)", async () => {
      await withCollector(async (receiver, make) => {
        receiver.setDefault({ status: 413 });
        const [err, ctx] = await trackAfter(make, { maxRetries: 3 });
        assert.deepEqual(retryCounts(receiver), [undefined]);
        assert.ok(ctx.failedDelivery());
        assert.ok(err instanceof DeliveryError);
        assert.match(err.message, /413/);
      });
    });

    for (const status of [404, 400, 401, 403]) {
      test(`T14/T19 Non-retryable 4xx: ${status}`, async () => {
        await withCollector(async (receiver, make) => {
          receiver.setDefault({ status });
          const [err, ctx] = await trackAfter(make, { maxRetries: 3 });
          assert.deepEqual(retryCounts(receiver), [undefined]);
          assert.ok(ctx.failedDelivery());
          assert.ok(err instanceof DeliveryError);
          assert.equal(err.reason, "http_status");
          assert.equal(err.status, status);
          assert.match(err.message, new RegExp(String(status)));
        });
      });
    }

    test("T15 Network error (IO): retried with backoff", async () => {
      await withCollector(async (receiver, make) => {
        receiver.reply({ drop: true });
        const [err] = await trackAfter(make, { maxRetries: 3 });
        assert.equal(err, undefined);
        assert.deepEqual(retryCounts(receiver), [undefined, "1"]);
      });
    });

    test("T16 Max retries exhausted (backoff): maxRetries + 1 attempts", async () => {
      await withCollector(async (receiver, make) => {
        receiver.setDefault({ status: 500 });
        const [err, ctx] = await trackAfter(make, { maxRetries: 2 });
        assert.deepEqual(retryCounts(receiver), [undefined, "1", "2"]);
        assert.ok(ctx.failedDelivery());
        assert.ok(err instanceof DeliveryError);
      });
    });

    test("T17 429 with Retry-After retries without consuming the retry budget: delivered even with maxRetries 0", async () => {
      await withCollector(async (receiver, make) => {
        receiver.reply({ status: 429, headers: { "Retry-After": "1" } });
        // analytics-node's test uses maxRetries 1, where a counted retry would pass too; 0 tells them apart.
        const [err] = await trackAfter(make, { maxRetries: 0, maxRetryDelay: 2 });
        assert.equal(err, undefined);
        assert.deepEqual(retryCounts(receiver), [undefined, "1"]);
      });
    });

    test("T18 X-Retry-Count semantics across mixed retries: 408, then 500, then success", async () => {
      await withCollector(async (receiver, make) => {
        receiver.reply({ status: 408 }, { status: 500 });
        const [err] = await trackAfter(make, { maxRetries: 3 });
        assert.equal(err, undefined);
        assert.deepEqual(retryCounts(receiver), [undefined, "1", "2"]);
      });
    });

    test("T20 Authorization header uses Basic auth when no OAuth", async () => {
      await withCollector(async (receiver, make) => {
        await trackAfter(make, { writeKey: "test-write-key" });
        assert.equal(receiver.requests[0].headers["authorization"], `Basic ${btoa("test-write-key:")}`);
      });
    });

    test("T21 Safety cap: a persistent 429 with Retry-After eventually fails (bounded by maxRateLimitDuration)", async () => {
      await withCollector(async (receiver, make) => {
        receiver.setDefault({ status: 429, headers: { "Retry-After": "1" } });
        const start = Date.now();
        const [err, ctx] = await trackAfter(make, {
          maxRetries: 0,
          maxRetryDelay: 2,
          maxRateLimitDuration: 1.5,
        }, 6000);
        assert.ok(receiver.requests.length > 1, `${receiver.requests.length} requests`);
        assert.ok(ctx.failedDelivery());
        assert.ok(err instanceof DeliveryError);
        assert.equal(err.status, 429);
        assert.ok(Date.now() - start < 4000, `failed after ${Date.now() - start} ms`);
      });
    });

    test("T22 a Retry-After over the cap is cut to it: Tally's cap is maxRetryDelay (analytics-node's is a fixed 300 s)", async () => {
      await withCollector(async (receiver, make) => {
        receiver.reply({ status: 429, headers: { "Retry-After": "600" } });
        const [err] = await trackAfter(make, { maxRetries: 1, maxRetryDelay: 0.3 }, 5000);
        assert.equal(err, undefined);
        assert.equal(receiver.requests.length, 2);
        const waited = receiver.requests[1].at - receiver.requests[0].at;
        assert.ok(waited >= 250 && waited < 3000, `retried after ${waited} ms`);
      });
    });

    test("T04 a 429 pauses the whole client: no other batch is sent while one waits out Retry-After", async () => {
      await withCollector(async (receiver, make) => {
        receiver.reply({ status: 429, headers: { "Retry-After": "1" } });
        const analytics = make({ maxRetries: 3, flushAt: 1, maxRetryDelay: 2 });
        const first = callbackOf((cb) => trackCall(analytics, cb), 5000);
        await receiver.waitForMessages(1, 2000);
        await delay(200); // the 429 is in
        const second = callbackOf((cb) => trackCall(analytics, cb), 5000);
        await delay(300);
        assert.equal(receiver.requests.length, 1, "the second batch waits for the Retry-After too");
        const [[err1, ctx1], [err2, ctx2]] = await Promise.all([first, second]);
        assert.equal(err1, undefined);
        assert.equal(err2, undefined);
        assert.equal(ctx1.failedDelivery(), undefined);
        assert.equal(ctx2.failedDelivery(), undefined);
        assert.equal(receiver.requests.length, 3);
        for (const r of receiver.requests.slice(1)) {
          assert.ok(r.at - receiver.requests[0].at >= 900, `sent ${r.at - receiver.requests[0].at} ms after the 429`);
        }
      });
    });

    test("T19 maxTotalBackoffDuration: a batch is given up once it has retried for that long", async () => {
      await withCollector(async (receiver, make) => {
        receiver.setDefault({ status: 500 });
        const start = Date.now();
        const [err, ctx] = await trackAfter(make, { maxRetries: 100, maxTotalBackoffDuration: 1 }, 6000);
        const elapsed = Date.now() - start;
        assert.ok(ctx.failedDelivery());
        assert.ok(err instanceof DeliveryError);
        assert.match(err.message, /500/);
        assert.ok(elapsed >= 800, `gave up after ${elapsed} ms`);
        assert.ok(elapsed < 3000, `gave up after ${elapsed} ms`);
        assert.ok(
          receiver.requests.length > 1 && receiver.requests.length < 100,
          `${receiver.requests.length} requests`,
        );
      });
    });

    test("T20 maxRateLimitDuration: a batch rate-limited for longer than that is given up without waiting out Retry-After", async () => {
      await withCollector(async (receiver, make) => {
        receiver.setDefault({ status: 429, headers: { "Retry-After": "60" } });
        const start = Date.now();
        // maxRetryDelay raised so the 60 s Retry-After is not cut down by it.
        const [err, ctx] = await trackAfter(make, { maxRetries: 3, maxRetryDelay: 120, maxRateLimitDuration: 1 }, 5000);
        assert.ok(ctx.failedDelivery());
        assert.ok(err instanceof DeliveryError);
        assert.equal(err.status, 429);
        assert.equal(receiver.requests.length, 1, "only the first request");
        assert.ok(Date.now() - start < 3000, `failed after ${Date.now() - start} ms`);
      });
    });
  });
});
