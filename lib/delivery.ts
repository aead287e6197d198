import { encodeBody, envelopeBytes, MAX_BODY_BYTES } from "./batch.ts";
import { Context } from "./context.ts";
import type { Emitter } from "./emitter.ts";
import { DeliveryError, type FailureReason } from "./errors.ts";
import { TokenManager } from "./oauth.ts";
import type { Settings } from "./options.ts";
import { redact } from "./redact.ts";
import { type Batch, Queue, sizeOf, split, textOf } from "./queue.ts";
import { backoff } from "./retry.ts";
import { deliverBeforeExit, releaseBeforeExit, settled, sleep, Stopper, type Timer, unrefTimer } from "./scheduler.ts";
import { boundedByteLength } from "./serialize.ts";
import { StoredQueue } from "./stored_queue.ts";
import { basicAuth, gzip, type Observer, type Outcome, post } from "./transport.ts";
import type { Callback, FlushResult, Message, MessageType, Stats } from "./types.ts";

/** Requests in flight at once per client: enough to fill a link, never a fan-out. */
export const MAX_IN_FLIGHT = 4;

/** Attempts answered 429 with Retry-After do not count as retries; at most this many more are made. */
const MAX_RATE_LIMITED_ATTEMPTS = 20;

/** The longest delay a timer takes (about 24.8 days): a flush() without a timeout waits on one. */
const MAX_TIMER_MS = 2 ** 31 - 1;

/** Refused messages held for one `onError` call at most; a longer burst is reported in chunks of this many. */
const MAX_HELD_DROPS = 1000;

const TYPES: readonly MessageType[] = ["identify", "track", "page", "screen", "group", "alias"];

interface Waiter {
  target: number;
  delivered: number;
  failed: number;
  kept: number;
  pending: number;
  resolve: (result: FlushResult) => void;
  timer: Timer | undefined;
}

interface Refused {
  json: string[];
  callbacks: [number, Callback][];
}

const parse = (json: string): Message => JSON.parse(json);
const nMessages = (n: number): string => `${n} ${n === 1 ? "message" : "messages"}`;

/**
 * The delivery engine: queues serialized messages, cuts them into batches,
 * sends at most {@linkcode MAX_IN_FLIGHT} requests at a time with retries,
 * and accounts for every message exactly once (delivered, or reported).
 */
export class Delivery {
  readonly #s: Settings;
  readonly #queue: Queue | StoredQueue;
  /** The disk queue, when `storage` is given (then it is `#queue` too). */
  readonly #store: StoredQueue | undefined;
  readonly #inflight = new Set<Batch>();
  readonly #waiters = new Set<Waiter>();
  readonly #refused = new Map<FailureReason, Refused>();
  readonly #stop = new Stopper();
  readonly #events: Emitter;
  readonly #callbacksRunning = new Set<Promise<unknown>>();
  #tokens: TokenManager | undefined;
  #tokensFor: Settings["oauthSettings"];
  #token: string | undefined;
  /** While a 429's Retry-After runs, no batch is sent (the whole client waits, as analytics-node does). */
  #pausedUntil = 0;
  #rateLimitedSince: number | undefined;
  #slots = 0;
  #timer: Timer | undefined;
  #sendThrough = 0;
  #drainScheduled = false;
  #registered = false;
  #closed = false;
  #sealed = false;
  /** Messages on their way here through async middleware: flush, close and `drained` wait for them. */
  readonly #admitting = new Set<Promise<void>>();
  /** Whether anything was queued since the last `drained`. */
  #busy = false;
  #envelopeKey: string | undefined;
  #envelope = envelopeBytes(undefined);
  #stats = { delivered: 0, failed: 0, dropped: 0, retries: 0, batches: 0, bytesSent: 0 };
  #kept = 0;

  constructor(settings: Settings, events: Emitter) {
    this.#s = settings;
    this.#events = events;
    if (settings.storage === undefined) {
      this.#queue = new Queue();
      this.#store = undefined;
      return;
    }
    const store = new StoredQueue(settings.storage, settings, {
      fail: (batch, reason, text) =>
        this.#settle(batch, new DeliveryError(reason, `Cannot deliver ${nMessages(sizeOf(batch))}${text}`)),
      lose: (first, n, text) => this.#settleLost(first, n, `Cannot deliver ${nMessages(n)}${text}`),
      warn: (line) => this.#log("error", line),
      debug: (line) => {
        if (this.#s.debug) this.#debug(line);
      },
    });
    this.#queue = this.#store = store;
    // Reported once the constructor has returned, so `on("error")` listeners added just after it hear them.
    for (const problem of store.problems) {
      queueMicrotask(() =>
        this.#report(
          new DeliveryError(
            "storage",
            `Cannot read all of ${problem.file} in storage ${store.dir}: ${problem.detail}` +
              (problem.quarantined === undefined ? "" : `; the original is in ${problem.quarantined}`),
          ),
          [],
        )
      );
    }
    if (store.size > 0 && settings.send) {
      // What an earlier process left is sent now, and counts in flush() (with `send: false`, it stays on disk).
      if (settings.debug) this.#debug(`sending ${nMessages(store.size)} found in storage ${store.dir}`);
      this.#busy = true;
      this.#registered = true;
      deliverBeforeExit(this);
      this.#sendThrough = store.lastSeq;
      queueMicrotask(() => this.#drain());
    }
  }

  /**
   * Queues one serialized message. Returns false, keeping nothing, when it is
   * over Segment's per-message limit; a refusal (closed, queue full) is
   * reported through `onError` and still returns true.
   */
  enqueue(json: string, callback: Callback | undefined, admitted = false): boolean {
    const s = this.#s;
    const queue = this.#queue;
    // Once close() has resolved, nothing gets in: a message still in middleware then is reported as closed.
    const closed = this.#closed && (!admitted || this.#sealed);
    const store = this.#store;
    if (closed || (store === undefined && queue.size >= s.maxQueueSize)) {
      if (boundedByteLength(json) < 0) return false;
      if (closed && this.#events.listens("call_after_close")) this.#events.emit("call_after_close", parse(json));
      this.refuse(closed ? "closed" : "queue_full", json, callback);
      return true;
    }
    const seq = queue.push(json, callback);
    if (seq < 0) {
      if (seq === -1) return false;
      this.refuse("queue_full", json, callback); // the storage is full (store.refusal says why)
      return true;
    }
    this.#busy = true;
    if (!this.#registered) {
      this.#registered = true;
      deliverBeforeExit(this);
    }
    if (s.syncMode) {
      this.#sendThrough = seq;
      this.#drain();
      return true;
    }
    if (
      (store === undefined
        ? queue.size >= s.uploadSize || queue.bytes + queue.size + this.#envelope > MAX_BODY_BYTES
        : store.ready) &&
      !this.#drainScheduled && this.#slots < MAX_IN_FLIGHT
    ) {
      // Deferred: a burst of synchronous calls stays a burst of cheap pushes.
      this.#drainScheduled = true;
      queueMicrotask(() => this.#drain());
    }
    if (this.#timer === undefined) {
      this.#timer = unrefTimer(setTimeout(() => this.#tick(), s.uploadInterval * 1000));
    }
    return true;
  }

  /** Reports a message that will not be queued, coalescing a burst into one `onError` call. */
  refuse(reason: FailureReason, json: string, callback: Callback | undefined): void {
    this.#stats.dropped++;
    let refused = this.#refused.get(reason);
    if (refused === undefined) {
      refused = { json: [], callbacks: [] };
      this.#refused.set(reason, refused);
      queueMicrotask(() => this.#reportRefused(reason));
    }
    if (callback !== undefined) refused.callbacks.push([refused.json.length, callback]);
    refused.json.push(json);
    // A synchronous burst never yields to the microtask: report in chunks so drops hold bounded memory.
    if (refused.json.length >= MAX_HELD_DROPS) this.#reportRefused(reason);
  }

  /**
   * The end of the program (Node's and Bun's `beforeExit`, Deno's
   * `beforeunload`): delivers what is left within `exitTimeout`, then
   * reports the rest as `closed`, so a program whose server is down still ends.
   */
  exit(): Promise<FlushResult> {
    return this.close(this.#s.exitTimeout * 1000);
  }

  /** Counts a message that middleware dropped on purpose; its callback hears no error. */
  drop(json: string, callback: Callback | undefined): void {
    this.#stats.dropped++;
    if (callback !== undefined) queueMicrotask(() => this.#settleCallbacks(new Map([[0, callback]]), () => json));
  }

  /** Reports a message that will not be queued, with a ready error (middleware, size). */
  reject(error: DeliveryError, json: string[], callback: Callback | undefined): void {
    this.#stats.dropped += json.length;
    this.#settleCallbacks(callback && new Map([[0, callback]]), (i) => json[i], error);
    this.#report(error, json);
  }

  /** Applies changed settings to what is queued. */
  settingsChanged(): void {
    // syncMode sends at once; a storage client turned to `send: true` sends what it found on disk.
    if (this.#s.syncMode || this.#store !== undefined) this.#sendThrough = this.#queue.lastSeq;
    this.#drain();
  }

  /** Counters, plus what is queued and in flight now. */
  stats(): Stats {
    let inFlight = 0;
    for (const batch of this.#inflight) inFlight += sizeOf(batch);
    const stats: Stats = { queued: this.#queue.size, inFlight, ...this.#stats };
    if (this.#store !== undefined) {
      stats.kept = this.#kept;
      stats.memoryOnly = this.#store.memoryOnly;
      stats.storedBytes = this.#store.fileBytes;
    }
    return stats;
  }

  /**
   * Waits for messages still in async middleware, then sends everything
   * queued and resolves when it is delivered or reported, or after `timeout` ms.
   */
  async flush(timeout?: number): Promise<FlushResult> {
    const started = Date.now();
    await settled(this.#admitting, timeout);
    return this.#flushQueued(timeout === undefined ? undefined : Math.max(0, timeout - (Date.now() - started)));
  }

  #flushQueued(timeout?: number): Promise<FlushResult> {
    if (!this.#s.send && this.#inflight.size === 0) {
      // Nothing is sent (`send: false`): only what storage found on disk can be waiting, and it stays there.
      return Promise.resolve({ delivered: 0, failed: 0, pending: this.#queue.size });
    }
    const target = this.#queue.lastSeq;
    if (target > this.#sendThrough) this.#sendThrough = target;
    this.#drain();
    if (this.#lowestUnsettled() > target) {
      return Promise.resolve(
        this.#store ? { delivered: 0, failed: 0, pending: 0, kept: 0 } : {
          delivered: 0,
          failed: 0,
          pending: 0,
        },
      );
    }
    return new Promise((resolve) => {
      const waiter: Waiter = {
        target,
        delivered: 0,
        failed: 0,
        kept: 0,
        pending: this.stats().inFlight + this.#queue.size,
        resolve,
        timer: undefined,
      };
      // A pending flush() keeps the program alive (its timer is ref'd), though the retry waits it stands on are not.
      waiter.timer = setTimeout(() => this.#release(waiter), timeout ?? MAX_TIMER_MS);
      this.#waiters.add(waiter);
    });
  }

  /**
   * Refuses new messages, flushes, and if `timeout` ms pass first, aborts what
   * is left and reports it as `closed`. Resolves once every message is settled.
   */
  async close(timeout?: number): Promise<FlushResult> {
    this.#closed = true; // at once: a call made after close() is refused, not raced
    const started = Date.now();
    const left = (): number | undefined =>
      timeout === undefined ? undefined : Math.max(0, timeout - (Date.now() - started));
    const before = { delivered: this.#stats.delivered, failed: this.#stats.failed, kept: this.#kept };
    await settled(this.#admitting, timeout);
    let result = await this.#flushQueued(left());
    if (result.pending > 0) {
      this.#stop.stop();
      const store = this.#store;
      if (store !== undefined) {
        // Not lost: what could not be sent stays on disk for the next start, and is reported as kept.
        const { kept, unkept } = store.keepAll();
        for (const [first, n] of kept) {
          this.#kept += n;
          for (const waiter of this.#waiters) waiter.kept += Math.max(0, Math.min(n, waiter.target - first + 1));
        }
        for (const batch of unkept) {
          this.#settle(
            batch,
            new DeliveryError(
              "closed",
              `Cannot deliver ${nMessages(sizeOf(batch))}: close() timed out before they were sent, ` +
                "and the storage had refused to write them",
            ),
          );
        }
        this.#releaseSettled();
      }
      const unsent = store === undefined ? (this.#queue as Queue).takeAll() : undefined;
      if (unsent !== undefined) {
        this.#settle(
          unsent,
          new DeliveryError(
            "closed",
            `Cannot deliver ${nMessages(sizeOf(unsent))}: close() timed out before they were sent`,
          ),
        );
      }
      await this.#flushQueued();
      // Everything is settled now: what was pending was delivered at the last moment or reported as closed.
      result = {
        delivered: this.#stats.delivered - before.delivered,
        failed: this.#stats.failed - before.failed,
        pending: 0,
      };
      if (this.#store !== undefined) result.kept = this.#kept - before.kept;
    }
    if (this.#timer !== undefined) clearTimeout(this.#timer);
    this.#timer = undefined;
    this.#store?.close();
    await settled(this.#callbacksRunning, left());
    this.#sealed = true;
    return result;
  }

  /** Whether new messages are refused. */
  get closed(): boolean {
    return this.#closed;
  }

  /**
   * Keeps track of a message on its way through async middleware until
   * `arrival` settles (queued, dropped or refused), so flush, close and
   * `drained` wait for it.
   */
  admit(arrival: Promise<void>): void {
    this.#busy = true;
    const tracked: Promise<void> = arrival.finally(() => {
      this.#admitting.delete(tracked);
      this.#idle();
    });
    this.#admitting.add(tracked);
  }

  #tick(): void {
    this.#timer = undefined;
    const last = this.#queue.lastSeq;
    if (last > this.#sendThrough) this.#sendThrough = last;
    this.#drain();
  }

  #drain(): void {
    this.#drainScheduled = false;
    const s = this.#s;
    if (!s.send) return; // with `send: false` calls queue nothing; what storage found stays on disk
    if (s.writeKey !== this.#envelopeKey) {
      this.#envelopeKey = s.writeKey;
      this.#envelope = envelopeBytes(s.writeKey);
    }
    const queue = this.#queue;
    while (this.#slots < MAX_IN_FLIGHT && queue.size > 0) {
      const partial = queue.headSeq <= this.#sendThrough;
      const batch = queue.take(s.syncMode ? 1 : s.uploadSize, MAX_BODY_BYTES, this.#envelope, partial);
      if (batch === undefined) break;
      this.#slots++;
      this.#inflight.add(batch);
      this.#stats.batches++;
      void this.#run(batch);
    }
    if (queue.size > 0 && this.#timer === undefined && !s.syncMode && !this.#closed) {
      this.#timer = unrefTimer(setTimeout(() => this.#tick(), s.uploadInterval * 1000));
    }
  }

  async #run(batch: Batch): Promise<void> {
    const parts = [batch];
    try {
      for (let part = parts.shift(); part !== undefined; part = parts.shift()) {
        const halves = await this.#deliver(part);
        if (halves !== undefined) {
          this.#inflight.delete(part);
          for (const half of halves) this.#inflight.add(half);
          this.#stats.batches += 2;
          parts.unshift(...halves);
        }
      }
    } catch (cause) {
      // A bug here must not lose messages silently.
      for (const part of [batch, ...parts]) {
        if (this.#inflight.has(part)) {
          this.#settle(part, new DeliveryError("network", `Cannot deliver: ${cause}`, { cause }));
        }
      }
    } finally {
      this.#slots--;
      this.#drain();
      this.#idle();
    }
  }

  /** Sends one batch until it settles; returns two halves when the server says 413. */
  async #deliver(batch: Batch): Promise<[Batch, Batch] | undefined> {
    const s = this.#s;
    const n = sizeOf(batch);
    const fail = (reason: FailureReason, text: string, init: ConstructorParameters<typeof DeliveryError>[2]) =>
      void this.#settle(batch, new DeliveryError(reason, `Cannot deliver ${nMessages(n)}${text}`, init));
    let retry = 0; // retries that count toward maxRetries
    let attempt = 0;
    let firstFailure: number | undefined;
    let reauthorized = false;
    for (;; attempt++) {
      if (!(await this.#waitOutRateLimit())) {
        if (this.#stop.stopped) {
          return fail("closed", ": close() timed out while they waited out a 429", { retries: retry });
        }
        return fail(
          "http_status",
          `: the server kept answering 429 for longer than maxRateLimitDuration (${s.maxRateLimitDuration} s)`,
          { status: 429, retries: retry },
        );
      }
      const plain = encodeBody(batch, new Date().toISOString(), s.writeKey);
      const body = s.gzip ? await gzip(plain) : plain;
      if (s.debug) this.#debug(`sending ${nMessages(n)} (${body.byteLength} bytes${s.gzip ? ", gzip" : ""})`);
      const auth = await this.#authorization();
      let outcome: Outcome;
      if (typeof auth === "object") outcome = auth; // no token: nothing was sent
      else {
        outcome = await post(body, plain, s, auth, attempt, this.#stop, this.#observer());
        this.#stats.bytesSent += body.byteLength;
      }
      if (outcome.ok) {
        this.#rateLimitedSince = undefined;
        if (s.debug) this.#debug(`delivered ${nMessages(n)} (${outcome.status})`);
        return void this.#settle(batch);
      }
      const tries = retry > 0 ? ` after ${retry} ${retry === 1 ? "retry" : "retries"}` : "";
      if (this.#stop.stopped) {
        return fail("closed", ": close() timed out while they were in flight", {
          retries: retry,
          status: outcome.status,
        });
      }
      if (outcome.status === 413) {
        if (n > 1) return split(batch);
        return fail("too_large", `: ${outcome.detail}`, { status: 413, retries: retry });
      }
      if ((outcome.status === 401 || outcome.status === 403) && this.#tokens !== undefined && !reauthorized) {
        // An expired or revoked token: fetch a new one once, without counting a retry.
        reauthorized = true;
        this.#tokens.invalidate(this.#token);
        continue;
      }
      const rateLimited = outcome.status === 429 && outcome.retryAfter !== undefined;
      if (rateLimited && attempt - retry < MAX_RATE_LIMITED_ATTEMPTS) {
        const wait = Math.min(Math.max(outcome.retryAfter!, 0), s.maxRetryDelay * 1000);
        this.#pausedUntil = Math.max(this.#pausedUntil, Date.now() + wait);
        this.#rateLimitedSince ??= Date.now();
        if (s.debug) this.#debug(`${outcome.detail}; every batch waits ${wait} ms (Retry-After)`);
        this.#stats.retries++;
        continue;
      }
      firstFailure ??= Date.now();
      const overTime = Date.now() - firstFailure > s.maxTotalBackoffDuration * 1000;
      if (!outcome.retryable || retry >= s.maxRetries || overTime) {
        const why = overTime && outcome.retryable && retry < s.maxRetries
          ? ` (retrying took longer than maxTotalBackoffDuration, ${s.maxTotalBackoffDuration} s)`
          : "";
        return fail(outcome.reason, `${tries}: ${outcome.detail}${why}`, {
          status: outcome.status,
          retries: retry,
          cause: outcome.cause,
        });
      }
      const wait = Math.min(
        outcome.retryAfter ?? backoff(retry, s.minRetryDelay, s.maxRetryDelay),
        s.maxRetryDelay * 1000,
      );
      if (s.debug) this.#debug(`${outcome.detail}; retry ${retry + 1} of ${s.maxRetries} in ${wait} ms`);
      this.#stats.retries++;
      retry++;
      await sleep(wait, this.#stop);
      if (this.#stop.stopped) {
        return fail("closed", ": close() timed out while they waited to retry", {
          retries: retry - 1,
          status: outcome.status,
        });
      }
    }
  }

  /** Waits while a 429 pauses the client; false when stopped or paused past maxRateLimitDuration. */
  async #waitOutRateLimit(): Promise<boolean> {
    for (let now = Date.now(); now < this.#pausedUntil; now = Date.now()) {
      const since = this.#rateLimitedSince ?? now;
      const left = this.#s.maxRateLimitDuration * 1000 - (now - since);
      if (left <= 0) {
        this.#pausedUntil = 0;
        this.#rateLimitedSince = undefined;
        return false;
      }
      await sleep(Math.min(this.#pausedUntil - now, left), this.#stop);
      if (this.#stop.stopped) return false;
    }
    return true;
  }

  /** The Authorization header: Basic with the write key, or an OAuth Bearer token; an Outcome when no token could be had. */
  async #authorization(): Promise<string | undefined | Outcome> {
    const s = this.#s;
    if (s.oauthSettings === undefined) {
      this.#tokens = undefined;
      return s.writeKey === undefined ? undefined : basicAuth(s.writeKey);
    }
    if (this.#tokens === undefined || this.#tokensFor !== s.oauthSettings) {
      this.#tokens = new TokenManager(s.oauthSettings, () => s.fetch);
      this.#tokensFor = s.oauthSettings;
    }
    try {
      this.#token = await this.#tokens.getToken(this.#stop);
      return `Bearer ${this.#token}`;
    } catch (cause) {
      const error = cause as { retryable?: boolean; retryAfter?: number; message?: string };
      const detail = redact(String(error?.message ?? cause), s.writeKey);
      return {
        ok: false,
        reason: "network",
        retryable: error?.retryable !== false,
        retryAfter: error?.retryAfter,
        detail,
        cause,
      };
    }
  }

  /** Listeners of `http_request` / `http_response`, when there are any. */
  #observer(): Observer | undefined {
    const events = this.#events;
    const request = events.listens("http_request");
    const response = events.listens("http_response");
    if (!request && !response) return undefined;
    return {
      request: request ? (event) => events.emit("http_request", event) : undefined,
      response: response ? (event) => events.emit("http_response", event) : undefined,
    };
  }

  #settle(batch: Batch, error?: DeliveryError): void {
    this.#inflight.delete(batch);
    const n = sizeOf(batch);
    const store = this.#store;
    if (store !== undefined) {
      if (error?.reason === "closed" && this.#stop.stopped && store.keeps(batch)) {
        // close() timed out while it was out: it stays on disk for the next start (not lost, not reported).
        store.settle(batch, true);
        this.#kept += n;
        for (const waiter of this.#waiters) waiter.kept += Math.max(0, Math.min(n, waiter.target - batch.first + 1));
        this.#releaseSettled();
        return;
      }
      store.settle(batch);
    }
    if (error === undefined) this.#stats.delivered += n;
    else this.#stats.failed += n;
    this.#settleCallbacks(batch.callbacks, (i) => textOf(batch, i), error);
    if (error !== undefined) this.#report(error, Array.from({ length: n }, (_, i) => textOf(batch, i)));
    else if (TYPES.some((type) => this.#events.listens(type))) {
      for (let i = 0; i < n; i++) {
        const message = parse(textOf(batch, i));
        if (this.#events.listens(message.type)) this.#events.emit(message.type, new Context(message));
      }
    }
    if (this.#waiters.size > 0) {
      for (const waiter of this.#waiters) {
        const counted = Math.max(0, Math.min(n, waiter.target - batch.first + 1));
        if (error === undefined) waiter.delivered += counted;
        else waiter.failed += counted;
      }
      this.#releaseSettled();
    }
  }

  /** Releases the waiters whose messages are all settled. */
  #releaseSettled(): void {
    if (this.#waiters.size === 0) return;
    const lowest = this.#lowestUnsettled();
    for (const waiter of this.#waiters) if (waiter.target < lowest) this.#release(waiter);
  }

  /** Settles messages `first..first+n-1` that the storage cannot read back: failed, reported with reason `storage`. */
  #settleLost(first: number, n: number, text: string): void {
    this.#stats.failed += n;
    this.#report(new DeliveryError("storage", text), []);
    for (const waiter of this.#waiters) waiter.failed += Math.max(0, Math.min(n, waiter.target - first + 1));
    this.#releaseSettled();
  }

  #settleCallbacks(
    callbacks: Map<number, Callback> | undefined,
    json: (i: number) => string,
    error?: DeliveryError,
  ): void {
    if (callbacks === undefined) return;
    for (const [i, callback] of callbacks) {
      try {
        const returned = callback(error, new Context(parse(json(i)), error));
        if (typeof (returned as Promise<unknown>)?.then === "function") {
          const running = Promise.resolve(returned).then(
            () => {},
            (thrown) => this.#log("error", "[tally] a callback's promise rejected:", thrown),
          ).finally(() => this.#callbacksRunning.delete(running));
          this.#callbacksRunning.add(running);
        }
      } catch (thrown) {
        this.#log("error", "[tally] a callback threw:", thrown);
      }
    }
  }

  #release(waiter: Waiter): void {
    if (!this.#waiters.delete(waiter)) return;
    if (waiter.timer !== undefined) clearTimeout(waiter.timer);
    const { delivered, failed, kept } = waiter;
    const pending = Math.max(0, waiter.pending - delivered - failed - kept);
    waiter.resolve(this.#store === undefined ? { delivered, failed, pending } : { delivered, failed, pending, kept });
  }

  #lowestUnsettled(): number {
    let lowest = this.#queue.size > 0 ? this.#queue.headSeq : Infinity;
    for (const batch of this.#inflight) if (batch.first < lowest) lowest = batch.first;
    return lowest;
  }

  #idle(): void {
    if (this.#queue.size > 0 || this.#inflight.size > 0 || this.#admitting.size > 0) return;
    if (this.#registered) {
      this.#registered = false;
      releaseBeforeExit(this);
    }
    if (!this.#busy) return;
    this.#busy = false;
    this.#events.emit("drained");
  }

  #reportRefused(reason: FailureReason): void {
    const refused = this.#refused.get(reason);
    this.#refused.delete(reason);
    if (refused === undefined) return;
    const n = refused.json.length;
    const error = new DeliveryError(
      reason,
      reason === "queue_full"
        ? this.#store !== undefined
          ? `Cannot queue ${nMessages(n)}: ${this.#store.refusal}`
          : `Cannot queue ${nMessages(n)}: the queue already holds maxQueueSize (${this.#s.maxQueueSize}) messages`
        : `Cannot queue ${nMessages(n)}: the client is closed`,
    );
    this.#settleCallbacks(new Map(refused.callbacks), (i) => refused.json[i], error);
    this.#report(error, refused.json);
  }

  #report(error: DeliveryError, json: string[]): void {
    const s = this.#s;
    const listening = this.#events.listens("error");
    if (s.onError === undefined && !listening) {
      this.#log("error", `[tally] ${error.message} (reason: ${error.reason})`);
      return;
    }
    const messages = json.map(parse);
    if (s.onError !== undefined) {
      try {
        s.onError(error, messages);
      } catch (thrown) {
        this.#log("error", "[tally] onError threw:", thrown);
      }
    }
    if (listening) {
      for (const message of messages) {
        this.#events.emit("error", { code: "delivery_failure", reason: error, ctx: new Context(message, error) });
      }
    }
  }

  #debug(line: string): void {
    this.#log("debug", `[tally] ${redact(line, this.#s.writeKey)}`);
  }

  /** Logs through the user's logger; a logger that throws never breaks delivery. */
  #log(level: "debug" | "error", ...args: unknown[]): void {
    try {
      this.#s.logger[level](...args);
    } catch {
      // Nowhere left to say it.
    }
  }
}
