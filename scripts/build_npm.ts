#!/usr/bin/env -S deno run --allow-read --allow-write --allow-run --allow-env --allow-net=127.0.0.1 --allow-sys
/**
 * The npm build, doing what dnt does without dnt: `build_npm.ts [VERSION]`
 * (VERSION defaults to deno.json's `version`)
 *
 Two packages, from the same source and at the same version:
 *
 * - `npm/` is `@tally/analytics`, the library: mod.ts, testing.ts, storage.ts,
 *   lib/ and storage/; no bin and no dependencies, so installing it installs
 *   nothing else;
 * - `npm/cli/` is `@tally/cli`, the `tally` bin: cli.ts, cli/, serve/, plan/
 *   and the library files they import (their own copy), with the validator
 *   the plan commands use (Ajv and ajv-formats) as its dependencies.
 *
 * 1. empties `npm/`;
 * 2. compiles each package with the TypeScript compiler API into ESM
 *    JavaScript and `.d.ts` under its `esm/`, rewriting `.ts` import
 *    specifiers to `.js`;
 * 3. writes each `package.json` and copies README.md and LICENSE;
 * 4. compiles tests/ and examples/ into `npm/.tests/` (outside the package's
 *    `files`), with their imports of the library pointing at the built files
 *    (so the examples the tests start under Node run against the package as
 *    a Node user gets it: the library's files at `npm/esm/`, the CLI's,
 *    collector's and plan's at `npm/cli/esm/`, and `TALLY_BIN` the CLI
 *    package's bin, whose Ajv resolves from the repository's node_modules
 *    as Node walks up), and runs the tests with `node --test`; prints
 *    `# pass N` / `# fail N`;
 * 5. packs both into `npm/.pack/` and checks each tarball with `publint` and
 *    `attw` (`@arethetypeswrong/cli`); the library's must declare no dependency.
 *
 * Flags: `--no-test` skips step 4, `--no-pack` skips step 5, `--only=FILE,...`
 * runs only those test files under Node (`--only=tests/examples_test.ts`).
 * Exits non-zero when compiling, a test, or a package check fails.
 *
 * Run: `node_modules/.bin/deno run -A scripts/build_npm.ts` (or with a version, `... build_npm.ts 0.1.0`;
 * Bun runs it too).
 *
 * @module
 */
import { spawnSync } from "node:child_process";
import {
  chmodSync,
  copyFileSync,
  existsSync,
  mkdirSync,
  readdirSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from "node:fs";
import { dirname, join, relative, resolve, sep } from "node:path";
import process from "node:process";
import { fileURLToPath } from "node:url";
import ts from "typescript";

const ROOT = resolve(fileURLToPath(new URL("..", import.meta.url)));
const OUT = join(ROOT, "npm");
const ESM = join(OUT, "esm");
const CLI_OUT = join(OUT, "cli");
const CLI_ESM = join(CLI_OUT, "esm");
const TESTS_OUT = join(OUT, ".tests");
const PACK_OUT = join(OUT, ".pack");
const BIN = join(ROOT, "node_modules", ".bin");
const NAME = "@tally/analytics";
const DESCRIPTION = "A Segment-compatible analytics client on web standards, for Deno, Bun, Node and Cloudflare " +
  "Workers, with an in-memory test recorder. No dependencies.";
const CLI_NAME = "@tally/cli";
const CLI_DESCRIPTION = "tally: send Segment-format analytics from CI and shell scripts, run a local collector " +
  "with a live inspector (tally serve), and check events against a tracking plan (tally plan).";
/** The runtime dependencies of the CLI package: what its sources import by bare name, at the root's versions. */
const CLI_DEPENDENCIES = ["ajv", "ajv-formats"];
/** Node 20 is the oldest with a global `crypto` (crypto.randomUUID) without a flag; 18 needs one. */
const NODE_ENGINES = ">=20";

const say = (line: string): void => console.log(`[build_npm] ${line}`);
const fail = (line: string): never => {
  console.error(`[build_npm] ${line}`);
  process.exit(1);
};
const posix = (path: string): string => path.split(sep).join("/");

// ---- arguments

const USAGE = "usage: build_npm.ts [VERSION] [--no-test] [--no-pack] [--only=TEST_FILE,...]   " +
  "(VERSION: semver, such as 0.1.0; default: deno.json's version)";
const args = process.argv.slice(2);
const runTests = !args.includes("--no-test");
const pack = !args.includes("--no-pack");
const only = args.find((arg) => arg.startsWith("--only="))?.slice("--only=".length).split(",").filter(Boolean);
const unknownFlag = args.find((arg) => arg.startsWith("--") && !/^--(no-test|no-pack|only=.*)$/.test(arg));
if (unknownFlag !== undefined) {
  console.error(`build_npm.ts: unknown flag ${unknownFlag}\n${USAGE}`);
  process.exit(2);
}
const version = args.find((arg) => !arg.startsWith("--")) ?? denoJsonVersion();
if (!/^\d+\.\d+\.\d+(?:-[0-9A-Za-z.-]+)?(?:\+[0-9A-Za-z.-]+)?$/.test(version)) {
  console.error(`build_npm.ts: ${JSON.stringify(version)} is not a semver version\n${USAGE}`);
  process.exit(2);
}

/** The version deno.json gives, the one JSR publishes: the npm package must carry the same. */
function denoJsonVersion(): string {
  const path = join(ROOT, "deno.json");
  let version: unknown;
  try {
    version = (JSON.parse(readFileSync(path, "utf8")) as { version?: unknown }).version;
  } catch (error) {
    fail(`Cannot read the version from deno.json: ${(error as Error).message}`);
  }
  if (typeof version !== "string") fail(`Cannot read the version from deno.json: it has no "version" string`);
  return version as string;
}

// ---- the library

/** Every .ts file under `dir` (relative to ROOT), tests left out. */
function tsFilesUnder(dir: string): string[] {
  const abs = join(ROOT, dir);
  if (!existsSync(abs)) return [];
  return readdirSync(abs, { withFileTypes: true }).flatMap((entry) => {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) return tsFilesUnder(path);
    return entry.name.endsWith(".ts") && !entry.name.endsWith("_test.ts") && !entry.name.endsWith(".d.ts")
      ? [path]
      : [];
  });
}

/** Public entry points: export subpath -> source file. */
const ENTRIES: [string, string][] = [[".", "mod.ts"], ["./testing", "testing.ts"], ["./storage", "storage.ts"]];
const hasCli = existsSync(join(ROOT, "cli.ts"));
/** Everything compiled into the library package: the entries, and every file under lib/ and storage/. */
const SOURCES = [
  ...ENTRIES.map(([, file]) => file).filter((file) => existsSync(join(ROOT, file))),
  ...tsFilesUnder("lib"),
  ...tsFilesUnder("storage"),
];
const SOURCE_SET = new Set(SOURCES.map((file) => join(ROOT, file)));
/**
 * The roots of the CLI package: cli.ts and every file under cli/, serve/ and plan/, since some modules are
 * loaded by computed specifiers (the collector, the inspector) that no import graph shows; the library files
 * they import come along.
 */
const CLI_SOURCES = hasCli ? ["cli.ts", ...tsFilesUnder("cli"), ...tsFilesUnder("serve"), ...tsFilesUnder("plan")] : [];
const CLI_SOURCE_SET = new Set(CLI_SOURCES.map((file) => join(ROOT, file)));

const BASE_OPTIONS: ts.CompilerOptions = {
  target: ts.ScriptTarget.ES2022,
  module: ts.ModuleKind.ESNext,
  moduleResolution: ts.ModuleResolutionKind.Bundler,
  lib: ["lib.es2022.d.ts", "lib.dom.d.ts", "lib.dom.iterable.d.ts"],
  types: ["node"],
  typeRoots: [join(ROOT, "node_modules", "@types")],
  strict: true,
  noImplicitOverride: true,
  noImplicitReturns: true,
  noFallthroughCasesInSwitch: true,
  isolatedModules: true,
  skipLibCheck: true,
  rewriteRelativeImportExtensions: true,
  newLine: ts.NewLineKind.LineFeed,
  rootDir: ROOT,
};

function report(diagnostics: readonly ts.Diagnostic[]): string {
  return ts.formatDiagnostics(diagnostics, {
    getCanonicalFileName: (f) => f,
    getCurrentDirectory: () => ROOT,
    getNewLine: () => "\n",
  });
}

say(`${NAME}@${version}: emptying npm/`);
rmSync(OUT, { recursive: true, force: true });
mkdirSync(ESM, { recursive: true });

/** Compiles `roots` (and what they import) into `outDir`; returns the source files emitted, relative to ROOT. */
function compileTo(roots: Set<string>, outDir: string, label: string): string[] {
  const program = ts.createProgram([...roots], { ...BASE_OPTIONS, outDir, declaration: true });
  const diagnostics = ts.getPreEmitDiagnostics(program);
  if (diagnostics.length > 0) fail(`type errors (${label}):\n${report(diagnostics)}`);
  const emitted = program.emit();
  if (emitted.emitSkipped || emitted.diagnostics.length > 0) fail(`emit failed:\n${report(emitted.diagnostics)}`);
  const files = program.getSourceFiles().map((f) => resolve(f.fileName))
    .filter((f) => !f.includes(`${sep}node_modules${sep}`) && !f.endsWith(".d.ts"));
  say(`compiled ${files.length} files to ${posix(relative(ROOT, outDir))}/ (ESM + .d.ts, TypeScript ${ts.version})`);
  // The version the code reports must be the version published.
  const versionJs = readFileSync(join(outDir, "lib", "version.js"), "utf8");
  const stated = versionJs.match(/VERSION = "([^"]+)"/)?.[1];
  if (stated !== version) {
    fail(`lib/version.ts says ${stated}, not ${version}: bump it (and deno.json) before building ${version}`);
  }
  return files.map((f) => relative(ROOT, f));
}

compileTo(SOURCE_SET, ESM, NAME);
// The library files the CLI package carries a copy of (its own program, compiled beside cli/).
const cliCompiled = hasCli ? compileTo(CLI_SOURCE_SET, CLI_ESM, CLI_NAME) : [];
{
  // The library must not reach the CLI's folders (nor, through them, the validator).
  const outside = readdirSync(ESM).filter((entry) => ["cli", "serve", "plan", "cli.js"].includes(entry));
  if (outside.length > 0) fail(`the library package holds ${outside.join(", ")}: mod.ts or lib/ imports the CLI`);
}

if (hasCli) {
  // cli.ts starts with a Deno shebang; the npm bin runs on Node.
  const cli = join(CLI_ESM, "cli.js");
  const code = readFileSync(cli, "utf8").replace(/^#!.*\n/, "");
  writeFileSync(cli, `#!/usr/bin/env node\n${code}`);
  chmodSync(cli, 0o755);
}

// ---- package.json, README, LICENSE

const exportsMap: Record<string, unknown> = {};
for (const [subpath, file] of ENTRIES) {
  if (!existsSync(join(ROOT, file))) continue;
  const base = `./esm/${file.replace(/\.ts$/, "")}`;
  exportsMap[subpath] = { types: `${base}.d.ts`, default: `${base}.js` };
}
exportsMap["./package.json"] = "./package.json";

const packageJson = {
  name: NAME,
  version,
  description: DESCRIPTION,
  license: "MIT",
  keywords: ["analytics", "segment", "tracking", "deno", "bun", "cloudflare-workers", "edge"],
  type: "module",
  main: "./esm/mod.js",
  types: "./esm/mod.d.ts",
  exports: exportsMap,
  files: ["esm/", "README.md", "LICENSE"],
  sideEffects: false,
  engines: { node: NODE_ENGINES },
};
writeFileSync(join(OUT, "package.json"), JSON.stringify(packageJson, null, 2) + "\n");
copyFileSync(join(ROOT, "README.md"), join(OUT, "README.md"));
copyFileSync(join(ROOT, "LICENSE"), join(OUT, "LICENSE"));
say(`wrote npm/package.json (exports: ${Object.keys(exportsMap).join(", ")}; no bin, no dependencies)`);

/** The root package.json's version of `name` (a devDependency there), as the CLI package's range. */
function rootVersionOf(name: string): string {
  const root = JSON.parse(readFileSync(join(ROOT, "package.json"), "utf8")) as {
    dependencies?: Record<string, string>;
    devDependencies?: Record<string, string>;
  };
  const found = root.dependencies?.[name] ?? root.devDependencies?.[name];
  if (found === undefined) fail(`the CLI needs ${name}, which the root package.json does not list`);
  return `^${(found as string).replace(/^[\^~]/, "")}`;
}

if (hasCli) {
  // Every bare import in the CLI's compiled files is node: or a declared dependency.
  const bare = new Set<string>();
  for (const file of cliCompiled) {
    const js = readFileSync(join(CLI_ESM, file.replace(/\.ts$/, ".js")), "utf8");
    for (const { fileName } of ts.preProcessFile(js, true, true).importedFiles) {
      if (!fileName.startsWith(".")) bare.add(fileName);
    }
  }
  const undeclared = [...bare].filter((spec) => !spec.startsWith("node:") && !CLI_DEPENDENCIES.includes(spec));
  if (undeclared.length > 0) fail(`the CLI imports ${undeclared.join(", ")}, not in CLI_DEPENDENCIES`);
  const cliPackageJson = {
    name: CLI_NAME,
    version,
    description: CLI_DESCRIPTION,
    license: "MIT",
    keywords: ["analytics", "segment", "cli", "tracking-plan", "collector"],
    type: "module",
    bin: { tally: "./esm/cli.js" },
    exports: { "./package.json": "./package.json" },
    files: ["esm/", "README.md", "LICENSE"],
    dependencies: Object.fromEntries(CLI_DEPENDENCIES.map((name) => [name, rootVersionOf(name)])),
    engines: { node: NODE_ENGINES },
  };
  writeFileSync(join(CLI_OUT, "package.json"), JSON.stringify(cliPackageJson, null, 2) + "\n");
  copyFileSync(join(ROOT, "README.md"), join(CLI_OUT, "README.md"));
  copyFileSync(join(ROOT, "LICENSE"), join(CLI_OUT, "LICENSE"));
  say(`wrote npm/cli/package.json (bin: tally; dependencies: ${CLI_DEPENDENCIES.join(", ")})`);
}

// ---- the tests, under Node, against the built files

let failed = false;

/**
 * Where a relative `.ts` specifier in a test file points once compiled: at
 * the built package file when it names a library source, else at the
 * compiled sibling under npm/.tests/.
 */
function rewriteSpecifier(fromSource: string, specifier: string): string {
  if (!/^\.\.?\//.test(specifier) || !specifier.endsWith(".ts")) return specifier;
  const target = resolve(dirname(fromSource), specifier);
  const rel = relative(ROOT, target).replace(/\.ts$/, ".js");
  const built = SOURCE_SET.has(target)
    ? join(ESM, rel)
    : CLI_SOURCE_SET.has(target)
    ? join(CLI_ESM, rel)
    : join(TESTS_OUT, rel);
  const fromOut = join(TESTS_OUT, relative(ROOT, fromSource));
  const path = posix(relative(dirname(fromOut), built));
  return path.startsWith(".") ? path : `./${path}`;
}

/**
 * Rewrites, in compiled tests: import/export specifiers and `new URL("./x.ts",
 * import.meta.url)` paths (children the tests spawn) as above; and drops the
 * `--experimental-strip-types` flag a test passes to a Node child, since the
 * child is compiled JavaScript too (Node 20 rejects the flag).
 */
const testTransformer: ts.TransformerFactory<ts.SourceFile> = (context) => (sourceFile) => {
  const f = context.factory;
  const from = sourceFile.fileName;
  const literal = (node: ts.Expression): ts.Expression =>
    ts.isStringLiteral(node) ? f.createStringLiteral(rewriteSpecifier(from, node.text)) : node;
  const visit = (node: ts.Node): ts.Node => {
    if (ts.isImportDeclaration(node)) {
      return f.updateImportDeclaration(
        node,
        node.modifiers,
        node.importClause,
        literal(node.moduleSpecifier),
        node.attributes,
      );
    }
    if (ts.isExportDeclaration(node) && node.moduleSpecifier !== undefined) {
      return f.updateExportDeclaration(
        node,
        node.modifiers,
        node.isTypeOnly,
        node.exportClause,
        literal(node.moduleSpecifier),
        node.attributes,
      );
    }
    if (ts.isCallExpression(node) && node.expression.kind === ts.SyntaxKind.ImportKeyword && node.arguments[0]) {
      return f.updateCallExpression(node, node.expression, node.typeArguments, [
        literal(node.arguments[0]),
        ...node.arguments.slice(1).map((arg) => ts.visitNode(arg, visit) as ts.Expression),
      ]);
    }
    if (
      ts.isNewExpression(node) && ts.isIdentifier(node.expression) && node.expression.text === "URL" &&
      node.arguments?.length === 2 && ts.isStringLiteral(node.arguments[0]) &&
      node.arguments[1].getText(sourceFile) === "import.meta.url"
    ) {
      return f.updateNewExpression(node, node.expression, node.typeArguments, [
        literal(node.arguments[0]),
        node.arguments[1],
      ]);
    }
    if (ts.isArrayLiteralExpression(node)) {
      const kept = node.elements.filter((e) => !(ts.isStringLiteral(e) && e.text === "--experimental-strip-types"));
      if (kept.length !== node.elements.length) {
        return f.updateArrayLiteralExpression(node, kept.map((e) => ts.visitNode(e, visit) as ts.Expression));
      }
    }
    return ts.visitEachChild(node, visit, context);
  };
  return ts.visitNode(sourceFile, visit) as ts.SourceFile;
};

/** Files under tests/ (relative to ROOT), consumers left out: they run through scripts/consumers.ts. */
function testTree(dir: string): string[] {
  return readdirSync(join(ROOT, dir), { withFileTypes: true }).flatMap((entry) => {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) return path === join("tests", "consumers") ? [] : testTree(path);
    return [path];
  });
}

if (runTests) {
  const files = testTree("tests");
  const tsTests = files.filter((file) => file.endsWith(".ts"));
  // The tests start some examples as child processes (tests/examples_test.ts): Express and Fastify under Node.
  const examples = tsFilesUnder("examples");
  say(
    `compiling ${tsTests.length} test files and ${examples.length} examples to npm/.tests/ ` +
      "(imports of the library point at npm/esm/)",
  );
  const program = ts.createProgram([...tsTests, ...examples].map((file) => join(ROOT, file)), {
    ...BASE_OPTIONS,
    outDir: TESTS_OUT,
    declaration: false,
  });
  const exampleSet = new Set(examples.map((file) => join(ROOT, file)));
  // Examples for Deno and Bun use those runtimes' globals, which tsc here does not know; deno check is their gate.
  const testDiagnostics = ts.getPreEmitDiagnostics(program).filter((d) =>
    d.file === undefined ||
    !(SOURCE_SET.has(resolve(d.file.fileName)) || CLI_SOURCE_SET.has(resolve(d.file.fileName)) ||
      exampleSet.has(resolve(d.file.fileName)))
  );
  if (testDiagnostics.length > 0) {
    // deno check is the gate for the tests' types; here they only need to run.
    say(`note: tsc reports type errors in tests (run anyway):\n${report(testDiagnostics)}`);
  }
  for (const file of [...tsTests, ...examples]) {
    const sourceFile = program.getSourceFile(join(ROOT, file));
    if (sourceFile === undefined) fail(`tsc did not load ${file}`);
    const emitted = program.emit(sourceFile, undefined, undefined, false, { before: [testTransformer] });
    if (emitted.emitSkipped) fail(`could not compile ${file}:\n${report(emitted.diagnostics)}`);
  }
  // Fixtures and data files beside the tests, and the sources, for tests that read them (tests/imports_test.ts).
  // And the examples as they are (tests read examples/plan.json and compare examples/tracking.ts).
  const exampleFiles = (dir: string): string[] =>
    readdirSync(join(ROOT, dir), { withFileTypes: true }).flatMap((entry) =>
      entry.isDirectory() ? exampleFiles(join(dir, entry.name)) : [join(dir, entry.name)]
    );
  for (
    const file of [...files.filter((f) => !f.endsWith(".ts")), ...SOURCES, ...CLI_SOURCES, ...exampleFiles("examples")]
  ) {
    mkdirSync(dirname(join(TESTS_OUT, file)), { recursive: true });
    copyFileSync(join(ROOT, file), join(TESTS_OUT, file));
  }
  writeFileSync(join(TESTS_OUT, "package.json"), '{ "type": "module", "private": true }\n');

  const selected = tsTests.filter((file) => file.endsWith("_test.ts") && (only === undefined || only.includes(file)));
  if (only !== undefined && selected.length !== only.length) {
    fail(`--only: no such test file: ${only.filter((file) => !selected.includes(file)).join(", ")}`);
  }
  const testFiles = selected.map((file) => join(TESTS_OUT, file.replace(/\.ts$/, ".js")));
  const tap = join(TESTS_OUT, "results.tap");
  say(`node --test on ${testFiles.length} files`);
  const run = spawnSync(
    "node",
    [
      "--test",
      "--test-timeout=60000",
      "--test-reporter=spec",
      "--test-reporter-destination=stdout",
      "--test-reporter=tap",
      `--test-reporter-destination=${tap}`,
      ...testFiles,
    ],
    {
      cwd: TESTS_OUT,
      stdio: ["ignore", "inherit", "inherit"],
      // CLI tests run the npm bin (tests/cli_test.ts runs $TALLY_BIN when it is set).
      env: { ...process.env, NO_COLOR: "1", ...(hasCli ? { TALLY_BIN: join(CLI_ESM, "cli.js") } : {}) },
    },
  );
  const results = existsSync(tap) ? readFileSync(tap, "utf8") : "";
  const count = (key: string): number => Number(results.match(new RegExp(`^# ${key} (\\d+)$`, "m"))?.[1] ?? 0);
  const [pass, fails, skipped] = [count("pass"), count("fail"), count("skipped")];
  console.log(`# node ${spawnSync("node", ["--version"], { encoding: "utf8" }).stdout.trim()}`);
  console.log(`# tests ${count("tests")}`);
  console.log(`# pass ${pass}`);
  console.log(`# fail ${fails}`);
  console.log(`# skipped ${skipped}`);
  if (run.status !== 0 || fails > 0 || pass === 0) {
    failed = true;
    say(`node --test failed (exit ${run.status}, ${fails} failed, ${pass} passed)`);
  }
}

// ---- npm pack, publint, attw

function tool(name: string, toolArgs: string[], cwd = ROOT): boolean {
  const path = existsSync(join(BIN, name)) ? join(BIN, name) : name;
  say(`$ ${name} ${toolArgs.map((a) => posix(relative(ROOT, a)) || a).join(" ")}`);
  const result = spawnSync(path, toolArgs, { cwd, stdio: ["ignore", "inherit", "inherit"], env: process.env });
  if (result.error) say(`${name}: ${result.error.message}`);
  return result.status === 0;
}

/** Packs the package in `dir` into npm/.pack/ and checks the tarball; returns whether every check passed. */
function packAndCheck(dir: string, name: string): boolean {
  let ok = true;
  const packed = spawnSync("npm", ["pack", "--json", "--pack-destination", PACK_OUT], { cwd: dir, encoding: "utf8" });
  if (packed.status !== 0) fail(`npm pack of ${name} failed:\n${packed.stderr}`);
  const info = JSON.parse(packed.stdout)[0] as { filename: string; files: { path: string }[]; size: number };
  const tarball = join(PACK_OUT, info.filename);
  say(`packed ${name} into npm/.pack/${info.filename}: ${info.files.length} files, ${info.size} bytes`);
  const leaked = info.files.filter((file) => !/^(esm\/|README\.md$|LICENSE$|package\.json$)/.test(file.path));
  if (leaked.length > 0) {
    ok = false;
    say(`files that should not ship in ${name}: ${leaked.map((f) => f.path).join(", ")}`);
  }
  // --strict: warnings fail the build too.
  if (!tool("publint", ["run", tarball, "--strict"])) ok = false;
  // ESM only (no CommonJS build): attw's esm-only profile leaves out node10 and node16-from-CJS resolution,
  // which by design find no CommonJS entry. Node >= 20.19 can still require() the ESM build.
  if (!tool("attw", [tarball, "--profile", "esm-only", "--format", "table"])) {
    ok = false;
  }
  return ok;
}

if (pack) {
  mkdirSync(PACK_OUT, { recursive: true });
  if (!packAndCheck(OUT, NAME)) failed = true;
  const library = JSON.parse(readFileSync(join(OUT, "package.json"), "utf8")) as Record<string, unknown>;
  for (const field of ["dependencies", "peerDependencies", "optionalDependencies", "bin"]) {
    if (library[field] !== undefined) {
      failed = true;
      say(`${NAME}'s package.json has "${field}": installing the library must install nothing`);
    }
  }
  if (hasCli && !packAndCheck(CLI_OUT, CLI_NAME)) failed = true;
}

if (failed) fail("FAILED");
say(
  `done: npm/ holds ${NAME}@${version}${hasCli ? `, npm/cli/ ${CLI_NAME}@${version}` : ""}` +
    `${pack ? "; the tarballs are in npm/.pack/" : ""}`,
);
