/**
 * `tally send [FILE ...]`: a historical import. Reads NDJSON or a JSON array
 * of Segment-shaped messages (`{"type":"track","userId":...}`) from files or
 * stdin, streaming (gzip input is decompressed on the way), and hands each
 * to the library's object-style call, which validates it; batching, gzip
 * and retries are the library's. A line of `tally serve`'s NDJSON file
 * (`{"id","receivedAt","status","reasons","source",...,"message"}`) stands for its
 * `message`, so what the collector captured can be sent again.
 *
 * "Validated first" means: each message is validated before it is queued.
 * A bad one is reported as `file:line: why` and skipped, the rest is sent,
 * and tally exits 2. `--strict` stops reading at the first bad one (what was
 * queued before it is still delivered). To check a whole input before
 * anything is sent, run `tally send --dry-run FILE >/dev/null` first.
 *
 * Memory stays flat however long the input: a chunk is read only when the
 * library's queue has room (checked through `stats().queued`).
 *
 * Ctrl-C (SIGINT) and SIGTERM stop the reading at once, even while stdin
 * is open and idle; what is queued or in flight gets one request timeout,
 * the summary is printed, and tally exits 130 or 143 (a second signal quits
 * at once). When stdout or stderr is lost (`| head`, `>/dev/full`), reading
 * stops the same way, and the exit code says the command was cut short (141
 * for a reader that went away).
 *
 * @module
 */
import { createReadStream, mkdirSync, statSync } from "node:fs";
import process from "node:process";
import { type DeliveryError, type MessageType, ValidationError } from "../mod.ts";
import { flagHelp, type FlagSpec, parseArgs, UsageError } from "./args.ts";
import { COMMON_FLAGS, makeClient } from "./client.ts";
import { jsonLine } from "./escape.ts";
import { decoded, GzipError } from "./input.ts";
import { EXIT_READER_GONE, type Io, lostExitCode } from "./io.ts";
import { whyNotJson } from "./json_error.ts";
import { type Item, ItemReader, unwrapCaptured } from "./ndjson.ts";
import { bytes, Progress, thousands } from "./progress.ts";
import { Progress as Resume, PROGRESS_SUFFIX } from "./resume.ts";
import type { Secrets } from "./secrets.ts";

/** The flags `tally send` accepts. */
export const SEND_FLAGS: readonly FlagSpec[] = [
  { name: "strict", kind: "boolean", help: "stop at the first invalid message (the default reports each and goes on)" },
  { name: "batch-size", kind: "integer", value: "N", help: "messages per request, 1 to 2500 (default 100)" },
  {
    name: "progress",
    kind: "boolean",
    negatable: true,
    help: "force the progress bar on or off (default: on when stderr is a terminal)",
  },
  {
    name: "resume",
    kind: "optional-string",
    value: "DIR",
    // A directory cannot be an input, so one named after --resume is its folder.
    takesNext: (next) => isDirectory(next),
    help: `skip what an earlier run had delivered; record progress in FILE${PROGRESS_SUFFIX} (or in DIR)`,
  },
  { name: "restart", kind: "boolean", help: "with --resume: forget the recorded progress and send from the start" },
  ...COMMON_FLAGS,
];

/** `tally send --help`. */
export function sendHelp(): string {
  return `Send messages from NDJSON files, JSON-array files or stdin: a historical import.

Usage: tally send [flags] [FILE ...]      (no FILE, or -, reads stdin)

Each line (or array element) is one message in Segment's own shape:
  {"type":"track","userId":"019mr8mf4r","event":"Shirt Bought","properties":{"revenue":17.9},"timestamp":"2012-10-17T18:58:57.911Z"}

Fields: type, userId, anonymousId, event, properties, traits, name, category, groupId, previousId,
context, integrations, timestamp, messageId (as the type takes them). Fields Segment sets itself
(sentAt, receivedAt, originalTimestamp, version, channel, projectId, writeKey, _metadata) are ignored;
any other field makes the message invalid, __proto__, constructor and prototype included (inside
properties, traits, context and integrations they are ordinary keys, sent as they are). A line of
tally serve's NDJSON file ({"id","receivedAt","status","reasons","source",...,"message"}) is read as its message:
captures replay as they are.
Gzip input (a .gz file, or gzip on stdin) is decompressed as it is read.

Every message is validated before it is queued; each bad one is reported on stderr as FILE:LINE: why
and skipped, a line that is not valid UTF-8 included. To check a whole input before sending anything:
tally send --dry-run FILE >/dev/null

Ctrl-C or SIGTERM stops the reading (even while stdin waits for input): what is queued or in flight
gets one request timeout (--timeout), the summary is printed; a second signal quits at once.

Resuming: with --resume, tally records in FILE${PROGRESS_SUFFIX} (or in the folder --resume DIR) which
messages of FILE the server acknowledged. Run the same command again after Ctrl-C, a kill or a network
outage: it skips those and sends the rest; only requests in flight at the kill can arrive twice (the
messageIds are the same, so Segment's dedupe drops them when the lines carry one). A FILE that changed
since is an error unless --restart; stdin cannot be resumed.

Examples:
  tally send events.ndjson
  tally send --gzip --json events-2024-*.ndjson.gz
  tally send .tally/events.ndjson            (replay what tally serve captured)
  tally send --resume big-export.ndjson      (again after an interruption: sends only the rest)

Flags (each also accepted in camelCase):
${flagHelp(SEND_FLAGS)}

Exit codes: 0 all delivered; 1 some not delivered; 2 usage error, an unreadable input or an invalid
message (2 wins over 1: with both invalid and undelivered messages, tally exits 2; the summary counts
each); 130 stopped by Ctrl-C (SIGINT); 143 stopped by SIGTERM; 141 stopped because the reader of its
output went away (| head).
`;
}

/** Fields each type sends, beside `type` and the common ones. */
const OWN_FIELDS: Record<MessageType, readonly string[]> = {
  track: ["userId", "anonymousId", "event", "properties"],
  identify: ["userId", "anonymousId", "traits"],
  page: ["userId", "anonymousId", "name", "category", "properties"],
  screen: ["userId", "anonymousId", "name", "category", "properties"],
  group: ["userId", "anonymousId", "groupId", "traits"],
  alias: ["previousId", "userId"],
};
const COMMON_FIELDS = ["type", "context", "integrations", "timestamp", "messageId"];
/** Set by Segment's servers or its browser library; a re-import of an export carries them. */
const IGNORED_FIELDS = [
  "sentAt",
  "receivedAt",
  "originalTimestamp",
  "version",
  "channel",
  "projectId",
  "writeKey",
  "_metadata",
];

const FIELDS = new Map<string, { allowed: Set<string>; list: string }>(
  (Object.keys(OWN_FIELDS) as MessageType[]).map((type) => {
    const own = [...COMMON_FIELDS.slice(0, 1), ...OWN_FIELDS[type], ...COMMON_FIELDS.slice(1)];
    // alias takes no anonymousId; an exported alias has one, which is not part of what alias sends.
    const ignored = type === "alias" ? [...IGNORED_FIELDS, "anonymousId"] : IGNORED_FIELDS;
    return [type, { allowed: new Set([...own, ...ignored]), list: own.join(", ") }];
  }),
);
const TYPES = [...FIELDS.keys()].join(", ");

const describe = (value: unknown): string =>
  value === null
    ? "null"
    : Array.isArray(value)
    ? "an array"
    : typeof value === "string"
    ? "a string"
    : `a ${typeof value}`;

/** The library call for a parsed message, or why it cannot be made. */
function checkShape(value: unknown): MessageType | string {
  if (typeof value !== "object" || value === null || Array.isArray(value)) {
    return `expected a JSON object (a message), got ${describe(value)}`;
  }
  const type = (value as { type?: unknown }).type;
  if (type === undefined) return `type is required (one of ${TYPES})`;
  const fields = typeof type === "string" ? FIELDS.get(type) : undefined;
  if (fields === undefined) return `type must be one of ${TYPES}, got ${JSON.stringify(type)}`;
  for (const key in value) {
    if (!fields.allowed.has(key)) {
      return `unknown field ${JSON.stringify(key)} for ${
        type === "identify" || type === "alias" ? "an" : "a"
      } ${type} (it takes ${fields.list})`;
    }
  }
  return type as MessageType;
}

/** One input: a file, or stdin. */
interface Source {
  /** The path as messages show it (`[write key]` for a path that is a write key), or "stdin". */
  name: string;
  path: string | undefined;
  size: number | undefined;
}

function sources(paths: string[], secrets: Secrets): Source[] {
  if (paths.length === 0) paths = ["-"];
  if (paths.filter((p) => p === "-").length > 1) throw new UsageError("stdin (-) can be read only once");
  return paths.map((path) => {
    if (path === "-") return { name: "stdin", path: undefined, size: undefined };
    const name = secrets.value(path);
    let size: number;
    try {
      const stat = statSync(path);
      if (stat.isDirectory()) throw new UsageError(`cannot read ${name}: it is a directory`);
      size = stat.size;
    } catch (error) {
      if (error instanceof UsageError) throw error;
      const code = (error as { code?: string }).code;
      throw new UsageError(
        `cannot read ${name}: ${code === "ENOENT" ? "no such file" : code ?? (error as Error).message}`,
      );
    }
    return { name, path, size };
  });
}

/** Queued messages above which reading pauses, and below which it resumes. */
const HIGH_WATER = 8000;
const LOW_WATER = 2000;
/** How many messages go by between looks at the queue. */
const CHECK_EVERY = 100;
/** Delivery failures printed one per line; the rest only count in the summary. */
const MAX_FAILURE_LINES = 10;

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

function isDirectory(path: string): boolean {
  try {
    return statSync(path).isDirectory();
  } catch {
    return false;
  }
}

/** The progress of each input under --resume (none without it); throws a UsageError for what cannot resume. */
function resumable(parsed: ReturnType<typeof parseArgs>, inputs: Source[], dryRun: boolean): (Resume | undefined)[] {
  const resume = parsed.flags.get("resume") as string | true | undefined;
  const restart = parsed.flags.get("restart") === true;
  if (resume === undefined) {
    if (restart) throw new UsageError("--restart goes with --resume");
    return inputs.map(() => undefined);
  }
  if (resume === "") throw new UsageError("--resume= needs a folder (or give --resume alone)");
  if (dryRun) throw new UsageError("--resume records what was delivered, and --dry-run delivers nothing: pick one");
  if (inputs.some((s) => s.path === undefined)) {
    throw new UsageError("--resume cannot resume stdin: give the input as a file");
  }
  const dir = resume === true ? undefined : resume;
  if (dir !== undefined) {
    try {
      mkdirSync(dir, { recursive: true });
    } catch (error) {
      throw new UsageError(`cannot resume: cannot create ${dir}: ${(error as { code?: string }).code ?? error}`);
    }
  }
  const seen = new Set<string>();
  return inputs.map((source) => {
    const progress = Resume.open(source.path!, source.name, dir, restart);
    if (seen.has(progress.file)) throw new UsageError(`--resume: ${source.name} is given twice`);
    seen.add(progress.file);
    return progress;
  });
}

/** The final summary, as `--json` prints it. */
export interface Summary {
  /** Messages the server accepted. */
  sent: number;
  /** Valid messages that were not delivered. */
  failed: number;
  /** Lines (or array elements) that were not valid messages. */
  invalid: number;
  /** Request body bytes put on the wire (with --dry-run: printed bodies, uncompressed). */
  bytes: number;
  /** Input bytes read. */
  bytesRead: number;
  /** Seconds from start to the last message settled. */
  seconds: number;
  /** Messages read (valid and invalid). */
  read: number;
  /** True with --dry-run: nothing was sent. */
  dryRun: boolean;
  /** True when the reading stopped early: --strict at an invalid message, a signal, output lost. */
  stopped: boolean;
  /** Messages skipped because an earlier run had delivered them (--resume). */
  skipped: number;
}

/** Runs `tally send ...`; resolves to the exit code. */
export async function runSend(argv: readonly string[], io: Io): Promise<number> {
  const parsed = parseArgs(argv, SEND_FLAGS, "send", io.secrets);
  if (parsed.flags.get("help") === true) {
    await io.outFixed(sendHelp());
    return 0;
  }
  const inputs = sources(parsed.positionals, io.secrets);
  const resumes = resumable(parsed, inputs, parsed.flags.get("dry-run") === true);
  const strict = parsed.flags.get("strict") === true;
  let failureLines = 0;
  let failedReported = 0;
  const client = makeClient(parsed, io, {
    uploadSize: parsed.flags.get("batch-size") as number | undefined,
    maxQueueSize: HIGH_WATER * 2,
    onError(error: DeliveryError, messages) {
      failedReported += messages.length;
      if (failureLines < MAX_FAILURE_LINES) io.error(`${error.message} (reason: ${error.reason})`);
      else if (failureLines === MAX_FAILURE_LINES) io.errorFixed("more delivery failures: only counted in the summary");
      failureLines++;
    },
  });
  const { analytics } = client;
  const started = performance.now();
  const counts = { messages: 0, bytesRead: 0, delivered: 0, invalid: 0, skipped: 0 };
  const showProgress = (parsed.flags.get("progress") as boolean | undefined) ?? io.errIsTTY;
  const total = inputs.every((s) => s.size !== undefined) ? inputs.reduce((n, s) => n + s.size!, 0) : undefined;
  const progress = showProgress
    ? new Progress(io, () => ({ ...counts, delivered: client.dryRun ? 0 : analytics.stats().delivered }), total)
    : undefined;

  let stopped = false; // by --strict, a signal, or output lost
  // Ends a read that waits on input (an idle stdin) at once: a signal or lost output must not wait for more input.
  const halt = new AbortController();
  let signalled: "SIGINT" | "SIGTERM" | undefined;
  const exitCodeOf = (signal: "SIGINT" | "SIGTERM"): number => (signal === "SIGINT" ? 130 : 143);
  const onSignal = (signal: "SIGINT" | "SIGTERM"): void => {
    if (signalled !== undefined) process.exit(exitCodeOf(signal));
    signalled = signal;
    stopped = true;
    halt.abort();
    const again = signal === "SIGINT" ? "Ctrl-C again" : "SIGTERM again";
    io.errorFixed(
      `${signal === "SIGINT" ? "interrupted" : "terminated"}: sending what is queued (${again} to quit now)`,
    );
    client.closeSoon();
  };
  const onSigint = (): void => onSignal("SIGINT");
  const onSigterm = (): void => onSignal("SIGTERM");
  process.on("SIGINT", onSigint);
  process.on("SIGTERM", onSigterm);

  const invalid = (source: Source, line: number, why: string, resume: Resume | undefined, n: number): void => {
    counts.invalid++;
    // A rerun would only find it invalid again.
    resume?.done(n);
    io.error(`${source.name}:${line}: ${why}`);
    if (strict) stopped = true;
  };

  /** Message `n` (from 1) of `source`. */
  const handle = (source: Source, item: Item, resume: Resume | undefined, n: number): void => {
    if (resume !== undefined && resume.isDone(n)) {
      counts.skipped++;
      return;
    }
    counts.messages++;
    if (item.error !== undefined) return invalid(source, item.line, item.error, resume, n);
    let value: unknown;
    try {
      value = unwrapCaptured(JSON.parse(item.text));
    } catch {
      // In tally's words: the runtime's message would quote a piece of the line.
      const why = whyNotJson(item.text);
      return invalid(source, item.line, `not valid JSON${why === undefined ? "" : ` (${why})`}`, resume, n);
    }
    const type = checkShape(value);
    if (!FIELDS.has(type)) return invalid(source, item.line, type, resume, n);
    try {
      const call = analytics[type as MessageType] as (params: unknown, callback?: unknown) => string;
      if (resume === undefined) call.call(analytics, value);
      else call.call(analytics, value, (error: unknown) => void (error === undefined && resume.done(n)));
    } catch (error) {
      if (!(error instanceof ValidationError)) throw error;
      invalid(source, item.line, error.message, resume, n);
    }
  };

  // Output lost while reading (| head, >/dev/full): stop, as on Ctrl-C; a pending read ends too (decoded()).
  let reading = true;
  let cutShort = false;
  const onLost = (): void => {
    if (!reading) return;
    cutShort = stopped = true;
    halt.abort();
  };
  io.lost.addEventListener("abort", onLost, { once: true });
  if (io.lost.aborted) onLost();

  let readError: string | undefined;
  try {
    for (const [index, source] of inputs.entries()) {
      if (stopped) break;
      const resume = resumes[index];
      let n = 0;
      const reader = new ItemReader();
      if (source.path === undefined && (process.stdin as { isTTY?: boolean }).isTTY) {
        io.errorFixed("reading messages from stdin, one JSON object per line (Ctrl-D to end)");
      }
      const stream = source.path === undefined
        ? process.stdin
        : createReadStream(source.path, { highWaterMark: 64 * 1024 });
      let sinceCheck = 0;
      try {
        const chunks = decoded(
          stream as AsyncIterable<Uint8Array<ArrayBuffer>>,
          (n) => void (counts.bytesRead += n),
          halt.signal,
        );
        for await (const chunk of chunks) {
          for (const item of reader.push(chunk)) {
            // Checked first: a stop (Ctrl-C, output lost) may have come while this chunk was being read.
            if (stopped) break;
            handle(source, item, resume, ++n);
            if (++sinceCheck >= CHECK_EVERY) {
              sinceCheck = 0;
              // Backpressure: the next chunk is read only when the library's queue has room.
              if (analytics.stats().queued >= HIGH_WATER) {
                while (analytics.stats().queued > LOW_WATER && !stopped) await sleep(2);
              }
            }
          }
          if (stopped) break;
        }
        if (!stopped) { for (const item of reader.end()) if (!stopped) handle(source, item, resume, ++n); }
      } catch (error) {
        if (error instanceof ValidationError || error instanceof UsageError) throw error;
        // The input ended by us (a signal, output lost) is no error of the input's.
        if (cutShort || signalled !== undefined) break;
        const code = error instanceof GzipError ? undefined : (error as { code?: string }).code;
        readError = `cannot read ${source.name}: ${code ?? (error as Error).message}`;
        io.error(readError);
        break;
      } finally {
        if (source.path !== undefined) (stream as { destroy?: () => void }).destroy?.();
        else if (stopped) process.stdin.pause();
      }
    }
  } finally {
    reading = false;
    io.lost.removeEventListener("abort", onLost);
    await analytics.close();
    process.off("SIGINT", onSigint);
    process.off("SIGTERM", onSigterm);
    progress?.stop();
  }
  for (const resume of resumes) {
    const failed = resume?.finish();
    if (failed !== undefined) {
      io.error(`cannot record the progress of ${resume!.name}: ${failed}; a rerun with --resume may send some again`);
    }
  }

  const stats = analytics.stats();
  const summary: Summary = {
    sent: client.dryRun ? 0 : stats.delivered,
    failed: Math.max(failedReported, stats.failed + stats.dropped),
    invalid: counts.invalid,
    bytes: client.dryRun ? client.printed.bytes : stats.bytesSent,
    bytesRead: counts.bytesRead,
    seconds: Math.round(performance.now() - started) / 1000,
    read: counts.messages,
    dryRun: client.dryRun,
    stopped,
    skipped: counts.skipped,
  };
  // Counts only, tally's own words: written as they are (redacting would only hide numbers equal to a short key).
  if (client.json) await io.outFixed(jsonLine(summary) + "\n");
  else {
    const valid = counts.messages - counts.invalid;
    const head = client.dryRun
      ? `dry run: ${thousands(valid)} valid ${valid === 1 ? "message" : "messages"} in ` +
        `${thousands(client.printed.bodies)} ${client.printed.bodies === 1 ? "request" : "requests"} ` +
        `(${bytes(summary.bytes)}), nothing sent`
      : `sent ${thousands(summary.sent)} of ${thousands(valid)} ${valid === 1 ? "message" : "messages"} ` +
        `(${bytes(summary.bytes)})`;
    const tail = [
      summary.failed > 0 ? `${thousands(summary.failed)} failed` : "",
      summary.invalid > 0 ? `${thousands(summary.invalid)} invalid` : "",
      summary.skipped > 0 ? `${thousands(summary.skipped)} skipped (delivered by an earlier run)` : "",
      stopped ? "stopped early" : "",
    ].filter((s) => s !== "").join(", ");
    io.errorFixed(`${head}${tail ? `; ${tail}` : ""} in ${summary.seconds.toFixed(1)} s`);
  }
  if (signalled !== undefined) return exitCodeOf(signalled);
  if (cutShort) return lostExitCode(io) ?? EXIT_READER_GONE;
  // Invalid input wins over undelivered messages: the input needs fixing before a rerun can succeed.
  if (summary.invalid > 0 || readError !== undefined) return 2;
  if (summary.failed > 0) return 1;
  return 0;
}
