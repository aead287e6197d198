/**
 * Tracking plans (plan/): the three formats read and normalized, every
 * violation category with its JSON path, event versions, optional traits,
 * lint, the identifier function, hot reload and the collector's hook.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createChecker, PlanSchemaError } from "../plan/check.ts";
import { openPlan } from "../plan/collector.ts";
import { detectFormat, loadPlan, parsePlan, PlanError } from "../plan/load.ts";
import { lintPlan } from "../plan/lint.ts";
import type { Violation } from "../plan/model.ts";
import { camelCase, collisions, pascalCase } from "../plan/names.ts";
import { watchPlan } from "../plan/watch.ts";

const FIXTURES = new URL("./fixtures/plans/", import.meta.url);
const fixture = (name: string): string => new URL(name, FIXTURES).pathname;
const SAMPLE = new URL("../examples/plan.json", import.meta.url).pathname;

const delay = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));
const categories = (vs: Violation[]): string[] => vs.map((v) => `${v.category} ${v.path}`).sort();

const GOOD_ORDER = {
  type: "track",
  userId: "u1",
  event: "Order Completed",
  properties: {
    order_id: "o-1",
    total: 42.5,
    currency: "EUR",
    completed_at: "2026-12-01T10:00:00Z",
    products: [{ sku: "s-1", price: 40, quantity: 1 }],
  },
};

// ---- loading

test("the sample plan reads as a Tally plan with every call type, versions and descriptions", async () => {
  const plan = await loadPlan(SAMPLE);
  assert.equal(plan.name, "Tally demo shop");
  assert.deepEqual(plan.events.map((e) => `${e.name}@${e.version ?? "-"}`), [
    "Order Completed@1",
    "Order Completed@2",
    "Signed Up@-",
    "Deploy Finished@-",
  ]);
  assert.deepEqual(plan.pages.map((p) => p.name), ["Home", "Pricing"]);
  assert.deepEqual(plan.screens.map((p) => p.name), ["Settings"]);
  assert.equal(plan.events[1].description, "A customer paid for an order.");
  assert.ok(plan.common !== undefined && plan.identify !== undefined && plan.group !== undefined);
  // Traits are optional by default: the plan's required list is dropped.
  assert.equal((plan.identify as Record<string, unknown>).required, undefined);
  assert.deepEqual(lintPlan(plan), []);
});

test("a Segment Public API rules export: properties from properties.properties, traits, pages, screens, common, id as $id", async () => {
  const plan = await loadPlan(fixture("segment_rules.json"));
  assert.equal(detectFormat(JSON.parse('{"data":{"rules":[]}}')), "segment");
  assert.deepEqual(plan.events.map((e) => `${e.name}@${e.version}`), ["Product Viewed@1", "Product Viewed@2"]);
  assert.equal(plan.events[0].description, "A product page was seen.");
  const props = plan.events[0].properties as Record<string, Record<string, Record<string, unknown>>>;
  assert.deepEqual(props.required, ["id"] as unknown);
  // `id` as a keyword became `$id`; the property called id stayed a property.
  assert.equal(props.properties.id.$id, "#/properties/id");
  assert.equal(props.properties.id.id, undefined);
  assert.deepEqual(plan.pages.map((p) => p.name), ["Home"]);
  assert.deepEqual(plan.screens.map((p) => p.name), ["Settings"]);
  assert.equal((plan.identify as Record<string, unknown>).required, undefined);
  assert.equal((plan.group as Record<string, unknown>).required, undefined);
  const checker = createChecker(plan);
  const context = { app: { name: "shop" } };
  assert.deepEqual(
    checker.check({ type: "track", event: "Product Viewed", context, properties: { id: "p1" } }).map((v) => v.path),
    ["$.properties.sku"], // version 2, the highest, is the default
  );
  assert.deepEqual(
    categories(checker.check({ type: "track", event: "Product Viewed", properties: { id: "p1", sku: "s" } })),
    ["required_missing $.context"], // the COMMON rule
  );
  assert.deepEqual(checker.check({ type: "identify", context, traits: { name: "only the name changed" } }), []);
  assert.deepEqual(categories(checker.check({ type: "screen", name: "Settings", context, properties: { tab: "c" } })), [
    "enum_mismatch $.properties.tab",
  ]);
});

test("a Typewriter plan.json: rules.events, labels ignored, identify traits optional", async () => {
  const plan = await loadPlan(fixture("typewriter_plan.json"));
  assert.equal(plan.name, "Typewriter Tracking Plan");
  assert.deepEqual(plan.events.map((e) => e.name), ["Sign In Failed", "Empty Event"]);
  const checker = createChecker(plan);
  assert.deepEqual(
    categories(checker.check({ type: "track", event: "Sign In Failed", properties: { id: 7, numAttempts: 1 } })),
    ["required_missing $.properties.rememberMe", "type_mismatch $.properties.id"],
  );
  assert.deepEqual(checker.check({ type: "track", event: "Empty Event", properties: { anything: [1] } }), []);
  assert.deepEqual(checker.check({ type: "identify", traits: {} }), []);
  assert.deepEqual(categories(checker.check({ type: "identify", traits: { plan: "Gold" } })), [
    "enum_mismatch $.traits.plan",
  ]);
  // Events at the top level, as some exports write them.
  const top = parsePlan('{"events":[{"name":"A","rules":{"properties":{"properties":{"type":"object"}}}}]}', "x.json");
  assert.deepEqual(top.events.map((e) => e.name), ["A"]);
});

test('identify traits stay required when a Tally plan says "requiredTraits": true', async () => {
  const plan = await loadPlan(fixture("required_traits.json"));
  assert.deepEqual(categories(createChecker(plan).check({ type: "identify", traits: {} })), [
    "required_missing $.traits.email",
  ]);
});

test("an unreadable plan is a PlanError naming the file, the format and the JSON path", async () => {
  const cases: [string, RegExp][] = [
    ["{", /^Cannot read plan p\.json: not valid JSON \(.* at line 1, column 2\)$/],
    ['{"nothing":1}', /^Cannot read plan p\.json: not a plan: expected a Tally plan/],
    ['{"tally":2}', /^Cannot read plan p\.json \(Tally plan\): \$\.tally: expected 1/],
    [
      '{"tally":1,"events":{"Order Completed":{"properties":"object"}}}',
      /^Cannot read plan p\.json \(Tally plan\): \$\.events\["Order Completed"\]\.properties: expected a JSON Schema/,
    ],
    [
      '{"data":{"rules":[{"type":"TRACK","key":"A","jsonSchema":{}},{"type":"ALIAS"}]}}',
      /^Cannot read plan p\.json \(Segment Public API rules export\): \$\.data\.rules\[1\]\.type: expected TRACK/,
    ],
    [
      '{"rules":{"events":[{"name":"A","version":"one"}]}}',
      /^Cannot read plan p\.json \(Typewriter plan\.json\): \$\.rules\.events\[0\]\.version: expected a version/,
    ],
  ];
  for (const [text, expected] of cases) {
    assert.throws(() => parsePlan(text, "p.json"), (e: unknown) => e instanceof PlanError && expected.test(e.message));
  }
  await assert.rejects(loadPlan(fixture("no_such_plan.json")), /Cannot read plan .*no_such_plan\.json: no such file/);
});

// ---- violations

test("every violation category, with the JSON path of the value", async () => {
  const checker = createChecker(await loadPlan(SAMPLE));
  assert.deepEqual(checker.check(GOOD_ORDER), []);
  const bad = {
    ...GOOD_ORDER,
    context: { locale: "french" },
    properties: {
      order_id: "o-1",
      total: -1, // constraint (minimum)
      currency: "YEN", // enum_mismatch
      completed_at: "yesterday", // format_mismatch
      gift: true, // additional_property
      products: [{ sku: "s-1", price: "9" }], // type_mismatch in an array
      shipping: { method: "express", address: {} }, // required_missing, nested
    },
  };
  assert.deepEqual(categories(checker.check(bad)), [
    "additional_property $.properties.gift",
    "constraint $.context.locale",
    "constraint $.properties.total",
    "enum_mismatch $.properties.currency",
    "format_mismatch $.properties.completed_at",
    "required_missing $.properties.shipping.address.country",
    "type_mismatch $.properties.products[0].price",
  ]);
  const one = checker.check({ ...GOOD_ORDER, properties: { ...GOOD_ORDER.properties, total: "42" } });
  assert.deepEqual(one, [{
    category: "type_mismatch",
    path: "$.properties.total",
    message: 'expected number, got string "42"',
  }]);
  assert.deepEqual(checker.check({ type: "track", event: "Order Shipped", properties: {} }), [{
    category: "unplanned_event",
    path: "$.event",
    message: 'event "Order Shipped" is not in the plan',
  }]);
  assert.deepEqual(categories(checker.check({ type: "identify", traits: { email: "not an address" } })), [
    "format_mismatch $.traits.email",
  ]);
  assert.deepEqual(categories(checker.check({ type: "group", traits: { employees: 0 } })), [
    "constraint $.traits.employees",
  ]);
  assert.deepEqual(categories(checker.check({ type: "page", name: "About" })), ["unplanned_event $.name"]);
  assert.deepEqual(categories(checker.check({ type: "page", name: "Pricing", properties: { plan_shown: "Gold" } })), [
    "enum_mismatch $.properties.plan_shown",
  ]);
  assert.deepEqual(categories(checker.check({ type: "screen", properties: {} })), ["unplanned_event $.name"]);
  assert.deepEqual(checker.check({ type: "alias", previousId: "a", userId: "b" }), []);
  // A path segment that is not a plain identifier is quoted.
  const odd = createChecker(parsePlan('{"tally":1,"events":{"E":{"properties":{"required":["a b"]}}}}', "p"));
  assert.deepEqual(odd.check({ type: "track", event: "E", properties: {} }).map((v) => v.path), [
    '$.properties["a b"]',
  ]);
});

test("event versions: context.protocols.event_version picks one, an unknown one is unknown_version, none is the highest", async () => {
  const checker = createChecker(await loadPlan(SAMPLE));
  const v1 = { type: "track", event: "Order Completed", properties: { order_id: "o", total: 1 } };
  assert.deepEqual(checker.check({ ...v1, context: { protocols: { event_version: 1 } } }), []);
  assert.deepEqual(checker.check({ ...v1, context: { protocols: { event_version: "1" } } }), []);
  assert.deepEqual(categories(checker.check(v1)), [
    "required_missing $.properties.currency",
    "required_missing $.properties.products",
  ]);
  assert.deepEqual(checker.check({ ...v1, context: { protocols: { event_version: 3 } } }), [{
    category: "unknown_version",
    path: "$.context.protocols.event_version",
    message: 'event "Order Completed" has no version 3 in the plan (it has 1, 2)',
  }]);
  // An event planned without a version is version 1.
  assert.deepEqual(
    checker.check({
      type: "track",
      event: "Signed Up",
      properties: { plan: "Pro" },
      context: { protocols: { event_version: 1 } },
    }),
    [],
  );
});

test("a plan with no pages leaves page calls unchecked; every track must be planned", () => {
  const checker = createChecker(parsePlan('{"tally":1,"events":{}}', "p"));
  assert.deepEqual(checker.check({ type: "page", name: "Anything" }), []);
  assert.deepEqual(categories(checker.check({ type: "track", event: "Anything" })), ["unplanned_event $.event"]);
});

test("a schema the validator refuses is a PlanSchemaError naming the event", () => {
  const plan = parsePlan('{"tally":1,"events":{"Bad":{"properties":{"type":"obj"}}}}', "p");
  assert.throws(
    () => createChecker(plan),
    (e: unknown) => e instanceof PlanSchemaError && /event "Bad"/.test(e.message),
  );
});

// ---- lint and names

test("lint: invalid schemas, identifier collisions, duplicate versions", async () => {
  const problems = lintPlan(await loadPlan(fixture("lint_problems.json")));
  assert.deepEqual(problems.map((p) => `${p.kind} ${p.where}`), [
    'duplicate_version event "Signed Up" (version 1)',
    'invalid_schema event "Broken"',
    "name_collision events",
  ]);
  assert.match(problems[2].message, /"Order Completed" and "order_completed" are all "orderCompleted"/);
});

test("names: one identifier for every spelling of a name", () => {
  for (const name of ["Order Completed", "order_completed", "orderCompleted", "order-completed", "ORDER COMPLETED"]) {
    assert.equal(camelCase(name), "orderCompleted", name);
  }
  assert.equal(pascalCase("Order Completed"), "OrderCompleted");
  assert.equal(camelCase("42 things"), "_42Things");
  assert.equal(camelCase("!!"), "_");
  assert.deepEqual([...collisions(["A b", "a_b", "C", "A b"])], [["aB", ["A b", "a_b"]]]);
});

// ---- hot reload and the collector's hook

test("watchPlan: a changed file is reloaded, a broken one reported and the old plan kept", async () => {
  const dir = mkdtempSync(join(tmpdir(), "tally-plan-"));
  const path = join(dir, "plan.json");
  writeFileSync(path, '{"tally":1,"events":{"A":{}}}');
  const plans: string[][] = [];
  const errors: string[] = [];
  const watch = watchPlan(path, (plan) => plans.push(plan.events.map((e) => e.name)), {
    pollMs: 50,
    debounceMs: 20,
    onError: (e) => errors.push(e.message),
  });
  try {
    await delay(60);
    writeFileSync(path, '{"tally":1,"events":{"A":{},"B":{}}}');
    for (let i = 0; i < 100 && plans.length === 0; i++) await delay(20);
    assert.deepEqual(plans.at(-1), ["A", "B"]);
    writeFileSync(path, '{"tally":1,"events":');
    for (let i = 0; i < 100 && errors.length === 0; i++) await delay(20);
    assert.match(errors[0], /Cannot read plan .*plan\.json: not valid JSON/);
    assert.deepEqual(plans.at(-1), ["A", "B"]);
  } finally {
    watch.close();
    rmSync(dir, { recursive: true, force: true });
  }
});

test("openPlan: observe marks, block-unplanned blocks only unplanned events, a reload with a bad schema keeps the old plan", async () => {
  const dir = mkdtempSync(join(tmpdir(), "tally-plan-"));
  const path = join(dir, "plan.json");
  writeFileSync(path, '{"tally":1,"events":{"A":{"properties":{"required":["x"]}}}}');
  const observe = await openPlan(path);
  const block = await openPlan(path, { mode: "block-unplanned", watch: true, pollMs: 50 });
  const reloads: string[] = [];
  const errors: string[] = [];
  const watched = await openPlan(path, {
    watch: true,
    pollMs: 50,
    onReload: (d) => reloads.push(d),
    onError: (e) => errors.push(e.message),
  });
  try {
    assert.deepEqual(observe.check({ type: "track", event: "B" }).blocked, false);
    assert.equal(observe.check({ type: "track", event: "B" }).violations[0].category, "unplanned_event");
    assert.deepEqual(block.check({ type: "track", event: "B" }).blocked, true);
    const planned = block.check({ type: "track", event: "A", properties: {} });
    assert.deepEqual([planned.blocked, planned.violations[0].category], [false, "required_missing"]);
    assert.match(block.describe(), /^plan .*plan\.json: 1 event \(mode block-unplanned\)$/);
    await delay(60);
    writeFileSync(path, '{"tally":1,"events":{"A":{"properties":{"type":"nope"}}}}');
    for (let i = 0; i < 100 && errors.length === 0; i++) await delay(20);
    assert.match(errors[0], /the schema of event "A" is invalid/);
    assert.equal(watched.check({ type: "track", event: "A", properties: {} }).violations.length, 1);
    writeFileSync(path, '{"tally":1,"events":{"A":{},"B":{}}}');
    for (let i = 0; i < 100 && reloads.length === 0; i++) await delay(20);
    assert.match(reloads[0], /2 events \(mode observe\)/);
    assert.deepEqual(watched.check({ type: "track", event: "B" }).violations, []);
  } finally {
    observe.close();
    block.close();
    watched.close();
    rmSync(dir, { recursive: true, force: true });
  }
  await assert.rejects(openPlan(path), /Cannot read plan .*: no such file/);
});
