/**
 * Flag parsing for every `tally` command, `tally serve` included:
 * `--name value`, `--name=value`, `--flag`, `--no-flag` (for the flags that
 * say they take it), and every kebab-case flag also under its camelCase
 * name (`--user-id` or `--userId`), which is how Segment's
 * library-e2e-tester passes them. A value may start with one dash
 * (`--latency -5` is the value -5); one that starts with two is taken for a
 * forgotten value. Unknown flags and missing values are usage errors.
 * Errors quote what was typed only through the {@linkcode Secrets} given,
 * so a write key typed as another flag's value is shown as `[write key]`.
 *
 * @module
 */
import { whyNotJson } from "./json_error.ts";
import { Secrets } from "./secrets.ts";

/** How a flag's value is read. */
export type FlagKind = "string" | "boolean" | "json" | "number" | "integer" | "optional-string";

/** One flag a command accepts. */
export interface FlagSpec {
  /** The kebab-case name, without dashes. */
  name: string;
  kind: FlagKind;
  /** One line for `--help`. */
  help: string;
  /** The value's placeholder in `--help` (`ID`, `JSON`, ...). */
  value?: string;
  /** A boolean that also takes `--no-NAME` (help shows both). */
  negatable?: boolean;
  /**
   * For an `optional-string`: whether the next argument is the flag's value (`--resume DIR`) rather than a
   * positional; without it, only `--name=value` gives a value. Alone, the flag's value is `true`.
   */
  takesNext?: (next: string) => boolean;
}

/** A flag's parsed value. */
export type FlagValue = string | boolean | number | Record<string, unknown>;

/** The result of parsing: flags by kebab-case name, and the other arguments. */
export interface Parsed {
  flags: Map<string, FlagValue>;
  positionals: string[];
  /** Each flag's name as it was typed (`userId` for `--userId`), by kebab-case name, for errors. */
  written: Map<string, string>;
}

/** A mistake in how tally was called (exit code 2). */
export class UsageError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "UsageError";
  }
}

/** `userId` -> `user-id`; kebab-case names pass through. */
export const kebab = (name: string): string => name.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`);

const describe = (value: unknown): string =>
  value === null ? "null" : Array.isArray(value) ? "an array" : `a ${typeof value}`;

/** Parses `text` as the JSON object a flag such as `--properties` takes. */
export function jsonObject(flag: string, text: string): Record<string, unknown> {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    // In tally's words: the runtime's message would quote a piece of the text.
    const why = whyNotJson(text);
    throw new UsageError(`--${flag} is not valid JSON${why === undefined ? "" : ` (${why})`}`);
  }
  if (typeof value !== "object" || value === null || Array.isArray(value)) {
    throw new UsageError(`--${flag} must be a JSON object such as '{"key":"value"}', got ${describe(value)}`);
  }
  return value as Record<string, unknown>;
}

/** `raw` as `spec` reads it; `typed` is the flag's name as written, for errors. */
function convert(spec: FlagSpec, raw: string, typed: string, secrets: Secrets): FlagValue {
  switch (spec.kind) {
    case "json":
      return jsonObject(typed, raw);
    case "number":
    case "integer": {
      const n = raw.trim() === "" ? NaN : Number(raw);
      if (!Number.isFinite(n) || (spec.kind === "integer" && !Number.isInteger(n))) {
        throw new UsageError(
          `--${typed} must be ${spec.kind === "integer" ? "an integer" : "a number"}, got "${secrets.value(raw)}"`,
        );
      }
      return n;
    }
    case "boolean": {
      if (raw === "true" || raw === "1") return true;
      if (raw === "false" || raw === "0") return false;
      throw new UsageError(`--${typed} takes no value, or =true or =false; got "${secrets.value(raw)}"`);
    }
    default:
      return raw;
  }
}

/**
 * Parses `argv` against `specs`. `command` names the command in errors
 * ("tally track: unknown flag --foo"); `secrets`, the write keys no error may quote.
 */
export function parseArgs(
  argv: readonly string[],
  specs: readonly FlagSpec[],
  command: string,
  secrets: Secrets = Secrets.none,
): Parsed {
  const byName = new Map(specs.map((s) => [s.name, s]));
  const flags = new Map<string, FlagValue>();
  const written = new Map<string, string>();
  const positionals: string[] = [];
  const see = `(see tally ${command} --help)`;
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    if (arg === "--") {
      positionals.push(...argv.slice(i + 1));
      break;
    }
    if (arg === "-h") {
      flags.set("help", true);
      continue;
    }
    if (!arg.startsWith("--") || arg === "-") {
      if (arg.startsWith("-") && arg !== "-") {
        throw new UsageError(`unknown flag ${secrets.value(arg.split("=", 1)[0])} ${see}`);
      }
      positionals.push(arg);
      continue;
    }
    const eq = arg.indexOf("=");
    const typed = eq < 0 ? arg.slice(2) : arg.slice(2, eq);
    let name = kebab(typed);
    let spec = byName.get(name);
    let negated = false;
    if (spec === undefined && name.startsWith("no-") && byName.get(name.slice(3))?.negatable === true) {
      name = name.slice(3);
      spec = byName.get(name);
      negated = true;
    }
    if (spec === undefined) throw new UsageError(`unknown flag --${secrets.value(typed)} ${see}`);
    if (flags.has(name) && name !== "help") throw new UsageError(`--${name} is given twice`);
    written.set(name, typed);
    if (spec.kind === "boolean") {
      if (negated && eq >= 0) throw new UsageError(`--${typed} takes no value`);
      flags.set(name, negated ? false : eq < 0 ? true : convert(spec, arg.slice(eq + 1), typed, secrets));
      continue;
    }
    if (spec.kind === "optional-string") {
      const next = argv[i + 1];
      if (eq >= 0) flags.set(name, arg.slice(eq + 1));
      else if (next !== undefined && !next.startsWith("-") && spec.takesNext?.(next) === true) {
        flags.set(name, next);
        i++;
      } else flags.set(name, true);
      continue;
    }
    let raw: string;
    if (eq >= 0) raw = arg.slice(eq + 1);
    else {
      const next = argv[i + 1];
      // "--user-id --event E" is a forgotten value, not a user id of "--event".
      if (next === undefined || next.startsWith("--")) throw new UsageError(`--${typed} needs a value ${see}`);
      raw = next;
      i++;
    }
    flags.set(name, convert(spec, raw, typed, secrets));
  }
  return { flags, positionals, written };
}

/** Formats the flags of `specs` for `--help`, one per line. */
export function flagHelp(specs: readonly FlagSpec[]): string {
  const rows = specs.map((s) => {
    const left = s.kind === "optional-string"
      ? `--${s.name} [${s.value ?? "VALUE"}]`
      : s.kind !== "boolean"
      ? `--${s.name} ${s.value ?? "VALUE"}`
      : s.negatable
      ? `--${s.name}, --no-${s.name}`
      : s.name === "help"
      ? "-h, --help"
      : `--${s.name}`;
    return [left, s.help] as const;
  });
  const width = Math.max(...rows.map(([left]) => left.length));
  return rows.map(([left, help]) => `  ${left.padEnd(width)}  ${help}`).join("\n");
}
