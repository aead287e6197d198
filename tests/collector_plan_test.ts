/**
 * `tally serve --plan`: the collector checks every message against a
 * tracking plan as well as the spec, over real HTTP. Each violation category
 * is caught and kept with its JSON path (and never makes a message bad: the
 * spec's status stands apart); planned messages carry no `violations`;
 * `observe` marks, `block-unplanned` also marks unplanned events blocked and
 * still answers 200; the filters (`violations`, `violation`, `blocked`) and
 * `stats().plan` follow, deletes included; the NDJSON line keeps the verdict
 * and `tally plan check` finds the same violations in it; the file is reloaded
 * when it changes, and a broken rewrite keeps the previous plan; `tally serve
 * --plan` and `--plan-mode` through `serve()`, their usage errors exit 2 on
 * one line.
 *
 * Runs on Deno, Bun and Node (npm build).
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { type Collector, serve, type StoredEvent } from "../serve/mod.ts";
import { startCollector } from "../serve/mod.ts";
import { canWrite, delay, withCollector } from "./fixtures/collector_helpers.ts";
import { run, scratch, show } from "./fixtures/cli_run.ts";

const PLAN = "examples/plan.json";

/** Posts `batch` to /v1/batch and returns the answer's status and body. */
async function post(collector: Collector, batch: unknown[], path = "/v1/batch"): Promise<[number, string]> {
  const body = path === "/v1/batch" ? { batch } : batch[0];
  const res = await fetch(`${collector.url}${path}`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify(body),
  });
  return [res.status, await res.text()];
}

async function getJson(collector: Collector, path: string): Promise<[number, Record<string, unknown>]> {
  const res = await fetch(`${collector.url}${path}`);
  return [res.status, await res.json()];
}

const byMessageId = (collector: Collector, id: string): StoredEvent => {
  const event = collector.events().find((e) => e.message.messageId === id);
  assert.ok(event, `no stored event with messageId ${id}`);
  return event;
};

const categories = (event: StoredEvent): string[] => (event.violations ?? []).map((v) => `${v.category} ${v.path}`);

/** A valid "Order Completed" (version 2 of examples/plan.json), with `props` merged into its properties. */
const order = (messageId: string, props: Record<string, unknown> = {}, extra: Record<string, unknown> = {}) => ({
  type: "track",
  userId: "u1",
  messageId,
  event: "Order Completed",
  properties: {
    order_id: "o-1",
    total: 10,
    currency: "EUR",
    products: [{ sku: "s1", price: 10, quantity: 1 }],
    ...props,
  },
  ...extra,
});

/** One message per violation category (and planned ones), with what each must get. */
const CASES: { message: Record<string, unknown>; expect: string[] }[] = [
  { message: order("ok-order"), expect: [] },
  {
    message: { type: "track", userId: "u1", messageId: "ok-signup", event: "Signed Up", properties: { plan: "Pro" } },
    expect: [],
  },
  { message: { type: "page", userId: "u1", messageId: "ok-page", name: "Home" }, expect: [] },
  { message: { type: "identify", userId: "u1", messageId: "ok-identify", traits: { email: "a@b.co" } }, expect: [] },
  {
    message: { type: "track", userId: "u1", messageId: "unplanned", event: "Order Shipped" },
    expect: ["unplanned_event $.event"],
  },
  {
    message: { type: "page", userId: "u1", messageId: "unplanned-page", name: "Checkout" },
    expect: ["unplanned_event $.name"],
  },
  {
    message: { ...order("required"), properties: { order_id: "o-1", total: 1, products: [] } },
    expect: ["required_missing $.properties.currency"],
  },
  { message: order("type", { total: "10" }), expect: ["type_mismatch $.properties.total"] },
  { message: order("additional", { gift: true }), expect: ["additional_property $.properties.gift"] },
  { message: order("enum", { currency: "JPY" }), expect: ["enum_mismatch $.properties.currency"] },
  { message: order("format", { completed_at: "yesterday" }), expect: ["format_mismatch $.properties.completed_at"] },
  { message: order("constraint", { total: -1 }), expect: ["constraint $.properties.total"] },
  {
    message: order("version", {}, { context: { protocols: { event_version: 3 } } }),
    expect: ["unknown_version $.context.protocols.event_version"],
  },
  {
    message: { type: "identify", userId: "u1", messageId: "traits", traits: { email: "a@b.co", created_at: 5 } },
    expect: ["type_mismatch $.traits.created_at"],
  },
];

test("every violation category is caught in the collector, with its path; planned messages carry none", async () => {
  await withCollector({ plan: PLAN }, async (collector) => {
    const [status, body] = await post(collector, CASES.map((c) => c.message));
    assert.equal(status, 200);
    assert.equal(body, '{"success":true}');
    for (const { message, expect } of CASES) {
      const event = byMessageId(collector, message.messageId as string);
      assert.deepEqual(categories(event), expect, String(message.messageId));
      if (expect.length === 0) assert.equal("violations" in event, false, "no violations key when it keeps the plan");
      assert.equal("blocked" in event, false, "observe blocks nothing");
      for (const v of event.violations ?? []) assert.equal(typeof v.message, "string");
    }
    // The plan is its own axis: a message off plan but within the spec stays good.
    assert.equal(byMessageId(collector, "unplanned").status, "good");
    assert.equal(byMessageId(collector, "type").status, "good");
    const stats = collector.stats();
    assert.equal(stats.good, CASES.length);
    const off = CASES.filter((c) => c.expect.length > 0).length;
    assert.deepEqual(stats.plan, {
      file: PLAN,
      mode: "observe",
      violations: off,
      blocked: 0,
      byCategory: {
        unplanned_event: 2,
        required_missing: 1,
        type_mismatch: 2,
        additional_property: 1,
        enum_mismatch: 1,
        format_mismatch: 1,
        constraint: 1,
        unknown_version: 1,
      },
    });
    assert.deepEqual((await getJson(collector, "/api/stats"))[1].plan, stats.plan);
  });
});

test("block-unplanned answers 200 and keeps unplanned events marked blocked; observe marks them only", async () => {
  const unplanned = { type: "track", userId: "u1", messageId: "x-1", event: "Order Shipped" };
  for (const planMode of ["observe", "block-unplanned"] as const) {
    await withCollector({ plan: PLAN, planMode }, async (collector) => {
      assert.deepEqual(await post(collector, [unplanned, order("x-2", { total: "1" })]), [200, '{"success":true}']);
      assert.deepEqual(await post(collector, [{ ...unplanned, messageId: "x-3" }], "/v1/track"), [
        200,
        '{"success":true}',
      ]);
      const blocking = planMode === "block-unplanned";
      for (const id of ["x-1", "x-3"]) assert.equal(byMessageId(collector, id).blocked, blocking ? true : undefined);
      // A planned event that breaks its schema is marked, not blocked, in either mode.
      assert.equal(byMessageId(collector, "x-2").blocked, undefined);
      assert.deepEqual(categories(byMessageId(collector, "x-2")), ["type_mismatch $.properties.total"]);
      assert.equal(collector.stats().total, 3, "blocked messages are kept");
      assert.equal(collector.stats().plan?.blocked, blocking ? 2 : 0);
      assert.equal(collector.stats().plan?.mode, planMode);
    });
  }
});

test("the violations, violation and blocked filters, their 400s, and the plan counters through deletes", async () => {
  await withCollector({ plan: PLAN, planMode: "block-unplanned" }, async (collector) => {
    await post(collector, CASES.map((c) => c.message));
    const ids = async (query: string): Promise<string[]> => {
      const [status, body] = await getJson(collector, `/api/events?${query}`);
      assert.equal(status, 200, query);
      return (body.events as StoredEvent[]).map((e) => e.message.messageId as string).sort();
    };
    const off = CASES.filter((c) => c.expect.length > 0).map((c) => c.message.messageId as string).sort();
    const on = CASES.filter((c) => c.expect.length === 0).map((c) => c.message.messageId as string).sort();
    assert.deepEqual(await ids("violations=true"), off);
    assert.deepEqual(await ids("violations=false"), on);
    assert.deepEqual(await ids("violation=type_mismatch"), ["traits", "type"]);
    assert.deepEqual(await ids("blocked=true"), ["unplanned", "unplanned-page"]);
    assert.deepEqual(await ids("blocked=true&type=page"), ["unplanned-page"]);
    assert.deepEqual(collector.events({ violation: "constraint" }).map((e) => e.message.messageId), ["constraint"]);
    // A page's next link keeps the plan filters.
    const [, page] = await getJson(collector, "/api/events?violations=true&limit=2");
    assert.match(String(page.next), /violations=true/);
    for (
      const query of [
        "violations=yes",
        "blocked=1",
        "violation=nope",
        "violation=Unplanned_Event",
        "violations=true&violations=false",
      ]
    ) {
      const [status, body] = await getJson(collector, `/api/events?${query}`);
      assert.equal(status, 400, query);
      assert.equal(typeof body.error, "string");
    }
    const del = await fetch(`${collector.url}/api/events?violation=unplanned_event`, { method: "DELETE" });
    assert.deepEqual(await del.json(), { deleted: 2 });
    const plan = collector.stats().plan!;
    assert.equal(plan.blocked, 0);
    assert.equal(plan.violations, off.length - 2);
    assert.equal(plan.byCategory.unplanned_event, undefined, "a category with no message left is gone");
    assert.equal(plan.byCategory.type_mismatch, 2);
    assert.equal((await fetch(`${collector.url}/api/events?blocked=maybe`, { method: "DELETE" })).status, 400);
    collector.clear();
    assert.deepEqual(collector.stats().plan, {
      file: PLAN,
      mode: "block-unplanned",
      violations: 0,
      blocked: 0,
      byCategory: {},
    });
  });
  // Without a plan: no plan counters, no event is off plan.
  await withCollector({}, async (collector) => {
    await post(collector, [CASES[4].message]);
    assert.equal("plan" in collector.stats(), false);
    assert.equal("violations" in collector.events()[0], false);
    assert.equal(collector.describePlan(), undefined);
    assert.deepEqual(collector.events({ violations: true }), []);
  });
});

test("a plan that cannot be used rejects startCollector with its one line; planMode is checked", async () => {
  await assert.rejects(startCollector({ plan: "tests/fixtures/plans/none.json" }), /^PlanError: Cannot read plan /);
  await assert.rejects(
    startCollector({ plan: PLAN, planMode: "block" as never }),
    /Cannot start the collector: planMode must be observe or block-unplanned, got "block"/,
  );
  await assert.rejects(startCollector({ planMode: "observe" }), /planMode is given without a plan/);
});

test(
  "the NDJSON line keeps the verdict, and tally plan check finds the same violations in it",
  { skip: !canWrite },
  async () => {
    const [dir, clean] = scratch();
    try {
      const out = join(dir, "events.ndjson");
      const messages = CASES.map((c) => c.message);
      await withCollector({ plan: PLAN, planMode: "block-unplanned", out }, async (collector) => {
        await post(collector, messages);
      });
      const lines = readFileSync(out, "utf8").trim().split("\n").map((l) => JSON.parse(l) as StoredEvent);
      assert.equal(lines.length, messages.length);
      for (const line of lines) {
        const expect = CASES.find((c) => c.message.messageId === line.message.messageId)!.expect;
        assert.deepEqual(categories(line), expect);
      }
      assert.equal(lines.find((l) => l.message.messageId === "unplanned")?.blocked, true);
      const r = await run(["plan", "check", "--plan", PLAN, "--json", out]);
      assert.equal(r.code, 1, show(r));
      const found = r.stdout.trim().split("\n").map((l) => JSON.parse(l)).filter((o) => o.summary !== true);
      const collected = lines.flatMap((l) => (l.violations ?? []).map((v) => `${v.category} ${v.path}`)).sort();
      assert.deepEqual(found.map((o) => `${o.category} ${o.path}`).sort(), collected);
    } finally {
      clean();
    }
  },
);

test("the plan file is reloaded when it changes; a broken rewrite is reported and the previous plan kept", {
  skip: !canWrite,
}, async () => {
  const [dir, clean] = scratch();
  try {
    const file = join(dir, "plan.json");
    const planWith = (...names: string[]) =>
      JSON.stringify({
        tally: 1,
        events: Object.fromEntries(names.map((n) => [n, { properties: { type: "object" } }])),
      });
    writeFileSync(file, planWith("Signed Up"));
    const lines: string[] = [];
    await withCollector({ plan: file, planPollMs: 50, planLog: (l) => void lines.push(l) }, async (collector) => {
      const waitFor = async (pattern: RegExp): Promise<void> => {
        const end = Date.now() + 8000;
        while (!lines.some((l) => pattern.test(l)) && Date.now() < end) await delay(20);
        assert.ok(lines.some((l) => pattern.test(l)), `no log line ${pattern} in ${JSON.stringify(lines)}`);
      };
      const track = (id: string) => ({ type: "track", userId: "u1", messageId: id, event: "Order Shipped" });
      await post(collector, [track("r-1")]);
      assert.deepEqual(categories(byMessageId(collector, "r-1")), ["unplanned_event $.event"]);
      assert.match(collector.describePlan()!, /: 1 event \(mode observe\)$/);

      await delay(20); // a modification time apart from the first write's
      writeFileSync(file, planWith("Signed Up", "Order Shipped"));
      await waitFor(/plan reloaded: plan .*plan\.json: 2 events \(mode observe\)/);
      await post(collector, [track("r-2")]);
      assert.equal(byMessageId(collector, "r-2").violations, undefined);
      assert.equal(categories(byMessageId(collector, "r-1")).length, 1, "stored events keep their verdict");

      writeFileSync(file, '{"tally":1,"events":{"Order Shipped":');
      await waitFor(/plan not reloaded: Cannot read plan .*; keeping the previous one$/);
      await post(collector, [track("r-3")]);
      assert.equal(byMessageId(collector, "r-3").violations, undefined, "the previous plan is still in effect");
      assert.match(collector.describePlan()!, /: 2 events/);
    });
  } finally {
    clean();
  }
});

test("tally serve --plan and --plan-mode: help, usage errors on one line (exit 2), banner and log lines", async () => {
  const help: string[] = [];
  assert.equal(await serve(["--help"], { out: (l) => void help.push(l), err: () => {} }), 0);
  assert.match(help.join("\n"), /--plan FILE[\s\S]*--plan-mode MODE/);
  const cases: [string[], RegExp][] = [
    [
      ["--plan", PLAN, "--plan-mode", "strict"],
      /^tally: --plan-mode must be observe or block-unplanned, got "strict"$/,
    ],
    [["--plan", PLAN, "--planMode=block"], /^tally: --planMode must be observe or block-unplanned, got "block"$/],
    [["--plan-mode", "observe"], /^tally: --plan-mode needs --plan FILE$/],
    [
      ["--plan", "tests/fixtures/plans/none.json"],
      /^tally: Cannot read plan tests\/fixtures\/plans\/none\.json.*\(--plan\)$/,
    ],
    [["--plan", "tests/fixtures/plans/lint_problems.json"], /^tally: Cannot .*\(--plan\)$/],
  ];
  for (const [args, message] of cases) {
    const err: string[] = [];
    const out: string[] = [];
    const code = await serve([...args, "--port", "0", "--no-out"], {
      out: (l) => void out.push(l),
      err: (l) => void err.push(l),
    });
    assert.equal(code, 2, `${args.join(" ")}: ${err.join("\n")} ${out.join("\n")}`);
    assert.equal(err.length, 1, err.join("\n"));
    assert.match(err[0], message);
  }

  const out: string[] = [];
  const stop = new AbortController();
  const running = serve(["--port", "0", "--no-out", "--plan", PLAN, "--plan-mode", "block-unplanned"], {
    out: (l) => void out.push(l),
    err: (l) => void out.push(l),
    signal: stop.signal,
  });
  try {
    const end = Date.now() + 5000;
    while (!out.some((line) => line.startsWith("Press Ctrl-C")) && Date.now() < end) await delay(10);
    assert.ok(
      out.includes(
        `Checking messages against the plan ${PLAN}: 3 events, 2 pages, 1 screen, identify traits, group traits, ` +
          "a common schema (mode block-unplanned)",
      ),
      out.join("\n"),
    );
    const url = /listening on (http:\/\/\S+)/.exec(out[0])?.[1];
    assert.ok(url, out.join("\n"));
    const fake = { url } as Collector;
    assert.deepEqual(
      await post(fake, [
        { type: "track", userId: "u1", messageId: "s-1", event: "Order Shipped" },
        order("s-2", { total: "1" }),
      ]),
      [200, '{"success":true}'],
    );
    const logged = async (pattern: RegExp): Promise<void> => {
      const until = Date.now() + 3000;
      while (!out.some((l) => pattern.test(l)) && Date.now() < until) await delay(10);
      assert.ok(out.some((l) => pattern.test(l)), `no ${pattern} in\n${out.join("\n")}`);
    };
    await logged(/POST \/v1\/batch 200 2 messages \(2 off plan, 1 blocked\)/);
    await logged(
      /^ {2}blocked #1 track "Order Shipped" user u1: unplanned_event at \$\.event: event "Order Shipped" is not in the plan$/,
    );
    await logged(/^ {2}plan #2 track "Order Completed" user u1: type_mismatch at \$\.properties\.total: /);
  } finally {
    stop.abort();
    assert.equal(await running, 0);
  }
});
