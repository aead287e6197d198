/**
 * `analytics.closeOnSignals()` (issue 10, item 2): on SIGTERM/SIGINT the
 * client is closed within its timeout, then the program's own handlers and
 * the signal's default behaviour run. Each test runs
 * tests/fixtures/signals_child.ts in a child process of the runtime running
 * the tests (Deno, Bun, or Node on the npm build), queues events that cannot
 * leave before the signal (uploadInterval 60 s), signals it, and checks what
 * the collector stored, how the child ended and how long it took.
 *
 * @module
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import process from "node:process";
import { fileURLToPath } from "node:url";
import { Analytics } from "../mod.ts";
import { type Collector, startCollector } from "../serve/mod.ts";
import { childArgv } from "./fixtures/child_argv.ts";

const CHILD = fileURLToPath(new URL("./fixtures/signals_child.ts", import.meta.url));
/** Slack over a timeout, for a loaded 2-core machine. */
const MARGIN_MS = 2000;
const N = 250;

interface Ended {
  code: number | null;
  signal: string | null;
  /** From the signal to the child's exit. */
  afterSignalMs: number;
  stdout: string;
  stderr: string;
  /** Messages reported undelivered, by reason. */
  reported: Record<string, number>;
}

/**
 * Starts the child, waits for its "ready" line, sends it `signals` (each
 * `gapMs` after the last), and resolves when it has exited; SIGKILLs it
 * after `killAfterMs`.
 */
function signalChild(
  args: string[],
  signals: ("SIGTERM" | "SIGINT")[],
  options: { gapMs?: number; killAfterMs?: number } = {},
): Promise<Ended> {
  const argv = childArgv(CHILD, args, ["--allow-net=127.0.0.1", "--allow-env"]);
  const child = spawn(process.execPath, argv, { stdio: ["ignore", "pipe", "pipe"] });
  let stdout = "";
  let stderr = "";
  let signalledAt: number | undefined;
  child.stdout.setEncoding("utf8");
  child.stderr.setEncoding("utf8");
  child.stdout.on("data", (chunk: string) => {
    stdout += chunk;
    if (signalledAt === undefined && stdout.includes('{"kind":"ready"')) {
      signalledAt = performance.now();
      // process.kill, not child.kill: Deno's ChildProcess reports a child it signalled as ended by that signal,
      // whatever its real exit, and sends no second signal.
      signals.forEach((signal, i) => setTimeout(() => process.kill(child.pid!, signal), i * (options.gapMs ?? 0)));
    }
  });
  child.stderr.on("data", (chunk: string) => void (stderr += chunk));
  const killer = setTimeout(() => child.kill("SIGKILL"), options.killAfterMs ?? 20_000);
  return new Promise((resolve, reject) => {
    child.on("error", (error) => {
      clearTimeout(killer);
      reject(error);
    });
    child.on("close", (code, signal) => {
      clearTimeout(killer);
      const reported: Record<string, number> = {};
      for (const line of stdout.split("\n")) {
        if (!line.startsWith('{"kind":"error"')) continue;
        const record = JSON.parse(line) as { reason: string; ids: string[] };
        reported[record.reason] = (reported[record.reason] ?? 0) + record.ids.length;
      }
      const afterSignalMs = signalledAt === undefined ? NaN : performance.now() - signalledAt;
      resolve({ code, signal, afterSignalMs, stdout, stderr, reported });
    });
  });
}

const shown = (r: Ended): string =>
  `exit ${r.code} signal ${r.signal} after ${Math.round(r.afterSignalMs)} ms\nstdout: ${
    r.stdout.slice(-1500)
  }\nstderr: ${r.stderr.slice(-1500)}`;

/** The exit a signal's default behaviour gives: the signal itself, or 128 + n where a runtime reports it so. */
function endedBy(r: Ended, signal: "SIGTERM" | "SIGINT"): void {
  const code = signal === "SIGTERM" ? 143 : 130;
  assert.ok(r.signal === signal || r.code === code, `expected an end by ${signal}; ${shown(r)}`);
}

/** Each of sig-0 .. sig-(n-1) stored exactly once. */
function allStoredOnce(collector: Collector, n: number): void {
  const ids = collector.events({ limit: 100_000 }).map((e) => String(e.message.messageId));
  assert.equal(ids.length, n, `stored ${ids.length} of ${n}`);
  assert.deepEqual(new Set(ids), new Set(Array.from({ length: n }, (_, i) => `sig-${i}`)));
}

async function withCollector(body: (collector: Collector) => Promise<void>): Promise<void> {
  const collector = await startCollector();
  try {
    await body(collector);
  } finally {
    await collector.stop();
  }
}

for (const signal of ["SIGTERM", "SIGINT"] as const) {
  test(`on ${signal} a program with no handler of its own delivers what is queued, then ends by the signal`, async () => {
    await withCollector(async (collector) => {
      const r = await signalChild([collector.url, String(N), "plain"], [signal]);
      endedBy(r, signal);
      allStoredOnce(collector, N);
      assert.deepEqual(r.reported, {}, shown(r));
      assert.ok(r.afterSignalMs < MARGIN_MS, shown(r));
    });
  });
}

test("a handler the program added before closeOnSignals() runs after the delivery, and its exit code stands", async () => {
  await withCollector(async (collector) => {
    const r = await signalChild([collector.url, String(N), "before"], ["SIGTERM"]);
    assert.equal(r.code, 7, shown(r));
    assert.match(r.stdout, /\{"kind":"own","mode":"before"\}/);
    allStoredOnce(collector, N);
  });
});

test("a handler the program added after closeOnSignals() runs too, and the program ends by itself with its code", async () => {
  await withCollector(async (collector) => {
    const r = await signalChild([collector.url, String(N), "after"], ["SIGTERM"]);
    assert.equal(r.signal, null, `the signal was raised again over the program's own handler; ${shown(r)}`);
    assert.equal(r.code, 5, shown(r));
    assert.match(r.stdout, /\{"kind":"own","mode":"after"\}/);
    allStoredOnce(collector, N);
  });
});

test("with the server down the program still ends within the timeout, by the signal, every event reported", async () => {
  const collector = await startCollector();
  const url = collector.url;
  await collector.stop();
  const r = await signalChild([url, String(N), "plain", "1000"], ["SIGTERM"]);
  endedBy(r, "SIGTERM");
  assert.ok(r.afterSignalMs < 1000 + MARGIN_MS, `ended ${Math.round(r.afterSignalMs)} ms after the signal`);
  assert.deepEqual(r.reported, { closed: N }, shown(r));
});

test("a second signal while the client closes takes its course at once", async () => {
  await withCollector(async (collector) => {
    collector.setDefaultReply({ hang: true });
    const r = await signalChild([collector.url, String(N), "plain", "10000"], ["SIGTERM", "SIGTERM"], { gapMs: 500 });
    endedBy(r, "SIGTERM");
    assert.ok(r.afterSignalMs < 500 + MARGIN_MS, `ended ${Math.round(r.afterSignalMs)} ms after the first signal`);
  });
});

test("closeOnSignals() once per client; once uninstalled, the signal ends the program at once with nothing sent", async () => {
  await withCollector(async (collector) => {
    const r = await signalChild([collector.url, String(N), "uninstalled"], ["SIGTERM"]);
    endedBy(r, "SIGTERM");
    assert.equal(collector.events().length, 0, shown(r));
  });
});

test("closeOnSignals() refuses a bad timeout or signal name, saying which", () => {
  const analytics = new Analytics({ writeKey: "KEY", send: false });
  assert.throws(() => analytics.closeOnSignals({ timeout: -1 }), /^RangeError: Cannot closeOnSignals: timeout/);
  assert.throws(() => analytics.closeOnSignals({ timeout: Infinity }), RangeError);
  assert.throws(
    () => analytics.closeOnSignals({ signals: ["SIGKILL" as "SIGTERM"] }),
    /Cannot closeOnSignals: signal must be one of SIGTERM, SIGINT, SIGHUP, got SIGKILL/,
  );
  assert.throws(() => analytics.closeOnSignals({ signals: [] }), TypeError);
  const uninstall = analytics.closeOnSignals({ signals: ["SIGHUP"] });
  assert.equal(analytics.closeOnSignals(), uninstall, "a second call returns the first uninstaller");
  uninstall();
  uninstall();
  assert.notEqual(analytics.closeOnSignals(), uninstall, "after uninstalling, a call installs afresh");
  analytics.closeOnSignals()();
});
