/**
 * `deno task bench`: runs DESIGN.md section 5's library figures side by side
 * on Deno, Bun and Node (the Node run uses a `bun build` bundle of the
 * driver), against a loopback sink in its own process, and writes
 * BENCHMARKS.md.
 *
 * Options: `--runtimes=deno,bun,node` (the default), `--sink=bun|node`
 * (default bun), `--out=BENCHMARKS.md`.
 *
 * Every child is a separate process: the sink, a load generator that measures
 * the sink's capacity, and per runtime one process per phase (the memory
 * phase three times, each fresh). Traffic stays on 127.0.0.1; the sink is
 * stopped at the end, even on failure.
 *
 * @module
 */
import {
  BURST,
  type CallsResult,
  type DeliveryResult,
  type DeliveryRun,
  type DriverResult,
  median,
  type MemoryResult,
  ROUNDS_CALLS,
  ROUNDS_DELIVERY,
  type SinkStats,
  WARMUP_ROUNDS,
} from "./common.ts";

type Runtime = "deno" | "bun" | "node";

import { benchCliSend, type CliSendResult } from "./cli.ts";
import { benchCollector, type CollectorBenchResult } from "./collector.ts";

const ROOT = new URL("..", import.meta.url).pathname;
const BIN = `${ROOT}node_modules/.bin/`;
const MEMORY_REPEATS = 3;
const CHILD_TIMEOUT_MS = 240_000;

const flag = (name: string, fallback: string): string =>
  Deno.args.find((a) => a.startsWith(`--${name}=`))?.slice(name.length + 3) ?? fallback;
const runtimes = flag("runtimes", "deno,bun,node").split(",") as Runtime[];
const sinkRuntime = flag("sink", "bun") as "bun" | "node";
const out = flag("out", `${ROOT}BENCHMARKS.md`);

const log = (line: string): void => console.error(`[bench] ${line}`);
/** `--tools=false` skips the CLI and collector figures (the library's alone take about 2.5 minutes). */
const tools = flag("tools", "true") !== "false";

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
    return [Deno.execPath(), ["run", "--allow-net=127.0.0.1", "--v8-flags=--expose-gc", "bench/driver.ts", ...args]];
  }
  if (runtime === "bun") return [`${BIN}bun`, ["bench/driver.ts", ...args]];
  return ["node", ["--expose-gc", ".bench/driver.mjs", ...args]];
}

interface ResultOf {
  calls: CallsResult;
  delivery: DeliveryResult;
  memory: MemoryResult;
}

async function drive<T extends keyof ResultOf>(
  runtime: Runtime,
  phase: T,
  url: string,
  ...extra: string[]
): Promise<ResultOf[T]> {
  const [cmd, args] = driverCommand(runtime, [phase, url, ...extra]);
  const lines = (await capture(cmd, args)).split("\n");
  const output = JSON.parse(lines[lines.length - 1]) as DriverResult;
  if (output.phase !== phase) throw new Error(`${runtime} ${phase}: got ${output.phase}`);
  return output.result as ResultOf[T];
}

interface RuntimeResults {
  calls?: CallsResult;
  delivery?: DeliveryResult;
  memory?: MemoryResult[];
  errors: string[];
}

// ---- the report

const TARGET_CALL_RATIO = 1.3;
const TARGET_CPU_RATIO = 1.2;
const TARGET_RSS_MB = 100;
const TARGET_GZIP = 0.15;
const ANCHOR_FLOOR_US: Record<Runtime, number> = { node: 3.4, deno: 1.7, bun: 0.6 };
const SEGMENT_EPS = 8100;

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

interface Figure {
  name: string;
  runtime: Runtime;
  pass: boolean;
  detail: string;
}

function report(
  m: Machine,
  loadAtEnd: string,
  capacity: Capacity | undefined,
  results: Partial<Record<Runtime, RuntimeResults>>,
  seconds: number,
): { markdown: string; figures: Figure[] } {
  const figures: Figure[] = [];
  const ran = runtimes.filter((r) => results[r] !== undefined);
  const lines: string[] = [];
  const push = (...more: string[]) => lines.push(...more);
  /** A table row for a figure that is missing, with the first error of the phase that makes it. */
  const missing = (phase: "calls" | "delivery" | "memory", r: Runtime) => {
    const phases = ["calls", "delivery", "memory"];
    const error = (results[r]?.errors ?? []).find((e) => e.startsWith(phase) || !phases.some((p) => e.startsWith(p)));
    return `| ${r} | missing: ${error?.replaceAll("|", "\\|").slice(0, 160) ?? "not run"} |`;
  };

  push(
    "# Benchmarks",
    "",
    "The library figures of DESIGN.md section 5, measured by `deno task bench` (bench/run.ts) side by side in one run",
    "on one machine. Ratios against a floor measured in the same process are the figures that count; absolute",
    "times move with the machine. This file is written by the bench; rerun it rather than editing it.",
    "",
    `- Date: ${m.date}`,
    `- Machine: ${m.cores} cores, ${m.cpu}, ${m.memory} RAM, ${m.kernel}`,
    `- Runtimes: ${ran.map((r) => m.versions[r] ?? r).join(", ")}`,
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
  );

  // Figure 1
  push(
    "## 1. Cost of one `track()` call in a 100k-call burst",
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
    figures.push({ name: "call cost", runtime: r, pass, detail: `${fixed(ratio)}x floor` });
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
      "posthog-node 8.5 µs.",
    "",
  );

  // Figure 2
  push(
    "## 2. Delivered events/s, 100k burst to the loopback sink",
    "",
    "Median over rounds, first call until `flush()` resolves; ratio = median over rounds of (library / fetch floor " +
      "in the same round). The target applies to the burst; the paced run (a `setTimeout(0)` every 1000 calls) is " +
      "shown beside it.",
    "",
    "| runtime | burst | paced | fetch floor | burst / floor | paced / floor | sink busy (max) | anchor | target " +
      "| result |",
    "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |",
  );
  const eps = (runs: DeliveryRun[]) => runs.map((x) => x.eventsPerSecond);
  const cpu = (runs: DeliveryRun[]) => runs.map((x) => x.cpuPerEvent);
  for (const r of ran) {
    const d = results[r]?.delivery;
    if (!d) {
      push(missing("delivery", r));
      continue;
    }
    const ratio = median(ratios(eps(d.burst), eps(d.floor)));
    const busy = Math.max(...[...d.floor, ...d.burst, ...d.paced].map((x) => x.sinkBusy));
    const pass = ratio >= 1;
    figures.push({ name: "events/s", runtime: r, pass, detail: `${fixed(ratio)}x fetch floor` });
    push(
      `| ${r} | ${k(median(eps(d.burst)))} | ${k(median(eps(d.paced)))} | ${k(median(eps(d.floor)))} | ` +
        `${paired(eps(d.burst), eps(d.floor))} | ${paired(eps(d.paced), eps(d.floor))} | ${pct(busy)} | ` +
        `${r === "node" ? "fetch floor 59k/s; " : ""}Segment 8.1k/s (library here: ` +
        `${fixed(median(eps(d.burst)) / SEGMENT_EPS, 1)}x) | >= 1.0x floor | ${verdict(pass)} |`,
    );
  }
  push(
    "",
    "Anchors (Node 20, DESIGN.md): @segment/analytics-node 8.1k/s, analytics-node 6 16.4k/s, posthog-node 15k/s.",
    "Every run is checked: the client's `stats().delivered` is 100000 and the sink counted 100000 messages.",
    "",
  );

  // Figure 3
  push(
    "## 3. Client CPU per delivered event",
    "",
    "`process.cpuUsage()` (user + system, all threads) over the same runs as figure 2, divided by 100000.",
    "",
    "| runtime | burst | paced | fetch floor | burst / floor | paced / floor | anchor | target | result |",
    "| --- | --- | --- | --- | --- | --- | --- | --- | --- |",
  );
  for (const r of ran) {
    const d = results[r]?.delivery;
    if (!d) {
      push(missing("delivery", r));
      continue;
    }
    const ratio = median(ratios(cpu(d.burst), cpu(d.floor)));
    const pass = ratio <= TARGET_CPU_RATIO;
    figures.push({ name: "CPU/event", runtime: r, pass, detail: `${fixed(ratio)}x fetch floor` });
    push(
      `| ${r} | ${fixed(median(cpu(d.burst)), 1)} µs | ${fixed(median(cpu(d.paced)), 1)} µs | ` +
        `${fixed(median(cpu(d.floor)), 1)} µs | ${paired(cpu(d.burst), cpu(d.floor))} | ` +
        `${paired(cpu(d.paced), cpu(d.floor))} | ` +
        `${r === "node" ? "fetch floor 15 µs; " : ""}Segment 142 µs | <= ${TARGET_CPU_RATIO}x floor | ${
          verdict(pass)
        } |`,
    );
  }
  push("");

  // Figure 4
  push(
    "## 4. Peak RSS during a 100k burst (maxQueueSize 100000)",
    "",
    `Sampled every 1024 calls during the burst and every 2 ms while \`flush()\` delivers it, in ${MEMORY_REPEATS} ` +
      "fresh processes per runtime; median shown (max in brackets). Baseline = RSS with the library loaded, before " +
      "the burst. Two references on the same runtime, each also in fresh processes: *hold* = the message floor's " +
      "100k strings kept in an array (what holding the burst as JS strings costs), *fetch* = the fetch floor " +
      "sending 100k.",
    "",
    "| runtime | library peak RSS | baseline | peak - baseline | reference: hold | reference: fetch | anchor " +
      "| target | result |",
    "| --- | --- | --- | --- | --- | --- | --- | --- | --- |",
  );
  for (const r of ran) {
    const all = results[r]?.memory ?? [];
    const runs = all.filter((x) => x.subject === "library");
    if (!runs.length) {
      push(missing("memory", r));
      continue;
    }
    const mb = (subject: MemoryResult["subject"]): string => {
      const peaks = all.filter((x) => x.subject === subject).map((x) => x.peak / MB);
      return peaks.length ? `${fixed(median(peaks), 1)} MB (${fixed(Math.max(...peaks), 1)})` : "n/a";
    };
    const peak = median(runs.map((x) => x.peak)) / MB;
    const baseline = median(runs.map((x) => x.baseline)) / MB;
    const pass = peak <= TARGET_RSS_MB;
    if (r === "node") figures.push({ name: "peak RSS", runtime: r, pass, detail: `${fixed(peak, 0)} MB` });
    push(
      `| ${r} | ${mb("library")} | ${fixed(baseline, 1)} MB | ${fixed(peak - baseline, 1)} MB | ${mb("hold")} | ` +
        `${mb("fetch")} | Segment 1.85 GB, analytics-node 6 344 MB | ` +
        `${r === "node" ? `<= ${TARGET_RSS_MB} MB` : `(Node only; ${TARGET_RSS_MB} MB for reference)`} | ` +
        `${r === "node" ? verdict(pass) : pass ? "within" : "over"} |`,
    );
  }
  push(
    "",
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
    figures.push({ name: "gzip", runtime: r, pass, detail: pct(ratio) });
    push(
      `| ${r} | ${g.plainBytes} B | ${g.wireBytes} B | ${fixed(g.plainBytes / g.messages, 0)} B / ` +
        `${fixed(g.wireBytes / g.messages, 0)} B | ${pct(ratio)} | <= ${pct(TARGET_GZIP)} | ${verdict(pass)} |`,
    );
  }
  push("");

  const missed = figures.filter((f) => !f.pass);
  push(
    "## Summary",
    "",
    missed.length === 0
      ? "Every target is met."
      : `Missed: ${missed.map((f) => `${f.name} on ${f.runtime} (${f.detail})`).join("; ")}.`,
    "",
  );
  const notRun = (["deno", "bun", "node"] as Runtime[]).filter((r) => !runtimes.includes(r));
  const failed = ran.filter((r) => (results[r]?.errors.length ?? 0) > 0);
  if (notRun.length || failed.length) {
    push("Missing figures:", "");
    for (const r of notRun) push(`- ${r}: not selected (--runtimes)`);
    for (const r of failed) push(`- ${r}: ${results[r]?.errors.join("; ")}`);
    push("");
  }

  push(
    "## How measured",
    "",
    "- One orchestrator (`bench/run.ts`, Deno) starts the sink, measures its capacity, then runs each runtime's " +
      "driver (`bench/driver.ts`; on Node a `bun build --target=node` bundle of it, `.bench/driver.mjs`) as a child " +
      "process per phase, each printing its result as one JSON line. Runtimes run one after another, never at once.",
    "- Messages: a pool of 1000 typical track inputs (200 users, 8 event names, 5 properties), seeded, the same on " +
      "every runtime; the library and both floors are fed the same inputs in the same order.",
    "- Message floor: per call `JSON.stringify` of an object literal `{type, messageId: crypto.randomUUID(), " +
      "timestamp: new Date().toISOString(), userId, event, properties, context: {library: {name, version}}}`, the " +
      "string kept in an array (as any queue keeps it). Library: a fresh client per round (`maxQueueSize: 100000`, " +
      "gzip off, host = the sink), 100k synchronous calls timed, then `close()` delivers them untimed. " +
      `${WARMUP_ROUNDS} warm-up round, then ${ROUNDS_CALLS} measured; the order of floor, positional and object ` +
      "style rotates each round; a full GC before each (`--expose-gc` on Deno and Node, `Bun.gc(true)` on Bun).",
    "- Fetch floor: build 100 messages as above, `JSON.stringify({batch, sentAt})`, `await fetch(POST)`, " +
      "`await response.text()`, one request at a time (Content-Type and Authorization headers). Library: a fresh " +
      "client (`maxQueueSize: 100000`, gzip off), 100k `track()` calls, `await flush()`; paced: the same with " +
      "`await new Promise(r => setTimeout(r, 0))` every 1000 calls. A 20k warm-up of each, then " +
      `${ROUNDS_DELIVERY} rounds, the order rotating. Timed from the first call until the last response (floor) or ` +
      "`flush()` resolving (library).",
    "- CPU: `process.cpuUsage()` delta in the client process over each run (all its threads: JIT, GC, the HTTP " +
      "stack). The sink's CPU is read from its `/stats` before and after each run: 'sink busy' is its share of one " +
      "core.",
    "- Memory: a fresh process per sample (library, hold, fetch; three times each): full GC, baseline RSS, then the " +
      "work, sampling `process.memoryUsage.rss()`; the figure is RSS, so it includes the runtime's own footprint.",
    '- Sink: `bench/sink.ts`, `node:http` on 127.0.0.1; reads every body, counts `"messageId":` occurrences and ' +
      'bytes (gunzipping gzip bodies), answers 200 `{"success":true}`. Capacity: `bench/load.ts` (Bun, 8 ' +
      "connections, 3 s, 100-message bodies) against it, with the sink's own CPU per request. The machine has 2 " +
      "cores: client and sink each get one, so the sink-busy column is what shows the sink was not the bottleneck.",
    "",
  );
  return { markdown: lines.join("\n"), figures };
}

// ---- the CLI and the collector

const mb = (x: number | undefined): string => x === undefined ? "n/a" : `${x.toFixed(0)} MB`;

function toolsReport(
  cli: CliSendResult | string | undefined,
  collector: CollectorBenchResult | string | undefined,
  figures: Figure[],
): string {
  const lines: string[] = ["## 6. `tally send` of 1M NDJSON lines", ""];
  if (typeof cli !== "object") lines.push(`Not measured: ${cli ?? "skipped"}.`, "");
  else {
    lines.push(
      "Wall clock from spawn to exit of `tally send` (validation, batching, delivery) reading a generated NDJSON " +
        "file of track messages; peak RSS of the tally process; the receiver counted every message. 100k-line " +
        "runs beside it show whether memory grows with the input.",
      "",
      "| runner | into | lines/s | peak RSS (1M lines) | peak RSS (100k lines) | received | target | result |",
      "| --- | --- | --- | --- | --- | --- | --- | --- |",
    );
    for (const run of cli.runs) {
      const small = cli.small.find((x) => x.runner === run.runner && x.sink === run.sink);
      const pass = run.linesPerSecond >= cli.target && run.received === run.lines;
      figures.push({
        name: `tally send (${run.runner} into ${run.sink})`,
        runtime: run.runner as Runtime,
        pass,
        detail: `${k(run.linesPerSecond)} (lines)`,
      } as Figure);
      lines.push(
        `| ${run.runner} | ${run.sink === "serve" ? "`tally serve`" : "bench/sink.ts"} | ${k(run.linesPerSecond)} | ` +
          `${mb(run.peakRssMb)} | ${mb(small?.peakRssMb)} | ${run.received} | >= 50k/s, flat memory | ` +
          `**${pass ? "pass" : "miss"}** |`,
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
      name: "tally serve ingest",
      runtime: collector.runtime as Runtime,
      pass: collector.pass,
      detail: `${k(collector.eventsPerSecond)} (events)`,
    } as Figure);
    lines.push(
      `The collector (${collector.runtime} ${collector.version}, its own process) under a load generator keeping ` +
        "8 requests of 100 valid track messages in flight for 3 s; every message is validated and stored. Target " +
        `>= ${collector.target / 1000}k events/s with the NDJSON file on (the \`tally serve\` default): ` +
        `**${collector.pass ? "pass" : "miss"}**.`,
      "",
      "| mode | events/s | requests | events stored | collector CPU (of one core) | NDJSON written |",
      "| --- | --- | --- | --- | --- | --- |",
      row("with --out (default)", collector.withFile),
      row("memory only", collector.memoryOnly),
      "",
    );
  }
  return lines.join("\n");
}

// ---- main

async function main(): Promise<void> {
  const started = performance.now();
  const m = await machine();
  log(`${m.date}; ${m.cores} cores, ${m.cpu}; ${runtimes.map((r) => m.versions[r] ?? `${r} (missing)`).join(", ")}`);
  const results: Partial<Record<Runtime, RuntimeResults>> = {};
  for (const r of runtimes) results[r] = { errors: [] };
  await Deno.mkdir(`${ROOT}.bench`, { recursive: true });
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
      entry.memory = [];
      for (let i = 0; i < MEMORY_REPEATS; i++) {
        for (const subject of ["library", "hold", "fetch"]) {
          const mem = await attempt(`memory ${subject}`, () => drive(r, "memory", sink.url, subject));
          if (mem) entry.memory.push(mem);
        }
      }
      entry.calls = await attempt("calls", () => drive(r, "calls", sink.url));
      if (entry.calls && entry.calls.delivered !== entry.calls.expected) {
        entry.errors.push(`calls: the sink counted ${entry.calls.delivered} of ${entry.calls.expected} messages`);
      }
      entry.delivery = await attempt("delivery", () => drive(r, "delivery", sink.url));
      const runs = entry.delivery ? [...entry.delivery.floor, ...entry.delivery.burst, ...entry.delivery.paced] : [];
      if (runs.some((x) => x.sinkMessages !== BURST || x.failed > 0)) {
        entry.errors.push("delivery: a run did not deliver exactly 100000 messages");
      }
    }
  } finally {
    Deno.removeSignalListener("SIGINT", stopOnSignal);
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
  const { markdown, figures } = report(m, await loadAverage(), capacity, results, seconds);
  const extra = tools ? toolsReport(cli, collector, figures) : "";
  await Deno.writeTextFile(out, markdown.replace(/\n## Summary/, `\n${extra}\n## Summary`));
  await Deno.writeTextFile(
    `${ROOT}.bench/results.json`,
    JSON.stringify({ machine: m, capacity, results, seconds }, null, 2),
  );
  log(`wrote ${out} and .bench/results.json in ${Math.round(seconds)} s`);
  for (const f of figures) log(`${f.pass ? "pass" : "MISS"}  ${f.name} on ${f.runtime}: ${f.detail}`);
}

await main();
