/**
 * Hostile input, property-based (issue 9, section 2): fast-check builds
 * calls of every type, in both styles, with a hostile value in one field
 * (deep values, cycles, BigInt, symbols, throwing getters and `toJSON`,
 * throwing and revoked Proxies, strings near 32 KB, lone surrogates,
 * `__proto__`/`constructor` keys, odd and invalid dates, frozen objects,
 * class instances, Map/Set/boxed primitives, ...). Each call either throws a
 * `ValidationError` naming a field, or returns a messageId whose message
 * reaches the collector valid: `properties`/`traits`/`context`/`integrations`
 * JSON objects, `context.library` intact, a four-digit-year timestamp. Never
 * another exception, a corrupt batch, an `onError` report, or a poisoned
 * queue: a plain message sent after each run's calls is delivered too.
 *
 * Values are described by printable recipes and built fresh for each call,
 * so a counterexample prints readably (a throwing Proxy cannot be printed).
 * `TALLY_RELIABILITY_SEED` and `TALLY_RELIABILITY_RUNS` change the seed and the
 * number of runs; a failure prints the seed and the shrunk case.
 *
 * @module
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import process from "node:process";
import fc from "fast-check";
import { Analytics, ValidationError, VERSION } from "../mod.ts";
import { type CollectorRequest, startCollector } from "../serve/mod.ts";
import { SCALE } from "./fixtures/reliability_ledger.ts";

const SEED = Number(process.env.TALLY_RELIABILITY_SEED ?? 20260509);
const RUNS = Number(process.env.TALLY_RELIABILITY_RUNS ?? Math.round(200 * SCALE));

// ---- recipes: printable descriptions of hostile values

type Recipe =
  | { special: Special }
  | { any: unknown }
  | { str: string }
  | { obj: [string, Recipe][]; freeze?: boolean; nullProto?: boolean }
  | { arr: Recipe[] };

class Point {
  #secret = "hidden";
  constructor(public x: number, public y: number) {}
  get norm(): number {
    return Math.hypot(this.x, this.y);
  }
  reveal(): string {
    return this.#secret;
  }
}

class Money {
  constructor(readonly cents: bigint) {}
  toJSON(): Record<string, string> {
    return { amount: (Number(this.cents) / 100).toFixed(2) };
  }
}

const thrower = (what: string) => () => {
  throw new Error(`hostile ${what}`);
};

function deep(levels: number, leaf: unknown, wrap: (inner: unknown) => unknown): unknown {
  let value = leaf;
  for (let i = 0; i < levels; i++) value = wrap(value);
  return value;
}

const timestampTexts = {
  "ts-no-zone": "2012-10-17T18:58:57",
  "ts-date-only": "2012-10-17",
  "ts-feb-30": "2023-02-30T00:00:00Z",
  "ts-offset": "2012-10-17T18:58:57.911+14:00",
  "ts-offset-bad": "2012-10-17T18:58:57+99:99",
  "ts-9999-west": "9999-12-31T23:59:59.999-01:00", // year 10000 in UTC
  "ts-0000-east": "0000-01-01T00:00:00+01:00", // year -1 in UTC
  "ts-nanos": "2012-10-17T18:58:57.123456789Z",
  "ts-lower-z": "2012-10-17t18:58:57z",
  "ts-garbage": "yesterday",
} as const;

/** Builders of the hostile values a recipe names: each call builds a fresh one. */
const SPECIALS = {
  "cycle-object": () => {
    const o: Record<string, unknown> = { a: 1 };
    o.self = o;
    return o;
  },
  "cycle-array": () => {
    const a: unknown[] = [1];
    a.push(a);
    return a;
  },
  "cycle-through-map": () => {
    const o: Record<string, unknown> = {};
    o.m = new Map([["back", o]]);
    return o;
  },
  "shared-not-cycle": () => {
    const shared = { s: 1 };
    return { a: shared, b: shared, c: [shared, shared] };
  },
  "getter-throws": () => Object.defineProperty({ ok: 1 }, "bad", { get: thrower("getter"), enumerable: true }),
  "toJSON-throws": () => ({ toJSON: thrower("toJSON") }),
  "toJSON-undefined": () => ({ toJSON: () => undefined }),
  "toJSON-string": () => ({ toJSON: () => "a string" }),
  "toJSON-array": () => ({ toJSON: () => [1, 2] }),
  "toJSON-number": () => ({ toJSON: () => 42 }),
  "toJSON-cycle": () => {
    const o: Record<string, unknown> = {};
    o.toJSON = () => ({ again: o });
    return o;
  },
  "toJSON-not-function": () => ({ toJSON: "nope", x: 1 }),
  "proxy-throws": () =>
    new Proxy({ a: 1 }, {
      get: thrower("proxy get"),
      ownKeys: thrower("proxy ownKeys"),
      getOwnPropertyDescriptor: thrower("proxy descriptor"),
      getPrototypeOf: thrower("proxy getPrototypeOf"),
      has: thrower("proxy has"),
    }),
  "proxy-ownKeys-throws": () => new Proxy({ a: 1 }, { ownKeys: thrower("proxy ownKeys") }),
  "proxy-revoked": () => {
    const { proxy, revoke } = Proxy.revocable({ a: 1 }, {});
    revoke();
    return proxy;
  },
  "proxy-array-revoked": () => {
    const { proxy, revoke } = Proxy.revocable([1, 2], {});
    revoke();
    return proxy;
  },
  "proxy-benign": () => new Proxy({ a: 1, b: "two" }, {}),
  "date-invalid": () => new Date(NaN),
  "date-year-10000": () => new Date(Date.UTC(10000, 0, 1)),
  "date-max": () => new Date(8.64e15),
  "date-min": () => new Date(-8.64e15),
  "date-negative-year": () => new Date(Date.UTC(-1, 0, 1)),
  "date-year-0": () => new Date(Date.UTC(0, 0, 1)),
  "date-methods-throw": () => {
    const d = new Date(0);
    for (const name of ["getTime", "toISOString", "toJSON", "valueOf", "getUTCFullYear"]) {
      Object.defineProperty(d, name, { value: thrower(`Date.${name}`) });
    }
    return d;
  },
  "date-subclass": () => new (class Stamp extends Date {})(0),
  frozen: () => Object.freeze({ a: Object.freeze({ b: [1, 2] }) }),
  sealed: () => Object.seal({ a: 1 }),
  "frozen-array": () => Object.freeze([1, Object.freeze({ x: 1 })]),
  "class-instance": () => new Point(3, 4),
  "class-toJSON": () => new Money(12345n),
  "map-string-keys": () => new Map<unknown, unknown>([["a", 1], ["b", new Map([["c", 2]])]]),
  "map-object-keys": () => new Map<unknown, unknown>([[{ k: 1 }, "v"], [[1, 2], "w"]]),
  "map-symbol-key": () => new Map<unknown, unknown>([[Symbol("s"), 1]]),
  "map-key-throws": () => new Map<unknown, unknown>([[{ toString: thrower("key toString") }, 1]]),
  "map-key-proto": () => new Map<unknown, unknown>([["__proto__", { polluted: true }], ["constructor", 1]]),
  set: () => new Set([1, "two", { three: 3 }]),
  "boxed-string": () => new String("boxed"),
  "boxed-number": () => new Number(7),
  "boxed-boolean": () => new Boolean(false),
  "boxed-bigint": () => Object(10n),
  "boxed-symbol": () => Object(Symbol("boxed")),
  symbol: () => Symbol("hostile"),
  "symbol-keyed": () => ({ [Symbol("k")]: 1, plain: 2 }),
  function: () => () => 1,
  "class-itself": () => Point,
  bigint: () => 123n,
  "bigint-huge": () => 2n ** 200n,
  "bigint-negative": () => -(2n ** 70n),
  "deep-array-100": () => deep(100, 1, (v) => [v]),
  "deep-object-100": () => deep(100, 1, (v) => ({ v })),
  "deep-array-200": () => deep(200, 1, (v) => [v]),
  "deep-object-900": () => deep(900, 1, (v) => ({ v })),
  "deep-array-5000": () => deep(5000, 1, (v) => [v]),
  "deep-object-5000": () => deep(5000, "leaf", (v) => ({ v })),
  "deep-mixed-20000": () => {
    let value: unknown = null;
    for (let i = 0; i < 20_000; i++) value = i % 2 === 0 ? [value] : { v: value };
    return value;
  },
  "string-32k-ascii": () => "a".repeat(32_500),
  "string-32k-multibyte": () => "€".repeat(10_800), // 32 400 bytes of UTF-8
  "string-33k": () => "b".repeat(33_000),
  "string-32k-escapes": () => '"\\\n'.repeat(8_000), // 24 000 characters that JSON doubles
  "lone-high": () => "a\ud800b",
  "lone-low": () => "\udfffz",
  "reversed-pair": () => "\udc00\ud800",
  "lone-high-end": () => "end\udbff",
  "nul-and-controls": () => "\u0000\u0001\u001f\u2028\u2029",
  "proto-key-parsed": () => JSON.parse('{"__proto__":{"polluted":true},"a":1}'),
  "constructor-key": () => ({ constructor: { prototype: { polluted: true } } }),
  "prototype-key": () => ({ prototype: { polluted: true } }),
  "null-proto": () => Object.assign(Object.create(null), { a: 1, hasOwnProperty: 2 }),
  "library-key": () => ({ library: { name: "someone else", version: "0" } }),
  nan: () => NaN,
  infinity: () => -Infinity,
  "negative-zero": () => -0,
  regexp: () => /hostile/g,
  error: () => new Error("an error object"),
  "typed-array": () => new Uint8Array([1, 2, 3]),
  "array-buffer": () => new ArrayBuffer(8),
  "data-view": () => new DataView(new ArrayBuffer(4)),
  promise: () => Promise.resolve(1),
  weakmap: () => new WeakMap(),
  "sparse-array": () => {
    const a: unknown[] = [];
    a[5] = 1;
    return a;
  },
  "array-with-props": () => Object.assign([1, 2], { extra: "prop" }),
  "object-toString-throws": () => ({ toString: thrower("toString"), valueOf: thrower("valueOf") }),
  "then-getter-throws": () => Object.defineProperty({}, "then", { get: thrower("then"), enumerable: true }),
  "many-keys": () => Object.fromEntries(Array.from({ length: 2000 }, (_, i) => [`k${i}`, i])),
  ...Object.fromEntries(Object.entries(timestampTexts).map(([name, text]) => [name, () => text])),
} as Record<string, () => unknown>;

type Special = keyof typeof SPECIALS;
const SPECIAL_NAMES = Object.keys(SPECIALS) as Special[];

/** One UTF-16 unit or code point at a time, lone surrogates included. */
const unit = fc.oneof(
  { weight: 5, arbitrary: fc.string({ unit: "binary", minLength: 1, maxLength: 1 }) },
  { weight: 1, arbitrary: fc.integer({ min: 0xd800, max: 0xdfff }).map((c) => String.fromCharCode(c)) },
);
const hostileString = fc.string({ unit, maxLength: 12 });
const key = fc.oneof(
  { weight: 4, arbitrary: hostileString },
  {
    weight: 2,
    arbitrary: fc.constantFrom("__proto__", "constructor", "prototype", "toJSON", "library", "type", "messageId", ""),
  },
);

const recipe: fc.Arbitrary<Recipe> = fc.letrec<{ recipe: Recipe }>((tie) => ({
  recipe: fc.oneof(
    { depthSize: "small", withCrossShrink: true },
    { weight: 6, arbitrary: fc.constantFrom(...SPECIAL_NAMES).map((special) => ({ special })) },
    {
      weight: 3,
      arbitrary: fc.anything({
        maxDepth: 3,
        maxKeys: 5,
        key,
        stringUnit: unit,
        withBigInt: true,
        withBoxedValues: true,
        withDate: true,
        withMap: true,
        withSet: true,
        withNullPrototype: true,
        withObjectString: true,
        withSparseArray: true,
        withTypedArray: true,
      }).map((any) => ({ any })),
    },
    { weight: 1, arbitrary: hostileString.map((str) => ({ str })) },
    {
      weight: 2,
      arbitrary: fc.record({
        obj: fc.array(fc.tuple(key, tie("recipe")), { maxLength: 4 }),
        freeze: fc.boolean(),
        nullProto: fc.boolean(),
      }),
    },
    { weight: 1, arbitrary: fc.record({ arr: fc.array(tie("recipe"), { maxLength: 4 }) }) },
  ),
})).recipe;

/** Builds a fresh value from its recipe; `__proto__` and other keys become own properties. */
function build(r: Recipe): unknown {
  if ("special" in r) return SPECIALS[r.special]();
  if ("any" in r) return r.any;
  if ("str" in r) return r.str;
  if ("arr" in r) return r.arr.map(build);
  const o: Record<string, unknown> = r.nullProto ? Object.create(null) : {};
  for (const [k, v] of r.obj) {
    Object.defineProperty(o, k, { value: build(v), enumerable: true, writable: true, configurable: true });
  }
  return r.freeze ? Object.freeze(o) : o;
}

// ---- calls

const TYPES = ["identify", "track", "page", "screen", "group", "alias"] as const;
type CallType = (typeof TYPES)[number];
const OPTION_FIELDS = ["anonymousId", "context", "timestamp", "integrations", "messageId"] as const;
/** The type's own fields, in the order its positional form takes them. */
const OWN_FIELDS: Record<CallType, string[]> = {
  identify: ["userId", "traits"],
  track: ["userId", "event", "properties"],
  page: ["userId", "category", "name", "properties"],
  screen: ["userId", "category", "name", "properties"],
  group: ["userId", "groupId", "traits"],
  alias: ["previousId", "userId"],
};
const VALID: Record<string, unknown> = {
  userId: "u1",
  previousId: "p0",
  event: "Hostile Tested",
  category: "Docs",
  name: "Intro",
  groupId: "g1",
  properties: { ok: 1 },
  traits: { ok: 1 },
};
/** Every field a hostile value can take, per type; "options" / "params" is the whole options or params object. */
const TARGETS: [CallType, string][] = TYPES.flatMap((type) =>
  [...OWN_FIELDS[type], ...OPTION_FIELDS, "options"].map((field) => [type, field] as [CallType, string])
);

interface Case {
  target: [CallType, string];
  style: "object" | "positional";
  value: Recipe;
}

const hostileCase: fc.Arbitrary<Case> = fc.record({
  target: fc.constantFrom(...TARGETS),
  style: fc.constantFrom("object" as const, "positional" as const),
  value: recipe,
});

/** Makes the call a case describes; returns what it returned or threw. */
function call(analytics: Analytics, c: Case): { ok: true; id: unknown } | { ok: false; thrown: unknown } {
  const [type, field] = c.target;
  const value = build(c.value);
  const fields: Record<string, unknown> = {};
  for (const name of OWN_FIELDS[type]) fields[name] = VALID[name];
  let args: unknown[];
  if (c.style === "object") {
    let params: unknown = fields;
    if (field === "options") params = value;
    else fields[field] = value;
    args = [params];
  } else {
    let options: unknown = {};
    if (field === "options") options = value;
    else if ((OPTION_FIELDS as readonly string[]).includes(field)) (options as Record<string, unknown>)[field] = value;
    else fields[field] = value;
    args = [...OWN_FIELDS[type].map((name) => fields[name]), options];
  }
  try {
    return { ok: true, id: (analytics[type] as (...a: unknown[]) => unknown)(...args) };
  } catch (thrown) {
    return { ok: false, thrown };
  }
}

const ISO_UTC = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$/;
const isRecord = (v: unknown): boolean =>
  typeof v === "object" && v !== null && !Array.isArray(v) && Object.getPrototypeOf(v) === Object.prototype;

/** Why a message as the collector parsed it off the wire is not a valid one, or undefined. */
function wireProblem(m: Record<string, unknown>): string | undefined {
  if (!(TYPES as readonly string[]).includes(m.type as string)) return `type ${JSON.stringify(m.type)}`;
  if (typeof m.messageId !== "string" || m.messageId === "") return "messageId is not a non-empty string";
  if (typeof m.timestamp !== "string" || !ISO_UTC.test(m.timestamp)) return `timestamp ${JSON.stringify(m.timestamp)}`;
  for (const field of ["properties", "traits", "context", "integrations"]) {
    if (field in m && !isRecord(m[field])) {
      return `${field} is ${JSON.stringify(m[field])?.slice(0, 80)}, not an object`;
    }
  }
  const library = (m.context as { library?: unknown } | undefined)?.library;
  if (
    !isRecord(library) || JSON.stringify(library) !== JSON.stringify({ name: "@tally/analytics", version: VERSION })
  ) {
    return `context.library is ${JSON.stringify(library)}`;
  }
  for (const field of ["userId", "anonymousId", "previousId", "groupId", "event", "name", "category"]) {
    if (field in m && typeof m[field] !== "string") return `${field} is ${typeof m[field]}, not a string`;
  }
  if (m.type !== "alias" && m.userId === undefined && m.anonymousId === undefined) return "no userId or anonymousId";
  if (m.type === "alias" && (m.previousId === undefined || m.userId === undefined)) return "alias without its ids";
  if (m.type === "track" && !m.event) return "track without event";
  if (m.type === "group" && !m.groupId) return "group without groupId";
  if (new TextEncoder().encode(JSON.stringify(m)).length > 32 * 1024) return "over 32 KB";
  return undefined;
}

test(
  "hostile input in every field of every call, both styles: a ValidationError or a valid message, and the queue keeps working",
  {
    timeout: 120_000,
  },
  async () => {
    const collector = await startCollector({ maxEvents: 1_000 });
    const requests: CollectorRequest[] = [];
    collector.onRequest((request) => void requests.push(request));
    const reports: string[] = [];
    const analytics = new Analytics({
      writeKey: "hostile-key",
      host: collector.url,
      uploadInterval: 0.01,
      maxRetries: 0,
      onError: (error, messages) => void reports.push(`${error.reason} (${messages.length}): ${error.message}`),
    });
    const tally = { calls: 0, thrown: 0, sent: 0 };
    const objectProtoKeys = Object.getOwnPropertyNames(Object.prototype).sort().join();
    try {
      const details = await fc.check(
        fc.asyncProperty(fc.array(hostileCase, { minLength: 1, maxLength: 6 }), async (cases) => {
          requests.length = 0;
          reports.length = 0;
          const expected = new Map<string, number>();
          for (const c of cases) {
            tally.calls++;
            const outcome = call(analytics, c);
            if (!outcome.ok) {
              tally.thrown++;
              const thrown = outcome.thrown;
              if (!(thrown instanceof ValidationError)) {
                const what = thrown instanceof Error ? `${thrown.name}: ${thrown.message}` : typeof thrown;
                throw new Error(`${c.target.join(".")} (${c.style} style) threw ${what}, not a ValidationError`);
              }
              assert.equal(typeof thrown.field, "string", "a ValidationError names its field");
              assert.match(thrown.message, /^Cannot /);
              continue;
            }
            const id = outcome.id;
            assert.equal(typeof id, "string", `${c.target.join(".")} returned ${typeof id}, not a messageId`);
            expected.set(id as string, (expected.get(id as string) ?? 0) + 1);
            tally.sent++;
          }
          // The canary: a plain message after the hostile ones is still delivered.
          const canary = analytics.track({ userId: "canary", event: "Canary" });
          expected.set(canary, 1);
          const flushed = await analytics.flush({ timeout: 10_000 });
          assert.equal(flushed.pending, 0, "flush() ended with messages pending");
          assert.equal(reports.length, 0, `reported undelivered: ${reports.join("; ").slice(0, 600)}`);
          const received = new Map<string, number>();
          for (const request of requests) {
            const batch = request.body.batch;
            assert.ok(Array.isArray(batch), `a corrupt batch reached the collector (${request.wireBytes} bytes)`);
            for (const m of batch) {
              const problem = wireProblem(m);
              assert.equal(problem, undefined, `invalid message on the wire: ${problem}`);
              received.set(m.messageId as string, (received.get(m.messageId as string) ?? 0) + 1);
            }
          }
          assert.deepEqual(
            [...received].sort(),
            [...expected].sort(),
            "the collector got each accepted message once, and nothing else",
          );
          assert.equal(
            Object.getOwnPropertyNames(Object.prototype).sort().join(),
            objectProtoKeys,
            "Object.prototype was not polluted",
          );
          assert.equal(({} as Record<string, unknown>).polluted, undefined, "Object.prototype was not polluted");
        }),
        { seed: SEED, numRuns: RUNS, interruptAfterTimeLimit: 90_000 },
      );
      console.log(
        `[reliability] hostile input: ${details.numRuns} runs (seed ${SEED}), ${tally.calls} calls, ` +
          `${tally.thrown} ValidationErrors, ${tally.sent} sent${
            details.interrupted ? " (interrupted by the time limit)" : ""
          }`,
      );
      if (details.failed) {
        const cause = details.errorInstance instanceof Error
          ? details.errorInstance.message
          : String(details.errorInstance);
        throw new Error(`${fc.defaultReportMessage(details) ?? "the property failed"}\nThe error: ${cause}`);
      }
      assert.ok(details.numRuns >= Math.min(RUNS, 20), `only ${details.numRuns} runs in the time limit`);
      assert.ok(tally.thrown > 0 && tally.sent > 0, "both outcomes happened");
    } finally {
      await analytics.close({ timeout: 1000 });
      await collector.stop();
    }
  },
);
