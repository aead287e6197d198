/**
 * A recording HTTP receiver on 127.0.0.1 for tests, the demo and benches:
 * it decodes each request (gzip included), keeps it, and answers from a
 * script of replies (default 200 `{"success":true}`).
 */
import { createServer, type IncomingMessage, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { gunzipSync } from "node:zlib";

/** One request as it arrived. */
export interface Received {
  method: string;
  path: string;
  headers: Record<string, string>;
  /** Bytes on the wire (before gunzip). */
  wireBytes: number;
  /** The decoded JSON body (undefined when it is not JSON). */
  body: { batch?: Record<string, unknown>[]; sentAt?: string; writeKey?: string; [key: string]: unknown };
  /** Milliseconds since the receiver started. */
  at: number;
}

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

const OK: Reply = { status: 200, body: '{"success":true}', headers: { "content-type": "application/json" } };

/** Starts a receiver on 127.0.0.1 with a random port. */
export async function startReceiver(options: { record?: boolean } = {}): Promise<Receiver> {
  const record = options.record ?? true;
  const started = Date.now();
  const requests: Received[] = [];
  const script: Reply[] = [];
  let fallback = OK;
  let messageCount = 0;
  const watchers = new Set<() => void>();
  const hanging = new Set<ServerResponse>();

  const server = createServer((req: IncomingMessage, res: ServerResponse) => {
    const chunks: Uint8Array[] = [];
    req.on("data", (chunk: Uint8Array) => chunks.push(chunk));
    req.on("end", () => {
      const raw = Buffer.concat(chunks);
      let body: Received["body"] = {};
      try {
        const text = (req.headers["content-encoding"] === "gzip" ? gunzipSync(raw) : raw).toString("utf8");
        body = JSON.parse(text);
      } catch {
        // not JSON: recorded with an empty body
      }
      const headers: Record<string, string> = {};
      for (const [k, v] of Object.entries(req.headers)) headers[k] = Array.isArray(v) ? v.join(", ") : String(v);
      messageCount += Array.isArray(body.batch) ? body.batch.length : 0;
      const entry: Received = {
        method: req.method ?? "",
        path: req.url ?? "",
        headers,
        wireBytes: raw.length,
        body: record ? body : { batch: [] },
        at: Date.now() - started,
      };
      requests.push(entry);
      const reply = script.shift() ?? fallback;
      if ("hang" in reply) {
        hanging.add(res);
      } else if ("drop" in reply) {
        req.socket.destroy();
      } else {
        res.writeHead(reply.status, reply.headers ?? {});
        res.end(reply.body ?? "");
      }
      for (const watcher of watchers) watcher();
    });
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as AddressInfo;

  return {
    url: `http://127.0.0.1:${port}`,
    requests,
    messages: () => requests.flatMap((r) => r.body.batch ?? []),
    reply: (...replies) => void script.push(...replies),
    setDefault: (reply) => void (fallback = reply),
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
    stop() {
      for (const res of hanging) res.socket?.destroy();
      return new Promise((resolve) => {
        server.closeAllConnections?.();
        server.close(() => resolve());
      });
    },
  };
}
