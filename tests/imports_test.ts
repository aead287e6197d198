/**
 * DESIGN 1 and STYLE: mod.ts and everything under lib/ import only relative
 * `.ts` files, so the library runs on web standards alone. The collector
 * (`serve/`) and the CLI (`cli/`) live outside lib/ and may use `node:`.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { readdirSync, readFileSync, statSync } from "node:fs";
import { join, relative } from "node:path";
import { fileURLToPath } from "node:url";

const root = fileURLToPath(new URL("..", import.meta.url));

/** Every .ts file under `dir`. */
function tsFiles(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const path = join(dir, name);
    if (statSync(path).isDirectory()) return tsFiles(path);
    return name.endsWith(".ts") ? [path] : [];
  });
}

/** The specifiers of static imports, re-exports and dynamic imports in `source`. */
export function specifiers(source: string): string[] {
  const found: string[] = [];
  const patterns = [
    /\b(?:import|export)\s+(?:type\s+)?[^;"'`]*?\bfrom\s*(["'])([^"']+)\1/g, // import x from "..."; export { y } from "..."
    /\bimport\s*(["'])([^"']+)\1/g, // import "..." (side effects)
    /\bimport\s*\(\s*(["'`])([^"'`]+)\1/g, // import("...")
  ];
  for (const pattern of patterns) {
    for (const match of source.matchAll(pattern)) found.push(match[2]);
  }
  return found;
}

test("specifiers() finds static, re-export, side-effect and dynamic imports", () => {
  const source = [
    'import { a } from "./a.ts";',
    'import type { B } from "../b.ts";',
    "export { c } from './c.ts';",
    'export * from "node:fs";',
    'import "npm:left-pad";',
    'const m = await import("jsr:@std/path");',
    'import {\n  d,\n  e,\n} from "https://example.com/d.ts";',
  ].join("\n");
  assert.deepEqual(specifiers(source).sort(), [
    "../b.ts",
    "./a.ts",
    "./c.ts",
    "https://example.com/d.ts",
    "jsr:@std/path",
    "node:fs",
    "npm:left-pad",
  ]);
});

test("mod.ts and every file under lib/ import only relative .ts files", () => {
  const files = [join(root, "mod.ts"), ...tsFiles(join(root, "lib"))];
  assert.ok(files.length > 5, "the library's files were found");
  const bad: string[] = [];
  for (const file of files) {
    // Doc comments show users' imports ("@tally/analytics"): only code counts.
    const code = readFileSync(file, "utf8").replace(/\/\*[\s\S]*?\*\//g, "").replace(/^\s*\/\/.*$/gm, "");
    for (const specifier of specifiers(code)) {
      if (!/^\.\.?\/[^?#]*\.ts$/.test(specifier)) bad.push(`${relative(root, file)} imports "${specifier}"`);
    }
  }
  assert.deepEqual(bad, []);
});
