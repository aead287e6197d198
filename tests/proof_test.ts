/**
 * The breaks an adversarial review found (issue "Proof", section 0), one test
 * each: an endless answer, redirects, hostile values, middleware that returns
 * garbage, a burst far past maxQueueSize, a throwing logger, a 200 that says
 * it failed after whitespace, close({ timeout }) counts, and short keys.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { createServer, type IncomingMessage, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { Analytics, type DeliveryError, type Logger, type Message, ValidationError } from "../mod.ts";
import { redact } from "../lib/redact.ts";
import { startReceiver } from "./receiver.ts";

const FAST = { minRetryDelay: 0.01, maxRetryDelay: 0.05 } as const;

/** A server on 127.0.0.1 answering every request with `handler`; counts requests and bytes it wrote. */
async function startServer(handler: (req: IncomingMessage, res: ServerResponse, state: { written: number }) => void) {
  const state = { requests: 0, written: 0, closed: 0 };
  const server = createServer((req, res) => {
    state.requests++;
    res.on("close", () => void state.closed++);
    req.resume();
    req.on("end", () => handler(req, res, state));
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    state,
    stop: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections?.();
        server.close(() => resolve());
      }),
  };
}

test("a 200 with an endless body is delivered after reading a few KB, and the body is cancelled", async () => {
  const chunk = "x".repeat(64 * 1024);
  const timers = new Set<ReturnType<typeof setInterval>>();
  const server = await startServer((_req, res, state) => {
    res.writeHead(200, { "content-type": "application/json" });
    res.write('{"success":true}');
    const timer = setInterval(() => {
      if (res.destroyed || state.written > 256 * 1024 * 1024) return clearInterval(timer);
      res.write(chunk);
      state.written += chunk.length;
    }, 1);
    timers.add(timer);
    res.on("close", () => clearInterval(timer));
  });
  const analytics = new Analytics({ writeKey: "KEY", host: server.url, maxRetries: 0 });
  try {
    analytics.track("u1", "Endless Answer");
    assert.deepEqual(await analytics.flush({ timeout: 5000 }), { delivered: 1, failed: 0, pending: 0 });
    const end = Date.now() + 3000;
    while (server.state.closed < 1 && Date.now() < end) await new Promise((r) => setTimeout(r, 10));
    assert.equal(server.state.closed, 1, "the client cancelled the answer");
    assert.ok(
      server.state.written < 64 * 1024 * 1024,
      `the server wrote ${server.state.written} bytes before the close`,
    );
  } finally {
    for (const timer of timers) clearInterval(timer);
    await analytics.close({ timeout: 100 });
    await server.stop();
  }
});

test("a redirect is never followed: reported once, not retried, naming the Location; the other host hears nothing", async () => {
  const elsewhere = await startReceiver();
  for (const status of [301, 302, 303, 307, 308]) {
    const server = await startServer((_req, res) => {
      res.writeHead(status, { location: `${elsewhere.url}/v1/batch` });
      res.end();
    });
    const errors: DeliveryError[] = [];
    const analytics = new Analytics({
      writeKey: "wk_live_secret_0123456789",
      host: server.url,
      ...FAST,
      onError: (error) => void errors.push(error),
    });
    try {
      analytics.track("u1", "Redirected");
      assert.deepEqual(await analytics.flush(), { delivered: 0, failed: 1, pending: 0 }, `status ${status}`);
      assert.equal(server.state.requests, 1, `${status} is not retried`);
      assert.equal(errors.length, 1);
      assert.equal(errors[0].reason, "http_status");
      assert.equal(errors[0].status, status);
      assert.ok(errors[0].message.includes(elsewhere.url), errors[0].message);
      assert.match(errors[0].message, /redirects are not followed/);
    } finally {
      await analytics.close({ timeout: 100 });
      await server.stop();
    }
  }
  assert.equal(elsewhere.requests.length, 0, "neither the body nor the write key went to the other host");
  await elsewhere.stop();
});

// ---------------------------------------------------------------- hostile values

function deep(levels: number): Record<string, unknown> {
  let value: Record<string, unknown> = { leaf: 1 };
  for (let i = 0; i < levels; i++) value = { a: value };
  return value;
}

const throwing = (): never => {
  throw new Error("boom");
};

test("hostile values are a ValidationError from the call, never a raw error", () => {
  const analytics = new Analytics({ send: false });
  const revoked = Proxy.revocable({}, {});
  revoked.revoke();
  const badDate = new Date();
  badDate.toISOString = throwing;
  badDate.getTime = throwing;
  const cases: [string, () => unknown][] = [
    ["a toJSON that throws", () => analytics.track("u", "E", { v: { toJSON: throwing } })],
    [
      "a getter that throws",
      () => analytics.track("u", "E", Object.defineProperty({}, "v", { enumerable: true, get: throwing })),
    ],
    [
      "a Proxy whose traps throw",
      () => analytics.track("u", "E", new Proxy({}, { ownKeys: throwing, get: throwing, getPrototypeOf: throwing })),
    ],
    ["a revoked Proxy as properties", () => analytics.track("u", "E", revoked.proxy as never)],
    ["a revoked Proxy as the params", () => analytics.track(revoked.proxy as never)],
    ["a revoked Proxy deep inside", () => analytics.track("u", "E", { a: { b: revoked.proxy } })],
    ["a Date whose methods throw, as the timestamp", () => analytics.track("u", "E", {}, { timestamp: badDate })],
    ["a Date whose methods throw, inside", () => analytics.track("u", "E", { when: badDate })],
    [
      "a Map with a key that cannot be a string",
      () => analytics.track("u", "E", { m: new Map([[{ toString: throwing }, 1]]) }),
    ],
    [
      "params whose getter throws",
      () => analytics.track(Object.defineProperty({ event: "E" }, "userId", { get: throwing }) as never),
    ],
  ];
  for (const [name, call] of cases) {
    assert.throws(call, (error: unknown) => {
      assert.ok(error instanceof ValidationError, `${name}: ${error}`);
      assert.ok(typeof error.field === "string", name);
      return true;
    }, name);
  }
  // Deep nesting: fine up to 1000 levels, a ValidationError past them on every runtime, even where JSON.stringify
  // would cope; never "Maximum call stack size exceeded" from the call.
  assert.doesNotThrow(() => analytics.track("u", "E", deep(990)));
  for (const levels of [1001, 4000, 5000, 6000, 20000]) {
    assert.throws(() => analytics.track("u", "E", deep(levels)), (error: unknown) => {
      assert.ok(error instanceof ValidationError, `${levels} levels: ${error}`);
      assert.match(error.message, /nested more than 1000 levels deep/);
      return true;
    });
  }
});

test("properties, traits, context and integrations are always JSON objects on the wire", () => {
  const analytics = new Analytics({ send: false });
  class Point {
    constructor(readonly x: number) {}
  }
  const refused: [string, () => unknown][] = [
    ["a Date", () => analytics.track("u", "E", new Date() as never)],
    ["a Set", () => analytics.identify("u", new Set([1]) as never)],
    ["a boxed number", () => analytics.track("u", "E", new Number(1) as never)],
    ["a boxed string", () => analytics.track({ userId: "u", event: "E", context: new String("x") as never })],
    ["a toJSON returning a string", () => analytics.group("u", "g", { toJSON: () => "text" } as never)],
    ["a toJSON returning undefined", () => analytics.track("u", "E", {}, { context: { toJSON: () => undefined } })],
    [
      "a toJSON returning an array",
      () => analytics.track("u", "E", {}, { integrations: { toJSON: () => [] } as never }),
    ],
  ];
  for (const [name, call] of refused) assert.throws(call, ValidationError, name);
  // What is an object stays one, and context.library survives a toJSON.
  const seen: Message[] = [];
  analytics.use((m) => {
    seen.push(m);
    return m;
  });
  analytics.track("u", "E", new Point(3) as never, { context: { toJSON: () => ({ ip: "1.2.3.4" }) } });
  analytics.track("u", "E", new Map([["k", 1]]) as never);
  assert.deepEqual(seen[0].properties, { x: 3 });
  assert.deepEqual(seen[0].context, { ip: "1.2.3.4", library: seen[0].context.library });
  assert.equal(seen[0].context.library.name, "@tally/analytics");
  assert.deepEqual(seen[1].properties, { k: 1 });
});

test("a timestamp past the year 9999 is refused, not sent as +275760-...", () => {
  const analytics = new Analytics({ send: false });
  assert.throws(() => analytics.track("u", "E", {}, { timestamp: new Date(8.64e15) }), /year 275760/);
  assert.throws(() => analytics.track("u", "E", {}, { timestamp: new Date(Date.UTC(10000, 0, 1)) }), ValidationError);
  assert.doesNotThrow(() => analytics.track("u", "E", {}, { timestamp: new Date(Date.UTC(9999, 11, 31)) }));
  // An offset can carry a string across the edge too.
  assert.throws(() => analytics.track("u", "E", {}, { timestamp: "9999-12-31T23:59:59.999-01:00" }), /year 10000/);
  assert.throws(() => analytics.track("u", "E", {}, { timestamp: "0000-01-01T00:00:00+01:00" }), /year -1/);
});

// ---------------------------------------------------------------- middleware

test("middleware that returns anything but a message is reported with reason middleware; async middleware works", async () => {
  const receiver = await startReceiver();
  const errors: DeliveryError[] = [];
  const results: unknown[] = [
    "text",
    42,
    [1, 2],
    new Date(),
    {},
    "type-less",
    "id-less",
  ];
  try {
    for (const result of results) {
      const analytics = new Analytics({ writeKey: "KEY", host: receiver.url, onError: (e) => void errors.push(e) });
      analytics.use((m) => {
        if (result === "type-less") return { ...m, type: undefined } as never;
        if (result === "id-less") return { ...m, messageId: undefined } as never;
        return result as never;
      });
      analytics.track("u1", "Garbage");
      assert.deepEqual(await analytics.close(), { delivered: 0, failed: 0, pending: 0 });
    }
    assert.equal(receiver.requests.length, 0, "nothing was sent");
    assert.equal(errors.length, results.length);
    for (const error of errors) assert.equal(error.reason, "middleware", error.message);

    const analytics = new Analytics({ writeKey: "KEY", host: receiver.url });
    analytics.use(async (m) => {
      await new Promise((resolve) => setTimeout(resolve, 10));
      return { ...m, properties: { enriched: true } };
    });
    analytics.track("u1", "Async");
    assert.deepEqual(await analytics.close(), { delivered: 1, failed: 0, pending: 0 });
    assert.deepEqual(receiver.messages()[0].properties, { enriched: true });
  } finally {
    await receiver.stop();
  }
});

// ---------------------------------------------------------------- bounded drops

test("a burst far past maxQueueSize reports every drop, in onError calls of at most 1000 messages", async () => {
  const sizes: number[] = [];
  const analytics = new Analytics({
    writeKey: "KEY",
    host: "http://127.0.0.1:9",
    send: true,
    maxQueueSize: 100,
    uploadInterval: 600,
    uploadSize: 2500,
    onError: (error, messages) => {
      if (error.reason === "queue_full") sizes.push(messages.length);
    },
  });
  const calls = 50_000;
  let sizesDuringBurst = 0;
  for (let i = 0; i < calls; i++) {
    analytics.track("u1", "Burst", { i });
    if (i === calls - 1) sizesDuringBurst = sizes.length;
  }
  await new Promise((resolve) => setTimeout(resolve, 0));
  assert.ok(sizesDuringBurst > 0, "drops were reported while the burst ran, not all held to its end");
  assert.ok(Math.max(...sizes) <= 1000, `the largest report held ${Math.max(...sizes)} messages`);
  assert.equal(sizes.reduce((a, b) => a + b, 0), calls - 100, "every drop reported once");
  assert.equal(analytics.stats().dropped, calls - 100);
  await analytics.close({ timeout: 50 });
});

// ---------------------------------------------------------------- logging never breaks delivery

test("a logger that throws never makes flush() hang or a call throw", async () => {
  const receiver = await startReceiver();
  const bad: Logger = { debug: throwing, info: throwing, warn: throwing, error: throwing };
  try {
    const quiet = new Analytics({ writeKey: "KEY", host: receiver.url, logger: bad, maxRetries: 0 });
    receiver.reply({ status: 400 });
    quiet.track("u1", "Refused, logged by a throwing logger");
    const result = await Promise.race([
      quiet.flush(),
      new Promise((resolve) => setTimeout(() => resolve("hung"), 3000)),
    ]);
    assert.deepEqual(result, { delivered: 0, failed: 1, pending: 0 });

    const chatty = new Analytics({ writeKey: "KEY", host: receiver.url, logger: bad, debug: true });
    assert.doesNotThrow(() => chatty.track("u1", "Debug logged by a throwing logger"));
    assert.deepEqual(await chatty.flush(), { delivered: 1, failed: 0, pending: 0 });
    await quiet.close();
    await chatty.close();
  } finally {
    await receiver.stop();
  }
});

// ---------------------------------------------------------------- small ones

test('a 200 whose body is whitespace then {"success":false} is a failure', async () => {
  const receiver = await startReceiver();
  const analytics = new Analytics({ writeKey: "KEY", host: receiver.url, onError: () => {} });
  try {
    receiver.reply({ status: 200, body: '\n  \t{"success":false}' });
    analytics.track("u1", "E");
    assert.deepEqual(await analytics.flush(), { delivered: 0, failed: 1, pending: 0 });
  } finally {
    await analytics.close({ timeout: 100 });
    await receiver.stop();
  }
});

test("close({ timeout }) counts what it reported as closed as failed, leaving nothing pending", async () => {
  const receiver = await startReceiver();
  receiver.setDefault({ hang: true });
  const closed: number[] = [];
  const analytics = new Analytics({
    writeKey: "KEY",
    host: receiver.url,
    uploadSize: 100,
    onError: (error, messages) => error.reason === "closed" && closed.push(messages.length),
  });
  try {
    for (let i = 0; i < 500; i++) analytics.track("u1", "Never Answered", { i });
    assert.deepEqual(await analytics.close({ timeout: 200 }), { delivered: 0, failed: 500, pending: 0 });
    assert.equal(closed.reduce((a, b) => a + b, 0), 500);
  } finally {
    await receiver.stop();
  }
});

test("keys under 4 characters are redacted where they are the key, and common words stay", () => {
  assert.equal(redact('{"writeKey":"ab"}', "ab"), '{"writeKey":"[write key]"}');
  assert.equal(redact(`Basic ${btoa("ab:")}`, "ab"), "Basic [write key]");
  assert.equal(redact("a tab and a cab", "ab"), "a tab and a cab");
  assert.equal(redact("refused k1 here", "k1"), "refused [write key] here");
  assert.equal(redact("sending 1 message", "message"), "sending 1 message");
  const spaced = "wk live 0123456789";
  assert.equal(redact(`key: ${spaced}`, spaced), "key: [write key]");
});

// ---------------------------------------------------------------- the write key, for keys of every shape

test("the write key never leaves as a credential in logs or errors, whatever its shape; HTTPS is the default host", async () => {
  assert.equal(new Analytics({ send: false }).host, "https://api.segment.io");
  // A server that echoes what it got: the body (with its writeKey field) and the Authorization header.
  const server = await startServer((req, res) => {
    res.writeHead(400, { "content-type": "application/json" });
    res.end(JSON.stringify({ error: "refused", authorization: req.headers.authorization, got: "see body" }));
  });
  const keys = ["k", "ab", "KEY1", "wk_live_0123456789abcdef", 'q"uo\\te %20 sp', "Signed Up", "127"];
  try {
    for (const key of keys) {
      const lines: string[] = [];
      const log = (...args: unknown[]) => void lines.push(args.map(String).join(" "));
      const errors: DeliveryError[] = [];
      const analytics = new Analytics({
        writeKey: key,
        host: server.url,
        debug: true,
        maxRetries: 0,
        logger: { debug: log, info: log, warn: log, error: log },
        onError: (error) => void errors.push(error),
      });
      analytics.track("u1", "Signed Up", { note: "the key may equal an event name" });
      await analytics.flush();
      await analytics.close();
      assert.equal(errors.length, 1, key);
      const basic = btoa(`${key}:`);
      for (const text of [...lines, ...errors.map((e) => `${e.message} ${e.stack ?? ""}`)]) {
        assert.ok(!text.includes(basic), `${JSON.stringify(key)}: its Basic form leaked into: ${text}`);
        assert.ok(!text.includes(`"writeKey":${JSON.stringify(key)}`), `${JSON.stringify(key)} leaked into: ${text}`);
        if (key.length >= 8) assert.ok(!text.includes(key), `${JSON.stringify(key)} leaked into: ${text}`);
      }
    }
  } finally {
    await server.stop();
  }
});
