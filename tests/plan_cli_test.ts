/**
 * `tally plan check` and `tally plan lint`, run as a child process (the
 * source CLI, or the compiled binary through TALLY_BIN: tests/fixtures/cli_run.ts):
 * text, --json and --junit output, exit codes, stdin, and the NDJSON file a
 * real collector wrote.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { Analytics } from "../mod.ts";
import { PLAN_CHECK_FLAGS, PLAN_LINT_FLAGS } from "../cli/plan.ts";
import { PLAN_TYPES_FLAGS } from "../cli/plan_types.ts";
import { canWrite, withCollector } from "./fixtures/collector_helpers.ts";
import { run, scratch, show } from "./fixtures/cli_run.ts";

const PLAN = "examples/plan.json";
const line = (m: Record<string, unknown>): string => JSON.stringify(m);
const ORDER = {
  type: "track",
  userId: "u1",
  event: "Order Completed",
  properties: { order_id: "o-1", total: 10, currency: "EUR", products: [] },
};
const INPUT = [
  line(ORDER),
  line({ ...ORDER, properties: { ...ORDER.properties, total: "10" } }),
  "",
  "{not json",
  line({ type: "track", userId: "u1", event: 'Order <Shipped> & "gone"' }),
  line({ type: "identify", userId: "u1", traits: { email: "nope" } }),
].join("\n") + "\n";

test("tally plan --help lists every subcommand and every flag", async () => {
  const r = await run(["plan", "--help"]);
  assert.equal(r.code, 0, show(r));
  for (const sub of ["check", "lint", "types"]) assert.match(r.stdout, new RegExp(`tally plan ${sub}`));
  for (const flag of [...PLAN_CHECK_FLAGS, ...PLAN_LINT_FLAGS, ...PLAN_TYPES_FLAGS]) {
    assert.ok(r.stdout.includes(`--${flag.name}`), flag.name);
  }
  for (const category of ["unplanned_event", "required_missing", "type_mismatch", "additional_property"]) {
    assert.ok(r.stdout.includes(category), category);
  }
  const top = await run(["--help"]);
  assert.match(top.stdout, /tally plan check --plan PLAN/);
});

test("tally plan check: a line per violation, bad lines with file:line, exit 2 when a line is not a message", async () => {
  const [dir, clean] = scratch();
  try {
    const file = join(dir, "events.ndjson");
    writeFileSync(file, INPUT);
    const r = await run(["plan", "check", "--plan", PLAN, file]);
    assert.equal(r.code, 2, show(r));
    assert.deepEqual(r.stdout.split("\n").filter((l) => l !== ""), [
      `${file}:2: Order Completed: $.properties.total: type_mismatch: expected number, got string "10"`,
      `${file}:5: Order <Shipped> & "gone": $.event: unplanned_event: event "Order <Shipped> & \\"gone\\"" is not in the plan`,
      `${file}:6: identify: $.traits.email: format_mismatch: expected format email, got "nope"`,
    ]);
    assert.match(r.stderr, new RegExp(`${file}:4: not valid JSON`));
    assert.match(r.stderr, /checked 4 messages: 3 violations in 3 messages; 1 line not a message/);
  } finally {
    clean();
  }
});

test("tally plan check: exit 0 when clean, 1 on violations, 2 on usage errors; stdin when no file", async () => {
  const clean = await run(["plan", "check", "--plan", PLAN], { stdin: line(ORDER) + "\n" });
  assert.equal(clean.code, 0, show(clean));
  assert.equal(clean.stdout, "");
  assert.match(clean.stderr, /checked 1 message: every one keeps the plan/);
  const bad = await run(["plan", "check", "--plan", PLAN, "-"], { stdin: line({ type: "track", event: "X" }) });
  assert.equal(bad.code, 1, show(bad));
  assert.match(bad.stdout, /^stdin:1: X: \$\.event: unplanned_event: /);
  // A JSON array, as tally send reads too.
  const array = await run(["plan", "check", "--plan", PLAN], { stdin: `[${line(ORDER)},${line(ORDER)}]` });
  assert.equal(array.code, 0, show(array));
  assert.match(array.stderr, /checked 2 messages/);
  for (
    const args of [
      ["plan", "check"],
      ["plan", "check", "--plan", "tests/fixtures/plans/none.json"],
      ["plan", "check", "--plan", PLAN, "tests/fixtures/plans/none.ndjson"],
      ["plan", "check", "--plan", PLAN, "--bogus"],
      ["plan", "frobnicate"],
    ]
  ) {
    const r = await run(args, { stdin: "" });
    assert.equal(r.code, 2, `${args.join(" ")}: ${show(r)}`);
    assert.match(r.stderr, /^tally: /);
    assert.doesNotMatch(r.stderr, /\n\s+at /); // no stack trace
  }
});

test("tally plan check --json: one object per violation, then the summary", async () => {
  const r = await run(["plan", "check", "--plan", PLAN, "--json"], { stdin: INPUT });
  assert.equal(r.code, 2, show(r));
  const objects = r.stdout.trim().split("\n").map((l) => JSON.parse(l));
  assert.deepEqual(objects[0], {
    file: "stdin",
    line: 2,
    event: "Order Completed",
    type: "track",
    category: "type_mismatch",
    path: "$.properties.total",
    message: 'expected number, got string "10"',
  });
  assert.deepEqual(objects.map((o) => o.category ?? o.error?.slice(0, 14) ?? "summary"), [
    "type_mismatch",
    "not valid JSON",
    "unplanned_event",
    "format_mismatch",
    "summary",
  ]);
  const { seconds: _, ...summary } = objects.at(-1);
  assert.deepEqual(summary, { summary: true, messages: 4, violations: 3, failed: 3, invalid: 1, files: 1 });
});

test("tally plan check --junit: a testsuite per file, a testcase per message, a failure per violation, escaped", async () => {
  const [dir, clean] = scratch();
  try {
    const a = join(dir, "a.ndjson");
    const b = join(dir, "b.ndjson");
    writeFileSync(a, INPUT);
    writeFileSync(b, line(ORDER) + "\n");
    const report = join(dir, "report.xml");
    const r = await run(["plan", "check", "--plan", PLAN, "--junit", report, a, b]);
    assert.equal(r.code, 2, show(r));
    const xml = readFileSync(report, "utf8");
    assert.match(
      xml,
      /^<\?xml version="1.0" encoding="UTF-8"\?>\n<testsuites name="tally plan check" tests="6" failures="3" errors="1">/,
    );
    assert.equal(xml.match(/<testsuite /g)?.length, 2);
    assert.equal(xml.match(/<testcase /g)?.length, 6);
    assert.equal(xml.match(/<failure /g)?.length, 3);
    assert.ok(xml.includes('name="line 5: Order &lt;Shipped&gt; &amp; &quot;gone&quot;"'), xml);
    assert.ok(xml.includes(`<testsuite name="${b}" tests="1" failures="0" errors="0">`), xml);
    // Well formed: no raw markup characters inside attribute values.
    for (const attr of xml.matchAll(/="([^"]*)"/g)) assert.doesNotMatch(attr[1], /[<>&](?!amp;|lt;|gt;|quot;|apos;)/);
    assert.equal(xml.match(/<testsuite /g)?.length, xml.match(/<\/testsuite>/g)?.length);
  } finally {
    clean();
  }
});

test("tally plan check reads the NDJSON file a real collector wrote", { skip: !canWrite }, async () => {
  const [dir, clean] = scratch();
  try {
    const out = join(dir, "events.ndjson");
    await withCollector({ out }, async (collector) => {
      const analytics = new Analytics({ writeKey: "K", host: collector.url, flushAt: 10 });
      analytics.track(ORDER as never);
      analytics.track({ userId: "u1", event: "Order Shipped" });
      analytics.identify({ userId: "u1", traits: { email: "a@b.co" } });
      await analytics.close();
    });
    const r = await run(["plan", "check", "--plan", PLAN, out]);
    assert.equal(r.code, 1, show(r));
    assert.deepEqual(r.stdout.trim().split("\n"), [
      `${out}:2: Order Shipped: $.event: unplanned_event: event "Order Shipped" is not in the plan`,
    ]);
    assert.match(r.stderr, /checked 3 messages/);
  } finally {
    clean();
  }
});

test("tally plan lint: clean plans exit 0; problems one per line, exit 1; an unreadable plan exit 1, a missing one 2", async () => {
  for (const plan of [PLAN, "tests/fixtures/plans/segment_rules.json", "tests/fixtures/plans/typewriter_plan.json"]) {
    const r = await run(["plan", "lint", plan]);
    assert.equal(r.code, 0, show(r));
    assert.match(r.stderr, /no problems/);
  }
  const bad = await run(["plan", "lint", "tests/fixtures/plans/lint_problems.json"]);
  assert.equal(bad.code, 1, show(bad));
  const lines = bad.stdout.trim().split("\n");
  assert.deepEqual(lines.map((l) => l.split(": ")[1]), ["duplicate_version", "invalid_schema", "name_collision"]);
  const json = await run(["plan", "lint", "--json", "tests/fixtures/plans/lint_problems.json"]);
  assert.deepEqual(JSON.parse(json.stdout.trim().split("\n").at(-1)!), { summary: true, problems: 3 });
  const [dir, clean] = scratch();
  try {
    const broken = join(dir, "broken.json");
    writeFileSync(broken, '{"tally":1,"events":[]}');
    const r = await run(["plan", "lint", broken]);
    assert.equal(r.code, 1, show(r));
    assert.match(r.stdout, /invalid_plan: Cannot read plan .*\(Tally plan\): \$\.events: expected an object/);
  } finally {
    clean();
  }
  const missing = await run(["plan", "lint", "tests/fixtures/plans/none.json"]);
  assert.equal(missing.code, 2, show(missing));
});
