/** The collector's public types: its options, the running handle, stored events, stats and scripted replies. */
import type { PlanMode, Violation, ViolationCategory } from "../plan/model.ts";

export type { PlanMode, Violation, ViolationCategory };

/** Options of {@linkcode startCollector}. */
export interface CollectorOptions {
  /**
   * Port to listen on; 0 picks a free one (read it back from `Collector.port`).
   * @default {0}
   */
  port?: number;
  /**
   * Address to bind. Anything other than a loopback address exposes the collector to the network.
   * @default {"127.0.0.1"}
   */
  hostname?: string;
  /**
   * More names the query API, the stream and the inspector answer for, besides 127.0.0.1, localhost, [::1], the
   * bound address and (bound to 0.0.0.0 or ::) any IP address: a container's service name, a machine's name on the
   * network. Requests addressed to any other name get 403, so that a page on another site cannot reach them by
   * pointing its own name at this machine (DNS rebinding). Ingestion is not checked by name.
   * @default {[]}
   */
  allowHosts?: string[];
  /**
   * Origins, besides the loopback ones (`http://localhost:3000`, `http://127.0.0.1:5173`, any port), whose pages
   * may send events: an ingestion request that carries an `Origin` header from anywhere else gets 403. Requests
   * without one (server SDKs, curl) are always taken. `"null"` allows pages opened from files.
   * @default {[]}
   */
  allowOrigins?: string[];
  /**
   * When set, every ingestion request must carry this write key, as Basic auth (`base64(writeKey + ":")`) or as
   * `writeKey` in the body; other requests get 401. When unset, any key (or none) is accepted, as Segment does.
   * The query API and the inspector stay open either way.
   */
  writeKey?: string;
  /** An NDJSON file to append every stored event to (one `StoredEvent` per line). Unset: nothing is written. */
  out?: string;
  /**
   * Events kept in memory; beyond it the oldest are evicted and counted in `stats().evicted`.
   * @default {10000}
   */
  maxEvents?: number;
  /**
   * Bytes of events kept in memory, each counted as the length of its JSON line (as in the NDJSON file); beyond
   * it the oldest are evicted and counted in `stats().evicted`. The newest event is always kept.
   * @default {268435456} (256 MB)
   */
  maxBytes?: number;
  /**
   * MessageIds remembered to flag duplicates (`StoredEvent.duplicate`), evicted events' included. Past it the
   * oldest ids are forgotten (first seen, first forgotten), so a re-send of one of them is taken as new. Each id
   * costs at most about 300 bytes (ids over 100 characters are bad and not remembered): 100000 ids stay under
   * 30 MB.
   * @default {100000}
   */
  maxSeenIds?: number;
  /**
   * Milliseconds a client has to send a request's headers; then it gets 408 and its connection is closed. Idle
   * connections that start no request are closed after it too.
   * @default {10000}
   */
  headersTimeout?: number;
  /**
   * Milliseconds a client has to send a whole request, headers and body; then it gets 408 and its connection is
   * closed. At least `headersTimeout`.
   * @default {30000}
   */
  requestTimeout?: number;
  /**
   * Fraction (0..1) of ingestion requests answered with `failStatus` instead of being stored.
   * @default {0}
   */
  failRate?: number;
  /**
   * Status of an injected failure.
   * @default {500}
   */
  failStatus?: number;
  /** Seconds sent as `Retry-After` on injected failures (fractions are sent as written). Unset: no header. */
  retryAfter?: number;
  /**
   * Milliseconds to wait before answering each ingestion request.
   * @default {0}
   */
  latency?: number;
  /**
   * Fraction (0..1) of ingestion requests whose connection is closed without an answer, after the body was read.
   * @default {0}
   */
  dropConnectionRate?: number;
  /**
   * Fraction (0..1) of ingestion requests whose messages are stored and whose answer is then lost: the connection
   * is closed instead of answering 200, so the client retries a batch the collector already has, and the re-send is
   * stored again, flagged `duplicate` (a lost acknowledgement, the one fault that makes duplicates).
   * @default {0}
   */
  loseAckRate?: number;
  /** Seed of the fault decisions: the same seed and the same request order give the same faults. Unset: random. */
  seed?: number;
  /** Receives one line per request (and one per bad message). Unset: silent. */
  log?: (line: string) => void;
  /**
   * Keep every ingestion request in `Collector.requests` (method, path, headers, wire bytes, decoded body, time):
   * for tests. Memory grows with every request, so `tally serve` leaves it off. The request log is the one place
   * the write key is kept (tests check what a client sent): in this process only, never served or written.
   * @default {false}
   */
  recordRequests?: boolean;
  /**
   * A tracking plan file (Tally's format, a Segment Public API rules export or Typewriter's plan.json): every
   * message is checked against it as well as against the spec, and a stored event carries its `violations`. The
   * file is watched and reloaded when it changes; a new version that cannot be used is reported (`planLog`) and
   * the previous one kept. One that cannot be used at start rejects `startCollector`. Unset: no plan (and the
   * validator is never loaded).
   */
  plan?: string;
  /**
   * `observe` marks violations; `block-unplanned` also marks unplanned events `blocked` (still answered 200 and
   * kept, as Segment Protocols blocks after accepting the batch).
   * @default {"observe"}
   */
  planMode?: PlanMode;
  /**
   * Receives one line when the plan file is reloaded ("plan reloaded: ...") or cannot be ("plan not reloaded:
   * ...; keeping the previous one").
   * @default {log}
   */
  planLog?: (line: string) => void;
  /**
   * Milliseconds between polls of the plan file's modification time (besides `fs.watch`).
   * @default {1000}
   */
  planPollMs?: number;
}

/** A message as the collector stored it. */
export interface StoredEvent {
  /** Increasing from 1 in arrival order; never reused, even after `clear()`. */
  id: number;
  /** When the request carrying it arrived (ISO 8601, UTC). */
  receivedAt: string;
  /** "good" when the message follows the spec, "bad" otherwise. */
  status: "good" | "bad";
  /** Why a bad message is bad, one sentence per problem, each naming the field. Empty when good. */
  reasons: string[];
  /** Where it came from: the library that sent it, the page, the endpoint. */
  source: MessageSource;
  /**
   * True when a message with the same messageId was stored before (a re-send: a retry after a lost answer, a
   * replayed file); absent otherwise. Remembered ids are bounded by `maxSeenIds`; `clear()` forgets them.
   */
  duplicate?: true;
  /**
   * How the message breaks the tracking plan (`CollectorOptions.plan`), each with its category and JSON path;
   * absent when it keeps the plan or there is none. Its own axis: `status` and `reasons` stay the spec's.
   */
  violations?: Violation[];
  /** True when `planMode` is `block-unplanned` and the message is an unplanned event; absent otherwise. */
  blocked?: true;
  /**
   * The message as received (a batch's top-level `context` and `integrations` merged in, the item's own winning),
   * without any `writeKey` it carried. A message over the 32 KB limit once merged is kept as sent, unmerged.
   */
  message: Record<string, unknown>;
}

/** Where a stored message came from. Fields the request did not tell are absent. */
export interface MessageSource {
  /** `context.library.name` of the message: "analytics.js", "@tally/analytics", "analytics-node"... */
  library?: string;
  /** `context.library.version`. */
  version?: string;
  /** The request's `User-Agent` (at most 256 characters). */
  userAgent?: string;
  /** The request's `Origin`: the page that sent it (browsers only). */
  origin?: string;
  /** The path it was posted to: "/v1/t", "/v1/batch"... */
  endpoint: string;
}

/**
 * Which events `Collector.events()` and `GET /api/events` return, and `Collector.delete()` and
 * `DELETE /api/events?...` delete. Every field given must match.
 */
export interface EventFilter {
  /** Message type, such as "track". */
  type?: string;
  /** Exact userId, compared as text: 42 and "42" find a userId sent as the number 42 or as the string "42". */
  userId?: string | number;
  /** Exact anonymousId, compared as text as userId is. */
  anonymousId?: string | number;
  /** Track event name (exact). */
  event?: string;
  /** Good or bad messages only. */
  status?: "good" | "bad";
  /** The library that sent it (`source.library`, exact), such as "analytics.js". `library=` in the query API. */
  source?: string;
  /** Duplicates only (true), or all but duplicates (false). */
  duplicate?: boolean;
  /** Messages with plan violations only (true), or those without (false). */
  violations?: boolean;
  /** Messages with a plan violation of this category, such as "unplanned_event". */
  violation?: ViolationCategory;
  /** Blocked messages only (true), or all but blocked ones (false). */
  blocked?: boolean;
  /** At most this many, newest first. (`GET /api/events` answers 1000 when no limit is given, and at most 10000.) */
  limit?: number;
  /** Only events with a smaller id: the next page after an event of this id. */
  before?: number;
}

/** Counters since the collector started or was last cleared. */
export interface CollectorStats {
  /** Messages stored (good + bad), evicted ones included. */
  total: number;
  /** Messages stored as good. */
  good: number;
  /** Messages stored as bad. */
  bad: number;
  /**
   * Per message type; messages of a type outside the spec, or with none, are counted under "unknown", so the
   * counts add up to `total`.
   */
  byType: Record<string, { good: number; bad: number }>;
  /** Ingestion requests received (refused, failed and dropped ones included). */
  requests: number;
  /**
   * Bytes of ingestion request bodies read off the wire (before gunzip); of a body refused for its size, only what
   * was read up to the limit (the rest is read and discarded uncounted).
   */
  bytes: number;
  /** Events evicted from memory to stay within `maxEvents`. */
  evicted: number;
  /** Messages stored whose messageId had been stored before (`StoredEvent.duplicate`); counted in `total` too. */
  duplicates: number;
  /** analytics.js metrics data points received at `/v1/m` (never stored as events). */
  metrics: number;
  /** The tracking plan's counters; present only with `CollectorOptions.plan`. */
  plan?: PlanStats;
}

/** The tracking plan's counters in `CollectorStats.plan`. */
export interface PlanStats {
  /** The plan file, as given. */
  file: string;
  mode: PlanMode;
  /** Messages with at least one violation. */
  violations: number;
  /** Messages blocked (`block-unplanned`). */
  blocked: number;
  /** Messages with at least one violation of each category (a message can count under several). */
  byCategory: Partial<Record<ViolationCategory, number>>;
}

/** A scripted answer to one ingestion request, replacing normal processing (nothing is stored). */
export type ScriptedReply =
  | { status: number; body?: string; headers?: Record<string, string> }
  | { hang: true }
  | { drop: true };

/** One ingestion request as it arrived. */
export interface CollectorRequest {
  /** HTTP method, such as "POST". */
  method: string;
  /** Path and query, as requested. */
  path: string;
  /** Lower-case names; repeated headers joined with ", ". */
  headers: Record<string, string>;
  /** Body bytes on the wire (before gunzip). */
  wireBytes: number;
  /**
   * The decoded JSON body, write key included (this log stays in the process); `{}` when it was not JSON (or over
   * a limit).
   */
  body: { batch?: Record<string, unknown>[]; sentAt?: string; writeKey?: string; [key: string]: unknown };
  /** Milliseconds since the collector started. */
  at: number;
}

/** What the collector tells subscribers (and `GET /api/stream` clients). */
export type CollectorEvent =
  | { kind: "message"; event: StoredEvent }
  | { kind: "clear" }
  /** Some events were deleted (`Collector.delete()`, `DELETE /api/events?...`): their ids, newest first. */
  | { kind: "delete"; ids: number[] };

/** A running collector. */
export interface Collector {
  /** `http://HOST:PORT`, with no trailing slash. */
  url: string;
  /** The port listened on (the one picked when `port` was 0). */
  port: number;
  /** Stops listening, ends open connections (streams and hanging requests), flushes and closes the NDJSON file. */
  stop(): Promise<void>;
  /** Stored events matching `filter`, newest first. */
  events(filter?: EventFilter): StoredEvent[];
  /** Counters since start or the last `clear()`. */
  stats(): CollectorStats;
  /** Forgets every stored event and zeroes the stats (the NDJSON file is kept as is). */
  clear(): void;
  /**
   * Forgets the stored events matching `filter` (the newest `filter.limit` of them, when given) and takes them out
   * of `total`, `good`, `bad` and `byType`; `requests`, `bytes` and `evicted` stay. Returns how many were deleted.
   * `delete({})` deletes every event but, unlike `clear()`, keeps those three counters.
   */
  delete(filter: EventFilter): number;
  /** Ingestion requests in arrival order, when `recordRequests` is on (else always empty). A live array. */
  readonly requests: CollectorRequest[];
  /** Queues scripted replies for the next ingestion requests, in order; they come before the random faults. */
  script(...replies: ScriptedReply[]): void;
  /** The reply used when the script is empty; `undefined` restores normal processing. */
  setDefaultReply(reply: ScriptedReply | undefined): void;
  /**
   * Calls `listener` with each ingestion request once its body is read and before it is answered.
   * Returns a function that removes the listener.
   */
  onRequest(listener: (request: CollectorRequest) => void): () => void;
  /** Calls `listener` for each stored event and each clear. Returns a function that removes the listener. */
  subscribe(listener: (event: CollectorEvent) => void): () => void;
  /**
   * The plan in effect in one line (`plan FILE: 3 events, 2 pages, identify traits (mode observe)`), or undefined
   * when the collector has no plan.
   */
  describePlan(): string | undefined;
}
