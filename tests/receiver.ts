/**
 * The recording receiver for tests, the demo and benches: a thin adapter
 * over the real collector (serve/) on 127.0.0.1. It keeps each
 * ingestion request as it arrived (gzip decoded) and answers from a script
 * of replies; with the script empty, the collector answers as `tally serve`
 * does (200 `{"success":true}` after checking and storing the messages).
 */
import { type CollectorRequest, startCollector } from "../serve/mod.ts";

/** One request as it arrived. */
export type Received = CollectorRequest;

/** How to answer one request. */
export type Reply =
  | { status: number; body?: string; headers?: Record<string, string> }
  | { hang: true }
  | { drop: true };

/** A running receiver. */
export interface Receiver {
  /** `http://127.0.0.1:PORT` */
  url: string;
  requests: Received[];
  /** Every message of every batch, in arrival order. */
  messages(): Record<string, unknown>[];
  /** Queues replies for the next requests, in order; after them, the default. */
  reply(...replies: Reply[]): void;
  /** Sets the reply used when the script is empty. */
  setDefault(reply: Reply): void;
  /** Resolves when `count` messages have arrived, rejects after `ms`. */
  waitForMessages(count: number, ms?: number): Promise<void>;
  /** Closes the server and any hanging connections. */
  stop(): Promise<void>;
}

/** Starts a receiver on 127.0.0.1 with a random port; `record: false` keeps requests without their bodies. */
export async function startReceiver(options: { record?: boolean } = {}): Promise<Receiver> {
  const record = options.record ?? true;
  // Memory grows only with what the test sends; eviction would not change what `requests` holds.
  const collector = await startCollector({ maxEvents: 1_000_000 });
  const requests: Received[] = [];
  let messageCount = 0;
  const watchers = new Set<() => void>();
  collector.onRequest((request) => {
    messageCount += Array.isArray(request.body.batch) ? request.body.batch.length : 0;
    requests.push(record ? request : { ...request, body: { batch: [] } });
    for (const watcher of watchers) watcher();
  });

  return {
    url: collector.url,
    requests,
    messages: () => requests.flatMap((r) => r.body.batch ?? []),
    reply: (...replies) => collector.script(...replies),
    setDefault: (reply) => collector.setDefaultReply(reply),
    waitForMessages(count, ms = 5000) {
      return new Promise((resolve, reject) => {
        if (messageCount >= count) return resolve();
        const timer = setTimeout(() => {
          watchers.delete(check);
          reject(new Error(`waited ${ms} ms for ${count} messages, got ${messageCount}`));
        }, ms);
        const check = () => {
          if (messageCount < count) return;
          clearTimeout(timer);
          watchers.delete(check);
          resolve();
        };
        watchers.add(check);
      });
    },
    stop: () => collector.stop(),
  };
}
