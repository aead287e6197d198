/**
 * The loopback sink the delivery benches post to: a minimal `node:http`
 * server on 127.0.0.1 that reads each body, counts its messages and bytes,
 * and answers 200 `{"success":true}`. It runs in its own process (Bun by
 * default) so its CPU is not counted against the client.
 *
 * `GET /stats` returns its counters and its own CPU time, so a bench can tell
 * whether the sink was the bottleneck. It prints `{"port":N}` once listening
 * and exits when its stdin closes (or on SIGTERM).
 *
 * @module
 */
import { Buffer } from "node:buffer";
import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import process from "node:process";
import { gunzipSync } from "node:zlib";
import type { SinkStats } from "./common.ts";

const MARK = Buffer.from('"messageId":');
const OK = '{"success":true}';
const OK_HEADERS = { "content-type": "application/json", "content-length": String(OK.length) };

const stats = { requests: 0, messages: 0, wireBytes: 0, plainBytes: 0 };

function count(body: Buffer): number {
  let n = 0;
  for (let at = body.indexOf(MARK); at >= 0; at = body.indexOf(MARK, at + MARK.length)) n++;
  return n;
}

const server = createServer((req, res) => {
  if (req.method === "GET") {
    const cpu = process.cpuUsage();
    const answer: SinkStats = { ...stats, cpu: cpu.user + cpu.system, now: performance.now() };
    res.writeHead(200, { "content-type": "application/json" });
    res.end(JSON.stringify(answer));
    return;
  }
  const chunks: Buffer[] = [];
  req.on("data", (chunk: Buffer) => chunks.push(chunk));
  req.on("end", () => {
    const raw = chunks.length === 1 ? chunks[0] : Buffer.concat(chunks);
    const body = req.headers["content-encoding"] === "gzip" ? gunzipSync(raw) : raw;
    stats.requests++;
    stats.wireBytes += raw.length;
    stats.plainBytes += body.length;
    stats.messages += count(body);
    res.writeHead(200, OK_HEADERS);
    res.end(OK);
  });
});

server.keepAliveTimeout = 60_000;
server.listen(0, "127.0.0.1", () => {
  process.stdout.write(JSON.stringify({ port: (server.address() as AddressInfo).port }) + "\n");
});

const stop = () => {
  server.closeAllConnections?.();
  server.close(() => process.exit(0));
  setTimeout(() => process.exit(0), 1000).unref?.();
};
process.stdin.on("end", stop);
process.stdin.on("close", stop);
process.stdin.resume();
process.on("SIGTERM", stop);
