/**
 * `GET /api/stream`: server-sent events to the inspector. `message` per
 * stored event (its JSON serialized once for every client), `clear` after a
 * DELETE, `delete` (the ids) after a filtered DELETE, `stats` at most every
 * 250 ms while things change, and a comment
 * every 15 s so proxies and browsers keep the connection.
 *
 * Memory is bounded: at most `STREAM_CLIENTS` clients, and a client that
 * reads too slowly (more than `STREAM_BUFFER` bytes wait for it when there is
 * more to send) is dropped: it is sent a last `overflow` event and its
 * connection is ended, and destroyed a second later if it still does not read.
 * (An inspector that is dropped reconnects and reloads by itself.)
 */
import type { ServerResponse } from "node:http";
import type { CollectorStats } from "./types.ts";

const STATS_EVERY_MS = 250;
const HEARTBEAT_MS = 15_000;
/** Bytes that may wait, unread, for one stream client before it is dropped. */
export const STREAM_BUFFER = 4 * 1024 * 1024;
/** Stream clients at once; more get 503. */
export const STREAM_CLIENTS = 64;
const DROPPED_LINGER_MS = 1000;

const unref = (timer: unknown): void => (timer as { unref?: () => void }).unref?.();

/** The set of connected stream clients. */
export class StreamHub {
  #clients = new Set<ServerResponse>();
  #stats: () => CollectorStats;
  #statsTimer: ReturnType<typeof setTimeout> | undefined;
  #heartbeat: ReturnType<typeof setInterval> | undefined;
  #log: ((line: string) => void) | undefined;

  constructor(stats: () => CollectorStats, log?: (line: string) => void) {
    this.#stats = stats;
    this.#log = log;
  }

  /** Whether another client may connect. */
  get full(): boolean {
    return this.#clients.size >= STREAM_CLIENTS;
  }

  /** Whether anyone listens: the collector serializes events for the stream only then. */
  get active(): boolean {
    return this.#clients.size > 0;
  }

  /** Takes over `res` as a stream: headers, a first stats event, then whatever happens. */
  add(res: ServerResponse): void {
    res.writeHead(200, {
      "content-type": "text/event-stream; charset=utf-8",
      "cache-control": "no-cache",
      "connection": "keep-alive",
      "x-accel-buffering": "no",
    });
    res.write(`retry: 1000\n\nevent: stats\ndata: ${JSON.stringify(this.#stats())}\n\n`);
    this.#clients.add(res);
    res.on("close", () => {
      this.#clients.delete(res);
      if (this.#clients.size === 0 && this.#heartbeat !== undefined) {
        clearInterval(this.#heartbeat);
        this.#heartbeat = undefined;
      }
    });
    if (this.#heartbeat === undefined) {
      this.#heartbeat = setInterval(() => this.#send(": heartbeat\n\n"), HEARTBEAT_MS);
      unref(this.#heartbeat);
    }
  }

  /** Stored events, each already serialized as JSON: one write per client for all of them. */
  messages(jsons: string[]): void {
    if (jsons.length === 0) return;
    this.#send(`event: message\ndata: ${jsons.join("\n\nevent: message\ndata: ")}\n\n`);
    this.changed();
  }

  clear(): void {
    this.#send("event: clear\ndata: {}\n\n");
    this.changed();
  }

  /** Events deleted by a filtered DELETE: their ids, newest first. */
  deleted(ids: number[]): void {
    this.#send(`event: delete\ndata: {"ids":[${ids.join(",")}]}\n\n`);
    this.changed();
  }

  /** Counters changed: a stats event goes out within 250 ms (one for any number of changes). */
  changed(): void {
    if (this.#statsTimer !== undefined || this.#clients.size === 0) return;
    this.#statsTimer = setTimeout(() => {
      this.#statsTimer = undefined;
      this.#send(`event: stats\ndata: ${JSON.stringify(this.#stats())}\n\n`);
    }, STATS_EVERY_MS);
    unref(this.#statsTimer);
  }

  /** Ends every stream and stops the timers. */
  close(): void {
    clearTimeout(this.#statsTimer);
    clearInterval(this.#heartbeat);
    this.#statsTimer = this.#heartbeat = undefined;
    for (const res of this.#clients) res.end();
    this.#clients.clear();
  }

  #send(chunk: string): void {
    for (const res of this.#clients) {
      if (res.writableLength > STREAM_BUFFER) this.#drop(res);
      else res.write(chunk);
    }
  }

  /** Ends the stream of a client that does not keep up, and frees what waits for it soon after. */
  #drop(res: ServerResponse): void {
    const waiting = res.writableLength;
    this.#clients.delete(res);
    res.end(
      `event: overflow\ndata: {"error":"Cannot keep streaming: more than ${STREAM_BUFFER} bytes were waiting, unread; ` +
        'reconnect to start again"}\n\n',
    );
    unref(setTimeout(() => res.destroy(), DROPPED_LINGER_MS));
    const mb = (waiting / 1024 / 1024).toFixed(1);
    this.#log?.(
      `dropped a stream client that reads too slowly: more than ${
        (STREAM_BUFFER / 1024 / 1024).toFixed(1)
      } MB unread (${mb} MB)`,
    );
  }
}
