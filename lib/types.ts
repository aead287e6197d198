import type { DeliveryError } from "./errors.ts";

/** The six Segment call types. */
export type MessageType =
  | "identify"
  | "track"
  | "page"
  | "screen"
  | "group"
  | "alias";

/** A user, group or previous id: a non-empty string, or a finite number (sent as a string). */
export type Id = string | number;

/** A JSON-like object of properties, traits or context (Dates, BigInts, Maps and Sets are converted). */
export type Properties = Record<string, unknown>;

/** A timestamp: a `Date`, or an ISO-8601 string with `Z` or an offset. */
export type Timestamp = Date | string;

/** Destinations to turn on or off, such as `{ All: false, KISSmetrics: true }`. */
export type Integrations = Record<string, boolean | Record<string, unknown>>;

/** The fields every call accepts; the trailing options object of the positional style. */
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

/** The object-style `identify()` parameters. */
export interface IdentifyParams extends CallOptions {
  /** The user's id in your database. */
  userId?: Id | null;
  /** What you know about the user: `email`, `name`, ... */
  traits?: Properties | null;
}

/** The object-style `track()` parameters. */
export interface TrackParams extends CallOptions {
  /** The user's id in your database. */
  userId?: Id | null;
  /** The event name, such as `"Signed Up"`. */
  event: string;
  /** The event's properties. */
  properties?: Properties | null;
}

/** The object-style `page()` and `screen()` parameters. */
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

/** The object-style `group()` parameters. */
export interface GroupParams extends CallOptions {
  /** The user's id in your database. */
  userId?: Id | null;
  /** The group's id. */
  groupId: Id;
  /** What you know about the group: `name`, `industry`, ... */
  traits?: Properties | null;
}

/** The object-style `alias()` parameters. */
export interface AliasParams extends Omit<CallOptions, "anonymousId"> {
  /** The id the user had before. */
  previousId: Id;
  /** The id the user has now. */
  userId: Id;
}

/** A message as it is sent to Segment (inside a batch). */
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

/** Called once per call when its message is delivered (`error` undefined) or will not be. */
export type Callback = (error: DeliveryError | undefined, message: Message) => void;

/** Called for every batch of messages that will not be delivered. */
export type ErrorHandler = (error: DeliveryError, messages: Message[]) => void;

/** Middleware: returns the (possibly changed) message, or `null` to drop it. */
export type Middleware = (message: Message) => Message | null | undefined;

/** A console-like logger. */
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

/** The `fetch` function the client sends with. */
export type FetchFn = (input: string, init: RequestInit) => Promise<Response>;

/** Counters since the client was created. */
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
}

/** What `flush()` saw of the messages queued before it was called. */
export interface FlushResult {
  /** Messages delivered while the flush waited. */
  delivered: number;
  /** Messages reported as undelivered while the flush waited. */
  failed: number;
  /** Messages still unsettled when the flush returned (non-zero only after a timeout). */
  pending: number;
}

/** Options of `flush()`, `close()` and `closeAndFlush()`. */
export interface FlushOptions {
  /** Stop waiting after this many milliseconds. */
  timeout?: number;
}
