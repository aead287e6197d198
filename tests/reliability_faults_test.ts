/**
 * Reliability under faults (issue 9, section 2): every message delivered or
 * reported exactly once, nothing else, and a duplicate only where an
 * acknowledgement was lost after the server stored the batch, counted.
 *
 * - Mixed faults at once: the collector's own fault injection (500 with
 *   `Retry-After` in seconds, dropped connections, latency, seeded) behind a
 *   small proxy in this file that adds what the collector's flags cannot:
 *   503 without `Retry-After`, 429 with `Retry-After` in seconds and as an
 *   HTTP date, and lost acknowledgements (the request is passed on, the
 *   collector stores it and answers 200, and the proxy drops the client's
 *   connection instead of answering). 20k messages (`TALLY_RELIABILITY_SCALE=5`: 100k).
 * - A collector that stops listening mid-run and comes back on the same port.
 *
 * @module
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { Buffer } from "node:buffer";
import { createServer, type IncomingMessage, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import process from "node:process";
import { gunzipSync } from "node:zlib";
import { Analytics } from "../mod.ts";
import { type Collector, startCollector } from "../serve/mod.ts";
import { seededRandom } from "../serve/faults.ts";
import { delay, Ledger, SCALE } from "./fixtures/reliability_ledger.ts";

const SEED = Number(process.env.TALLY_RELIABILITY_SEED ?? 9);

/** What the proxy does with one request. */
type ProxyFault = "pass" | "503" | "429-seconds" | "429-date" | "lost-ack";

/**
 * The proxy's plan, by request number: in every block of 40 requests, two
 * 503s, one 429 with `Retry-After: 1`, one 429 with an HTTP date 0.5 to 1.5 s
 * ahead, and two lost acknowledgements, at seeded places; the rest pass on to
 * the collector (which injects its own faults). Fixed counts per block, so a
 * run of any size meets every kind.
 */
function faultSchedule(seed: number): (n: number) => ProxyFault {
  const random = seededRandom(seed);
  const kinds: ProxyFault[] = ["503", "503", "429-seconds", "429-date", "lost-ack", "lost-ack"];
  const blocks: ProxyFault[][] = [];
  return (n) => {
    const b = Math.floor(n / 40);
    while (blocks.length <= b) {
      const block: ProxyFault[] = Array(40).fill("pass");
      for (const kind of kinds) {
        let at: number;
        do at = Math.floor(random() * 40); while (block[at] !== "pass");
        block[at] = kind;
      }
      blocks.push(block);
    }
    return blocks[b][n % 40];
  };
}

interface Proxy {
  url: string;
  counts: Record<ProxyFault, number>;
  stop(): Promise<void>;
}

/** Slack at each end of a pause, for the microtasks between reading a 429 and pausing. */
const PAUSE_GRACE_MS = 100;

/**
 * Watches the client's own events: once it has read a 429 with
 * `Retry-After` (seconds or an HTTP date), it must send nothing until that
 * time has passed. Returns the requests it sent too early.
 */
function watchPauses(analytics: Analytics): string[] {
  const pauses: { from: number; until: number; header: string }[] = [];
  const early: string[] = [];
  analytics.on("http_response", (response) => {
    const header = response.headers["retry-after"];
    if (response.status !== 429 || header === undefined) return;
    const now = Date.now();
    const until = /^\d+$/.test(header) ? now + Number(header) * 1000 : Date.parse(header);
    if (Number.isFinite(until)) pauses.push({ from: now, until, header });
    else early.push(`the test could not read Retry-After: ${header}`);
  });
  analytics.on("http_request", () => {
    const now = Date.now();
    for (const p of pauses) {
      if (now > p.from + PAUSE_GRACE_MS && now < p.until - PAUSE_GRACE_MS) {
        early.push(`a request ${now - p.from} ms into a ${p.until - p.from} ms pause (Retry-After: ${p.header})`);
      }
    }
  });
  return early;
}

/** Ids in a batch body as the client sent it (gzip or not). */
function batchIds(req: IncomingMessage, body: Buffer): string[] {
  const encoding = req.headers["content-encoding"];
  const text = (encoding === "gzip" ? gunzipSync(body) : body).toString("utf8");
  const parsed = JSON.parse(text) as { batch: { messageId: string }[] };
  return parsed.batch.map((m) => m.messageId);
}

/** A proxy on 127.0.0.1 in front of `target` that injects the faults of {@linkcode faultSchedule}. */
async function startProxy(target: string, seed: number, ledger: Ledger): Promise<Proxy> {
  const schedule = faultSchedule(seed);
  const counts: Record<ProxyFault, number> = { pass: 0, "503": 0, "429-seconds": 0, "429-date": 0, "lost-ack": 0 };
  let n = 0;
  const reply = (res: ServerResponse, status: number, headers: Record<string, string>, body: string) => {
    if (res.destroyed) return;
    res.writeHead(status, { "content-type": "application/json", ...headers });
    res.end(body);
  };
  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on("data", (chunk: Buffer) => chunks.push(chunk));
    req.on("end", async () => {
      const body = Buffer.concat(chunks);
      const fault = schedule(n++);
      counts[fault]++;
      const failure = JSON.stringify({ success: false, error: `injected by the test proxy: ${fault}` });
      if (fault === "503") return reply(res, 503, {}, failure);
      if (fault === "429-seconds") return reply(res, 429, { "retry-after": "1" }, failure);
      if (fault === "429-date") {
        // HTTP dates have whole seconds: the pause ends 0.5 to 1.5 s from now.
        return reply(res, 429, { "retry-after": new Date(Date.now() + 1500).toUTCString() }, failure);
      }
      let answer: Response;
      try {
        const headers: Record<string, string> = {};
        for (const name of ["content-type", "content-encoding", "authorization", "user-agent", "x-retry-count"]) {
          const value = req.headers[name];
          if (typeof value === "string") headers[name] = value;
        }
        answer = await fetch(target + (req.url ?? "/"), { method: "POST", headers, body });
      } catch {
        // The collector dropped the connection (its own injected fault): pass the drop on.
        return void req.socket.destroy();
      }
      const text = await answer.text();
      if (fault === "lost-ack" && answer.status === 200) {
        for (const id of batchIds(req, body)) ledger.lostAck(id);
        return void req.socket.destroy();
      }
      if (fault === "lost-ack") {
        // The collector failed or refused it first: nothing stored, so no acknowledgement to lose.
        counts["lost-ack"]--;
        counts.pass++;
      }
      const headers: Record<string, string> = {};
      const retryAfter = answer.headers.get("retry-after");
      if (retryAfter !== null) headers["retry-after"] = retryAfter;
      reply(res, answer.status, headers, text);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const port = (server.address() as AddressInfo).port;
  return {
    url: `http://127.0.0.1:${port}`,
    counts,
    stop: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}

test(
  `mixed faults: ${
    20_000 * SCALE
  } messages through 500/503, 429 (seconds and date), drops, lost acks and latency are each delivered or reported once`,
  {
    timeout: 60_000 * SCALE,
  },
  async () => {
    const total = Math.round(20_000 * SCALE);
    const ledger = new Ledger();
    const injected = { failed: 0, dropped: 0 };
    const collector = await startCollector({
      log: (line) => {
        if (line.includes("(injected failure)")) injected.failed++;
        else if (line.includes("(injected: connection dropped)")) injected.dropped++;
      },
      maxEvents: 1_000, // the ledger counts what is stored; the collector need not keep it
      failRate: 0.08,
      failStatus: 500,
      retryAfter: 0.2,
      dropConnectionRate: 0.05,
      latency: 3,
      seed: SEED,
    });
    const unwatch = ledger.watch(collector);
    const proxy = await startProxy(collector.url, SEED, ledger);
    const analytics = new Analytics({
      writeKey: "reliability-key",
      host: proxy.url,
      gzip: true,
      uploadSize: 250,
      maxQueueSize: total,
      minRetryDelay: 0.05,
      maxRetryDelay: 2,
      maxRetries: 10,
      onError: ledger.onError,
    });
    const early = watchPauses(analytics);
    const started = performance.now();
    try {
      // Paced in chunks, as a server handling requests sends: calls and deliveries interleave.
      for (let i = 0; i < total; i++) {
        const props = { i, plan: i % 3 === 0 ? "Enterprise" : "Free", note: "é✓".repeat(i % 7) };
        const userId = `u${i % 97}`;
        if (i % 3 === 0) {
          // A generated messageId, no callback: accounted by what is stored and reported.
          ledger.sent(analytics.track({ userId, event: "Reliability Tested", properties: props }));
        } else {
          const messageId = `m${i}`;
          ledger.sent(
            i % 3 === 1
              ? analytics.track(
                { userId, event: "Reliability Tested", properties: props, messageId },
                ledger.callbackFor(messageId),
              )
              : analytics.track(userId, "Reliability Tested", props, { messageId }, ledger.callbackFor(messageId)),
          );
        }
        if (i % 2000 === 1999) await delay(5);
      }
      const result = await analytics.flush({ timeout: 50_000 * SCALE });
      const ms = Math.round(performance.now() - started);
      assert.equal(result.pending, 0, `flush() left ${result.pending} pending after ${ms} ms`);
      await delay(50); // the last answers' listeners
      const tally = ledger.check();
      const stats = analytics.stats();
      console.log(
        `[reliability] mixed faults: ${tally.sent} sent, ${tally.delivered} delivered, ${tally.reported} reported ` +
          `${JSON.stringify(tally.reasons)}, ${tally.duplicates} duplicates from ${tally.lostAcks} lost acks; ` +
          `proxy ${JSON.stringify(proxy.counts)}; collector ${collector.stats().requests} requests, ` +
          `${injected.failed} failed (500), ${injected.dropped} dropped; ` +
          `${stats.retries} retries; ${ms} ms (seed ${SEED})`,
      );
      assert.equal(stats.delivered + stats.failed, total, `stats: ${JSON.stringify(stats)}`);
      assert.equal(stats.failed, tally.reported);
      assert.equal(stats.dropped, 0);
      assert.equal(tally.duplicates, tally.lostAcks, "every duplicate comes from one lost acknowledgement");
      // With 10 retries and these rates, giving a batch up is a one-in-a-million event: a failure here is a bug.
      assert.equal(tally.reported, 0, `reported: ${JSON.stringify(tally.reasons)}`);
      for (const kind of ["503", "429-seconds", "429-date", "lost-ack"] as const) {
        assert.ok(proxy.counts[kind] > 0, `the proxy injected no ${kind}`);
      }
      assert.deepEqual(early, [], "a 429 with Retry-After pauses every batch until it has passed");
      assert.ok(injected.failed > 0 && injected.dropped > 0, `the collector injected ${JSON.stringify(injected)}`);
      assert.ok(tally.lostAcks > 0, "some acknowledgements were lost after the collector stored the batch");
    } finally {
      unwatch();
      await analytics.close({ timeout: 1000 });
      await proxy.stop();
      await collector.stop();
    }
  },
);

test("a collector that stops listening mid-run and comes back on the same port loses nothing", {
  timeout: 60_000,
}, async () => {
  const total = 6_000;
  const downMs = 2_500;
  const ledger = new Ledger();
  let collector: Collector = await startCollector({ maxEvents: 1_000 });
  const port = collector.port;
  let unwatch = ledger.watch(collector);
  // Ids in requests the first collector received in its last moments: an answer written just before it stopped
  // can be lost on the way, and the client then sends that batch again (to the second one).
  const arrivals: { ids: string[] }[] = [];
  const offRequests = collector.onRequest((request) => {
    arrivals.push({ ids: (request.body.batch ?? []).map((m) => String(m.messageId)) });
  });
  const analytics = new Analytics({
    writeKey: "reliability-key",
    host: collector.url,
    uploadSize: 50,
    uploadInterval: 0.05,
    maxQueueSize: total,
    minRetryDelay: 0.2,
    maxRetryDelay: 1,
    maxRetries: 10,
    onError: ledger.onError,
  });
  let restarted = false;
  try {
    const started = performance.now();
    for (let i = 0; i < total; i++) {
      ledger.sent(analytics.track({ userId: "restart", event: "Restart Tested", properties: { i } }));
      if (i % 100 === 99) await delay(20); // about 1.2 s of sending in all
      if (i === 2_000) {
        offRequests();
        unwatch();
        await collector.stop();
        // Comes back later, on the same port, while the client keeps calling and retrying.
        void delay(downMs).then(async () => {
          collector = await startCollector({ port, maxEvents: 1_000 });
          unwatch = ledger.watch(collector);
          restarted = true;
        });
      }
    }
    const result = await analytics.flush({ timeout: 30_000 });
    const ms = Math.round(performance.now() - started);
    assert.ok(restarted, "the collector came back before the flush ended");
    assert.equal(result.pending, 0, `flush() left ${result.pending} pending after ${ms} ms`);
    // At most 4 requests are in flight (MAX_IN_FLIGHT), so only the last few the first collector received can have
    // had their answers cut off; 8 for margin.
    const window = new Set(arrivals.slice(-8).flatMap((a) => a.ids));
    const tally = ledger.check({ allowDuplicate: (id) => window.has(id) });
    console.log(
      `[reliability] restart: ${tally.sent} sent, ${tally.delivered} delivered, ${tally.reported} reported, ` +
        `${tally.duplicates} duplicates (at most ${window.size} possible), down ${downMs} ms, ${ms} ms in all`,
    );
    assert.equal(tally.reported, 0, `reported: ${JSON.stringify(tally.reasons)}`);
    assert.ok(tally.duplicates <= window.size);
    assert.ok(analytics.stats().retries > 0, "the client met the stopped collector");
    assert.ok(ms < downMs + 15_000, `took ${ms} ms`);
  } finally {
    unwatch();
    await analytics.close({ timeout: 1000 });
    await collector.stop();
  }
});
