/**
 * Events queued when a program ends normally are delivered without a call to
 * flush(), and the client never keeps an idle process alive. Each test runs
 * tests/fixtures/exit_child.ts in a child process of the runtime running the
 * tests (Deno or Bun) against the recording receiver.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import process from "node:process";
import { fileURLToPath } from "node:url";
import type { Stats } from "../mod.ts";
import { startReceiver } from "./receiver.ts";
import { childArgv } from "./fixtures/child_argv.ts";

const CHILD = fileURLToPath(new URL("./fixtures/exit_child.ts", import.meta.url));
const ROOT = fileURLToPath(new URL("..", import.meta.url));
/** A generous bound: the child takes well under a second here. */
const EXIT_WITHIN_MS = 3000;

interface Run {
  code: number | null;
  signal: string | null;
  ms: number;
  stdout: string;
  stderr: string;
}

/** Runs the child with the runtime running this test; kills it if it outlives `killAfterMs`. */
function runChild(url: string, mode: "burst" | "interval" | "down", killAfterMs = 4000): Promise<Run> {
  const args = childArgv(CHILD, [url, mode], ["--allow-net=127.0.0.1"]);
  const start = Date.now();
  const child = spawn(process.execPath, args, { cwd: ROOT, stdio: ["ignore", "pipe", "pipe"] });
  let stdout = "";
  let stderr = "";
  child.stdout.on("data", (chunk) => void (stdout += chunk));
  child.stderr.on("data", (chunk) => void (stderr += chunk));
  const killer = setTimeout(() => child.kill("SIGKILL"), killAfterMs);
  return new Promise((resolve, reject) => {
    child.on("error", (error) => {
      clearTimeout(killer);
      reject(error);
    });
    child.on("close", (code, signal) => {
      clearTimeout(killer);
      resolve({ code, signal, ms: Date.now() - start, stdout, stderr });
    });
  });
}

/** The stats the child printed as it exited. */
function childStats(run: Run): Stats {
  const line = run.stdout.trim().split("\n").pop() ?? "";
  try {
    return JSON.parse(line);
  } catch {
    throw new Error(`the child printed no stats; stdout: ${run.stdout} stderr: ${run.stderr}`);
  }
}

test("a program that ends without flush() still delivers all 250 events and exits with code 0", async () => {
  const receiver = await startReceiver();
  try {
    const run = await runChild(receiver.url, "burst");
    assert.equal(run.signal, null, `the child was killed: ${run.stderr}`);
    assert.equal(run.code, 0, `exit code ${run.code}; stderr: ${run.stderr}`);
    assert.ok(run.ms < EXIT_WITHIN_MS, `the child took ${run.ms} ms to exit`);
    const messages = receiver.messages();
    assert.equal(messages.length, 250);
    assert.equal(new Set(messages.map((m) => m.messageId)).size, 250, "each event once");
    assert.deepEqual(
      messages.map((m) => (m.properties as { i: number }).i).sort((a, b) => a - b),
      Array.from({ length: 250 }, (_, i) => i),
    );
    for (const r of receiver.requests) assert.ok((r.body.batch?.length ?? 0) <= 100, "default uploadSize");
    const stats = childStats(run);
    assert.equal(stats.delivered, 250);
    assert.equal(stats.failed, 0);
    assert.equal(stats.queued, 0);
    assert.equal(stats.inFlight, 0);
  } finally {
    await receiver.stop();
  }
});

test("a long uploadInterval timer does not keep the process alive, and its events are still delivered", async () => {
  const receiver = await startReceiver();
  try {
    const run = await runChild(receiver.url, "interval");
    assert.equal(run.signal, null, `the child was killed: ${run.stderr}`);
    assert.equal(run.code, 0, `exit code ${run.code}; stderr: ${run.stderr}`);
    assert.ok(run.ms < EXIT_WITHIN_MS, `the child took ${run.ms} ms to exit (uploadInterval is 60 s)`);
    assert.equal(receiver.requests.length, 1);
    const messages = receiver.messages();
    assert.equal(messages.length, 5);
    assert.ok(messages.every((m) => m.event === "Exit Tested"));
    const stats = childStats(run);
    assert.equal(stats.delivered, 5);
    assert.equal(stats.queued, 0);
  } finally {
    await receiver.stop();
  }
});

test("a program whose events are refused at exit reports them to onError and still exits", async () => {
  const receiver = await startReceiver();
  try {
    receiver.setDefault({ status: 400, body: '{"error":"bad request"}' });
    const run = await runChild(receiver.url, "burst");
    assert.equal(run.signal, null, `the child was killed: ${run.stderr}`);
    assert.ok(run.ms < EXIT_WITHIN_MS, `the child took ${run.ms} ms to exit`);
    assert.equal(run.code, 1, "the child's onError set exitCode 1");
    assert.equal(receiver.messages().length, 250, "each event sent once (400 is not retried)");
    const reported = [...run.stderr.matchAll(/undelivered: (\d+) \(http_status\)/g)].map((m) => Number(m[1]));
    assert.equal(reported.reduce((a, b) => a + b, 0), 250, `stderr: ${run.stderr}`);
    const stats = childStats(run);
    assert.equal(stats.failed, 250);
    assert.equal(stats.delivered, 0);
  } finally {
    await receiver.stop();
  }
});

test("a program that ends while the server is down stays alive only exitTimeout, then reports its events as closed", async () => {
  // A port that was just free: nothing listens there, so every connection is refused and retried.
  const receiver = await startReceiver();
  const url = receiver.url;
  await receiver.stop();
  const run = await runChild(url, "down", 8000);
  assert.equal(run.signal, null, `the child had to be killed after ${run.ms} ms; stderr: ${run.stderr}`);
  assert.ok(run.ms < 1000 + EXIT_WITHIN_MS, `exited after ${run.ms} ms with exitTimeout 1 s`);
  assert.equal(run.code, 1, "undelivered events are reported, so the child exits 1");
  assert.match(run.stderr, /undelivered: \d+ \(closed\)/);
  const stats = childStats(run);
  assert.equal(stats.failed + stats.dropped, 20, "all 20 accounted for");
  assert.equal(stats.delivered, 0);
});
