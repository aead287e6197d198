/**
 * `tally plan check|lint|types`: the tracking plan in CI.
 *
 * `tally plan check --plan PLAN [FILE ...]` reads NDJSON (or a JSON array)
 * of messages from files or stdin, streaming, gzip decompressed on the way:
 * `tally send` input, plain message lines, and the lines `tally serve`
 * writes (`{"id","receivedAt","status","reasons","message"}`, which stand
 * for their `message`). Each violation is one line on stdout,
 * `file:line: event: path: category: message`; `--json` writes one JSON
 * object per violation and a summary; `--junit FILE` writes a JUnit report
 * (a testsuite per file, a testcase per message, a failure per violation).
 * Exit 0: every message keeps the plan; 1: violations; 2: a usage error, a
 * plan that cannot be used, or input lines that are not messages.
 *
 * `tally plan lint PLAN` checks the plan itself (plan/lint.ts).
 *
 * This file is loaded only when `tally plan` runs: the validator is no
 * weight on the other commands.
 *
 * @module
 */
import { createReadStream, statSync, writeFileSync } from "node:fs";
import process from "node:process";
import { createChecker } from "../plan/check.ts";
import { loadPlan, PlanError } from "../plan/load.ts";
import { lintPlan } from "../plan/lint.ts";
import type { Plan, Violation } from "../plan/model.ts";
import { summary } from "../plan/collector.ts";
import { flagHelp, type FlagSpec, parseArgs, UsageError } from "./args.ts";
import { escapeControls, jsonLine } from "./escape.ts";
import { decoded, GzipError } from "./input.ts";
import { type Io, lostExitCode } from "./io.ts";
import { whyNotJson } from "./json_error.ts";
import { ItemReader, unwrapCaptured } from "./ndjson.ts";
import { PLAN_TYPES_FLAGS, planTypes } from "./plan_types.ts";

const HELP: FlagSpec = { name: "help", kind: "boolean", help: "show this help" };
const JSON_FLAG: FlagSpec = { name: "json", kind: "boolean", help: "one JSON object per line on stdout" };

/** The flags `tally plan check` accepts. */
export const PLAN_CHECK_FLAGS: readonly FlagSpec[] = [
  { name: "plan", kind: "string", value: "FILE", help: "the tracking plan (required)" },
  { ...JSON_FLAG, help: "one JSON object per violation, then a summary object, on stdout" },
  { name: "junit", kind: "string", value: "FILE", help: "also write a JUnit XML report to FILE" },
  HELP,
];

/** The flags `tally plan lint` accepts. */
export const PLAN_LINT_FLAGS: readonly FlagSpec[] = [
  { ...JSON_FLAG, help: "one JSON object per problem, then a summary object, on stdout" },
  HELP,
];

/** `tally plan --help`. */
export function planHelp(): string {
  return `Check events against a tracking plan, check the plan itself, generate typed calls from it.

Usage:
  tally plan check --plan PLAN [FILE ...]   check NDJSON or JSON-array messages (files, or stdin) against PLAN
  tally plan lint PLAN                      check the plan: invalid schemas, colliding names, duplicate versions
  tally plan types PLAN [-o FILE]           generate TypeScript: one typed function per planned event

PLAN is a Tally plan file ({"tally": 1, ...}), a Segment Public API tracking-plan rules export, or a
Typewriter plan.json; the format is recognized by its shape.

tally plan check flags:
${flagHelp(PLAN_CHECK_FLAGS)}

tally plan lint flags:
${flagHelp(PLAN_LINT_FLAGS)}

tally plan types flags:
${flagHelp(PLAN_TYPES_FLAGS)}

Input lines may be plain messages ({"type":"track","event":...}, as tally send reads them) or the lines
tally serve writes (.tally/events.ndjson). Gzip input is decompressed as it is read.

Output of check: one line per violation on stdout, file:line: event: path: category: message, where category
is one of unplanned_event, unknown_version, required_missing, type_mismatch, additional_property,
enum_mismatch, format_mismatch, constraint. A summary goes to stderr.

Exit codes: 0 every message keeps the plan (lint: no problem); 1 violations (lint: problems);
2 usage error, a plan that cannot be used, or input lines that are not messages.
`;
}

/** The plan at `path`, or a usage error that says why not (check and types cannot run without one). */
async function planOrUsage(path: string, io: Io): Promise<Plan> {
  try {
    return await loadPlan(path);
  } catch (error) {
    if (error instanceof PlanError) throw new UsageError(io.secrets.text(error.message));
    throw error;
  }
}

/** One input: a file, or stdin. */
interface Source {
  name: string;
  path: string | undefined;
}

function sources(paths: string[], io: Io): Source[] {
  if (paths.length === 0) paths = ["-"];
  if (paths.filter((p) => p === "-").length > 1) throw new UsageError("stdin (-) can be read only once");
  return paths.map((path) => {
    if (path === "-") return { name: "stdin", path: undefined };
    const name = io.secrets.value(path);
    try {
      if (statSync(path).isDirectory()) throw new UsageError(`Cannot read ${name}: it is a directory`);
    } catch (error) {
      if (error instanceof UsageError) throw error;
      const code = (error as { code?: string }).code;
      throw new UsageError(`Cannot read ${name}: ${code === "ENOENT" ? "no such file" : code ?? String(error)}`);
    }
    return { name, path };
  });
}

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === "object" && v !== null && !Array.isArray(v);

/** How a message is named in a violation line: the event of a track, `page NAME`, or the call type. */
function label(message: Record<string, unknown>): string {
  const type = String(message.type);
  if (type === "track") return typeof message.event === "string" ? message.event : "track";
  if (type === "page" || type === "screen") return typeof message.name === "string" ? `${type} ${message.name}` : type;
  return type;
}

/** Text for XML, attribute or element: escaped, and without the characters XML 1.0 cannot hold. */
export function xml(text: string): string {
  return text
    .replace(/[&<>"']/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&apos;" })[c]!)
    // deno-lint-ignore no-control-regex -- XML 1.0 cannot hold these, even escaped
    .replace(/[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, "0")}`)
    .replace(/[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/g, "\ufffd");
}

/** The JUnit report of one input, built as it is read. */
class Suite {
  tests = 0;
  failures = 0;
  errors = 0;
  readonly cases: string[] = [];
  constructor(readonly name: string) {}

  add(line: number, event: string, violations: Violation[]): void {
    this.tests++;
    const head = `    <testcase classname="${xml(this.name)}" name="${xml(`line ${line}: ${event}`)}"`;
    if (violations.length === 0) {
      this.cases.push(`${head}/>`);
      return;
    }
    this.failures++;
    const failures = violations.map((v) =>
      `      <failure type="${xml(v.category)}" message="${xml(`${v.path}: ${v.message}`)}">${
        xml(`${v.category} at ${v.path}: ${v.message}`)
      }</failure>`
    );
    this.cases.push(`${head}>\n${failures.join("\n")}\n    </testcase>`);
  }

  invalid(line: number, why: string): void {
    this.tests++;
    this.errors++;
    this.cases.push(
      `    <testcase classname="${xml(this.name)}" name="${xml(`line ${line}`)}">\n` +
        `      <error type="invalid_line" message="${xml(why)}">${xml(why)}</error>\n    </testcase>`,
    );
  }

  toXml(): string {
    return `  <testsuite name="${
      xml(this.name)
    }" tests="${this.tests}" failures="${this.failures}" errors="${this.errors}">\n` +
      this.cases.map((c) => `${c}\n`).join("") + "  </testsuite>\n";
  }
}

/** The summary `tally plan check --json` ends with. */
export interface CheckSummary {
  summary: true;
  /** Messages checked (lines that were messages). */
  messages: number;
  /** Violations found, in all. */
  violations: number;
  /** Messages with at least one violation. */
  failed: number;
  /** Lines that were not messages (invalid JSON, not an object, no type). */
  invalid: number;
  /** Inputs read. */
  files: number;
  /** Seconds spent. */
  seconds: number;
}

async function runCheck(argv: readonly string[], io: Io): Promise<number> {
  const parsed = parseArgs(argv, PLAN_CHECK_FLAGS, "plan check", io.secrets);
  if (parsed.flags.get("help") === true) {
    await io.outFixed(planHelp());
    return 0;
  }
  const planPath = parsed.flags.get("plan") as string | undefined;
  if (planPath === undefined) throw new UsageError("plan check needs --plan FILE (see tally plan --help)");
  const json = parsed.flags.get("json") === true;
  const junitPath = parsed.flags.get("junit") as string | undefined;
  const inputs = sources(parsed.positionals, io);
  const plan = await planOrUsage(planPath, io);
  let checker;
  try {
    checker = createChecker(plan);
  } catch (error) {
    throw new UsageError(io.secrets.text((error as Error).message));
  }
  const started = performance.now();
  const counts = { messages: 0, violations: 0, failed: 0, invalid: 0 };
  const suites: Suite[] = [];
  let readError: string | undefined;

  for (const source of inputs) {
    if (io.lost.aborted) break;
    const suite = new Suite(source.name);
    suites.push(suite);
    // Violation lines gathered per chunk and written at once: one write per line would be the cost of the command.
    let out = "";
    const invalid = (line: number, why: string): void => {
      counts.invalid++;
      suite.invalid(line, why);
      if (json) out += jsonLine({ file: source.name, line, error: why }) + "\n";
      else io.error(`${source.name}:${line}: ${why}`);
    };
    const reader = new ItemReader();
    if (source.path === undefined && (process.stdin as { isTTY?: boolean }).isTTY) {
      io.errorFixed("reading messages from stdin, one JSON object per line (Ctrl-D to end)");
    }
    const stream = source.path === undefined
      ? process.stdin
      : createReadStream(source.path, { highWaterMark: 256 * 1024 });
    const handle = (item: { line: number; text?: string; error?: string }): void => {
      if (item.error !== undefined) return invalid(item.line, item.error);
      let value: unknown;
      try {
        value = unwrapCaptured(JSON.parse(item.text!));
      } catch {
        const why = whyNotJson(item.text!);
        return invalid(item.line, `not valid JSON${why === undefined ? "" : ` (${why})`}`);
      }
      if (!isObject(value)) return invalid(item.line, "expected a JSON object (a message)");
      if (typeof value.type !== "string") return invalid(item.line, "type is required (a message's call type)");
      counts.messages++;
      const violations = checker.check(value);
      const event = label(value);
      if (junitPath !== undefined) suite.add(item.line, event, violations);
      if (violations.length === 0) return;
      counts.failed++;
      counts.violations += violations.length;
      for (const v of violations) {
        out += json
          ? jsonLine({
            file: source.name,
            line: item.line,
            event,
            type: value.type,
            ...(typeof value.messageId === "string" ? { messageId: value.messageId } : {}),
            category: v.category,
            path: v.path,
            message: v.message,
          }) + "\n"
          : escapeControls(`${source.name}:${item.line}: ${event}: ${v.path}: ${v.category}: ${v.message}`) + "\n";
      }
    };
    const flush = async (): Promise<void> => {
      if (out === "") return;
      const text = out;
      out = "";
      await io.out(text);
    };
    try {
      for await (const chunk of decoded(stream as AsyncIterable<Uint8Array<ArrayBuffer>>, () => {}, io.lost)) {
        for (const item of reader.push(chunk)) handle(item);
        await flush();
      }
      for (const item of reader.end()) handle(item);
      await flush();
    } catch (error) {
      if (error instanceof UsageError) throw error;
      const code = error instanceof GzipError ? undefined : (error as { code?: string }).code;
      readError = `Cannot read ${source.name}: ${code ?? (error as Error).message}`;
      io.error(readError);
      break;
    } finally {
      if (source.path !== undefined) (stream as { destroy?: () => void }).destroy?.();
      else process.stdin.pause();
    }
  }

  if (junitPath !== undefined) {
    const total = suites.reduce((n, s) => n + s.tests, 0);
    const failures = suites.reduce((n, s) => n + s.failures, 0);
    const errors = suites.reduce((n, s) => n + s.errors, 0);
    const report = `<?xml version="1.0" encoding="UTF-8"?>\n` +
      `<testsuites name="tally plan check" tests="${total}" failures="${failures}" errors="${errors}">\n` +
      suites.map((s) => s.toXml()).join("") + "</testsuites>\n";
    try {
      writeFileSync(junitPath, report);
    } catch (error) {
      const code = (error as { code?: string }).code;
      throw new UsageError(`Cannot write ${io.secrets.value(junitPath)}: ${code ?? (error as Error).message}`);
    }
  }
  const result: CheckSummary = {
    summary: true,
    ...counts,
    files: suites.length,
    seconds: Math.round(performance.now() - started) / 1000,
  };
  if (json) await io.outFixed(jsonLine(result) + "\n");
  const plural = (n: number, one: string): string => `${n} ${one}${n === 1 ? "" : "s"}`;
  const tail = counts.invalid > 0 ? `; ${plural(counts.invalid, "line")} not a message` : "";
  io.errorFixed(
    `checked ${plural(counts.messages, "message")}: ` +
      (counts.violations === 0
        ? "every one keeps the plan"
        : `${plural(counts.violations, "violation")} in ${plural(counts.failed, "message")}`) +
      `${tail} (${result.seconds.toFixed(1)} s)`,
  );
  const lost = lostExitCode(io);
  if (lost !== undefined) return lost;
  if (counts.invalid > 0 || readError !== undefined) return 2;
  return counts.violations > 0 ? 1 : 0;
}

async function runLint(argv: readonly string[], io: Io): Promise<number> {
  const parsed = parseArgs(argv, PLAN_LINT_FLAGS, "plan lint", io.secrets);
  if (parsed.flags.get("help") === true) {
    await io.outFixed(planHelp());
    return 0;
  }
  if (parsed.positionals.length !== 1) {
    throw new UsageError("plan lint takes one plan file: tally plan lint PLAN (see tally plan --help)");
  }
  const path = parsed.positionals[0];
  const name = io.secrets.value(path);
  const json = parsed.flags.get("json") === true;
  // A file that cannot be read is a usage error; one that is read and is no plan is the plan's problem.
  sources([path], io);
  let plan: Plan;
  try {
    plan = await loadPlan(path);
  } catch (error) {
    if (!(error instanceof PlanError)) throw error;
    if (json) {
      await io.out(jsonLine({ file: name, kind: "invalid_plan", where: error.path, message: error.message }) + "\n");
    } else await io.out(escapeControls(`${name}: invalid_plan: ${error.message}`) + "\n");
    if (json) await io.outFixed(jsonLine({ summary: true, problems: 1 }) + "\n");
    return 1;
  }
  const problems = lintPlan(plan);
  let text = "";
  for (const p of problems) {
    text += json
      ? jsonLine({ file: name, kind: p.kind, where: p.where, message: p.message }) + "\n"
      : escapeControls(`${name}: ${p.kind}: ${p.where}: ${p.message}`) + "\n";
  }
  if (text !== "") await io.out(text);
  if (json) await io.outFixed(jsonLine({ summary: true, problems: problems.length }) + "\n");
  if (problems.length === 0) io.error(`${name}: no problems (${summary(plan)})`);
  else io.error(`${name}: ${problems.length} ${problems.length === 1 ? "problem" : "problems"}`);
  return problems.length === 0 ? 0 : 1;
}

/** Runs `tally plan ...`; resolves to the exit code. */
export async function runPlan(argv: readonly string[], io: Io): Promise<number> {
  const [sub, ...rest] = argv;
  if (sub === undefined || sub === "--help" || sub === "-h" || sub === "help") {
    await io.outFixed(planHelp());
    return sub === undefined ? 2 : 0;
  }
  if (sub === "check") return runCheck(rest, io);
  if (sub === "lint") return runLint(rest, io);
  if (sub === "types") return planTypes(rest, io);
  throw new UsageError(
    `unknown plan command ${JSON.stringify(io.secrets.value(sub))}: check, lint or types (see tally plan --help)`,
  );
}
