/**
 * The `tally` CLI, run as a child process against a real receiver on
 * 127.0.0.1 (tests/fixtures/cli_run.ts says how it is run: the compiled
 * binary, the npm build's Node bin, or cli.ts under Deno or Bun). The CLI
 * under hostile input is tests/cli_hostile_test.ts.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { existsSync, readFileSync, realpathSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { gzipSync } from "node:zlib";
import { type FlagSpec, parseArgs } from "../cli/args.ts";
import { CALL_TYPES, callFlags } from "../cli/commands.ts";
import { SEND_FLAGS } from "../cli/send.ts";
import { SERVE_FLAGS } from "../serve/serve.ts";
import { VERSION } from "../lib/version.ts";
import {
  AUTH,
  baseEnv,
  FIXTURES,
  KEY,
  ROOT,
  type Run,
  run,
  scratch,
  SHELL_LIMIT_S,
  show,
  stderrLines,
  tally,
  withReceiver,
} from "./fixtures/cli_run.ts";
import { startReceiver } from "./receiver.ts";

// ---- version and help

test("tally --version prints the library's version", async () => {
  const r = await run(["--version"]);
  assert.equal(r.code, 0, show(r));
  assert.equal(r.stdout, `tally ${VERSION}\n`);
});

test("every command answers --help with its usage on stdout and exit code 0", async () => {
  for (const command of ["track", "identify", "page", "screen", "group", "alias", "send"]) {
    const r = await run([command, "--help"]);
    assert.equal(r.code, 0, show(r));
    assert.match(r.stdout, new RegExp(`Usage: tally ${command}`));
    assert.match(r.stdout, /--write-key/);
    assert.equal(r.stderr, "");
  }
  const top = await run(["--help"]);
  assert.equal(top.code, 0, show(top));
  for (const command of ["track", "identify", "send", "serve", "--type"]) assert.ok(top.stdout.includes(command));
});

// ---- each call's request body

test("tally track sends every flag's field in one batch and prints the messageId", async () => {
  await withReceiver(async (url, receiver) => {
    const r = await run([
      "track",
      "--write-key",
      KEY,
      "--host",
      url,
      "--user-id",
      "019mr8mf4r",
      "--event",
      "Deploy Finished",
      "--properties",
      '{"service":"api","ok":true}',
      "--context",
      '{"ip":"8.8.8.8"}',
      "--integrations",
      '{"All":false,"Mixpanel":true}',
      "--timestamp",
      "2012-10-17T20:58:57.911+02:00",
      "--message-id",
      "deploy-1",
    ]);
    assert.equal(r.code, 0, show(r));
    assert.equal(r.stdout, "deploy-1\n");
    assert.equal(receiver.requests.length, 1);
    const request = receiver.requests[0];
    assert.equal(request.path, "/v1/batch");
    assert.equal(request.headers.authorization, AUTH);
    assert.equal(request.body.writeKey, KEY);
    assert.equal(request.body.batch?.length, 1);
    const m = request.body.batch![0];
    assert.deepEqual(
      { ...m, context: undefined },
      {
        type: "track",
        messageId: "deploy-1",
        timestamp: "2012-10-17T18:58:57.911Z",
        userId: "019mr8mf4r",
        event: "Deploy Finished",
        properties: { service: "api", ok: true },
        integrations: { All: false, Mixpanel: true },
        context: undefined,
      },
    );
    assert.deepEqual(m.context, { ip: "8.8.8.8", library: { name: "@tally/analytics", version: VERSION } });
  });
});

const CALLS: { args: string[]; expect: Record<string, unknown> }[] = [
  {
    args: ["identify", "--user-id", "019mr8mf4r", "--traits", '{"email":"john@example.com","friends":30}'],
    expect: { type: "identify", userId: "019mr8mf4r", traits: { email: "john@example.com", friends: 30 } },
  },
  {
    args: ["page", "--user-id", "user_id", "--category", "Docs", "--name", "Python", "--properties", '{"url":"u"}'],
    expect: { type: "page", userId: "user_id", category: "Docs", name: "Python", properties: { url: "u" } },
  },
  {
    args: ["screen", "--anonymous-id", "a1", "--category", "Settings", "--name", "Brightness"],
    expect: { type: "screen", anonymousId: "a1", category: "Settings", name: "Brightness" },
  },
  {
    args: ["group", "--user-id", "user_id", "--group-id", "group_id", "--traits", '{"name":"Initech"}'],
    expect: { type: "group", userId: "user_id", groupId: "group_id", traits: { name: "Initech" } },
  },
  {
    args: ["alias", "--previous-id", "92734232-2342423423-973945", "--user-id", "1234"],
    expect: { type: "alias", previousId: "92734232-2342423423-973945", userId: "1234" },
  },
];

for (const { args, expect } of CALLS) {
  test(`tally ${args[0]} sends ${/^[aeiou]/.test(args[0]) ? "an" : "a"} ${args[0]} message with the fields of its flags`, async () => {
    await withReceiver(async (url, receiver) => {
      const r = await run([...args, "--host", url], { env: { TALLY_WRITE_KEY: KEY } });
      assert.equal(r.code, 0, show(r));
      const [m] = receiver.messages();
      assert.equal(receiver.messages().length, 1);
      for (const [field, value] of Object.entries(expect)) assert.deepEqual(m[field], value, field);
      assert.equal(r.stdout, `${m.messageId}\n`);
      assert.equal(receiver.requests[0].headers.authorization, AUTH);
    });
  });
}

// ---- Segment's library-e2e-tester convention

const E2E: Record<string, string[]> = {
  track: ["--userId", "u1", "--event", "E2E Event", "--properties", '{"a":1}'],
  identify: ["--anonymousId", "anon-1", "--traits", '{"plan":"Free"}'],
  page: ["--userId", "u1", "--name", "Home", "--properties", '{"path":"/"}'],
  screen: ["--userId", "u1", "--name", "Settings"],
  group: ["--userId", "u1", "--groupId", "g1", "--traits", '{"name":"Initech"}'],
  alias: ["--previousId", "old-1", "--userId", "u1"],
};

test("the e2e-tester convention (--type T --writeKey K camelCase flags) delivers all six types and exits 0", async () => {
  await withReceiver(async (url, receiver) => {
    for (const [type, args] of Object.entries(E2E)) {
      const r = await run([
        "--type",
        type,
        "--writeKey",
        KEY,
        "--host",
        url,
        ...args,
        "--context",
        '{"e2e":true}',
        "--integrations",
        '{"All":true}',
      ]);
      assert.equal(r.code, 0, `${type}: ${show(r)}`);
    }
    const messages = receiver.messages();
    assert.deepEqual(messages.map((m) => m.type), Object.keys(E2E));
    assert.equal(messages[0].event, "E2E Event");
    assert.equal(messages[1].anonymousId, "anon-1");
    assert.equal(messages[4].groupId, "g1");
    assert.equal(messages[5].previousId, "old-1");
    for (const m of messages) {
      assert.equal((m.context as Record<string, unknown>).e2e, true);
      assert.deepEqual(m.integrations, { All: true });
    }
    for (const request of receiver.requests) assert.equal(request.headers.authorization, AUTH);
  });
});

test("the e2e-tester convention exits 1 when the message is not delivered", async () => {
  await withReceiver(async (url, receiver) => {
    receiver.setDefault({ status: 400, body: '{"error":"bad"}' });
    const r = await run(["--type", "track", "--writeKey", KEY, "--host", url, ...E2E.track]);
    assert.equal(r.code, 1, show(r));
  });
});

// ---- write key, host and gzip

test("the write key comes from --write-key, else TALLY_WRITE_KEY, else SEGMENT_WRITE_KEY; the host from TALLY_HOST", async () => {
  await withReceiver(async (url, receiver) => {
    const track = ["track", "--user-id", "u", "--event", "E"];
    const auth = (key: string) => `Basic ${btoa(`${key}:`)}`;
    let r = await run(track, {
      env: { TALLY_HOST: url, TALLY_WRITE_KEY: "tally-key", SEGMENT_WRITE_KEY: "segment-key" },
    });
    assert.equal(r.code, 0, show(r));
    r = await run(track, { env: { TALLY_HOST: url, SEGMENT_WRITE_KEY: "segment-key" } });
    assert.equal(r.code, 0, show(r));
    r = await run([...track, "--write-key", "flag-key"], { env: { TALLY_HOST: url, TALLY_WRITE_KEY: "tally-key" } });
    assert.equal(r.code, 0, show(r));
    assert.deepEqual(
      receiver.requests.map((q) => q.headers.authorization),
      [auth("tally-key"), auth("segment-key"), auth("flag-key")],
    );
  });
});

test("--gzip sends gzip-encoded request bodies that decode to the same message", async () => {
  await withReceiver(async (url, receiver) => {
    const r = await run(["track", "--write-key", KEY, "--host", url, "--user-id", "u", "--event", "Zipped", "--gzip"]);
    assert.equal(r.code, 0, show(r));
    assert.equal(receiver.requests[0].headers["content-encoding"], "gzip");
    assert.equal(receiver.messages()[0].event, "Zipped");
  });
});

// ---- dry run and the write key

test("--dry-run prints the exact request body with the write key replaced and sends nothing", async () => {
  await withReceiver(async (url, receiver) => {
    const r = await run([
      "track",
      "--write-key",
      KEY,
      "--host",
      url,
      "--user-id",
      "u",
      "--event",
      "Dry",
      "--message-id",
      "dry-1",
      "--gzip",
      "--debug",
      "--dry-run",
    ]);
    assert.equal(r.code, 0, show(r));
    const body = JSON.parse(r.stdout);
    assert.deepEqual(Object.keys(body), ["batch", "sentAt", "writeKey"]);
    assert.equal(body.writeKey, "[write key]");
    assert.equal(body.batch[0].messageId, "dry-1");
    assert.equal(body.batch[0].event, "Dry");
    assert.equal(receiver.requests.length, 0);
    assert.ok(!r.stdout.includes(KEY) && !r.stderr.includes(KEY), "the write key is never printed");
  });
});

test("--dry-run needs no write key", async () => {
  const r = await run(["identify", "--user-id", "u", "--dry-run"]);
  assert.equal(r.code, 0, show(r));
  assert.equal(JSON.parse(r.stdout).batch[0].type, "identify");
});

test("the write key is never printed, not even by --debug on a failure", async () => {
  await withReceiver(async (url, receiver) => {
    receiver.setDefault({ status: 500, body: `{"error":"bad key ${KEY}"}` });
    const r = await run([
      "track",
      "--write-key",
      KEY,
      "--host",
      url,
      "--user-id",
      "u",
      "--event",
      "E",
      "--debug",
      "--max-retries",
      "1",
      "--retry-delay",
      "0.01",
      "--json",
    ]);
    assert.equal(r.code, 1, show(r));
    assert.match(r.stderr, /debug: /);
    assert.ok(!r.stdout.includes(KEY) && !r.stderr.includes(KEY), show(r));
  });
});

// ---- exit codes

test("a message the server refuses with 400 exits 1 after one request, with one line on stderr", async () => {
  await withReceiver(async (url, receiver) => {
    receiver.setDefault({ status: 400, body: '{"error":"invalid"}' });
    const r = await run(["track", "--write-key", KEY, "--host", url, "--user-id", "u", "--event", "E"]);
    assert.equal(r.code, 1, show(r));
    assert.equal(receiver.requests.length, 1);
    assert.equal(r.stdout, "");
    const lines = stderrLines(r);
    assert.equal(lines.length, 1, show(r));
    assert.match(lines[0], /^tally: .*400/);
  });
});

test("a server answering 500 until the retries run out exits 1 after 1 + --max-retries requests", async () => {
  await withReceiver(async (url, receiver) => {
    receiver.setDefault({ status: 500 });
    const r = await run([
      "track",
      "--write-key",
      KEY,
      "--host",
      url,
      "--user-id",
      "u",
      "--event",
      "E",
      "--max-retries",
      "2",
      "--retry-delay",
      "0.01",
      "--json",
    ]);
    assert.equal(r.code, 1, show(r));
    assert.equal(receiver.requests.length, 3);
    const result = JSON.parse(r.stdout);
    assert.equal(result.delivered, false);
    assert.equal(result.reason, "http_status");
    assert.equal(result.status, 500);
  });
});

test("a 500 followed by a 200 is retried and exits 0", async () => {
  await withReceiver(async (url, receiver) => {
    receiver.reply({ status: 500 });
    const r = await run([
      "track",
      "--write-key",
      KEY,
      "--host",
      url,
      "--user-id",
      "u",
      "--event",
      "E",
      "--retry-delay",
      "0.01",
    ]);
    assert.equal(r.code, 0, show(r));
    assert.equal(receiver.requests.length, 2);
  });
});

test("usage errors exit 2 with one line on stderr naming the flag, and send nothing", async () => {
  await withReceiver(async (url, receiver) => {
    const base = ["--write-key", KEY, "--host", url];
    const cases: [string[], RegExp][] = [
      [["track", ...base, "--user-id", "u", "--event", "E", "--properties", "{nope"], /--properties is not valid JSON/],
      [
        ["track", ...base, "--user-id", "u", "--event", "E", "--properties", "[1,2]"],
        /--properties must be a JSON object/,
      ],
      [["identify", ...base, "--user-id", "u", "--traits", '"x"'], /--traits must be a JSON object/],
      [["track", ...base, "--user-id", "u", "--event", "E", "--context", "null"], /--context must be a JSON object/],
      [["track", ...base, "--event", "E"], /--user-id or --anonymous-id is required/],
      [["track", ...base, "--user-id", "u"], /--event/],
      [
        ["track", ...base, "--user-id", "u", "--event", "E", "--timestamp", "2012-10-17T18:58:57"],
        /--timestamp.*time zone/,
      ],
      [["group", ...base, "--user-id", "u"], /--group-id is required/],
      [["track", ...base, "--user-id", "u", "--event", "E", "--traits", "{}"], /unknown flag --traits/],
      [["track", ...base, "--user-id"], /--user-id needs a value/],
      [["track", ...base, "--user-id", "u", "--event", "E", "--timeout", "soon"], /--timeout must be a number/],
      [["track", ...base, "--user-id", "u", "--event", "E", "--timeout", "-1"], /--timeout/],
      [["track", "--host", url, "--user-id", "u", "--event", "E"], /no write key/],
      [["track", ...base.slice(0, 2), "--host", "ftp://x", "--user-id", "u", "--event", "E"], /--host/],
      [["launch", "--now"], /unknown command "launch"/],
      [["--type", "purchase", "--writeKey", KEY], /--type must be one of/],
      [["send", ...base, "tests/fixtures/does-not-exist.ndjson"], /cannot read .*does-not-exist.ndjson: no such file/],
      [["send", ...base, "--batch-size", "0", `${FIXTURES}/cli_good.ndjson`], /--batch-size/],
    ];
    for (const [args, pattern] of cases) {
      const r = await run(args);
      assert.equal(r.code, 2, `${args.join(" ")}: ${show(r)}`);
      const lines = stderrLines(r);
      assert.equal(lines.length, 1, `${args.join(" ")}: ${show(r)}`);
      assert.match(lines[0], /^tally: /);
      assert.match(lines[0], pattern, args.join(" "));
      assert.doesNotMatch(r.stderr, /\n\s+at /, "no stack trace");
    }
    assert.equal(receiver.requests.length, 0);
  });
});

// ---- send

test("tally send delivers every message of an NDJSON file and prints a JSON summary with --json", async () => {
  await withReceiver(async (url, receiver) => {
    const r = await run(["send", "--write-key", KEY, "--host", url, "--json", `${FIXTURES}/cli_good.ndjson`]);
    assert.equal(r.code, 0, show(r));
    const summary = JSON.parse(r.stdout);
    assert.equal(summary.sent, 6);
    assert.equal(summary.failed, 0);
    assert.equal(summary.invalid, 0);
    assert.equal(summary.read, 6);
    assert.ok(summary.bytes > 0 && summary.bytesRead > 0 && summary.seconds >= 0);
    const messages = receiver.messages();
    assert.deepEqual(messages.map((m) => m.type), ["identify", "track", "page", "screen", "group", "alias"]);
    // The seed's server-logs case: a historical track keeps its timestamp.
    assert.equal(messages[1].timestamp, "2012-10-17T18:58:57.911Z");
    assert.equal(messages[1].messageId, "import-1");
    assert.deepEqual(messages[1].properties, { color: "Blue", revenue: 17.9 });
    assert.equal(messages[2].timestamp, "2012-10-17T17:00:00.000Z");
    assert.deepEqual(messages[5].integrations, { All: false, Mixpanel: true });
    assert.equal((messages[5].context as Record<string, unknown>).ip, "8.8.8.8");
    assert.equal(r.stderr, "", "no progress bar and nothing else on stderr when it is piped");
  });
});

test("tally send without --json prints a one-line summary on stderr and nothing on stdout", async () => {
  await withReceiver(async (url) => {
    const r = await run(["send", "--write-key", KEY, "--host", url, `${FIXTURES}/cli_good.ndjson`]);
    assert.equal(r.code, 0, show(r));
    assert.equal(r.stdout, "");
    const lines = stderrLines(r);
    assert.equal(lines.length, 1, show(r));
    assert.match(lines[0], /^tally: sent 6 of 6 messages/);
  });
});

test("tally send reports each bad line as file:line and why, sends the good ones, and exits 2", async () => {
  await withReceiver(async (url, receiver) => {
    const file = `${FIXTURES}/cli_mixed.ndjson`;
    const r = await run(["send", "--write-key", KEY, "--host", url, "--json", file]);
    assert.equal(r.code, 2, show(r));
    const lines = stderrLines(r);
    assert.deepEqual(
      lines.map((l) => /^tally: (.*?:\d+): /.exec(l)?.[1]),
      [2, 3, 6, 7, 8, 9, 10].map((n) => `${file}:${n}`),
      show(r),
    );
    assert.match(lines[0], /not valid JSON/);
    assert.match(lines[1], /event/);
    assert.match(lines[2], /timestamp/);
    assert.match(lines[3], /type must be one of/);
    assert.match(lines[4], /type is required/);
    assert.match(lines[5], /expected a JSON object/);
    assert.match(lines[6], /unknown field "event" for an identify/);
    assert.deepEqual(receiver.messages().map((m) => m.event), ["First", "Third", "Fourth"]);
    const summary = JSON.parse(r.stdout);
    assert.deepEqual([summary.sent, summary.invalid, summary.failed, summary.read], [3, 7, 0, 10]);
  });
});

test("tally send --strict stops at the first bad line and exits 2", async () => {
  await withReceiver(async (url, receiver) => {
    const file = `${FIXTURES}/cli_mixed.ndjson`;
    const r = await run(["send", "--write-key", KEY, "--host", url, "--strict", "--json", file]);
    assert.equal(r.code, 2, show(r));
    const lines = stderrLines(r);
    assert.equal(lines.length, 1, show(r));
    assert.match(lines[0], new RegExp(`^tally: ${file}:2: `));
    const summary = JSON.parse(r.stdout);
    assert.equal(summary.stopped, true);
    assert.equal(summary.invalid, 1);
    assert.ok(receiver.messages().every((m) => m.event === "First"), "nothing after the bad line is sent");
  });
});

test("tally send reads a JSON array of messages, with line numbers for bad elements", async () => {
  await withReceiver(async (url, receiver) => {
    let r = await run(["send", "--write-key", KEY, "--host", url, "--json", `${FIXTURES}/cli_array.json`]);
    assert.equal(r.code, 0, show(r));
    assert.deepEqual(receiver.messages().map((m) => m.type), ["track", "identify", "alias"]);
    assert.deepEqual(receiver.messages()[1].traits, { tags: ["a", "b,c", "]"] });

    const file = `${FIXTURES}/cli_array_bad.json`;
    r = await run(["send", "--write-key", KEY, "--host", url, "--json", file]);
    assert.equal(r.code, 2, show(r));
    const lines = stderrLines(r);
    assert.deepEqual(lines.map((l) => /^tally: (.*?:\d+): /.exec(l)?.[1]), [`${file}:3`, `${file}:4`], show(r));
    assert.equal(JSON.parse(r.stdout).sent, 2);
  });
});

test("tally send reads stdin when given no file or -, beside files, naming stdin in errors", async () => {
  await withReceiver(async (url, receiver) => {
    const input = '{"type":"track","userId":"s","event":"From Stdin"}\n{"type":"track","userId":"s"}\n';
    let r = await run(["send", "--write-key", KEY, "--host", url, "--json"], { stdin: input });
    assert.equal(r.code, 2, show(r));
    assert.match(r.stderr, /^tally: stdin:2: /m);
    assert.equal(JSON.parse(r.stdout).sent, 1);

    r = await run(["send", "--write-key", KEY, "--host", url, "--json", `${FIXTURES}/cli_good.ndjson`, "-"], {
      stdin: '[{"type":"alias","previousId":"a","userId":"b"}]',
    });
    assert.equal(r.code, 0, show(r));
    assert.equal(JSON.parse(r.stdout).sent, 7);
    assert.equal(receiver.messages().at(-1)?.previousId, "a");
  });
});

test("tally send exits 1 with the failed count when the server answers 500 until retries run out", async () => {
  await withReceiver(async (url, receiver) => {
    receiver.setDefault({ status: 500 });
    const r = await run([
      "send",
      "--write-key",
      KEY,
      "--host",
      url,
      "--json",
      "--max-retries",
      "1",
      "--retry-delay",
      "0.01",
      "--batch-size",
      "2",
      `${FIXTURES}/cli_good.ndjson`,
    ]);
    assert.equal(r.code, 1, show(r));
    const summary = JSON.parse(r.stdout);
    assert.deepEqual([summary.sent, summary.failed, summary.invalid], [0, 6, 0]);
    assert.equal(receiver.requests.length, 6, "3 batches, each tried twice");
    assert.match(r.stderr, /^tally: Cannot deliver 2 messages after 1 retry: the server answered 500/m);
  });
});

test("tally send --dry-run validates and prints the request bodies, and sends nothing", async () => {
  await withReceiver(async (url, receiver) => {
    const r = await run(["send", "--write-key", KEY, "--host", url, "--dry-run", `${FIXTURES}/cli_mixed.ndjson`]);
    assert.equal(r.code, 2, show(r));
    const bodies = r.stdout.trim().split("\n").map((l) => JSON.parse(l));
    assert.deepEqual(bodies.flatMap((b) => b.batch.map((m: { event: string }) => m.event)), [
      "First",
      "Third",
      "Fourth",
    ]);
    assert.ok(bodies.every((b) => b.writeKey === "[write key]"));
    assert.equal(receiver.requests.length, 0);
    assert.match(stderrLines(r).at(-1)!, /^tally: dry run: 3 valid messages .*nothing sent; 7 invalid/);
  });
});

test("tally send streams 1M lines from stdin with flat memory and delivers every line", async () => {
  const LINES = 1_000_000;
  function* lines(): Iterable<string> {
    for (let block = 0; block < LINES; block += 10_000) {
      let text = "";
      for (let i = block; i < block + 10_000; i++) {
        text +=
          `{"type":"track","userId":"user-${i % 5000}","event":"Order Completed","properties":{"orderId":"o-${i}",` +
          `"revenue":${(i % 1000) / 10}},"timestamp":"2024-01-01T00:00:00.000Z"}\n`;
      }
      yield text;
    }
  }
  const receiver = await startReceiver({ record: false });
  try {
    const r = await run(["send", "--write-key", KEY, "--host", receiver.url, "--json"], {
      stdin: lines,
      memory: true,
      killAfterMs: 50_000,
    });
    assert.equal(r.code, 0, show(r));
    const summary = JSON.parse(r.stdout);
    assert.equal(summary.sent, LINES);
    assert.equal(summary.invalid, 0);
    assert.equal(summary.failed, 0);
    if (r.peakMb !== undefined) {
      // 1M lines are 140 MB of input and 250 MB of request bodies; the client holds a bounded queue of them.
      assert.ok(r.peakMb < 300, `peak RSS ${r.peakMb.toFixed(0)} MB`);
    }
    console.log(
      `# 1M lines: ${(LINES / summary.seconds / 1000).toFixed(0)}k lines/s, peak RSS ${r.peakMb?.toFixed(0) ?? "?"} MB`,
    );
  } finally {
    await receiver.stop();
  }
});

/** A `tally serve` child process, started and listening. */
interface Serving {
  url: string;
  /** Everything it printed so far, stdout and stderr. */
  output(): string;
  /** Its exit code, or the signal that ended it. */
  exited: Promise<number | string | null>;
  /** Sends SIGTERM and waits for the exit. */
  stop(): Promise<number | string | null>;
}

/** Starts `tally serve ARGS` and resolves once its output matches `ready` (by default, its last startup line). */
async function startServe(
  args: string[],
  options: { cwd?: string; shell?: string; ready?: RegExp } = {},
): Promise<Serving> {
  const [bin, pre] = tally();
  const command = [bin, ...pre, "serve", ...args];
  const [cmd, argv] = options.shell !== undefined
    ? ["bash", ["-c", options.shell, "tally", "timeout", "-s", "KILL", String(SHELL_LIMIT_S), ...command]]
    : [command[0], command.slice(1)];
  const server = spawn(cmd, argv, { cwd: options.cwd ?? ROOT, env: baseEnv(), stdio: ["ignore", "pipe", "pipe"] });
  const exited = new Promise<number | string | null>((resolve) =>
    server.on("close", (code, signal) => resolve(code ?? signal))
  );
  let output = "";
  const ready = options.ready ?? /Press Ctrl-C to stop/;
  const url = await new Promise<string>((resolve, reject) => {
    const fail = (why: string) => {
      clearTimeout(timer);
      server.kill("SIGKILL");
      reject(new Error(`tally serve ${why}: ${output}`));
    };
    const timer = setTimeout(() => fail("did not start in 10 s"), 10_000);
    const check = () => {
      const m = /listening on (http:\/\/\S+)/.exec(output);
      if (m && ready.test(output)) {
        clearTimeout(timer);
        resolve(m[1]);
      }
    };
    server.stdout!.on("data", (chunk) => {
      output += chunk;
      check();
    });
    server.stderr!.on("data", (chunk) => void (output += chunk));
    void exited.then((code) => fail(`exited (${code}) before it was ready`));
  });
  return {
    url,
    output: () => output,
    exited,
    stop() {
      server.kill("SIGTERM");
      return exited;
    },
  };
}

test("tally send delivers into tally serve, which counts every message as good", async () => {
  const server = await startServe(["--port", "0", "--no-out", "--quiet"]);
  try {
    const r = await run([
      "send",
      "--write-key",
      KEY,
      "--host",
      server.url,
      "--json",
      "--gzip",
      `${FIXTURES}/cli_good.ndjson`,
    ]);
    assert.equal(r.code, 0, show(r));
    assert.equal(JSON.parse(r.stdout).sent, 6);
    const stats = await (await fetch(`${server.url}/api/stats`)).json();
    assert.equal(stats.total, 6);
    assert.equal(stats.good, 6, JSON.stringify(stats));
  } finally {
    const code = await server.stop();
    // Deno's node:child_process reports the signal it sent even when the child then exits 0 (Bun's reports 0).
    if (!("Deno" in globalThis)) assert.equal(code, 0, "tally serve stops cleanly on SIGTERM");
  }
});

// ---- a reader that goes away: closed pipes and full disks

/** Well under SHELL_LIMIT_S, a runtime's start included: what "promptly" means here. */
const PROMPT_MS = 8000;

/** An NDJSON file of `lines` track messages in `dir`; every `invalidEvery`-th one (1: all) lacks its event. */
function ndjsonFile(dir: string, lines: number, invalidEvery = 0): string {
  let text = "";
  for (let i = 0; i < lines; i++) {
    const event = invalidEvery > 0 && i % invalidEvery === invalidEvery - 1 ? "" : `,"event":"Piped ${i}"`;
    text += `{"type":"track","userId":"u-${i}"${event},"properties":{"n":${i}}}\n`;
  }
  const path = join(dir, `messages-${lines}-${invalidEvery}.ndjson`);
  writeFileSync(path, text);
  return path;
}

/** Exited by itself, well before the limit, and printed no stack trace or runtime complaint where we can see. */
function assertPromptAndQuiet(r: Run, what: string): void {
  assert.notEqual(r.code, 137, `${what}: still running after ${SHELL_LIMIT_S} s, killed. ${show(r)}`);
  assert.ok(r.ms < PROMPT_MS, `${what}: took ${Math.round(r.ms)} ms. ${show(r)}`);
  for (const text of [r.stdout, r.stderr]) {
    assert.doesNotMatch(text, /^\s+at |Top-level await|unsettled|EPIPE|ENOSPC|Uncaught|panic/m, `${what}: ${show(r)}`);
    assert.ok(!text.includes(KEY), `${what}: the write key is never printed`);
  }
}

test("tally track whose stdout reader has gone (| true) still delivers, then exits 0 at once and quietly", async () => {
  await withReceiver(async (url, receiver) => {
    const args = ["track", "--write-key", KEY, "--host", url, "--user-id", "u", "--event", "Piped"];
    const r = await run(args, { shell: `"$@" | true; exit "\${PIPESTATUS[0]}"` });
    assertPromptAndQuiet(r, "track | true");
    assert.equal(r.code, 0, show(r));
    assert.equal(r.stderr, "");
    assert.deepEqual(receiver.messages().map((m) => m.event), ["Piped"]);

    const dry = await run(["track", "--dry-run", "--user-id", "u", "--event", "E"], {
      shell: `"$@" | true; exit "\${PIPESTATUS[0]}"`,
    });
    assertPromptAndQuiet(dry, "track --dry-run | true");
    assert.equal(dry.code, 0, show(dry));
    assert.equal(dry.stderr, "");
  });
});

test("tally send --dry-run into head -n 1 stops reading once head has gone and exits 141, quietly", async () => {
  const [dir, cleanup] = scratch();
  try {
    const file = ndjsonFile(dir, 50_000);
    const r = await run(["send", "--dry-run", file], { shell: `"$@" | head -n 1; exit "\${PIPESTATUS[0]}"` });
    assertPromptAndQuiet(r, "send --dry-run | head -n 1");
    assert.equal(r.code, 141, show(r));
    assert.equal(r.stdout.split("\n").filter((l) => l !== "").length, 1, show(r));
    assert.equal(JSON.parse(r.stdout).batch.length, 100);
    const lines = stderrLines(r);
    assert.equal(lines.length, 1, show(r));
    assert.match(lines[0], /^tally: dry run: .* nothing sent; stopped early in /);
  } finally {
    cleanup();
  }
});

test("tally send 2>&1 | head -2 exits promptly once head has gone, and shows no stack trace in what head read", async () => {
  const [dir, cleanup] = scratch();
  try {
    const file = ndjsonFile(dir, 30_000, 1);
    const r = await run(["send", "--dry-run", file], { shell: `"$@" 2>&1 | head -2; exit "\${PIPESTATUS[0]}"` });
    assertPromptAndQuiet(r, "send 2>&1 | head -2");
    assert.equal(r.code, 141, show(r));
    const lines = r.stdout.split("\n").filter((l) => l !== "");
    assert.equal(lines.length, 2, show(r));
    for (const line of lines) assert.match(line, /^tally: .*messages-30000-1\.ndjson:\d+: /);
  } finally {
    cleanup();
  }
});

test("tally send stops waiting for a slow stdin once its reader has gone", async () => {
  // stdin stays open for 12 s after one message; the dry run's body finds stdout closed half a second in.
  const line = '{"type":"track","userId":"u","event":"Slow"}';
  const r = await run(["send", "--dry-run"], {
    shell: `"$@" < <(echo '${line}'; sleep 12 2>/dev/null) | true; exit "\${PIPESTATUS[0]}"`,
  });
  assertPromptAndQuiet(r, "slow stdin | send | true");
  assert.equal(r.code, 141, show(r));
});

test("a closed stderr stops tally send, and the delivery it started is bounded by --timeout, not by the retries", async () => {
  const [dir, cleanup] = scratch();
  await withReceiver(async (url, receiver) => {
    try {
      // Every request hangs: without the bound, 1 + 10 retries of 2 s each outlast the shell's limit.
      receiver.setDefault({ hang: true });
      const file = ndjsonFile(dir, 30_000, 2);
      const r = await run(
        ["send", "--write-key", KEY, "--host", url, "--timeout", "2", "--max-retries", "10", "--batch-size", "1", file],
        { shell: `"$@" 2>&1 >/dev/null | head -n 1 >/dev/null; exit "\${PIPESTATUS[0]}"` },
      );
      assertPromptAndQuiet(r, "send 2>&1 >/dev/null | head -n 1");
      assert.equal(r.code, 141, show(r));
      assert.ok(receiver.requests.length >= 1, "delivery had started");
    } finally {
      cleanup();
    }
  });
});

test("output to /dev/full is one error line on stderr and exit code 1, promptly, for a call and for send", async () => {
  const [dir, cleanup] = scratch();
  try {
    const full = `"$@" >/dev/full`;
    const r = await run(["track", "--dry-run", "--user-id", "u", "--event", "E"], { shell: full });
    assertPromptAndQuiet(r, "track >/dev/full");
    assert.equal(r.code, 1, show(r));
    assert.deepEqual(stderrLines(r), ["tally: Cannot write to stdout: no space left on device"]);

    const file = ndjsonFile(dir, 50_000);
    const send = await run(["send", "--dry-run", file], { shell: full });
    assertPromptAndQuiet(send, "send >/dev/full");
    assert.equal(send.code, 1, show(send));
    const lines = stderrLines(send);
    assert.equal(lines[0], "tally: Cannot write to stdout: no space left on device", show(send));
    assert.match(lines.at(-1)!, /stopped early/);
    assert.equal(lines.length, 2, show(send));
  } finally {
    cleanup();
  }
});

test("tally serve stops cleanly when the reader of its log has gone", async () => {
  const server = await startServe(["--port", "0", "--no-out"], {
    shell: `"$@" | head -n 1; exit "\${PIPESTATUS[0]}"`,
    ready: /listening on/,
  });
  // head has printed the first line and gone; the next log line (this request's) finds the pipe closed.
  const deadline = Date.now() + PROMPT_MS;
  let code: number | string | null | undefined;
  void server.exited.then((c) => void (code = c));
  while (code === undefined && Date.now() < deadline) {
    await fetch(`${server.url}/v1/batch`, { method: "POST", body: '{"batch":[]}' }).then(
      (r) => r.body?.cancel(),
      () => {},
    );
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  if (code === undefined) await server.stop();
  assert.equal(code, 0, server.output());
});

// ---- flags, help and usage errors, alike on every command

test("every flag a command accepts, --no-NAME forms and -h included, is listed in its --help", async () => {
  const commands: [string, readonly FlagSpec[]][] = [
    ...CALL_TYPES.map((type): [string, FlagSpec[]] => [type, callFlags(type)]),
    ["send", SEND_FLAGS],
    ["serve", SERVE_FLAGS],
  ];
  const accepts = (specs: readonly FlagSpec[], argv: string[]): boolean => {
    try {
      parseArgs(argv, specs, "test");
      return true;
    } catch {
      return false;
    }
  };
  for (const [command, specs] of commands) {
    const r = await run([command, "--help"]);
    assert.equal(r.code, 0, show(r));
    const listed = new Set(r.stdout.match(/(?<![\w-])--?[a-z][a-z-]*/g));
    const forms = ["-h", ...specs.flatMap((spec) => [`--${spec.name}`, `--no-${spec.name}`])];
    for (const form of forms) {
      const spec = specs.find((s) => form === `--${s.name}` || form === `--no-${s.name}`);
      const argv = spec !== undefined && spec.kind !== "boolean" && form === `--${spec.name}` ? [form, "1"] : [form];
      if (accepts(specs, argv)) assert.ok(listed.has(form), `tally ${command} accepts ${form}, its --help lists it`);
    }
  }
});

test("tally serve reads a negative number after a flag as its value, and its flag errors read as every command's", async () => {
  const spaced = await run(["serve", "--latency", "-5"]);
  assert.equal(spaced.code, 2, show(spaced));
  assert.deepEqual(stderrLines(spaced), ['tally: --latency must be a number of milliseconds >= 0, got "-5"']);
  const joined = await run(["serve", "--latency=-5"]);
  assert.deepEqual(stderrLines(joined), stderrLines(spaced));
  for (const args of [["--bogus"], ["--write-key"], ["extra"], ["--help=maybe"]]) {
    const serve = await run(["serve", ...args]);
    const track = await run(["track", ...args]);
    assert.equal(serve.code, 2, show(serve));
    assert.equal(track.code, 2, show(track));
    assert.equal(stderrLines(serve).length, 1, show(serve));
    assert.equal(serve.stderr, track.stderr.replaceAll("track", "serve"), args.join(" "));
  }
});

test("--json prints a JSON error object on stdout for a usage error, beside the one stderr line, and exits 2", async () => {
  const cases = [
    ["track", "--json", "--bogus"],
    ["track", "--json", "--user-id", "u", "--event", "E"], // no write key
    ["track", "--json", "--write-key", KEY, "--event", "E"], // no user id
    ["send", "--json", "--dry-run", "--batch-size", "0", `${FIXTURES}/cli_good.ndjson`],
    ["send", "--json", "--dry-run", `${FIXTURES}/does-not-exist.ndjson`],
    ["--type", "track", "--json", "--writeKey", KEY, "--userId", "u"],
  ];
  for (const args of cases) {
    const r = await run(args);
    assert.equal(r.code, 2, show(r));
    const lines = stderrLines(r);
    assert.equal(lines.length, 1, show(r));
    assert.deepEqual(JSON.parse(r.stdout), { ok: false, error: lines[0].replace(/^tally: /, "") }, show(r));
    assert.ok(!r.stdout.includes(KEY) && !r.stderr.includes(KEY), "the write key is never printed");
  }
  const plain = await run(["track", "--bogus"]);
  assert.equal(plain.stdout, "", "without --json, stdout stays empty");
});

test("option errors name the flag as it was typed, never the library's option name", async () => {
  const cases: [string[], string][] = [
    [["--batch-size", "0"], "tally: Cannot set --batch-size: expected from 1 to 2500, got 0"],
    [["--batchSize", "3000"], "tally: Cannot set --batchSize: expected from 1 to 2500, got 3000"],
    [["--retry-delay", "-1"], "tally: Cannot set --retry-delay: expected at least 0 seconds, got -1"],
    [["--max-retries", "-1"], "tally: Cannot set --max-retries: expected at least 0, got -1"],
    [["--timeout", "-1"], "tally: Cannot set --timeout: expected at least 0 seconds, got -1"],
    [["--host", "ftp://x"], "tally: Cannot set --host: expected an http: or https: URL, got ftp:"],
  ];
  for (const [flags, line] of cases) {
    const r = await run(["send", "--dry-run", ...flags, `${FIXTURES}/cli_good.ndjson`]);
    assert.equal(r.code, 2, show(r));
    assert.deepEqual(stderrLines(r), [line]);
    assert.doesNotMatch(r.stderr, /uploadSize|flushAt|minRetryDelay|maxRetryDelay|maxRetries/);
  }
});

// ---- send: exit code precedence, gzip input, replaying the collector's file

test("tally send with both invalid lines and refused messages exits 2 (invalid input wins), counting each", async () => {
  await withReceiver(async (url, receiver) => {
    receiver.setDefault({ status: 400, body: '{"error":"refused"}' });
    const r = await run(["send", "--write-key", KEY, "--host", url, "--json", `${FIXTURES}/cli_mixed.ndjson`]);
    assert.equal(r.code, 2, show(r));
    const summary = JSON.parse(r.stdout);
    assert.deepEqual([summary.sent, summary.failed, summary.invalid], [0, 3, 7]);
  });
  const help = (await run(["send", "--help"])).stdout;
  assert.match(help, /2 wins over 1/);
});

test("tally send decompresses gzip input as it reads, from a .gz file or from stdin", async () => {
  const [dir, cleanup] = scratch();
  try {
    const gz = gzipSync(readFileSync(`${ROOT}${FIXTURES}/cli_good.ndjson`));
    const file = join(dir, "good.ndjson.gz");
    writeFileSync(file, gz);
    await withReceiver(async (url, receiver) => {
      const r = await run(["send", "--write-key", KEY, "--host", url, "--json", file]);
      assert.equal(r.code, 0, show(r));
      const summary = JSON.parse(r.stdout);
      assert.deepEqual([summary.sent, summary.invalid, summary.bytesRead], [6, 0, gz.byteLength]);
      const piped = await run(["send", "--write-key", KEY, "--host", url, "--json"], { shell: `"$@" < '${file}'` });
      assert.equal(piped.code, 0, show(piped));
      assert.equal(JSON.parse(piped.stdout).sent, 6);
      const types = ["identify", "track", "page", "screen", "group", "alias"];
      assert.deepEqual(receiver.messages().map((m) => m.type), [...types, ...types]);
    });
    const bad = join(dir, "bad.ndjson.gz");
    writeFileSync(bad, Buffer.concat([gz.subarray(0, 10), Buffer.from("this is not deflate data at all".repeat(20))]));
    const r = await run(["send", "--dry-run", bad]);
    assert.equal(r.code, 2, show(r));
    assert.match(stderrLines(r)[0], /^tally: cannot read .*bad\.ndjson\.gz: not valid gzip data/);
    assert.doesNotMatch(r.stderr, /^\s+at /m);
  } finally {
    cleanup();
  }
});

test("tally send replays what tally serve captured: a line of the collector's file stands for its message", async () => {
  const [dir, cleanup] = scratch();
  try {
    const capture = join(dir, "capture.ndjson");
    const server = await startServe(["--port", "0", "--quiet", "--out", capture]);
    try {
      const r = await run(["send", "--write-key", KEY, "--host", server.url, `${FIXTURES}/cli_good.ndjson`]);
      assert.equal(r.code, 0, show(r));
    } finally {
      await server.stop();
    }
    const captured = readFileSync(capture, "utf8").split("\n").filter((l) => l !== "").map((l) => JSON.parse(l));
    assert.equal(captured.length, 6);
    await withReceiver(async (url, receiver) => {
      const r = await run(["send", "--write-key", KEY, "--host", url, "--json", capture]);
      assert.equal(r.code, 0, show(r));
      assert.equal(JSON.parse(r.stdout).sent, 6);
      const fields = (m: Record<string, unknown>) => [m.type, m.messageId, m.timestamp, m.userId ?? m.anonymousId];
      assert.deepEqual(receiver.messages().map(fields), captured.map((line) => fields(line.message)));
    });
    // Only the exact shape is unwrapped: anything else is read as a message, as before.
    const message = captured[1].message;
    const lookalikes = join(dir, "lookalikes.ndjson");
    writeFileSync(
      lookalikes,
      [
        { ...captured[1], note: "an extra key" },
        { ...captured[1], status: "unknown" },
        { id: 1, status: "good", reasons: [], message },
      ].map((line) => JSON.stringify(line)).join("\n") + "\n",
    );
    const r = await run(["send", "--dry-run", lookalikes]);
    assert.equal(r.code, 2, show(r));
    assert.deepEqual(stderrLines(r).slice(0, 3).map((l) => /:(\d+): type is required/.exec(l)?.[1]), ["1", "2", "3"]);
  } finally {
    cleanup();
  }
});

// ---- serve: where the events go

test("tally serve appends to .tally/events.ndjson by default, creating the folder, and prints the file's path", async () => {
  const [dir, cleanup] = scratch();
  try {
    const cwd = realpathSync(dir);
    const file = join(cwd, ".tally", "events.ndjson");
    const server = await startServe(["--port", "0", "--quiet"], { cwd });
    try {
      assert.ok(server.output().split("\n").includes(`Appending events to ${file}`), server.output());
      const r = await run(["track", "--write-key", KEY, "--host", server.url, "--user-id", "u", "--event", "Kept"]);
      assert.equal(r.code, 0, show(r));
    } finally {
      await server.stop();
    }
    const lines = readFileSync(file, "utf8").split("\n").filter((l) => l !== "");
    assert.deepEqual(lines.map((l) => JSON.parse(l).message.event), ["Kept"]);
    assert.ok(!existsSync(join(cwd, "tally-events.ndjson")));
  } finally {
    cleanup();
  }
});
