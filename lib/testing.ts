import { Analytics } from "./client.ts";
import type { AnalyticsOptions } from "./options.ts";
import type { FetchFn, FlushOptions, Id, Message, MessageType, Properties } from "./types.ts";

/** The write key of clients the recorder creates or attaches when none is set. */
export const TEST_WRITE_KEY = "test-write-key";

/**
 * One request the recorder answered, as the client sent it.
 *
 * @example Inspect the wire
 * ```ts
 * import { Recorder } from "@tally/analytics/testing";
 *
 * const recorder = new Recorder();
 * const analytics = recorder.client({ gzip: true });
 * analytics.track("user-1", "Signed Up");
 * await recorder.flush();
 * const [request] = recorder.requests;
 * console.log(request.headers["content-encoding"], request.body?.batch.length); // "gzip" 1
 * ```
 */
export interface RecordedRequest {
  /** The URL the client posted to, such as `https://api.segment.io/v1/batch`. */
  url: string;
  /** The HTTP method (`POST`). */
  method: string;
  /** The request headers, with lower-case names. */
  headers: Record<string, string>;
  /** The decoded JSON body (gunzipped when needed); `undefined` when it was not JSON. */
  body: RecordedBody | undefined;
  /** The body's size on the wire, before gunzip. */
  bytes: number;
  /** The status the recorder answered with (0: a network error). */
  status: number;
}

/**
 * A batch request's body, as Segment receives it.
 *
 * @example Read the envelope
 * ```ts
 * import { Recorder } from "@tally/analytics/testing";
 *
 * const recorder = new Recorder();
 * recorder.client().identify("user-1", { plan: "Free" });
 * await recorder.flush();
 * const body = recorder.requests[0].body!;
 * console.log(body.writeKey, body.sentAt, body.batch[0].type); // "test-write-key" "2025-..." "identify"
 * ```
 */
export interface RecordedBody {
  /** The messages of the batch. */
  batch: Message[];
  /** When the request was sent (stamped per attempt). */
  sentAt: string;
  /** The write key, when the client put it in the body. */
  writeKey?: string;
}

/**
 * What to look for in a recorded message. Every field given must match;
 * fields left out match anything. Ids match as strings (`userId: 42` finds
 * `"42"`, as it is sent); `properties`, `traits`, `context` and
 * `integrations` match as a subset: nested objects match their given keys,
 * arrays match element by element, and a `Date` matches its ISO string.
 *
 * @example Find by type, user and a subset of properties
 * ```ts
 * import { type MessageFilter, Recorder } from "@tally/analytics/testing";
 *
 * const recorder = new Recorder();
 * recorder.client().track("user-1", "Order Completed", { total: 30, items: [{ sku: "A1", qty: 2 }] });
 * await recorder.flush();
 * const filter: MessageFilter = { type: "track", userId: "user-1", properties: { items: [{ sku: "A1" }] } };
 * console.log(recorder.find(filter).length); // 1
 * ```
 */
export interface MessageFilter {
  /** The call type. */
  type?: MessageType;
  /** The event name (track). */
  event?: string;
  /** The user id. */
  userId?: Id;
  /** The anonymous id. */
  anonymousId?: Id;
  /** The group id (group). */
  groupId?: Id;
  /** The previous id (alias). */
  previousId?: Id;
  /** The page or screen name. */
  name?: string;
  /** The page or screen category. */
  category?: string;
  /** Properties the message must have (a subset). */
  properties?: Properties;
  /** Traits the message must have (a subset). */
  traits?: Properties;
  /** Context the message must have (a subset), such as `{ ip: "1.2.3.4" }`. */
  context?: Properties;
  /** Integrations the message must have (a subset). */
  integrations?: Record<string, unknown>;
}

/**
 * A {@linkcode MessageFilter}, or a predicate for anything a filter cannot say.
 *
 * @example A predicate
 * ```ts
 * import { type MessageMatcher, Recorder } from "@tally/analytics/testing";
 *
 * const recorder = new Recorder();
 * recorder.client().track("user-1", "Order Completed", { total: 30 });
 * await recorder.flush();
 * const bigOrders: MessageMatcher = (message) => Number(message.properties?.total) > 20;
 * recorder.assertSent(bigOrders);
 * ```
 */
export type MessageMatcher = MessageFilter | ((message: Message) => boolean);

/**
 * How the recorder answers requests it is told to fail; see
 * {@linkcode Recorder.failNext}.
 *
 * @example Answer the next request with a 400
 * ```ts
 * import { type FailReply, Recorder } from "@tally/analytics/testing";
 *
 * const reply: FailReply = { status: 400, body: '{"error":"bad"}' };
 * const recorder = new Recorder().failNext(reply);
 * const errors: string[] = [];
 * recorder.client({ onError: (error) => errors.push(error.reason) }).track("user-1", "Signed Up");
 * await recorder.flush();
 * console.log(errors); // ["http_status"]
 * ```
 */
export interface FailReply {
  /**
   * The status to answer with; `0` makes the request fail as a network error.
   * @default {500}
   */
  status?: number;
  /**
   * How many requests (attempts, so retries count) to answer this way.
   * @default {1}
   */
  times?: number;
  /** The response body. */
  body?: string;
  /** Response headers, such as `{ "Retry-After": "1" }`. */
  headers?: Record<string, string>;
}

/** Options of {@linkcode Recorder.waitFor}. */
export interface WaitOptions {
  /**
   * How many matching messages to wait for.
   * @default {1}
   */
  count?: number;
  /**
   * Milliseconds to wait before failing with an {@linkcode AssertionError}.
   * @default {5000}
   */
  timeout?: number;
}

/**
 * Thrown by the recorder's assertions; its message lists what was recorded.
 *
 * @example Catch a failed assertion
 * ```ts
 * import { AssertionError, Recorder } from "@tally/analytics/testing";
 *
 * const recorder = new Recorder();
 * try {
 *   recorder.assertTracked("Signed Up");
 * } catch (error) {
 *   console.log(error instanceof AssertionError); // true
 * }
 * ```
 */
export class AssertionError extends Error {
  /** Creates an assertion error; `message` is the whole explanation. */
  constructor(message: string) {
    super(message);
    this.name = "AssertionError";
  }
}

const OK_BODY = '{"success":true}';
const SHOWN = 10;

interface Scripted {
  status: number;
  body: string;
  headers: Record<string, string>;
  left: number;
}

/**
 * An in-memory Segment endpoint for application tests: clients made by
 * {@linkcode Recorder.client} (or given its {@linkcode Recorder.fetch}) go
 * through the real path (validation, serialization, batching, gzip, retries)
 * and their requests end here instead of on the network. Then find messages
 * and assert on them by type, event, user and a subset of properties or
 * traits.
 *
 * @example Test an application function
 * ```ts
 * import type { Analytics } from "@tally/analytics";
 * import { Recorder } from "@tally/analytics/testing";
 *
 * // The code under test takes its client as a parameter.
 * function signUp(analytics: Analytics, userId: string, plan: string): void {
 *   analytics.identify(userId, { plan });
 *   analytics.track(userId, "Signed Up", { plan, trial: plan !== "Free" });
 * }
 *
 * const recorder = new Recorder();
 * signUp(recorder.client(), "user-1", "Pro");
 * await recorder.flush();
 *
 * recorder.assertIdentified("user-1", { plan: "Pro" });
 * const message = recorder.assertTracked("Signed Up", { userId: "user-1", properties: { trial: true } });
 * console.log(message.messageId, message.context.library.name); // "…" "@tally/analytics"
 * recorder.assertNotSent({ type: "alias" });
 * ```
 *
 * @example Record the module-level default client
 * ```ts
 * import analytics from "@tally/analytics";
 * import { Recorder } from "@tally/analytics/testing";
 *
 * const recorder = new Recorder();
 * recorder.attach(analytics); // its fetch now ends in the recorder
 * analytics.track("user-1", "Report Exported", { format: "csv" });
 * await recorder.waitFor({ event: "Report Exported" });
 * ```
 */
export class Recorder {
  readonly #messages: Message[] = [];
  readonly #requests: RecordedRequest[] = [];
  readonly #script: Scripted[] = [];
  readonly #clients = new Set<Analytics>();
  readonly #made = new Set<Analytics>();
  readonly #watchers = new Set<() => void>();

  /**
   * A `fetch` that records each request and answers it without any network:
   * pass it as the `fetch` option of a client you create yourself.
   *
   * @example Wire your own client
   * ```ts
   * import { Analytics } from "@tally/analytics";
   * import { Recorder } from "@tally/analytics/testing";
   *
   * const recorder = new Recorder();
   * const analytics = new Analytics({ writeKey: "KEY", fetch: recorder.fetch, uploadSize: 1 });
   * analytics.page("user-1", "Docs", "Install");
   * await recorder.waitFor({ type: "page", name: "Install" });
   * ```
   */
  readonly fetch: FetchFn = (input, init) => this.#answer(input, init);

  /**
   * Creates a client whose requests end in this recorder. `options` are the
   * usual {@linkcode AnalyticsOptions}; the write key defaults to
   * {@linkcode TEST_WRITE_KEY} and retries wait no time (so a test of a
   * failing server is fast); `fetch` is the recorder's and cannot be given.
   *
   * @example A client with gzip on
   * ```ts
   * import { Recorder } from "@tally/analytics/testing";
   *
   * const recorder = new Recorder();
   * const analytics = recorder.client({ gzip: true, uploadSize: 10 });
   * analytics.group("user-1", "acme", { name: "Acme" });
   * await recorder.flush();
   * recorder.assertSent({ type: "group", groupId: "acme", traits: { name: "Acme" } });
   * ```
   */
  client(options: AnalyticsOptions = {}): Analytics {
    if (options.fetch !== undefined || options.httpClient !== undefined) {
      throw new TypeError(
        "Cannot create a recorded client: the recorder supplies fetch; leave fetch and httpClient out",
      );
    }
    // Retries wait no time unless the test sets the delays itself.
    const delays = options.minRetryDelay === undefined && options.maxRetryDelay === undefined
      ? { minRetryDelay: 0, maxRetryDelay: 0 }
      : {};
    const client = new Analytics({ writeKey: TEST_WRITE_KEY, ...delays, ...options, fetch: this.fetch });
    this.#clients.add(client);
    this.#made.add(client);
    return client;
  }

  /**
   * Sends an existing client's requests to this recorder (it sets the
   * client's `fetch`, and its `writeKey` to {@linkcode TEST_WRITE_KEY} when it
   * has none) and includes it in {@linkcode Recorder.flush} and
   * {@linkcode Recorder.waitFor}. Returns the client.
   *
   * @example Attach a client made elsewhere
   * ```ts
   * import { Analytics } from "@tally/analytics";
   * import { Recorder } from "@tally/analytics/testing";
   *
   * const appClient = new Analytics({ uploadInterval: 60 });
   * const recorder = new Recorder();
   * recorder.attach(appClient).track("user-1", "Started");
   * await recorder.flush(); // does not wait a minute
   * recorder.assertTracked("Started");
   * ```
   */
  attach<T extends Analytics>(client: T): T {
    if (!(client instanceof Analytics)) throw new TypeError("Cannot attach: expected an Analytics client");
    client.fetch = this.fetch;
    if (client.writeKey === undefined) client.writeKey = TEST_WRITE_KEY;
    this.#clients.add(client);
    return client;
  }

  /**
   * Every message delivered to the recorder so far, in arrival order (a copy).
   *
   * @example Count what arrived
   * ```ts
   * import { Recorder } from "@tally/analytics/testing";
   *
   * const recorder = new Recorder();
   * const analytics = recorder.client();
   * analytics.track("user-1", "A");
   * analytics.track("user-1", "B");
   * await recorder.flush();
   * console.log(recorder.messages.map((m) => m.event)); // ["A", "B"]
   * ```
   */
  get messages(): Message[] {
    return [...this.#messages];
  }

  /**
   * Every request the recorder answered, failed ones included (a copy).
   *
   * @example One batch for a burst
   * ```ts
   * import { Recorder } from "@tally/analytics/testing";
   *
   * const recorder = new Recorder();
   * const analytics = recorder.client();
   * for (let i = 0; i < 5; i++) analytics.track("user-1", "Tick", { i });
   * await recorder.flush();
   * console.log(recorder.requests.length); // 1
   * ```
   */
  get requests(): RecordedRequest[] {
    return [...this.#requests];
  }

  /**
   * The delivered messages that match, in arrival order; all of them without
   * a matcher.
   *
   * @example Find a user's events
   * ```ts
   * import { Recorder } from "@tally/analytics/testing";
   *
   * const recorder = new Recorder();
   * const analytics = recorder.client();
   * analytics.track("user-1", "Viewed", { path: "/a" });
   * analytics.track("user-2", "Viewed", { path: "/b" });
   * await recorder.flush();
   * console.log(recorder.find({ userId: "user-2" })[0].properties); // { path: "/b" }
   * ```
   */
  find(matcher?: MessageMatcher): Message[] {
    if (matcher === undefined) return this.messages;
    const test = toPredicate(matcher);
    return this.#messages.filter(test);
  }

  /**
   * Asserts that a delivered message matches, exactly `times` messages when
   * `times` is given; returns the first match. The error lists the recorded
   * messages and why each did not match.
   *
   * @example Assert on an event and how often it was sent
   * ```ts
   * import { Recorder } from "@tally/analytics/testing";
   *
   * const recorder = new Recorder();
   * const analytics = recorder.client();
   * analytics.screen("user-1", "Settings", "Brightness", { from: "Home Screen" });
   * analytics.screen("user-1", "Settings", "Volume");
   * await recorder.flush();
   * recorder.assertSent({ type: "screen", category: "Settings" }, { times: 2 });
   * ```
   */
  assertSent(matcher: MessageMatcher, options: { times?: number } = {}): Message {
    const found = this.find(matcher);
    const times = options.times;
    if (times === undefined ? found.length > 0 : found.length === times) return found[0];
    const wanted = times === undefined ? "a message" : `${times} ${times === 1 ? "message" : "messages"}`;
    throw new AssertionError(
      `Expected ${wanted} matching ${describeMatcher(matcher)}, found ${found.length}.\n${this.#explain(matcher)}`,
    );
  }

  /**
   * Asserts that no delivered message matches; without a matcher, that
   * nothing was delivered at all.
   *
   * @example Nothing about a user who opted out
   * ```ts
   * import { Recorder } from "@tally/analytics/testing";
   *
   * const recorder = new Recorder();
   * recorder.client().track("user-1", "Viewed");
   * await recorder.flush();
   * recorder.assertNotSent({ userId: "opted-out" });
   * ```
   */
  assertNotSent(matcher?: MessageMatcher): void {
    const found = this.find(matcher);
    if (found.length === 0) return;
    const what = matcher === undefined ? "no messages" : `no message matching ${describeMatcher(matcher)}`;
    throw new AssertionError(
      `Expected ${what}, found ${found.length}:\n${found.slice(0, SHOWN).map((m) => `  ${summary(m)}`).join("\n")}`,
    );
  }

  /**
   * Asserts that a `track` of `event` was delivered, also matching `filter`
   * when given; returns the first match.
   *
   * @example
   * ```ts
   * import { Recorder } from "@tally/analytics/testing";
   *
   * const recorder = new Recorder();
   * recorder.client().track("user-1", "Signed Up", { plan: "Pro", coupon: "X" });
   * await recorder.flush();
   * recorder.assertTracked("Signed Up", { userId: "user-1", properties: { plan: "Pro" } });
   * ```
   */
  assertTracked(event: string, filter: Omit<MessageFilter, "type" | "event"> = {}): Message {
    return this.assertSent({ ...filter, type: "track", event });
  }

  /**
   * Asserts that an `identify` of `userId` was delivered, with at least
   * `traits` when given; returns the first match.
   *
   * @example
   * ```ts
   * import { Recorder } from "@tally/analytics/testing";
   *
   * const recorder = new Recorder();
   * recorder.client().identify(42, { email: "a@example.com", name: "A" });
   * await recorder.flush();
   * recorder.assertIdentified(42, { email: "a@example.com" });
   * ```
   */
  assertIdentified(userId: Id, traits?: Properties): Message {
    return this.assertSent(traits === undefined ? { type: "identify", userId } : { type: "identify", userId, traits });
  }

  /**
   * Flushes every client the recorder made or attached, then waits until
   * `count` (default 1) delivered messages match; resolves to them. Rejects
   * with an {@linkcode AssertionError} after `timeout` milliseconds (default
   * 5000). For clients the recorder does not know (given only its `fetch`), it
   * waits for their background delivery.
   *
   * @example Wait for background delivery
   * ```ts
   * import { Analytics } from "@tally/analytics";
   * import { Recorder } from "@tally/analytics/testing";
   *
   * const recorder = new Recorder();
   * const analytics = new Analytics({ writeKey: "KEY", fetch: recorder.fetch, uploadInterval: 0.01 });
   * analytics.alias("anon-1", "user-1");
   * const [message] = await recorder.waitFor({ type: "alias", previousId: "anon-1" }, { timeout: 1000 });
   * console.log(message.userId); // "user-1"
   * ```
   */
  waitFor(matcher?: MessageMatcher, options: WaitOptions = {}): Promise<Message[]> {
    const count = options.count ?? 1;
    const timeout = options.timeout ?? 5000;
    if (!Number.isInteger(count) || count < 1) {
      throw new RangeError(`Cannot wait: count must be a positive integer, got ${count}`);
    }
    if (typeof timeout !== "number" || !(timeout >= 0)) {
      throw new RangeError(`Cannot wait: timeout must be a number of milliseconds, got ${timeout}`);
    }
    for (const client of this.#clients) void client.flush();
    return new Promise((resolve, reject) => {
      const check = (): boolean => {
        const found = this.find(matcher);
        if (found.length < count) return false;
        finish();
        resolve(found);
        return true;
      };
      const finish = () => {
        clearTimeout(timer);
        this.#watchers.delete(check);
      };
      const timer = setTimeout(() => {
        finish();
        const found = this.find(matcher).length;
        const what = matcher === undefined ? "" : ` matching ${describeMatcher(matcher)}`;
        reject(
          new AssertionError(
            `Waited ${timeout} ms for ${count} ${count === 1 ? "message" : "messages"}${what}, found ${found}.\n${
              this.#explain(matcher)
            }`,
          ),
        );
      }, timeout);
      if (!check()) this.#watchers.add(check);
    });
  }

  /**
   * Flushes every client the recorder made or attached and resolves to all
   * messages delivered so far.
   *
   * @example
   * ```ts
   * import { Recorder } from "@tally/analytics/testing";
   *
   * const recorder = new Recorder();
   * recorder.client().track("user-1", "Signed Up");
   * const messages = await recorder.flush();
   * console.log(messages.length); // 1
   * ```
   */
  async flush(options: FlushOptions = {}): Promise<Message[]> {
    await Promise.all([...this.#clients].map((client) => client.flush(options)));
    return this.messages;
  }

  /**
   * Answers the next request(s) with a failure instead of 200, to test how
   * the application handles undelivered messages; see {@linkcode FailReply}.
   * Calls queue up: each takes effect after the previous ones are used.
   *
   * @example A server error, then success on the retry
   * ```ts
   * import { Recorder } from "@tally/analytics/testing";
   *
   * const recorder = new Recorder().failNext({ status: 503 });
   * recorder.client().track("user-1", "Signed Up");
   * await recorder.flush();
   * console.log(recorder.requests.map((r) => r.status)); // [503, 200]
   * recorder.assertTracked("Signed Up");
   * ```
   */
  failNext(reply: FailReply = {}): this {
    const times = reply.times ?? 1;
    if (!Number.isInteger(times) || times < 1) {
      throw new RangeError(`Cannot fail requests: times must be a positive integer, got ${times}`);
    }
    const status = reply.status ?? 500;
    if (!Number.isInteger(status) || (status !== 0 && (status < 200 || status > 599))) {
      throw new RangeError(`Cannot fail requests: status must be 0 or an HTTP status, got ${status}`);
    }
    this.#script.push({ status, body: reply.body ?? "", headers: reply.headers ?? {}, left: times });
    return this;
  }

  /**
   * Forgets the recorded messages and requests and any pending
   * {@linkcode Recorder.failNext}; clients stay connected.
   *
   * @example Between tests
   * ```ts
   * import { Recorder } from "@tally/analytics/testing";
   *
   * const recorder = new Recorder();
   * recorder.client().track("user-1", "Signed Up");
   * await recorder.flush();
   * recorder.reset();
   * recorder.assertNotSent();
   * ```
   */
  reset(): void {
    this.#messages.length = 0;
    this.#requests.length = 0;
    this.#script.length = 0;
  }

  /**
   * Closes the clients made by {@linkcode Recorder.client} (delivering what
   * they hold first); attached clients are only flushed, since they may be
   * shared with other tests.
   *
   * @example After a test
   * ```ts
   * import { Recorder } from "@tally/analytics/testing";
   *
   * const recorder = new Recorder();
   * recorder.client().track("user-1", "Signed Up");
   * await recorder.close();
   * recorder.assertTracked("Signed Up");
   * ```
   */
  async close(options: FlushOptions = {}): Promise<void> {
    await Promise.all(
      [...this.#clients].map((client) => this.#made.has(client) ? client.close(options) : client.flush(options)),
    );
    for (const client of this.#made) this.#clients.delete(client);
    this.#made.clear();
  }

  async #answer(input: string | URL | Request, init: RequestInit = {}): Promise<Response> {
    const signal = init.signal;
    if (signal?.aborted) throw signal.reason ?? new DOMException("The request was aborted", "AbortError");
    const request = input instanceof Request ? input : undefined;
    const headers: Record<string, string> = {};
    new Headers(init.headers ?? request?.headers).forEach((value, name) => void (headers[name] = value));
    const raw = new Uint8Array(await new Response(init.body ?? request?.body ?? null).arrayBuffer());
    let body: RecordedBody | undefined;
    try {
      const bytes = headers["content-encoding"] === "gzip" ? await gunzip(raw) : raw;
      const parsed = JSON.parse(new TextDecoder().decode(bytes));
      if (typeof parsed === "object" && parsed !== null && Array.isArray(parsed.batch)) body = parsed;
    } catch {
      // not a JSON batch: recorded with no body, answered all the same
    }
    const scripted = this.#script[0];
    if (scripted !== undefined && --scripted.left === 0) this.#script.shift();
    const status = scripted?.status ?? 200;
    this.#requests.push({
      url: String(request?.url ?? input),
      method: (init.method ?? request?.method ?? "GET").toUpperCase(),
      headers,
      body,
      bytes: raw.byteLength,
      status,
    });
    if (status === 0) throw new TypeError("fetch failed: the recorder was told to fail this request");
    if (scripted === undefined && body !== undefined) {
      this.#messages.push(...body.batch);
      for (const watcher of [...this.#watchers]) watcher();
    }
    if (scripted !== undefined) return new Response(scripted.body || null, { status, headers: scripted.headers });
    return new Response(OK_BODY, { status, headers: { "content-type": "application/json" } });
  }

  /** Why each recorded message does not match, for an assertion's message. */
  #explain(matcher: MessageMatcher | undefined): string {
    const messages = this.#messages;
    if (messages.length === 0) {
      const failed = this.#requests.filter((r) => r.status < 200 || r.status >= 300).length;
      return failed > 0
        ? `Nothing was delivered (${failed} failed ${failed === 1 ? "request" : "requests"}).`
        : "Nothing was delivered. Was the client flushed (await recorder.flush()) and given the recorder's fetch?";
    }
    const lines = messages.slice(-SHOWN).map((message) => {
      const why = typeof matcher === "object" ? mismatch(matcher, message) : undefined;
      return `  ${summary(message)}${why === undefined ? "" : `\n      ${why}`}`;
    });
    const more = messages.length > SHOWN ? ` (the last ${SHOWN})` : "";
    return `Delivered${more}:\n${lines.join("\n")}`;
  }
}

/** Gunzips bytes with the web-standard DecompressionStream. */
async function gunzip(bytes: Uint8Array<ArrayBuffer>): Promise<Uint8Array> {
  const stream = new Blob([bytes]).stream().pipeThrough(new DecompressionStream("gzip"));
  return new Uint8Array(await new Response(stream).arrayBuffer());
}

const ID_FIELDS = ["userId", "anonymousId", "groupId", "previousId"] as const;
const TEXT_FIELDS = ["type", "event", "name", "category"] as const;
const SUBSET_FIELDS = ["properties", "traits", "context", "integrations"] as const;

function toPredicate(matcher: MessageMatcher): (message: Message) => boolean {
  if (typeof matcher === "function") return (message) => matcher(message) === true;
  if (typeof matcher !== "object" || matcher === null) {
    throw new TypeError(`Cannot match messages: expected a filter object or a function, got ${typeof matcher}`);
  }
  return (message) => mismatch(matcher, message) === undefined;
}

/** The first way `message` differs from `filter`, or undefined when it matches. */
function mismatch(filter: MessageFilter, message: Message): string | undefined {
  for (const field of TEXT_FIELDS) {
    const want = filter[field];
    if (want !== undefined && message[field] !== want) return differs(field, want, message[field]);
  }
  for (const field of ID_FIELDS) {
    const want = filter[field];
    if (want !== undefined && message[field] !== String(want)) return differs(field, String(want), message[field]);
  }
  for (const field of SUBSET_FIELDS) {
    const want = filter[field];
    if (want !== undefined) {
      const why = subsetMismatch(want, message[field], field);
      if (why !== undefined) return why;
    }
  }
  return undefined;
}

const isObject = (value: unknown): value is Record<string, unknown> =>
  typeof value === "object" && value !== null && !Array.isArray(value);

/** Where `actual` fails to contain `expected`, as "path: expected X, got Y". */
function subsetMismatch(expected: unknown, actual: unknown, path: string): string | undefined {
  if (expected instanceof Date) {
    return actual === expected.toISOString() ? undefined : differs(path, expected.toISOString(), actual);
  }
  if (typeof expected === "bigint") {
    return actual === String(expected) ? undefined : differs(path, String(expected), actual);
  }
  if (Array.isArray(expected)) {
    if (!Array.isArray(actual)) return differs(path, expected, actual);
    if (actual.length !== expected.length) {
      return `${path}: expected ${expected.length} items, got ${actual.length}`;
    }
    for (let i = 0; i < expected.length; i++) {
      const why = subsetMismatch(expected[i], actual[i], `${path}[${i}]`);
      if (why !== undefined) return why;
    }
    return undefined;
  }
  if (isObject(expected)) {
    if (!isObject(actual)) return differs(path, expected, actual);
    for (const [key, value] of Object.entries(expected)) {
      const why = subsetMismatch(value, actual[key], `${path}.${key}`);
      if (why !== undefined) return why;
    }
    return undefined;
  }
  return Object.is(expected, actual) ? undefined : differs(path, expected, actual);
}

function show(value: unknown): string {
  if (value === undefined) return "nothing";
  const text = JSON.stringify(value) ?? String(value);
  return text.length > 80 ? text.slice(0, 80) + "…" : text;
}

const differs = (path: string, expected: unknown, actual: unknown): string =>
  `${path}: expected ${show(expected)}, got ${show(actual)}`;

function describeMatcher(matcher: MessageMatcher): string {
  if (typeof matcher === "function") return `the predicate ${matcher.name || "(anonymous)"}`;
  return show(matcher);
}

/** One line about a message: type, the name that identifies it, the ids, its payload. */
function summary(message: Message): string {
  const parts: string[] = [message.type];
  if (message.event !== undefined) parts.push(JSON.stringify(message.event));
  if (message.category !== undefined) parts.push(`category=${JSON.stringify(message.category)}`);
  if (message.name !== undefined) parts.push(`name=${JSON.stringify(message.name)}`);
  for (const field of ID_FIELDS) if (message[field] !== undefined) parts.push(`${field}=${message[field]}`);
  if (message.properties !== undefined) parts.push(`properties=${show(message.properties)}`);
  if (message.traits !== undefined) parts.push(`traits=${show(message.traits)}`);
  return parts.join(" ");
}
