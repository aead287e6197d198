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
import { flagHelp, type FlagSpec, kebab, parseArgs, UsageError } from "../cli/args.ts";
import { isPlanMode, PLAN_MODES } from "../plan/model.ts";
import { normalHost, normalOrigin } from "./access.ts";
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
  flag(
    "allow-origin",
    "ORIGIN",
    "also take events from web pages at ORIGIN, besides loopback ones (repeatable; null: pages opened from files)",
  ),
  flag("allow-host", "NAME", "also answer the API and inspector addressed to NAME, such as a container's (repeatable)"),
  flag("write-key", "KEY", "require this write key on every ingestion request (default: accept any)"),
  flag("out", "FILE", `append every message to this NDJSON file (default ${DEFAULT_OUT}, folder created)`),
  { name: "no-out", kind: "boolean", help: "keep messages in memory only (same as --out '')" },
  flag("max-events", "N", "messages kept in memory; the oldest are evicted beyond it (default 10000)"),
  flag("max-bytes", "SIZE", "bytes of messages kept in memory, such as 64MB; the oldest are evicted (default 256MB)"),
  flag("fail-rate", "R", "answer this fraction (0..1) of ingestion requests with --fail-status"),
  flag("fail-status", "CODE", "status of injected failures, 400..599 (default 500)"),
  flag("retry-after", "SECONDS", "send Retry-After with injected failures"),
  flag("latency", "MS", "wait this long before answering each ingestion request"),
  flag("drop-connection-rate", "R", "close this fraction (0..1) of ingestion connections without an answer"),
  flag(
    "lose-ack-rate",
    "R",
    "store this fraction (0..1) of ingestion requests, then close the connection unanswered (the client re-sends)",
  ),
  flag("seed", "N", "make the injected faults repeatable"),
  flag("plan", "FILE", "check every message against this tracking plan too (reloaded when the file changes)"),
  flag(
    "plan-mode",
    "MODE",
    "observe (default: mark violations) or block-unplanned (also mark unplanned events blocked)",
  ),
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
analytics.js's POST /v1/{t,i,p,s,g,a,b} and /v1/m (metrics, counted), and its settings at
GET /v1/projects/KEY/settings (load it with cdnURL: "http://127.0.0.1:8787");
GET /api/events (?type= &userId= &anonymousId= &event= &status=good|bad &source=LIBRARY
&duplicate=true|false &violations=true|false &violation=CATEGORY &blocked=true|false &limit=
&before=; 1000 by default, at most 10000, "next" gives the next page), GET /api/stats, DELETE
/api/events, GET /api/stream (server-sent events), GET / (the inspector).

Tracking plan (--plan FILE: Tally's plan, a Segment Public API rules export or Typewriter's
plan.json): each message is also checked against it; its violations (category, JSON path) are
kept with it, shown in the inspector and counted in /api/stats, and never make it bad (the
spec's status stands apart). block-unplanned answers 200 as Segment does and keeps unplanned
events marked blocked. A change to the file is picked up; a broken one is reported and the
previous plan kept.

Limits: 32 KB per message (a batch's context merged in), 500 KB per request, 2500 messages per
batch, bodies nested at most 1024 levels; headers within 10 s, whole requests within 30 s (408).
Who it answers: the API and the inspector only for 127.0.0.1, localhost, [::1], the --listen
address (with 0.0.0.0, any IP address) and --allow-host names, and only from its own pages;
events from web pages only from loopback origins and --allow-origin ones (403 otherwise);
requests without an Origin (server SDKs, curl) always. A write key is never stored or shown.

Exit codes: 0 stopped cleanly (Ctrl-C, SIGTERM); 1 cannot listen or open the file; 2 a bad flag
or a plan that cannot be used.
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

/** The flags that may be given more than once, each value also a comma-separated list. */
const REPEATABLE = ["allow-origin", "allow-host"];

/**
 * Takes the repeatable flags out of `args` (the shared parser takes each flag once): their values by name, and the
 * other arguments.
 */
function repeated(args: string[]): { values: Map<string, string[]>; rest: string[] } {
  const values = new Map<string, string[]>(REPEATABLE.map((name) => [name, []]));
  const rest: string[] = [];
  for (let i = 0; i < args.length; i++) {
    const arg = args[i];
    if (arg === "--") {
      rest.push(...args.slice(i));
      break;
    }
    const eq = arg.indexOf("=");
    const typed = arg.startsWith("--") ? (eq < 0 ? arg.slice(2) : arg.slice(2, eq)) : "";
    const name = kebab(typed);
    if (!REPEATABLE.includes(name)) {
      rest.push(arg);
      continue;
    }
    let value: string;
    if (eq >= 0) value = arg.slice(eq + 1);
    else {
      const next = args[i + 1];
      if (next === undefined || next.startsWith("--")) {
        throw new UsageError(`--${typed} needs a value (see tally serve --help)`);
      }
      value = next;
      i++;
    }
    values.get(name)!.push(...value.split(",").map((part) => part.trim()).filter((part) => part !== ""));
  }
  return { values, rest };
}

const SIZE = /^(\d+)\s*(k|m|g)?(i?b)?$/i;
const UNITS: Record<string, number> = { k: 1024, m: 1024 ** 2, g: 1024 ** 3 };

/** `--max-bytes`: a whole number of bytes, or of KB, MB or GB (1024-based). */
function sizeFlag(text: unknown, typed: string): number | undefined {
  if (text === undefined) return undefined;
  const parts = typeof text === "string" ? SIZE.exec(text.trim()) : null;
  const bytes = parts === null ? NaN : Number(parts[1]) * (parts[2] === undefined ? 1 : UNITS[parts[2].toLowerCase()]);
  if (!Number.isSafeInteger(bytes) || bytes < 1) {
    throw new UsageError(
      `--${typed} must be a number of bytes, or with KB, MB or GB (such as 256MB), got "${String(text)}"`,
    );
  }
  return bytes;
}

/** Reads the flags into collector options; throws a UsageError naming the flag. */
function options(args: string[]): { options: CollectorOptions; quiet: boolean; help: boolean; defaultOut: boolean } {
  const { values: lists, rest } = repeated(args);
  const { flags: v, positionals, written } = parseArgs(rest, SERVE_FLAGS, "serve");
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
  const allowOrigins = lists.get("allow-origin")!.map((text) => {
    const origin = normalOrigin(text);
    if (origin === undefined) {
      throw new UsageError(`--allow-origin must be an origin such as http://localhost:3000, got "${text}"`);
    }
    return origin;
  });
  const allowHosts = lists.get("allow-host")!.map((text) => {
    if (!/^([a-z0-9-]+\.)*[a-z0-9-]+$|^\[?[0-9a-f:.]+\]?$/i.test(text.trim())) {
      throw new UsageError(`--allow-host must be a host name such as tally or dev.local, got "${text}"`);
    }
    return normalHost(text);
  });
  const plan = v.get("plan") as string | undefined;
  if (plan !== undefined && plan.trim() === "") throw new UsageError("--plan must be a plan file");
  const planMode = v.get("plan-mode") as string | undefined;
  const typedMode = written.get("plan-mode") ?? "plan-mode";
  if (planMode !== undefined) {
    if (!isPlanMode(planMode)) {
      throw new UsageError(`--${typedMode} must be ${PLAN_MODES.join(" or ")}, got "${planMode}"`);
    }
    if (plan === undefined) throw new UsageError(`--${typedMode} needs --plan FILE`);
  }
  const result: CollectorOptions = {
    port: num("port", integer(0, 65535), "a port number from 0 to 65535") ?? 8787,
    hostname: listen ?? "127.0.0.1",
    allowOrigins,
    allowHosts,
    maxBytes: sizeFlag(v.get("max-bytes"), written.get("max-bytes") ?? "max-bytes"),
    writeKey,
    out: out === "" ? undefined : out,
    maxEvents: num("max-events", integer(1, 100_000_000), "a positive whole number"),
    failRate: num("fail-rate", fraction, "a number from 0 to 1"),
    failStatus: num("fail-status", integer(400, 599), "an HTTP status from 400 to 599"),
    retryAfter: num("retry-after", nonNegative, "a number of seconds >= 0"),
    latency: num("latency", nonNegative, "a number of milliseconds >= 0"),
    dropConnectionRate: num("drop-connection-rate", fraction, "a number from 0 to 1"),
    loseAckRate: num("lose-ack-rate", fraction, "a number from 0 to 1"),
    seed: num("seed", Number.isSafeInteger, "a whole number"),
    plan,
    planMode,
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
    // One line per call, as ServeIo says: the CLI escapes control characters, newlines included, within a line.
    for (const line of HELP.trimEnd().split("\n")) out(line);
    return 0;
  }
  const { options: collectorOptions, quiet } = parsed;
  if (!quiet) collectorOptions.log = out;
  // A reload of the plan is not a request: said even with --quiet.
  if (collectorOptions.plan !== undefined) collectorOptions.planLog = out;
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
    if (error.name === "PlanError" || error.name === "PlanSchemaError") {
      // The plan file is input, as a bad flag is: exit 2, the one line plan/ wrote.
      err(`tally: ${error.message.split("\n")[0]} (--plan)`);
      return 2;
    }
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
    collectorOptions.loseAckRate ? `lose ${collectorOptions.loseAckRate * 100}% of acknowledgements` : "",
    collectorOptions.seed !== undefined ? `seed ${collectorOptions.seed}` : "",
  ].filter((part) => part !== "");
  if (faults.length > 0) out(`Injecting faults: ${faults.join(", ")}`);
  if (collectorOptions.writeKey !== undefined) out("Requiring the write key given with --write-key");
  if (collectorOptions.allowOrigins?.length) {
    out(`Accepting events from pages at ${collectorOptions.allowOrigins.join(", ")}`);
  }
  if (collectorOptions.allowHosts?.length) out(`Also answering for ${collectorOptions.allowHosts.join(", ")}`);
  const planned = collector.describePlan();
  if (planned !== undefined) out(`Checking messages against the ${planned}`);
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
