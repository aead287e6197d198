/**
 * `tally plan types PLAN [-o FILE] [--import-from SPECIFIER]`: TypeScript
 * generated from a tracking plan (plan/codegen.ts), written to FILE (through
 * a temporary file renamed into place, so a reader never sees half of it)
 * or to stdout. `tally plan` (cli/plan.ts) dispatches `plan types` here.
 *
 * @module
 */
import { rename, rm, writeFile } from "node:fs/promises";
import { generateTypes, TypesError } from "../plan/codegen.ts";
import { loadPlan, PlanError } from "../plan/load.ts";
import { flagHelp, type FlagSpec, parseArgs, UsageError } from "./args.ts";
import type { Io } from "./io.ts";

/** The flags `tally plan types` takes. */
export const PLAN_TYPES_FLAGS: FlagSpec[] = [
  { name: "out", kind: "string", value: "FILE", help: "write the TypeScript to FILE (default: stdout); also -o" },
  {
    name: "import-from",
    kind: "string",
    value: "SPECIFIER",
    help: 'where the file imports the client\'s types from (default "@tally/analytics"; e.g. "jsr:@tally/analytics")',
  },
  { name: "help", kind: "boolean", help: "show this help" },
];

/** `tally plan types --help`. */
export function planTypesHelp(): string {
  return `Generate TypeScript from a tracking plan: one typed function per planned event, page and screen.

Usage: tally plan types [flags] PLAN      (PLAN: a Tally plan, a Segment Public API rules export or a Typewriter plan.json)

The file imports only types from the client and has no runtime dependency; it runs on Deno, Bun, Node
and Workers. Use it as:
  import { Analytics } from "@tally/analytics";
  import { createTracking } from "./tracking.ts";
  const tracking = createTracking(new Analytics({ writeKey: "KEY" }));
  tracking.trackOrderCompleted({ userId: "u1", properties: { order_id: "o1", total: 12, currency: "EUR", products: [] } });

An event with versions gets a function per version (trackOrderCompletedV1) besides the unsuffixed one,
which sends the highest; those set context.protocols.event_version. The same plan gives the same bytes.

Examples:
  tally plan types plan.json -o src/tracking.ts
  tally plan types plan.json --import-from jsr:@tally/analytics > tracking.ts

Flags (each also accepted in camelCase):
${flagHelp(PLAN_TYPES_FLAGS)}

Exit codes: 0 written; 1 the output could not be written; 2 usage error, an unreadable plan, or names that
collide once turned into function names (tally plan lint lists them).
`;
}

/** `-o FILE` as `--out FILE` (the only short flag besides -h), up to a `--`. */
function shortFlags(argv: readonly string[]): string[] {
  const end = argv.indexOf("--");
  return argv.map((arg, i) => (arg === "-o" && (end < 0 || i < end) ? "--out" : arg));
}

/** Runs `tally plan types` with the arguments after `types`; resolves to the exit code. */
export async function planTypes(argv: readonly string[], io: Io): Promise<number> {
  const parsed = parseArgs(shortFlags(argv), PLAN_TYPES_FLAGS, "plan types", io.secrets);
  if (parsed.flags.get("help") === true) {
    await io.outFixed(planTypesHelp());
    return 0;
  }
  const [path, ...more] = parsed.positionals;
  if (path === undefined) throw new UsageError("tally plan types needs a plan file (see tally plan types --help)");
  if (more.length > 0) {
    throw new UsageError(`tally plan types takes one plan file, got ${parsed.positionals.length}`);
  }
  const output = parsed.flags.get("out") as string | undefined;
  const importFrom = parsed.flags.get("import-from") as string | undefined;
  if (output === "") throw new UsageError("--out needs a file name");
  if (importFrom !== undefined && importFrom.trim() === "") throw new UsageError("--import-from needs a specifier");

  let source: string;
  try {
    source = generateTypes(await loadPlan(path), { importFrom });
  } catch (error) {
    // An unreadable plan, or names that collide: invalid input (exit 2), in the loader's or generator's words.
    if (error instanceof PlanError || error instanceof TypesError) {
      throw new UsageError(error.message);
    }
    throw error;
  }

  if (output === undefined || output === "-") {
    await io.out(source);
    return 0;
  }
  const temporary = `${output}.${crypto.randomUUID().slice(0, 8)}.tmp`;
  try {
    await writeFile(temporary, source);
    await rename(temporary, output);
  } catch (error) {
    await rm(temporary, { force: true }).catch(() => {});
    const code = (error as { code?: string }).code;
    const why = code === "ENOENT"
      ? "no such directory"
      : code === "EACCES"
      ? "permission denied"
      : code === "EISDIR"
      ? "it is a directory"
      : code ?? (error as Error).message;
    io.error(`Cannot write ${output}: ${why}`);
    return 1;
  }
  const functions = source.match(/^ {2}(?:track|page|screen)\w*\(/gm)?.length ?? 0;
  io.error(`wrote ${output}: ${functions} event functions, identify, group and alias`);
  return 0;
}
