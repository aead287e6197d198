/**
 * The demo: starts `tally serve` (the local Segment-compatible collector) on
 * 127.0.0.1, runs every example against it, and reports what arrived: the
 * messages per type, whether each passed the collector's spec checks (with
 * the reasons for any that did not), and one message as it arrived. Nothing
 * leaves the machine: each example gets the collector's URL as `TALLY_HOST`
 * (and, on Deno, `--allow-net=127.0.0.1` only).
 *
 *     deno task demo               (--keep leaves the collector and its inspector running; --verbose shows output)
 *     npx bun examples/demo.ts
 *
 * @module
 */
import { type ChildProcess, spawn } from "node:child_process";
import process from "node:process";
import { createInterface } from "node:readline";
import { fileURLToPath } from "node:url";
import type { CollectorStats as Stats, StoredEvent as Stored } from "../lib/collector/mod.ts";

/** The examples, in the seed's order. */
const EXAMPLES = [
  "getting_started.ts",
  "identify.ts",
  "track.ts",
  "page.ts",
  "screen.ts",
  "group.ts",
  "alias.ts",
  "historical_import.ts",
  "server_logs.ts",
  "selecting_destinations.ts",
  "batching.ts",
  "gzip.ts",
  "options.ts",
  "overriding_context.ts",
  "sync_mode.ts",
];

/** A made-up key shaped like a Segment write key (32 letters and digits); the collector requires it. */
const WRITE_KEY = "9pQv2sLxT4kWb7RmZc1HfN8yJd3GaE6u";
/** An example that has not exited by then is killed and counted as failed. */
const CHILD_TIMEOUT_MS = 10_000;
const TYPES = ["identify", "track", "page", "screen", "group", "alias"];

const verbose = process.argv.includes("--verbose");
const keep = process.argv.includes("--keep");
const root = fileURLToPath(new URL("..", import.meta.url));
const isDeno = typeof (globalThis as { Deno?: unknown }).Deno !== "undefined";
const runtime = isDeno ? `Deno ${process.versions.deno}` : `Bun ${process.versions.bun}`;

interface Run {
  file: string;
  ok: boolean;
  code: number | null;
  timedOut: boolean;
  ms: number;
  messages: number;
  output: string;
}

/** Runs one example as a child process of the same runtime; never rejects. */
function runExample(file: string, host: string): Promise<Omit<Run, "messages">> {
  const path = fileURLToPath(new URL(file, import.meta.url));
  const args = isDeno ? ["run", "--quiet", "--allow-net=127.0.0.1", "--allow-env", path] : [path];
  const started = performance.now();
  return new Promise((resolve) => {
    const chunks: string[] = [];
    let timedOut = false;
    const child = spawn(process.execPath, args, {
      cwd: root,
      env: { ...process.env, TALLY_HOST: host, TALLY_WRITE_KEY: WRITE_KEY, NO_COLOR: "1" },
      stdio: ["ignore", "pipe", "pipe"],
    });
    child.stdout.on("data", (chunk) => chunks.push(String(chunk)));
    child.stderr.on("data", (chunk) => chunks.push(String(chunk)));
    const timer = setTimeout(() => {
      timedOut = true;
      child.kill("SIGKILL");
    }, CHILD_TIMEOUT_MS);
    const finish = (code: number | null) => {
      clearTimeout(timer);
      const ms = Math.round(performance.now() - started);
      resolve({ file, ok: code === 0, code, timedOut, ms, output: chunks.join("") });
    };
    child.on("error", (error) => {
      chunks.push(String(error));
      finish(null);
    });
    child.on("close", (code) => finish(code));
  });
}

const plural = (n: number, word: string): string => `${n} ${word}${n === 1 ? "" : "s"}`;

/** Starts `tally serve` (cli.ts on this runtime) and resolves with its URL once it listens. */
function startServe(): Promise<{ url: string; child: ChildProcess }> {
  const cli = fileURLToPath(new URL("../cli.ts", import.meta.url));
  const flags = ["serve", "--port", keep ? "8787" : "0", "--no-out", "--quiet", "--write-key", WRITE_KEY];
  const args = isDeno ? ["run", "--quiet", "--allow-net=127.0.0.1", "--allow-env", "--allow-read", cli, ...flags] : [
    cli,
    ...flags,
  ];
  const child = spawn(process.execPath, args, { cwd: root, stdio: ["ignore", "pipe", "inherit"] });
  return new Promise((resolve, reject) => {
    const lines = createInterface({ input: child.stdout! });
    lines.on("line", (line) => {
      const match = /listening on (http:\/\/\S+)/.exec(line);
      if (match) resolve({ url: match[1].replace(/\/$/, ""), child });
      else if (verbose) console.log(`  serve | ${line}`);
    });
    child.on("error", reject);
    child.on("exit", (code) => reject(new Error(`tally serve exited with code ${code} before it listened`)));
  });
}

async function api<T>(url: string): Promise<T> {
  const response = await fetch(url);
  if (!response.ok) throw new Error(`${url} answered ${response.status}`);
  return await response.json() as T;
}

const { url, child: serve } = await startServe();
const stats = () => api<Stats>(`${url}/api/stats`);
console.log(`Tally demo: ${EXAMPLES.length} examples on ${runtime}, sending to tally serve at ${url}\n`);

// One at a time, so each message is credited to the example that sent it.
const runs: Run[] = [];
for (const file of EXAMPLES) {
  const before = (await stats()).total;
  const run = await runExample(file, url);
  const messages = (await stats()).total - before;
  // An example that exits cleanly but delivers nothing has failed too.
  runs.push({ ...run, ok: run.ok && messages > 0, messages });
}

console.log("Examples");
const width = Math.max(...EXAMPLES.map((f) => f.length));
for (const run of runs) {
  const status = run.ok ? "ok    " : "FAILED";
  const why = run.ok
    ? ""
    : run.timedOut
    ? `  (killed: still running after ${CHILD_TIMEOUT_MS / 1000} s)`
    : run.code === 0
    ? "  (exited 0 but nothing arrived)"
    : `  (exit code ${run.code})`;
  console.log(
    `  ${status} ${run.file.padEnd(width)}  ${plural(run.messages, "message").padStart(12)}  ${run.ms} ms${why}`,
  );
  if ((verbose || !run.ok) && run.output.trim() !== "") {
    console.log(run.output.trimEnd().split("\n").map((line) => `         | ${line}`).join("\n"));
  }
}

const total = await stats();
const count = (type: string) => total.byType[type] ?? { good: 0, bad: 0 };
console.log("\nArrived at the collector (each message checked against the Segment spec)");
console.log(`  requests   ${total.requests}, ${total.bytes} bytes on the wire, write key required and matched`);
console.log(`  messages   ${total.total}: ${total.good} good, ${total.bad} bad`);
for (const type of TYPES) {
  const { good, bad } = count(type);
  console.log(`    ${type.padEnd(9)} ${String(good + bad).padStart(4)}${bad > 0 ? `  (${bad} bad)` : ""}`);
}
const bad = (await api<{ events: Stored[] }>(`${url}/api/events?status=bad&limit=20`)).events;
for (const event of bad) {
  const m = event.message;
  console.log(`  bad ${m.type} ${m.messageId}: ${event.reasons.join("; ")}`);
}
const shirt = (await api<{ events: Stored[] }>(`${url}/api/events?event=Shirt%20Bought&limit=1`)).events[0];
if (shirt !== undefined) {
  console.log("\nOne message as it arrived (server_logs.ts):");
  console.log(JSON.stringify(shirt.message, null, 2).split("\n").map((line) => `  ${line}`).join("\n"));
}

const failed = runs.filter((run) => !run.ok);
const ok = failed.length === 0 && total.total > 0;
console.log(
  ok
    ? `\nAll ${EXAMPLES.length} examples ok; ${plural(total.total, "message")} arrived, ${total.bad} bad.`
    : `\nFAILED: ${plural(failed.length, "example")} failed, ${plural(total.total, "message")} arrived`,
);
if (keep) {
  console.log(`\nInspector: open ${url}/ in a browser to browse these messages; Ctrl-C stops the collector.`);
  console.log(`Send more with TALLY_HOST=${url} TALLY_WRITE_KEY=${WRITE_KEY} (any example, or the tally CLI).`);
  await new Promise((resolve) => serve.on("exit", resolve));
} else {
  console.log("Run `npx deno task demo --keep` to keep the collector running and browse them in its live inspector.");
  serve.kill("SIGTERM");
}
process.exit(ok ? 0 : 1);
