/**
 * Reliability at the edges of a program's life (issue 9, section 2), each
 * in a child process of the runtime running the tests
 * (tests/fixtures/reliability_child.ts), so that "the process can exit" and
 * its memory are measured for real:
 *
 * - a server that never answers: `flush({ timeout })` and `close({ timeout })`
 *   return within the timeout plus a small margin, say what was not sent, and
 *   the process exits;
 * - a program that ends normally with the server down (connections refused,
 *   or never answered) exits within its `exitTimeout` plus a margin, every
 *   message reported as `closed`; with the server up, everything queued arrives;
 * - a burst far beyond `maxQueueSize`: dropped equals reported, memory stays
 *   bounded, and the client keeps delivering afterwards.
 *
 * @module
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { fileURLToPath } from "node:url";
import { Analytics } from "../mod.ts";
import { startCollector } from "../serve/mod.ts";
import { childRecords, Ledger, type Run, runChild, SCALE } from "./fixtures/reliability_ledger.ts";

const CHILD = fileURLToPath(new URL("./fixtures/reliability_child.ts", import.meta.url));
/** Slack over a requested timeout, for a loaded 2-core CI machine. */
const MARGIN_MS = 1000;

interface ErrorRecord {
  reason: string;
  ids: string[];
}

/** The child's stdout and stderr, for assertion messages. */
const shown = (run: Run): string =>
  `exit ${run.code}${run.signal ? ` (${run.signal})` : ""}\nstdout: ${run.stdout.slice(-2000)}\nstderr: ${
    run.stderr.slice(-2000)
  }`;

/** The one record of `kind` the child printed. */
function one<T>(run: Run, kind: string): { at: number; record: T } {
  const found = childRecords<T>(run, kind);
  assert.equal(found.length, 1, `the child printed ${found.length} "${kind}" lines; ${shown(run)}`);
  return found[0];
}

/** A ledger of the child's messages: `ids` sent, `collector` (if any) stored, the child's error lines reported. */
function ledgerOf(run: Run, ids: string[], stored?: Ledger): Ledger {
  const ledger = stored ?? new Ledger();
  for (const id of ids) ledger.sent(id);
  for (const { record } of childRecords<ErrorRecord>(run, "error")) {
    ledger.onError({ reason: record.reason } as never, record.ids.map((messageId) => ({ messageId }) as never));
  }
  return ledger;
}

const ids = (prefix: string, n: number): string[] => Array.from({ length: n }, (_, i) => `${prefix}${i}`);

/** A URL where nothing listens: a collector's port, once it has stopped. */
async function refusedUrl(): Promise<string> {
  const collector = await startCollector();
  await collector.stop();
  return collector.url;
}

test(
  "a server that never answers: flush({ timeout }) and close({ timeout }) return in time, report what was not sent, and the process exits",
  {
    timeout: 30_000,
  },
  async () => {
    const collector = await startCollector();
    collector.setDefaultReply({ hang: true });
    const n = 500;
    try {
      const run = await runChild(CHILD, ["hang", collector.url, String(n)], 20_000);
      assert.equal(run.signal, null, `the child was killed: it did not exit; ${shown(run)}`);
      const flush = one<{ ms: number; result: { delivered: number; failed: number; pending: number } }>(run, "flush");
      assert.ok(flush.record.ms >= 950, `flush({ timeout: 1000 }) returned after ${flush.record.ms} ms, before it`);
      assert.ok(flush.record.ms <= 1000 + MARGIN_MS, `flush({ timeout: 1000 }) took ${flush.record.ms} ms`);
      assert.deepEqual(flush.record.result, { delivered: 0, failed: 0, pending: n }, "flush() says none was sent");
      const close = one<{ ms: number; result: { delivered: number; failed: number; pending: number } }>(run, "close");
      assert.ok(close.record.ms <= 1000 + MARGIN_MS, `close({ timeout: 1000 }) took ${close.record.ms} ms`);
      assert.deepEqual(
        close.record.result,
        { delivered: 0, failed: n, pending: 0 },
        "close() counts what it gave up as failed, not pending",
      );
      const tally = ledgerOf(run, ids("h", n)).check();
      assert.equal(tally.reported, n);
      assert.deepEqual(tally.reasons, { closed: n });
      const ended = one(run, "ended");
      assert.ok(
        run.ms - ended.at <= MARGIN_MS,
        `the process took ${Math.round(run.ms - ended.at)} ms to exit after its code ended`,
      );
      assert.equal(run.code, 0, shown(run));
    } finally {
      await collector.stop();
    }
  },
);

/** Runs the `exit` child (seconds: `exitTimeout`, and the request `timeout` if given); fails when it is killed. */
async function endsWithin(url: string, n: number, killAfterMs: number, exitTimeout: number, timeout?: number) {
  const args = ["exit", url, String(n), String(exitTimeout), ...(timeout === undefined ? [] : [String(timeout)])];
  const run = await runChild(CHILD, args, killAfterMs);
  assert.equal(run.signal, null, `the child was still alive after ${killAfterMs} ms and was killed; ${shown(run)}`);
  return run;
}

/** The child ended with every message reported once as `closed`, and nothing left. */
function allClosed(run: Run, n: number): void {
  const tally = ledgerOf(run, ids("e", n)).check();
  assert.deepEqual(tally.reasons, { closed: n }, `every message reported once as closed; ${shown(run)}`);
  const stats = one<{ delivered: number; failed: number; queued: number; inFlight: number }>(run, "stats").record;
  assert.equal(stats.failed, n, JSON.stringify(stats));
  assert.equal(stats.queued + stats.inFlight, 0, JSON.stringify(stats));
}

test(
  "a program that ends while the server refuses connections exits within exitTimeout (1.5 s) plus a margin, every message reported as closed",
  {
    timeout: 30_000,
  },
  async () => {
    const n = 300; // three full batches: they go out, and start retrying, before the program's code ends
    const run = await endsWithin(await refusedUrl(), n, 12_000, 1.5);
    const ended = one<{ exitTimeout: number }>(run, "ended");
    assert.equal(ended.record.exitTimeout, 1.5);
    const alive = Math.round(run.ms - ended.at);
    assert.ok(alive <= 1500 + MARGIN_MS, `the process stayed alive ${alive} ms after its code ended; ${shown(run)}`);
    allClosed(run, n);
  },
);

/*
 * A request in flight holds the event loop on every runtime (no fetch can be
 * unref'd), so a program's end is seen only once that request ends: against a
 * server that never answers, the bound is the request timeout plus exitTimeout.
 */
test(
  "a program that ends while the server never answers exits within its request timeout (2 s) plus exitTimeout (1.5 s) plus a margin, every message reported as closed",
  {
    timeout: 30_000,
  },
  async () => {
    const collector = await startCollector();
    collector.setDefaultReply({ hang: true });
    const n = 300;
    try {
      const run = await endsWithin(collector.url, n, 12_000, 1.5, 2);
      const ended = one<{ exitTimeout: number; timeout: number }>(run, "ended");
      assert.deepEqual(ended.record, { kind: "ended", exitTimeout: 1.5, timeout: 2 });
      const alive = Math.round(run.ms - ended.at);
      assert.ok(alive <= 3500 + MARGIN_MS, `the process stayed alive ${alive} ms after its code ended; ${shown(run)}`);
      allClosed(run, n);
    } finally {
      await collector.stop();
    }
  },
);

test("a program that ends with the server up delivers everything queued, once, and exits at once", {
  timeout: 30_000,
}, async () => {
  const collector = await startCollector({ maxEvents: 10_000 });
  const ledger = new Ledger();
  const unwatch = ledger.watch(collector);
  const n = 1_234;
  try {
    const run = await endsWithin(collector.url, n, 12_000, 1.5);
    const ended = one(run, "ended");
    assert.ok(run.ms - ended.at <= 1500, `the process took ${Math.round(run.ms - ended.at)} ms to exit`);
    const tally = ledgerOf(run, ids("e", n), ledger).check();
    assert.equal(tally.delivered, n, shown(run));
    assert.equal(tally.duplicates, 0);
    assert.equal(run.code, 0, shown(run));
  } finally {
    unwatch();
    await collector.stop();
  }
});

test("exitTimeout defaults to 10 s (well under a container's 30 s grace) and is validated", () => {
  const analytics = new Analytics({ writeKey: "k", send: false });
  assert.equal(analytics.exitTimeout, 10);
  assert.throws(
    () => new Analytics({ writeKey: "k", exitTimeout: -1 }),
    RangeError,
  );
});

test(
  `a burst of ${
    200_000 * SCALE
  } calls over a 10k queue: dropped equals reported, memory stays bounded, delivery goes on`,
  {
    timeout: 60_000 * SCALE,
  },
  async () => {
    const calls = Math.round(200_000 * SCALE);
    const collector = await startCollector({ maxEvents: 1_000 });
    const ledger = new Ledger();
    const unwatch = ledger.watch(collector);
    try {
      const run = await runChild(CHILD, ["overflow", collector.url, String(calls)], 50_000 * SCALE);
      assert.equal(run.signal, null, `the child was killed; ${shown(run)}`);
      assert.equal(run.code, 0, shown(run));
      const burst = one<{
        ms: number;
        queued: number;
        dropped: number;
        reported: number;
        twice: number;
        reasons: Record<string, number>;
        rss: { base: number; peak: number };
        heap: { base: number; peak: number };
      }>(run, "burst").record;
      const mb = (bytes: number) => Math.round(bytes / 2 ** 20);
      const rssGrowth = mb(burst.rss.peak - burst.rss.base);
      const heapGrowth = mb(burst.heap.peak - burst.heap.base);
      console.log(
        `[reliability] overflow: ${calls} calls in ${Math.round(burst.ms)} ms, ${burst.queued} queued, ` +
          `${burst.dropped} dropped, ${burst.reported} reported; peak growth RSS ${rssGrowth} MB, heap ${heapGrowth} MB`,
      );
      assert.equal(burst.twice, 0, "no drop reported twice");
      assert.equal(burst.dropped, calls - 10_000, "everything past the 10k queue is dropped");
      assert.equal(burst.reported, burst.dropped, "every drop is reported by the end of the burst");
      assert.deepEqual(burst.reasons, { queue_full: burst.dropped });
      // Holding the 10k queued messages (about 11 MB of JSON) is the floor; holding every drop would be ~1.1 KB
      // each (over 200 MB here). The bounds are generous: a bounded client stays far below them.
      assert.ok(rssGrowth < 200 * Math.max(1, Math.sqrt(SCALE)), `RSS grew ${rssGrowth} MB during the burst`);
      assert.ok(heapGrowth < 100 * Math.max(1, Math.sqrt(SCALE)), `heap grew ${heapGrowth} MB during the burst`);
      const flushed = one<{ result: { delivered: number; failed: number; pending: number } }>(run, "flush").record;
      assert.deepEqual(flushed.result, { delivered: 10_000, failed: 0, pending: 0 });
      const after = one<{ result: { delivered: number; failed: number; pending: number } }>(run, "after").record;
      assert.deepEqual(after.result, { delivered: 100, failed: 0, pending: 0 }, "the client keeps delivering");
      const reported = one<{ ranges: [number, number][] }>(run, "reported").record;
      for (const id of ids("o", calls + 100)) ledger.sent(id);
      for (const [first, last] of reported.ranges) {
        const messages = [];
        for (let i = first; i <= last; i++) messages.push({ messageId: `o${i}` });
        ledger.onError({ reason: "queue_full" } as never, messages as never);
      }
      const tally = ledger.check();
      assert.equal(tally.delivered, 10_100);
      assert.equal(tally.reported, calls - 10_000);
      assert.equal(tally.duplicates, 0);
    } finally {
      unwatch();
      await collector.stop();
    }
  },
);
