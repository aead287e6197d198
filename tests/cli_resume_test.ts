/**
 * `tally send --resume` (issue 10, item 3): an import interrupted (kill -9
 * at random, seeded moments; a network outage) and run again with the same
 * file and `--resume` sends only what was not acknowledged. The collector
 * (`startCollector`, over real HTTP) counts every messageId it stores: each
 * line must be stored, and stored more than once only when its request was
 * in flight at a kill (at most 4 requests, the library's bound, of
 * `--batch-size` messages each, per kill). tally runs as the CLI tests run
 * it (tests/fixtures/cli_run.ts). `TALLY_CRASH_SCALE` raises the 50k lines
 * (20: the 1M).
 *
 * @module
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { existsSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { type Collector, startCollector } from "../serve/mod.ts";
import { baseEnv, KEY, ROOT, type Run, run, scratch, show, stderrLines, tally } from "./fixtures/cli_run.ts";
import { CRASH_SCALE, CRASH_SEED, seeded, storedCounts } from "./fixtures/crash_scale.ts";

const LINES = Math.round(50_000 * CRASH_SCALE);
const BATCH = 100;
/** The library's bound on requests in flight (lib/delivery.ts MAX_IN_FLIGHT). */
const IN_FLIGHT = 4;

/** An NDJSON file of `n` tracks with messageIds `r-1` .. `r-n`, and `invalid` lines every 1000th line. */
function writeInput(path: string, n: number, options: { invalidEvery?: number } = {}): void {
  const lines: string[] = [];
  for (let i = 1; i <= n; i++) {
    lines.push(
      options.invalidEvery !== undefined && i % options.invalidEvery === 0
        ? `{"type":"track","userId":"u${i}"}`
        : `{"type":"track","userId":"u${i % 97}","event":"Imported","messageId":"r-${i}","properties":{"i":${i}}}`,
    );
  }
  writeFileSync(path, lines.join("\n") + "\n");
}

/** Every valid line's id stored, none foreign; returns the copies stored beyond the first. */
function checkStored(counts: Map<string, number>, n: number, invalidEvery?: number): number {
  let duplicates = 0;
  const missing: number[] = [];
  for (let i = 1; i <= n; i++) {
    const c = counts.get(`r-${i}`) ?? 0;
    if (invalidEvery !== undefined && i % invalidEvery === 0) continue;
    if (c === 0) missing.push(i);
    duplicates += Math.max(0, c - 1);
  }
  assert.deepEqual(missing.slice(0, 20), [], `${missing.length} line(s) never stored`);
  const expected = invalidEvery === undefined ? n : n - Math.floor(n / invalidEvery);
  assert.equal([...counts.keys()].length, expected, "nothing stored that the file does not hold");
  return duplicates;
}

/** Runs to SIGKILL in each import run. */
const KILLS = Math.max(4, Math.round(8 * Math.min(CRASH_SCALE, 2.5)));

/** Runs tally with `args` and `--resume input`, SIGKILLed as soon as `when()` holds after a message is stored. */
function killedAt(when: () => boolean, collector: Collector, args: string[], input: string): Promise<Run> {
  const [bin, pre] = tally();
  const started = performance.now();
  const child = spawn(bin, [...pre, ...args, "--resume", input], {
    cwd: ROOT,
    env: baseEnv(),
    stdio: ["ignore", "pipe", "pipe"],
  });
  let stdout = "";
  let stderr = "";
  child.stdout.on("data", (chunk) => void (stdout += chunk));
  child.stderr.on("data", (chunk) => void (stderr += chunk));
  let killed = false;
  const unsubscribe = collector.subscribe((event) => {
    if (event.kind === "message" && !killed && when()) {
      killed = true;
      child.kill("SIGKILL");
    }
  });
  const limit = setTimeout(() => child.kill("SIGKILL"), 120_000);
  return new Promise((resolve, reject) => {
    child.on("error", reject);
    child.on("close", (code) => {
      clearTimeout(limit);
      unsubscribe();
      resolve({ code: killed ? null : code, stdout, stderr, peakMb: undefined, ms: performance.now() - started });
    });
  });
}

const summaryOf = (r: Run): { sent: number; skipped: number; invalid: number; failed: number } =>
  JSON.parse(r.stdout.trim().split("\n").pop()!);

test(
  `tally send --resume killed (SIGKILL) at random points of a ${LINES}-line import sends every line, duplicates only from requests in flight`,
  { timeout: 600_000 },
  async () => {
    const [dir, cleanup] = scratch();
    const collector = await startCollector({ maxEvents: 1000 });
    try {
      const input = join(dir, "events.ndjson");
      writeInput(input, LINES);
      const counts = storedCounts(collector);
      const random = seeded(CRASH_SEED);
      const args = ["send", "--write-key", KEY, "--host", collector.url, "--batch-size", String(BATCH), "--json"];
      let kills = 0;
      let skippedSeen = 0;
      let finished: Run | undefined;
      for (let round = 0; round < KILLS + 4 && finished === undefined; round++) {
        // Killed as the collector stores a random share of what is left (the last runs are let finish).
        const left = LINES - counts.size;
        const target = round < KILLS ? counts.size + Math.max(1, Math.round(random() * left * 0.5)) : Infinity;
        const r = await killedAt(() => counts.size >= target, collector, args, input);
        if (r.code === 0) {
          finished = r;
          skippedSeen = summaryOf(r).skipped;
        } else {
          assert.ok(r.code === null || r.code === 137, `a run ended by itself with ${show(r)}`);
          kills++;
        }
      }
      assert.ok(finished !== undefined, "the import never finished");
      assert.ok(kills >= 4, `only ${kills} run(s) were killed before finishing: the kills came too late`);
      const duplicates = checkStored(counts, LINES);
      const bound = kills * IN_FLIGHT * BATCH;
      console.log(
        `resume: ${LINES} lines, ${kills} kills, ${duplicates} duplicate(s) (bound ${bound}), ` +
          `last run skipped ${skippedSeen}`,
      );
      assert.ok(duplicates <= bound, `${duplicates} duplicates over ${kills} kills, more than ${bound}`);
      assert.ok(skippedSeen > 0, "the last run skipped nothing: the progress was not used");
      // Everything is done: one more run sends nothing.
      const again = await run([...args, "--resume", input]);
      assert.equal(again.code, 0, show(again));
      assert.deepEqual([summaryOf(again).sent, summaryOf(again).skipped], [0, LINES]);
      assert.equal(checkStored(counts, LINES), duplicates);
    } finally {
      await collector.stop();
      cleanup();
    }
  },
);

test("tally send --resume after a network outage sends what failed, skips what arrived, and invalid lines only once", async () => {
  const [dir, cleanup] = scratch();
  const collector = await startCollector();
  try {
    const input = join(dir, "events.ndjson");
    writeInput(input, 1000, { invalidEvery: 100 });
    const counts = storedCounts(collector);
    // The server fails every request and tally does not retry: nothing arrives, the 10 invalid lines are done.
    collector.setDefaultReply({ status: 503, body: '{"error":"down"}' });
    const args = ["send", "--write-key", KEY, "--host", collector.url, "--batch-size", "100", "--json"];
    const first = await run([...args, "--max-retries", "0", "--resume", input]);
    assert.equal(first.code, 2, show(first)); // invalid lines win over failed ones
    assert.deepEqual([summaryOf(first).sent, summaryOf(first).invalid, summaryOf(first).failed], [0, 10, 990]);
    assert.equal(counts.size, 0);
    const progress = JSON.parse(readFileSync(`${input}.tally-progress`, "utf8"));
    assert.equal(progress.done, 0, "nothing acknowledged");
    assert.deepEqual(progress.ranges, Array.from({ length: 10 }, (_, i) => [(i + 1) * 100, (i + 1) * 100]));
    collector.setDefaultReply(undefined);
    const second = await run([...args, "--resume", input]);
    assert.equal(second.code, 0, show(second));
    assert.deepEqual([summaryOf(second).sent, summaryOf(second).invalid, summaryOf(second).skipped], [990, 0, 10]);
    assert.equal(checkStored(counts, 1000, 100), 0);
    const third = await run([...args, "--resume", input]);
    assert.equal(third.code, 0, show(third));
    assert.deepEqual([summaryOf(third).sent, summaryOf(third).skipped, summaryOf(third).invalid], [0, 1000, 0]);
    const text = await run(args.filter((a) => a !== "--json").concat(["--resume", input]));
    assert.match(stderrLines(text).at(-1)!, /1,000 skipped \(delivered by an earlier run\)/);
    assert.equal(checkStored(counts, 1000, 100), 0);
  } finally {
    await collector.stop();
    cleanup();
  }
});

test("tally send --resume refuses a changed file (unless --restart), stdin, --dry-run, and --restart alone", async () => {
  const [dir, cleanup] = scratch();
  const collector = await startCollector();
  try {
    const input = join(dir, "events.ndjson");
    writeInput(input, 50);
    const args = ["send", "--write-key", KEY, "--host", collector.url];
    assert.equal((await run([...args, "--resume", input])).code, 0);
    writeFileSync(input, readFileSync(input, "utf8") + '{"type":"track","userId":"u","event":"E"}\n');
    const changed = await run([...args, "--resume", input]);
    assert.equal(changed.code, 2, show(changed));
    assert.match(changed.stderr, /cannot resume .*events\.ndjson: it changed since its progress was recorded/);
    assert.match(changed.stderr, /--restart/);
    const restarted = await run([...args, "--json", "--resume", input, "--restart"]);
    assert.equal(restarted.code, 0, show(restarted));
    assert.deepEqual([summaryOf(restarted).sent, summaryOf(restarted).skipped], [51, 0]);
    const stdin = await run([...args, "--resume", "-"], { stdin: "" });
    assert.equal(stdin.code, 2);
    assert.deepEqual(stderrLines(stdin), ["tally: --resume cannot resume stdin: give the input as a file"]);
    const dry = await run(["send", "--dry-run", "--resume", input]);
    assert.equal(dry.code, 2, show(dry));
    const alone = await run([...args, "--restart", input]);
    assert.deepEqual(stderrLines(alone), ["tally: --restart goes with --resume"]);
    // --resume DIR: the progress lives there, not beside the input.
    const folder = join(dir, "progress");
    const elsewhere = await run([...args, "--json", "--resume", folder + "/", input]);
    assert.notEqual(elsewhere.code, 0, "a folder that does not exist yet is taken for an input");
    const inFolder = await run([...args, "--json", `--resume=${folder}`, input]);
    assert.equal(inFolder.code, 0, show(inFolder));
    assert.equal(summaryOf(inFolder).sent, 51);
    const twice = await run([...args, "--json", "--resume", folder, input]);
    assert.deepEqual([summaryOf(twice).sent, summaryOf(twice).skipped], [0, 51]);
    assert.ok(existsSync(`${input}.tally-progress`));
  } finally {
    await collector.stop();
    cleanup();
  }
});
