/**
 * `tally send` of 1M NDJSON lines into a local receiver (DESIGN.md section 5:
 * >= 50k lines/s, flat memory): lines per second (wall clock, process start
 * to exit) and the child's peak RSS, for each way tally runs here (the
 * compiled binary, `deno run cli.ts`, `bun cli.ts`), into the loopback sink
 * the library benches use (bench/sink.ts under Bun) and into `tally serve`.
 * A 100k-line run beside each 1M one shows whether memory grows with input.
 *
 * Run alone: `node_modules/.bin/deno run --allow-net=127.0.0.1 --allow-run --allow-read --allow-write
 * --allow-env bench/cli.ts` (prints the result as JSON); `bench/run.ts` calls {@linkcode benchCliSend}.
 *
 * @module
 */
import { type ChildProcess, spawn } from "node:child_process";
import { closeSync, existsSync, mkdirSync, openSync, readFileSync, statSync, writeSync } from "node:fs";
import process from "node:process";
import { fileURLToPath } from "node:url";

const ROOT = fileURLToPath(new URL("..", import.meta.url));
const BIN = `${ROOT}node_modules/.bin/`;
const DATA_DIR = `${ROOT}.bench`;
const WRITE_KEY = "bench-write-key";
const GNU_TIME = "/usr/bin/time";
const PEAK_MARK = "bench-peak-rss-kb=";
const CHILD_TIMEOUT_MS = 180_000;

/** The DESIGN.md target. */
export const TARGET_LINES_PER_SECOND = 50_000;

/** One way of running tally. */
export type Runner = "binary" | "deno" | "bun";
/** Where it sends: bench/sink.ts, or `tally serve`. */
export type Sink = "sink" | "serve";

/** One `tally send` run. */
export interface CliSendRun {
  runner: Runner;
  sink: Sink;
  lines: number;
  /** Wall clock from spawn to exit. */
  seconds: number;
  linesPerSecond: number;
  /** Peak RSS of the tally process, MB (undefined where neither GNU time nor /proc is readable). */
  peakRssMb: number | undefined;
  /** Messages the receiver counted. */
  received: number;
  exitCode: number | null;
}

/** What {@linkcode benchCliSend} measured. */
export interface CliSendResult {
  lines: number;
  target: number;
  /** The 1M-line runs. */
  runs: CliSendRun[];
  /** The same runs with 100k lines, for the memory comparison. */
  small: CliSendRun[];
}

/** Options of {@linkcode benchCliSend}. */
export interface CliSendOptions {
  /** @default {1_000_000} */
  lines?: number;
  /** @default {["binary", "deno", "bun"]} (binary only when ./tally or $TALLY_BIN exists) */
  runners?: Runner[];
  /** @default {["sink", "serve"]} */
  sinks?: Sink[];
  /** Progress lines go here. @default {console.error} */
  log?: (line: string) => void;
}

function command(runner: Runner): [string, string[]] {
  if (runner === "binary") return [process.env.TALLY_BIN ?? `${ROOT}tally`, []];
  if (runner === "deno") return [`${BIN}deno`, ["run", "--allow-net", "--allow-read", "--allow-env", `${ROOT}cli.ts`]];
  return [`${BIN}bun`, [`${ROOT}cli.ts`]];
}

/** The input: `lines` track messages of about 170 bytes, written once and reused. */
function inputFile(lines: number): string {
  mkdirSync(DATA_DIR, { recursive: true });
  const file = `${DATA_DIR}/cli_send_${lines}.ndjson`;
  if (existsSync(file) && statSync(file).size > 0) return file;
  const fd = openSync(file, "w");
  const BLOCK = 50_000;
  for (let block = 0; block < lines; block += BLOCK) {
    let text = "";
    for (let i = block; i < Math.min(lines, block + BLOCK); i++) {
      text +=
        `{"type":"track","userId":"user-${i % 5000}","event":"Order Completed","properties":{"orderId":"o-${i}",` +
        `"revenue":${(i % 1000) / 10},"currency":"USD"},"timestamp":"${
          new Date(1_700_000_000_000 + i * 1000).toISOString()
        }"}\n`;
    }
    writeSync(fd, text);
  }
  closeSync(fd);
  return file;
}

interface Receiver {
  url: string;
  received(): Promise<number>;
  stop(): Promise<void>;
}

function waitForLine(child: ChildProcess, pattern: RegExp): Promise<RegExpExecArray> {
  return new Promise((resolve, reject) => {
    let output = "";
    const timer = setTimeout(() => reject(new Error(`no ${pattern} from the receiver: ${output}`)), 15_000);
    const onData = (chunk: Buffer) => {
      output += chunk;
      const m = pattern.exec(output);
      if (m) {
        clearTimeout(timer);
        child.stdout!.off("data", onData);
        child.stdout!.resume();
        resolve(m);
      }
    };
    child.stdout!.on("data", onData);
    child.on("close", () => reject(new Error(`the receiver exited: ${output}`)));
  });
}

function exited(child: ChildProcess): Promise<void> {
  return child.exitCode !== null ? Promise.resolve() : new Promise((resolve) => child.once("close", () => resolve()));
}

async function startReceiver(sink: Sink, runner: Runner): Promise<Receiver> {
  if (sink === "sink") {
    const child = spawn(`${BIN}bun`, [`${ROOT}bench/sink.ts`], { cwd: ROOT, stdio: ["pipe", "pipe", "inherit"] });
    const m = await waitForLine(child, /\{"port":(\d+)\}/);
    const url = `http://127.0.0.1:${m[1]}`;
    return {
      url,
      received: async () => (await (await fetch(`${url}/stats`)).json()).messages,
      stop: async () => {
        child.stdin!.end();
        await exited(child);
      },
    };
  }
  const [cmd, pre] = command(runner);
  const child = spawn(cmd, [...pre, "serve", "--port", "0", "--no-out", "--quiet"], {
    cwd: ROOT,
    stdio: ["ignore", "pipe", "inherit"],
  });
  const m = await waitForLine(child, /listening on (http:\/\/\S+)/);
  const url = m[1];
  return {
    url,
    received: async () => (await (await fetch(`${url}/api/stats`)).json()).total,
    stop: async () => {
      child.kill("SIGTERM");
      await exited(child);
    },
  };
}

function peakFromProc(pid: number): number | undefined {
  try {
    const m = /VmHWM:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, "utf8"));
    return m ? Number(m[1]) : undefined;
  } catch {
    return undefined;
  }
}

/** Runs `tally send FILE` once; peak RSS through GNU time when present, else by polling /proc. */
async function sendOnce(runner: Runner, sink: Sink, lines: number): Promise<CliSendRun> {
  const file = inputFile(lines);
  const receiver = await startReceiver(sink, runner);
  try {
    const [bin, pre] = command(runner);
    const args = [...pre, "send", "--write-key", WRITE_KEY, "--host", receiver.url, "--json", file];
    const timed = existsSync(GNU_TIME);
    const started = performance.now();
    const child = spawn(timed ? GNU_TIME : bin, timed ? ["-f", `${PEAK_MARK}%M`, bin, ...args] : args, {
      cwd: ROOT,
      stdio: ["ignore", "pipe", "pipe"],
    });
    let stderr = "";
    let stdout = "";
    child.stdout!.on("data", (chunk) => void (stdout += chunk));
    child.stderr!.on("data", (chunk) => void (stderr += chunk));
    let peakKb: number | undefined;
    const poll = timed ? undefined : setInterval(() => {
      const kb = child.pid === undefined ? undefined : peakFromProc(child.pid);
      if (kb !== undefined) peakKb = Math.max(peakKb ?? 0, kb);
    }, 20);
    const killer = setTimeout(() => child.kill("SIGKILL"), CHILD_TIMEOUT_MS);
    const exitCode = await new Promise<number | null>((resolve) => child.on("close", (code) => resolve(code)));
    const seconds = (performance.now() - started) / 1000;
    clearTimeout(killer);
    clearInterval(poll);
    if (timed) {
      const at = stderr.lastIndexOf(PEAK_MARK);
      if (at >= 0) peakKb = Number(stderr.slice(at + PEAK_MARK.length).trim());
      stderr = at >= 0 ? stderr.slice(0, at) : stderr;
    }
    if (exitCode !== 0) throw new Error(`tally send (${runner}) exited ${exitCode}: ${stderr.slice(-500)}`);
    return {
      runner,
      sink,
      lines,
      seconds: Math.round(seconds * 1000) / 1000,
      linesPerSecond: Math.round(lines / seconds),
      peakRssMb: peakKb === undefined ? undefined : Math.round(peakKb / 102.4) / 10,
      received: await receiver.received(),
      exitCode,
    };
  } finally {
    await receiver.stop();
  }
}

/** Measures `tally send` of 1M lines (and 100k, for memory) per runner and receiver. */
export async function benchCliSend(options: CliSendOptions = {}): Promise<CliSendResult> {
  const lines = options.lines ?? 1_000_000;
  const log = options.log ?? ((line: string) => console.error(`[bench cli] ${line}`));
  const binary = existsSync(process.env.TALLY_BIN ?? `${ROOT}tally`);
  const runners = options.runners ?? (binary ? ["binary", "deno", "bun"] : ["deno", "bun"]);
  const sinks = options.sinks ?? ["sink", "serve"];
  const runs: CliSendRun[] = [];
  const small: CliSendRun[] = [];
  for (const sink of sinks) {
    for (const runner of runners) {
      const smallLines = Math.max(1, Math.round(lines / 10));
      const s = await sendOnce(runner, sink, smallLines);
      small.push(s);
      const r = await sendOnce(runner, sink, lines);
      runs.push(r);
      log(
        `${runner} -> ${sink}: ${r.linesPerSecond} lines/s, peak RSS ${r.peakRssMb ?? "?"} MB ` +
          `(${s.peakRssMb ?? "?"} MB for ${smallLines} lines), received ${r.received}`,
      );
    }
  }
  return { lines, target: TARGET_LINES_PER_SECOND, runs, small };
}

if ((import.meta as { main?: boolean }).main) {
  const result = await benchCliSend();
  console.log(JSON.stringify(result, null, 2));
}
