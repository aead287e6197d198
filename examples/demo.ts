/**
 * The demo: starts `tally serve` (the local Segment-compatible collector) on
 * 127.0.0.1, runs every example against it, and reports what arrived: the
 * messages per type, whether each passed the collector's spec checks (with
 * the reasons for any that did not), and one message as it arrived. Nothing
 * leaves the machine: each example gets the collector's URL as `TALLY_HOST`
 * (and, on Deno, `--allow-net=127.0.0.1` only).
 *
 *     deno task demo [--keep] [--port N] [--verbose] [EXAMPLE ...]
 *     npx bun examples/demo.ts
 *
 * `--keep` leaves the collector and its inspector running, on port 8787
 * unless `--port` says otherwise; when that port is taken (a `tally serve`
 * already running), it takes a free one and says so. `--verbose` shows each
 * example's output; EXAMPLE names run only those (`track.ts`, or `track`).
 * The collector and any running example stop with the demo: on Ctrl-C,
 * SIGINT or SIGTERM sent to the demo alone, or any exit.
 *
 * @module
 */
import { type ChildProcess, spawn } from "node:child_process";
import process from "node:process";
import { createInterface } from "node:readline";
import { fileURLToPath } from "node:url";
import type { CollectorStats as Stats, StoredEvent as Stored } from "../serve/mod.ts";

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

/** The port `--keep` tries first: the one `tally serve` defaults to, and the README's. */
const KEEP_PORT = 8787;
/** How long a child may take to stop on SIGTERM before it is killed. */
const STOP_WITHIN_MS = 3000;

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
    const child = adopt(spawn(process.execPath, args, {
      cwd: root,
      env: { ...process.env, TALLY_HOST: host, TALLY_WRITE_KEY: WRITE_KEY, NO_COLOR: "1" },
      stdio: ["ignore", "pipe", "pipe"],
    }));
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

/** A failure to tell the user in one line, and the exit code to end with. */
class DemoError extends Error {
  constructor(message: string, readonly code = 1, readonly portInUse = false) {
    super(message);
  }
}

// ---- children: every process the demo starts stops with it

const children = new Set<ChildProcess>();

/** Keeps `child` until it exits, so that the demo stops it when the demo ends. */
function adopt<T extends ChildProcess>(child: T): T {
  children.add(child);
  child.on("exit", () => children.delete(child));
  return child;
}

const running = (child: ChildProcess): boolean => child.exitCode === null && child.signalCode === null;

/** Resolves when `child` has exited, or with false after `ms` (never, without `ms`). */
function exited(child: ChildProcess, ms?: number): Promise<boolean> {
  if (!running(child)) return Promise.resolve(true);
  return new Promise((resolve) => {
    const timer = ms === undefined ? undefined : setTimeout(() => resolve(false), ms);
    child.once("exit", () => {
      clearTimeout(timer);
      resolve(true);
    });
  });
}

function signal(child: ChildProcess, name: "SIGTERM" | "SIGKILL"): void {
  // process.kill rather than child.kill: on Deno, child.kill() reports the child as killed even when it exits cleanly.
  if (child.pid !== undefined && running(child)) {
    try {
      process.kill(child.pid, name);
    } catch {
      // It exited meanwhile.
    }
  }
}

/**
 * Stops every child: a little time to exit on their own first (Ctrl-C in a terminal signals the whole
 * process group, and `tally serve` then prints its summary), then SIGTERM, then SIGKILL.
 */
async function stopChildren(graceMs: number): Promise<void> {
  await Promise.all([...children].map(async (child) => {
    if (await exited(child, graceMs)) return;
    signal(child, "SIGTERM");
    if (await exited(child, STOP_WITHIN_MS)) return;
    signal(child, "SIGKILL");
    await exited(child, STOP_WITHIN_MS);
  }));
}

let stopping = false;
for (const name of ["SIGINT", "SIGTERM"] as const) {
  process.on(name, () => {
    if (stopping) {
      // A second signal: do not wait any longer.
      for (const child of children) signal(child, "SIGKILL");
      process.exit(name === "SIGINT" ? 130 : 143);
    }
    stopping = true;
    void stopChildren(250).then(() => process.exit(name === "SIGINT" ? 130 : 143));
  });
}
// Whatever ends the demo (an error included), its children do not outlive it.
process.on("exit", () => {
  for (const child of children) signal(child, "SIGTERM");
});

// ---- the collector

/** Starts `tally serve` (cli.ts on this runtime) on `port`; resolves with its URL once it listens. */
function startServe(port: number, flags: Flags): Promise<{ url: string; child: ChildProcess }> {
  const cli = fileURLToPath(new URL("../cli.ts", import.meta.url));
  const serveArgs = ["serve", "--port", String(port), "--no-out", "--quiet", "--write-key", WRITE_KEY];
  const args = isDeno
    ? ["run", "--quiet", "--allow-net=127.0.0.1", "--allow-env", "--allow-read", cli, ...serveArgs]
    : [cli, ...serveArgs];
  const child = adopt(spawn(process.execPath, args, { cwd: root, stdio: ["ignore", "pipe", "pipe"] }));
  return new Promise((resolve, reject) => {
    let listening = false;
    const errors: string[] = [];
    createInterface({ input: child.stdout! }).on("line", (line) => {
      const match = /listening on (http:\/\/\S+)/.exec(line);
      if (match && !listening) {
        listening = true;
        resolve({ url: match[1].replace(/\/$/, ""), child });
      } else if (flags.verbose || (flags.keep && line.startsWith("Stopped."))) console.log(`  serve | ${line}`);
    });
    createInterface({ input: child.stderr! }).on("line", (line) => {
      if (listening) console.error(`  serve | ${line}`);
      else errors.push(line.replace(/^tally: /, ""));
    });
    child.on("error", (error) => reject(new DemoError(`Cannot start tally serve: ${error.message}`)));
    child.on("exit", (code) => {
      if (listening) return;
      const why = errors.join("; ") || `it exited with code ${code} before it listened`;
      reject(new DemoError(why, 1, /port is in use/.test(why)));
    });
  });
}

/** Starts the collector on `port`; with `--keep`, if that port is taken, on a free one, saying so. */
async function startCollector(port: number, flags: Flags) {
  try {
    return await startServe(port, flags);
  } catch (error) {
    if (!(error instanceof DemoError && error.portInUse && flags.keep && port !== 0)) throw error;
    const serve = await startServe(0, flags);
    console.log(`Port ${port} is in use (a tally serve already running?): the demo's collector is on ${serve.url}\n`);
    return serve;
  }
}

async function api<T>(url: string): Promise<T> {
  const response = await fetch(url);
  if (!response.ok) throw new DemoError(`Cannot query the collector: ${url} answered ${response.status}`);
  return await response.json() as T;
}

// ---- the command line

interface Flags {
  keep: boolean;
  verbose: boolean;
  port: number | undefined;
  examples: string[];
}

const USAGE = "usage: deno task demo [--keep] [--port N] [--verbose] [EXAMPLE ...]";

function parseFlags(argv: string[]): Flags {
  const flags: Flags = { keep: false, verbose: false, port: undefined, examples: [] };
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    if (arg === "--keep") flags.keep = true;
    else if (arg === "--verbose") flags.verbose = true;
    else if (arg === "--port" || arg.startsWith("--port=")) {
      const value = arg === "--port" ? argv[++i] : arg.slice("--port=".length);
      const port = Number(value);
      if (value === undefined || value === "" || !Number.isInteger(port) || port < 0 || port > 65535) {
        throw new DemoError(`--port needs a port number from 0 to 65535, not ${value ?? "nothing"} (${USAGE})`, 2);
      }
      flags.port = port;
    } else if (arg.startsWith("-")) throw new DemoError(`unknown flag ${arg} (${USAGE})`, 2);
    else {
      const file = arg.endsWith(".ts") ? arg : `${arg}.ts`;
      if (!EXAMPLES.includes(file)) {
        throw new DemoError(`no example named ${arg}; the examples are ${EXAMPLES.join(", ")}`, 2);
      }
      flags.examples.push(file);
    }
  }
  return flags;
}

// ---- the demo

async function main(flags: Flags): Promise<number> {
  const examples = flags.examples.length > 0 ? flags.examples : EXAMPLES;
  const { url, child: serve } = await startCollector(flags.port ?? (flags.keep ? KEEP_PORT : 0), flags);
  const stats = () => api<Stats>(`${url}/api/stats`);
  console.log(`Tally demo: ${plural(examples.length, "example")} on ${runtime}, sending to tally serve at ${url}\n`);

  // One at a time, so each message is credited to the example that sent it.
  const runs: Run[] = [];
  for (const file of examples) {
    const before = (await stats()).total;
    const run = await runExample(file, url);
    const messages = (await stats()).total - before;
    // An example that exits cleanly but delivers nothing has failed too.
    runs.push({ ...run, ok: run.ok && messages > 0, messages });
  }

  console.log("Examples");
  const width = Math.max(...examples.map((f) => f.length));
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
    if ((flags.verbose || !run.ok) && run.output.trim() !== "") {
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

  // The tracking plan (examples/plan.json), as `tally plan check` and `tally serve --plan` apply it.
  const signedUp = (await api<{ events: Stored[] }>(`${url}/api/events?event=Signed%20Up&limit=1`)).events[0];
  if (signedUp !== undefined && shirt !== undefined) {
    const { loadPlan } = await import("../plan/load.ts");
    const { createChecker } = await import("../plan/check.ts");
    const checker = createChecker(await loadPlan(fileURLToPath(new URL("./plan.json", import.meta.url))));
    console.log("\nChecked against the tracking plan (examples/plan.json; tally plan check does this in CI)");
    for (const { message } of [signedUp, shirt]) {
      const violations = checker.check(message);
      const verdict = violations.length === 0
        ? "planned, keeps the plan"
        : violations.map((v) => `${v.category} at ${v.path}: ${v.message}`).join("; ");
      console.log(`  ${String(message.event).padEnd(14)} ${verdict}`);
    }
  }

  const failed = runs.filter((run) => !run.ok);
  const ok = failed.length === 0 && total.total > 0;
  console.log(
    ok
      ? `\nAll ${plural(examples.length, "example")} ok; ${plural(total.total, "message")} arrived, ${total.bad} bad.`
      : `\nFAILED: ${plural(failed.length, "example")} failed, ${plural(total.total, "message")} arrived`,
  );
  if (flags.keep) {
    console.log(`\nInspector: open ${url}/ in a browser to browse these messages.`);
    console.log(`The collector (pid ${serve.pid}) runs until Ctrl-C, which stops it and the demo.`);
    console.log(`Send more with TALLY_HOST=${url} TALLY_WRITE_KEY=${WRITE_KEY} (any example, or the tally CLI).`);
    await exited(serve);
    if (!stopping) console.log("The collector stopped.");
  } else {
    console.log("Run `npx deno task demo --keep` to keep the collector running and browse them in its live inspector.");
    await stopChildren(0);
  }
  return ok ? 0 : 1;
}

let code: number;
try {
  code = await main(parseFlags(process.argv.slice(2)));
} catch (error) {
  // One line, never a stack trace: what went wrong is the user's to fix (a flag, a port), or the collector's to say.
  console.error(`Cannot run the demo: ${error instanceof Error ? error.message : String(error)}`);
  code = error instanceof DemoError ? error.code : 1;
}
// A signal is being handled: it ends the demo once the children are stopped.
if (!stopping) process.exit(code);
