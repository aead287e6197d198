/**
 * `GET /api/stream`: server-sent events to the inspector. `message` per
 * stored event (its JSON serialized once for every client), `clear` after a
 * DELETE, `delete` (the ids) after a filtered DELETE, `stats` at most every
 * 250 ms while things change, and a comment
 * every 15 s so proxies and browsers keep the connection.
 */
import type { ServerResponse } from "node:http";
import type { CollectorStats } from "./types.ts";

const STATS_EVERY_MS = 250;
const HEARTBEAT_MS = 15_000;

const unref = (timer: unknown): void => (timer as { unref?: () => void }).unref?.();

/** The set of connected stream clients. */
export class StreamHub {
  #clients = new Set<ServerResponse>();
  #stats: () => CollectorStats;
  #statsTimer: ReturnType<typeof setTimeout> | undefined;
  #heartbeat: ReturnType<typeof setInterval> | undefined;

  constructor(stats: () => CollectorStats) {
    this.#stats = stats;
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
    for (const res of this.#clients) res.write(chunk);
  }
}
