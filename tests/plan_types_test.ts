/**
 * `tally plan types` (plan/codegen.ts, cli/plan_types.ts): the TypeScript
 * generated from examples/plan.json and from fixtures covering every schema
 * keyword the generator maps (tests/fixtures/plans/types_*.json) is stable,
 * type-checks when used as planned and fails to compile, with the expected
 * TypeScript error, when misused; and the wrapper, run on this runtime,
 * delivers to the collector messages the plan checker finds clean.
 *
 * The compile-time checks run under `deno check` (the repository's
 * deno.json, strict) on every runtime, since node_modules holds Deno, and
 * under `tsc` (the TypeScript compiler API, strict) too, which is what a
 * Node user compiles with.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join, relative, resolve } from "node:path";
import process from "node:process";
import { fileURLToPath, pathToFileURL } from "node:url";
import ts from "typescript";
import { Analytics } from "../mod.ts";
import { generateTypes, TypesError } from "../plan/codegen.ts";
import { createChecker } from "../plan/check.ts";
import { loadPlan } from "../plan/load.ts";
import type { Plan } from "../plan/model.ts";
import { planTypes } from "../cli/plan_types.ts";
import { streamIo, type Writable } from "../cli/io.ts";
import { withCollector } from "./fixtures/collector_helpers.ts";
import { run, scratch, show } from "./fixtures/cli_run.ts";

const HERE = dirname(fileURLToPath(import.meta.url));
/** The repository (or, under the npm build, npm/.tests/, which holds copies of the sources, plans and examples). */
const ROOT = resolve(HERE, "..");
const EXAMPLE_PLAN = join(ROOT, "examples", "plan.json");
const FEATURES = join(ROOT, "tests", "fixtures", "plans", "types_features.json");
const COLLISION = join(ROOT, "tests", "fixtures", "plans", "types_collision.json");
/** The library's entry as a file of this run: mod.ts, or under the npm build the compiled mod.js beside its .d.ts. */
const MOD = join(ROOT, existsSync(join(ROOT, "mod.ts")) ? "mod.ts" : "mod.js");

/** The Deno in node_modules/.bin, looked for up from here (npm/.tests/ sits inside the repository). */
function findDeno(): string | undefined {
  for (let dir = ROOT;; dir = dirname(dir)) {
    const candidate = join(dir, "node_modules", ".bin", "deno");
    if (existsSync(candidate)) return candidate;
    if (dirname(dir) === dir) return undefined;
  }
}
/** The repository's deno.json (its strict compilerOptions), found the same way. */
function findDenoJson(): string | undefined {
  for (let dir = ROOT;; dir = dirname(dir)) {
    if (existsSync(join(dir, "deno.json")) && existsSync(join(dir, "lib", "client.ts"))) return join(dir, "deno.json");
    if (dirname(dir) === dir) return undefined;
  }
}

/** A relative import specifier from `fromDir` to `file`. */
const specifier = (fromDir: string, file: string): string => {
  const path = relative(fromDir, file).split("\\").join("/");
  return path.startsWith(".") ? path : `./${path}`;
};

async function withTemp<T>(body: (dir: string) => T | Promise<T>): Promise<T> {
  const dir = mkdtempSync(join(tmpdir(), "tally-plan-types-"));
  try {
    return await body(dir);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

interface Spawned {
  code: number | null;
  output: string;
}
function spawnToEnd(cmd: string, args: string[], cwd: string, ms = 120_000): Promise<Spawned> {
  return new Promise((done) => {
    const child = spawn(cmd, args, { cwd, env: { ...process.env, NO_COLOR: "1" }, stdio: ["ignore", "pipe", "pipe"] });
    let output = "";
    child.stdout.on("data", (c) => void (output += c));
    child.stderr.on("data", (c) => void (output += c));
    const killer = setTimeout(() => child.kill("SIGKILL"), ms);
    child.on("close", (code) => {
      clearTimeout(killer);
      done({ code, output });
    });
    child.on("error", (error) => {
      clearTimeout(killer);
      done({ code: -1, output: output + error.message });
    });
  });
}

// ---- determinism and shape

test("generateTypes gives the same bytes twice, and for the plan's events listed in another order", async () => {
  for (const file of [EXAMPLE_PLAN, FEATURES]) {
    const plan = await loadPlan(file);
    const first = generateTypes(plan);
    assert.equal(generateTypes(await loadPlan(file)), first, file);
    const shuffled: Plan = {
      ...plan,
      events: [...plan.events].reverse(),
      pages: [...plan.pages].reverse(),
      screens: [...plan.screens].reverse(),
    };
    assert.equal(generateTypes(shuffled), first, `${file}, events reversed`);
    assert.doesNotMatch(first, /\d{4}-\d{2}-\d{2}T|\/tmp\/|\/work\//, "no time or path in the output");
  }
});

test("examples/tracking.ts is what tally plan types generates for examples/plan.json", async () => {
  const expected = generateTypes(await loadPlan(EXAMPLE_PLAN), { importFrom: "../mod.ts" });
  const committed = readFileSync(join(ROOT, "examples", "tracking.ts"), "utf8");
  assert.equal(
    committed,
    expected,
    "examples/tracking.ts is stale: run deno run -A cli.ts plan types examples/plan.json --import-from ../mod.ts " +
      "-o examples/tracking.ts",
  );
});

test("the example plan gives one function per event, page, screen and version, typed traits, enums and doc comments", async () => {
  const source = generateTypes(await loadPlan(EXAMPLE_PLAN));
  assert.match(source, /^import type \{ Analytics, [^}]+ \} from "@tally\/analytics";$/m);
  assert.equal(source.match(/^import /gm)?.length, 1, "one import, of types only");
  for (
    const fn of [
      "trackOrderCompleted",
      "trackOrderCompletedV1",
      "trackOrderCompletedV2",
      "trackSignedUp",
      "trackDeployFinished",
      "pageHome",
      "pagePricing",
      "screenSettings",
      "identify",
      "group",
      "alias",
    ]
  ) {
    assert.match(source, new RegExp(`^  ${fn}\\(params: `, "m"), fn);
  }
  assert.match(source, /currency: "EUR" \| "USD" \| "GBP";/);
  assert.match(source, /coupon\?: string \| null;/);
  assert.match(source, /completed_at\?: string \| Date;/);
  assert.match(source, /products: OrderCompletedProductsItem\[\];/);
  assert.match(source, /\/\*\* The order's id in the shop's database\. \*\/\n {2}order_id: string;/);
  assert.match(source, /\* A customer paid for an order\.\n/);
  // The loader drops the traits' required list (clients send only what changed): every trait optional.
  assert.match(source, /export type IdentifyTraits = \{\n {2}email\?: string;/);
  assert.match(source, /identify\(params: Identity & CallFields & \{ traits\?: IdentifyTraits \}/);
  // Each version's function pins its version; the unsuffixed one the highest.
  assert.match(source, /trackOrderCompleted: [^\n]*\n[^\n]*withVersion\(params\.context, 2\)/);
  assert.match(source, /trackOrderCompletedV1: [^\n]*\n[^\n]*withVersion\(params\.context, 1\)/);
  assert.doesNotMatch(source, /trackSignedUp: [^\n]*\n[^\n]*withVersion/);
});

test("every schema keyword maps to its TypeScript type", async () => {
  const source = generateTypes(await loadPlan(FEATURES));
  const type = (name: string): string => {
    const found = source.match(new RegExp(`^export type ${name} = ([\\s\\S]*?);\\n(?:\\n|$)`, "m"));
    assert.ok(found, `no type ${name} in\n${source}`);
    return found[1];
  };
  const props = type("FeatureTriedProperties");
  const expected: [string, string][] = [
    ["kind", '"demo"'],
    ["level", "1 | 2 | 3"],
    ["mode?", '"on" | "off" | null'],
    ["note?", "string | null"],
    ["at?", "string | Date"],
    ["email?", "string"],
    ["count", "number"],
    ["ratio?", "number"],
    ["flag?", "boolean"],
    ["tags?", "string[]"],
    ["pair?", "[string, number]"],
    ["choice?", "string | number"],
    ["either?", "FeatureTriedEitherVariant1 | FeatureTriedEitherVariant2"],
    ["both?", "FeatureTriedBothPart1 & FeatureTriedBothPart2"],
    ["scores?", "{ [property: string]: number }"],
    ["open?", "FeatureTriedOpen"],
    ["exact", "FeatureTriedExact"],
    ["home?", "FeatureTriedAddress"],
    ["work?", "FeatureTriedAddress"],
    ["tree?", "FeatureTriedNode"],
    ['"data-key"?', "string"],
    ["anything?", "unknown"],
  ];
  for (const [key, ts] of expected) assert.ok(props.includes(`\n  ${key}: ${ts};\n`), `${key}: ${ts} in ${props}`);
  assert.doesNotMatch(props, /\n {2}\[property: string\]/, "additionalProperties: false gives an exact type");
  assert.match(type("FeatureTriedOpen"), /\[property: string\]: unknown;/, "absent additionalProperties: open");
  assert.doesNotMatch(type("FeatureTriedExact"), /\[property: string\]/);
  assert.match(type("FeatureTriedNode"), /children\?: FeatureTriedNode\[\];/, "a recursive $ref refers to itself");
  assert.equal(source.match(/^export type FeatureTriedAddress = /gm)?.length, 1, "a $ref is declared once");
  // Descriptions are doc comments, and a "*/" in one cannot close it.
  assert.match(source, /\/\*\* Ends \*\\\/ early\? Not here\. \*\/\n {2}note\?: string \| null;/);
  assert.doesNotMatch(source.replace(/\/\*\*[^]*?\*\//g, ""), /Ends|comment end/, "descriptions stay inside comments");
  // Names that are no identifiers: quoted keys; identifiers by the shared rules (plan/names.ts).
  assert.match(source, /^ {2}trackOrderCompleted\(params/m);
  assert.match(source, /^ {2}track_42Things\(params/m);
  assert.match(source, /^ {2}pageDocs\(params[^\n]*properties: DocsPageProperties/m);
  assert.match(source, /^ {2}screenDocs\(params[^\n]*properties\?: DocsScreenProperties/m);
  // The common schema's context: required, typed. Traits kept required (requiredTraits: true).
  assert.match(type("CallFields"), /\n {2}context: CommonContext;\n/);
  assert.match(type("CommonContext"), /\n {2}app: string;\n/);
  assert.match(type("IdentifyTraits"), /^\{\n {2}email: string;\n\}$/);
  assert.match(source, /identify\(params: Identity & CallFields & \{ traits: IdentifyTraits \}/);
  assert.match(source, /group\(params: Identity & CallFields & \{ groupId: Id; traits\?: Properties \}/, "unplanned");
});

test("names that collide once turned into function names are refused, naming both", async () => {
  const plan = await loadPlan(COLLISION);
  assert.throws(
    () => generateTypes(plan),
    (error: unknown) =>
      error instanceof TypesError &&
      error.message ===
        'Cannot generate types: track "Order Completed" and track "order_completed" would both be the function ' +
          "trackOrderCompleted",
  );
});

// ---- the compiler's verdict

/** A correct use of the example plan's wrapper, and misuses, each expected to fail with one TypeScript error. */
const USES: { file: string; code: number; message: RegExp; body: string }[] = [
  {
    file: "unplanned.ts",
    code: 2339,
    message: /Property 'trackNotPlanned' does not exist on type 'Tracking'/,
    body: 'tracking.trackNotPlanned({ userId: "u1", properties: {} });',
  },
  {
    file: "enum.ts",
    code: 2322,
    message: /Type '"Gold"' is not assignable to type '"Free" \| "Pro" \| "Enterprise"'/,
    body: 'tracking.trackSignedUp({ userId: "u1", properties: { plan: "Gold" } });',
  },
  {
    file: "required.ts",
    code: 2741,
    message:
      /Property 'total' is missing in type '\{ order_id: string; \}' but required in type 'OrderCompletedV1Properties'/,
    body: 'tracking.trackOrderCompletedV1({ userId: "u1", properties: { order_id: "o1" } });',
  },
  {
    file: "type.ts",
    code: 2322,
    message: /Type 'string' is not assignable to type 'number'/,
    body: 'tracking.trackOrderCompletedV1({ userId: "u1", properties: { order_id: "o1", total: "12" } });',
  },
  {
    file: "additional.ts",
    code: 2353,
    message: /'colour' does not exist in type 'OrderCompletedProductsItem'/,
    body: 'tracking.trackOrderCompleted({ userId: "u1", properties: { order_id: "o1", total: 1, currency: "EUR", ' +
      'products: [{ sku: "s", price: 1, colour: "red" }] } });',
  },
  {
    file: "identity.ts",
    code: 2345,
    message: /is not assignable to parameter of type 'Identity & CallFields/,
    body: 'tracking.trackSignedUp({ properties: { plan: "Free" } });',
  },
];

const CORRECT = `
const messageIds: string[] = [
  tracking.trackOrderCompleted({
    userId: "u1",
    properties: {
      order_id: "o1",
      total: 12.5,
      currency: "EUR",
      coupon: null,
      completed_at: new Date(),
      shipping: { method: "express", address: { country: "FR" } },
      products: [{ sku: "s1", price: 12.5, quantity: 1 }],
    },
    context: { locale: "fr-FR" },
  }),
  tracking.trackOrderCompletedV1({ anonymousId: "a1", properties: { order_id: "o1", total: 3 } }),
  tracking.trackSignedUp({ userId: 42, properties: { plan: "Pro", referrer: "ad" } }),
  tracking.trackDeployFinished({ userId: "ci", properties: { service: "api", ok: true } }),
  tracking.pageHome({ userId: "u1" }),
  tracking.pagePricing({ userId: "u1", category: "Docs", properties: { plan_shown: "Free" } }),
  tracking.screenSettings({ userId: "u1", properties: { section: "Privacy" } }),
  tracking.identify({ userId: "u1", traits: { email: "a@example.com", plan: "Free", created_at: new Date() } }),
  tracking.group({ userId: "u1", groupId: "g1", traits: { name: "Initech", employees: 3 } }),
  tracking.alias({ previousId: "a1", userId: "u1" }),
];
export { messageIds };
`;

/** Writes tracking.ts (importing the library from `mod`) and the use files into `dir`. */
function writeUses(dir: string, source: (importFrom: string) => string, mod: string): string[] {
  writeFileSync(join(dir, "tracking.ts"), source(specifier(dir, mod)));
  const head = `import { Analytics } from ${JSON.stringify(specifier(dir, mod))};\n` +
    'import { createTracking } from "./tracking.ts";\n' +
    "const tracking = createTracking(new Analytics({ send: false }));\n";
  writeFileSync(join(dir, "correct.ts"), head + CORRECT);
  for (const use of USES) writeFileSync(join(dir, use.file), `${head}${use.body}\nexport {};\n`);
  return ["correct.ts", ...USES.map((u) => u.file)];
}

/** Asserts the verdict: no error in correct.ts and tracking.ts, exactly the expected one in each misuse. */
function assertVerdict(errors: { file: string; code: number; message: string }[], checker: string): void {
  const inFile = (file: string) => errors.filter((e) => e.file === file);
  assert.deepEqual(inFile("tracking.ts"), [], `${checker}: the generated file itself`);
  assert.deepEqual(inFile("correct.ts"), [], `${checker}: the correct use`);
  for (const use of USES) {
    const found = inFile(use.file);
    assert.equal(found.length, 1, `${checker}: ${use.file}: ${JSON.stringify(found)}`);
    assert.equal(found[0].code, use.code, `${checker}: ${use.file}: ${found[0].message}`);
    assert.match(found[0].message, use.message, `${checker}: ${use.file}`);
  }
  const stray = errors.filter((e) => !["tracking.ts", "correct.ts", ...USES.map((u) => u.file)].includes(e.file));
  assert.deepEqual(stray, [], `${checker}: errors elsewhere`);
}

test("deno check: the correct use compiles; each misuse fails with its TypeScript error", async () => {
  const deno = findDeno();
  const config = findDenoJson();
  assert.ok(deno !== undefined && config !== undefined, "node_modules/.bin/deno and deno.json are found");
  const plan = await loadPlan(EXAMPLE_PLAN);
  // deno check reads the library's sources: the repository's mod.ts, whatever this run imports.
  const mod = join(dirname(config), "mod.ts");
  await withTemp(async (dir) => {
    const files = writeUses(dir, (importFrom) => generateTypes(plan, { importFrom }), mod);
    const r = await spawnToEnd(deno, ["check", "--config", config, "tracking.ts", ...files], dir);
    assert.notEqual(r.code, 0, r.output);
    const errors = [
      ...r.output.matchAll(
        /TS(\d+) \[ERROR\]: ([^\n]*(?:\n(?! {4}at )[^\n]*)*)\n {4}at file:\/\/\S*\/([^/:]+):\d+:\d+/g,
      ),
    ]
      .map((m) => ({ file: m[3], code: Number(m[1]), message: m[2] }));
    assert.ok(errors.length > 0, r.output);
    assertVerdict(errors, "deno check");
  });
});

test("tsc (strict): the correct use compiles; each misuse fails with its TypeScript error", async () => {
  const plan = await loadPlan(EXAMPLE_PLAN);
  await withTemp((dir) => {
    const files = writeUses(dir, (importFrom) => generateTypes(plan, { importFrom }), MOD);
    const program = ts.createProgram(["tracking.ts", ...files].map((f) => join(dir, f)), {
      target: ts.ScriptTarget.ES2022,
      module: ts.ModuleKind.ESNext,
      moduleResolution: ts.ModuleResolutionKind.Bundler,
      allowImportingTsExtensions: true,
      noEmit: true,
      strict: true,
      noImplicitOverride: true,
      noImplicitReturns: true,
      noUnusedParameters: true,
      skipLibCheck: true,
      lib: ["lib.es2022.d.ts", "lib.dom.d.ts"],
      types: [],
    });
    const errors = ts.getPreEmitDiagnostics(program).map((d) => ({
      file: d.file === undefined ? "" : relative(dir, d.file.fileName).split("\\").join("/"),
      code: d.code,
      message: ts.flattenDiagnosticMessageText(d.messageText, "\n"),
    })).filter((e) => !e.file.startsWith(".."));
    assertVerdict(errors, "tsc");
  });
});

// ---- running it

/** The generated module, importable on this runtime: TypeScript on Deno and Bun, transpiled for Node. */
async function importGenerated(dir: string, source: string): Promise<typeof import("../examples/tracking.ts")> {
  const native = "Deno" in globalThis || "Bun" in globalThis;
  const file = join(dir, native ? "tracking.ts" : "tracking.mjs");
  writeFileSync(
    file,
    native ? source : ts.transpileModule(source, {
      compilerOptions: { target: ts.ScriptTarget.ES2022, module: ts.ModuleKind.ESNext },
    }).outputText,
  );
  return await import(pathToFileURL(file).href);
}

test("the generated wrapper delivers to the collector messages the plan checker finds clean", async () => {
  const plan = await loadPlan(EXAMPLE_PLAN);
  const checker = createChecker(plan);
  await withTemp(async (dir) => {
    const generated = await importGenerated(dir, generateTypes(plan, { importFrom: specifier(dir, MOD) }));
    await withCollector({}, async (collector) => {
      const analytics = new Analytics({ writeKey: "KEY", host: collector.url, uploadInterval: 0.01 });
      const tracking = generated.createTracking(analytics);
      const ids = [
        tracking.trackOrderCompleted({
          userId: "u1",
          properties: {
            order_id: "o1",
            total: 12.5,
            currency: "EUR",
            completed_at: new Date("2024-05-01T10:00:00Z"),
            products: [{ sku: "s1", price: 12.5, quantity: 1 }],
          },
          context: { locale: "fr-FR" },
        }),
        tracking.trackOrderCompletedV1({ anonymousId: "a1", properties: { order_id: "o2", total: 3 } }),
        tracking.trackSignedUp({ userId: "u2", properties: { plan: "Pro" } }),
        tracking.trackDeployFinished({ userId: "ci", properties: { service: "api", ok: true } }),
        tracking.pageHome({ userId: "u1" }),
        tracking.pagePricing({ userId: "u1", properties: { plan_shown: "Free" } }),
        tracking.screenSettings({ userId: "u1", properties: { section: "Privacy" } }),
        tracking.identify({ userId: "u1", traits: { email: "a@example.com", created_at: new Date() } }),
        tracking.group({ userId: "u1", groupId: "g1", traits: { name: "Initech", employees: 3 } }),
      ];
      // The checker is not blind: an event the plan lacks, sent around the wrapper, is a violation.
      const unplanned = analytics.track({ userId: "u1", event: "Not Planned" });
      const result = await analytics.flush();
      assert.deepEqual([result.delivered, result.failed], [ids.length + 1, 0], JSON.stringify(result));
      await analytics.closeAndFlush({ timeout: 5000 });
      const stored = collector.events();
      const byId = new Map(stored.map((e) => [e.message.messageId as string, e]));
      for (const id of ids) {
        const event = byId.get(id);
        assert.ok(event, `message ${id} arrived`);
        assert.equal(event.status, "good", `${id}: ${event.reasons.join("; ")}`);
        assert.deepEqual(checker.check(event.message as Record<string, unknown>), [], JSON.stringify(event.message));
      }
      const v1 = byId.get(ids[1])!.message as { context: { protocols: { event_version: number } } };
      assert.equal(v1.context.protocols.event_version, 1);
      const v2 = byId.get(ids[0])!.message as { context: { locale: string; protocols: { event_version: number } } };
      assert.deepEqual([v2.context.protocols.event_version, v2.context.locale], [2, "fr-FR"]);
      const violations = checker.check(byId.get(unplanned)!.message as Record<string, unknown>);
      assert.deepEqual(violations.map((v) => v.category), ["unplanned_event"]);
    });
  });
});

// ---- the command

/** A Writable that keeps what it is given. */
function sink(): Writable & { text: string } {
  const s = {
    text: "",
    write(chunk: string, callback?: (error?: Error | null) => void): boolean {
      s.text += chunk;
      callback?.(null);
      return true;
    },
    on: () => s,
  };
  return s;
}

test("planTypes writes the file with -o, or to stdout, and refuses colliding names as invalid input", async () => {
  await withTemp(async (dir) => {
    const out = join(dir, "tracking.ts");
    const [stdout, stderr] = [sink(), sink()];
    const io = streamIo(stdout, stderr, {});
    assert.equal(await planTypes([EXAMPLE_PLAN, "-o", out, "--import-from", "jsr:@tally/analytics"], io), 0);
    const plan = await loadPlan(EXAMPLE_PLAN);
    assert.equal(readFileSync(out, "utf8"), generateTypes(plan, { importFrom: "jsr:@tally/analytics" }));
    assert.equal(stdout.text, "");
    assert.match(stderr.text, /^tally: wrote .*tracking\.ts: 8 event functions, identify, group and alias\n$/);

    const io2 = streamIo(stdout, stderr, {});
    assert.equal(await planTypes([EXAMPLE_PLAN], io2), 0);
    await io2.settle();
    assert.equal(stdout.text, generateTypes(plan));

    await assert.rejects(planTypes([COLLISION], streamIo(sink(), sink(), {})), {
      name: "UsageError",
      message: /^Cannot generate types: track "Order Completed" and track "order_completed"/,
    });
    await assert.rejects(planTypes([join(dir, "missing.json")], streamIo(sink(), sink(), {})), {
      name: "UsageError",
      message: /^Cannot read plan .*missing\.json: no such file$/,
    });
    await assert.rejects(planTypes([], streamIo(sink(), sink(), {})), { name: "UsageError" });
    const io3 = streamIo(sink(), stderr, {});
    assert.equal(await planTypes([EXAMPLE_PLAN, "-o", join(dir, "no", "such", "dir.ts")], io3), 1);
    assert.match(stderr.text, /Cannot write .*dir\.ts: no such directory\n$/);
  });
});

test("tally plan types runs from the CLI: -o writes the generated file; colliding names exit 2", async () => {
  const [dir, cleanup] = scratch();
  try {
    const out = join(dir, "tracking.ts");
    const r = await run(["plan", "types", EXAMPLE_PLAN, "-o", out]);
    assert.equal(r.code, 0, show(r));
    assert.equal(readFileSync(out, "utf8"), generateTypes(await loadPlan(EXAMPLE_PLAN)));
    const bad = await run(["plan", "types", COLLISION]);
    assert.equal(bad.code, 2, show(bad));
    assert.match(bad.stderr, /^tally: Cannot generate types: track "Order Completed" and track "order_completed"/m);
    assert.equal(bad.stdout, "");
  } finally {
    cleanup();
  }
});
