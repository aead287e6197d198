/**
 * The collector's HTTP server: Segment's ingestion endpoints (limits, gzip,
 * auth, validation, storage), the query API, the event stream, the
 * inspector page, fault injection and scripted replies.
 */
import { Buffer } from "node:buffer";
import { createServer, type IncomingMessage, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { gunzipSync } from "node:zlib";
import { hostAllowed, hostNames, normalHost, normalOrigin, originAllowed, sameOrigin } from "./access.ts";
import { basicUser, keyChecker } from "./auth.ts";
import { FaultPlan } from "./faults.ts";
import { INSPECTOR_HTML } from "./inspector.ts";
import { BATCH_LIMIT, MERGED_LIMIT, MESSAGE_LIMIT, NESTING_LIMIT, REQUEST_LIMIT } from "./limits.ts";
import { NdjsonWriter } from "./ndjson.ts";
import { nestingDepth } from "./nesting.ts";
import { EventStore, type Verdict } from "./store.ts";
import { STREAM_CLIENTS, StreamHub } from "./stream.ts";
import type {
  Collector,
  CollectorEvent,
  CollectorOptions,
  CollectorRequest,
  CollectorStats,
  EventFilter,
  MessageSource,
  PlanMode,
  ScriptedReply,
  StoredEvent,
} from "./types.ts";
import type { OpenPlan } from "../plan/collector.ts";
import { isPlanMode, PLAN_MODES, VIOLATION_CATEGORIES } from "../plan/model.ts";
import { describe, validateMessage } from "./validate.ts";
import { countMetrics, ENDPOINTS, SETTINGS_PATH, settingsFor, SourceMaker } from "./web.ts";

const JSON_TYPE = "application/json";
const OK_BODY = '{"success":true}';
const OK_HEADERS = { "content-type": JSON_TYPE, "content-length": String(OK_BODY.length) };
/**
 * A body over the limit is not kept, but the rest of it is read and thrown away, up to this many bytes past the
 * limit and for this long, before the 400 goes out with `Connection: close`: closing a socket with unread bytes
 * makes the kernel send a reset, which can reach the client before it reads the answer (and a client takes a
 * reset for a network error, to retry). Past either bound the answer goes out at once and the socket is
 * destroyed after `REFUSED_LINGER_MS`, reading nothing more.
 */
const DRAIN_BYTES = 4 * 1024 * 1024;
const DRAIN_MS = 5000;
const REFUSED_LINGER_MS = 1000;
/** A refusal for size closes its connection: the client cannot reuse one holding the rest of a refused body. */
const CLOSE = { connection: "close" } as const;
/** Events `GET /api/events` answers when no `limit` is given, and the most it answers at once. */
const PAGE_DEFAULT = 1000;
const PAGE_MAX = 10_000;
/** Characters of events written at once to an answer of `GET /api/events`. */
const ANSWER_CHUNK = 256 * 1024;
/** How long an answer waits for its reader to take what was written before the connection is destroyed. */
const ANSWER_STALL_MS = 30_000;
/** Bytes of memory an event costs beyond its JSON line, counted against `maxBytes` when no line was made. */
const EVENT_OVERHEAD = 128;
/** Headers a page may send with an ingestion request (CORS preflight). */
const CORS_HEADERS = "authorization, content-type, content-encoding, x-retry-count";

type Json = Record<string, unknown>;

const INSPECTOR_LENGTH = String(Buffer.byteLength(INSPECTOR_HTML));

const isObject = (value: unknown): value is Json =>
  typeof value === "object" && value !== null && !Array.isArray(value);

const unref = (timer: unknown): void => (timer as { unref?: () => void }).unref?.();

/** A body being refused for its size, told what else arrives. */
interface Refusal {
  /** More of the body was read (and dropped). */
  read(bytes: number): void;
  /** The body ended. */
  ended(): void;
  /** The client went away. */
  abort(): void;
}

/** The settings after defaults and checks. */
interface Settings {
  port: number;
  hostname: string;
  allowHosts: string[];
  allowOrigins: string[];
  writeKey: string | undefined;
  out: string | undefined;
  maxEvents: number;
  maxBytes: number;
  maxSeenIds: number;
  headersTimeout: number;
  requestTimeout: number;
  failRate: number;
  failStatus: number;
  retryAfter: number | undefined;
  latency: number;
  dropConnectionRate: number;
  loseAckRate: number;
  seed: number;
  log: ((line: string) => void) | undefined;
  recordRequests: boolean;
  plan: string | undefined;
  planMode: PlanMode;
  planLog: ((line: string) => void) | undefined;
  planPollMs: number;
}

function check(options: CollectorOptions): Settings {
  const fail = (what: string, value: unknown): never => {
    throw new RangeError(`Cannot start the collector: ${what}, got ${String(value)}`);
  };
  const number = (name: keyof CollectorOptions, fallback: number, ok: (n: number) => boolean, what: string) => {
    const value = options[name] ?? fallback;
    if (typeof value !== "number" || !ok(value)) fail(`${name} must be ${what}`, value);
    return value as number;
  };
  const rate = (n: number) => n >= 0 && n <= 1;
  const nonNegative = (n: number) => Number.isFinite(n) && n >= 0;
  const positive = (n: number) => Number.isFinite(n) && n > 0;
  const list = (name: "allowHosts" | "allowOrigins", normal: (text: string) => string | undefined): string[] => {
    const value = options[name] ?? [];
    if (!Array.isArray(value)) fail(`${name} must be an array of strings`, value);
    return value.map((item) => {
      const normalized = typeof item === "string" && item.trim() !== "" ? normal(item) : undefined;
      return normalized ??
        fail(`${name} holds ${JSON.stringify(item)}, not ${name === "allowHosts" ? "a host name" : "an origin"}`, item);
    });
  };
  const headersTimeout = number("headersTimeout", 10_000, positive, "a number of milliseconds > 0");
  const requestTimeout = number(
    "requestTimeout",
    Math.max(30_000, headersTimeout),
    positive,
    "a number of milliseconds > 0",
  );
  if (requestTimeout < headersTimeout) {
    fail(`requestTimeout must be at least headersTimeout (${headersTimeout})`, requestTimeout);
  }
  for (const name of ["log", "planLog"] as const) {
    if (options[name] !== undefined && typeof options[name] !== "function") {
      throw new TypeError(`Cannot start the collector: ${name} must be a function`);
    }
  }
  const planMode = options.planMode ?? "observe";
  if (!isPlanMode(planMode)) {
    throw new TypeError(
      `Cannot start the collector: planMode must be ${PLAN_MODES.join(" or ")}, got ${JSON.stringify(planMode)}`,
    );
  }
  if (options.planMode !== undefined && options.plan === undefined) {
    throw new TypeError("Cannot start the collector: planMode is given without a plan");
  }
  for (const name of ["hostname", "writeKey", "out", "plan"] as const) {
    const value = options[name];
    if (value !== undefined && (typeof value !== "string" || value === "")) {
      fail(`${name} must be a non-empty string`, value);
    }
  }
  return {
    port: number("port", 0, (n) => Number.isInteger(n) && n >= 0 && n <= 65535, "an integer from 0 to 65535"),
    hostname: options.hostname ?? "127.0.0.1",
    allowHosts: list("allowHosts", (text) => {
      const host = normalHost(text);
      return /^([a-z0-9-]+\.)*[a-z0-9-]+$|^\[[0-9a-f:.]+\]$/.test(host) ? host : undefined;
    }),
    allowOrigins: list("allowOrigins", normalOrigin),
    writeKey: options.writeKey,
    out: options.out,
    maxEvents: number("maxEvents", 10_000, (n) => Number.isInteger(n) && n >= 1, "a positive integer"),
    maxBytes: number("maxBytes", 256 * 1024 * 1024, (n) => Number.isSafeInteger(n) && n >= 1, "a positive integer"),
    maxSeenIds: number("maxSeenIds", 100_000, (n) => Number.isSafeInteger(n) && n >= 1, "a positive integer"),
    headersTimeout,
    requestTimeout,
    failRate: number("failRate", 0, rate, "a number from 0 to 1"),
    failStatus: number(
      "failStatus",
      500,
      (n) => Number.isInteger(n) && n >= 400 && n <= 599,
      "an integer from 400 to 599",
    ),
    retryAfter: options.retryAfter === undefined
      ? undefined
      : number("retryAfter", 0, nonNegative, "a number of seconds >= 0"),
    latency: number("latency", 0, nonNegative, "a number of milliseconds >= 0"),
    dropConnectionRate: number("dropConnectionRate", 0, rate, "a number from 0 to 1"),
    loseAckRate: number("loseAckRate", 0, rate, "a number from 0 to 1"),
    seed: number("seed", Math.floor(Math.random() * 2 ** 32), Number.isFinite, "a finite number"),
    log: options.log,
    recordRequests: options.recordRequests ?? false,
    plan: options.plan,
    planMode,
    planLog: options.planLog ?? options.log,
    planPollMs: number("planPollMs", 1000, positive, "a number of milliseconds > 0"),
  };
}

function clock(): string {
  const d = new Date();
  const two = (n: number) => String(n).padStart(2, "0");
  return `${two(d.getHours())}:${two(d.getMinutes())}:${two(d.getSeconds())}.${
    String(d.getMilliseconds()).padStart(3, "0")
  }`;
}

const kb = (bytes: number): string =>
  bytes < 1024
    ? `${bytes} B`
    : bytes < 1024 * 1024
    ? `${(bytes / 1024).toFixed(1)} KB`
    : `${(bytes / 1024 / 1024).toFixed(1)} MB`;

/** `StoredEvent` as JSON, with the message's JSON already at hand: the same text as `JSON.stringify(event)`. */
function eventJson(event: StoredEvent, sourceJson: string, messageJson: string): string {
  const plan = event.violations === undefined
    ? ""
    : `,"violations":${JSON.stringify(event.violations)}${event.blocked ? ',"blocked":true' : ""}`;
  return `{"id":${event.id},"receivedAt":"${event.receivedAt}","status":"${event.status}","reasons":${
    event.reasons.length === 0 ? "[]" : JSON.stringify(event.reasons)
  },"source":${sourceJson}${event.duplicate ? ',"duplicate":true' : ""}${plan},"message":${messageJson}}`;
}

/** `track "Signed Up" user u1`: what a log line names a message by. */
function named(event: StoredEvent): string {
  const m = event.message;
  const type = typeof m.type === "string" ? m.type : "message";
  const name = typeof m.event === "string" ? ` "${m.event}"` : typeof m.name === "string" ? ` "${m.name}"` : "";
  const who = typeof m.userId === "string"
    ? ` user ${m.userId}`
    : typeof m.anonymousId === "string"
    ? ` anonymous ${m.anonymousId}`
    : "";
  return `${type}${name}${who}`;
}

/** One line naming a bad message for the log: `bad #12 track "Signed Up" user u1: reason; reason`. */
const badLine = (event: StoredEvent): string => `  bad #${event.id} ${named(event)}: ${event.reasons.join("; ")}`;

/**
 * One line naming a message that breaks the plan, by its first violation: `plan #12 track "Signed Up" user u1:
 * unplanned_event at $.event: ... (+1 more)`, `blocked` instead of `plan` when it was blocked.
 */
function planLine(event: StoredEvent): string {
  const violations = event.violations ?? [];
  const first = violations[0];
  const more = violations.length > 1 ? ` (+${violations.length - 1} more)` : "";
  return `  ${event.blocked ? "blocked" : "plan"} #${event.id} ${
    named(event)
  }: ${first.category} at ${first.path}: ${first.message}${more}`;
}

/** Text from a client, quoted for an error message, at most 40 characters of it. */
const quote = (text: string): string => JSON.stringify(text.length > 40 ? `${text.slice(0, 40)}…` : text);

/** The query parameters of `GET /api/events` and `DELETE /api/events?...` (`library` is another name of `source`). */
const FILTERS = [
  "type",
  "userId",
  "anonymousId",
  "event",
  "status",
  "source",
  "library",
  "duplicate",
  "violations",
  "violation",
  "blocked",
  "limit",
  "before",
] as const;
/** The filters a `next` page link repeats, as `EventFilter` names them. */
const PAGE_FILTERS = [
  "type",
  "userId",
  "anonymousId",
  "event",
  "status",
  "source",
  "duplicate",
  "violations",
  "violation",
  "blocked",
] as const;

/**
 * The filter a query string asks for, or why it is not one: an unknown or repeated parameter, a bad status or
 * limit. An empty value is no filter for GET; for DELETE it is an error, so that an empty variable in a script
 * cannot widen a delete to everything.
 */
function parseFilter(query: string, forDelete: boolean): EventFilter | string {
  const params = new URLSearchParams(query);
  const names = [...new Set(params.keys())];
  const unknown = names.filter((name) => !(FILTERS as readonly string[]).includes(name));
  if (unknown.length > 0) {
    return `Cannot filter by ${unknown.map(quote).join(", ")}: the filters are ${FILTERS.join(", ")}`;
  }
  const filter: EventFilter = {};
  for (const name of FILTERS) {
    const values = params.getAll(name);
    if (values.length === 0) continue;
    if (values.length > 1) return `${name} is given ${values.length} times: give it once`;
    const value = values[0];
    if (value === "") {
      if (forDelete) {
        return `${name} is empty: give a value, or send DELETE /api/events without a query to delete everything`;
      }
      continue;
    }
    if (name === "status") {
      if (value !== "good" && value !== "bad") return `status must be "good" or "bad", got ${quote(value)}`;
      filter.status = value;
    } else if (name === "duplicate" || name === "violations" || name === "blocked") {
      if (value !== "true" && value !== "false") return `${name} must be "true" or "false", got ${quote(value)}`;
      filter[name] = value === "true";
    } else if (name === "violation") {
      const category = VIOLATION_CATEGORIES.find((c) => c === value);
      if (category === undefined) {
        return `violation must be a category (${VIOLATION_CATEGORIES.join(", ")}), got ${quote(value)}`;
      }
      filter.violation = category;
    } else if (name === "source" || name === "library") {
      if (filter.source !== undefined) return "source and library are the same filter: give one of them";
      filter.source = value;
    } else if (name === "limit" || name === "before") {
      if (!/^\d+$/.test(value)) return `${name} must be a whole number, got ${quote(value)}`;
      const n = Number(value);
      if (name === "limit" && !forDelete && n > PAGE_MAX) {
        return `limit must be at most ${PAGE_MAX} (page with next), got ${quote(value).slice(1, -1)}`;
      }
      filter[name] = n;
    } else filter[name] = value;
  }
  return filter;
}

const NO_REASONS: string[] = [];
Object.freeze(NO_REASONS);

/**
 * One item of a request made into the message to store, with its reasons: without any `writeKey` it carries
 * (`sent`), then with a batch's top-level `context` and `integrations` merged in (the item's own keys win), `type`
 * taken from a single-message endpoint when absent (`message`, the same object when nothing was merged).
 */
function classify(
  item: unknown,
  index: number,
  kind: string,
  endpoint: string,
  context: Json | undefined,
  integrations: Json | undefined,
  now: number,
  plan: OpenPlan | undefined,
): { sent: Json; message: Json; reasons: string[]; verdict: Verdict | undefined } {
  const single = kind !== "batch" && kind !== "import";
  if (!isObject(item)) {
    const where = single ? "the body" : `batch[${index}]`;
    const message = { value: item };
    const reasons = [`${where} is ${describe(item)}, not a message object`];
    // Not a message: nothing for the plan to check.
    return { sent: message, message, reasons, verdict: undefined };
  }
  let sent = item;
  if ("writeKey" in item) {
    const { writeKey: _, ...rest } = item;
    sent = rest;
  }
  let extra = NO_REASONS;
  if (single) {
    if (item.type === undefined) sent = { type: kind, ...sent };
    else if (item.type !== kind) {
      const short = endpoint.length === 5 ? ` (${kind})` : "";
      extra = [`type ${describe(item.type)} was sent to ${endpoint}${short}`];
    }
  }
  let message = sent;
  if (context !== undefined || integrations !== undefined) {
    message = { ...sent };
    if (context !== undefined) {
      message.context = isObject(sent.context) ? { ...context, ...sent.context } : sent.context ?? context;
    }
    if (integrations !== undefined) {
      message.integrations = isObject(sent.integrations)
        ? { ...integrations, ...sent.integrations }
        : sent.integrations ?? integrations;
    }
  }
  const reasons = validateMessage(message, now);
  // The plan is its own axis: its violations never make a message bad (status and reasons stay the spec's).
  const verdict = plan?.check(message);
  return { sent, message, reasons: extra.length === 0 ? reasons : [...extra, ...reasons], verdict };
}

/**
 * Opens the plan file, watched, its reloads told to `planLog`; plan/ (and the validator with it) is imported only
 * here, so a collector without a plan never loads it. Rejects with plan/'s "Cannot read plan ..." error.
 */
async function openPlanFile(path: string, s: Settings): Promise<OpenPlan> {
  const { openPlan } = await import("../plan/collector.ts");
  return openPlan(path, {
    mode: s.planMode,
    watch: true,
    pollMs: s.planPollMs,
    onReload: (description) => s.planLog?.(`${clock()} plan reloaded: ${description}`),
    onError: (error) => s.planLog?.(`${clock()} plan not reloaded: ${error.message}; keeping the previous one`),
  });
}

/** Bytes of `json` as UTF-8, measured only when it could be over `limit`. */
const utf8Bytes = (json: string, limit: number): number =>
  json.length * 3 <= limit ? json.length : Buffer.byteLength(json);

/**
 * Starts a collector and resolves once it listens.
 *
 * @example Collect what a client sends
 * ```ts
 * import { startCollector } from "./mod.ts";
 *
 * const collector = await startCollector();
 * await fetch(`${collector.url}/v1/track`, {
 *   method: "POST",
 *   headers: { "content-type": "application/json" },
 *   body: JSON.stringify({ userId: "u1", event: "Signed Up", messageId: "m1" }),
 * });
 * console.log(collector.events()[0].status); // "good"
 * await collector.stop();
 * ```
 */
export async function startCollector(options: CollectorOptions = {}): Promise<Collector> {
  const s = check(options);
  const started = Date.now();
  const store = new EventStore(s.maxEvents, s.maxBytes, s.maxSeenIds);
  // Loaded only with a plan: a collector without one never loads the validator.
  const plan = s.plan === undefined ? undefined : await openPlanFile(s.plan, s);
  const stats = (): CollectorStats => {
    const counts = store.stats();
    if (plan !== undefined) counts.plan = { file: s.plan!, mode: s.planMode, ...store.planCounts() };
    return counts;
  };
  const hub = new StreamHub(stats, s.log);
  const rightKey = s.writeKey === undefined ? undefined : keyChecker(s.writeKey);
  const faults = new FaultPlan(s.failRate, s.dropConnectionRate, s.seed, s.loseAckRate);
  const log = s.log;
  const requests: CollectorRequest[] = [];
  const script: ScriptedReply[] = [];
  let defaultReply: ScriptedReply | undefined;
  const requestListeners = new Set<(request: CollectorRequest) => void>();
  const eventListeners = new Set<(event: CollectorEvent) => void>();
  /** Responses held open: scripted hangs, and requests waiting out `latency`. */
  const held = new Set<ServerResponse>();
  let stopped = false;
  let writer: NdjsonWriter | undefined;
  try {
    writer = s.out === undefined
      ? undefined
      : await NdjsonWriter.open(s.out, (error) => log?.(`Cannot append to ${s.out}: ${error.message}`));
  } catch (e) {
    plan?.close();
    throw e;
  }

  const send = (res: ServerResponse, status: number, body: string, headers: Record<string, string> = {}): void => {
    if (res.destroyed) return;
    res.writeHead(status, { "content-type": JSON_TYPE, "content-length": String(Buffer.byteLength(body)), ...headers });
    res.end(body);
  };
  const error = (res: ServerResponse, status: number, message: string, headers?: Record<string, string>): void =>
    send(res, status, JSON.stringify({ success: false, error: message }), headers);

  const clear = (): void => {
    store.clear();
    hub.clear();
    for (const listener of eventListeners) listener({ kind: "clear" });
  };
  const remove = (filter: EventFilter): number => {
    const gone = store.delete(filter);
    if (gone.length === 0) return 0;
    const ids = gone.map((event) => event.id);
    hub.deleted(ids);
    for (const listener of eventListeners) listener({ kind: "delete", ids });
    return ids.length;
  };

  // ---- ingestion

  function ingest(req: IncomingMessage, res: ServerResponse, path: string, endpoint: string, kind: string): void {
    const t0 = performance.now();
    store.requests++;
    const done = (status: number, detail: string): void =>
      log?.(`${clock()} ${req.method} ${path} ${status} ${detail} ${(performance.now() - t0).toFixed(1)} ms`);

    const origin = req.headers.origin;
    if (origin !== undefined) {
      if (!originAllowed(origin, s.allowOrigins)) {
        // Read to its end (and dropped), so that the page's browser reads the 403 rather than a reset.
        req.resume();
        req.on("end", () =>
          error(
            res,
            403,
            `Cannot accept events from the page at ${quote(origin)}: only loopback origins (http://localhost:3000, ` +
              "http://127.0.0.1:5173, ...) and those given with --allow-origin may send events",
          ));
        return done(403, `(from the page at ${quote(origin)})`);
      }
      res.setHeader("access-control-allow-origin", origin);
      res.setHeader("vary", "origin");
    }
    if (req.method !== "POST") {
      error(res, 405, `Cannot ${req.method} ${path}: send messages with POST`, { allow: "POST" });
      return done(405, "(not POST)");
    }
    const declared = Number(req.headers["content-length"]);
    const chunks: Buffer[] = [];
    let size = 0;
    let failed = false;
    let refusal: Refusal | undefined;
    if (declared > REQUEST_LIMIT) {
      const message = `request body is ${declared} bytes, over the ${REQUEST_LIMIT}-byte limit`;
      refusal = refuse(req, res, message, `${kb(declared)} body declared`, declared, done);
    }
    req.on("data", (chunk: Buffer) => {
      if (refusal !== undefined) return refusal.read(chunk.length);
      size += chunk.length;
      if (size <= REQUEST_LIMIT) return void chunks.push(chunk);
      store.bytes += size;
      chunks.length = 0;
      const message = `request body is over the ${REQUEST_LIMIT}-byte limit`;
      refusal = refuse(req, res, message, `body over ${kb(REQUEST_LIMIT)}`, undefined, done);
      refusal.read(size);
    });
    req.on("error", () => {
      failed = true;
      refusal?.abort();
    });
    req.on("end", () => {
      if (failed) return;
      if (refusal !== undefined) return refusal.ended();
      store.bytes += size;
      const raw = chunks.length === 1 ? chunks[0] : Buffer.concat(chunks, size);
      try {
        received(req, res, path, endpoint, kind, raw, done);
      } catch (e) {
        // As in the request handler: a 500 for this request, and the collector carries on.
        if (!res.headersSent) error(res, 500, `Cannot handle the request: ${(e as Error).message}`);
        done(500, (e as Error).message);
      }
    });
  }

  /**
   * Refuses a body over the limit. Nothing more of it is kept; the rest is read and discarded until it ends, then
   * the 400 goes out and the connection closes cleanly. When it goes on past `DRAIN_BYTES` beyond the limit (or
   * its declared length says it will) or for longer than `DRAIN_MS`, the 400 goes out at once, reading stops and
   * the socket is destroyed shortly after.
   */
  function refuse(
    req: IncomingMessage,
    res: ServerResponse,
    message: string,
    what: string,
    declared: number | undefined,
    done: (status: number, detail: string) => void,
  ): Refusal {
    const bound = REQUEST_LIMIT + DRAIN_BYTES;
    let read = 0;
    let answered = false;
    const answer = (detail: string): void => {
      if (answered) return;
      answered = true;
      clearTimeout(timer);
      error(res, 400, message, CLOSE);
      done(400, `refused: ${what}, ${detail}; connection closed`);
    };
    const giveUp = (why: string): void => {
      if (answered) return;
      req.pause();
      answer(why);
      unref(setTimeout(() => req.socket?.destroy(), REFUSED_LINGER_MS));
    };
    const timer = setTimeout(() => giveUp(`still sending after ${DRAIN_MS} ms, stopped reading`), DRAIN_MS);
    unref(timer);
    if (declared !== undefined && declared > bound) giveUp(`more than ${kb(bound)}, not read`);
    return {
      read(bytes) {
        read += bytes;
        if (read > bound) giveUp(`stopped reading at ${kb(read)}`);
      },
      ended: () => answer(`read to its end (${kb(read)}) and discarded`),
      abort() {
        answered = true;
        clearTimeout(timer);
      },
    };
  }

  function received(
    req: IncomingMessage,
    res: ServerResponse,
    path: string,
    endpoint: string,
    kind: string,
    raw: Buffer,
    done: (status: number, detail: string) => void,
  ): void {
    let problem: string | undefined;
    let parsed: unknown;
    let decodedBytes = raw.length;
    let inflatesPast = false;
    const encoding = req.headers["content-encoding"]?.trim().toLowerCase();
    let decoded: Buffer | undefined = raw;
    if (encoding === "gzip" || encoding === "x-gzip") {
      try {
        decoded = gunzipSync(raw, { maxOutputLength: REQUEST_LIMIT });
        decodedBytes = decoded.length;
      } catch (e) {
        decoded = undefined;
        inflatesPast = (e as { code?: string }).code === "ERR_BUFFER_TOO_LARGE" || e instanceof RangeError;
        problem = inflatesPast
          ? `gzip body inflates past the ${REQUEST_LIMIT}-byte limit`
          : `body is not valid gzip (${(e as Error).message})`;
      }
    } else if (encoding !== undefined && encoding !== "" && encoding !== "identity") {
      decoded = undefined;
      problem = `Content-Encoding "${encoding}" is not accepted: send gzip or plain JSON`;
    }
    if (decoded !== undefined) {
      const depth = nestingDepth(decoded);
      if (depth > NESTING_LIMIT) {
        problem =
          `body is nested ${depth} levels deep, over the ${NESTING_LIMIT}-level limit (the body itself is level 1)`;
      } else {
        try {
          parsed = JSON.parse(decoded.toString("utf8"));
        } catch (e) {
          problem = `body is not valid JSON (${(e as Error).message})`;
        }
      }
    }
    const body: CollectorRequest["body"] = isObject(parsed) ? parsed : {};
    if (kind === "metrics") {
      // analytics.js's own counters: no write key, no faults or scripted replies (they are for the client's
      // deliveries, and metrics come at times of their own), never stored.
      if (problem !== undefined) {
        error(res, 400, problem, inflatesPast ? CLOSE : undefined);
        return done(400, problem);
      }
      const points = countMetrics(parsed);
      store.metrics += points;
      hub.changed();
      send(res, 200, OK_BODY);
      return done(200, `${points} metric${points === 1 ? "" : "s"}`);
    }

    if (s.recordRequests || requestListeners.size > 0) {
      const headers: Record<string, string> = {};
      for (const [name, value] of Object.entries(req.headers)) {
        if (value !== undefined) headers[name] = Array.isArray(value) ? value.join(", ") : value;
      }
      const entry: CollectorRequest = {
        method: req.method ?? "",
        path: req.url ?? path,
        headers,
        wireBytes: raw.length,
        body,
        at: Date.now() - started,
      };
      if (s.recordRequests) requests.push(entry);
      for (const listener of requestListeners) listener(entry);
    }

    const scripted = script.shift() ?? defaultReply;
    if (scripted !== undefined) {
      if ("hang" in scripted) {
        held.add(res);
        res.on("close", () => held.delete(res));
        return done(0, "(scripted: no answer)");
      }
      if ("drop" in scripted) {
        req.socket.destroy();
        return done(0, "(scripted: connection dropped)");
      }
      if (!res.destroyed) {
        res.writeHead(scripted.status, scripted.headers ?? {});
        res.end(scripted.body ?? "");
      }
      return done(scripted.status, "(scripted)");
    }

    const fault = faults.enabled ? faults.next() : "none";
    const answer = (): void => {
      held.delete(res);
      if (res.destroyed) return;
      if (fault === "drop") {
        req.socket.destroy();
        return done(0, "(injected: connection dropped)");
      }
      if (fault === "fail") {
        const headers: Record<string, string> = {};
        if (s.retryAfter !== undefined) headers["retry-after"] = String(s.retryAfter);
        error(res, s.failStatus, "injected failure (fail rate)", headers);
        return done(s.failStatus, "(injected failure)");
      }
      if (problem !== undefined) {
        error(res, 400, problem, inflatesPast ? CLOSE : undefined);
        return done(400, inflatesPast ? `${problem}; connection closed` : problem);
      }
      if (rightKey !== undefined) {
        const key = basicUser(req.headers.authorization) ?? body.writeKey;
        if (!rightKey(key)) {
          const why = key === undefined ? "no write key" : "a wrong write key";
          error(res, 401, `Cannot accept the request: ${why} (send Basic auth with the write key as user name)`);
          return done(401, `(${why})`);
        }
      }
      const sources = new SourceMaker(endpoint, req.headers["user-agent"], req.headers.origin);
      // A lost acknowledgement: the messages are stored, then the connection is closed without the answer.
      const loseAnswer = fault === "lose-ack" ? () => void req.socket.destroy() : undefined;
      accept(res, kind, endpoint, sources, parsed, body, decodedBytes, done, loseAnswer);
    };
    if (s.latency > 0) {
      held.add(res);
      unref(setTimeout(answer, s.latency));
    } else answer();
  }

  function accept(
    res: ServerResponse,
    kind: string,
    endpoint: string,
    sources: SourceMaker,
    parsed: unknown,
    body: Json,
    decodedBytes: number,
    done: (status: number, detail: string) => void,
    loseAnswer?: () => void,
  ): void {
    let items: unknown[];
    let context: Json | undefined;
    let integrations: Json | undefined;
    if (kind === "batch" || kind === "import") {
      if (!Array.isArray(body.batch)) {
        error(res, 400, 'body must be a JSON object with a "batch" array of messages');
        return done(400, "(no batch array)");
      }
      items = body.batch;
      if (items.length > BATCH_LIMIT) {
        error(res, 400, `batch holds ${items.length} messages, over the ${BATCH_LIMIT}-message limit`);
        return done(400, `(${items.length} messages in one batch)`);
      }
      if (isObject(body.context)) context = body.context;
      if (isObject(body.integrations)) integrations = body.integrations;
    } else {
      if (!isObject(parsed)) {
        error(res, 400, "body must be a JSON object: one message");
        return done(400, "(not a message object)");
      }
      items = [parsed];
    }

    const receivedAt = new Date().toISOString();
    const now = Date.now();
    const single = kind !== "batch" && kind !== "import";
    const merging = context !== undefined || integrations !== undefined;
    if (merging) {
      // Merged into every message, they would put each over the limit: refused before any is built.
      const shared = (context === undefined ? 0 : Buffer.byteLength(JSON.stringify(context))) +
        (integrations === undefined ? 0 : Buffer.byteLength(JSON.stringify(integrations)));
      if (shared > MESSAGE_LIMIT) {
        error(
          res,
          400,
          `the batch's top-level context and integrations are ${shared} bytes: merged into each message, they put ` +
            `it over the ${MESSAGE_LIMIT}-byte limit per message`,
        );
        return done(400, `(batch-level context of ${kb(shared)})`);
      }
    }

    // Sizes: a body within 32 KB holds no message over it unless something is merged in, so most requests skip
    // measuring; merged ones are measured as stored, and their total is bounded too.
    const measure = merging || decodedBytes > MESSAGE_LIMIT;
    const classified = new Array<ReturnType<typeof classify>>(items.length);
    const jsons: string[] = [];
    const oversized: { index: number; bytes: number }[] = [];
    let mergedBytes = 0;
    for (let i = 0; i < items.length; i++) {
      const item = classify(items[i], i, kind, endpoint, context, integrations, now, plan);
      classified[i] = item;
      if (!measure) continue;
      const json = JSON.stringify(item.message);
      jsons.push(json);
      const bytes = utf8Bytes(json, MESSAGE_LIMIT);
      if (bytes > MESSAGE_LIMIT) oversized.push({ index: i, bytes });
      mergedBytes += bytes;
      if (merging && mergedBytes > MERGED_LIMIT) {
        error(
          res,
          400,
          `the batch's ${items.length} messages come to more than ${MERGED_LIMIT} bytes once its context and ` +
            "integrations are merged into each (the limit is ten times a request's): send smaller batches",
        );
        return done(400, `(over ${kb(MERGED_LIMIT)} once merged)`);
      }
    }

    const serialize = writer !== undefined || hub.active;
    const lines: string[] = [];
    const stored: StoredEvent[] = [];
    /** An event's size against `maxBytes`: its JSON line, or its share of the body when no line is made. */
    const share = Math.ceil(decodedBytes / Math.max(1, items.length)) + EVENT_OVERHEAD;
    const keep = (message: Json, reasons: string[], known: string | undefined, verdict: Verdict | undefined): void => {
      const json = known ?? (serialize ? JSON.stringify(message) : undefined);
      const source: MessageSource = sources.of(message);
      let size = (json === undefined ? share : json.length + EVENT_OVERHEAD) + sources.json.length;
      for (const reason of reasons) size += reason.length;
      if (verdict !== undefined) {
        for (const v of verdict.violations) size += v.message.length + v.path.length + 40;
      }
      const event = store.add(message, receivedAt, reasons, source, size, verdict);
      stored.push(event);
      if (json !== undefined && serialize) lines.push(eventJson(event, sources.json, json));
    };

    if (oversized.length > 0) {
      // The request is refused; the oversized messages are kept as bad, as sent (without what was merged in), so
      // that the inspector shows why and one request cannot store more than it brought.
      const merged = merging ? " once the batch's context and integrations are merged in" : "";
      for (const { index, bytes } of oversized) {
        const { sent, message, reasons, verdict } = classified[index];
        const size = `message is ${bytes} bytes${merged}, over Segment's ${MESSAGE_LIMIT}-byte (32 KB) limit per ` +
          "message: the whole request was refused with 400";
        keep(sent, [size, ...reasons], sent === message ? jsons[index] : undefined, verdict);
      }
      const { index, bytes } = oversized[0];
      error(
        res,
        400,
        `${single ? "the message" : `batch[${index}]`} is ${bytes} bytes${merged}, over the ${MESSAGE_LIMIT}-byte ` +
          "limit per message",
      );
      finish(stored, lines);
      return done(400, `(${oversized.length} message${oversized.length === 1 ? "" : "s"} over 32 KB)`);
    }
    for (let i = 0; i < items.length; i++) {
      const { message, reasons, verdict } = classified[i];
      keep(message, reasons, measure ? jsons[i] : undefined, verdict);
    }
    if (loseAnswer !== undefined) loseAnswer();
    else if (!res.destroyed) {
      res.writeHead(200, OK_HEADERS);
      res.end(OK_BODY);
    }
    finish(stored, lines);
    if (log !== undefined) {
      let bad = 0;
      let off = 0;
      let blocked = 0;
      for (const event of stored) {
        if (event.status === "bad") bad++;
        if (event.violations !== undefined) off++;
        if (event.blocked) blocked++;
      }
      const n = stored.length;
      const notes = [
        bad > 0 ? `${bad} bad` : "",
        off > 0 ? `${off} off plan` : "",
        blocked > 0 ? `${blocked} blocked` : "",
      ]
        .filter((note) => note !== "");
      done(
        loseAnswer === undefined ? 200 : 0,
        `${n} message${n === 1 ? "" : "s"}${notes.length > 0 ? ` (${notes.join(", ")})` : ""}, ${kb(decodedBytes)}` +
          (loseAnswer === undefined ? "" : " (injected: stored, then the answer lost)"),
      );
      let shown = 0;
      for (const event of stored) {
        if (event.status !== "bad") continue;
        if (shown++ === 5) {
          log(`  ...and ${bad - 5} more bad`);
          break;
        }
        log(badLine(event));
      }
      shown = 0;
      for (const event of stored) {
        if (event.violations === undefined) continue;
        if (shown++ === 5) {
          log(`  ...and ${off - 5} more off plan`);
          break;
        }
        log(planLine(event));
      }
    }
  }

  /** After storing: the file, the stream, the subscribers. */
  function finish(stored: StoredEvent[], lines: string[]): void {
    if (lines.length > 0) {
      if (writer !== undefined) { for (const line of lines) writer.write(line); }
      hub.messages(lines);
    } else if (stored.length > 0) hub.changed();
    if (eventListeners.size > 0) {
      for (const event of stored) for (const listener of eventListeners) listener({ kind: "message", event });
    }
  }

  // ---- the query API and the page

  function api(req: IncomingMessage, res: ServerResponse, path: string, query: string): number {
    if (path === "/api/events") {
      if (req.method !== "GET" && req.method !== "DELETE") return methodNotAllowed(res, "GET, DELETE");
      if (req.method === "DELETE" && query === "") {
        clear();
        res.writeHead(204);
        res.end();
        return 204;
      }
      const filter = parseFilter(query, req.method === "DELETE");
      if (typeof filter === "string") {
        error(res, 400, filter);
        return 400;
      }
      if (req.method === "DELETE") send(res, 200, JSON.stringify({ deleted: remove(filter) }));
      else answerEvents(res, filter);
      return 200;
    }
    if (path === "/api/stats") {
      if (req.method !== "GET") return methodNotAllowed(res, "GET");
      send(res, 200, JSON.stringify(stats()));
      return 200;
    }
    if (path === "/api/stream") {
      if (req.method !== "GET") return methodNotAllowed(res, "GET");
      if (hub.full) {
        error(res, 503, `Cannot open another stream: ${STREAM_CLIENTS} are open (close some inspector tabs)`);
        return 503;
      }
      hub.add(res);
      return 200;
    }
    error(res, 404, `Cannot find ${path}: the API has /api/events, /api/stats and /api/stream`);
    return 404;
  }

  /**
   * `GET /api/events`: a page of events (`limit`, 1000 by default), with `next` (the query of the next page) when
   * more match. Written in chunks as its reader takes them, so no answer is ever one string, and a reader that
   * stops taking them for `ANSWER_STALL_MS` loses its connection.
   */
  function answerEvents(res: ServerResponse, filter: EventFilter): void {
    const limit = filter.limit ?? PAGE_DEFAULT;
    // One more than the page: whether there is a next one.
    const found = limit === 0 ? [] : store.events({ ...filter, limit: limit + 1 });
    let next = "";
    if (found.length > limit) {
      found.length = limit;
      const params = new URLSearchParams();
      for (const name of PAGE_FILTERS) if (filter[name] !== undefined) params.set(name, String(filter[name]));
      params.set("limit", String(limit));
      params.set("before", String(found[limit - 1].id));
      next = `,"next":${JSON.stringify(`/api/events?${params}`)}`;
    }
    const tail = `],"evicted":${store.evicted}${next}}`;
    res.writeHead(200, { "content-type": JSON_TYPE, "cache-control": "no-store" });
    let at = 0;
    let chunk = '{"events":[';
    let stall: ReturnType<typeof setTimeout> | undefined;
    const pump = (): void => {
      clearTimeout(stall);
      while (!res.destroyed) {
        while (at < found.length && chunk.length < ANSWER_CHUNK) {
          if (at > 0) chunk += ",";
          chunk += JSON.stringify(found[at++]);
        }
        if (at === found.length) return void res.end(chunk + tail);
        const more = res.write(chunk);
        chunk = "";
        if (!more) {
          res.once("drain", pump);
          stall = setTimeout(() => res.destroy(), ANSWER_STALL_MS);
          unref(stall);
          return;
        }
      }
    };
    res.once("close", () => {
      clearTimeout(stall);
      found.length = 0;
    });
    pump();
  }

  function methodNotAllowed(res: ServerResponse, allow: string): number {
    error(res, 405, `Method not allowed: use ${allow}`, { allow });
    return 405;
  }

  /**
   * `GET /v1/projects/:writeKey/settings`: the settings analytics.js loads from `cdnURL`, pointing it back here.
   * For the pages ingestion takes (CORS); with `writeKey` set, only for that key. The key is echoed to the page
   * that sent it, and never logged or kept.
   */
  function answerSettings(req: IncomingMessage, res: ServerResponse, encodedKey: string): number {
    const origin = req.headers.origin;
    if (origin !== undefined) {
      if (!originAllowed(origin, s.allowOrigins)) {
        error(res, 403, `Cannot give settings to the page at ${quote(origin)}: see --allow-origin`);
        return 403;
      }
      res.setHeader("access-control-allow-origin", origin);
      res.setHeader("vary", "origin");
    }
    if (req.method !== "GET" && req.method !== "HEAD") return methodNotAllowed(res, "GET");
    let key: string;
    try {
      key = decodeURIComponent(encodedKey);
    } catch {
      key = "";
    }
    if (key === "") {
      error(res, 404, "Cannot give settings: the path names no write key (GET /v1/projects/WRITE_KEY/settings)");
      return 404;
    }
    if (rightKey !== undefined && !rightKey(key)) {
      error(res, 401, "Cannot give settings: the write key asked for is not the one given with --write-key");
      return 401;
    }
    const fallback = `${["0.0.0.0", "::"].includes(s.hostname) ? "127.0.0.1" : host}:${port}`;
    const body = JSON.stringify(settingsFor(key, req.headers.host, fallback));
    send(res, 200, body, { "cache-control": "no-store" });
    return 200;
  }

  /** A browser's CORS preflight for an ingestion request: answered for the origins ingestion takes. */
  function preflight(req: IncomingMessage, res: ServerResponse): number {
    const origin = req.headers.origin;
    if (origin !== undefined && !originAllowed(origin, s.allowOrigins)) {
      error(res, 403, `Cannot accept events from the page at ${quote(origin)}: see --allow-origin`);
      return 403;
    }
    const headers: Record<string, string> = { allow: "POST, OPTIONS" };
    if (origin !== undefined) {
      headers["access-control-allow-origin"] = origin;
      headers["access-control-allow-methods"] = "POST";
      headers["access-control-allow-headers"] = CORS_HEADERS;
      headers["access-control-max-age"] = "600";
      headers.vary = "origin";
    }
    res.writeHead(204, headers);
    res.end();
    return 204;
  }

  /**
   * Why a request for the API, the stream or the page is not answered, or undefined when it is: addressed to a
   * name the collector does not listen on (DNS rebinding), or sent by a page of another origin.
   */
  function refusal(req: IncomingMessage, path: string): string | undefined {
    const host = req.headers.host;
    if (!hostAllowed(host, s)) {
      return `Cannot answer a request addressed to ${quote(host ?? "")}: the collector answers only for ` +
        `${hostNames(s)} (another name may be a page on another site pointing its name here; add one with ` +
        "--allow-host)";
    }
    const origin = req.headers.origin;
    if (origin !== undefined && !sameOrigin(origin, host)) {
      return `Cannot answer ${req.method} ${path} from the page at ${quote(origin)}: only the collector's own pages ` +
        "may use its API (curl and scripts, which send no Origin, may too)";
    }
    return undefined;
  }

  function route(req: IncomingMessage, res: ServerResponse): void {
    const url = req.url ?? "/";
    const q = url.indexOf("?");
    let path = q < 0 ? url : url.slice(0, q);
    if (path.length > 1 && path.endsWith("/")) path = path.slice(0, -1);
    if (path.startsWith("/v1/")) {
      const kind = ENDPOINTS.get(path.slice(4));
      if (kind !== undefined) {
        if (req.method !== "OPTIONS") return ingest(req, res, url, path, kind);
        const status = preflight(req, res);
        return void log?.(`${clock()} ${req.method} ${url} ${status}`);
      }
      const settings = SETTINGS_PATH.exec(path);
      if (settings !== null) {
        req.resume();
        const status = req.method === "OPTIONS" ? preflight(req, res) : answerSettings(req, res, settings[1]);
        // The path holds the write key: never logged.
        return void log?.(`${clock()} ${req.method} /v1/projects/…/settings ${status}`);
      }
    }
    let status: number;
    const refused = refusal(req, path);
    if (refused !== undefined) {
      req.resume();
      error(res, 403, refused);
      status = 403;
    } else if (path.startsWith("/api/")) status = api(req, res, path, q < 0 ? "" : url.slice(q + 1));
    else if (path === "/" || path === "/index.html") {
      if (req.method === "GET" || req.method === "HEAD") {
        res.writeHead(200, {
          "content-type": "text/html; charset=utf-8",
          "content-length": INSPECTOR_LENGTH,
          "cache-control": "no-cache",
        });
        res.end(req.method === "HEAD" ? undefined : INSPECTOR_HTML);
        status = 200;
      } else status = methodNotAllowed(res, "GET");
    } else {
      error(res, 404, `Cannot find ${path}: send messages to /v1/batch; the inspector is at /`);
      status = 404;
    }
    log?.(`${clock()} ${req.method} ${url} ${status}`);
  }

  const server = createServer({
    headersTimeout: s.headersTimeout,
    requestTimeout: s.requestTimeout,
    // How often the timeouts are checked (Node's default, 30 s, would let a slow client hold on that much longer).
    connectionsCheckingInterval: Math.min(1000, s.headersTimeout),
  }, (req, res) => {
    try {
      route(req, res);
    } catch (e) {
      // Nothing a client sends should get here; if it does, it gets a 500 and the collector carries on.
      log?.(`${clock()} ${req.method} ${req.url} 500 ${(e as Error).message}`);
      if (!res.headersSent) error(res, 500, `Cannot handle the request: ${(e as Error).message}`);
      else res.destroy();
    }
  });

  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(s.port, s.hostname, () => {
      server.off("error", reject);
      resolve();
    });
  }).catch(async (e) => {
    plan?.close();
    await writer?.close();
    throw e;
  });
  const port = (server.address() as AddressInfo).port;
  const host = s.hostname.includes(":") ? `[${s.hostname}]` : s.hostname;

  return {
    url: `http://${host}:${port}`,
    port,
    requests,
    events: (filter) => store.events(filter),
    stats,
    clear,
    delete: remove,
    script: (...replies) => void script.push(...replies),
    setDefaultReply: (reply) => void (defaultReply = reply),
    onRequest(listener) {
      requestListeners.add(listener);
      return () => void requestListeners.delete(listener);
    },
    subscribe(listener) {
      eventListeners.add(listener);
      return () => void eventListeners.delete(listener);
    },
    describePlan: () => plan?.describe(),
    async stop() {
      if (stopped) return;
      stopped = true;
      plan?.close();
      hub.close();
      for (const res of held) res.socket?.destroy();
      held.clear();
      await new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections?.();
      });
      await writer?.close();
    },
  };
}
