/**
 * Collector ingest (DESIGN.md section 5: `tally serve` >= 100k events/s):
 * `tally serve` runs in its own process (Bun by default, as the `tally`
 * binary is built; `--runtime=deno|node` for the others) and the load
 * generator (`bench/load.ts` under Bun: 8 connections, bodies of 100 typical
 * track messages) keeps it busy for a few seconds. Events/s is what the
 * collector stored (checked and counted through `GET /api/stats`) over the
 * load's duration. Two runs: with the NDJSON file `tally serve` writes by
 * default, and memory only (`--no-out`). The collector's CPU share of one
 * core (it reports `process.cpuUsage()` over stdin) shows whether it, rather
 * than the load, was the limit.
 *
 * Run: `deno run --allow-net=127.0.0.1 --allow-run --allow-read --allow-write --allow-env bench/collector.ts
 * [--runtime=bun|deno|node] [--seconds=3]`. Prints the result as one JSON line.
 *
 * @module
 */
import { spawn } from "node:child_process";
import { mkdtempSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import process from "node:process";
import { fileURLToPath } from "node:url";

type Runtime = "bun" | "deno" | "node";

const ROOT = fileURLToPath(new URL("..", import.meta.url));
const BIN = join(ROOT, "node_modules", ".bin");
const SELF = fileURLToPath(import.meta.url);
/** DESIGN.md section 5. */
export const COLLECTOR_TARGET = 100_000;

/** Options of {@linkcode benchCollector}. */
export interface CollectorBenchOptions {
  /**
   * Runtime of the collector process.
   * @default {"bun"}
   */
  runtime?: Runtime;
  /**
   * Seconds of load per run.
   * @default {3}
   */
  seconds?: number;
  /**
   * Requests kept in flight by the load generator.
   * @default {8}
   */
  connections?: number;
}

/** One run: the collector under load. */
export interface CollectorRun {
  /** Messages the collector stored per second of load. */
  eventsPerSecond: number;
  requests: number;
  /** Messages stored, as `GET /api/stats` counted them (all good: the load sends valid messages). */
  events: number;
  good: number;
  ms: number;
  /** The collector's CPU over the run as a share of one core (1 = a full core: the collector was the limit). */
  cpu: number;
  /** Bytes of the NDJSON file after the run (0 when memory only). */
  outBytes: number;
}

/** The figure: events/s with the NDJSON file on (how `tally serve` runs by default), and memory only. */
export interface CollectorBenchResult {
  /** With `--out` (the `tally serve` default): the figure DESIGN.md section 5 sets a target for. */
  eventsPerSecond: number;
  target: number;
  pass: boolean;
  runtime: Runtime;
  version: string;
  withFile: CollectorRun;
  memoryOnly: CollectorRun;
}

interface Child {
  url: string;
  /** The collector process's CPU seconds (user + system) so far. */
  cpu(): Promise<number>;
  stop(): Promise<void>;
}

function command(runtime: Runtime, args: string[]): [string, string[]] {
  if (runtime === "deno") {
    return [join(BIN, "deno"), [
      "run",
      "--allow-net=127.0.0.1",
      "--allow-read",
      "--allow-write",
      "--allow-env",
      SELF,
      ...args,
    ]];
  }
  if (runtime === "bun") return [join(BIN, "bun"), [SELF, ...args]];
  return ["node", [join(ROOT, ".bench", "collector.mjs"), ...args]];
}

/** Node runs TypeScript only from Node 22: it runs a `bun build` bundle of this file. */
async function bundleForNode(): Promise<void> {
  await run(join(BIN, "bun"), [
    "build",
    SELF,
    "--target=node",
    "--format=esm",
    `--outfile=${join(ROOT, ".bench", "collector.mjs")}`,
  ]);
}

function run(cmd: string, args: string[]): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { cwd: ROOT, stdio: ["ignore", "pipe", "inherit"] });
    let out = "";
    child.stdout.on("data", (chunk) => void (out += chunk));
    child.on("error", reject);
    child.on("close", (code) => code === 0 ? resolve(out) : reject(new Error(`${cmd} ${args[0]} exited with ${code}`)));
  });
}

function startServe(runtime: Runtime, args: string[]): Promise<Child> {
  const [cmd, argv] = command(runtime, ["--serve", ...args]);
  const child = spawn(cmd, argv, { cwd: ROOT, stdio: ["pipe", "pipe", "inherit"] });
  return new Promise((resolve, reject) => {
    let out = "";
    const timer = setTimeout(() => {
      child.kill("SIGKILL");
      reject(new Error("the collector did not start within 20 s"));
    }, 20_000);
    child.on("error", reject);
    child.on("close", (code) => reject(new Error(`the collector exited with ${code} before listening: ${out}`)));
    child.stdout.on("data", (chunk) => {
      out += chunk;
      const match = /^Tally collector listening on (http:\/\/\S+)$/m.exec(out);
      if (!match) return;
      clearTimeout(timer);
      child.stdout.removeAllListeners("data");
      let answer: ((line: string) => void) | undefined;
      let pending = out.slice(match.index + match[0].length);
      child.stdout.on("data", (chunk) => {
        pending += chunk;
        for (let end = pending.indexOf("\n"); end >= 0; end = pending.indexOf("\n")) {
          const line = pending.slice(0, end);
          pending = pending.slice(end + 1);
          if (line.startsWith('{"cpu":')) answer?.(line);
        }
      });
      resolve({
        url: match[1],
        cpu: () =>
          new Promise((done) => {
            answer = (line) => done(Number(JSON.parse(line).cpu) / 1e6);
            child.stdin.write("cpu\n");
          }),
        stop: () =>
          new Promise((done) => {
            if (child.exitCode !== null || child.signalCode !== null) return done();
            child.removeAllListeners("close");
            child.on("close", () => done());
            child.kill("SIGTERM");
            setTimeout(() => child.kill("SIGKILL"), 5000).unref?.();
          }),
      });
    });
  });
}

async function measure(runtime: Runtime, serveArgs: string[], seconds: number, connections: number, out?: string) {
  const collector = await startServe(runtime, ["--port", "0", "--quiet", ...serveArgs]);
  try {
    // Warm up (JIT, connections), then forget it.
    await run(join(BIN, "bun"), [join(ROOT, "bench", "load.ts"), collector.url, "1", String(connections)]);
    const cleared = await fetch(`${collector.url}/api/events`, { method: "DELETE" });
    await cleared.body?.cancel();
    const cpu0 = await collector.cpu();
    const load = JSON.parse(
      await run(join(BIN, "bun"), [
        join(ROOT, "bench", "load.ts"),
        collector.url,
        String(seconds),
        String(connections),
      ]),
    ) as { requests: number; messages: number; ms: number };
    const cpu1 = await collector.cpu();
    const stats = await (await fetch(`${collector.url}/api/stats`)).json() as { total: number; good: number };
    if (stats.total !== load.messages) {
      throw new Error(`the load sent ${load.messages} messages but the collector stored ${stats.total}`);
    }
    await collector.stop();
    const result: CollectorRun = {
      eventsPerSecond: Math.round(stats.total / (load.ms / 1000)),
      requests: load.requests,
      events: stats.total,
      good: stats.good,
      ms: Math.round(load.ms),
      cpu: Math.round((cpu1 - cpu0) / (load.ms / 1000) * 1000) / 1000,
      outBytes: out === undefined ? 0 : statSync(out).size,
    };
    return result;
  } finally {
    await collector.stop();
  }
}

async function version(runtime: Runtime): Promise<string> {
  const [cmd, args] = runtime === "node" ? ["node", ["--version"]] : [join(BIN, runtime), ["--version"]];
  return (await run(cmd, args)).split("\n")[0].trim();
}

/**
 * Measures collector ingest in events/s on `runtime` (Bun by default), once with the NDJSON file on and once
 * memory only. Needs Bun (the load generator) and, for `node`, Node.
 *
 * @example
 * ```ts ignore
 * const result = await benchCollector();
 * console.log(`${result.eventsPerSecond} events/s (target ${result.target})`);
 * ```
 */
export async function benchCollector(options: CollectorBenchOptions = {}): Promise<CollectorBenchResult> {
  const runtime = options.runtime ?? "bun";
  const seconds = options.seconds ?? 3;
  const connections = options.connections ?? 8;
  if (runtime === "node") await bundleForNode();
  const dir = mkdtempSync(join(tmpdir(), "tally-collector-bench-"));
  try {
    const file = join(dir, "events.ndjson");
    const withFile = await measure(runtime, ["--out", file], seconds, connections, file);
    const memoryOnly = await measure(runtime, ["--no-out"], seconds, connections);
    return {
      eventsPerSecond: withFile.eventsPerSecond,
      target: COLLECTOR_TARGET,
      pass: withFile.eventsPerSecond >= COLLECTOR_TARGET,
      runtime,
      version: await version(runtime),
      withFile,
      memoryOnly,
    };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

if (import.meta.main || process.argv[1] === SELF) {
  const args = "Deno" in globalThis ? Deno.args : process.argv.slice(2);
  if (args[0] === "--serve") {
    // The bench asks for this process's CPU time over stdin: one "cpu" line, one JSON line back.
    let asked = "";
    process.stdin.on("data", (chunk) => {
      asked += chunk;
      for (let end = asked.indexOf("\n"); end >= 0; end = asked.indexOf("\n")) {
        asked = asked.slice(end + 1);
        const { user, system } = process.cpuUsage();
        process.stdout.write(JSON.stringify({ cpu: user + system }) + "\n");
      }
    });
    process.stdin.on("end", () => process.kill(process.pid, "SIGTERM"));
    const { serve } = await import("../serve/serve.ts");
    process.exitCode = await serve(args.slice(1));
  } else {
    const flag = (name: string): string | undefined =>
      args.find((a) => a.startsWith(`--${name}=`))?.slice(name.length + 3);
    const result = await benchCollector({
      runtime: flag("runtime") as Runtime | undefined,
      seconds: flag("seconds") === undefined ? undefined : Number(flag("seconds")),
    });
    console.log(JSON.stringify(result));
  }
}
