/**
 * The message rules (DESIGN 2.1 and 2.3), option validation (2.2), the
 * module-level default client and middleware, checked on built messages and,
 * where the point is what is sent, on the wire through a real local receiver.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import defaultClient, {
  Analytics,
  type AnalyticsOptions,
  type Callback,
  DeliveryError,
  LIBRARY_NAME,
  type Logger,
  type Message,
  ValidationError,
  VERSION,
} from "../mod.ts";
import { type Receiver, startReceiver } from "./receiver.ts";

// ---------------------------------------------------------------- helpers

const ID = "b1e0c8a2-5f0e-4c1e-9d4e-6f7a8b9c0d1e";
const AT = "2016-06-05T18:46:33.939Z";
const LIBRARY = { name: "@tally/analytics", version: VERSION };
const UUID_V4 = /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;
const encoder = new TextEncoder();
const utf8 = (text: string): number => encoder.encode(text).length;

/** Builds one message with a client that sends nothing, through the per-call callback. */
function build(call: (analytics: Analytics, callback: Callback) => string): Promise<Message> {
  const analytics = new Analytics({ send: false });
  return new Promise((resolve, reject) => {
    let returned: string | undefined;
    const callback: Callback = (error, ctx) => {
      if (error !== undefined) return reject(error);
      const message = ctx.event;
      try {
        assert.equal(message.messageId, returned, "the call returns the messageId of the message it built");
        resolve(message);
      } catch (mismatch) {
        reject(mismatch);
      }
    };
    try {
      returned = call(analytics, callback);
    } catch (error) {
      reject(error);
    }
  });
}

/** Asserts that `fn` throws a ValidationError (a TypeError) about `field`, and returns it. */
function invalid(fn: () => unknown, field: string, text?: RegExp): ValidationError {
  let caught: unknown;
  try {
    fn();
  } catch (error) {
    caught = error;
  }
  assert.ok(caught instanceof ValidationError, `expected a ValidationError about ${field}, got ${caught}`);
  assert.ok(caught instanceof TypeError, "a ValidationError is a TypeError");
  assert.equal(caught.name, "ValidationError");
  assert.equal(caught.field, field, `field of: ${caught.message}`);
  if (text !== undefined) assert.match(caught.message, text);
  return caught;
}

/** Starts a receiver, runs `body` with it, and always stops it. */
async function withReceiver(body: (r: Receiver) => Promise<void>): Promise<void> {
  const r = await startReceiver();
  try {
    await body(r);
  } finally {
    await r.stop();
  }
}

/** A client that sends to `r`, collecting undelivered messages into `errors`. */
function client(r: Receiver, errors: DeliveryError[] = [], options: AnalyticsOptions = {}): Analytics {
  return new Analytics({
    writeKey: "KEY",
    host: r.url,
    maxRetries: 0,
    onError: (error) => void errors.push(error),
    ...options,
  });
}

/** A logger that keeps every line. */
function recordingLogger(): Logger & { lines: string[] } {
  const lines: string[] = [];
  const keep = (...args: unknown[]) =>
    void lines.push(args.map((a) => (a instanceof Error ? `${a.name}: ${a.message}` : String(a))).join(" "));
  return { lines, debug: keep, info: keep, warn: keep, error: keep };
}

/** Every key of a JSON-like value whose value is null, as paths. */
function nullPaths(value: unknown, path = ""): string[] {
  if (value === null) return [path];
  if (typeof value !== "object") return [];
  return Object.entries(value as object).flatMap(([k, v]) => nullPaths(v, path ? `${path}.${k}` : k));
}

const callOptions = {
  anonymousId: "anon-1",
  context: { ip: "203.0.113.7", locale: "en-US" },
  integrations: { All: false, KISSmetrics: true },
  messageId: ID,
  timestamp: AT,
};

// ---------------------------------------------------------------- 2.1 two call styles, one message

test("identify() builds the same message from positional and object arguments", async () => {
  const traits = { email: "john@example.com", name: "John Smith", friends: 30 };
  const positional = await build((a, cb) => a.identify("019mr8mf4r", traits, callOptions, cb));
  const object = await build((a, cb) => a.identify({ userId: "019mr8mf4r", traits, ...callOptions }, cb));
  assert.deepEqual(positional, object);
  assert.deepEqual(positional, {
    type: "identify",
    messageId: ID,
    timestamp: AT,
    userId: "019mr8mf4r",
    anonymousId: "anon-1",
    traits,
    context: { ip: "203.0.113.7", locale: "en-US", library: LIBRARY },
    integrations: { All: false, KISSmetrics: true },
  });
});

test("track() builds the same message from positional and object arguments", async () => {
  const properties = { plan: "Enterprise" };
  const positional = await build((a, cb) => a.track("f4ca124298", "Signed Up", properties, callOptions, cb));
  const object = await build((a, cb) =>
    a.track({ userId: "f4ca124298", event: "Signed Up", properties, ...callOptions }, cb)
  );
  assert.deepEqual(positional, object);
  assert.deepEqual(positional, {
    type: "track",
    messageId: ID,
    timestamp: AT,
    userId: "f4ca124298",
    anonymousId: "anon-1",
    event: "Signed Up",
    properties,
    context: { ip: "203.0.113.7", locale: "en-US", library: LIBRARY },
    integrations: { All: false, KISSmetrics: true },
  });
});

test("page() takes the category before the name, as analytics-python does, and matches the object style", async () => {
  const properties = { url: "http://segment.com" };
  const positional = await build((a, cb) => a.page("user_id", "Docs", "Python", properties, callOptions, cb));
  const object = await build((a, cb) =>
    a.page({ userId: "user_id", name: "Python", category: "Docs", properties, ...callOptions }, cb)
  );
  assert.deepEqual(positional, object);
  assert.equal(positional.type, "page");
  assert.equal(positional.category, "Docs");
  assert.equal(positional.name, "Python");
  assert.deepEqual(positional.properties, properties);
});

test("screen() takes the category before the name and matches the object style", async () => {
  const properties = { from: "Home Screen" };
  const positional = await build((a, cb) => a.screen("user_id", "Settings", "Brightness", properties, callOptions, cb));
  const object = await build((a, cb) =>
    a.screen({ userId: "user_id", category: "Settings", name: "Brightness", properties, ...callOptions }, cb)
  );
  assert.deepEqual(positional, object);
  assert.deepEqual(positional, {
    type: "screen",
    messageId: ID,
    timestamp: AT,
    userId: "user_id",
    anonymousId: "anon-1",
    category: "Settings",
    name: "Brightness",
    properties,
    context: { ip: "203.0.113.7", locale: "en-US", library: LIBRARY },
    integrations: { All: false, KISSmetrics: true },
  });
});

test("group() builds the same message from positional and object arguments", async () => {
  const traits = { name: "Initech", employees: 136 };
  const positional = await build((a, cb) => a.group("user_id", "group_id", traits, callOptions, cb));
  const object = await build((a, cb) =>
    a.group({ userId: "user_id", groupId: "group_id", traits, ...callOptions }, cb)
  );
  assert.deepEqual(positional, object);
  assert.equal(positional.type, "group");
  assert.equal(positional.groupId, "group_id");
  assert.deepEqual(positional.traits, traits);
});

test("alias() builds the same message from positional and object arguments", async () => {
  const { anonymousId: _unused, ...options } = callOptions;
  const positional = await build((a, cb) => a.alias("92734232-2342423423-973945", "1234", options, cb));
  const object = await build((a, cb) =>
    a.alias({ previousId: "92734232-2342423423-973945", userId: "1234", ...options }, cb)
  );
  assert.deepEqual(positional, object);
  assert.deepEqual(positional, {
    type: "alias",
    messageId: ID,
    timestamp: AT,
    previousId: "92734232-2342423423-973945",
    userId: "1234",
    context: { ip: "203.0.113.7", locale: "en-US", library: LIBRARY },
    integrations: { All: false, KISSmetrics: true },
  });
});

test("both styles without a messageId or timestamp differ only in those two fields", async () => {
  const strip = ({ messageId: _m, timestamp: _t, ...rest }: Message) => rest;
  const positional = await build((a, cb) => a.track("u1", "Viewed", { n: 1 }, { context: { ip: "1.2.3.4" } }, cb));
  const object = await build((a, cb) =>
    a.track({ userId: "u1", event: "Viewed", properties: { n: 1 }, context: { ip: "1.2.3.4" } }, cb)
  );
  assert.notEqual(positional.messageId, object.messageId);
  assert.deepEqual(strip(positional), strip(object));
});

test("positional calls take a trailing callback in place of any optional argument", async () => {
  // Each call's callback fires with the message it built (a client with send: false fires on a microtask).
  const cases: [string, (a: Analytics, cb: Callback) => string, Partial<Message>][] = [
    ["identify(userId, cb)", (a, cb) => a.identify("u", cb as never), { type: "identify", userId: "u" }],
    ["identify(userId, traits, cb)", (a, cb) => a.identify("u", { t: 1 }, cb as never), { traits: { t: 1 } }],
    ["track(userId, event, cb)", (a, cb) => a.track("u", "E", cb as never), { type: "track", event: "E" }],
    ["track(userId, event, properties, cb)", (a, cb) => a.track("u", "E", { p: 1 }, cb as never), {
      properties: { p: 1 },
    }],
    ["page(userId, cb)", (a, cb) => a.page("u", cb as never), { type: "page", userId: "u" }],
    ["page(userId, category, cb)", (a, cb) => a.page("u", "Docs", cb as never), { category: "Docs" }],
    ["page(userId, category, name, cb)", (a, cb) => a.page("u", "Docs", "Python", cb as never), { name: "Python" }],
    ["screen(userId, category, name, properties, cb)", (a, cb) => a.screen("u", "C", "N", { p: 2 }, cb as never), {
      type: "screen",
      properties: { p: 2 },
    }],
    ["group(userId, groupId, cb)", (a, cb) => a.group("u", "g", cb as never), { type: "group", groupId: "g" }],
    ["alias(previousId, userId, cb)", (a, cb) => a.alias("a", "b", cb as never), { type: "alias", previousId: "a" }],
    ["track(userId, event, properties, options, cb)", (a, cb) => a.track("u", "E", {}, { messageId: "m-1" }, cb), {
      messageId: "m-1",
    }],
  ];
  for (const [name, call, expected] of cases) {
    const message = await build(call);
    for (const [key, value] of Object.entries(expected)) {
      assert.deepEqual(message[key as keyof Message], value, `${name}: ${key}`);
    }
  }
});

test("the seed's positional examples go out on the wire as the messages the seed describes", async () => {
  await withReceiver(async (r) => {
    const errors: DeliveryError[] = [];
    const analytics = client(r, errors);
    analytics.identify("019mr8mf4r", { email: "john@example.com", name: "John Smith", friends: 30 });
    analytics.track("f4ca124298", "Signed Up", { plan: "Enterprise" });
    analytics.page("user_id", "Docs", "Python", { url: "http://segment.com" });
    analytics.screen("user_id", "Settings", "Brightness", { from: "Home Screen" });
    analytics.group("user_id", "group_id", { name: "Initech" });
    analytics.alias("92734232-2342423423-973945", "1234");
    await analytics.close();
    assert.deepEqual(errors, []);
    const sent = r.messages().map(({ messageId: _m, timestamp: _t, context, ...rest }) => {
      assert.deepEqual(context, { library: LIBRARY });
      return rest;
    });
    assert.deepEqual(sent, [
      {
        type: "identify",
        userId: "019mr8mf4r",
        traits: { email: "john@example.com", name: "John Smith", friends: 30 },
      },
      { type: "track", userId: "f4ca124298", event: "Signed Up", properties: { plan: "Enterprise" } },
      { type: "page", userId: "user_id", category: "Docs", name: "Python", properties: { url: "http://segment.com" } },
      {
        type: "screen",
        userId: "user_id",
        category: "Settings",
        name: "Brightness",
        properties: { from: "Home Screen" },
      },
      { type: "group", userId: "user_id", groupId: "group_id", traits: { name: "Initech" } },
      { type: "alias", previousId: "92734232-2342423423-973945", userId: "1234" },
    ]);
  });
});

// ---------------------------------------------------------------- messageId

test("every call returns its messageId synchronously, a fresh UUID v4 by default", () => {
  const analytics = new Analytics({ send: false });
  const ids = [
    analytics.identify("u"),
    analytics.track("u", "E"),
    analytics.page("u"),
    analytics.screen("u"),
    analytics.group("u", "g"),
    analytics.alias("a", "b"),
    analytics.track({ userId: "u", event: "E" }),
  ];
  for (const id of ids) {
    assert.equal(typeof id, "string");
    assert.match(id, UUID_V4);
  }
  assert.equal(new Set(ids).size, ids.length);
});

test("a given messageId is used as is and returned", async () => {
  const analytics = new Analytics({ send: false });
  assert.equal(analytics.track("u", "E", {}, { messageId: "my-id-1" }), "my-id-1");
  assert.equal(analytics.alias({ previousId: "a", userId: "b", messageId: "my-id-2" }), "my-id-2");
  const hundred = "m".repeat(100);
  const message = await build((a, cb) => a.identify({ userId: "u", messageId: hundred }, cb));
  assert.equal(message.messageId, hundred);
});

test("a messageId that is empty, over 100 characters or not a string is rejected", () => {
  const analytics = new Analytics({ send: false });
  invalid(() => analytics.track("u", "E", {}, { messageId: "" }), "messageId", /100/);
  invalid(() => analytics.track("u", "E", {}, { messageId: "m".repeat(101) }), "messageId", /at most 100/);
  invalid(() => analytics.identify({ userId: "u", messageId: 42 as unknown as string }), "messageId");
});

// ---------------------------------------------------------------- required fields

test("every call but alias requires a userId or an anonymousId, naming userId", () => {
  const analytics = new Analytics({ send: false });
  const calls: (() => unknown)[] = [
    () => analytics.identify(null, { a: 1 }),
    () => analytics.track(undefined, "E"),
    () => analytics.page(null, "Docs", "Python"),
    () => analytics.screen(null),
    () => analytics.group(null, "g"),
    () => analytics.identify({ traits: {} }),
    () => analytics.track({ event: "E" }),
    () => analytics.page({ name: "Home" }),
    () => analytics.screen({ userId: null, anonymousId: null }),
    () => analytics.group({ groupId: "g" }),
  ];
  for (const call of calls) invalid(call, "userId", /userId or anonymousId is required/);
});

test("an anonymousId alone is enough, with userId null or undefined, and no userId is sent", async () => {
  const messages = [
    await build((a, cb) => a.identify(null, { x: 1 }, { anonymousId: "anon" }, cb)),
    await build((a, cb) => a.track(undefined, "E", {}, { anonymousId: "anon" }, cb)),
    await build((a, cb) => a.page(null, null, "Home", null, { anonymousId: "anon" }, cb)),
    await build((a, cb) => a.screen({ anonymousId: "anon", name: "Home" }, cb)),
    await build((a, cb) => a.group({ userId: null, anonymousId: "anon", groupId: "g" }, cb)),
    await build((a, cb) => a.track({ anonymousId: "anon", event: "Viewed" }, cb)),
  ];
  for (const message of messages) {
    assert.equal(message.anonymousId, "anon");
    assert.equal("userId" in message, false, `${message.type} has no userId key`);
  }
});

test("track() requires an event that is a non-empty string", () => {
  const analytics = new Analytics({ send: false });
  invalid(() => analytics.track({ userId: "u" } as never), "event", /event must be a non-empty string/);
  invalid(() => analytics.track("u", ""), "event", /empty string/);
  invalid(() => analytics.track("u", null as unknown as string), "event");
  invalid(() => analytics.track("u", 5 as unknown as string), "event");
  invalid(() => analytics.track({ userId: "u", event: ["E"] as unknown as string }), "event");
});

test("group() requires a groupId and alias() requires a previousId and a userId", () => {
  const analytics = new Analytics({ send: false });
  invalid(() => analytics.group("u", null as never), "groupId", /groupId is required/);
  invalid(() => analytics.group({ userId: "u" } as never), "groupId", /required/);
  invalid(() => analytics.alias(null as never, "new"), "previousId", /required/);
  invalid(() => analytics.alias("old", undefined as never), "userId", /required/);
  invalid(() => analytics.alias({ userId: "new" } as never), "previousId");
  invalid(() => analytics.alias({ previousId: "old" } as never), "userId");
  // alias has no anonymousId fallback for its userId.
  invalid(() => analytics.alias({ previousId: "old", anonymousId: "a" } as never), "userId");
});

test("empty-string ids are rejected, naming the field", () => {
  const analytics = new Analytics({ send: false });
  invalid(() => analytics.identify("", { a: 1 }), "userId", /empty string/);
  invalid(() => analytics.track({ anonymousId: "", event: "E" }), "anonymousId", /empty string/);
  invalid(() => analytics.track("", "E", {}, { anonymousId: "a" }), "userId");
  invalid(() => analytics.group("u", ""), "groupId", /empty string/);
  invalid(() => analytics.alias("", "new"), "previousId", /empty string/);
  invalid(() => analytics.alias("old", ""), "userId", /empty string/);
});

test("numeric ids are sent as strings", async () => {
  const group = await build((a, cb) => a.group(42, 7, {}, { anonymousId: 0 }, cb));
  assert.equal(group.userId, "42");
  assert.equal(group.groupId, "7");
  assert.equal(group.anonymousId, "0");
  const alias = await build((a, cb) => a.alias({ previousId: 1.5, userId: -3 }, cb));
  assert.equal(alias.previousId, "1.5");
  assert.equal(alias.userId, "-3");
});

test("NaN and Infinity ids are rejected", () => {
  const analytics = new Analytics({ send: false });
  invalid(() => analytics.identify(NaN), "userId", /finite/);
  invalid(() => analytics.track({ anonymousId: Infinity, event: "E" }), "anonymousId", /finite/);
  invalid(() => analytics.group("u", -Infinity), "groupId", /finite/);
  invalid(() => analytics.alias(NaN, "b"), "previousId", /finite/);
});

test("ids of the wrong type are rejected, naming the field", () => {
  const analytics = new Analytics({ send: false });
  invalid(() => analytics.identify(true as never), "userId", /string or a number/);
  invalid(() => analytics.track(["u"] as never, "E"), "userId", /array/);
  invalid(() => analytics.track({ userId: { id: 1 } as never, event: "E" }), "userId");
  invalid(() => analytics.page({ anonymousId: new Date() as never }), "anonymousId");
  invalid(() => analytics.group("u", {} as never), "groupId");
  invalid(() => analytics.alias("a", false as never), "userId");
});

test("fields of the wrong type are rejected, naming the field", () => {
  const analytics = new Analytics({ send: false });
  invalid(() => analytics.track("u", "E", "cheap" as never), "properties", /object/);
  invalid(() => analytics.track("u", "E", [1, 2] as never), "properties", /array/);
  invalid(() => analytics.identify("u", 5 as never), "traits");
  invalid(() => analytics.group({ userId: "u", groupId: "g", traits: "x" as never }), "traits");
  invalid(() => analytics.track({ userId: "u", event: "E", context: "ctx" as never }), "context");
  invalid(() => analytics.track({ userId: "u", event: "E", integrations: ["All"] as never }), "integrations");
  invalid(() => analytics.page("u", 5 as never, "Home"), "category");
  invalid(() => analytics.screen({ userId: "u", name: true as never }), "name");
  invalid(() => analytics.track("u", "E", {}, "options" as never), "options");
  invalid(() => analytics.track({ userId: "u", event: "E" }, "callback" as never), "callback");
});

test("a ValidationError carries its field and reads 'Cannot <call>: reason'", () => {
  const analytics = new Analytics({ send: false });
  const error = invalid(() => analytics.track({ event: "Signed Up" }), "userId");
  assert.match(error.message, /^Cannot track: /);
});

// ---------------------------------------------------------------- timestamps

test("a Date timestamp is sent as UTC ISO-8601 with milliseconds", async () => {
  const message = await build((a, cb) =>
    a.track("u", "E", {}, { timestamp: new Date(Date.UTC(2015, 0, 5, 3, 4, 5)) }, cb)
  );
  assert.equal(message.timestamp, "2015-01-05T03:04:05.000Z");
});

test("without a timestamp the call is stamped with the current UTC time", async () => {
  const before = Date.now();
  const message = await build((a, cb) => a.track("u", "E", cb as never));
  const after = Date.now();
  assert.match(message.timestamp, /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$/);
  const at = Date.parse(message.timestamp);
  assert.ok(at >= before && at <= after, `${message.timestamp} is between the calls`);
});

test("ISO timestamps with Z or an offset are converted to UTC with milliseconds", async () => {
  const cases: [string, string][] = [
    ["2016-06-06T01:46:33.939388+07:00", "2016-06-05T18:46:33.939Z"],
    ["2012-10-17T18:58:57.911Z", "2012-10-17T18:58:57.911Z"],
    ["2015-01-05T00:00:00Z", "2015-01-05T00:00:00.000Z"],
    ["2015-01-05T00:00:00-0700", "2015-01-05T07:00:00.000Z"],
    ["2015-01-05T00:00:00+05:30", "2015-01-04T18:30:00.000Z"],
    ["2015-12-31T23:30:00.5-01:00", "2016-01-01T00:30:00.500Z"],
    ["2016-02-29T12:00:00Z", "2016-02-29T12:00:00.000Z"],
  ];
  for (const [given, sent] of cases) {
    const message = await build((a, cb) => a.identify({ userId: "u", timestamp: given }, cb));
    assert.equal(message.timestamp, sent, given);
  }
});

test("track() rejects a timestamp without a time zone, saying why", () => {
  const analytics = new Analytics({ send: false });
  for (const zoneless of ["2015-01-05T00:00:00", "2016-06-06T01:46:33.939388"]) {
    const error = invalid(() => analytics.track("u", "E", {}, { timestamp: zoneless }), "timestamp");
    assert.match(error.message, /time zone/);
    assert.match(error.message, /Z/);
    assert.ok(error.message.includes(zoneless), "the message quotes the value");
  }
});

test("a date-only timestamp is rejected, saying it has no time or time zone", () => {
  const analytics = new Analytics({ send: false });
  invalid(() => analytics.page({ userId: "u", timestamp: "2015-01-05" }), "timestamp", /time zone/);
});

test("an invalid Date, an impossible date and a non-ISO string are rejected", () => {
  const analytics = new Analytics({ send: false });
  invalid(() => analytics.track("u", "E", {}, { timestamp: new Date("nope") }), "timestamp", /invalid Date/);
  for (const impossible of ["2015-02-30T00:00:00Z", "2015-13-01T00:00:00Z", "2015-02-29T00:00:00Z"]) {
    invalid(() => analytics.track("u", "E", {}, { timestamp: impossible }), "timestamp", /not a real date/);
  }
  invalid(() => analytics.track("u", "E", {}, { timestamp: "2015-01-05T25:00:00Z" }), "timestamp");
  invalid(() => analytics.track("u", "E", {}, { timestamp: "yesterday" }), "timestamp", /ISO-8601/);
});

test("a number timestamp is rejected with a hint to pass a Date", () => {
  const analytics = new Analytics({ send: false });
  invalid(() => analytics.track("u", "E", {}, { timestamp: 1420416000000 as never }), "timestamp", /new Date\(ms\)/);
  invalid(() => analytics.alias({ previousId: "a", userId: "b", timestamp: {} as never }), "timestamp");
});

// ---------------------------------------------------------------- serialization

test("Dates anywhere in the message become ISO strings", async () => {
  const when = new Date(Date.UTC(2020, 1, 3, 4, 5, 6, 7));
  const message = await build((a, cb) =>
    a.identify("u", { createdAt: when, history: [{ at: when }] }, { context: { seen: { first: when } } }, cb)
  );
  assert.deepEqual(message.traits, {
    createdAt: "2020-02-03T04:05:06.007Z",
    history: [{ at: "2020-02-03T04:05:06.007Z" }],
  });
  assert.deepEqual(message.context.seen, { first: "2020-02-03T04:05:06.007Z" });
});

test("a BigInt becomes a decimal string, a Map an object and a Set an array", async () => {
  const message = await build((a, cb) =>
    a.track(
      "u",
      "Order Completed",
      {
        total: 12345678901234567890n,
        counts: new Map<string, unknown>([["a", 1], ["b", "two"]]),
        tags: new Set(["x", "y"]),
      },
      null,
      cb,
    )
  );
  assert.deepEqual(message.properties, {
    total: "12345678901234567890",
    counts: { a: 1, b: "two" },
    tags: ["x", "y"],
  });
});

test("a nested Map holding a BigInt, a Set and a Date is fully converted", async () => {
  const inner = new Map<string, unknown>([["big", -42n], ["set", new Set([1n, 2])], ["at", new Date(0)]]);
  const message = await build((a, cb) => a.group("u", "g", { nested: { map: new Map([["inner", inner]]) } }, null, cb));
  assert.deepEqual(message.traits, {
    nested: { map: { inner: { big: "-42", set: ["1", 2], at: "1970-01-01T00:00:00.000Z" } } },
  });
});

test("undefined values and functions are dropped and NaN or Infinity become null", async () => {
  for (const extra of [{}, { forceSlowPath: new Map() }]) {
    const message = await build((a, cb) =>
      a.track(
        "u",
        "E",
        {
          gone: undefined,
          fn: () => 1,
          nan: NaN,
          inf: Infinity,
          list: [1, NaN, -Infinity],
          ...extra,
        },
        null,
        cb,
      )
    );
    const properties = message.properties as Record<string, unknown>;
    assert.equal("gone" in properties, false);
    assert.equal("fn" in properties, false);
    assert.equal(properties.nan, null);
    assert.equal(properties.inf, null);
    assert.deepEqual(properties.list, [1, null, null]);
  }
});

test("a cycle is a ValidationError whose field is the path to it", () => {
  const analytics = new Analytics({ send: false });
  const properties: Record<string, unknown> = { name: "loop" };
  properties.self = properties;
  invalid(() => analytics.track("u", "E", properties), "properties.self", /cycle/);

  const items: Record<string, unknown>[] = [{ ok: true }, {}];
  const order = { items };
  items[1].parent = order;
  invalid(() => analytics.track({ userId: "u", event: "E", properties: order }), "properties.items[1].parent");

  const traits: Record<string, unknown> = {};
  traits.me = new Map([["again", traits]]);
  invalid(() => analytics.identify("u", traits), "traits.me.again");
});

test("the same object twice (not a cycle) is serialized twice", async () => {
  const shared = { sku: "A1" };
  const message = await build((a, cb) =>
    a.track("u", "E", { first: shared, second: shared, both: [shared, shared] }, null, cb)
  );
  assert.deepEqual(message.properties, { first: shared, second: shared, both: [shared, shared] });
});

test("an own __proto__ key (as JSON.parse makes) survives serialization on every runtime", async () => {
  // The slow path (taken for Maps, Sets, BigInts and any "{}") must not turn the key into a prototype.
  const fromJson = JSON.parse('{"__proto__":{"polluted":true},"empty":{}}');
  const message = await build((a, cb) => a.track("u", "E", fromJson, null, cb));
  assert.equal(JSON.stringify(message.properties), '{"__proto__":{"polluted":true},"empty":{}}');
});

// ---------------------------------------------------------------- snapshot and context

test("mutating properties and context after the call does not change what is sent", async () => {
  await withReceiver(async (r) => {
    const errors: DeliveryError[] = [];
    const analytics = client(r, errors);
    const properties: Record<string, unknown> = { plan: "Enterprise", items: [{ sku: "A" }] };
    const context: Record<string, unknown> = { ip: "203.0.113.7", app: { name: "shop" } };
    analytics.track("u", "Signed Up", properties, { context });
    properties.plan = "Free";
    (properties.items as { sku: string }[])[0].sku = "B";
    (properties.items as unknown[]).push({ sku: "C" });
    context.ip = "0.0.0.0";
    (context.app as Record<string, unknown>).name = "changed";
    await analytics.close();
    assert.deepEqual(errors, []);
    const [sent] = r.messages();
    assert.deepEqual(sent.properties, { plan: "Enterprise", items: [{ sku: "A" }] });
    assert.deepEqual(sent.context, { ip: "203.0.113.7", app: { name: "shop" }, library: LIBRARY });
  });
});

test("the caller's context is never mutated and the sent context keeps its keys plus library", async () => {
  await withReceiver(async (r) => {
    const analytics = client(r);
    const context = Object.freeze({ ip: "203.0.113.7", userAgent: "curl/8", traits: { plan: "Pro" } });
    analytics.identify("u", {}, { context });
    analytics.track({ anonymousId: "a", event: "E", context });
    assert.deepEqual(context, { ip: "203.0.113.7", userAgent: "curl/8", traits: { plan: "Pro" } });
    assert.equal("library" in context, false);
    await analytics.close();
    const sent = r.messages();
    assert.equal(sent.length, 2);
    for (const message of sent) {
      assert.deepEqual(message.context, {
        ip: "203.0.113.7",
        userAgent: "curl/8",
        traits: { plan: "Pro" },
        library: { name: "@tally/analytics", version: VERSION },
      });
    }
  });
});

test("every message's context carries library name and version, even when the caller gave none", async () => {
  assert.equal(LIBRARY_NAME, "@tally/analytics");
  assert.match(VERSION, /^\d+\.\d+\.\d+/);
  for (
    const call of [
      (a: Analytics, cb: Callback) => a.identify("u", null, null, cb),
      (a: Analytics, cb: Callback) => a.alias("a", "b", {}, cb),
      (a: Analytics, cb: Callback) => a.page({ userId: "u", context: null }, cb),
    ]
  ) {
    const message = await build(call);
    assert.deepEqual(message.context, { library: LIBRARY });
  }
});

test("a caller's context.library is replaced by Tally's", async () => {
  const message = await build((a, cb) =>
    a.track("u", "E", {}, { context: { library: { name: "mine" }, ip: "1" } }, cb)
  );
  assert.deepEqual(message.context, { library: LIBRARY, ip: "1" });
});

// ---------------------------------------------------------------- sizes and omitted fields

/** Builds a track whose properties.text is `text`, with fixed id and time so its size is exact. */
function sized(text: string): Promise<Message> {
  return build((a, cb) => a.track("u", "E", { text }, { messageId: ID, timestamp: AT }, cb));
}

/** Text of exactly `bytes` UTF-8 bytes made of `unit` (plus ASCII to make up the rest). */
function textOf(unit: string, bytes: number): string {
  const each = utf8(unit);
  return unit.repeat(Math.floor(bytes / each)) + "a".repeat(bytes % each);
}

test("a message of exactly 32768 UTF-8 bytes is accepted and one byte more is rejected", async () => {
  const base = utf8(JSON.stringify(await sized("")));
  const fill = 32768 - base;
  const exact = textOf("é", fill);
  assert.ok(exact.length < 32768 / 2 + 10, "the text is about half as many characters as bytes");
  const message = await sized(exact);
  assert.equal(utf8(JSON.stringify(message)), 32768);
  assert.equal(utf8(JSON.stringify(await sized(textOf("é", fill - 1)))), 32767);

  const analytics = new Analytics({ send: false });
  const error = invalid(
    () => analytics.track("u", "E", { text: exact + "a" }, { messageId: ID, timestamp: AT }),
    "properties",
    /32769 bytes/,
  );
  assert.match(error.message, /32768/);
});

test("sizes count UTF-8 bytes, not characters, for 2-, 3- and 4-byte text", async () => {
  const base = utf8(JSON.stringify(await sized("")));
  const analytics = new Analytics({ send: false });
  for (const unit of ["é", "€", "😀"]) {
    const fits = textOf(unit, 32768 - base);
    assert.equal(utf8(JSON.stringify(await sized(fits))), 32768, `${unit} fills exactly`);
    const over = textOf(unit, 32768 - base + utf8(unit));
    assert.ok(JSON.stringify({ text: over }).length < 32768, `${unit}: fewer characters than the limit`);
    invalid(() => analytics.track("u", "E", { text: over }, { messageId: ID, timestamp: AT }), "properties", /bytes/);
  }
});

test("an oversized message is rejected naming its biggest field", () => {
  const analytics = new Analytics({ send: false });
  invalid(() => analytics.identify("u", { bio: "€".repeat(11000) }), "traits", /traits alone is/);
  invalid(() => analytics.track("u", "E", {}, { context: { page: { body: "x".repeat(33000) } } }), "context");
  invalid(() => analytics.page({ userId: "u", name: "😀".repeat(8200) }), "name");
});

test("an oversized message whose properties hold a BigInt is still a ValidationError", () => {
  const analytics = new Analytics({ send: false });
  invalid(() => analytics.track("u", "E", { total: 1n, text: "é".repeat(17000) }), "properties", /bytes/);
});

test("an oversized message whose biggest field holds a Map names that field", () => {
  const analytics = new Analytics({ send: false });
  invalid(() => analytics.track("u", "E", { rows: new Map([["text", "x".repeat(40000)]]) }), "properties", /bytes/);
});

test("an oversized message throws from the call even when middleware is installed", () => {
  const errors: DeliveryError[] = [];
  const analytics = new Analytics({ send: false, onError: (error) => void errors.push(error) });
  analytics.use((message) => message);
  invalid(() => analytics.track("u", "E", { text: "x".repeat(40000) }), "properties", /bytes/);
});

test("absent optional fields are omitted, not sent as null", async () => {
  await withReceiver(async (r) => {
    const analytics = client(r);
    analytics.identify("u", null, { context: null, integrations: null, timestamp: null, messageId: null });
    analytics.track({ userId: "u", event: "E", properties: null, anonymousId: null });
    analytics.page("u", null, undefined, null);
    analytics.screen({ anonymousId: "a" });
    analytics.group("u", "g");
    analytics.alias("a", "b", null);
    await analytics.close();
    const sent = r.messages();
    assert.deepEqual(sent.map((m) => Object.keys(m).sort()), [
      ["context", "messageId", "timestamp", "type", "userId"],
      ["context", "event", "messageId", "timestamp", "type", "userId"],
      ["context", "messageId", "timestamp", "type", "userId"],
      ["anonymousId", "context", "messageId", "timestamp", "type"],
      ["context", "groupId", "messageId", "timestamp", "type", "userId"],
      ["context", "messageId", "previousId", "timestamp", "type", "userId"],
    ]);
    for (const message of sent) assert.deepEqual(nullPaths(message), [], `${message.type} has no nulls`);
    const raw = JSON.stringify(r.requests.map((q) => q.body.batch));
    assert.equal(raw.includes("null"), false);
  });
});

test("integrations are passed through as in the seed's selecting-destinations example", async () => {
  await withReceiver(async (r) => {
    const analytics = client(r);
    const integrations = { All: false, KISSmetrics: true, "Google Analytics": false, Amplitude: { session_id: 7 } };
    analytics.track("9742", "Song Played", {}, { integrations });
    analytics.alias({ previousId: "a", userId: "b", integrations: { All: true } });
    await analytics.close();
    const [track, alias] = r.messages();
    assert.deepEqual(track.integrations, integrations);
    assert.deepEqual(track.properties, {});
    assert.deepEqual(alias.integrations, { All: true });
  });
});

// ---------------------------------------------------------------- options

test("new Analytics() exposes every option of DESIGN 2.2 with its default", () => {
  const analytics = new Analytics();
  assert.equal(analytics.writeKey, undefined);
  assert.equal(analytics.host, "https://api.segment.io");
  assert.equal(analytics.path, "/v1/batch");
  assert.equal(analytics.debug, false);
  assert.equal(analytics.logger, console);
  assert.equal(analytics.onError, undefined);
  assert.equal(analytics.send, true);
  assert.equal(analytics.syncMode, false);
  assert.equal(analytics.maxQueueSize, 10000);
  assert.equal(analytics.uploadSize, 100);
  assert.equal(analytics.uploadInterval, 0.5);
  assert.equal(analytics.gzip, false);
  assert.equal(analytics.maxRetries, 10);
  assert.equal(analytics.timeout, 15);
  // Unset means "the global fetch at send time", so a fetch patched later is still used.
  assert.equal(analytics.fetch ?? globalThis.fetch, globalThis.fetch);
});

test("options given at construction are readable as properties", () => {
  const fetch = (() => Promise.resolve(new Response("{}"))) as typeof globalThis.fetch;
  const onError = () => {};
  const logger = recordingLogger();
  const analytics = new Analytics({
    writeKey: "KEY",
    host: "http://127.0.0.1:8787/",
    debug: true,
    logger,
    onError,
    send: false,
    syncMode: true,
    maxQueueSize: 5,
    uploadSize: 2500,
    uploadInterval: 0,
    gzip: true,
    maxRetries: 0,
    timeout: 0.25,
    fetch,
  });
  assert.equal(analytics.writeKey, "KEY");
  assert.equal(analytics.host, "http://127.0.0.1:8787", "a trailing slash is dropped");
  assert.equal(analytics.debug, true);
  assert.equal(analytics.logger, logger);
  assert.equal(analytics.onError, onError);
  assert.equal(analytics.send, false);
  assert.equal(analytics.syncMode, true);
  assert.equal(analytics.maxQueueSize, 5);
  assert.equal(analytics.uploadSize, 2500);
  assert.equal(analytics.uploadInterval, 0);
  assert.equal(analytics.gzip, true);
  assert.equal(analytics.maxRetries, 0);
  assert.equal(analytics.timeout, 0.25);
  assert.equal(analytics.fetch, fetch);
});

test("analytics-node's option names are aliases, converted to the seed's units", () => {
  const httpClient = (() => Promise.resolve(new Response("{}"))) as typeof globalThis.fetch;
  const analytics = new Analytics({
    writeKey: "KEY",
    flushAt: 20,
    flushInterval: 2000,
    disable: true,
    httpRequestTimeout: 3000,
    httpClient,
  });
  assert.equal(analytics.uploadSize, 20);
  assert.equal(analytics.uploadInterval, 2);
  assert.equal(analytics.send, false);
  assert.equal(analytics.timeout, 3);
  assert.equal(analytics.fetch, httpClient);
  assert.equal(new Analytics({ disable: false }).send, true);
});

test("numbers out of range are RangeErrors naming the option", () => {
  const cases: [AnalyticsOptions, string][] = [
    [{ uploadSize: 0 }, "uploadSize"],
    [{ uploadSize: 2501 }, "uploadSize"],
    [{ flushAt: 0 }, "flushAt"],
    [{ maxQueueSize: 0 }, "maxQueueSize"],
    [{ uploadInterval: -1 }, "uploadInterval"],
    [{ flushInterval: -5 }, "flushInterval"],
    [{ maxRetries: -1 }, "maxRetries"],
    [{ timeout: -1 }, "timeout"],
    [{ httpRequestTimeout: -1 }, "httpRequestTimeout"],
  ];
  for (const [options, name] of cases) {
    assert.throws(() => new Analytics(options), (error: unknown) => {
      assert.ok(error instanceof RangeError, `${JSON.stringify(options)}: ${error}`);
      assert.ok(error.message.includes(name), error.message);
      return true;
    });
  }
  assert.equal(new Analytics({ uploadSize: 1 }).uploadSize, 1);
  assert.equal(new Analytics({ uploadSize: 2500 }).uploadSize, 2500);
  assert.equal(new Analytics({ maxQueueSize: 1 }).maxQueueSize, 1);
});

test("a range error about a millisecond alias quotes the value in milliseconds, as the caller wrote it", () => {
  for (const [options, given] of [[{ flushInterval: -5 }, "-5"], [{ httpRequestTimeout: -1 }, "-1"]] as const) {
    assert.throws(() => new Analytics(options), (error: unknown) => {
      assert.ok(error instanceof RangeError);
      assert.match(error.message, new RegExp(`got ${given}$`));
      assert.match(error.message, /milliseconds/, "the alias is in milliseconds");
      return true;
    });
  }
});

test("wrong types, bad hosts and unknown options are TypeErrors naming the option", () => {
  const cases: [unknown, RegExp][] = [
    [{ onError: "log it" }, /onError/],
    [{ gzip: "yes" }, /gzip/],
    [{ gzip: 1 }, /gzip/],
    [{ debug: "true" }, /debug/],
    [{ send: 0 }, /send/],
    [{ syncMode: null }, /syncMode/],
    [{ host: "not a url" }, /host/],
    [{ host: "ftp://example.com" }, /host/],
    [{ host: 8787 }, /host/],
    [{ uploadSize: 1.5 }, /uploadSize/],
    [{ uploadSize: "100" }, /uploadSize/],
    [{ uploadInterval: "0.5" }, /uploadInterval/],
    [{ timeout: NaN }, /timeout/],
    [{ logger: { log() {} } }, /logger/],
    [{ fetch: "fetch" }, /fetch/],
    [{ httpClient: { request() {} } }, /httpClient/],
    [{ writeKey: "" }, /writeKey/],
    [{ writeKey: 42 }, /writeKey/],
    [{ flushSize: 10 }, /unknown option "flushSize"/],
    [{ write_key: "KEY" }, /unknown option "write_key"/],
  ];
  for (const [options, text] of cases) {
    assert.throws(() => new Analytics(options as AnalyticsOptions), (error: unknown) => {
      assert.ok(error instanceof TypeError, `${JSON.stringify(options)}: ${error}`);
      assert.ok(!(error instanceof ValidationError), "option errors are plain TypeErrors");
      assert.match(error.message, text);
      return true;
    });
  }
  assert.throws(() => new Analytics([] as never), TypeError);
  assert.throws(() => new Analytics(null as never), TypeError);
});

test("an alias and its canonical option set together are rejected, naming both", () => {
  const pairs: [AnalyticsOptions, string, string][] = [
    [{ uploadSize: 10, flushAt: 10 }, "uploadSize", "flushAt"],
    [{ uploadInterval: 1, flushInterval: 1000 }, "uploadInterval", "flushInterval"],
    [{ send: true, disable: false }, "send", "disable"],
    [{ timeout: 1, httpRequestTimeout: 1000 }, "timeout", "httpRequestTimeout"],
    [{ fetch: globalThis.fetch, httpClient: globalThis.fetch }, "fetch", "httpClient"],
  ];
  for (const [options, canonical, alias] of pairs) {
    assert.throws(() => new Analytics(options), (error: unknown) => {
      assert.ok(error instanceof TypeError);
      assert.ok(error.message.includes(canonical) && error.message.includes(alias), error.message);
      return true;
    });
  }
});

test("new Analytics(writeKey, options) is the seed's positional form", () => {
  const analytics = new Analytics("KEY", { gzip: true });
  assert.equal(analytics.writeKey, "KEY");
  assert.equal(analytics.gzip, true);
  assert.equal(new Analytics("KEY").writeKey, "KEY");
  assert.throws(() => new Analytics("KEY", { writeKey: "OTHER" }), TypeError);
  assert.throws(() => new Analytics("KEY", { uploadSize: 0 }), RangeError);
});

test("options set as properties are validated the same way and a failed set changes nothing", () => {
  const analytics = new Analytics({ writeKey: "KEY", send: false });
  assert.throws(() => (analytics.uploadSize = 0), RangeError);
  assert.throws(() => (analytics.uploadSize = 2501), RangeError);
  assert.throws(() => (analytics.maxQueueSize = 0), RangeError);
  assert.throws(() => (analytics.uploadInterval = -0.1), RangeError);
  assert.throws(() => (analytics.onError = "no" as never), TypeError);
  assert.throws(() => (analytics.gzip = "yes" as never), TypeError);
  assert.throws(() => (analytics.host = "nowhere"), TypeError);
  assert.throws(() => (analytics.writeKey = "" as never), TypeError);
  assert.throws(() => (analytics.logger = {} as never), TypeError);
  assert.equal(analytics.uploadSize, 100);
  assert.equal(analytics.maxQueueSize, 10000);
  assert.equal(analytics.uploadInterval, 0.5);
  assert.equal(analytics.gzip, false);
  assert.equal(analytics.host, "https://api.segment.io");
  assert.equal(analytics.writeKey, "KEY");

  analytics.uploadSize = 7;
  analytics.uploadInterval = 2;
  analytics.gzip = true;
  analytics.host = "http://127.0.0.1:9/";
  analytics.onError = null;
  assert.equal(analytics.uploadSize, 7);
  assert.equal(analytics.uploadInterval, 2);
  assert.equal(analytics.gzip, true);
  assert.equal(analytics.host, "http://127.0.0.1:9");
  assert.equal(analytics.onError, undefined);
});

test("uploadSize set after construction shapes the batches that go out", async () => {
  await withReceiver(async (r) => {
    const errors: DeliveryError[] = [];
    const analytics = client(r, errors);
    analytics.uploadSize = 2;
    for (let i = 0; i < 5; i++) analytics.track("u", `Event ${i}`);
    await analytics.close();
    assert.deepEqual(errors, []);
    assert.deepEqual(r.requests.map((q) => q.body.batch?.length).sort(), [1, 2, 2]);
    assert.deepEqual(r.messages().map((m) => m.event).sort(), ["Event 0", "Event 1", "Event 2", "Event 3", "Event 4"]);
  });
});

test("host set after a first flush sends the next flush to the new host", async () => {
  await withReceiver(async (first) => {
    await withReceiver(async (second) => {
      const errors: DeliveryError[] = [];
      const analytics = client(first, errors);
      analytics.track("u", "Before");
      await analytics.flush();
      analytics.host = second.url;
      analytics.track("u", "After");
      await analytics.close();
      assert.deepEqual(errors, []);
      assert.deepEqual(first.messages().map((m) => m.event), ["Before"]);
      assert.deepEqual(second.messages().map((m) => m.event), ["After"]);
      assert.equal(second.requests[0].path, "/v1/batch");
    });
  });
});

test("send set to false after construction validates and builds but sends nothing", async () => {
  await withReceiver(async (r) => {
    const analytics = client(r);
    analytics.send = false;
    const id = analytics.track("u", "E");
    assert.match(id, UUID_V4);
    invalid(() => analytics.track("u", ""), "event");
    await analytics.close();
    assert.equal(r.requests.length, 0);
  });
});

// ---------------------------------------------------------------- the default client

test("the default client refuses calls until a writeKey is set, naming writeKey", () => {
  const saved = { writeKey: defaultClient.writeKey, send: defaultClient.send };
  try {
    defaultClient.writeKey = undefined;
    defaultClient.send = true;
    invalid(() => defaultClient.track("u", "E"), "writeKey", /write key/);
    invalid(() => defaultClient.identify({ userId: "u" }), "writeKey");
    // A bad call is still reported for what is wrong with it.
    invalid(() => defaultClient.track("u", ""), "event");
  } finally {
    defaultClient.writeKey = saved.writeKey;
    defaultClient.send = saved.send;
  }
});

test("the default client sends with Basic auth for its writeKey once writeKey and host are set", async () => {
  const saved = {
    writeKey: defaultClient.writeKey,
    host: defaultClient.host,
    send: defaultClient.send,
    onError: defaultClient.onError,
    maxRetries: defaultClient.maxRetries,
  };
  await withReceiver(async (r) => {
    const errors: DeliveryError[] = [];
    try {
      defaultClient.writeKey = "K";
      defaultClient.host = r.url;
      defaultClient.send = true;
      defaultClient.maxRetries = 0;
      defaultClient.onError = (error) => void errors.push(error);
      defaultClient.identify("019mr8mf4r", { email: "john@example.com" });
      defaultClient.track("f4ca124298", "Signed Up", { plan: "Enterprise" });
      const result = await defaultClient.flush();
      assert.deepEqual(errors, []);
      assert.equal(result.delivered, 2);
      assert.equal(r.requests.length, 1);
      const [request] = r.requests;
      assert.equal(request.method, "POST");
      assert.equal(request.path, "/v1/batch");
      assert.equal(request.headers.authorization, `Basic ${btoa("K:")}`);
      assert.match(request.headers["content-type"], /^application\/json/);
      assert.equal(request.body.writeKey, "K");
      assert.deepEqual(r.messages().map((m) => m.type), ["identify", "track"]);
    } finally {
      await defaultClient.flush();
      defaultClient.writeKey = saved.writeKey;
      defaultClient.host = saved.host;
      defaultClient.send = saved.send;
      defaultClient.onError = saved.onError;
      defaultClient.maxRetries = saved.maxRetries;
    }
  });
});

test("the default client's onError, debug and syncMode are settable as properties", async () => {
  const saved = {
    writeKey: defaultClient.writeKey,
    host: defaultClient.host,
    onError: defaultClient.onError,
    debug: defaultClient.debug,
    syncMode: defaultClient.syncMode,
    logger: defaultClient.logger,
    maxRetries: defaultClient.maxRetries,
  };
  await withReceiver(async (r) => {
    const errors: DeliveryError[] = [];
    const logger = recordingLogger();
    try {
      defaultClient.writeKey = "K";
      defaultClient.host = r.url;
      defaultClient.maxRetries = 0;
      defaultClient.logger = logger;
      defaultClient.onError = (error) => void errors.push(error);
      defaultClient.debug = true;
      defaultClient.syncMode = true;
      assert.equal(defaultClient.debug, true);
      assert.equal(defaultClient.syncMode, true);
      r.reply({ status: 200 }, { status: 400, body: "no" });
      defaultClient.track("u", "One");
      defaultClient.track("u", "Two");
      await defaultClient.flush();
      // syncMode: one request per call.
      assert.equal(r.requests.length, 2);
      assert.deepEqual(r.requests.map((q) => q.body.batch?.length), [1, 1]);
      assert.equal(errors.length, 1);
      assert.equal(errors[0].reason, "http_status");
      assert.equal(errors[0].status, 400);
      assert.ok(logger.lines.some((line) => line.includes("[tally]")), "debug lines went to the logger");
    } finally {
      await defaultClient.flush();
      defaultClient.syncMode = saved.syncMode;
      defaultClient.debug = saved.debug;
      defaultClient.onError = saved.onError;
      defaultClient.logger = saved.logger;
      defaultClient.writeKey = saved.writeKey;
      defaultClient.host = saved.host;
      defaultClient.maxRetries = saved.maxRetries;
    }
  });
});

// ---------------------------------------------------------------- middleware and error listeners

test("use() middleware can enrich a message before it is sent", async () => {
  await withReceiver(async (r) => {
    const analytics = client(r);
    analytics.use((message) => ({ ...message, context: { ...message.context, app: { name: "shop" } } }));
    analytics.use((message) => {
      if (message.type === "track") message.properties = { ...message.properties, enriched: true };
      return message;
    });
    analytics.track("u", "E", { a: 1 });
    await analytics.close();
    const [sent] = r.messages();
    assert.deepEqual(sent.properties, { a: 1, enriched: true });
    assert.deepEqual(sent.context, { library: LIBRARY, app: { name: "shop" } });
  });
});

test("use() middleware returning null drops the message and stats().dropped counts it", async () => {
  await withReceiver(async (r) => {
    const errors: DeliveryError[] = [];
    const analytics = client(r, errors);
    analytics.use((message) => (message.type === "track" && message.event === "Secret" ? null : message));
    const id = analytics.track("u", "Secret");
    assert.match(id, UUID_V4);
    analytics.track("u", "Public");
    await analytics.close();
    assert.deepEqual(r.messages().map((m) => m.event), ["Public"]);
    assert.deepEqual(errors, []);
    assert.equal(analytics.stats().dropped, 1);
  });
});

test("an error thrown by middleware goes to onError with reason middleware and is never thrown", async () => {
  await withReceiver(async (r) => {
    const reports: [DeliveryError, Message[]][] = [];
    const analytics = new Analytics({
      writeKey: "KEY",
      host: r.url,
      onError: (error, messages) => void reports.push([error, messages]),
    });
    analytics.use(() => {
      throw new Error("scrubber broke");
    });
    let id = "";
    assert.doesNotThrow(() => {
      id = analytics.track("u", "E", { a: 1 });
    });
    assert.match(id, UUID_V4);
    await analytics.close();
    assert.equal(reports.length, 1);
    const [error, messages] = reports[0];
    assert.ok(error instanceof DeliveryError);
    assert.equal(error.reason, "middleware");
    assert.match(error.message, /scrubber broke/);
    assert.equal(messages.length, 1);
    assert.equal(messages[0].messageId, id);
    assert.equal(r.requests.length, 0);
  });
});

test("scrubbing in middleware never mutates the caller's objects", async () => {
  await withReceiver(async (r) => {
    const analytics = client(r);
    analytics.use((message) => {
      delete (message.traits as Record<string, unknown>).email;
      (message.traits as { address: { street?: string } }).address.street = "[redacted]";
      delete message.context.ip;
      return message;
    });
    const traits = { name: "John", email: "john@example.com", address: { street: "1 Main St", city: "X" } };
    const context = { ip: "203.0.113.7" };
    analytics.identify("u", traits, { context });
    assert.deepEqual(traits, { name: "John", email: "john@example.com", address: { street: "1 Main St", city: "X" } });
    assert.deepEqual(context, { ip: "203.0.113.7" });
    await analytics.close();
    const [sent] = r.messages();
    assert.deepEqual(sent.traits, { name: "John", address: { street: "[redacted]", city: "X" } });
    assert.deepEqual(sent.context, { library: LIBRARY });
  });
});

test("use() takes only functions", () => {
  const analytics = new Analytics({ send: false });
  assert.throws(() => analytics.use("scrub" as never), TypeError);
  assert.equal(analytics.use((m) => m), analytics, "use() chains");
});

test("on('error') listeners hear each undelivered message in analytics-node's shape; other names never throw", async () => {
  await withReceiver(async (r) => {
    const heard: { code: string; reason: DeliveryError; id: string }[] = [];
    const viaOption: DeliveryError[] = [];
    const analytics = client(r, viaOption);
    assert.equal(
      analytics.on("error", ({ code, reason, ctx }) => void heard.push({ code, reason, id: ctx.id })),
      analytics,
    );
    r.reply({ status: 400, body: '{"success":false}' });
    const ids = [analytics.track("u", "E"), analytics.track("u", "F")];
    await analytics.close();
    assert.deepEqual(heard.map((h) => h.id), ids);
    assert.equal(heard[0].code, "delivery_failure");
    assert.equal(heard[0].reason.reason, "http_status");
    assert.equal(heard[0].reason.status, 400);
    assert.equal(viaOption.length, 1, "onError still hears the batch once");
    assert.equal(analytics.on("something_else", () => {}), analytics);
    assert.throws(() => analytics.on("error", "handler" as never), TypeError);
  });
});

// ---------------------------------------------------------------- the write key stays secret

test("the write key never appears in error messages or debug log lines", async () => {
  await withReceiver(async (r) => {
    const key = "KEY123";
    const logger = recordingLogger();
    const errors: DeliveryError[] = [];
    const analytics = new Analytics({
      writeKey: key,
      host: r.url,
      debug: true,
      logger,
      maxRetries: 1,
      minRetryDelay: 0,
      onError: (error) => void errors.push(error),
    });
    r.reply(
      { status: 500, body: `internal error for ${key}` },
      { status: 400, body: `bad key ${key}` },
    );
    analytics.track("u", "E");
    await analytics.flush();

    // Without onError, undelivered messages are logged through logger.error.
    const quiet = new Analytics({ writeKey: key, host: r.url, logger, maxRetries: 0 });
    r.reply({ status: 401, body: `{"error":"invalid write key ${key}"}` });
    quiet.track("u", "E");
    await quiet.close();
    await analytics.close();

    assert.equal(r.requests.length, 3, "the server saw the key in each request");
    assert.equal(errors.length, 1);
    assert.equal(errors[0].status, 400);
    assert.ok(logger.lines.length > 0, "debug lines were logged");
    assert.ok(logger.lines.some((line) => line.includes("401")), "the failure without onError was logged");
    const seen = [
      ...logger.lines,
      ...errors.flatMap((e) => [e.message, String(e), e.stack ?? "", String(e.cause ?? "")]),
    ];
    for (const text of seen) assert.ok(!text.includes(key), `the key leaked into: ${text}`);

    // Option errors never echo the key either.
    for (
      const make of [
        () => new Analytics({ writeKey: key, uploadSize: 0 }),
        () => new Analytics(key, { writeKey: key }),
        () => new Analytics({ writeKey: key, nope: 1 } as never),
        () => new Analytics({ writeKey: [key] as never }),
      ]
    ) {
      assert.throws(make, (error: unknown) => !String((error as Error).message).includes(key));
    }
  });
});
