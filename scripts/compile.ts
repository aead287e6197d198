/**
 * Builds the `tally` CLI into one executable, `./tally` by default (or the
 * path given as the first argument): `deno compile` when it can fetch its
 * runtime (denort), else `bun build --compile`, which works offline; it says
 * which one it used. Exits non-zero when neither works.
 *
 * Run: `deno task compile` or `node_modules/.bin/deno run --allow-run --allow-read --allow-write --allow-env
 * scripts/compile.ts [OUTFILE]` (Bun runs it too: `bun scripts/compile.ts`).
 *
 * @module
 */
import { spawnSync } from "node:child_process";
import { existsSync } from "node:fs";
import process from "node:process";
import { fileURLToPath } from "node:url";

const ROOT = fileURLToPath(new URL("..", import.meta.url));
const BIN = `${ROOT}node_modules/.bin/`;
const outfile = process.argv[2] ?? "tally";
const say = (line: string): void => console.error(`[compile] ${line}`);

function run(cmd: string, args: string[]): { ok: boolean; output: string } {
  const result = spawnSync(cmd, args, {
    cwd: ROOT,
    encoding: "utf8",
    stdio: ["ignore", "pipe", "pipe"],
    env: { ...process.env, NO_COLOR: "1" }, // plain text, to quote in the fallback line
  });
  const output = `${result.stdout ?? ""}${result.stderr ?? ""}${result.error ? String(result.error) : ""}`;
  return { ok: result.status === 0, output };
}

const tool = (name: string): string => (existsSync(`${BIN}${name}`) ? `${BIN}${name}` : name);

say(`deno compile cli.ts -> ${outfile}`);
const deno = run(tool("deno"), [
  "compile",
  "--allow-net",
  "--allow-read",
  "--allow-write", // tally serve appends to its events file
  "--allow-env",
  "--output",
  outfile,
  "cli.ts",
]);
if (deno.ok) {
  say(`built ${outfile} with deno compile`);
  process.exit(0);
}
const firstError = deno.output.split("\n").find((line) => /error|failed/i.test(line));
const offline = /dl\.deno\.land|denort|dns error|lookup address|Connect/i.test(deno.output);
say(
  offline
    ? "deno compile cannot fetch its runtime (denort) here, offline: falling back to bun build --compile"
    : `deno compile failed (${firstError?.trim() ?? "no output"}): falling back to bun build --compile`,
);
const bun = run(tool("bun"), ["build", "--compile", "cli.ts", "--outfile", outfile]);
if (!bun.ok) {
  say(`bun build --compile failed too:\n${bun.output.trim()}`);
  process.exit(1);
}
say(`built ${outfile} with bun build --compile`);
