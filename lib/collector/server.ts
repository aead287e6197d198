/**
 * The collector's HTTP server: Segment's ingestion endpoints (limits, gzip,
 * auth, validation, storage), the query API, the event stream, the
 * inspector page, fault injection and scripted replies.
 */
import { Buffer } from "node:buffer";
import { createServer, type IncomingMessage, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { gunzipSync } from "node:zlib";
import { FaultPlan } from "./faults.ts";
import { INSPECTOR_HTML } from "./inspector.ts";
import { BATCH_LIMIT, MESSAGE_LIMIT, REQUEST_LIMIT } from "./limits.ts";
import { NdjsonWriter } from "./ndjson.ts";
import { EventStore } from "./store.ts";
import { StreamHub } from "./stream.ts";
import type {
  Collector,
  CollectorEvent,
  CollectorOptions,
  CollectorRequest,
  EventFilter,
  ScriptedReply,
  StoredEvent,
} from "./types.ts";
import { describe, MESSAGE_TYPES, validateMessage } from "./validate.ts";

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
  writeKey: string | undefined;
  out: string | undefined;
  maxEvents: number;
  failRate: number;
  failStatus: number;
  retryAfter: number | undefined;
  latency: number;
  dropConnectionRate: number;
  seed: number;
  log: ((line: string) => void) | undefined;
  recordRequests: boolean;
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
  if (options.log !== undefined && typeof options.log !== "function") {
    throw new TypeError("Cannot start the collector: log must be a function");
  }
  for (const name of ["hostname", "writeKey", "out"] as const) {
    const value = options[name];
    if (value !== undefined && (typeof value !== "string" || value === "")) {
      fail(`${name} must be a non-empty string`, value);
    }
  }
  return {
    port: number("port", 0, (n) => Number.isInteger(n) && n >= 0 && n <= 65535, "an integer from 0 to 65535"),
    hostname: options.hostname ?? "127.0.0.1",
    writeKey: options.writeKey,
    out: options.out,
    maxEvents: number("maxEvents", 10_000, (n) => Number.isInteger(n) && n >= 1, "a positive integer"),
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
    seed: number("seed", Math.floor(Math.random() * 2 ** 32), Number.isFinite, "a finite number"),
    log: options.log,
    recordRequests: options.recordRequests ?? false,
  };
}

/** The user name of `Authorization: Basic base64(user:password)`, or undefined. */
function basicUser(header: string | undefined): string | undefined {
  if (header === undefined) return undefined;
  const match = /^Basic\s+([A-Za-z0-9+/=_-]+)\s*$/i.exec(header);
  if (!match) return undefined;
  const decoded = Buffer.from(match[1], "base64").toString("utf8");
  const colon = decoded.indexOf(":");
  return colon < 0 ? decoded : decoded.slice(0, colon);
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
function eventJson(event: StoredEvent, messageJson: string): string {
  return `{"id":${event.id},"receivedAt":"${event.receivedAt}","status":"${event.status}","reasons":${
    event.reasons.length === 0 ? "[]" : JSON.stringify(event.reasons)
  },"message":${messageJson}}`;
}

/** One line naming a bad message for the log: `bad #12 track "Signed Up" user u1: reason; reason`. */
function badLine(event: StoredEvent): string {
  const m = event.message;
  const type = typeof m.type === "string" ? m.type : "message";
  const name = typeof m.event === "string" ? ` "${m.event}"` : typeof m.name === "string" ? ` "${m.name}"` : "";
  const who = typeof m.userId === "string"
    ? ` user ${m.userId}`
    : typeof m.anonymousId === "string"
    ? ` anonymous ${m.anonymousId}`
    : "";
  return `  bad #${event.id} ${type}${name}${who}: ${event.reasons.join("; ")}`;
}

/** Text from a client, quoted for an error message, at most 40 characters of it. */
const quote = (text: string): string => JSON.stringify(text.length > 40 ? `${text.slice(0, 40)}…` : text);

/** The query parameters of `GET /api/events` and `DELETE /api/events?...`. */
const FILTERS = ["type", "userId", "anonymousId", "event", "status", "limit"] as const;

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
    } else if (name === "limit") {
      if (!/^\d+$/.test(value)) return `limit must be a whole number, got ${quote(value)}`;
      filter.limit = Number(value);
    } else filter[name] = value;
  }
  return filter;
}

const NO_REASONS: string[] = [];
Object.freeze(NO_REASONS);

/**
 * One item of a request made into the message to store, with its reasons: a batch's top-level `context` and
 * `integrations` merged in (the item's own keys win), `type` taken from a single-message endpoint when absent.
 */
function classify(
  item: unknown,
  index: number,
  kind: string,
  context: Json | undefined,
  integrations: Json | undefined,
  now: number,
): { message: Json; reasons: string[] } {
  const single = kind !== "batch" && kind !== "import";
  if (!isObject(item)) {
    const where = single ? "the body" : `batch[${index}]`;
    return { message: { value: item }, reasons: [`${where} is ${describe(item)}, not a message object`] };
  }
  let message = item;
  let extra = NO_REASONS;
  if (context !== undefined || integrations !== undefined) {
    message = { ...item };
    if (context !== undefined) {
      message.context = isObject(item.context) ? { ...context, ...item.context } : item.context ?? context;
    }
    if (integrations !== undefined) {
      message.integrations = isObject(item.integrations)
        ? { ...integrations, ...item.integrations }
        : item.integrations ?? integrations;
    }
  }
  if (single) {
    if (item.type === undefined) message = { type: kind, ...message };
    else if (item.type !== kind) extra = [`type ${describe(item.type)} was sent to /v1/${kind}`];
  }
  const reasons = validateMessage(message, now);
  return { message, reasons: extra.length === 0 ? reasons : [...extra, ...reasons] };
}

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
  const store = new EventStore(s.maxEvents);
  const hub = new StreamHub(() => store.stats());
  const faults = new FaultPlan(s.failRate, s.dropConnectionRate, s.seed);
  const log = s.log;
  const requests: CollectorRequest[] = [];
  const script: ScriptedReply[] = [];
  let defaultReply: ScriptedReply | undefined;
  const requestListeners = new Set<(request: CollectorRequest) => void>();
  const eventListeners = new Set<(event: CollectorEvent) => void>();
  /** Responses held open: scripted hangs, and requests waiting out `latency`. */
  const held = new Set<ServerResponse>();
  let stopped = false;
  const writer = s.out === undefined
    ? undefined
    : await NdjsonWriter.open(s.out, (error) => log?.(`Cannot append to ${s.out}: ${error.message}`));

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

  function ingest(req: IncomingMessage, res: ServerResponse, path: string, kind: string): void {
    const t0 = performance.now();
    store.requests++;
    const done = (status: number, detail: string): void =>
      log?.(`${clock()} ${req.method} ${path} ${status} ${detail} ${(performance.now() - t0).toFixed(1)} ms`);

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
      received(req, res, path, kind, raw, done);
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
      try {
        parsed = JSON.parse(decoded.toString("utf8"));
      } catch (e) {
        problem = `body is not valid JSON (${(e as Error).message})`;
      }
    }
    const body: CollectorRequest["body"] = isObject(parsed) ? parsed : {};

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
      if (s.writeKey !== undefined) {
        const key = basicUser(req.headers.authorization) ?? body.writeKey;
        if (key !== s.writeKey) {
          const why = key === undefined ? "no write key" : "a wrong write key";
          error(res, 401, `Cannot accept the request: ${why} (send Basic auth with the write key as user name)`);
          return done(401, `(${why})`);
        }
      }
      accept(res, kind, parsed, body, decodedBytes, done);
    };
    if (s.latency > 0) {
      held.add(res);
      unref(setTimeout(answer, s.latency));
    } else answer();
  }

  function accept(
    res: ServerResponse,
    kind: string,
    parsed: unknown,
    body: Json,
    decodedBytes: number,
    done: (status: number, detail: string) => void,
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
    const serialize = writer !== undefined || hub.active;
    const lines: string[] = [];
    const stored: StoredEvent[] = [];
    const keep = (message: Json, reasons: string[], json: string | undefined): void => {
      const event = store.add(message, receivedAt, reasons);
      stored.push(event);
      if (serialize) lines.push(eventJson(event, json ?? JSON.stringify(message)));
    };
    const single = kind !== "batch" && kind !== "import";

    // Sizes: a body within 32 KB holds no message over it, so most requests skip measuring.
    const jsons: string[] = [];
    const oversized: { index: number; bytes: number }[] = [];
    if (decodedBytes > MESSAGE_LIMIT) {
      for (let i = 0; i < items.length; i++) {
        const json = JSON.stringify(items[i]) ?? "null";
        jsons.push(json);
        const bytes = json.length * 3 <= MESSAGE_LIMIT ? json.length : Buffer.byteLength(json);
        if (bytes > MESSAGE_LIMIT) oversized.push({ index: i, bytes });
      }
    }
    if (oversized.length > 0) {
      // The request is refused; the oversized messages are kept as bad, so that the inspector shows why.
      for (const { index, bytes } of oversized) {
        const { message, reasons } = classify(items[index], index, kind, context, integrations, now);
        const size = `message is ${bytes} bytes, over Segment's ${MESSAGE_LIMIT}-byte (32 KB) limit per message: ` +
          "the whole request was refused with 400";
        keep(message, [size, ...reasons], message === items[index] ? jsons[index] : undefined);
      }
      const { index, bytes } = oversized[0];
      error(
        res,
        400,
        `${
          single ? "the message" : `batch[${index}]`
        } is ${bytes} bytes, over the ${MESSAGE_LIMIT}-byte limit per message`,
      );
      finish(stored, lines);
      return done(400, `(${oversized.length} message${oversized.length === 1 ? "" : "s"} over 32 KB)`);
    }
    for (let i = 0; i < items.length; i++) {
      const { message, reasons } = classify(items[i], i, kind, context, integrations, now);
      keep(message, reasons, jsons.length > 0 && message === items[i] ? jsons[i] : undefined);
    }
    if (!res.destroyed) {
      res.writeHead(200, OK_HEADERS);
      res.end(OK_BODY);
    }
    finish(stored, lines);
    if (log !== undefined) {
      let bad = 0;
      for (const event of stored) if (event.status === "bad") bad++;
      const n = stored.length;
      done(200, `${n} message${n === 1 ? "" : "s"}${bad > 0 ? ` (${bad} bad)` : ""}, ${kb(decodedBytes)}`);
      let shown = 0;
      for (const event of stored) {
        if (event.status !== "bad") continue;
        if (shown++ === 5) {
          log(`  ...and ${bad - 5} more bad`);
          break;
        }
        log(badLine(event));
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
      else send(res, 200, JSON.stringify({ events: store.events(filter), evicted: store.evicted }));
      return 200;
    }
    if (path === "/api/stats") {
      if (req.method !== "GET") return methodNotAllowed(res, "GET");
      send(res, 200, JSON.stringify(store.stats()));
      return 200;
    }
    if (path === "/api/stream") {
      if (req.method !== "GET") return methodNotAllowed(res, "GET");
      hub.add(res);
      return 200;
    }
    error(res, 404, `Cannot find ${path}: the API has /api/events, /api/stats and /api/stream`);
    return 404;
  }

  function methodNotAllowed(res: ServerResponse, allow: string): number {
    error(res, 405, `Method not allowed: use ${allow}`, { allow });
    return 405;
  }

  const server = createServer((req, res) => {
    const url = req.url ?? "/";
    const q = url.indexOf("?");
    let path = q < 0 ? url : url.slice(0, q);
    if (path.length > 1 && path.endsWith("/")) path = path.slice(0, -1);
    if (path.startsWith("/v1/")) {
      const kind = path.slice(4);
      if (kind === "batch" || kind === "import" || MESSAGE_TYPES.includes(kind)) return ingest(req, res, url, kind);
    }
    let status: number;
    if (path.startsWith("/api/")) status = api(req, res, path, q < 0 ? "" : url.slice(q + 1));
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
  });

  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(s.port, s.hostname, () => {
      server.off("error", reject);
      resolve();
    });
  }).catch(async (e) => {
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
    stats: () => store.stats(),
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
    async stop() {
      if (stopped) return;
      stopped = true;
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
