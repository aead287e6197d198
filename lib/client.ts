import { Context } from "./context.ts";
import { Delivery } from "./delivery.ts";
import { Emitter, type EmitterEvents, type EventName } from "./emitter.ts";
import { DeliveryError, ValidationError } from "./errors.ts";
import * as build from "./message.ts";
import { type AnalyticsOptions, checkSetting, resolveOptions, type Settings } from "./options.ts";
import { type Plugin, Plugins } from "./plugins.ts";
import { redact } from "./redact.ts";
import { boundedByteLength, byteLength, MAX_MESSAGE_BYTES, serialize } from "./serialize.ts";
import { closeOnSignals, type CloseOnSignalsOptions } from "./signals.ts";
import type {
  AliasParams,
  Callback,
  CallOptions,
  ErrorHandler,
  FetchFn,
  FlushOptions,
  FlushResult,
  GroupParams,
  HttpClient,
  Id,
  IdentifyParams,
  Logger,
  Message,
  Middleware,
  PageParams,
  Properties,
  Stats,
  TrackParams,
} from "./types.ts";
import { VERSION } from "./version.ts";

const isParams = (value: unknown): value is object =>
  typeof value === "object" && value !== null && !Array.isArray(value);

function checkCallback(action: string, callback: unknown): Callback | undefined {
  if (callback === undefined || typeof callback === "function") return callback as Callback | undefined;
  throw new ValidationError("callback", `Cannot ${action}: the callback must be a function, got ${typeof callback}`);
}

function tooLarge(message: Message, json: string): ValidationError {
  const size = byteLength(json);
  let field = "message";
  let largest = 0;
  for (const [key, value] of Object.entries(message)) {
    const bytes = value === undefined ? 0 : byteLength(serialize({ [key]: value }, message.type)) - key.length - 5;
    if (bytes > largest) [field, largest] = [key, bytes];
  }
  return new ValidationError(
    field,
    `Cannot ${message.type}: the message is ${size} bytes, over Segment's ${MAX_MESSAGE_BYTES}-byte limit ` +
      `(${field} alone is ${largest} bytes)`,
  );
}

/**
 * A Segment-compatible analytics client: `identify`, `track`, `page`,
 * `screen`, `group` and `alias` queue a message and return its `messageId`
 * at once; batches go out in the background, gzipped and retried.
 *
 * @example The seed's positional style
 * ```ts
 * import { Analytics } from "@tally/analytics";
 *
 * const analytics = new Analytics({ writeKey: "YOUR_WRITE_KEY", send: false });
 * analytics.identify("019mr8mf4r", { email: "john@example.com", name: "John Smith", friends: 30 });
 * analytics.track("f4ca124298", "Signed Up", { plan: "Enterprise" });
 * await analytics.flush();
 * ```
 *
 * @example analytics-node's object style
 * ```ts
 * import { Analytics } from "@tally/analytics";
 *
 * const analytics = new Analytics({ writeKey: "KEY", send: false });
 * analytics.track({ userId: "f4ca124298", event: "Signed Up", properties: { plan: "Enterprise" } });
 * await analytics.closeAndFlush({ timeout: 5000 });
 * ```
 */
export class Analytics {
  readonly #s: Settings;
  readonly #d: Delivery;
  readonly #events: Emitter;
  readonly #plugins: Plugins;

  /**
   * Creates a client. Options are validated here: a wrong type is a
   * `TypeError`, a number out of range a `RangeError`, an unknown option a
   * `TypeError` naming it. The seed's `Client("KEY", { ... })` form works too.
   */
  constructor(options?: AnalyticsOptions);
  /** Creates a client for `writeKey`, as analytics-python's `Client("KEY", ...)`. */
  constructor(writeKey: string, options?: AnalyticsOptions);
  constructor(first: string | AnalyticsOptions = {}, second: AnalyticsOptions = {}) {
    const options = typeof first === "string" ? { ...second, writeKey: first } : first;
    if (typeof first === "string" && second.writeKey !== undefined) {
      throw new TypeError("Cannot create Analytics: the write key is given twice");
    }
    this.#s = resolveOptions(options);
    this.#events = new Emitter((name, thrown) => this.#logError(`[tally] a "${name}" listener threw:`, thrown));
    this.#d = new Delivery(this.#s, this.#events);
    this.#plugins = new Plugins(this, this.#events, (...args) => this.#logError(...args));
  }

  /** Resolves once the plugins registered so far have loaded (analytics-node's `analytics.ready`). */
  get ready(): Promise<void> {
    return this.#plugins.loading ?? Promise.resolve();
  }

  /** The library version (analytics-node's `analytics.VERSION`). */
  get VERSION(): string {
    return VERSION;
  }

  // The options, each readable and settable; a change applies from the next message or batch.

  /** The source's write key; never logged. */
  get writeKey(): string | undefined {
    return this.#s.writeKey;
  }
  set writeKey(value: string | undefined) {
    this.#set("writeKey", value);
  }
  /** The Segment-compatible endpoint; setting `null` or `undefined` restores the default. */
  get host(): string {
    return this.#s.host;
  }
  set host(value: string | null | undefined) {
    this.#set("host", value);
  }
  /** The batch path on `host`. */
  get path(): string {
    return this.#s.path;
  }
  set path(value: string) {
    this.#set("path", value);
  }
  /** Whether debug lines go to the logger. */
  get debug(): boolean {
    return this.#s.debug;
  }
  set debug(value: boolean) {
    this.#set("debug", value);
  }
  /** Where log lines go. */
  get logger(): Logger {
    return this.#s.logger;
  }
  set logger(value: Logger) {
    this.#set("logger", value);
  }
  /** Called with every batch of messages that will not be delivered. */
  get onError(): ErrorHandler | undefined {
    return this.#s.onError;
  }
  set onError(value: ErrorHandler | null | undefined) {
    this.#set("onError", value);
  }
  /** `false`: validate and build messages, send nothing. */
  get send(): boolean {
    return this.#s.send;
  }
  set send(value: boolean) {
    this.#set("send", value);
  }
  /** Each call starts its own request; no batching, no timer. */
  get syncMode(): boolean {
    return this.#s.syncMode;
  }
  set syncMode(value: boolean) {
    this.#set("syncMode", value);
  }
  /** Messages held before new ones are dropped. */
  get maxQueueSize(): number {
    return this.#s.maxQueueSize;
  }
  set maxQueueSize(value: number) {
    this.#set("maxQueueSize", value);
  }
  /** Messages per batch (1 to 2500). */
  get uploadSize(): number {
    return this.#s.uploadSize;
  }
  set uploadSize(value: number) {
    this.#set("uploadSize", value);
  }
  /** Seconds after its first message that a batch goes out. */
  get uploadInterval(): number {
    return this.#s.uploadInterval;
  }
  set uploadInterval(value: number) {
    this.#set("uploadInterval", value);
  }
  /** Whether requests are gzipped. */
  get gzip(): boolean {
    return this.#s.gzip;
  }
  set gzip(value: boolean) {
    this.#set("gzip", value);
  }
  /** Retries per batch. */
  get maxRetries(): number {
    return this.#s.maxRetries;
  }
  set maxRetries(value: number) {
    this.#set("maxRetries", value);
  }
  /** Seconds before a request is abandoned. */
  get timeout(): number {
    return this.#s.timeout;
  }
  set timeout(value: number) {
    this.#set("timeout", value);
  }
  /** Seconds before the first retry. */
  get minRetryDelay(): number {
    return this.#s.minRetryDelay;
  }
  set minRetryDelay(value: number) {
    this.#set("minRetryDelay", value);
  }
  /** The longest wait between retries, in seconds. */
  get maxRetryDelay(): number {
    return this.#s.maxRetryDelay;
  }
  set maxRetryDelay(value: number) {
    this.#set("maxRetryDelay", value);
  }
  /** The transport (undefined: the global `fetch` at send time). */
  get fetch(): FetchFn | HttpClient | undefined {
    return this.#s.fetch;
  }
  set fetch(value: FetchFn | HttpClient) {
    this.#set("fetch", value);
  }
  /** Seconds a program that ends is kept alive to deliver what is queued. */
  get exitTimeout(): number {
    return this.#s.exitTimeout;
  }
  set exitTimeout(value: number) {
    this.#set("exitTimeout", value);
  }
  /** Seconds one batch may spend retrying. */
  get maxTotalBackoffDuration(): number {
    return this.#s.maxTotalBackoffDuration;
  }
  set maxTotalBackoffDuration(value: number) {
    this.#set("maxTotalBackoffDuration", value);
  }
  /** Seconds the client may stay paused by 429s with Retry-After. */
  get maxRateLimitDuration(): number {
    return this.#s.maxRateLimitDuration;
  }
  set maxRateLimitDuration(value: number) {
    this.#set("maxRateLimitDuration", value);
  }
  /** The HTTP proxy every request goes through (Deno and Bun), or undefined. */
  get proxy(): string | undefined {
    return this.#s.proxy;
  }
  set proxy(value: string | null | undefined) {
    this.#set("proxy", value);
  }

  #set<K extends keyof Settings>(name: K, value: unknown): void {
    const checked = checkSetting(name, value);
    if (name === "minRetryDelay" && (checked as number) > this.#s.maxRetryDelay) {
      throw new RangeError("Cannot set minRetryDelay: it is greater than maxRetryDelay");
    }
    if (name === "maxRetryDelay" && (checked as number) < this.#s.minRetryDelay) {
      throw new RangeError("Cannot set maxRetryDelay: it is less than minRetryDelay");
    }
    this.#s[name] = checked;
    this.#d.settingsChanged();
  }

  /**
   * Ties a user to their traits: `identify(userId, traits?, options?)` or
   * `identify({ userId, traits, ... })`. Returns the messageId.
   */
  identify(params: IdentifyParams, callback?: Callback): string;
  /** `identify(userId, traits?, options?, callback?)`, the seed's positional style. */
  identify(
    userId: Id | null | undefined,
    traits?: Properties | null,
    options?: CallOptions | null,
    callback?: Callback,
  ): string;
  identify(a: unknown, b?: unknown, c?: unknown, d?: unknown): string {
    try {
      if (isParams(a)) return this.#accept(build.identifyParams(a as IdentifyParams), b);
      if (typeof c === "function") [c, d] = [undefined, c];
      else if (typeof b === "function") [b, d] = [undefined, b];
      return this.#accept(build.identify(a, b, c), d);
    } catch (error) {
      throw unreadable("identify", error);
    }
  }

  /**
   * Records an action: `track(userId, event, properties?, options?)` or
   * `track({ userId, event, properties, ... })`. Returns the messageId.
   */
  track(params: TrackParams, callback?: Callback): string;
  /** `track(userId, event, properties?, options?, callback?)`, the seed's positional style. */
  track(
    userId: Id | null | undefined,
    event: string,
    properties?: Properties | null,
    options?: CallOptions | null,
    callback?: Callback,
  ): string;
  track(a: unknown, b?: unknown, c?: unknown, d?: unknown, e?: unknown): string {
    try {
      if (isParams(a)) return this.#accept(build.trackParams(a as TrackParams), b);
      if (typeof d === "function") [d, e] = [undefined, d];
      else if (typeof c === "function") [c, e] = [undefined, c];
      return this.#accept(build.track(a, b, c, d), e);
    } catch (error) {
      throw unreadable("track", error);
    }
  }

  /**
   * Records a page view: `page(userId, category?, name?, properties?, options?)`
   * or `page({ userId, name, category, properties, ... })`. Returns the messageId.
   */
  page(params: PageParams, callback?: Callback): string;
  /** `page(userId, category?, name?, properties?, options?, callback?)`, the seed's positional style. */
  page(
    userId: Id | null | undefined,
    category?: string | null,
    name?: string | null,
    properties?: Properties | null,
    options?: CallOptions | null,
    callback?: Callback,
  ): string;
  page(a: unknown, b?: unknown, c?: unknown, d?: unknown, e?: unknown, f?: unknown): string {
    return this.#view("page", a, b, c, d, e, f);
  }

  /**
   * Records a screen view, with the same arguments as {@linkcode Analytics.page}.
   * Returns the messageId.
   */
  screen(params: PageParams, callback?: Callback): string;
  /** `screen(userId, category?, name?, properties?, options?, callback?)`, the seed's positional style. */
  screen(
    userId: Id | null | undefined,
    category?: string | null,
    name?: string | null,
    properties?: Properties | null,
    options?: CallOptions | null,
    callback?: Callback,
  ): string;
  screen(a: unknown, b?: unknown, c?: unknown, d?: unknown, e?: unknown, f?: unknown): string {
    return this.#view("screen", a, b, c, d, e, f);
  }

  #view(type: "page" | "screen", a: unknown, b: unknown, c: unknown, d: unknown, e: unknown, f: unknown): string {
    try {
      if (isParams(a)) return this.#accept(build.viewParams(type, a as PageParams), b);
      if (typeof e === "function") [e, f] = [undefined, e];
      else if (typeof d === "function") [d, f] = [undefined, d];
      else if (typeof c === "function") [c, f] = [undefined, c];
      else if (typeof b === "function") [b, f] = [undefined, b];
      return this.#accept(build.view(type, a, b, c, d, e), f);
    } catch (error) {
      throw unreadable(type, error);
    }
  }

  /**
   * Ties a user to a group: `group(userId, groupId, traits?, options?)` or
   * `group({ userId, groupId, traits, ... })`. Returns the messageId.
   */
  group(params: GroupParams, callback?: Callback): string;
  /** `group(userId, groupId, traits?, options?, callback?)`, the seed's positional style. */
  group(
    userId: Id | null | undefined,
    groupId: Id,
    traits?: Properties | null,
    options?: CallOptions | null,
    callback?: Callback,
  ): string;
  group(a: unknown, b?: unknown, c?: unknown, d?: unknown, e?: unknown): string {
    try {
      if (isParams(a)) return this.#accept(build.groupParams(a as GroupParams), b);
      if (typeof d === "function") [d, e] = [undefined, d];
      else if (typeof c === "function") [c, e] = [undefined, c];
      return this.#accept(build.group(a, b, c, d), e);
    } catch (error) {
      throw unreadable("group", error);
    }
  }

  /**
   * Ties a previous id to a user id: `alias(previousId, userId, options?)` or
   * `alias({ previousId, userId, ... })`. Returns the messageId.
   */
  alias(params: AliasParams, callback?: Callback): string;
  /** `alias(previousId, userId, options?, callback?)`, the seed's positional style. */
  alias(previousId: Id, userId: Id, options?: CallOptions | null, callback?: Callback): string;
  alias(a: unknown, b?: unknown, c?: unknown, d?: unknown): string {
    try {
      if (isParams(a)) return this.#accept(build.aliasParams(a as AliasParams), b);
      if (typeof c === "function") [c, d] = [undefined, c];
      return this.#accept(build.alias(a, b, c), d);
    } catch (error) {
      throw unreadable("alias", error);
    }
  }

  /** Serializes a built message, checks its size and hands it to delivery. */
  #accept(message: Message, cb: unknown): string {
    const type = message.type;
    const callback = checkCallback(type, cb);
    const s = this.#s;
    if (s.send && s.writeKey === undefined) {
      throw new ValidationError(
        "writeKey",
        `Cannot ${type}: no write key is set; set analytics.writeKey, pass { writeKey }, or { send: false } to send nothing`,
      );
    }
    const json = serialize(message, type);
    const plugins = this.#plugins;
    if (plugins.middleware.length > 0 || plugins.loading !== undefined || !s.send) {
      if (boundedByteLength(json) < 0) throw tooLarge(message, json);
      if (plugins.loading !== undefined) {
        // As analytics-node: a call made while plugins load waits for them, so none misses a message.
        this.#later(
          plugins.loading,
          () => this.#step(JSON.parse(json), 0, type, json, callback, true),
          type,
          json,
          callback,
        );
        return message.messageId;
      }
      if (plugins.middleware.length > 0) {
        this.#step(JSON.parse(json), 0, type, json, callback, false);
        return message.messageId;
      }
    } else if (!this.#d.enqueue(json, callback)) throw tooLarge(message, json);
    this.#queued(json, callback);
    return message.messageId;
  }

  /** Logs an accepted message and hands it to destination plugins; with `send: false`, also answers its callback. */
  #queued(json: string, callback: Callback | undefined): void {
    const s = this.#s;
    if (s.debug) {
      const shown = redact(json, s.writeKey); // the key may stand in a message (a property, an event name)
      this.#log("debug", `[tally] queued ${shown.length > 300 ? shown.slice(0, 300) + "…" : shown}`);
    }
    if (this.#plugins.destinations.length > 0) this.#plugins.deliverTo(json);
    if (!s.send && callback !== undefined) {
      queueMicrotask(() => {
        try {
          void callback(undefined, new Context(JSON.parse(json)));
        } catch (thrown) {
          this.#logError("[tally] a callback threw:", thrown);
        }
      });
    }
  }

  #log(level: "debug" | "error", ...args: unknown[]): void {
    try {
      this.#s.logger[level](...args);
    } catch {
      // A logger that throws must not break a call.
    }
  }

  #logError(...args: unknown[]): void {
    this.#log("error", ...args);
  }

  /**
   * Runs middleware from number `from` on `current` (a private deep copy, so
   * scrubbing never touches the caller's objects). Middleware that returns a
   * promise continues when it settles; flush() and close() wait for it.
   */
  #step(
    current: unknown,
    from: number,
    type: string,
    original: string,
    callback: Callback | undefined,
    admitted: boolean,
  ): void {
    const chain = this.#plugins.middleware;
    for (let i = from; i < chain.length; i++) {
      let result: unknown;
      try {
        result = chain[i](current as Message);
      } catch (cause) {
        return this.#middlewareFailed(
          `middleware threw: ${(cause as Error)?.message ?? cause}`,
          cause,
          type,
          original,
          callback,
        );
      }
      if (typeof (result as Promise<unknown>)?.then === "function") {
        return this.#later(
          result as Promise<unknown>,
          (value) => this.#step(value, i + 1, type, original, callback, true),
          type,
          original,
          callback,
        );
      }
      if (result == null) {
        if (this.#s.debug) this.#log("debug", `[tally] middleware dropped a ${type}`);
        return this.#d.drop(original, callback);
      }
      const wrong = notAMessage(result);
      if (wrong !== undefined) {
        return this.#middlewareFailed(`middleware returned ${wrong}`, undefined, type, original, callback);
      }
      current = result;
    }
    let json: string;
    try {
      json = serialize(current as Message, type);
    } catch (cause) {
      return this.#middlewareFailed("middleware returned an unserializable message", cause, type, original, callback);
    }
    if (this.#s.send ? !this.#d.enqueue(json, callback, admitted) : boundedByteLength(json) < 0) {
      return this.#d.reject(
        new DeliveryError(
          "too_large",
          `Cannot queue a ${type}: after middleware it is over ${MAX_MESSAGE_BYTES} bytes`,
        ),
        [original],
        callback,
      );
    }
    this.#queued(json, callback);
  }

  /** Continues a message once `promise` settles; flush(), close() and `drained` wait for it. */
  #later(
    promise: Promise<unknown>,
    then: (value: unknown) => void,
    type: string,
    original: string,
    callback: Callback | undefined,
  ): void {
    const why = (cause: unknown) => `middleware rejected: ${(cause as Error)?.message ?? cause}`;
    this.#d.admit(
      Promise.resolve(promise).then(
        then,
        (cause) => this.#middlewareFailed(why(cause), cause, type, original, callback),
      ),
    );
  }

  #middlewareFailed(why: string, cause: unknown, type: string, original: string, callback: Callback | undefined): void {
    this.#d.reject(new DeliveryError("middleware", `Cannot queue a ${type}: ${why}`, { cause }), [original], callback);
  }

  /**
   * Adds middleware that runs on every message before it is queued: return
   * the message (changed or not) to keep it, `null` to drop it. Errors it
   * throws are reported through `onError` (reason `middleware`), never thrown
   * into the call.
   */
  use(middleware: Middleware): this {
    if (typeof middleware !== "function") {
      throw new TypeError(`Cannot use middleware: expected a function, got ${typeof middleware}`);
    }
    this.#plugins.use(middleware);
    return this;
  }

  /**
   * Registers analytics-node plugins: `before` and `enrichment` plugins see
   * each message (as `ctx`) before it is queued and may change or cancel it;
   * `destination` plugins get each queued message. Resolves once each
   * plugin's `load()` has.
   */
  register(...plugins: Plugin[]): Promise<void> {
    return this.#plugins.register(plugins);
  }

  /** Removes the plugins with these names (calling their `unload()`, if any). */
  deregister(...names: string[]): Promise<void> {
    return this.#plugins.deregister(names);
  }

  /**
   * Listens to a client event (analytics-node's names): `error` (once per
   * message that will not be delivered: `{ code, reason, ctx }`),
   * `http_request`, `http_response`, `drained`, `call_after_close`, and
   * `identify`, `track`, `page`, `screen`, `group`, `alias` (a message of that
   * type was delivered). Other names are accepted and never heard.
   */
  on<K extends EventName>(name: K, listener: (...args: EmitterEvents[K]) => void): this;
  /** Listens to an event name Tally does not emit (kept, never called). */
  on(name: string, listener: (...args: never[]) => unknown): this;
  on(name: string, listener: (...args: never[]) => unknown): this {
    this.#events.on(name, listener);
    return this;
  }

  /** Listens to the next event `name` only. */
  once<K extends EventName>(name: K, listener: (...args: EmitterEvents[K]) => void): this;
  /** Listens to the next event of a name Tally does not emit. */
  once(name: string, listener: (...args: never[]) => unknown): this;
  once(name: string, listener: (...args: never[]) => unknown): this {
    this.#events.once(name, listener);
    return this;
  }

  /** Stops `listener` hearing `name`. */
  off(name: string, listener: (...args: never[]) => unknown): this {
    this.#events.off(name, listener);
    return this;
  }

  /**
   * Sends everything queued and resolves when all of it is delivered or
   * reported to `onError`; never rejects and never hangs past the retry
   * policy, or past `timeout` milliseconds when given.
   */
  flush(options: FlushOptions = {}): Promise<FlushResult> {
    return this.#d.flush(checkTimeout("flush", options));
  }

  /**
   * Flushes, then refuses new calls (reported as `closed`). When `timeout`
   * milliseconds pass first, what is left is aborted and reported as `closed`.
   * Waits for the promises that async callbacks return.
   */
  close(options: FlushOptions = {}): Promise<FlushResult> {
    return this.#d.close(checkTimeout("close", options));
  }

  /** analytics-python's `join()`: finishes what is queued and stops, as {@linkcode Analytics.close} does. */
  join(options: FlushOptions = {}): Promise<FlushResult> {
    return this.close(options);
  }

  /** analytics-node's name for {@linkcode Analytics.close}. */
  closeAndFlush(options: FlushOptions = {}): Promise<FlushResult> {
    return this.close(options);
  }

  /** analytics-python's name for {@linkcode Analytics.close}. */
  shutdown(options: FlushOptions = {}): Promise<FlushResult> {
    return this.close(options);
  }

  /**
   * On SIGTERM or SIGINT (Deno's, Bun's and Node's), closes the client within
   * `timeout` milliseconds, then lets the program's own handlers and the
   * signal's default behaviour run; never calls `process.exit` itself.
   * Returns a function that removes the handlers.
   */
  closeOnSignals(options: CloseOnSignalsOptions = {}): () => void {
    return closeOnSignals(this, options);
  }

  /** Counters: queued, inFlight, delivered, failed, dropped, retries, batches, bytesSent. */
  stats(): Stats {
    return this.#d.stats();
  }
}

/**
 * A call's error as the caller gets it: a `ValidationError` as it is; anything
 * else a hostile argument threw while it was read (a getter, a Proxy trap, a
 * revoked Proxy, a stack overflow) as a `ValidationError` that says so.
 */
function unreadable(action: string, error: unknown): ValidationError {
  if (error instanceof ValidationError) return error;
  const why = (error as Error)?.message ?? String(error);
  return new ValidationError("arguments", `Cannot ${action}: reading its arguments threw: ${why}`, { cause: error });
}

/** Why a middleware result is not a message, or undefined when it is one. */
function notAMessage(value: unknown): string | undefined {
  if (typeof value !== "object" || value === null) return `${typeof value} in place of a message`;
  if (Array.isArray(value)) return "an array in place of a message";
  const proto = Object.getPrototypeOf(value);
  if (proto !== Object.prototype && proto !== null) return "an object that is not a plain message";
  const m = value as Partial<Message>;
  if (typeof m.type !== "string" || (m.type as string) === "") return "a message without its type";
  if (typeof m.messageId !== "string" || m.messageId === "") return "a message without its messageId";
  return undefined;
}

function checkTimeout(action: string, options: FlushOptions): number | undefined {
  const timeout = options?.timeout;
  if (timeout === undefined) return undefined;
  if (typeof timeout !== "number" || !(timeout >= 0) || timeout === Infinity) {
    throw new RangeError(`Cannot ${action}: timeout must be a finite number of milliseconds, got ${timeout}`);
  }
  return timeout;
}
