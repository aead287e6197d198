/**
 * Tracking-plan bench: Ajv 8 (+ ajv-formats) against @cfworker/json-schema
 * on a 20-event plan (messages/s, cold compile time, bundle size), and
 * `tally plan check` lines/s end to end, and `tally serve --plan` ingest
 * (events/s into `startCollector` with and without the plan, batches of 500
 * POSTed over loopback from this process). Prints Markdown for BENCHMARKS.md
 * ("Tracking plans").
 *
 *   node_modules/.bin/deno run -A bench/plan.ts [--lines 200000] [--messages 200000] [--events 200000]
 *   node_modules/.bin/deno run -A bench/plan.ts --ingest-only     (the collector ingest alone)
 *
 * @module
 */
import { spawnSync } from "node:child_process";
import { mkdtempSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import process from "node:process";
import { Validator } from "@cfworker/json-schema";
import { createChecker } from "../plan/check.ts";
import type { Plan } from "../plan/model.ts";
import { startCollector } from "../serve/mod.ts";

const arg = (name: string, fallback: number): number => {
  const i = process.argv.indexOf(`--${name}`);
  return i < 0 ? fallback : Number(process.argv[i + 1]);
};
const LINES = arg("lines", 200_000);
const MESSAGES = arg("messages", 200_000);
const EVENTS = arg("events", 200_000);
const INGEST_ONLY = process.argv.includes("--ingest-only");
const BATCH = 500;
/** Requests in flight at once, as a few clients (or one client's concurrent flushes) would send them. */
const CONCURRENCY = 4;
const ROOT = new URL("..", import.meta.url).pathname;

/** 20 events, each with required strings, numbers, an enum, a date-time, a nested object and an array. */
function plan20(): Plan {
  const events = Array.from({ length: 20 }, (_, i) => ({
    name: `Event ${i}`,
    properties: {
      type: "object",
      properties: {
        id: { type: "string" },
        amount: { type: "number", minimum: 0 },
        kind: { type: "string", enum: ["a", "b", "c"] },
        at: { type: "string", format: "date-time" },
        email: { type: "string", format: "email" },
        address: { type: "object", properties: { city: { type: "string" } }, required: ["city"] },
        items: { type: "array", items: { type: "object", properties: { sku: { type: "string" } }, required: ["sku"] } },
      },
      required: ["id", "amount", "kind"],
      additionalProperties: false,
    },
  }));
  return { events, pages: [], screens: [] };
}

function message(i: number): Record<string, unknown> {
  return {
    type: "track",
    userId: `u${i}`,
    messageId: `m-${i}`,
    event: `Event ${i % 20}`,
    // One message in ten breaks the plan: the error path costs too.
    properties: {
      id: `o-${i}`,
      amount: i % 10 === 0 ? "12" : 12.5,
      kind: "b",
      at: "2026-12-01T10:00:00Z",
      email: "a@example.com",
      address: { city: "Lyon" },
      items: [{ sku: "s1" }, { sku: "s2" }],
    },
    timestamp: "2026-12-01T10:00:00Z",
  };
}

const plan = plan20();
const messages = Array.from({ length: 1000 }, (_, i) => message(i));

function rate(check: (m: Record<string, unknown>) => unknown): number {
  for (let i = 0; i < 5000; i++) check(messages[i % 1000]); // warm up
  const start = performance.now();
  for (let i = 0; i < MESSAGES; i++) check(messages[i % 1000]);
  return MESSAGES / ((performance.now() - start) / 1000);
}

/** The validator figures and `tally plan check` end to end. */
function validators() {
  // Ajv, through the checker tally uses.
  let t = performance.now();
  const ajvChecker = createChecker(plan);
  const ajvCompileMs = performance.now() - t;
  const ajvRate = rate((m) => ajvChecker.check(m));

  // @cfworker/json-schema: one Validator per event (it compiles nothing: it walks the schema at each call).
  t = performance.now();
  const cf = new Map(plan.events.map((e) => [e.name, new Validator(e.properties as object, "7", false)]));
  const cfCompileMs = performance.now() - t;
  const cfRate = rate((m) => cf.get(m.event as string)!.validate(m.properties).errors);

  function bundleBytes(entry: string): number | undefined {
    const dir = mkdtempSync(join(tmpdir(), "tally-plan-bench-"));
    try {
      const file = join(dir, "entry.ts");
      writeFileSync(file, entry);
      const out = join(dir, "out.js");
      const r = spawnSync(
        `${ROOT}node_modules/.bin/bun`,
        ["build", "--minify", "--target=bun", file, "--outfile", out],
        {
          cwd: ROOT,
          encoding: "utf8",
        },
      );
      return r.status === 0 ? statSync(out).size : undefined;
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  }
  const ajvBytes = bundleBytes(
    `import { Ajv } from "${ROOT}node_modules/ajv/dist/ajv.js"; import f from "${ROOT}node_modules/ajv-formats/dist/index.js"; console.log(f(new Ajv()));`,
  );
  const cfBytes = bundleBytes(
    `import { Validator } from "${ROOT}node_modules/@cfworker/json-schema/dist/esm/index.js"; console.log(new Validator({}));`,
  );

  // tally plan check, end to end: the source CLI under Deno reading a file.
  const dir = mkdtempSync(join(tmpdir(), "tally-plan-bench-"));
  let cliRate = 0;
  try {
    const planFile = join(dir, "plan.json");
    const tallyPlan = {
      tally: 1,
      events: Object.fromEntries(plan.events.map((e) => [e.name, { properties: e.properties }])),
    };
    writeFileSync(planFile, JSON.stringify(tallyPlan));
    const input = join(dir, "events.ndjson");
    let text = "";
    for (let i = 0; i < LINES; i++) text += JSON.stringify(message(i)) + "\n";
    writeFileSync(input, text);
    const deno = `${ROOT}node_modules/.bin/deno`;
    const start = performance.now();
    const r = spawnSync(deno, ["run", "-A", `${ROOT}cli.ts`, "plan", "check", "--plan", planFile, input], {
      encoding: "utf8",
      maxBuffer: 1 << 30,
    });
    const seconds = (performance.now() - start) / 1000;
    if (r.status !== 1) throw new Error(`tally plan check exited ${r.status}: ${r.stderr.slice(-300)}`);
    cliRate = LINES / seconds;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
  return { ajvRate, ajvCompileMs, cfRate, cfCompileMs, ajvBytes, cfBytes, cliRate };
}

/** The tally plan file of `plan`, as `tally serve --plan` reads it. */
function writePlan(dir: string): string {
  const file = join(dir, "plan.json");
  const tallyPlan = {
    tally: 1,
    events: Object.fromEntries(plan.events.map((e) => [e.name, { properties: e.properties }])),
  };
  writeFileSync(file, JSON.stringify(tallyPlan));
  return file;
}

/**
 * Events/s into a collector (no NDJSON file, no stream client): `EVENTS` messages in batches of 500, each body
 * serialized beforehand (with its own messageIds, so none is a duplicate), `CONCURRENCY` requests in flight.
 */
async function ingest(planFile: string | undefined): Promise<number> {
  const collector = await startCollector({ plan: planFile, maxEvents: 10_000 });
  try {
    const bodies: string[] = [];
    for (let at = 0; at < EVENTS; at += BATCH) {
      const batch = [];
      for (let i = at; i < Math.min(EVENTS, at + BATCH); i++) batch.push(message(i));
      bodies.push(JSON.stringify({ batch }));
    }
    const postOne = async (body: string): Promise<void> => {
      const res = await fetch(`${collector.url}/v1/batch`, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body,
      });
      await res.arrayBuffer();
      if (res.status !== 200) throw new Error(`POST /v1/batch answered ${res.status}`);
    };
    for (let i = 0; i < 10; i++) await postOne(bodies[i % bodies.length]); // warm up
    collector.clear();
    let next = 0;
    const start = performance.now();
    await Promise.all(Array.from({ length: CONCURRENCY }, async () => {
      while (next < bodies.length) await postOne(bodies[next++]);
    }));
    const seconds = (performance.now() - start) / 1000;
    const stored = collector.stats().total;
    if (stored !== EVENTS) throw new Error(`the collector stored ${stored} of ${EVENTS} events`);
    if (planFile !== undefined && collector.stats().plan?.violations !== EVENTS / 10) {
      throw new Error(`expected ${EVENTS / 10} messages off plan, got ${collector.stats().plan?.violations}`);
    }
    return EVENTS / seconds;
  } finally {
    await collector.stop();
  }
}

const k = (n: number): string => `${Math.round(n / 1000).toLocaleString("en")}k`;
const kb = (n: number | undefined): string => (n === undefined ? "n/a" : `${Math.round(n / 1024)} KB`);
const runtime = "Deno" in globalThis ? "Deno" : "Bun" in globalThis ? "Bun" : "Node";
const planDir = mkdtempSync(join(tmpdir(), "tally-plan-bench-"));
let bare = 0;
let planned = 0;
try {
  const planFile = writePlan(planDir);
  // Alternated, each twice, the best of each kept: the machine is shared.
  for (let round = 0; round < 2; round++) {
    bare = Math.max(bare, await ingest(undefined));
    planned = Math.max(planned, await ingest(planFile));
  }
} finally {
  rmSync(planDir, { recursive: true, force: true });
}
const ingestTable = `\`tally serve --plan\` ingest (${runtime}, \`startCollector\` in this process, ${
  EVENTS.toLocaleString("en")
} events in batches of ${BATCH}, ${CONCURRENCY} requests in flight over loopback, no NDJSON file; best of 2):

| collector | events/s |
|---|---|
| without a plan | ${k(bare)} |
| with the 20-event plan (1 in 10 off plan) | ${k(planned)} (${(planned / bare).toFixed(2)}x) |`;
if (INGEST_ONLY) {
  console.log(ingestTable);
  process.exit(0);
}
const { ajvRate, ajvCompileMs, cfRate, cfCompileMs, ajvBytes, cfBytes, cliRate } = validators();
console.log(`| | Ajv 8 + ajv-formats | @cfworker/json-schema |
|---|---|---|
| messages/s, 20-event plan (1 in 10 invalid) | ${k(ajvRate)} | ${k(cfRate)} |
| cold compile, 20 schemas | ${ajvCompileMs.toFixed(0)} ms | ${cfCompileMs.toFixed(1)} ms |
| bundle (bun build --minify) | ${kb(ajvBytes)} | ${kb(cfBytes)} |

\`tally plan check\` (Deno, source CLI, ${
  LINES.toLocaleString("en")
} lines, 1 in 10 with a violation, process start included): ${k(cliRate)} lines/s

${ingestTable}`);
