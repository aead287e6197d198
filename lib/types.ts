import type { Context } from "./context.ts";
import type { DeliveryError } from "./errors.ts";

/**
 * The six Segment call types.
 *
 * @example Branch on a message's type
 * ```ts
 * import type { Message, MessageType } from "@tally/analytics";
 *
 * const label = (message: Message): string => {
 *   const type: MessageType = message.type;
 *   return type === "track" ? `track ${message.event}` : type;
 * };
 * console.log(label);
 * ```
 */
export type MessageType =
  | "identify"
  | "track"
  | "page"
  | "screen"
  | "group"
  | "alias";

/**
 * A user, group or previous id: a non-empty string, or a finite number (sent as a string).
 *
 * @example Numbers are sent as strings
 * ```ts
 * import { Analytics, type Id } from "@tally/analytics";
 *
 * const analytics = new Analytics({ send: false });
 * const userId: Id = 42;
 * analytics.identify(userId, { plan: "Free" }); // sent as userId "42"
 * ```
 */
export type Id = string | number | bigint;

/**
 * A JSON-like object of properties, traits or context (Dates, BigInts, Maps and Sets are converted).
 *
 * @example Properties with a Date and a BigInt
 * ```ts
 * import { Analytics, type Properties } from "@tally/analytics";
 *
 * const properties: Properties = { plan: "Pro", renewsAt: new Date(), seats: 12n };
 * new Analytics({ send: false }).track("user-1", "Plan Renewed", properties);
 * ```
 */
export type Properties = Record<string, unknown>;

/**
 * A timestamp: a `Date`, or an ISO-8601 string with `Z` or an offset.
 *
 * @example A historical event
 * ```ts
 * import { Analytics, type Timestamp } from "@tally/analytics";
 *
 * const timestamp: Timestamp = "2016-06-06T01:46:33.939+07:00"; // a zone is required
 * new Analytics({ send: false }).track("user-1", "Bought a game", {}, { timestamp });
 * ```
 */
export type Timestamp = Date | string;

/**
 * Destinations to turn on or off, such as `{ All: false, KISSmetrics: true }`.
 *
 * @example Send to one destination only
 * ```ts
 * import { Analytics, type Integrations } from "@tally/analytics";
 *
 * const integrations: Integrations = { All: false, KISSmetrics: true };
 * new Analytics({ send: false }).track("9742", "Song Played", {}, { integrations });
 * ```
 */
export type Integrations = Record<string, boolean | Record<string, unknown>>;

/**
 * The fields every call accepts; the trailing options object of the positional style.
 *
 * @example An anonymous visitor with context
 * ```ts
 * import { Analytics, type CallOptions } from "@tally/analytics";
 *
 * const options: CallOptions = { anonymousId: "anon-1", context: { ip: "1.2.3.4" } };
 * new Analytics({ send: false }).page(null, "Docs", "Install", { url: "https://example.com" }, options);
 * ```
 */
export interface CallOptions {
  /** An anonymous id, required when there is no `userId`. */
  anonymousId?: Id | null;
  /** Context about the call (`ip`, `userAgent`, ...); `library` is added. */
  context?: Properties | null;
  /** When the call took place, for historical imports; defaults to now. */
  timestamp?: Timestamp | null;
  /** Destinations to turn on or off. */
  integrations?: Integrations | null;
  /** The message id (at most 100 characters); a random UUID v4 by default. */
  messageId?: string | null;
}

/**
 * The object-style `identify()` parameters.
 *
 * @example
 * ```ts
 * import { Analytics, type IdentifyParams } from "@tally/analytics";
 *
 * const params: IdentifyParams = { userId: "019mr8mf4r", traits: { email: "john@example.com" } };
 * new Analytics({ send: false }).identify(params);
 * ```
 */
export interface IdentifyParams extends CallOptions {
  /** The user's id in your database. */
  userId?: Id | null;
  /** What you know about the user: `email`, `name`, ... */
  traits?: Properties | null;
}

/**
 * The object-style `track()` parameters.
 *
 * @example
 * ```ts
 * import { Analytics, type TrackParams } from "@tally/analytics";
 *
 * const params: TrackParams = { userId: "f4ca124298", event: "Signed Up", properties: { plan: "Enterprise" } };
 * new Analytics({ send: false }).track(params);
 * ```
 */
export interface TrackParams extends CallOptions {
  /** The user's id in your database. */
  userId?: Id | null;
  /** The event name, such as `"Signed Up"`. */
  event: string;
  /** The event's properties. */
  properties?: Properties | null;
}

/**
 * The object-style `page()` and `screen()` parameters.
 *
 * @example
 * ```ts
 * import { Analytics, type PageParams } from "@tally/analytics";
 *
 * const params: PageParams = { userId: "user_id", category: "Docs", name: "Python", properties: { url: "http://segment.com" } };
 * const analytics = new Analytics({ send: false });
 * analytics.page(params);
 * analytics.screen({ ...params, category: "Settings", name: "Brightness" });
 * ```
 */
export interface PageParams extends CallOptions {
  /** The user's id in your database. */
  userId?: Id | null;
  /** The page or screen name, such as `"Signup"`. */
  name?: string | null;
  /** The page or screen category, such as `"Docs"`. */
  category?: string | null;
  /** The page or screen properties (`url`, `title`, ...). */
  properties?: Properties | null;
}

/**
 * The object-style `group()` parameters.
 *
 * @example
 * ```ts
 * import { Analytics, type GroupParams } from "@tally/analytics";
 *
 * const params: GroupParams = { userId: "user_id", groupId: "group_id", traits: { name: "Initech" } };
 * new Analytics({ send: false }).group(params);
 * ```
 */
export interface GroupParams extends CallOptions {
  /** The user's id in your database. */
  userId?: Id | null;
  /** The group's id. */
  groupId: Id;
  /** What you know about the group: `name`, `industry`, ... */
  traits?: Properties | null;
}

/**
 * The object-style `alias()` parameters.
 *
 * @example
 * ```ts
 * import { Analytics, type AliasParams } from "@tally/analytics";
 *
 * const params: AliasParams = { previousId: "92734232-2342423423-973945", userId: "1234" };
 * new Analytics({ send: false }).alias(params);
 * ```
 */
export interface AliasParams extends Omit<CallOptions, "anonymousId"> {
  /** The id the user had before. */
  previousId: Id;
  /** The id the user has now. */
  userId: Id;
}

/**
 * A message as it is sent to Segment (inside a batch).
 *
 * @example Read the message a call built
 * ```ts
 * import { Analytics, type Message } from "@tally/analytics";
 *
 * const analytics = new Analytics({ send: false });
 * analytics.track("user-1", "Signed Up", {}, {}, (_error, ctx) => {
 *   const message: Message = ctx.event;
 *   console.log(message.type, message.messageId, message.context.library.name); // "track" "…" "@tally/analytics"
 * });
 * await analytics.flush();
 * ```
 */
export interface Message {
  /** The call type. */
  type: MessageType;
  /** A unique id, used by Segment to drop duplicates. */
  messageId: string;
  /** When the call took place, UTC ISO-8601 with milliseconds. */
  timestamp: string;
  /** The caller's context plus `library`. */
  context: Properties & { library: { name: string; version: string } };
  /** Destinations to turn on or off, when given. */
  integrations?: Integrations;
  /** The user id, when given. */
  userId?: string;
  /** The anonymous id, when given. */
  anonymousId?: string;
  /** The event name (track). */
  event?: string;
  /** The properties (track, page, screen). */
  properties?: Properties;
  /** The traits (identify, group). */
  traits?: Properties;
  /** The page or screen name. */
  name?: string;
  /** The page or screen category. */
  category?: string;
  /** The group id (group). */
  groupId?: string;
  /** The previous id (alias). */
  previousId?: string;
}

/**
 * Called once per call when its message is delivered (`error` undefined) or
 * will not be, with analytics-node's context: `ctx.event` is the message. A
 * promise it returns is awaited by `close()` / `closeAndFlush()`.
 *
 * @example
 * ```ts
 * import { Analytics, type Callback } from "@tally/analytics";
 *
 * const callback: Callback = (error, ctx) => {
 *   if (error) console.error("not delivered:", ctx.event.messageId, error.reason);
 * };
 * new Analytics({ send: false }).track("user-1", "Signed Up", { plan: "Pro" }, {}, callback);
 * ```
 */
export type Callback = (error: DeliveryError | undefined, ctx: Context) => unknown;

/**
 * Called for every batch of messages that will not be delivered.
 *
 * @example
 * ```ts
 * import { Analytics, type ErrorHandler } from "@tally/analytics";
 *
 * const onError: ErrorHandler = (error, messages) => console.error(error.reason, error.status, messages.length);
 * new Analytics({ writeKey: "KEY", onError });
 * ```
 */
export type ErrorHandler = (error: DeliveryError, messages: Message[]) => void;

/**
 * Middleware: returns the (possibly changed) message, or `null` to drop it;
 * it may return a promise of either (the message waits for it, and
 * `flush()` waits for the message).
 *
 * @example Scrub emails, drop health checks
 * ```ts
 * import { Analytics, type Middleware } from "@tally/analytics";
 *
 * const scrub: Middleware = (message) => {
 *   if (message.traits) delete message.traits.email;
 *   return message.event === "Health Check" ? null : message;
 * };
 * new Analytics({ send: false }).use(scrub);
 * ```
 */
export type Middleware = (
  message: Message,
) => Message | null | undefined | Promise<Message | null | undefined>;

/**
 * A console-like logger.
 *
 * @example Debug lines to stderr only
 * ```ts
 * import { Analytics, type Logger } from "@tally/analytics";
 *
 * const logger: Logger = { debug: console.error, info: console.error, warn: console.error, error: console.error };
 * new Analytics({ send: false, debug: true, logger });
 * ```
 */
export interface Logger {
  /** Debug-level lines (only when `debug` is on). */
  debug(...args: unknown[]): void;
  /** Informational lines. */
  info(...args: unknown[]): void;
  /** Warnings. */
  warn(...args: unknown[]): void;
  /** Errors, such as undelivered messages when no `onError` is set. */
  error(...args: unknown[]): void;
}

/**
 * The `fetch` function the client sends with.
 *
 * @example Wrap fetch to add a header
 * ```ts
 * import { Analytics, type FetchFn } from "@tally/analytics";
 *
 * const withTrace: FetchFn = (url, init) =>
 *   fetch(url, { ...init, headers: { ...init.headers as Record<string, string>, "X-Trace": "1" } });
 * new Analytics({ writeKey: "KEY", fetch: withTrace });
 * ```
 */
export type FetchFn = (input: string, init: RequestInit) => Promise<Response>;

/**
 * One request as an {@linkcode HttpClient} gets it (analytics-node's `HTTPClientRequest`).
 * `body` is the JSON text, or the gzipped bytes when `gzip` is on.
 */
export interface HttpClientRequest {
  /** The batch URL. */
  url: string;
  /** Always `"POST"`. */
  method: "POST";
  /** The request headers. */
  headers: Record<string, string>;
  /** The JSON body, or gzipped bytes with `Content-Encoding: gzip`. */
  body: string | Uint8Array<ArrayBuffer>;
  /** Milliseconds before the client gives up on this request (0: none). */
  httpRequestTimeout: number;
  /** Aborted when the request times out or the client closes. */
  signal: AbortSignal;
}

/** What an {@linkcode HttpClient} answers; `text()` and `headers` are optional. */
export interface HttpClientResponse {
  /** The HTTP status. */
  status: number;
  /** The status text. */
  statusText?: string;
  /** The response headers, as a `Headers` or a plain object. */
  headers?: Headers | Record<string, string | string[] | undefined>;
  /** The response body. */
  text?: () => Promise<string>;
  /** The response body as a stream (read only up to a few KB). */
  body?: ReadableStream<Uint8Array> | null;
}

/**
 * analytics-node's HTTP client object: `makeRequest(request)` sends one batch.
 *
 * @example
 * ```ts
 * import { Analytics, type HttpClient } from "@tally/analytics";
 *
 * const httpClient: HttpClient = {
 *   makeRequest: ({ url, method, headers, body, signal }) => fetch(url, { method, headers, body, signal }),
 * };
 * new Analytics({ writeKey: "KEY", httpClient });
 * ```
 */
export interface HttpClient {
  /** Sends one request and resolves with its answer. */
  makeRequest(request: HttpClientRequest): Promise<HttpClientResponse>;
}

/**
 * Counters since the client was created.
 *
 * @example
 * ```ts
 * import { Analytics, type Stats } from "@tally/analytics";
 *
 * const analytics = new Analytics({ send: false });
 * analytics.track("user-1", "Signed Up");
 * const stats: Stats = analytics.stats();
 * console.log(stats.queued, stats.delivered, stats.failed);
 * ```
 */
export interface Stats {
  /** Messages waiting in the queue. */
  queued: number;
  /** Messages in requests that have not settled yet. */
  inFlight: number;
  /** Messages the server accepted. */
  delivered: number;
  /** Messages reported as undelivered after being queued. */
  failed: number;
  /** Messages refused before queueing (queue full, closed client, middleware). */
  dropped: number;
  /** Retried requests. */
  retries: number;
  /** Batches started (a 413 split counts each half). */
  batches: number;
  /** Request body bytes put on the wire, over all attempts. */
  bytesSent: number;
  /** With `storage`: messages left on disk for the next start because `close()` timed out. */
  kept?: number;
  /** With `storage`: messages held in memory only because the disk refused to write them. */
  memoryOnly?: number;
  /** With `storage`: bytes of segment files in the folder. */
  storedBytes?: number;
}

/**
 * What `flush()` saw of the messages queued before it was called.
 *
 * @example
 * ```ts
 * import { Analytics, type FlushResult } from "@tally/analytics";
 *
 * const analytics = new Analytics({ send: false });
 * analytics.track("user-1", "Signed Up");
 * const result: FlushResult = await analytics.flush({ timeout: 2000 });
 * console.log(result.delivered, result.failed, result.pending);
 * ```
 */
export interface FlushResult {
  /** Messages delivered while the flush waited. */
  delivered: number;
  /** Messages reported as undelivered while the flush waited. */
  failed: number;
  /** Messages still unsettled when the flush returned (non-zero only after a timeout). */
  pending: number;
  /**
   * With `storage`: messages that `close()` could not send in time, left on
   * disk for the next start (not lost, so not reported through `onError`).
   */
  kept?: number;
}

/**
 * Options of `flush()`, `close()` and `closeAndFlush()`.
 *
 * @example
 * ```ts
 * import { Analytics, type FlushOptions } from "@tally/analytics";
 *
 * const options: FlushOptions = { timeout: 5000 };
 * await new Analytics({ send: false }).closeAndFlush(options);
 * ```
 */
export interface FlushOptions {
  /** Stop waiting after this many milliseconds. */
  timeout?: number;
}

/** analytics-node's name for {@linkcode HttpClient}. */
export type HTTPClient = HttpClient;
/** analytics-node's name for {@linkcode HttpClientRequest}. */
export type HTTPClientRequest = HttpClientRequest;
/** analytics-node's name for {@linkcode HttpClientResponse}. */
export type HTTPResponse = HttpClientResponse;
/** analytics-node's name for the traits of an identify. */
export type UserTraits = Properties;
/** analytics-node's name for the traits of a group. */
export type GroupTraits = Properties;
