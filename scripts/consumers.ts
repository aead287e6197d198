#!/usr/bin/env -S deno run --allow-read --allow-write --allow-run --allow-env --allow-net=127.0.0.1 --allow-sys
/**
 * Consumer tests: the package used the way each runtime's users use it,
 * delivering to a local receiver (tests/receiver.ts) in this process.
 *
 * - node-esm, node-cjs: a scratch project that `npm install`s the packed
 *   `@tally/analytics` tarball (offline: it has no dependencies; the check
 *   fails if its package.json declares any, or if anything else got
 *   installed) and imports it as ESM, then `require()`s it from CommonJS
 *   (Node >= 20.19 loads ES modules there);
 * - node-types: `tsc` (module nodenext) type-checks a TypeScript file that
 *   imports both entry points from the installed package;
 * - node-bin: the `@tally/cli` tarball `npm install`ed in its own scratch
 *   project (offline, from npm's cache: its Ajv and ajv-formats), whose
 *   `tally` bin answers `--version`, lints the sample plan
 *   (examples/plan.json) and sends one event;
 * - binary: the compiled `tally` (scripts/compile.ts), alone in an empty
 *   directory with no node_modules anywhere above it, runs `tally plan check`:
 *   the validator is inside the binary;
 * - bun: `bun add` of the tarball in a scratch project, the same ESM app;
 * - deno: tests/consumers/deno_app.ts importing mod.ts under
 *   `deno run --allow-net=127.0.0.1 --no-prompt` and no other permission;
 * - workerd: a Worker importing the installed package, bundled with
 *   `bun build`, run in workerd by miniflare; it tracks in its fetch handler
 *   and passes `flush()` to `ctx.waitUntil`, with a client per request and
 *   with the module-level default client kept across requests.
 *
 * Prints one `ok`/`FAIL` line per consumer and ends with `N passed, N failed`.
 * Builds the tarballs first (`build_npm.ts VERSION --no-test`) unless
 * `--no-build` is given and `npm/.pack/` holds both.
 *
 * Run: `node_modules/.bin/deno run -A scripts/consumers.ts` (Bun runs it too).
 *
 * @module
 */
import { spawn, spawnSync } from "node:child_process";
import {
  copyFileSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import process from "node:process";
import { fileURLToPath } from "node:url";
import { generateTypes } from "../plan/codegen.ts";
import { loadPlan } from "../plan/load.ts";
import { type Receiver, startReceiver } from "../tests/receiver.ts";

const ROOT = resolve(fileURLToPath(new URL("..", import.meta.url)));
const CONSUMERS = join(ROOT, "tests", "consumers");
const BIN = join(ROOT, "node_modules", ".bin");
const PACK = join(ROOT, "npm", ".pack");
const args = process.argv.slice(2);

const tool = (name: string): string => existsSync(join(BIN, name)) ? join(BIN, name) : name;

interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Runs a command to its end (killed after `ms`); never rejects. */
function run(cmd: string, argv: string[], cwd: string, ms = 60_000, stdin?: () => Promise<void>): Promise<Run> {
  return new Promise((done) => {
    const child = spawn(cmd, argv, {
      cwd,
      stdio: [stdin ? "pipe" : "ignore", "pipe", "pipe"],
      env: { ...process.env, NO_COLOR: "1" },
    });
    let stdout = "";
    let stderr = "";
    child.stdout?.on("data", (chunk) => void (stdout += chunk));
    child.stderr?.on("data", (chunk) => void (stderr += chunk));
    const killer = setTimeout(() => child.kill("SIGKILL"), ms);
    child.on("error", (error) => {
      clearTimeout(killer);
      done({ code: -1, stdout, stderr: `${stderr}${error.message}` });
    });
    child.on("close", (code) => {
      clearTimeout(killer);
      done({ code, stdout, stderr });
    });
    if (stdin) void stdin().finally(() => child.stdin?.end());
  });
}

const tail = (text: string, lines = 6): string => text.trim().split("\n").slice(-lines).join("\n");
const explain = (r: Run): string => `exit ${r.code}\n${tail(r.stderr || r.stdout)}`;

/** Waits until `count` messages of `userId` arrived (or `ms` passed) and returns them. */
async function arrived(
  receiver: Receiver,
  userId: string,
  count: number,
  ms = 5000,
): Promise<Record<string, unknown>[]> {
  const end = Date.now() + ms;
  for (;;) {
    const found = receiver.messages().filter((m) => m.userId === userId);
    if (found.length >= count || Date.now() > end) return found;
    await new Promise((r) => setTimeout(r, 20));
  }
}

/** Checks that `userId`'s messages are exactly `count`, each once. */
async function expectDelivered(receiver: Receiver, userId: string, count: number): Promise<string | undefined> {
  const found = await arrived(receiver, userId, count);
  const ids = new Set(found.map((m) => m.messageId));
  if (found.length !== count || ids.size !== count) {
    return `the receiver got ${found.length} messages (${ids.size} distinct) for ${userId}, expected ${count}`;
  }
  const library = found[0].context as { library?: { name?: string } } | undefined;
  if (library?.library?.name !== "@tally/analytics") return "context.library.name is not @tally/analytics";
  return undefined;
}

function lastJson(stdout: string): Record<string, unknown> | undefined {
  try {
    return JSON.parse(stdout.trim().split("\n").pop() ?? "");
  } catch {
    return undefined;
  }
}

// ---- the tarball

const version = (JSON.parse(readFileSync(join(ROOT, "deno.json"), "utf8")) as { version: string }).version;
const LIBRARY_TGZ = `tally-analytics-${version}.tgz`;
const CLI_TGZ = `tally-cli-${version}.tgz`;
const tarballs = () => existsSync(PACK) ? readdirSync(PACK).filter((f) => f === LIBRARY_TGZ || f === CLI_TGZ) : [];
if (!args.includes("--no-build") || tarballs().length < 2) {
  console.log(`== building the npm package ${version} (scripts/build_npm.ts --no-test)`);
  const built = spawnSync(tool("deno"), ["run", "-A", join(ROOT, "scripts", "build_npm.ts"), version, "--no-test"], {
    cwd: ROOT,
    encoding: "utf8",
    env: { ...process.env, NO_COLOR: "1" },
  });
  if (built.status !== 0 || tarballs().length < 2) {
    console.log(`FAIL build\n${tail(`${built.stdout}${built.stderr}`, 30)}`);
    console.log("0 passed, 1 failed");
    process.exit(1);
  }
}
const tarball = join(PACK, LIBRARY_TGZ);
const cliTarball = join(PACK, CLI_TGZ);

// ---- the consumers

const scratch = mkdtempSync(join(tmpdir(), "tally-consumers-"));
const receiver = await startReceiver();
const url = receiver.url;

/** A scratch project with the tarball installed by `npm install`, shared by the Node consumers. */
let nodeProject: Promise<string | Run> | undefined;
function installedWithNpm(): Promise<string | Run> {
  nodeProject ??= (async () => {
    const dir = join(scratch, "node");
    mkdirSync(dir);
    writeFileSync(join(dir, "package.json"), '{ "name": "tally-consumer-node", "private": true }\n');
    const r = await run("npm", ["install", "--no-audit", "--no-fund", "--offline", tarball], dir);
    if (r.code !== 0) return r;
    // The library installs nothing else: no dependency declared, nothing beside it in node_modules.
    const installed = JSON.parse(
      readFileSync(join(dir, "node_modules", "@tally", "analytics", "package.json"), "utf8"),
    ) as Record<string, unknown>;
    const declared = ["dependencies", "peerDependencies", "optionalDependencies"].filter((f) => f in installed);
    const others = readdirSync(join(dir, "node_modules")).filter((name) => !name.startsWith(".") && name !== "@tally");
    if (declared.length > 0 || others.length > 0 || "bin" in installed) {
      return {
        code: 1,
        stdout: "",
        stderr: `@tally/analytics must install nothing: its package.json has ${declared.join(", ") || "no deps"}` +
          `${"bin" in installed ? " and a bin" : ""}; node_modules holds ${others.join(", ") || "nothing else"}`,
      };
    }
    for (const file of ["app.mjs", "app.cjs", "worker.mjs", "worker_module_scope.mjs"]) {
      copyFileSync(join(CONSUMERS, file), join(dir, file));
    }
    // What `tally plan types examples/plan.json` writes, importing the installed package, and a Worker calling it
    // (written here, not kept in tests/consumers/: its import exists only in this project).
    const plan = await loadPlan(join(ROOT, "examples", "plan.json"));
    writeFileSync(join(dir, "tracking.ts"), generateTypes(plan, { importFrom: "@tally/analytics" }));
    writeFileSync(join(dir, "worker_typed.mjs"), TYPED_WORKER);
    return dir;
  })();
  return nodeProject;
}

async function withNodeProject(fn: (dir: string) => Promise<string | undefined>): Promise<string | undefined> {
  const dir = await installedWithNpm();
  return typeof dir === "string" ? fn(dir) : `npm install of the tarball failed: ${explain(dir)}`;
}

/** Runs app.mjs / deno_app.ts style apps: three messages, and a JSON summary line. */
async function app(cmd: string, argv: string[], cwd: string, consumer: string, count = 3): Promise<string | undefined> {
  const r = await run(cmd, [...argv, url, consumer], cwd);
  const summary = lastJson(r.stdout);
  if (r.code !== 0 || summary?.delivered !== count || summary?.version !== version) {
    return `the app failed: ${explain(r)}\nstdout: ${tail(r.stdout, 2)}`;
  }
  return await expectDelivered(receiver, `${consumer}-user`, count);
}

/** Bundles a Worker from the npm project and runs it in workerd; `requests` requests, `userId`'s messages. */
async function workerd(entry: string, requests: number, userId: string): Promise<string | undefined> {
  return await withNodeProject(async (dir) => {
    const bundle = join(dir, entry.replace(/\.mjs$/, ".bundle.js"));
    const built = await run(
      tool("bun"),
      ["build", entry, "--target", "browser", "--format", "esm", "--outfile", bundle],
      dir,
    );
    if (built.code !== 0) return `bun build failed: ${explain(built)}`;
    let delivered: string | undefined;
    const r = await run(
      "node",
      [join(CONSUMERS, "workerd.mjs"), bundle, url, String(requests)],
      dir,
      60_000,
      async () => {
        // workerd keeps running (and finishing waitUntil work) until the messages arrive.
        delivered = await expectDelivered(receiver, userId, requests);
      },
    );
    const responses = r.stdout.trim().split("\n").filter(Boolean).map((line) => JSON.parse(line));
    if (r.code !== 0 || responses.length !== requests || responses.some((x) => x.status !== 200)) {
      return `the Worker failed: ${explain(r)}`;
    }
    if (responses[0].body.userAgent !== "Cloudflare-Workers") return "not running in workerd";
    return delivered;
  });
}

const consumers: [string, () => Promise<string | undefined>][] = [
  [
    "node-esm: npm install of the tarball, import as ESM",
    () => withNodeProject((dir) => app("node", ["app.mjs"], dir, "node-esm")),
  ],
  ["node-cjs: require() from CommonJS", () => withNodeProject((dir) => app("node", ["app.cjs"], dir, "node-cjs", 1))],
  [
    "node-types: tsc (nodenext) type-checks both entry points from the package",
    () =>
      withNodeProject(async (dir) => {
        // .mts: an ES module in a project without "type": "module", as nodenext reads it.
        writeFileSync(join(dir, "types.mts"), TYPES_CONSUMER);
        writeFileSync(
          join(dir, "tsconfig.json"),
          JSON.stringify({
            compilerOptions: {
              module: "nodenext",
              moduleResolution: "nodenext",
              target: "es2022",
              lib: ["es2022", "dom"],
              types: [],
              strict: true,
              noEmit: true,
            },
            files: ["types.mts"],
          }),
        );
        const r = await run("node", [join(ROOT, "node_modules", "typescript", "bin", "tsc"), "-p", "."], dir);
        return r.code === 0 ? undefined : `tsc: ${explain(r)}`;
      }),
  ],
  [
    "node-bin: npm install of the @tally/cli tarball; its tally bin runs --version, plan lint and track",
    async () => {
      const dir = join(scratch, "cli");
      mkdirSync(dir);
      writeFileSync(join(dir, "package.json"), '{ "name": "tally-consumer-cli", "private": true }\n');
      const installed = await run("npm", ["install", "--no-audit", "--no-fund", "--offline", cliTarball], dir, 120_000);
      if (installed.code !== 0) return `npm install of the CLI tarball failed: ${explain(installed)}`;
      for (const dep of ["ajv", "ajv-formats"]) {
        if (!existsSync(join(dir, "node_modules", dep, "package.json"))) {
          return `${dep} was not installed with @tally/cli`;
        }
      }
      const bin = join(dir, "node_modules", ".bin", "tally");
      if (!existsSync(bin)) return "node_modules/.bin/tally is missing";
      const v = await run(bin, ["--version"], dir);
      if (v.code !== 0 || !v.stdout.includes(version)) return `tally --version: ${explain(v)}`;
      const lint = await run(bin, ["plan", "lint", join(ROOT, "examples", "plan.json")], dir);
      if (lint.code !== 0 || !/no problems/.test(lint.stderr)) return `tally plan lint: ${explain(lint)}`;
      const r = await run(bin, [
        "track",
        "--host",
        url,
        "--write-key",
        "CONSUMER_KEY",
        "--user-id",
        "node-bin-user",
        "--event",
        "Consumer Tested",
      ], dir);
      if (r.code !== 0) return `tally track: ${explain(r)}`;
      return await expectDelivered(receiver, "node-bin-user", 1);
    },
  ],
  [
    "binary: the compiled tally, alone in an empty directory, runs tally plan check (the validator is inside)",
    async () => {
      const dir = join(scratch, "binary");
      mkdirSync(dir);
      const exe = join(dir, "tally");
      const compiled = await run(
        tool("deno"),
        [
          "run",
          "--allow-run",
          "--allow-read",
          "--allow-write",
          "--allow-env",
          join(ROOT, "scripts", "compile.ts"),
          exe,
        ],
        ROOT,
        180_000,
      );
      if (compiled.code !== 0 || !existsSync(exe)) return `scripts/compile.ts failed: ${explain(compiled)}`;
      copyFileSync(join(ROOT, "examples", "plan.json"), join(dir, "plan.json"));
      writeFileSync(
        join(dir, "events.ndjson"),
        '{"type":"track","userId":"u1","event":"Signed Up","properties":{"plan":"Pro"}}\n' +
          '{"type":"track","userId":"u1","event":"Not Planned"}\n',
      );
      // No node_modules in the temporary directory nor above it: nothing to resolve Ajv from but the binary.
      if (existsSync(join(scratch, "node_modules")) || existsSync(join(dir, "..", "..", "node_modules"))) {
        return "the scratch directory has a node_modules above it";
      }
      const r = await run(exe, ["plan", "check", "--plan", "plan.json", "events.ndjson"], dir);
      if (r.code !== 1 || !/events\.ndjson:2: .*unplanned_event/.test(r.stdout) || /events\.ndjson:1:/.test(r.stdout)) {
        return `tally plan check (expected exit 1 and one unplanned_event on line 2): ${explain(r)}\n${r.stdout}`;
      }
      return undefined;
    },
  ],
  [
    "bun: bun add of the tarball, import as ESM",
    async () => {
      const dir = join(scratch, "bun");
      mkdirSync(dir);
      writeFileSync(join(dir, "package.json"), '{ "name": "tally-consumer-bun", "private": true }\n');
      const added = await run(tool("bun"), ["add", tarball], dir);
      if (added.code !== 0) return `bun add failed: ${explain(added)}`;
      copyFileSync(join(CONSUMERS, "app.mjs"), join(dir, "app.mjs"));
      return await app(tool("bun"), ["app.mjs"], dir, "bun");
    },
  ],
  [
    "deno: mod.ts under --allow-net=127.0.0.1 and no other permission",
    () =>
      app(tool("deno"), ["run", "--allow-net=127.0.0.1", "--no-prompt", join(CONSUMERS, "deno_app.ts")], ROOT, "deno"),
  ],
  [
    "workerd: a bundled Worker in miniflare tracks per request and flushes in ctx.waitUntil",
    () => workerd("worker.mjs", 2, "workerd-user"),
  ],
  [
    "workerd: the module-level default client, created at module scope and kept across requests",
    () => workerd("worker_module_scope.mjs", 2, "workerd-module-user"),
  ],
  [
    "workerd: the typed calls tally plan types generates (examples/plan.json) run in a Worker",
    () => workerd("worker_typed.mjs", 2, "workerd-typed-user"),
  ],
];
/** A Worker calling the typed wrapper generated from examples/plan.json (tracking.ts beside it). */
const TYPED_WORKER = `// A Cloudflare Worker calling the typed wrapper \`tally plan types\` generated
// from examples/plan.json (written beside this file as tracking.ts, importing
// the installed "@tally/analytics"): the generated code runs in workerd as it
// does on Deno, Bun and Node.
import { Analytics } from "@tally/analytics";
import { createTracking } from "./tracking.ts";

export default {
  fetch(request, env, ctx) {
    const analytics = new Analytics({ writeKey: env.WRITE_KEY, host: env.TALLY_HOST });
    const tracking = createTracking(analytics);
    const messageId = tracking.trackDeployFinished({
      userId: "workerd-typed-user",
      properties: { service: new URL(request.url).pathname, ok: true },
    });
    ctx.waitUntil(analytics.flush());
    return new Response(JSON.stringify({ messageId, userAgent: navigator.userAgent }), {
      headers: { "content-type": "application/json" },
    });
  },
};
`;

const TYPES_CONSUMER =
  `import analytics, { Analytics, type AnalyticsOptions, type DeliveryError, type Message } from "@tally/analytics";
import { type MessageFilter, Recorder } from "@tally/analytics/testing";

const options: AnalyticsOptions = { writeKey: "KEY", gzip: true, onError: (error: DeliveryError) => void error.reason };
const client: Analytics = new Analytics(options);
const id: string = client.track("u1", "Typed", { ok: true });
analytics.writeKey = "KEY";
const recorder = new Recorder();
const filter: MessageFilter = { type: "track", event: "Typed" };
const found: Message[] = recorder.find(filter);
// @ts-expect-error: track() needs an event
client.track({ userId: "u1" });
export { found, id };
`;

let passed = 0;
let failed = 0;
try {
  for (const [name, check] of consumers) {
    const start = Date.now();
    let why: string | undefined;
    try {
      why = await check();
    } catch (error) {
      why = `threw: ${(error as Error)?.stack ?? error}`;
    }
    const ms = Date.now() - start;
    if (why === undefined) {
      passed++;
      console.log(`ok   ${name} (${ms} ms)`);
    } else {
      failed++;
      console.log(`FAIL ${name} (${ms} ms)\n${why.replace(/^/gm, "     ")}`);
    }
  }
} finally {
  await receiver.stop();
  rmSync(scratch, { recursive: true, force: true });
}
console.log(`${passed} passed, ${failed} failed`);
process.exit(failed === 0 ? 0 : 1);
