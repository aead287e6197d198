/**
 * `deno task bench`: runs DESIGN.md section 5's library figures side by side
 * on Deno, Bun and Node (the Node run uses a `bun build` bundle of the
 * driver), and on Node the peers (@segment/analytics-node, analytics-node 6,
 * posthog-node, from `bench/peers`) interleaved with Tally and the floors,
 * against a loopback sink in its own process, and writes BENCHMARKS.md.
 *
 * Options: `--runtimes=deno,bun,node` (the default), `--sink=bun|node`
 * (default bun), `--out=BENCHMARKS.md`, `--peers=false` (skip the peers),
 * `--tools=false` (skip the CLI and collector figures), `--report=.bench/results.json`
 * (rewrite the report from a past run's results, measuring nothing). For quick runs while
 * working on the bench: `TALLY_BENCH_BURST=5000 TALLY_BENCH_ROUNDS=1`.
 *
 * The peers are installed with `npm ci --prefix bench/peers` when
 * `bench/peers/node_modules` is missing. Every child is a separate process:
 * the sink, a load generator that measures the sink's capacity, and per
 * runtime one process per phase (the memory phase three times per subject,
 * each fresh). Traffic stays on 127.0.0.1; every child has a time limit, and
 * the sink is stopped at the end, even on failure or Ctrl-C.
 *
 * @module
 */
import {
  BURST,
  type CallsResult,
  type Client,
  type DeliveryResult,
  type DeliveryRun,
  type DriverResult,
  median,
  type MemoryResult,
  type MemorySubject,
  PEERS,
  type PeersResult,
  ROUNDS_CALLS,
  ROUNDS_DELIVERY,
  ROUNDS_PEERS,
  type SinkStats,
  WARMUP_ROUNDS,
} from "./common.ts";

type Runtime = "deno" | "bun" | "node";

import { benchCliSend, type CliSendResult } from "./cli.ts";
import { benchCollector, type CollectorBenchResult } from "./collector.ts";

const ROOT = new URL("..", import.meta.url).pathname;
const BIN = `${ROOT}node_modules/.bin/`;
const PEERS_DIR = `${ROOT}bench/peers`;
const MEMORY_REPEATS = 3;
const CHILD_TIMEOUT_MS = 240_000;
/** The peers phase runs @segment/analytics-node for about 25 s a round. */
const PEERS_TIMEOUT_MS = 1_200_000;
/** BENCHMARKS.md from this heading on is written by hand (profiles of missed targets) and kept across reruns. */
const NOTES_MARK = "## Notes (kept across reruns)";

const flag = (name: string, fallback: string): string =>
  Deno.args.find((a) => a.startsWith(`--${name}=`))?.slice(name.length + 3) ?? fallback;
const runtimes = flag("runtimes", "deno,bun,node").split(",") as Runtime[];
const sinkRuntime = flag("sink", "bun") as "bun" | "node";
const out = flag("out", `${ROOT}BENCHMARKS.md`);

const log = (line: string): void => console.error(`[bench] ${line}`);
/** `--tools=false` skips the CLI and collector figures (the library's alone take about 2.5 minutes). */
const tools = flag("tools", "true") !== "false";
/** `--peers=false` skips the peers on Node (they take about 9 minutes). */
const withPeers = flag("peers", "true") !== "false" && runtimes.includes("node");
/** "100k" for the DESIGN.md burst, the count otherwise. */
const burstLabel = BURST % 1000 === 0 ? `${BURST / 1000}k` : String(BURST);

/** Aborted on Ctrl-C: kills whatever child is running. */
const interrupted = new AbortController();

async function capture(cmd: string, args: string[], timeout = CHILD_TIMEOUT_MS): Promise<string> {
  const output = await new Deno.Command(cmd, {
    args,
    cwd: ROOT,
    stdout: "piped",
    stderr: "inherit",
    stdin: "null",
    signal: AbortSignal.any([AbortSignal.timeout(timeout), interrupted.signal]),
  }).output();
  const text = new TextDecoder().decode(output.stdout).trim();
  if (!output.success) throw new Error(`${cmd} ${args.join(" ")} exited with ${output.code}: ${text.slice(-300)}`);
  return text;
}

async function tryCapture(cmd: string, args: string[]): Promise<string | undefined> {
  try {
    return await capture(cmd, args, 20_000);
  } catch {
    return undefined;
  }
}

// ---- the machine

interface Machine {
  date: string;
  /** /proc/loadavg when the run started: other work on the machine shows here. */
  load: string;
  cores: string;
  cpu: string;
  memory: string;
  kernel: string;
  versions: Record<Runtime, string | undefined>;
}

async function loadAverage(): Promise<string> {
  return (await tryCapture("cat", ["/proc/loadavg"]))?.split(" ").slice(0, 3).join(" ") ?? "unknown";
}

async function machine(): Promise<Machine> {
  // Deno reads /proc only with --allow-all; a child process needs just --allow-run.
  const cpuinfo = (await tryCapture("grep", ["-m1", "model name", "/proc/cpuinfo"])) ?? "";
  const meminfo = (await tryCapture("grep", ["-m1", "MemTotal", "/proc/meminfo"])) ?? "";
  const kb = Number(/MemTotal:\s+(\d+)/.exec(meminfo)?.[1] ?? NaN);
  const bunVersion = await tryCapture(`${BIN}bun`, ["--version"]);
  const nodeVersion = await tryCapture("node", ["--version"]);
  return {
    date: (await tryCapture("date", ["-u"])) ?? new Date().toUTCString(),
    load: await loadAverage(),
    cores: (await tryCapture("nproc", [])) ?? String(navigator.hardwareConcurrency),
    cpu: /model name\s*:\s*(.+)/.exec(cpuinfo)?.[1]?.trim() ?? "unknown",
    memory: Number.isNaN(kb) ? "unknown" : `${(kb / 2 ** 20).toFixed(1)} GiB`,
    kernel: `${Deno.build.os} ${Deno.osRelease()} ${Deno.build.arch}`,
    versions: {
      deno: `Deno ${Deno.version.deno} (V8 ${Deno.version.v8})`,
      bun: bunVersion && `Bun ${bunVersion}`,
      node: nodeVersion && `Node ${nodeVersion.replace(/^v/, "")}`,
    },
  };
}

// ---- the sink

interface Sink {
  url: string;
  stats(): Promise<SinkStats>;
  stop(): Promise<void>;
}

async function startSink(): Promise<Sink> {
  let cmd: string;
  let args: string[];
  if (sinkRuntime === "node") {
    await capture(`${BIN}bun`, [
      "build",
      "bench/sink.ts",
      "--target=node",
      "--format=esm",
      "--outfile=.bench/sink.mjs",
    ]);
    [cmd, args] = ["node", [".bench/sink.mjs"]];
  } else {
    [cmd, args] = [`${BIN}bun`, ["bench/sink.ts"]];
  }
  const child = new Deno.Command(cmd, { args, cwd: ROOT, stdin: "piped", stdout: "piped", stderr: "inherit" }).spawn();
  const reader = child.stdout.pipeThrough(new TextDecoderStream()).getReader();
  let first = "";
  while (!first.includes("\n")) {
    const { value, done } = await reader.read();
    if (done) throw new Error("the sink exited before it listened");
    first += value;
  }
  reader.releaseLock();
  const url = `http://127.0.0.1:${JSON.parse(first).port}`;
  let stopped = false;
  return {
    url,
    async stats() {
      const response = await fetch(`${url}/stats`);
      return await response.json();
    },
    async stop() {
      if (stopped) return;
      stopped = true;
      await child.stdin.close().catch(() => {});
      const timer = setTimeout(() => child.kill("SIGKILL"), 3000);
      await child.status;
      clearTimeout(timer);
      await child.stdout.cancel().catch(() => {});
    },
  };
}

interface Capacity {
  eventsPerSecond: number;
  cpuPerRequest: number;
  busy: number;
  oneCoreEventsPerSecond: number;
}

async function sinkCapacity(sink: Sink): Promise<Capacity> {
  const s0 = await sink.stats();
  const load = JSON.parse(await capture(`${BIN}bun`, ["bench/load.ts", sink.url, "3", "8"]));
  const s1 = await sink.stats();
  const requests = s1.requests - s0.requests;
  const cpuPerRequest = (s1.cpu - s0.cpu) / requests;
  return {
    eventsPerSecond: load.messages / (load.ms / 1000),
    cpuPerRequest,
    busy: (s1.cpu - s0.cpu) / 1000 / (s1.now - s0.now),
    oneCoreEventsPerSecond: (1e6 / cpuPerRequest) * 100,
  };
}

// ---- the drivers

function driverCommand(runtime: Runtime, args: string[]): [string, string[]] {
  if (runtime === "deno") {
    return [Deno.execPath(), [
      "run",
      "--allow-net=127.0.0.1",
      "--allow-env=TALLY_BENCH_BURST,TALLY_BENCH_ROUNDS",
      "--v8-flags=--expose-gc",
      "bench/driver.ts",
      ...args,
    ]];
  }
  if (runtime === "bun") return [`${BIN}bun`, ["bench/driver.ts", ...args]];
  return ["node", ["--expose-gc", ".bench/driver.mjs", ...args]];
}

interface ResultOf {
  calls: CallsResult;
  delivery: DeliveryResult;
  memory: MemoryResult;
  peers: PeersResult;
}

async function drive<T extends keyof ResultOf>(
  runtime: Runtime,
  phase: T,
  url: string,
  ...extra: string[]
): Promise<ResultOf[T]> {
  const [cmd, args] = driverCommand(runtime, [phase, url, ...extra]);
  const lines = (await capture(cmd, args, phase === "peers" ? PEERS_TIMEOUT_MS : CHILD_TIMEOUT_MS)).split("\n");
  const output = JSON.parse(lines[lines.length - 1]) as DriverResult;
  if (output.phase !== phase) throw new Error(`${runtime} ${phase}: got ${output.phase}`);
  return output.result as ResultOf[T];
}

interface RuntimeResults {
  calls?: CallsResult;
  delivery?: DeliveryResult;
  memory?: MemoryResult[];
  /** Node only: the peers beside Tally. */
  peers?: PeersResult;
  errors: string[];
}

/**
 * Installs the peers from bench/peers/package-lock.json when bench/peers/node_modules is missing (npm ci: the
 * exact versions, nothing else); the reason it could not, otherwise.
 */
async function ensurePeers(): Promise<string | undefined> {
  try {
    await Deno.stat(`${PEERS_DIR}/node_modules`);
    return undefined;
  } catch {
    log("bench/peers/node_modules is missing: installing the peers with npm ci --prefix bench/peers");
  }
  try {
    await capture("npm", ["ci", "--prefix", "bench/peers", "--no-audit", "--no-fund"], 300_000);
    return undefined;
  } catch (error) {
    return `cannot install the peers (npm ci --prefix bench/peers): ${(error as Error).message}`;
  }
}

// ---- the report

const TARGET_CALL_RATIO = 1.3;
const TARGET_CPU_RATIO = 1.2;
const TARGET_RSS_HOLD = 1.1;
const TARGET_GZIP = 0.15;
const TARGET_SEGMENT_EPS = 7;
const ANCHOR_FLOOR_US: Record<Runtime, number> = { node: 3.4, deno: 1.7, bun: 0.6 };

const MB = 2 ** 20;
const fixed = (n: number, digits = 2): string => n.toFixed(digits);
const k = (n: number): string => `${(n / 1000).toFixed(1)}k/s`;
const pct = (n: number): string => `${(n * 100).toFixed(1)}%`;
const verdict = (pass: boolean): string => pass ? "**pass**" : "**miss**";
const range = (values: number[], digits = 2): string =>
  `${fixed(Math.min(...values), digits)}–${fixed(Math.max(...values), digits)}`;
const ratios = (a: number[], b: number[]): number[] => a.map((x, i) => x / b[i]);
/** The median of paired ratios, with their spread over rounds: "1.20x (1.05–1.31)". */
const paired = (a: number[], b: number[]): string => {
  const r = ratios(a, b);
  return `${fixed(median(r))}x (${range(r)})`;
};
const eps = (runs: DeliveryRun[]) => runs.map((x) => x.eventsPerSecond);
const cpu = (runs: DeliveryRun[]) => runs.map((x) => x.cpuPerEvent);
const calls = (runs: DeliveryRun[]) => runs.map((x) => x.callUs);
const settled = (runs: DeliveryRun[]) => runs.map((x) => x.callSettledUs);
const sum = (values: number[]): number => values.reduce((a, b) => a + b, 0);

/** One DESIGN.md section 5 target on one runtime: met, missed, or not measured (`pass` undefined). */
interface Figure {
  name: string;
  runtime: Runtime | "-";
  target: string;
  detail: string;
  pass: boolean | undefined;
}

/** Median peak RSS (bytes) of one memory subject's fresh processes, or undefined. */
function peakOf(all: MemoryResult[], subject: MemorySubject): number | undefined {
  const peaks = all.filter((x) => x.subject === subject).map((x) => x.peak);
  return peaks.length ? median(peaks) : undefined;
}

const clientLabel = (p: PeersResult, c: Client): string =>
  c === "tally" ? `**Tally** ${p.versions.tally}` : `${c} ${p.versions[c]}`;

/** The side-by-side tables: Tally and its peers on Node in one process, and Tally on Deno and Bun. */
function sideBySide(results: Partial<Record<Runtime, RuntimeResults>>, figures: Figure[]): string[] {
  const lines: string[] = [
    "## Side by side: Tally and the clients users would otherwise pick",
    "",
  ];
  const node = results.node;
  const p = node?.peers;
  if (!p) {
    const why = node?.errors.find((e) => e.startsWith("peers")) ??
      (withPeers ? "the Node runs did not complete" : "not selected (--peers=false or no node in --runtimes)");
    lines.push(`Not measured: ${why}.`, "");
    return lines;
  }
  const clients: Client[] = ["tally", ...PEERS];
  lines.push(
    `On Node (${p.rounds} round${
      p.rounds === 1 ? "" : "s"
    } in one process, after a warm-up of each): per round the message floor, the fetch ` +
      `floor, and for Tally and each peer a ${burstLabel}-call burst and a paced run (a \`setTimeout(0)\` every ` +
      "1000 calls), in an order that rotates from round to round; each client fresh for each run, all pointed at " +
      "the same sink, with the same inputs, batches of 100, the queue raised to hold the burst, gzip off. Medians " +
      "over rounds; ratios are medians of the ratios within each round (range in brackets). Tally on Deno and Bun: " +
      "the same measures from figures 1 to 5 (their own processes and floors).",
    "",
    "| client | runtime | `track()` in a burst | with its promise jobs | paced | burst / message floor | " +
      "delivered burst | paced | burst / fetch floor | CPU per event | CPU / fetch floor |",
    "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    `| message floor | node | ${fixed(median(p.messageFloor))} µs | | | 1.00x | | | | | |`,
    `| fetch floor | node | | | | | ${k(median(eps(p.fetchFloor)))} | | 1.00x | ` +
      `${fixed(median(cpu(p.fetchFloor)), 1)} µs | 1.00x |`,
  );
  for (const c of clients) {
    const b = p.burst[c];
    const pc = p.paced[c];
    lines.push(
      `| ${clientLabel(p, c)} | node | ${fixed(median(calls(b)))} µs | ${fixed(median(settled(b)))} µs | ` +
        `${fixed(median(calls(pc)))} µs | ${paired(calls(b), p.messageFloor)} | ${k(median(eps(b)))} | ` +
        `${k(median(eps(pc)))} | ${paired(eps(b), eps(p.fetchFloor))} | ${fixed(median(cpu(b)), 1)} µs | ` +
        `${paired(cpu(b), cpu(p.fetchFloor))} |`,
    );
  }
  for (const r of ["deno", "bun"] as Runtime[]) {
    const d = results[r]?.delivery;
    const c = results[r]?.calls;
    if (!d || !c) continue;
    lines.push(
      `| **Tally** ${p.versions.tally} | ${r} | ${fixed(median(c.positional))} µs | - | ` +
        `${fixed(median(calls(d.paced)))} µs | ${paired(c.positional, c.floor)} | ${k(median(eps(d.burst)))} | ` +
        `${k(median(eps(d.paced)))} | ${paired(eps(d.burst), eps(d.floor))} | ${fixed(median(cpu(d.burst)), 1)} µs | ` +
        `${paired(cpu(d.burst), cpu(d.floor))} |`,
    );
  }
  lines.push(
    "",
    "`track()` is the synchronous loop's time per call; *with its promise jobs* runs until a `setImmediate` after " +
      "the loop, which takes in the work a client defers to promise jobs (posthog-node builds each event in them; " +
      "@segment/analytics-node's own queue runs on timers, so even this leaves part of its per-event work to the " +
      "delivery figures). *Paced* is the calls alone, without the pauses. On Deno and Bun the burst's call cost and " +
      "its ratio are figure 1's (Tally defers no per-call work to promise jobs: on Node the two columns agree).",
    "",
    "| client | runtime | peak RSS | peak / hold | requests per burst | bytes per event | with gzip | gzip / plain | " +
      "duplicates at the sink |",
    "| --- | --- | --- | --- | --- | --- | --- | --- | --- |",
  );
  const memoryRow = (all: MemoryResult[], subject: MemorySubject): [string, string] => {
    const peak = peakOf(all, subject);
    const hold = peakOf(all, "hold");
    if (peak === undefined) return ["n/a", "n/a"];
    return [`${fixed(peak / MB, 1)} MB`, hold === undefined ? "n/a" : `${fixed(peak / hold)}x`];
  };
  const footprint = (
    label: string,
    r: Runtime,
    subject: MemorySubject,
    runs: DeliveryRun[],
    gzip: { wireBytes: number; plainBytes: number; messages: number } | undefined,
  ) => {
    const [peak, overHold] = memoryRow(results[r]?.memory ?? [], subject);
    const dups = sum(runs.map((x) => x.duplicates));
    const seen = sum(runs.map((x) => x.sinkMessages));
    return `| ${label} | ${r} | ${peak} | ${overHold} | ${median(runs.map((x) => x.sinkRequests))} | ` +
      `${fixed(median(runs.map((x) => x.plainBytes)) / BURST, 0)} B | ` +
      `${gzip ? `${fixed(gzip.wireBytes / gzip.messages, 0)} B` : "no gzip option"} | ` +
      `${gzip ? pct(gzip.wireBytes / gzip.plainBytes) : "-"} | ${dups} of ${seen} |`;
  };
  const holdNode = peakOf(node.memory ?? [], "hold");
  lines.push(
    `| hold (reference) | node | ${
      holdNode === undefined ? "n/a" : `${fixed(holdNode / MB, 1)} MB`
    } | 1.00x | | | | | |`,
  );
  for (const c of clients) {
    const w = p.wire[c];
    const gzip = w?.gzip && { ...w.gzip, messages: w.messages };
    lines.push(
      footprint(clientLabel(p, c), "node", c === "tally" ? "library" : c, [...p.burst[c], ...p.paced[c]], gzip),
    );
  }
  for (const r of ["deno", "bun"] as Runtime[]) {
    const d = results[r]?.delivery;
    if (!d) continue;
    lines.push(footprint(`**Tally** ${p.versions.tally}`, r, "library", [...d.burst, ...d.paced], d.gzip));
  }
  lines.push(
    "",
    `Peak RSS: fresh processes (${MEMORY_REPEATS} per client), a ${burstLabel}-call burst then its delivery, as ` +
      "figure 4. Requests and bytes: the burst runs as the sink received them (gzip off; bytes per event include " +
      "each client's batch envelope). With gzip: 10 batches of 100 with the client's gzip on (Tally's `gzip: " +
      "true`; posthog-node's default, which the other runs turn off with `disableCompression`); " +
      "@segment/analytics-node and analytics-node 6 have no gzip. Duplicates: messages whose id (`messageId`, or " +
      "posthog-node's `uuid`) the sink had already counted in the same run, over every burst and paced run.",
    "",
  );

  // Same-run ratios, Tally over each peer, round by round.
  const t = p.burst.tally;
  const tallyPeak = peakOf(node.memory ?? [], "library");
  const faster: string[] = [];
  for (const peer of PEERS) {
    const b = p.burst[peer];
    const peerPeak = peakOf(node.memory ?? [], peer);
    const memory = tallyPeak && peerPeak ? `${fixed(peerPeak / tallyPeak)}x` : "n/a";
    faster.push(
      `- ${peer} ${p.versions[peer]}: Tally delivers ${paired(eps(t), eps(b))} its events/s; it spends ` +
        `${paired(cpu(b), cpu(t))} Tally's CPU per event; its \`track()\` (with promise jobs) costs ` +
        `${paired(settled(b), settled(t))} Tally's; its peak RSS is ${memory} Tally's.`,
    );
  }
  const segment = ratios(eps(t), eps(p.burst["@segment/analytics-node"]));
  const pass = median(segment) >= TARGET_SEGMENT_EPS;
  figures.push({
    name: "events/s over @segment/analytics-node's",
    runtime: "node",
    target: `>= ${TARGET_SEGMENT_EPS}x`,
    detail: `${fixed(median(segment), 1)}x`,
    pass,
  });
  lines.push("Each peer beside Tally on Node, in the same rounds (bursts; per-round ratios):", "", ...faster, "");
  return lines;
}

function report(
  m: Machine,
  loadAtEnd: string,
  capacity: Capacity | undefined,
  results: Partial<Record<Runtime, RuntimeResults>>,
  seconds: number,
  figures: Figure[],
): string[] {
  const ran = runtimes.filter((r) => results[r] !== undefined);
  const lines: string[] = [];
  const push = (...more: string[]) => lines.push(...more);
  /** A table row for a figure that is missing, with the first error of the phase that makes it. */
  const missing = (phase: "calls" | "delivery" | "memory", r: Runtime) => {
    const phases = ["calls", "delivery", "memory", "peers"];
    const error = (results[r]?.errors ?? []).find((e) => e.startsWith(phase) || !phases.some((p) => e.startsWith(p)));
    return `| ${r} | missing: ${error?.replaceAll("|", "\\|").slice(0, 160) ?? "not run"} |`;
  };
  const peers = results.node?.peers;

  push(
    "# Benchmarks",
    "",
    "The library figures of DESIGN.md section 5, measured by `deno task bench` (bench/run.ts) side by side in one run",
    "on one machine, with the peers users would otherwise pick. Ratios against a floor measured in the same process",
    "are the figures that count; absolute times move with the machine. This file is written by the bench; rerun it",
    `rather than editing it (only the part from "${NOTES_MARK.slice(3)}" on is written by hand, and kept).`,
    "",
    `- Date: ${m.date}`,
    `- Machine: ${m.cores} cores, ${m.cpu}, ${m.memory} RAM, ${m.kernel}`,
    `- Runtimes: ${ran.map((r) => m.versions[r] ?? r).join(", ")}`,
    `- Peers (on Node, from bench/peers/package-lock.json): ${
      peers ? PEERS.map((c) => `${c} ${peers.versions[c]}`).join(", ") : "not measured"
    }`,
    `- Burst: ${BURST} calls; rounds: ${ROUNDS_CALLS} (calls), ${ROUNDS_DELIVERY} (delivery), ${ROUNDS_PEERS} ` +
      `(peers)${BURST === 100_000 ? "" : " (**not** the DESIGN.md size: TALLY_BENCH_BURST was set)"}`,
    `- Sink: node:http on ${sinkRuntime === "bun" ? m.versions.bun : m.versions.node}, its own process` +
      (capacity
        ? `; capacity ${fixed(capacity.eventsPerSecond / 1000, 1)}k events/s under 8-connection load while using ` +
          `${pct(capacity.busy)} of a core (${fixed(capacity.cpuPerRequest, 1)} µs CPU per 100-message request, ` +
          `so about ${fixed(capacity.oneCoreEventsPerSecond / 1000, 0)}k events/s on one full core)`
        : ""),
    `- Load average (1, 5, 15 min) at the start: ${m.load}; at the end: ${loadAtEnd}. The machine may be shared; ` +
      "the bench alone keeps the load near 1 to 2 (client plus sink); more means other work ran beside it, which is " +
      "why every figure is a ratio against a floor measured in the same process, in interleaved rounds.",
    `- Whole run: ${Math.round(seconds)} s`,
    "",
    ...sideBySide(results, figures),
  );

  // Figure 1
  push(
    `## 1. Cost of one \`track()\` call in a ${burstLabel}-call burst`,
    "",
    "Median µs per call over the measured rounds (range in brackets); ratio = median over rounds of " +
      "(track / floor in the same round), with its range over rounds.",
    "",
    "| runtime | `track(userId, event, props)` | object style `track({...})` | message floor | ratio (positional) " +
      "| ratio (object) | floor in DESIGN.md | target | result |",
    "| --- | --- | --- | --- | --- | --- | --- | --- | --- |",
  );
  for (const r of ran) {
    const c = results[r]?.calls;
    if (!c) {
      push(missing("calls", r));
      continue;
    }
    const ratio = median(ratios(c.positional, c.floor));
    const pass = ratio <= TARGET_CALL_RATIO;
    figures.push({
      name: "`track()` cost",
      runtime: r,
      target: `<= ${TARGET_CALL_RATIO}x message floor`,
      detail: `${fixed(ratio)}x (${fixed(median(c.positional))} µs over ${fixed(median(c.floor))} µs)`,
      pass,
    });
    push(
      `| ${r} | ${fixed(median(c.positional))} µs (${range(c.positional)}) | ${fixed(median(c.object))} µs ` +
        `(${range(c.object)}) | ${fixed(median(c.floor))} µs (${range(c.floor)}) | ${
          paired(c.positional, c.floor)
        } | ` +
        `${paired(c.object, c.floor)} | ${ANCHOR_FLOOR_US[r]} µs | <= ${TARGET_CALL_RATIO}x | ${verdict(pass)} |`,
    );
  }
  push(
    "",
    "Anchors (Node 20, DESIGN.md): @segment/analytics-node 3.1.0 27.7 µs, analytics-node 6 45.7 µs, " +
      "posthog-node 8.5 µs; measured in this run: the side-by-side table.",
    "",
  );

  // Figure 2
  push(
    `## 2. Delivered events/s, ${burstLabel} burst to the loopback sink`,
    "",
    "Median over rounds, first call until `flush()` resolves; ratio = median over rounds of (library / fetch floor " +
      "in the same round). The target applies to the burst; the paced run (a `setTimeout(0)` every 1000 calls) is " +
      "shown beside it.",
    "",
    "| runtime | burst | paced | fetch floor | burst / floor | paced / floor | sink busy (max) | target | result |",
    "| --- | --- | --- | --- | --- | --- | --- | --- | --- |",
  );
  for (const r of ran) {
    const d = results[r]?.delivery;
    if (!d) {
      push(missing("delivery", r));
      continue;
    }
    const ratio = median(ratios(eps(d.burst), eps(d.floor)));
    const busy = Math.max(...[...d.floor, ...d.burst, ...d.paced].map((x) => x.sinkBusy));
    const pass = ratio >= 1;
    figures.push({
      name: "delivered events/s",
      runtime: r,
      target: ">= 1.0x fetch floor",
      detail: `${fixed(ratio)}x (${k(median(eps(d.burst)))} over ${k(median(eps(d.floor)))})`,
      pass,
    });
    push(
      `| ${r} | ${k(median(eps(d.burst)))} | ${k(median(eps(d.paced)))} | ${k(median(eps(d.floor)))} | ` +
        `${paired(eps(d.burst), eps(d.floor))} | ${paired(eps(d.paced), eps(d.floor))} | ${pct(busy)} | ` +
        `>= 1.0x floor | ${verdict(pass)} |`,
    );
  }
  // The peers' figure (from the side-by-side section) reads best beside these.
  const versusSegment = figures.findIndex((f) => f.name.startsWith("events/s over"));
  if (versusSegment >= 0) figures.push(...figures.splice(versusSegment, 1));
  push(
    "",
    "Anchors (Node 20, DESIGN.md): @segment/analytics-node 8.1k/s, analytics-node 6 16.4k/s, posthog-node 15k/s, " +
      "fetch floor 59k/s; measured in this run: the side-by-side table.",
    `Every run is checked: the sink counted ${BURST} distinct messages and the client reported no failure.`,
    "",
  );

  // Figure 3
  push(
    "## 3. Client CPU per delivered event",
    "",
    `\`process.cpuUsage()\` (user + system, all threads) over the same runs as figure 2, divided by ${BURST}.`,
    "",
    "| runtime | burst | paced | fetch floor | burst / floor | paced / floor | target | result |",
    "| --- | --- | --- | --- | --- | --- | --- | --- |",
  );
  for (const r of ran) {
    const d = results[r]?.delivery;
    if (!d) {
      push(missing("delivery", r));
      continue;
    }
    const ratio = median(ratios(cpu(d.burst), cpu(d.floor)));
    const pass = ratio <= TARGET_CPU_RATIO;
    figures.push({
      name: "client CPU per event",
      runtime: r,
      target: `<= ${TARGET_CPU_RATIO}x fetch floor`,
      detail: `${fixed(ratio)}x (${fixed(median(cpu(d.burst)), 1)} µs over ${fixed(median(cpu(d.floor)), 1)} µs)`,
      pass,
    });
    push(
      `| ${r} | ${fixed(median(cpu(d.burst)), 1)} µs | ${fixed(median(cpu(d.paced)), 1)} µs | ` +
        `${fixed(median(cpu(d.floor)), 1)} µs | ${paired(cpu(d.burst), cpu(d.floor))} | ` +
        `${paired(cpu(d.paced), cpu(d.floor))} | <= ${TARGET_CPU_RATIO}x floor | ${verdict(pass)} |`,
    );
  }
  push("", "Anchors (Node 20, DESIGN.md): @segment/analytics-node 142 µs, fetch floor 15 µs.", "");

  // Figure 4
  push(
    `## 4. Peak RSS during a ${burstLabel} burst (maxQueueSize ${BURST})`,
    "",
    `Sampled every 1024 calls during the burst and every 2 ms while \`flush()\` delivers it, in ${MEMORY_REPEATS} ` +
      "fresh processes per runtime; median shown (max in brackets). Baseline = RSS with the library loaded, before " +
      `the burst. Two references on the same runtime, each also in fresh processes: *hold* = the message floor's ` +
      `${burstLabel} strings kept in an array (what holding the burst as JS strings costs; the target's reference), ` +
      `*fetch* = the fetch floor sending ${burstLabel}. *Growth* = peak - baseline.`,
    "",
    "| runtime | library peak RSS | baseline | growth | reference: hold | hold's growth | reference: fetch | " +
      "peak / hold | target | result |",
    "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |",
  );
  for (const r of ran) {
    const all = results[r]?.memory ?? [];
    const runs = all.filter((x) => x.subject === "library");
    const holds = all.filter((x) => x.subject === "hold");
    if (!runs.length || !holds.length) {
      push(missing("memory", r));
      continue;
    }
    const mb = (subject: MemoryResult["subject"]): string => {
      const peaks = all.filter((x) => x.subject === subject).map((x) => x.peak / MB);
      return peaks.length ? `${fixed(median(peaks), 1)} MB (${fixed(Math.max(...peaks), 1)})` : "n/a";
    };
    const peak = median(runs.map((x) => x.peak)) / MB;
    const baseline = median(runs.map((x) => x.baseline)) / MB;
    const hold = median(holds.map((x) => x.peak)) / MB;
    const holdGrowth = median(holds.map((x) => x.peak - x.baseline)) / MB;
    const ratio = peak / hold;
    const pass = ratio <= TARGET_RSS_HOLD;
    figures.push({
      name: "peak RSS",
      runtime: r,
      target: `<= ${TARGET_RSS_HOLD}x hold`,
      detail: `${fixed(ratio)}x (${fixed(peak, 0)} MB over ${fixed(hold, 0)} MB)`,
      pass,
    });
    push(
      `| ${r} | ${mb("library")} | ${fixed(baseline, 1)} MB | ${fixed(peak - baseline, 1)} MB | ${mb("hold")} | ` +
        `${fixed(holdGrowth, 1)} MB | ${mb("fetch")} | ${fixed(ratio)}x | <= ${TARGET_RSS_HOLD}x | ${verdict(pass)} |`,
    );
  }
  push(
    "",
    "Anchors (Node 20, DESIGN.md): @segment/analytics-node 1.85 GB, analytics-node 6 344 MB; measured in this run: " +
      "the side-by-side table.",
    `The library's peak was seen during: ${
      ran.map((r) =>
        `${r} ${
          (results[r]?.memory ?? []).filter((x) => x.subject === "library").map((x) =>
            x.peakDuring
          ).join("/") ||
          "(no run)"
        }`
      ).join("; ")
    }.`,
    "",
  );

  // Figure 5
  push(
    "## 5. gzip bytes on the wire, typical track batch",
    "",
    "A `gzip: true` client sends 10 batches of 100 typical track messages; the sink counts the bytes as they arrive " +
      "and after gunzip (the whole body: batch, sentAt, writeKey).",
    "",
    "| runtime | plain JSON | on the wire | per message (plain / gzip) | ratio | target | result |",
    "| --- | --- | --- | --- | --- | --- | --- |",
  );
  for (const r of ran) {
    const g = results[r]?.delivery?.gzip;
    if (!g) {
      push(missing("delivery", r));
      continue;
    }
    const ratio = g.wireBytes / g.plainBytes;
    const pass = ratio <= TARGET_GZIP;
    figures.push({
      name: "gzip bytes",
      runtime: r,
      target: `<= ${pct(TARGET_GZIP)} of plain`,
      detail: pct(ratio),
      pass,
    });
    push(
      `| ${r} | ${g.plainBytes} B | ${g.wireBytes} B | ${fixed(g.plainBytes / g.messages, 0)} B / ` +
        `${fixed(g.wireBytes / g.messages, 0)} B | ${pct(ratio)} | <= ${pct(TARGET_GZIP)} | ${verdict(pass)} |`,
    );
  }
  push("");
  figures.push({
    name: "with the disk queue on",
    runtime: "-",
    target: "`track()` <= 2x, events/s >= 0.8x the memory queue's",
    detail: 'measured by bench/storage.ts, not in this run: see "Durable delivery (storage)" below',
    pass: undefined,
  });
  return lines;
}

/** The targets, met or missed, each with its measured figure; and what could not be measured. */
function summary(results: Partial<Record<Runtime, RuntimeResults>>, figures: Figure[]): string[] {
  const lines = [
    "## DESIGN.md section 5 targets",
    "",
    "| figure | runtime | target | measured | result |",
    "| --- | --- | --- | --- | --- |",
    ...figures.map((f) =>
      `| ${f.name} | ${f.runtime} | ${f.target} | ${f.detail} | ${
        f.pass === undefined ? "not measured" : verdict(f.pass)
      } |`
    ),
    "",
  ];
  const missed = figures.filter((f) => f.pass === false);
  lines.push(
    missed.length === 0
      ? "Every measured target is met."
      : `Missed: ${missed.map((f) => `${f.name} on ${f.runtime} (${f.detail})`).join("; ")}.`,
    "",
  );
  const ran = runtimes.filter((r) => results[r] !== undefined);
  const notRun = (["deno", "bun", "node"] as Runtime[]).filter((r) => !runtimes.includes(r));
  const failed = ran.filter((r) => (results[r]?.errors.length ?? 0) > 0);
  if (notRun.length || failed.length) {
    lines.push("Missing figures:", "");
    for (const r of notRun) lines.push(`- ${r}: not selected (--runtimes)`);
    for (const r of failed) lines.push(`- ${r}: ${results[r]?.errors.join("; ")}`);
    lines.push("");
  }
  return lines;
}

function howMeasured(): string[] {
  return [
    "## How measured",
    "",
    "- One orchestrator (`bench/run.ts`, Deno) starts the sink, measures its capacity, then runs each runtime's " +
    "driver (`bench/driver.ts`; on Node a `bun build --target=node` bundle of it, `.bench/driver.mjs`) as a child " +
    "process per phase, each printing its result as one JSON line. Runtimes run one after another, never at once.",
    "- Messages: a pool of 1000 typical track inputs (200 users, 8 event names, 5 properties), seeded, the same on " +
    "every runtime and for every client; the library, the peers and both floors are fed the same inputs in the " +
    "same order.",
    "- Message floor: per call `JSON.stringify` of an object literal `{type, messageId: crypto.randomUUID(), " +
    "timestamp: new Date().toISOString(), userId, event, properties, context: {library: {name, version}}}`, the " +
    "string kept in an array (as any queue keeps it). Library: a fresh client per round (`maxQueueSize: " +
    `${BURST}\`, gzip off, host = the sink), ${BURST} synchronous calls timed, then \`close()\` delivers them ` +
    `untimed. ${WARMUP_ROUNDS} warm-up round, then ${ROUNDS_CALLS} measured; the order of floor, positional and ` +
    "object style rotates each round; a full GC before each (`--expose-gc` on Deno and Node, `Bun.gc(true)` on Bun).",
    "- Fetch floor: build 100 messages as above, `JSON.stringify({batch, sentAt})`, `await fetch(POST)`, " +
    "`await response.text()`, one request at a time (Content-Type and Authorization headers). Library: a fresh " +
    `client (\`maxQueueSize: ${BURST}\`, gzip off), ${BURST} \`track()\` calls, \`await flush()\`; paced: the ` +
    "same with `await new Promise(r => setTimeout(r, 0))` every 1000 calls. A warm-up of a fifth of the burst of " +
    `each, then ${ROUNDS_DELIVERY} rounds, the order rotating. Timed from the first call until the last response ` +
    "(floor) or `flush()` resolving (library).",
    "- Peers (`bench/clients.ts`, Node only, installed in `bench/peers`): @segment/analytics-node `track({...})` " +
    "with `maxEventsInBatch: 100`, done when `flush()` resolves (it waits for every pending event); analytics-node " +
    "6 `track({...}, callback)` with `flushAt: 100` and its own keep-alive agent, done when every callback ran; " +
    "posthog-node `capture({distinctId, event, properties})` with `flushAt` and `maxBatchSize` 100, `maxQueueSize` " +
    "raised to the burst (its default of 1000 drops the oldest), `disableCompression` except for the gzip bytes, " +
    "done when its 'flush' events account for every event. Retries and timeouts at each client's defaults. Failures " +
    "are counted from each client's own reports (`onError`, 'error' events, callbacks).",
    "- CPU: `process.cpuUsage()` delta in the client process over each run (all its threads: JIT, GC, the HTTP " +
    "stack). The sink's CPU is read from its `/stats` before and after each run: 'sink busy' is its share of one " +
    "core.",
    "- Memory: a fresh process per sample (library, each peer, hold, fetch; three times each): full GC, baseline " +
    "RSS, then the work, sampling `process.memoryUsage.rss()`; the figure is RSS, so it includes the runtime's own " +
    "footprint.",
    "- Sink: `bench/sink.ts`, `node:http` on 127.0.0.1; reads every body (gunzipping gzip bodies), counts bytes and " +
    'messages by their id (`"messageId"` on `/v1/batch`, `"uuid"` on posthog-node\'s `/batch/` and `/e/`), keeps ' +
    'the ids of the current run to count duplicates, answers 200 `{"success":true}`. Capacity: `bench/load.ts` ' +
    "(Bun, 8 connections, 3 s, 100-message bodies) against it, with the sink's own CPU per request. The machine has " +
    "2 cores: client and sink each get one, so the sink-busy column is what shows the sink was not the bottleneck.",
    "",
    "## How to rerun",
    "",
    "```sh",
    "# everything (about 15 minutes on 2 cores; the peers are installed into bench/peers first if missing)",
    "deno task bench",
    "# the library figures and the peers only, without the CLI and collector figures",
    "deno task bench --tools=false",
    "# a quick look while changing the bench (not the DESIGN.md sizes; write elsewhere)",
    "TALLY_BENCH_BURST=5000 TALLY_BENCH_ROUNDS=1 deno task bench --tools=false --out=/tmp/bench.md",
    "# one runtime, no peers",
    "deno task bench --runtimes=bun --peers=false --tools=false",
    "```",
    "",
    "Raw results of the last run: `.bench/results.json` (not in git). Run it on a quiet machine: " +
    '`ps aux | grep -E "deno test|bun test|build_npm"` should show nothing else.',
    "",
  ];
}

// ---- the CLI and the collector

const mb = (x: number | undefined): string => x === undefined ? "n/a" : `${x.toFixed(0)} MB`;
/** "Flat memory": 10 times the lines within this factor of the smaller run's peak RSS. */
const FLAT_MEMORY = 1.5;

function toolsReport(
  cli: CliSendResult | string | undefined,
  collector: CollectorBenchResult | string | undefined,
  figures: Figure[],
): string[] {
  const lines: string[] = ["## 6. `tally send` of 1M NDJSON lines", ""];
  if (typeof cli !== "object") lines.push(`Not measured: ${cli ?? "skipped"}.`, "");
  else {
    lines.push(
      "Wall clock from spawn to exit of `tally send` (validation, batching, delivery) reading a generated NDJSON " +
        "file of track messages; peak RSS of the tally process; the receiver counted every message. 100k-line " +
        `runs beside it show whether memory grows with the input (flat: the 1M-line peak within ${FLAT_MEMORY}x ` +
        "of the 100k-line one).",
      "",
      "| runner | into | lines/s | peak RSS (1M lines) | peak RSS (100k lines) | received | target | result |",
      "| --- | --- | --- | --- | --- | --- | --- | --- |",
    );
    for (const run of cli.runs) {
      const small = cli.small.find((x) => x.runner === run.runner && x.sink === run.sink);
      const flat = run.peakRssMb === undefined || small?.peakRssMb === undefined ||
        run.peakRssMb <= FLAT_MEMORY * small.peakRssMb;
      const pass = run.linesPerSecond >= cli.target && run.received === run.lines && flat;
      figures.push({
        name: `\`tally send\` into ${run.sink === "serve" ? "`tally serve`" : "the sink"}`,
        runtime: run.runner as Runtime,
        target: ">= 50k lines/s, flat memory",
        detail: `${k(run.linesPerSecond)}; ${mb(run.peakRssMb)} (1M) vs ${mb(small?.peakRssMb)} (100k)`,
        pass,
      });
      lines.push(
        `| ${run.runner} | ${run.sink === "serve" ? "`tally serve`" : "bench/sink.ts"} | ${k(run.linesPerSecond)} | ` +
          `${mb(run.peakRssMb)} | ${mb(small?.peakRssMb)} | ${run.received} | >= 50k/s, flat memory | ` +
          `${verdict(pass)} |`,
      );
    }
    lines.push("");
  }
  lines.push("## 7. `tally serve` ingest", "");
  if (typeof collector !== "object") lines.push(`Not measured: ${collector ?? "skipped"}.`, "");
  else {
    const row = (label: string, r: CollectorBenchResult["withFile"]) =>
      `| ${label} | ${k(r.eventsPerSecond)} | ${r.requests} | ${r.events} | ${pct(r.cpu)} | ${
        r.outBytes > 0 ? `${(r.outBytes / 2 ** 20).toFixed(1)} MB` : "-"
      } |`;
    figures.push({
      name: "`tally serve` ingest",
      runtime: collector.runtime as Runtime,
      target: `>= ${collector.target / 1000}k events/s`,
      detail: `${k(collector.eventsPerSecond)} (with the NDJSON file)`,
      pass: collector.pass,
    });
    lines.push(
      `The collector (${collector.runtime} ${collector.version}, its own process) under a load generator keeping ` +
        "8 requests of 100 valid track messages in flight for 3 s; every message is validated and stored. Target " +
        `>= ${collector.target / 1000}k events/s with the NDJSON file on (the \`tally serve\` default): ` +
        `${verdict(collector.pass)}.`,
      "",
      "| mode | events/s | requests | events stored | collector CPU (of one core) | NDJSON written |",
      "| --- | --- | --- | --- | --- | --- |",
      row("with --out (default)", collector.withFile),
      row("memory only", collector.memoryOnly),
      "",
    );
  }
  return lines;
}

/** The hand-written part of the current BENCHMARKS.md (from {@linkcode NOTES_MARK} on), to keep across reruns. */
async function keptNotes(): Promise<string[]> {
  const text = await Deno.readTextFile(out).catch(() => "");
  const at = text.indexOf(NOTES_MARK);
  return at < 0 ? [] : [text.slice(at).trimEnd(), ""];
}

/** A run that did not deliver exactly the burst, once each, with no failure reported. */
function badRun(run: DeliveryRun): string | undefined {
  const distinct = run.sinkMessages - run.duplicates;
  if (distinct === BURST && run.failed === 0) return undefined;
  return `the sink counted ${distinct} distinct of ${BURST} messages (${run.duplicates} duplicates), ` +
    `${run.failed} failures reported`;
}

// ---- main

async function main(): Promise<void> {
  const started = performance.now();
  const m = await machine();
  log(`${m.date}; ${m.cores} cores, ${m.cpu}; ${runtimes.map((r) => m.versions[r] ?? `${r} (missing)`).join(", ")}`);
  if (BURST !== 100_000) log(`burst of ${BURST} (TALLY_BENCH_BURST): not the DESIGN.md size`);
  const results: Partial<Record<Runtime, RuntimeResults>> = {};
  for (const r of runtimes) results[r] = { errors: [] };
  await Deno.mkdir(`${ROOT}.bench`, { recursive: true });
  let peersError = withPeers ? await ensurePeers() : undefined;
  if (runtimes.includes("node")) {
    try {
      await capture(`${BIN}bun`, [
        "build",
        "bench/driver.ts",
        "--target=node",
        "--format=esm",
        "--outfile=.bench/driver.mjs",
      ]);
    } catch (error) {
      results.node!.errors.push(`cannot bundle the driver for Node: ${(error as Error).message}`);
    }
  }

  const sink = await startSink();
  const stopOnSignal = () => {
    interrupted.abort();
    void sink.stop().finally(() => Deno.exit(130));
  };
  Deno.addSignalListener("SIGINT", stopOnSignal);
  Deno.addSignalListener("SIGTERM", stopOnSignal);
  let capacity: Capacity | undefined;
  try {
    log(`sink on ${sink.url}; measuring its capacity`);
    capacity = await sinkCapacity(sink);
    log(
      `sink capacity ${k(capacity.eventsPerSecond)} at ${pct(capacity.busy)} of a core, ` +
        `${fixed(capacity.cpuPerRequest, 1)} µs CPU per request`,
    );
    for (const r of runtimes) {
      const entry = results[r]!;
      if (entry.errors.length > 0) continue;
      const attempt = async <T>(phase: string, fn: () => Promise<T>): Promise<T | undefined> => {
        log(`${r}: ${phase}`);
        try {
          return await fn();
        } catch (error) {
          entry.errors.push(`${phase}: ${(error as Error).message}`);
          log(`${r}: ${phase} failed: ${(error as Error).message}`);
          return undefined;
        }
      };
      const subjects: MemorySubject[] = ["library", "hold", "fetch"];
      if (r === "node" && withPeers && !peersError) subjects.push(...PEERS);
      entry.memory = [];
      for (let i = 0; i < MEMORY_REPEATS; i++) {
        for (const subject of subjects) {
          const mem = await attempt(`memory ${subject}`, () => drive(r, "memory", sink.url, subject, PEERS_DIR));
          if (!mem) continue;
          if (mem.delivered !== BURST) {
            entry.errors.push(`memory ${subject}: ${mem.delivered} of ${BURST} messages arrived`);
          }
          entry.memory.push(mem);
        }
      }
      entry.calls = await attempt("calls", () => drive(r, "calls", sink.url));
      if (entry.calls && entry.calls.delivered !== entry.calls.expected) {
        entry.errors.push(`calls: the sink counted ${entry.calls.delivered} of ${entry.calls.expected} messages`);
      }
      entry.delivery = await attempt("delivery", () => drive(r, "delivery", sink.url));
      const runs = entry.delivery ? [...entry.delivery.floor, ...entry.delivery.burst, ...entry.delivery.paced] : [];
      const bad = runs.map(badRun).find((x) => x !== undefined);
      if (bad) entry.errors.push(`delivery: a run was not clean: ${bad}`);
      if (r === "node" && withPeers) {
        if (peersError) entry.errors.push(`peers: ${peersError}`);
        else {
          entry.peers = await attempt("peers", () => drive(r, "peers", sink.url, PEERS_DIR));
          peersError = entry.peers ? undefined : "failed";
          for (const c of ["tally", ...PEERS] as Client[]) {
            for (const [kind, list] of [["burst", entry.peers?.burst[c]], ["paced", entry.peers?.paced[c]]] as const) {
              const problem = (list ?? []).map(badRun).find((x) => x !== undefined);
              if (problem) entry.errors.push(`peers: ${c} ${kind}: ${problem}`);
            }
          }
        }
      }
    }
  } finally {
    Deno.removeSignalListener("SIGINT", stopOnSignal);
    Deno.removeSignalListener("SIGTERM", stopOnSignal);
    await sink.stop();
  }

  let cli: CliSendResult | string | undefined;
  let collector: CollectorBenchResult | string | undefined;
  if (tools) {
    log("tally serve ingest");
    collector = await benchCollector().catch((error) => `failed: ${(error as Error).message}`);
    log("tally send of 1M lines");
    cli = await benchCliSend({ log }).catch((error) => `failed: ${(error as Error).message}`);
  }

  const seconds = (performance.now() - started) / 1000;
  const saved: Saved = { machine: m, loadAtEnd: await loadAverage(), capacity, results, cli, collector, seconds };
  await Deno.writeTextFile(`${ROOT}.bench/results.json`, JSON.stringify(saved, null, 2));
  await write(saved);
}

/** What a run measured, as `.bench/results.json` keeps it. */
interface Saved {
  machine: Machine;
  loadAtEnd: string;
  capacity: Capacity | undefined;
  results: Partial<Record<Runtime, RuntimeResults>>;
  cli: CliSendResult | string | undefined;
  collector: CollectorBenchResult | string | undefined;
  seconds: number;
}

/** Writes BENCHMARKS.md (or `--out`) from a run's results, and logs each target met or missed. */
async function write(saved: Saved): Promise<void> {
  const { machine: m, loadAtEnd, capacity, results, cli, collector, seconds } = saved;
  const figures: Figure[] = [];
  const markdown = [
    ...report(m, loadAtEnd, capacity, results, seconds, figures),
    ...(cli !== undefined || collector !== undefined ? toolsReport(cli, collector, figures) : []),
    ...summary(results, figures),
    ...howMeasured(),
    ...await keptNotes(),
  ].join("\n");
  await Deno.writeTextFile(out, markdown);
  log(`wrote ${out} (results of the run in .bench/results.json); whole run ${Math.round(seconds)} s`);
  for (const f of figures) {
    log(`${f.pass === undefined ? "n/a " : f.pass ? "pass" : "MISS"}  ${f.name} on ${f.runtime}: ${f.detail}`);
  }
}

/** `--report=.bench/results.json` rewrites the report from a past run's results, measuring nothing. */
const reportOnly = flag("report", "");
if (reportOnly) await write(JSON.parse(await Deno.readTextFile(reportOnly)) as Saved);
else await main();
