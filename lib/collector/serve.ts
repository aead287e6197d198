/**
 * `tally serve`: the collector as a command. Flags are checked first, by the
 * parser every tally command uses (cli/args.ts), so a bad one reads as it
 * does for `tally track` (one line naming it, exit code 2); then it listens,
 * prints where and which file it appends to, logs a line per request unless
 * `--quiet`, and runs until SIGINT or SIGTERM (or its output is lost), when
 * it stops cleanly (the NDJSON file flushed) and returns 0.
 */
import { mkdir } from "node:fs/promises";
import { dirname, resolve } from "node:path";
import process from "node:process";
import { flagHelp, type FlagSpec, parseArgs, UsageError } from "../../cli/args.ts";
import { startCollector } from "./server.ts";
import type { CollectorOptions } from "./types.ts";

/** Where `serve` writes, and what stops it; tests pass their own. */
export interface ServeIo {
  /** One line of output (stdout by default). */
  out(line: string): void;
  /** One line of diagnostics (stderr by default). */
  err(line: string): void;
  /** Stops the collector when aborted, besides SIGINT and SIGTERM. */
  signal?: AbortSignal;
}

/** The NDJSON file when no --out is given: in a folder of its own, which is created, and which .gitignore lists. */
export const DEFAULT_OUT = ".tally/events.ndjson";

const flag = (name: string, value: string, help: string): FlagSpec => ({ name, kind: "string", value, help });

/** The flags `tally serve` accepts. */
export const SERVE_FLAGS: readonly FlagSpec[] = [
  flag("port", "N", "port to listen on; 0 picks a free one (default 8787)"),
  flag("listen", "HOST", "address to bind (default 127.0.0.1; 0.0.0.0 exposes it to your network)"),
  flag("write-key", "KEY", "require this write key on every ingestion request (default: accept any)"),
  flag("out", "FILE", `append every message to this NDJSON file (default ${DEFAULT_OUT}, folder created)`),
  { name: "no-out", kind: "boolean", help: "keep messages in memory only (same as --out '')" },
  flag("max-events", "N", "messages kept in memory; the oldest are evicted beyond it (default 10000)"),
  flag("fail-rate", "R", "answer this fraction (0..1) of ingestion requests with --fail-status"),
  flag("fail-status", "CODE", "status of injected failures, 400..599 (default 500)"),
  flag("retry-after", "SECONDS", "send Retry-After with injected failures"),
  flag("latency", "MS", "wait this long before answering each ingestion request"),
  flag("drop-connection-rate", "R", "close this fraction (0..1) of ingestion connections without an answer"),
  flag("seed", "N", "make the injected faults repeatable"),
  { name: "quiet", kind: "boolean", help: "log nothing per request" },
  { name: "help", kind: "boolean", help: "show this help" },
];

const HELP = `tally serve: a local Segment-compatible collector with a live inspector.

Usage: tally serve [flags]

Point any Segment-compatible client at it (host http://127.0.0.1:8787) and open the inspector
in a browser. Every message is checked against the Segment spec and kept as good or bad with
the reasons, in memory and in an NDJSON file (replay it with tally send).

Flags (each also accepted in camelCase, such as --maxEvents):
${flagHelp(SERVE_FLAGS)}

Endpoints: POST /v1/batch, /v1/import, /v1/{identify,track,page,screen,group,alias};
GET /api/events (?type= &userId= &anonymousId= &event= &status=good|bad &limit=), GET /api/stats,
DELETE /api/events, GET /api/stream (server-sent events), GET / (the inspector).

Exit codes: 0 stopped cleanly (Ctrl-C, SIGTERM); 1 cannot listen or open the file; 2 a bad flag.
`;

function numberFlag(
  values: Map<string, unknown>,
  written: Map<string, string>,
  name: string,
  ok: (n: number) => boolean,
  what: string,
): number | undefined {
  const text = values.get(name);
  if (text === undefined) return undefined;
  const value = typeof text === "string" && text.trim() !== "" ? Number(text) : NaN;
  if (!ok(value)) throw new UsageError(`--${written.get(name) ?? name} must be ${what}, got "${String(text)}"`);
  return value;
}

const integer = (min: number, max: number) => (n: number): boolean => Number.isInteger(n) && n >= min && n <= max;
const fraction = (n: number): boolean => n >= 0 && n <= 1;
const nonNegative = (n: number): boolean => Number.isFinite(n) && n >= 0;

/** Reads the flags into collector options; throws a UsageError naming the flag. */
function options(args: string[]): { options: CollectorOptions; quiet: boolean; help: boolean; defaultOut: boolean } {
  const { flags: v, positionals, written } = parseArgs(args, SERVE_FLAGS, "serve");
  if (v.get("help") === true) return { options: {}, quiet: false, help: true, defaultOut: false };
  if (positionals.length > 0) {
    throw new UsageError(`serve takes flags only, got "${positionals[0]}" (see tally serve --help)`);
  }
  const listen = v.get("listen") as string | undefined;
  if (listen !== undefined && listen.trim() === "") throw new UsageError("--listen must be a host name or address");
  const writeKey = v.get("write-key") as string | undefined;
  if (writeKey !== undefined && writeKey === "") throw new UsageError("--write-key must not be empty");
  const given = v.get("out") as string | undefined;
  const noOut = v.get("no-out") === true;
  if (noOut && given !== undefined && given !== "") {
    throw new UsageError("--out and --no-out contradict each other: give one");
  }
  const out = noOut ? undefined : given ?? DEFAULT_OUT;
  const num = (name: string, ok: (n: number) => boolean, what: string) => numberFlag(v, written, name, ok, what);
  const result: CollectorOptions = {
    port: num("port", integer(0, 65535), "a port number from 0 to 65535") ?? 8787,
    hostname: listen ?? "127.0.0.1",
    writeKey,
    out: out === "" ? undefined : out,
    maxEvents: num("max-events", integer(1, 100_000_000), "a positive whole number"),
    failRate: num("fail-rate", fraction, "a number from 0 to 1"),
    failStatus: num("fail-status", integer(400, 599), "an HTTP status from 400 to 599"),
    retryAfter: num("retry-after", nonNegative, "a number of seconds >= 0"),
    latency: num("latency", nonNegative, "a number of milliseconds >= 0"),
    dropConnectionRate: num("drop-connection-rate", fraction, "a number from 0 to 1"),
    seed: num("seed", Number.isSafeInteger, "a whole number"),
  };
  return { options: result, quiet: v.get("quiet") === true, help: false, defaultOut: !noOut && given === undefined };
}

const plural = (n: number, word: string): string => `${n} ${word}${n === 1 ? "" : "s"}`;

/**
 * Runs `tally serve ARGS` until SIGINT or SIGTERM (or `io.signal`); returns the exit code: 0 after a clean stop,
 * 1 when it cannot listen or open the file, 2 for a bad flag.
 *
 * @example From a CLI dispatcher
 * ```ts ignore
 * import { serve } from "./serve.ts";
 *
 * process.exitCode = await serve(["--port", "8787", "--no-out"]);
 * ```
 */
export async function serve(args: string[], io?: ServeIo): Promise<number> {
  const out = io?.out ?? ((line: string) => void process.stdout.write(line + "\n"));
  const err = io?.err ?? ((line: string) => void process.stderr.write(line + "\n"));
  let parsed;
  try {
    parsed = options(args);
  } catch (e) {
    if (!(e instanceof UsageError)) throw e;
    // The line every tally command prints for a usage error (cli/main.ts).
    err(`tally: ${e.message}`);
    return 2;
  }
  if (parsed.help) {
    out(HELP.trimEnd());
    return 0;
  }
  const { options: collectorOptions, quiet } = parsed;
  if (!quiet) collectorOptions.log = out;
  if (parsed.defaultOut) {
    const folder = dirname(resolve(DEFAULT_OUT));
    try {
      await mkdir(folder, { recursive: true });
    } catch (e) {
      err(`tally: Cannot create ${folder} for the events file: ${(e as Error).message} (or pass --out FILE, --no-out)`);
      return 1;
    }
  }

  let collector;
  try {
    collector = await startCollector(collectorOptions);
  } catch (e) {
    const error = e as Error & { code?: string; syscall?: string };
    const where = `${collectorOptions.hostname}:${collectorOptions.port}`;
    const listening = error.syscall === "listen" || error.syscall === "bind" || error.syscall === "getaddrinfo";
    err(
      error instanceof RangeError || error instanceof TypeError
        ? `tally: ${error.message}`
        : !listening && collectorOptions.out !== undefined
        ? `tally: Cannot open --out ${collectorOptions.out}: ${error.message}`
        : error.code === "EADDRINUSE"
        ? `tally: Cannot listen on ${where}: the port is in use (pick another with --port, or 0 for any free port)`
        : error.code === "EADDRNOTAVAIL" || error.code === "ENOTFOUND"
        ? `tally: Cannot listen on ${where}: not an address of this machine (--listen)`
        : `tally: Cannot listen on ${where}: ${error.message}`,
    );
    return 1;
  }

  out(`Tally collector listening on ${collector.url}`);
  out(`Inspector: ${collector.url}/`);
  if (collectorOptions.out !== undefined) out(`Appending events to ${resolve(collectorOptions.out)}`);
  const faults = [
    collectorOptions.failRate
      ? `fail ${collectorOptions.failRate * 100}% with ${collectorOptions.failStatus ?? 500}`
      : "",
    collectorOptions.retryAfter !== undefined ? `Retry-After ${collectorOptions.retryAfter}` : "",
    collectorOptions.latency ? `latency ${collectorOptions.latency} ms` : "",
    collectorOptions.dropConnectionRate ? `drop ${collectorOptions.dropConnectionRate * 100}% of connections` : "",
    collectorOptions.seed !== undefined ? `seed ${collectorOptions.seed}` : "",
  ].filter((part) => part !== "");
  if (faults.length > 0) out(`Injecting faults: ${faults.join(", ")}`);
  if (collectorOptions.writeKey !== undefined) out("Requiring the write key given with --write-key");
  out("Press Ctrl-C to stop.");

  await new Promise<void>((done) => {
    const stop = (): void => {
      process.off("SIGINT", stop);
      process.off("SIGTERM", stop);
      io?.signal?.removeEventListener("abort", stop);
      done();
    };
    process.on("SIGINT", stop);
    process.on("SIGTERM", stop);
    if (io?.signal?.aborted) stop();
    io?.signal?.addEventListener("abort", stop);
  });

  const stats = collector.stats();
  await collector.stop();
  out(
    `Stopped. ${plural(stats.total, "message")} (${stats.good} good, ${stats.bad} bad) in ${
      plural(stats.requests, "request")
    }.`,
  );
  return 0;
}
