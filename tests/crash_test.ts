/**
 * The crash harness (issue 10, Tests): a child process
 * (tests/fixtures/crash_child.ts) tracks messages at a steady rate into a
 * disk-backed client (`fileStorage`) against the collector with faults on
 * (failures, dropped connections: retried), and is killed at random, seeded
 * moments, each time restarted on the same folder; a last run closes
 * cleanly. Every message whose call had returned before the kill (the
 * child prints each one after the call) must be stored by the collector;
 * duplicates (a request stored whose answer the kill cut off, sent again at
 * the next start) are counted and reported. Then the same with SIGTERM and
 * `closeOnSignals()`: nothing lost, and the child ends within its timeout.
 *
 * Runs on the runtime running the tests (Deno, Bun, or Node on the npm
 * build). `TALLY_CRASH_SCALE` multiplies the rounds (20 SIGKILLs at 1);
 * `TALLY_CRASH_SEED` replays other moments.
 *
 * @module
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { mkdtempSync, readdirSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import process from "node:process";
import { fileURLToPath } from "node:url";
import { startCollector } from "../serve/mod.ts";
import { CRASH_SCALE, CRASH_SEED, seeded, storedCounts } from "./fixtures/crash_scale.ts";
import { childArgv } from "./fixtures/child_argv.ts";

const CHILD = fileURLToPath(new URL("./fixtures/crash_child.ts", import.meta.url));
const KILL_ROUNDS = Math.max(1, Math.round(20 * CRASH_SCALE));
const TERM_ROUNDS = Math.max(1, Math.round(3 * CRASH_SCALE));
/** closeOnSignals' timeout in the child, and the slack over it for a loaded 2-core machine. */
const TERM_TIMEOUT_MS = 3000;
const MARGIN_MS = 2000;

interface Ended {
  code: number | null;
  signal: string | null;
  /** From the signal (or kill) to the exit. */
  afterSignalMs: number;
  /** Ids the child said its calls had taken. */
  accepted: string[];
  /** Ids the child's onError heard, with the reasons. */
  reported: { reason: string; ids: string[] }[];
  closed: { result: { delivered: number; failed: number; pending: number } } | undefined;
  stdout: string;
  stderr: string;
}

/** Runs the child; `signal` goes `afterMs` after its ready line (none: it runs until it ends). */
function runChild(
  args: string[],
  signal: "SIGKILL" | "SIGTERM" | undefined,
  afterMs: number,
): Promise<Ended> {
  const argv = childArgv(CHILD, args, ["--allow-net=127.0.0.1", "--allow-env", "--allow-read", "--allow-write"]);
  const child = spawn(process.execPath, argv, { stdio: ["ignore", "pipe", "pipe"] });
  let stdout = "";
  let stderr = "";
  let signalledAt: number | undefined;
  child.stdout.setEncoding("utf8");
  child.stderr.setEncoding("utf8");
  child.stdout.on("data", (chunk: string) => {
    const first = !stdout.includes('{"kind":"ready"}');
    stdout += chunk;
    if (signal !== undefined && first && stdout.includes('{"kind":"ready"}')) {
      setTimeout(() => {
        signalledAt = performance.now();
        // process.kill, not child.kill: Deno's ChildProcess misreports how a child it signalled ended.
        process.kill(child.pid!, signal);
      }, afterMs);
    }
  });
  child.stderr.on("data", (chunk: string) => void (stderr += chunk));
  const limit = setTimeout(() => child.kill("SIGKILL"), 30_000);
  return new Promise((resolve, reject) => {
    child.on("error", reject);
    child.on("close", (code, sig) => {
      clearTimeout(limit);
      const accepted: string[] = [];
      const reported: Ended["reported"] = [];
      let closed: Ended["closed"];
      // Only whole lines: a kill may cut the last one.
      const lines = stdout.split("\n");
      lines.pop();
      for (const line of lines) {
        if (line.startsWith('{"kind":"accepted"')) accepted.push(...JSON.parse(line).ids);
        else if (line.startsWith('{"kind":"error"')) reported.push(JSON.parse(line));
        else if (line.startsWith('{"kind":"closed"')) closed = JSON.parse(line);
      }
      const afterSignalMs = signalledAt === undefined ? NaN : performance.now() - signalledAt;
      resolve({ code, signal: sig, afterSignalMs, accepted, reported, closed, stdout, stderr });
    });
  });
}

const shown = (r: Ended): string =>
  `exit ${r.code} signal ${r.signal}\nstdout: ${r.stdout.slice(-800)}\nstderr: ${r.stderr.slice(-1500)}`;

/** Waits until every id of `ids` is stored, or `ms` pass. */
async function settled(counts: Map<string, number>, ids: string[], ms: number): Promise<void> {
  const until = performance.now() + ms;
  while (performance.now() < until && ids.some((id) => !counts.has(id))) {
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

/** Checks every accepted id was stored, none foreign; returns the copies beyond the first. */
function check(counts: Map<string, number>, accepted: string[], label: string): number {
  const lost = accepted.filter((id) => !counts.has(id));
  assert.deepEqual(lost.slice(0, 10), [], `${label}: ${lost.length} of ${accepted.length} accepted messages lost`);
  let duplicates = 0;
  for (const n of counts.values()) duplicates += n - 1;
  return duplicates;
}

const scratch = (): string => mkdtempSync(join(tmpdir(), "tally-crash-test-"));
const faults = { failRate: 0.1, failStatus: 503, dropConnectionRate: 0.05, seed: CRASH_SEED };

test(
  `a disk-backed client SIGKILLed ${KILL_ROUNDS} times at random moments and restarted on its folder loses nothing it accepted`,
  { timeout: 600_000 },
  async () => {
    const dir = scratch();
    const collector = await startCollector({ ...faults, maxEvents: 1000 });
    const counts = storedCounts(collector);
    const random = seeded(CRASH_SEED);
    const accepted: string[] = [];
    try {
      for (let round = 0; round < KILL_ROUNDS; round++) {
        const durability = round % 2 === 0 ? "interval" : "always";
        const r = await runChild(
          [dir, collector.url, "kill", `k${round}`, durability],
          "SIGKILL",
          Math.round(50 + random() * 400),
        );
        assert.ok(r.signal === "SIGKILL" || r.code === 137, `round ${round}: not killed; ${shown(r)}`);
        assert.deepEqual(r.reported, [], `round ${round}: messages reported undelivered; ${shown(r)}`);
        accepted.push(...r.accepted);
      }
      const last = await runChild([dir, collector.url, "final", "final"], undefined, 0);
      assert.equal(last.code, 0, shown(last));
      assert.deepEqual(last.reported, [], shown(last));
      assert.equal(last.closed?.result.pending, 0, `the last run's close left messages; ${shown(last)}`);
      accepted.push(...last.accepted);
      const duplicates = check(counts, accepted, "SIGKILL");
      console.log(
        `crash: ${KILL_ROUNDS} SIGKILLs, ${accepted.length} messages accepted, all stored; ${duplicates} duplicate(s)`,
      );
      assert.ok(accepted.length >= KILL_ROUNDS * 20, `only ${accepted.length} messages tracked in all`);
      const sealed = readdirSync(dir).filter((f) => /^\d+\.seg$/.test(f));
      assert.deepEqual(sealed, [], "a sealed segment was left after the last run closed with nothing pending");
    } finally {
      await collector.stop();
      rmSync(dir, { recursive: true, force: true });
    }
  },
);

test(
  `on SIGTERM with closeOnSignals() a disk-backed client loses nothing and ends within its timeout (${TERM_ROUNDS} rounds)`,
  { timeout: 600_000 },
  async () => {
    const dir = scratch();
    const collector = await startCollector({ ...faults, maxEvents: 1000 });
    const counts = storedCounts(collector);
    const random = seeded(CRASH_SEED + 1);
    const accepted: string[] = [];
    try {
      for (let round = 0; round < TERM_ROUNDS; round++) {
        const r = await runChild(
          [dir, collector.url, "term", `t${round}`, "interval"],
          "SIGTERM",
          Math.round(100 + random() * 400),
        );
        assert.ok(r.signal === "SIGTERM" || r.code === 143, `round ${round}: not ended by SIGTERM; ${shown(r)}`);
        assert.ok(r.afterSignalMs < TERM_TIMEOUT_MS + MARGIN_MS, `round ${round}: took ${r.afterSignalMs} ms`);
        // Calls refused after the close began are reported as closed; none the client took may be.
        const took = new Set(r.accepted);
        const lost = r.reported.flatMap((x) => x.ids.filter((id) => took.has(id)).map((id) => `${id} (${x.reason})`));
        assert.deepEqual(lost.slice(0, 10), [], `round ${round}: accepted messages reported undelivered; ${shown(r)}`);
        assert.ok(r.accepted.length > 0, shown(r));
        accepted.push(...r.accepted);
        // Delivered before the end: each round's messages are stored when the child is gone.
        const missing = r.accepted.filter((id) => !counts.has(id));
        assert.deepEqual(missing.slice(0, 10), [], `round ${round}: ${missing.length} not delivered by the close`);
      }
      await settled(counts, accepted, 1000);
      const duplicates = check(counts, accepted, "SIGTERM");
      console.log(
        `crash: ${TERM_ROUNDS} SIGTERMs, ${accepted.length} messages, all stored; ${duplicates} duplicate(s)`,
      );
    } finally {
      await collector.stop();
      rmSync(dir, { recursive: true, force: true });
    }
  },
);
