/**
 * Flag parsing for `tally`: `--name value`, `--name=value`, `--flag`,
 * `--no-flag`, and every kebab-case flag also under its camelCase name
 * (`--user-id` or `--userId`), which is how Segment's library-e2e-tester
 * passes them. Unknown flags and missing values are usage errors.
 *
 * @module
 */

/** How a flag's value is read. */
export type FlagKind = "string" | "boolean" | "json" | "number" | "integer";

/** One flag a command accepts. */
export interface FlagSpec {
  /** The kebab-case name, without dashes. */
  name: string;
  kind: FlagKind;
  /** One line for `--help`. */
  help: string;
  /** The value's placeholder in `--help` (`ID`, `JSON`, ...). */
  value?: string;
}

/** A flag's parsed value. */
export type FlagValue = string | boolean | number | Record<string, unknown>;

/** The result of parsing: flags by kebab-case name, and the other arguments. */
export interface Parsed {
  flags: Map<string, FlagValue>;
  positionals: string[];
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
  } catch (error) {
    throw new UsageError(`--${flag} is not valid JSON (${(error as Error).message})`);
  }
  if (typeof value !== "object" || value === null || Array.isArray(value)) {
    throw new UsageError(`--${flag} must be a JSON object such as '{"key":"value"}', got ${describe(value)}`);
  }
  return value as Record<string, unknown>;
}

function convert(spec: FlagSpec, raw: string): FlagValue {
  switch (spec.kind) {
    case "json":
      return jsonObject(spec.name, raw);
    case "number":
    case "integer": {
      const n = raw.trim() === "" ? NaN : Number(raw);
      if (!Number.isFinite(n) || (spec.kind === "integer" && !Number.isInteger(n))) {
        throw new UsageError(
          `--${spec.name} must be ${spec.kind === "integer" ? "an integer" : "a number"}, got "${raw}"`,
        );
      }
      return n;
    }
    case "boolean": {
      if (raw === "true" || raw === "1") return true;
      if (raw === "false" || raw === "0") return false;
      throw new UsageError(`--${spec.name} takes no value, or =true or =false; got "${raw}"`);
    }
    default:
      return raw;
  }
}

/**
 * Parses `argv` against `specs`. `command` names the command in errors
 * ("tally track: unknown flag --foo").
 */
export function parseArgs(argv: readonly string[], specs: readonly FlagSpec[], command: string): Parsed {
  const byName = new Map(specs.map((s) => [s.name, s]));
  const flags = new Map<string, FlagValue>();
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
      if (arg.startsWith("-") && arg !== "-") throw new UsageError(`unknown flag ${arg} ${see}`);
      positionals.push(arg);
      continue;
    }
    const eq = arg.indexOf("=");
    const written = eq < 0 ? arg.slice(2) : arg.slice(2, eq);
    let name = kebab(written);
    let spec = byName.get(name);
    let negated = false;
    if (spec === undefined && name.startsWith("no-") && byName.get(name.slice(3))?.kind === "boolean") {
      name = name.slice(3);
      spec = byName.get(name);
      negated = true;
    }
    if (spec === undefined) throw new UsageError(`unknown flag --${written} ${see}`);
    if (flags.has(name) && name !== "help") throw new UsageError(`--${name} is given twice`);
    if (spec.kind === "boolean") {
      if (negated && eq >= 0) throw new UsageError(`--no-${name} takes no value`);
      flags.set(name, negated ? false : eq < 0 ? true : convert(spec, arg.slice(eq + 1)));
      continue;
    }
    let raw: string;
    if (eq >= 0) raw = arg.slice(eq + 1);
    else {
      const next = argv[i + 1];
      // "--user-id --event E" is a forgotten value, not a user id of "--event".
      if (next === undefined || next.startsWith("--")) throw new UsageError(`--${name} needs a value ${see}`);
      raw = next;
      i++;
    }
    flags.set(name, convert(spec, raw));
  }
  return { flags, positionals };
}

/** Formats the flags of `specs` for `--help`, one per line. */
export function flagHelp(specs: readonly FlagSpec[]): string {
  const rows = specs.map((s) => {
    const left = s.kind === "boolean" ? `--${s.name}` : `--${s.name} ${s.value ?? "VALUE"}`;
    return [left, s.help] as const;
  });
  const width = Math.max(...rows.map(([left]) => left.length));
  return rows.map(([left, help]) => `  ${left.padEnd(width)}  ${help}`).join("\n");
}
