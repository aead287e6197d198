/**
 * The `tally` CLI, run as a child process against a real receiver on
 * 127.0.0.1: the compiled binary when `TALLY_BIN` is set (CI builds it
 * first), else `cli.ts` under the runtime running these tests (`deno run
 * --allow-net --allow-read --allow-env`, or `bun`).
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { existsSync, readFileSync } from "node:fs";
import { resolve } from "node:path";
import process from "node:process";
import { fileURLToPath } from "node:url";
import { VERSION } from "../lib/version.ts";
import { startReceiver } from "./receiver.ts";

const ROOT = fileURLToPath(new URL("..", import.meta.url));
const FIXTURES = "tests/fixtures";
const KEY = "wk_cli_SECRET_4242";
const AUTH = `Basic ${btoa(`${KEY}:`)}`;

/** The program and the arguments that come before tally's own. */
function tally(): [string, string[]] {
  const bin = process.env.TALLY_BIN;
  if (bin) return [resolve(ROOT, bin), []];
  if ("Deno" in globalThis) return [process.execPath, ["run", "--allow-net", "--allow-read", "--allow-env", "cli.ts"]];
  if ("Bun" in globalThis) return [process.execPath, ["cli.ts"]];
  return [`${ROOT}node_modules/.bin/bun`, ["cli.ts"]];
}

interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
  /** The child's peak resident memory in MB, from /proc (undefined where there is no /proc). */
  peakMb: number | undefined;
}

interface RunOptions {
  /** Text for stdin, or a generator of chunks written with backpressure. */
  stdin?: string | (() => Iterable<string>);
  env?: Record<string, string>;
  killAfterMs?: number;
  /** Poll the child's peak RSS. */
  memory?: boolean;
}

/** The environment without any write key or host of the machine running the tests. */
function baseEnv(extra: Record<string, string> = {}): Record<string, string> {
  const env: Record<string, string> = {};
  for (const [k, v] of Object.entries(process.env)) {
    if (v !== undefined && !/^(TALLY_|SEGMENT_)/.test(k)) env[k] = v;
  }
  return { ...env, NO_COLOR: "1", ...extra };
}

function readPeakKb(pid: number): number | undefined {
  try {
    const status = readFileSync(`/proc/${pid}/status`, "utf8");
    const m = /VmHWM:\s+(\d+) kB/.exec(status);
    return m ? Number(m[1]) : undefined;
  } catch {
    return undefined;
  }
}

/** Writes `chunks` to `stream`, waiting for it to drain: the input is never held whole. */
async function feed(stream: NodeJS.WritableStream, chunks: Iterable<string>): Promise<void> {
  stream.on("error", () => {}); // the child may exit early; its exit code tells
  for (const chunk of chunks) {
    if (!stream.write(chunk)) await new Promise((resolve) => stream.once("drain", resolve));
  }
  stream.end();
}

/** GNU time, which reports the child's peak RSS (Deno's tests may not read /proc of another process). */
const GNU_TIME = "/usr/bin/time";
const PEAK_MARK = "tally-test-peak-rss-kb=";

function run(args: string[], options: RunOptions = {}): Promise<Run> {
  const [bin, pre] = tally();
  const timed = options.memory === true && existsSync(GNU_TIME);
  const [cmd, argv] = timed ? [GNU_TIME, ["-f", `${PEAK_MARK}%M`, bin, ...pre, ...args]] : [bin, [...pre, ...args]];
  const child = spawn(cmd, argv, {
    cwd: ROOT,
    env: baseEnv(options.env),
    stdio: [options.stdin === undefined ? "ignore" : "pipe", "pipe", "pipe"],
  });
  let stdout = "";
  let stderr = "";
  child.stdout!.on("data", (chunk) => void (stdout += chunk));
  child.stderr!.on("data", (chunk) => void (stderr += chunk));
  const input = options.stdin;
  if (typeof input === "string") child.stdin!.end(input);
  else if (input !== undefined) void feed(child.stdin!, input());
  let peakKb: number | undefined;
  const poll = options.memory && !timed
    ? setInterval(() => {
      const kb = child.pid === undefined ? undefined : readPeakKb(child.pid);
      if (kb !== undefined) peakKb = Math.max(peakKb ?? 0, kb);
    }, 25)
    : undefined;
  const killer = setTimeout(() => child.kill("SIGKILL"), options.killAfterMs ?? 20_000);
  return new Promise((resolve, reject) => {
    child.on("error", (error) => {
      clearTimeout(killer);
      clearInterval(poll);
      reject(error);
    });
    child.on("close", (code) => {
      clearTimeout(killer);
      clearInterval(poll);
      if (timed) {
        const at = stderr.lastIndexOf(PEAK_MARK);
        if (at >= 0) {
          peakKb = Number(stderr.slice(at + PEAK_MARK.length).trim());
          stderr = stderr.slice(0, at);
        }
      }
      resolve({ code, stdout, stderr, peakMb: peakKb === undefined ? undefined : peakKb / 1024 });
    });
  });
}

const show = (r: Run): string =>
  `exit ${r.code}\nstdout: ${r.stdout.slice(0, 2000)}\nstderr: ${r.stderr.slice(0, 2000)}`;
const stderrLines = (r: Run): string[] => r.stderr.split("\n").filter((l) => l !== "");

async function withReceiver(fn: (url: string, receiver: Awaited<ReturnType<typeof startReceiver>>) => Promise<void>) {
  const receiver = await startReceiver();
  try {
    await fn(receiver.url, receiver);
  } finally {
    await receiver.stop();
  }
}

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
      [["track", ...base, "--user-id", "u", "--event", "E", "--timeout", "0"], /--timeout/],
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

test("tally send delivers into tally serve, which counts every message as good", async () => {
  const [bin, pre] = tally();
  const server = spawn(bin, [...pre, "serve", "--port", "0", "--no-out", "--quiet"], {
    cwd: ROOT,
    env: baseEnv(),
    stdio: ["ignore", "pipe", "pipe"],
  });
  const exited = new Promise<number | string | null>((resolve) =>
    server.on("close", (code, signal) => resolve(code ?? signal))
  );
  try {
    let output = "";
    const url = await new Promise<string>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`tally serve did not start: ${output}`)), 10_000);
      server.stdout!.on("data", (chunk) => {
        output += chunk;
        const m = /listening on (http:\/\/\S+)/.exec(output);
        if (m) {
          clearTimeout(timer);
          resolve(m[1]);
        }
      });
      server.stderr!.on("data", (chunk) => void (output += chunk));
    });
    const r = await run(["send", "--write-key", KEY, "--host", url, "--json", "--gzip", `${FIXTURES}/cli_good.ndjson`]);
    assert.equal(r.code, 0, show(r));
    assert.equal(JSON.parse(r.stdout).sent, 6);
    const stats = await (await fetch(`${url}/api/stats`)).json();
    assert.equal(stats.total, 6);
    assert.equal(stats.good, 6, JSON.stringify(stats));
  } finally {
    server.kill("SIGTERM");
    const code = await exited;
    // Deno's node:child_process reports the signal it sent even when the child then exits 0 (Bun's reports 0).
    if (!("Deno" in globalThis)) assert.equal(code, 0, "tally serve stops cleanly on SIGTERM");
  }
});
