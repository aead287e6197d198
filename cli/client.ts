/**
 * The flags every sending command shares, and the library client they build:
 * the write key from `--write-key`, `TALLY_WRITE_KEY` or `SEGMENT_WRITE_KEY`
 * (never printed: every line goes out through the cleaning of cli/io.ts), the
 * host from `--host` or `TALLY_HOST`, and `--dry-run`'s transport that prints
 * each request body instead of sending it.
 *
 * @module
 */
import { Analytics, type AnalyticsOptions, type FetchFn, type Logger } from "../mod.ts";
import { type FlagSpec, type Parsed, UsageError } from "./args.ts";
import { jsonLine } from "./escape.ts";
import type { Io } from "./io.ts";
import { REDACTED } from "../lib/redact.ts";

/** Flags of every command that sends. */
export const COMMON_FLAGS: readonly FlagSpec[] = [
  {
    name: "write-key",
    kind: "string",
    value: "KEY",
    help: "the source's write key (default: $TALLY_WRITE_KEY, else $SEGMENT_WRITE_KEY)",
  },
  {
    name: "host",
    kind: "string",
    value: "URL",
    help: "a Segment-compatible endpoint (default: $TALLY_HOST, else https://api.segment.io)",
  },
  { name: "gzip", kind: "boolean", negatable: true, help: "gzip each request body (default: plain JSON)" },
  {
    name: "timeout",
    kind: "number",
    value: "SECONDS",
    help: "abandon (and retry) a request after this long; 0: no limit (default 15)",
  },
  { name: "max-retries", kind: "integer", value: "N", help: "retries per batch before giving up (default 10)" },
  {
    name: "retry-delay",
    kind: "number",
    value: "SECONDS",
    help: "wait before the first retry; each later one waits twice as long, up to 60 s (default 0.5)",
  },
  { name: "dry-run", kind: "boolean", help: "validate and print each request body on stdout; send nothing" },
  { name: "json", kind: "boolean", help: "print the result, or a usage error, as one JSON object on stdout" },
  { name: "debug", kind: "boolean", help: "log what the client does on stderr (the write key is never shown)" },
  { name: "help", kind: "boolean", help: "show this help" },
];

/** Where the write key came from, for `--debug` (the key itself is never shown). */
export type KeySource = "--write-key" | "TALLY_WRITE_KEY" | "SEGMENT_WRITE_KEY" | "none";

/** What a command's client was built from. */
export interface Client {
  analytics: Analytics;
  dryRun: boolean;
  json: boolean;
  debug: boolean;
  /** Request bodies printed by `--dry-run`. */
  printed: { bodies: number; bytes: number };
  /**
   * Gives what is queued or in flight one request timeout (`--timeout`), not the retries, and refuses new calls: for
   * a command that was stopped (a signal, its output lost). Await `analytics.close()` for the outcome.
   */
  closeSoon(): void;
}

/** The library's default request timeout, in seconds. */
const DEFAULT_TIMEOUT_S = 15;
/** The write key the dry-run client builds with when none is given; never sent anywhere. */
const DRY_RUN_KEY = "dry-run";
/** What `--dry-run` prints in place of the write key. */
export { REDACTED };

const nonEmpty = (value: string | undefined): string | undefined => (value && value.trim() !== "" ? value : undefined);

/** The write key and where it came from: the flag, then TALLY_WRITE_KEY, then SEGMENT_WRITE_KEY. */
export function writeKeyOf(parsed: Parsed, env: Io["env"]): [string | undefined, KeySource] {
  const flag = parsed.flags.get("write-key") as string | undefined;
  if (flag !== undefined) {
    if (flag.trim() === "") throw new UsageError("--write-key is empty");
    return [flag, "--write-key"];
  }
  const tally = nonEmpty(env.TALLY_WRITE_KEY);
  if (tally !== undefined) return [tally, "TALLY_WRITE_KEY"];
  const segment = nonEmpty(env.SEGMENT_WRITE_KEY);
  if (segment !== undefined) return [segment, "SEGMENT_WRITE_KEY"];
  return [undefined, "none"];
}

/** Library option names, as the flags that set them (for construction errors). */
const FLAG_OF: Record<string, string> = {
  host: "host",
  timeout: "timeout",
  maxRetries: "max-retries",
  minRetryDelay: "retry-delay",
  maxRetryDelay: "retry-delay",
  uploadSize: "batch-size",
  writeKey: "write-key",
};

/**
 * The library's option error in the words of the command line:
 * "Cannot set uploadSize: ..." becomes "Cannot set --batch-size: ...", with
 * the flag as the user typed it (`--batchSize` stays `--batchSize`).
 */
export function optionsToFlags(message: string, parsed: Parsed): string {
  return message.replace(/^Cannot set (\w+)/, (whole, option: string) => {
    const name = FLAG_OF[option];
    return name === undefined ? whole : `Cannot set --${parsed.written.get(name) ?? name}`;
  });
}

const OK = '{"success":true}';

/** A transport that prints each request body (decompressed, write key replaced) and answers 200. */
function printingFetch(io: Io, printed: Client["printed"]): FetchFn {
  return async (_url, init) => {
    // Nobody reads stdout any more: answer at once, printing nothing.
    if (io.lost.aborted) return new Response(OK, { status: 200, headers: { "content-type": "application/json" } });
    // Whatever form the library hands the body in (bytes or JSON text), and however it spells the headers.
    let bytes = new Uint8Array(await new Response(init.body as BodyInit).arrayBuffer());
    if (new Headers(init.headers as HeadersInit).get("content-encoding") === "gzip") {
      const stream = new Blob([bytes]).stream().pipeThrough(new DecompressionStream("gzip"));
      bytes = new Uint8Array(await new Response(stream).arrayBuffer());
    }
    const body = JSON.parse(new TextDecoder().decode(bytes));
    if ("writeKey" in body) body.writeKey = REDACTED;
    // The rest of the body goes through io.out's redaction: a key typed as an event name, a user id, ...
    const line = jsonLine(body) + "\n";
    printed.bodies++;
    printed.bytes += bytes.byteLength;
    await io.out(line);
    return new Response(OK, { status: 200, headers: { "content-type": "application/json" } });
  };
}

/**
 * Builds the library client from the common flags. Throws a
 * {@linkcode UsageError} for a missing write key or a bad option value.
 */
export function makeClient(
  parsed: Parsed,
  io: Io,
  extra: Pick<AnalyticsOptions, "onError" | "uploadSize" | "maxQueueSize"> = {},
): Client {
  const f = parsed.flags;
  const dryRun = f.get("dry-run") === true;
  const debug = f.get("debug") === true;
  const [key, source] = writeKeyOf(parsed, io.env);
  if (key === undefined && !dryRun) {
    throw new UsageError(
      "no write key: pass --write-key, or set TALLY_WRITE_KEY or SEGMENT_WRITE_KEY (or use --dry-run)",
    );
  }
  const host = (f.get("host") as string | undefined) ?? nonEmpty(io.env.TALLY_HOST);
  // io.error redacts every key in effect (this one included) and escapes control characters.
  const say = (level: string) => (...args: unknown[]) =>
    io.error(`${level}: ${args.map(String).join(" ").replace(/^\[tally\] /, "")}`);
  const logger: Logger = { debug: say("debug"), info: say("info"), warn: say("warning"), error: say("error") };
  const printed = { bodies: 0, bytes: 0 };
  const retryDelay = f.get("retry-delay") as number | undefined;
  const options: AnalyticsOptions = {
    writeKey: key ?? DRY_RUN_KEY,
    host,
    gzip: f.get("gzip") as boolean | undefined,
    timeout: f.get("timeout") as number | undefined,
    maxRetries: f.get("max-retries") as number | undefined,
    minRetryDelay: retryDelay,
    maxRetryDelay: retryDelay !== undefined && retryDelay > 60 ? retryDelay : undefined,
    debug,
    logger,
    fetch: dryRun ? printingFetch(io, printed) : undefined,
    ...extra,
  };
  let analytics: Analytics;
  try {
    analytics = new Analytics(options);
  } catch (error) {
    const message = (error as Error).message;
    // The library quotes at most 40 characters of a bad host: a key in it could be cut past recognizing.
    if (/^Cannot set host\b/.test(message) && host !== undefined && io.secrets.holds(host)) {
      throw new UsageError(
        `Cannot set --${parsed.written.get("host") ?? "host"}: expected an http: or https: URL; ` +
          "the value given holds the write key, so it is not shown",
      );
    }
    throw new UsageError(optionsToFlags(message, parsed));
  }
  // Stopped (a signal, output lost: | head, >/dev/full): what is already queued or in flight gets one request
  // timeout, not the retries (the default timeout when --timeout 0 lifted the limit).
  const closeSoon = (): void => void analytics.close({ timeout: (analytics.timeout || DEFAULT_TIMEOUT_S) * 1000 });
  if (io.lost.aborted) closeSoon();
  else io.lost.addEventListener("abort", closeSoon, { once: true });
  if (debug) {
    io.error(
      `debug: sending to ${analytics.host}${analytics.path} with the write key from ${source}` +
        (dryRun ? " (dry run: nothing is sent)" : ""),
    );
  }
  return { analytics, dryRun, json: f.get("json") === true, debug, printed, closeSoon };
}
