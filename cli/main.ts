/**
 * `tally`'s dispatcher: the command, `--help`, `--version`, and Segment's
 * library-e2e-tester convention (`tally --type track --writeKey K ...`).
 * Every error ends here as one `tally: ...` line on stderr and an exit code:
 * 0 all delivered, 1 some not delivered, 2 usage error or invalid input.
 * The write keys in effect are read from the arguments and the environment
 * first, so that nothing printed, a parsing error included, shows them.
 *
 * @module
 */
import { type MessageType, VERSION } from "../mod.ts";
import { UsageError } from "./args.ts";
import { CALL_TYPES, runCall } from "./commands.ts";
import { escapeControls, jsonLine } from "./escape.ts";
import { type Io, lostExitCode } from "./io.ts";
import { Secrets } from "./secrets.ts";
import { runSend } from "./send.ts";

/** `tally --help`. */
export function mainHelp(): string {
  return `tally ${VERSION}: send Segment-format analytics from CI pipelines and shell scripts.

Usage:
  tally track    --user-id U --event "Deploy Finished" --properties '{"service":"api"}'
  tally identify --user-id U --traits '{"plan":"Free"}'
  tally page | screen | group | alias [flags]    every field of the call as a flag
  tally send [FILE ...]                          NDJSON or JSON-array messages from files or stdin
  tally serve [--port 8787]                      local collector + inspector
  tally plan check --plan PLAN [FILE ...]        check messages against a tracking plan (also: plan lint, plan types)
  tally --type track --writeKey K --userId U --event E    (Segment's library-e2e-tester convention)

Common flags: --write-key KEY (else $TALLY_WRITE_KEY, else $SEGMENT_WRITE_KEY), --host URL (else $TALLY_HOST),
--gzip, --timeout SECONDS, --max-retries N, --retry-delay SECONDS, --dry-run, --json, --debug.
Run tally COMMAND --help for each command's flags.

The write key is never printed: where it is typed in place of another value (a file name, a flag's value),
messages show [write key]. Control characters from input are shown escaped (\\u001b) in every message.

Exit codes: 0 all delivered; 1 some messages not delivered; 2 usage error or invalid input.
`;
}

/**
 * The collector (serve/serve.ts), loaded only when `tally serve` runs; the binary bundles it.
 * It writes through `io` like every command, and stops cleanly when its output is lost. Its log quotes
 * what clients send (event names, user ids): control characters in it are escaped.
 */
async function serve(args: string[], io: Io): Promise<number> {
  const collector = await import("../serve/serve.ts");
  return collector.serve(args, {
    out: (line) => void io.outFixed(escapeControls(line) + "\n"),
    err: (line) => io.errRaw(io.clean(line) + "\n"),
    signal: io.lost,
  });
}

/** The e2e-tester form: `--type T` anywhere among flags, no command word. */
function e2eType(argv: readonly string[], secrets: Secrets): [MessageType, string[]] | undefined {
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    let type: string | undefined;
    if (arg === "--type") type = argv[i + 1];
    else if (arg.startsWith("--type=")) type = arg.slice(7);
    else continue;
    if (type === undefined || !(CALL_TYPES as string[]).includes(type)) {
      const got = type === undefined ? "nothing" : JSON.stringify(secrets.value(type));
      throw new UsageError(`--type must be one of ${CALL_TYPES.join(", ")}, got ${got}`);
    }
    const rest = [...argv.slice(0, i), ...argv.slice(arg === "--type" ? i + 2 : i + 1)];
    return [type as MessageType, rest];
  }
  return undefined;
}

async function dispatch(argv: readonly string[], io: Io): Promise<number> {
  const [command, ...rest] = argv;
  if (command === undefined || command === "--help" || command === "-h" || command === "help") {
    const topic = command === "help" ? rest[0] : undefined;
    if (topic !== undefined && topic !== "serve") return dispatch([topic, "--help"], io);
    if (topic === undefined) {
      await io.outFixed(mainHelp());
      return command === undefined ? 2 : 0;
    }
  }
  if (command === "--version" || command === "-V" || command === "version") {
    await io.outFixed(`tally ${VERSION}\n`);
    return 0;
  }
  if ((CALL_TYPES as string[]).includes(command)) return runCall(command as MessageType, rest, io);
  if (command === "send") return runSend(rest, io);
  // Loaded only when it runs: the validator is no weight on the other commands.
  if (command === "plan") return (await import("./plan.ts")).runPlan(rest, io);
  if (command === "serve" || (command === "help" && rest[0] === "serve")) {
    return serve(command === "help" ? ["--help"] : rest, io);
  }
  if (command.startsWith("--")) {
    const e2e = e2eType(argv, io.secrets);
    if (e2e !== undefined) return runCall(e2e[0], e2e[1], io);
  }
  throw new UsageError(`unknown command ${JSON.stringify(io.secrets.value(command))} (see tally --help)`);
}

/** Whether `--json` is among the flags (before any `--`), however the rest parses. */
function wantsJson(argv: readonly string[]): boolean {
  for (const arg of argv) {
    if (arg === "--") return false;
    if (arg === "--json" || arg === "--json=true" || arg === "--json=1") return true;
  }
  return false;
}

/** Runs tally with `argv` (the arguments after the program); resolves to the exit code. */
export async function main(argv: readonly string[], io: Io): Promise<number> {
  io.secrets = Secrets.of(argv, io.env);
  let code: number;
  try {
    code = await dispatch(argv, io);
  } catch (error) {
    const usage = error instanceof UsageError;
    // A bug of ours: still one line, never a stack trace.
    const message = io.clean(usage ? error.message : `internal error: ${(error as Error)?.message ?? error}`);
    io.errorFixed(message);
    // --json promises a JSON object on stdout, an error included: the same words as on stderr.
    if (wantsJson(argv)) await io.outFixed(jsonLine({ ok: false, error: message }) + "\n");
    code = usage ? 2 : 1;
  }
  // A result that could not be written (>/dev/full) is not a success; a reader that left (| head) is its choice.
  return code === 0 && lostExitCode(io) === 1 ? 1 : code;
}
