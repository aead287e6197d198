/**
 * The collector at volume (issue 9, section 2): `tally serve` in a process of
 * its own takes a million events (`TALLY_RELIABILITY_SCALE` × 1M; CI runs the
 * million, about 5 s on Deno) in 500-message batches, while the test samples
 * the collector's resident memory (the child prints it every 50 ms). Its store is
 * bounded (`--max-events`, `--max-bytes`), so memory must stay flat once the
 * store is full, every message is counted, the oldest are evicted and
 * counted, and it still serves the API afterwards.
 *
 * @module
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import process from "node:process";
import { fileURLToPath } from "node:url";
import { childArgv } from "./fixtures/child_argv.ts";
import { SCALE } from "./fixtures/reliability_ledger.ts";

const BATCH = 500;
const SERVE = fileURLToPath(new URL("./fixtures/collector_volume.ts", import.meta.url));
const TOTAL = Math.round(1_000_000 * SCALE / BATCH) * BATCH;
const MAX_EVENTS = 10_000;
const MAX_BYTES = 16 * 1024 * 1024;
/**
 * Memory the collector may add once its store is full: the garbage a busy
 * JavaScript heap carries before a collection (Deno's plateaus about 80 MB
 * above the full store's, Bun's about 30 MB).
 */
const GROWTH_BOUND = 128 * 1024 * 1024;
/**
 * How much more the collector may keep (its heap after a full collection) at
 * the end of the run than at its middle: flat means no trend. Its store and
 * its remembered messageIds are full well before the middle.
 */
const TREND_BOUND = 8 * 1024 * 1024;

/** Starts `tally serve` as a child of the runtime running the tests; resolves with its URL. */
function startServe(
  args: string[],
): Promise<{ url: string; rss: () => number; heap: () => number; stop: () => Promise<number | null> }> {
  const argv = childArgv(SERVE, args, [
    "--allow-net=127.0.0.1",
    "--allow-read",
    "--allow-env",
    "--v8-flags=--expose-gc",
  ]);
  const child = spawn(process.execPath, argv, {
    stdio: ["ignore", "pipe", "pipe"],
    env: { ...process.env, NO_COLOR: "1" },
  });
  let stderr = "";
  let rss = 0;
  let heap = -1;
  child.stderr.setEncoding("utf8");
  child.stderr.on("data", (chunk: string) => {
    for (const line of chunk.split("\n")) {
      const sample = /^rss (\d+) heap (-?\d+)$/.exec(line);
      if (sample !== null) {
        rss = Number(sample[1]);
        heap = Number(sample[2]);
      } else if (line !== "" && stderr.length < 10_000) stderr += line + "\n";
    }
  });
  const exited = new Promise<number | null>((resolve) => child.on("close", (code) => resolve(code)));
  return new Promise((resolve, reject) => {
    let out = "";
    const timer = setTimeout(() => {
      child.kill("SIGKILL");
      reject(new Error(`tally serve did not start within 20 s: ${stderr}`));
    }, 20_000);
    child.stdout.setEncoding("utf8");
    child.stdout.on("data", (chunk: string) => {
      out += chunk;
      const found = /listening on (http:\/\/127\.0\.0\.1:\d+)/.exec(out);
      if (found === null) return;
      clearTimeout(timer);
      child.stdout.removeAllListeners("data");
      child.stdout.resume();
      resolve({
        url: found[1],
        rss: () => rss,
        heap: () => heap,
        stop: () => {
          child.kill("SIGTERM");
          return exited;
        },
      });
    });
    child.on("error", (error) => {
      clearTimeout(timer);
      reject(error);
    });
  });
}

/** The body of batch `b`: BATCH small track calls with ids unique over the run. */
function body(b: number): string {
  const base = b * BATCH;
  const messages: string[] = [];
  for (let i = 0; i < BATCH; i++) {
    const n = base + i;
    messages.push(
      `{"type":"track","event":"Volume Test","userId":"u${n % 997}","messageId":"m-${n}",` +
        `"timestamp":"2026-12-01T00:00:00.000Z","properties":{"n":${n},"pad":"${"x".repeat(n % 64)}"}}`,
    );
  }
  return `{"batch":[${messages.join(",")}],"sentAt":"2026-12-01T00:00:00.000Z"}`;
}

test(
  `tally serve takes ${TOTAL} events into a bounded store with flat memory, counts them all, and still serves`,
  { timeout: 240_000 },
  async () => {
    const serve = await startServe([
      "--port",
      "0",
      "--no-out",
      "--quiet",
      "--max-events",
      String(MAX_EVENTS),
      "--max-bytes",
      String(MAX_BYTES),
    ]);
    try {
      const batches = TOTAL / BATCH;
      // Two requests at a time, as a client with a couple of connections would send.
      let next = 0;
      const peaks = [0, 0]; // the peak RSS in the first and in the second half of the run
      let full = 0; // RSS once the store has filled (after the first 4 x MAX_EVENTS messages)
      const kept = [0, 0]; // the most the collector kept (heap after a full collection) in each half
      const post = async (): Promise<void> => {
        while (next < batches) {
          const b = next++;
          const response = await fetch(`${serve.url}/v1/batch`, {
            method: "POST",
            headers: { "content-type": "application/json" },
            body: body(b),
          });
          const answer = await response.text();
          assert.equal(response.status, 200, `batch ${b}: ${answer}`);
          if (b % 20 === 0) {
            const now = serve.rss();
            if (full === 0 && (b + 1) * BATCH >= 4 * MAX_EVENTS) full = now;
            const half = b < batches / 2 ? 0 : 1;
            if (now > peaks[half]) peaks[half] = now;
            kept[half] = Math.max(kept[half], serve.heap());
          }
        }
      };
      await Promise.all([post(), post()]);
      const stats = await (await fetch(`${serve.url}/api/stats`)).json() as Record<string, number>;
      assert.equal(stats.total, TOTAL, "every message counted");
      assert.equal(stats.good, TOTAL, "every message good");
      assert.ok(stats.evicted >= TOTAL - MAX_EVENTS, `the oldest evicted and counted (${stats.evicted})`);
      // Still serving: the API answers with the newest events, and a new batch is taken.
      const page = await (await fetch(`${serve.url}/api/events?limit=5`)).json() as {
        events: { message: { messageId: string } }[];
      };
      assert.equal(page.events.length, 5);
      assert.equal((await fetch(`${serve.url}/v1/batch`, { method: "POST", body: body(batches) })).status, 200);
      const mb = (bytes: number): string => `${(bytes / 2 ** 20).toFixed(1)} MB`;
      const [first, second] = peaks;
      const measured = kept[0] > 0 && kept[1] > 0; // the runtime let the child collect before it sampled
      console.log(
        `collector RSS over ${TOTAL} events: ${mb(full)} once the store was full, peak ${mb(first)} in the first ` +
          `half, ${mb(second)} in the second; kept (heap after a collection) at most ${mb(kept[0])}, then ${
            mb(kept[1])
          }`,
      );
      assert.ok(full > 0 && first > 0 && second > 0, "memory was sampled");
      const peak = Math.max(first, second);
      assert.ok(peak - full < GROWTH_BOUND, `memory grew ${mb(peak - full)} after the store filled`);
      if (measured) {
        assert.ok(kept[1] - kept[0] < TREND_BOUND, `what it keeps kept growing: ${mb(kept[0])}, then ${mb(kept[1])}`);
      }
    } finally {
      await serve.stop();
    }
  },
);
