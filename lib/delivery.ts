import { encodeBody, envelopeBytes, MAX_BODY_BYTES } from "./batch.ts";
import { DeliveryError, type FailureReason } from "./errors.ts";
import type { Settings } from "./options.ts";
import { type Batch, Queue, sizeOf, split, textOf } from "./queue.ts";
import { backoff } from "./retry.ts";
import { deliverBeforeExit, releaseBeforeExit, sleep, Stopper, type Timer, unrefTimer } from "./scheduler.ts";
import { boundedByteLength } from "./serialize.ts";
import { gzip, type Outcome, post } from "./transport.ts";
import type { Callback, ErrorHandler, FlushResult, Message, Stats } from "./types.ts";

/** Requests in flight at once per client: enough to fill a link, never a fan-out. */
export const MAX_IN_FLIGHT = 4;

interface Waiter {
  target: number;
  delivered: number;
  failed: number;
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
  readonly #queue = new Queue();
  readonly #inflight = new Set<Batch>();
  readonly #waiters = new Set<Waiter>();
  readonly #refused = new Map<FailureReason, Refused>();
  readonly #stop = new Stopper();
  readonly #listeners: ErrorHandler[] = [];
  #slots = 0;
  #timer: Timer | undefined;
  #sendThrough = 0;
  #drainScheduled = false;
  #registered = false;
  #closed = false;
  #envelopeKey: string | undefined;
  #envelope = envelopeBytes(undefined);
  #stats = { delivered: 0, failed: 0, dropped: 0, retries: 0, batches: 0, bytesSent: 0 };

  constructor(settings: Settings) {
    this.#s = settings;
  }

  /**
   * Queues one serialized message. Returns false, keeping nothing, when it is
   * over Segment's per-message limit; a refusal (closed, queue full) is
   * reported through `onError` and still returns true.
   */
  enqueue(json: string, callback: Callback | undefined): boolean {
    const s = this.#s;
    const queue = this.#queue;
    if (this.#closed || queue.size >= s.maxQueueSize) {
      if (boundedByteLength(json) < 0) return false;
      this.refuse(this.#closed ? "closed" : "queue_full", json, callback);
      return true;
    }
    const seq = queue.push(json, callback);
    if (seq < 0) return false;
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
      (queue.size >= s.uploadSize || queue.bytes + queue.size + this.#envelope > MAX_BODY_BYTES) &&
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
  }

  /** Counts a message that middleware dropped on purpose; its callback hears no error. */
  drop(message: Message, callback: Callback | undefined): void {
    this.#stats.dropped++;
    if (callback !== undefined) queueMicrotask(() => callback(undefined, message));
  }

  /** Reports a message that will not be queued, with a ready error (middleware, size). */
  reject(error: DeliveryError, json: string[], callback: Callback | undefined): void {
    this.#stats.dropped += json.length;
    this.#settleCallbacks(callback && new Map([[0, callback]]), (i) => json[i], error);
    this.#report(error, json);
  }

  /** Adds an `error` listener (analytics-node's `on("error")`). */
  addErrorListener(listener: ErrorHandler): void {
    this.#listeners.push(listener);
  }

  /** Applies changed settings to what is queued. */
  settingsChanged(): void {
    if (this.#s.syncMode) this.#sendThrough = this.#queue.lastSeq;
    this.#drain();
  }

  /** Counters, plus what is queued and in flight now. */
  stats(): Stats {
    let inFlight = 0;
    for (const batch of this.#inflight) inFlight += sizeOf(batch);
    return { queued: this.#queue.size, inFlight, ...this.#stats };
  }

  /** Sends everything queued now and resolves when it is delivered or reported, or after `timeout` ms. */
  flush(timeout?: number): Promise<FlushResult> {
    const target = this.#queue.lastSeq;
    if (target > this.#sendThrough) this.#sendThrough = target;
    this.#drain();
    if (this.#lowestUnsettled() > target) return Promise.resolve({ delivered: 0, failed: 0, pending: 0 });
    return new Promise((resolve) => {
      const waiter: Waiter = {
        target,
        delivered: 0,
        failed: 0,
        pending: this.stats().inFlight + this.#queue.size,
        resolve,
        timer: undefined,
      };
      if (timeout !== undefined) waiter.timer = setTimeout(() => this.#release(waiter), timeout);
      this.#waiters.add(waiter);
    });
  }

  /**
   * Refuses new messages, flushes, and if `timeout` ms pass first, aborts what
   * is left and reports it as `closed`. Resolves once every message is settled.
   */
  async close(timeout?: number): Promise<FlushResult> {
    this.#closed = true;
    const result = await this.flush(timeout);
    if (result.pending > 0) {
      this.#stop.stop();
      const left = this.#queue.takeAll();
      if (left !== undefined) {
        this.#settle(
          left,
          new DeliveryError(
            "closed",
            `Cannot deliver ${nMessages(sizeOf(left))}: close() timed out before they were sent`,
          ),
        );
      }
      await this.flush();
    }
    if (this.#timer !== undefined) clearTimeout(this.#timer);
    this.#timer = undefined;
    return result;
  }

  /** Whether new messages are refused. */
  get closed(): boolean {
    return this.#closed;
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
    for (let retry = 0;; retry++) {
      const plain = encodeBody(batch, new Date().toISOString(), s.writeKey);
      const body = s.gzip ? await gzip(plain) : plain;
      if (s.debug) this.#debug(`sending ${nMessages(n)} (${body.byteLength} bytes${s.gzip ? ", gzip" : ""})`);
      const outcome: Outcome = await post(body, s, retry, this.#stop);
      this.#stats.bytesSent += body.byteLength;
      if (outcome.ok) {
        if (s.debug) this.#debug(`delivered ${nMessages(n)} (${outcome.status})`);
        return void this.#settle(batch);
      }
      if (this.#stop.stopped) {
        return void this.#settle(
          batch,
          new DeliveryError("closed", `Cannot deliver ${nMessages(n)}: close() timed out while they were in flight`, {
            retries: retry,
            status: outcome.status,
          }),
        );
      }
      if (outcome.status === 413) {
        if (n > 1) return split(batch);
        return void this.#settle(
          batch,
          new DeliveryError("too_large", `Cannot deliver 1 message: ${this.#redact(outcome.detail)}`, {
            status: 413,
            retries: retry,
          }),
        );
      }
      if (!outcome.retryable || retry >= s.maxRetries) {
        const tries = retry > 0 ? ` after ${retry} ${retry === 1 ? "retry" : "retries"}` : "";
        return void this.#settle(
          batch,
          new DeliveryError(outcome.reason, `Cannot deliver ${nMessages(n)}${tries}: ${this.#redact(outcome.detail)}`, {
            status: outcome.status,
            retries: retry,
            cause: outcome.cause,
          }),
        );
      }
      const wait = Math.min(
        outcome.retryAfter ?? backoff(retry, s.minRetryDelay, s.maxRetryDelay),
        s.maxRetryDelay * 1000,
      );
      if (s.debug) this.#debug(`${outcome.detail}; retry ${retry + 1} of ${s.maxRetries} in ${wait} ms`);
      this.#stats.retries++;
      await sleep(wait, this.#stop);
      if (this.#stop.stopped) {
        return void this.#settle(
          batch,
          new DeliveryError("closed", `Cannot deliver ${nMessages(n)}: close() timed out while they waited to retry`, {
            retries: retry,
            status: outcome.status,
          }),
        );
      }
    }
  }

  #settle(batch: Batch, error?: DeliveryError): void {
    this.#inflight.delete(batch);
    const n = sizeOf(batch);
    if (error === undefined) this.#stats.delivered += n;
    else this.#stats.failed += n;
    this.#settleCallbacks(batch.callbacks, (i) => textOf(batch, i), error);
    if (error !== undefined) this.#report(error, Array.from({ length: n }, (_, i) => textOf(batch, i)));
    if (this.#waiters.size > 0) {
      for (const waiter of this.#waiters) {
        const counted = Math.max(0, Math.min(n, waiter.target - batch.first + 1));
        if (error === undefined) waiter.delivered += counted;
        else waiter.failed += counted;
      }
      const lowest = this.#lowestUnsettled();
      for (const waiter of this.#waiters) if (waiter.target < lowest) this.#release(waiter);
    }
  }

  #settleCallbacks(
    callbacks: Map<number, Callback> | undefined,
    json: (i: number) => string,
    error?: DeliveryError,
  ): void {
    if (callbacks === undefined) return;
    for (const [i, callback] of callbacks) {
      try {
        callback(error, parse(json(i)));
      } catch (thrown) {
        this.#s.logger.error("[tally] a callback threw:", thrown);
      }
    }
  }

  #release(waiter: Waiter): void {
    if (!this.#waiters.delete(waiter)) return;
    if (waiter.timer !== undefined) clearTimeout(waiter.timer);
    const { delivered, failed } = waiter;
    waiter.resolve({ delivered, failed, pending: Math.max(0, waiter.pending - delivered - failed) });
  }

  #lowestUnsettled(): number {
    let lowest = this.#queue.size > 0 ? this.#queue.headSeq : Infinity;
    for (const batch of this.#inflight) if (batch.first < lowest) lowest = batch.first;
    return lowest;
  }

  #idle(): void {
    if (this.#registered && this.#queue.size === 0 && this.#inflight.size === 0) {
      this.#registered = false;
      releaseBeforeExit(this);
    }
  }

  #reportRefused(reason: FailureReason): void {
    const refused = this.#refused.get(reason);
    this.#refused.delete(reason);
    if (refused === undefined) return;
    const n = refused.json.length;
    const error = new DeliveryError(
      reason,
      reason === "queue_full"
        ? `Cannot queue ${nMessages(n)}: the queue already holds maxQueueSize (${this.#s.maxQueueSize}) messages`
        : `Cannot queue ${nMessages(n)}: the client is closed`,
    );
    this.#settleCallbacks(new Map(refused.callbacks), (i) => refused.json[i], error);
    this.#report(error, refused.json);
  }

  #report(error: DeliveryError, json: string[]): void {
    const s = this.#s;
    const handlers = s.onError ? [s.onError, ...this.#listeners] : this.#listeners;
    if (handlers.length === 0) {
      s.logger.error(`[tally] ${error.message} (reason: ${error.reason})`);
      return;
    }
    const messages = json.map(parse);
    for (const handler of handlers) {
      try {
        handler(error, messages);
      } catch (thrown) {
        s.logger.error("[tally] onError threw:", thrown);
      }
    }
  }

  #debug(line: string): void {
    this.#s.logger.debug(`[tally] ${this.#redact(line)}`);
  }

  #redact(text: string): string {
    const key = this.#s.writeKey;
    return key === undefined || key.length < 4 ? text : text.split(key).join("[write key]");
  }
}
