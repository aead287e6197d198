/**
 * The loopback sink the delivery benches post to: a minimal `node:http`
 * server on 127.0.0.1 that reads each body, counts its messages, their ids
 * and its bytes, and answers 200 `{"success":true}`. It runs in its own
 * process (Bun by default) so its CPU is not counted against the client.
 *
 * It takes what every benched client sends: Segment's `POST /v1/batch`
 * (Tally, @segment/analytics-node, analytics-node 6: one id per message in
 * `"messageId"`) and PostHog's `POST /batch/` or `/e/` (posthog-node: the id
 * in `"uuid"`), plain or gzip. Ids are kept in a set to count duplicates;
 * `GET /stats?reset` clears that set (a bench does so before each run, so
 * the set holds one run's ids), `GET /stats` returns the counters and the
 * sink's own CPU time, so a bench can tell whether the sink was the
 * bottleneck. It prints `{"port":N}` once listening and exits when its stdin
 * closes (or on SIGTERM).
 *
 * @module
 */
import { Buffer } from "node:buffer";
import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import process from "node:process";
import { gunzipSync } from "node:zlib";
import type { SinkStats } from "./common.ts";

const SEGMENT_ID = Buffer.from('"messageId":"');
const POSTHOG_ID = Buffer.from('"uuid":"');
const QUOTE = 0x22;
const OK = '{"success":true}';
const OK_HEADERS = { "content-type": "application/json", "content-length": String(OK.length) };
/** A run that never resets would grow the set without end: past this many ids it starts over (and says so). */
const MAX_IDS = 2_000_000;

const stats = { requests: 0, messages: 0, wireBytes: 0, plainBytes: 0, duplicates: 0, idResets: 0 };
let ids = new Set<string>();

/** Counts the messages of one body by their id field, and the ids seen before. */
function count(body: Buffer, mark: Buffer): void {
  for (let at = body.indexOf(mark); at >= 0; at = body.indexOf(mark, at)) {
    at += mark.length;
    const end = body.indexOf(QUOTE, at);
    if (end < 0) break;
    const id = body.toString("latin1", at, end);
    stats.messages++;
    if (ids.has(id)) stats.duplicates++;
    else ids.add(id);
    at = end + 1;
  }
  if (ids.size > MAX_IDS) {
    ids = new Set();
    stats.idResets++;
  }
}

const server = createServer((req, res) => {
  if (req.method === "GET") {
    if (req.url?.includes("reset")) ids = new Set();
    const cpu = process.cpuUsage();
    const answer: SinkStats = { ...stats, ids: ids.size, cpu: cpu.user + cpu.system, now: performance.now() };
    res.writeHead(200, { "content-type": "application/json" });
    res.end(JSON.stringify(answer));
    return;
  }
  const mark = req.url?.startsWith("/v1/") ? SEGMENT_ID : POSTHOG_ID;
  const chunks: Buffer[] = [];
  req.on("data", (chunk: Buffer) => chunks.push(chunk));
  req.on("end", () => {
    const raw = chunks.length === 1 ? chunks[0] : Buffer.concat(chunks);
    const body = req.headers["content-encoding"] === "gzip" ? gunzipSync(raw) : raw;
    stats.requests++;
    stats.wireBytes += raw.length;
    stats.plainBytes += body.length;
    count(body, mark);
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
