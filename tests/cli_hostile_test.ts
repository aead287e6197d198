/**
 * The `tally` CLI under hostile input, run as tests/cli_test.ts runs it
 * (tests/fixtures/cli_run.ts): write keys of every shape typed where other
 * values belong, terminal escape sequences, invalid UTF-8, signals while
 * stdin is idle, and `__proto__` keys.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import process from "node:process";
import { Buffer } from "node:buffer";
import { streamIo } from "../cli/io.ts";
import { main } from "../cli/main.ts";
import { startCollector } from "../serve/mod.ts";
import {
  baseEnv,
  KEY,
  ROOT,
  type Run,
  run,
  scratch,
  show,
  stderrLines,
  tally,
  withReceiver,
} from "./fixtures/cli_run.ts";

// ---- a write key where another value belongs

const base64 = (text: string): string => Buffer.from(text).toString("base64");

/** Each form a write key can be printed in: as is, JSON-escaped, URL-encoded, and as (part of) Basic auth. */
const keyForms = (
  key: string,
): string[] => [
  ...new Set([key, JSON.stringify(key).slice(1, -1), encodeURIComponent(key), base64(`${key}:`), base64(key)]),
];

function assertKeyHidden(r: Run, key: string, what: string): void {
  for (const [stream, text] of [["stdout", r.stdout], ["stderr", r.stderr]]) {
    for (const form of keyForms(key)) {
      assert.ok(!text.includes(form), `${what}: ${stream} shows the key as ${JSON.stringify(form)}\n${show(r)}`);
    }
    // Nor a piece of it cut from a longer text (a JSON parser's snippet, a 40-character excerpt).
    if (key.length >= 12) assert.ok(!text.includes(key.slice(0, 8)), `${what}: ${stream} shows part of the key`);
  }
  assert.doesNotMatch(r.stderr, /\n\s+at /, `${what}: no stack trace`);
}

/**
 * Keys of every shape. None of them is in tally's own text, so any occurrence on stdout or stderr is a leak: very short
 * (a plain word, a token), with a quote, a percent sign or a space, equal to the event name, and part of the host.
 */
const KEY_SHAPES: { shape: string; key: string }[] = [
  { shape: "a one-letter word", key: "Q" },
  { shape: "a two-character token", key: "x1" },
  { shape: "a quote inside", key: 'a"b' },
  { shape: "a percent sign", key: "50%" },
  { shape: "a space inside", key: "my key" },
  { shape: "a live-looking key", key: "wk_live_abcdef123456" },
  { shape: "the event's name", key: "Deploy" },
  { shape: "part of the host", key: "127.0.0.1" },
];

for (const { shape, key } of KEY_SHAPES) {
  test(`a write key that is ${shape} is never printed, wherever it is typed (errors, --dry-run, --json, --debug)`, async () => {
    await withReceiver(async (url, receiver) => {
      const env = { TALLY_WRITE_KEY: key };
      const call = ["--user-id", "u", "--event", "E"];
      const usage: [string, string[], Record<string, string>][] = [
        ["as a file name", ["send", key], env],
        ["as a file name, the key from SEGMENT_WRITE_KEY", ["send", key], { SEGMENT_WRITE_KEY: key }],
        ["as a number", ["track", "--write-key", key, ...call, "--timeout", key, "--json"], {}],
        ["as a --write-key=KEY number", [`--writeKey=${key}`, "--type", "track", ...call, "--max-retries", key], {}],
        ["as JSON", ["track", ...call, "--properties", key, "--json"], env],
        ["inside JSON", ["identify", "--user-id", "u", "--traits", `{"plan":${key}}`], env],
        ["as the host", ["track", ...call, "--host", key, "--json"], env],
        ["as the command", [key, "--user-id", "u"], env],
        ["as --type", ["--type", key, ...call], env],
        ["as an extra argument", ["track", ...call, key], env],
        ["as a flag", ["track", ...call, `--${key}`], env],
      ];
      for (const [what, args, extra] of usage) {
        const r = await run(args, { env: extra });
        assert.equal(r.code, 2, `${what}: ${show(r)}`);
        assert.equal(stderrLines(r).length, 1, `${what}: ${show(r)}`);
        assertKeyHidden(r, key, what);
      }
      const file = await run(["send", key], { env });
      assert.deepEqual(stderrLines(file), ["tally: cannot read [write key]: no such file"], show(file));

      // Given to every field of a call: printed as it would be sent, the key in none of them.
      const dry = await run(
        ["track", "--user-id", key, "--event", key, "--message-id", key, "--properties", JSON.stringify({ [key]: key })]
          .concat(["--host", url, "--dry-run", "--debug", "--gzip"]),
        { env },
      );
      assert.equal(dry.code, 0, show(dry));
      assertKeyHidden(dry, key, "--dry-run");
      assert.equal(JSON.parse(dry.stdout).writeKey, "[write key]");
      assert.match(dry.stderr, /^tally: debug: sending to /m);

      // Lines of tally send that quote the key: as a field name, a type, text that is not JSON, a timestamp.
      const lines = [
        `{"type":"track","userId":"u","event":"E",${JSON.stringify(key)}:1}`,
        `{"type":${JSON.stringify(key)}}`,
        key,
        `{"type":"track","userId":"u","event":"E","timestamp":${JSON.stringify(key)}}`,
        `{"type":"track","userId":${JSON.stringify(key)},"event":${JSON.stringify(key)}}`,
      ].join("\n") + "\n";
      const send = await run(["send", "--dry-run", "--json", "--debug"], { env, stdin: lines });
      assert.equal(send.code, 2, show(send));
      assert.equal(JSON.parse(send.stdout.trim().split("\n").at(-1)!).invalid, 4, show(send));
      assertKeyHidden(send, key, "tally send");

      // A server that echoes the key back, as a JSON value: in the failure line, --json's error and --debug's lines.
      receiver.setDefault({ status: 400, body: JSON.stringify({ success: false, writeKey: key }) });
      const refused = await run(["track", ...call, "--host", url, "--json", "--debug"], { env });
      assert.equal(refused.code, 1, show(refused));
      assertKeyHidden(refused, key, "a server's answer");
      assert.equal(receiver.requests.length, 1);
    });
  });
}

test("a short write key that is an ordinary word is hidden where it is the key, and the word stays readable elsewhere", async () => {
  const [dir, cleanup] = scratch();
  await withReceiver(async (url, receiver) => {
    try {
      receiver.setDefault({ status: 400, body: '{"error":"refused"}' });
      const file = join(dir, "events.ndjson");
      writeFileSync(file, '{"type":"track","userId":"u","event":"E"}\n"message"\n');
      for (const key of ["message", "sent"]) {
        const env = { TALLY_WRITE_KEY: key };
        const r = await run(["send", "--dry-run", "--debug", file, "message"], { env });
        assert.equal(r.code, 2, show(r));
        assert.deepEqual(stderrLines(r), [
          key === "message"
            ? "tally: cannot read [write key]: no such file"
            : "tally: cannot read message: no such file",
        ]);
        const sent = await run(["send", "--debug", "--host", url, file], { env });
        assert.equal(sent.code, 2, show(sent));
        const lines = stderrLines(sent);
        assert.ok(lines.includes(`tally: ${file}:2: expected a JSON object (a message), got a string`), show(sent));
        assert.ok(lines.some((l) => /^tally: debug: sending 1 message \(/.test(l)), show(sent));
        assert.ok(lines.some((l) => /^tally: Cannot deliver 1 message: .*400/.test(l)), show(sent));
        assert.match(lines.at(-1)!, /^tally: sent 0 of 1 message \(\d+ B\); 1 failed, 1 invalid in /, show(sent));
        assert.doesNotMatch(sent.stderr, /\[write key\]/, show(sent));
      }
      // --json's result: a message id that is the key is hidden; tally's own "type":"track" is not.
      receiver.setDefault({ status: 200, body: '{"success":true}' });
      const call = await run([
        "track",
        "--user-id",
        "u",
        "--event",
        "E",
        "--message-id",
        "track",
        "--host",
        url,
        "--json",
      ], {
        env: { TALLY_WRITE_KEY: "track" },
      });
      assert.equal(call.code, 0, show(call));
      assert.deepEqual(JSON.parse(call.stdout), { type: "track", messageId: "[write key]", delivered: true });
    } finally {
      cleanup();
    }
  });
});

// ---- terminal escape sequences

/** A C0 control character other than tab and newline, DEL, or a C1 control character. */
// deno-lint-ignore no-control-regex -- finding control characters is the point
const CONTROL = /[\x00-\x08\x0b-\x1f\x7f-\x9f]/;

test("control characters from input are escaped (\\u001b) in every diagnostic line, never written raw", async () => {
  const lines = [
    '{"type":"track","userId":"u","event":"E","\\u001b]0;owned\\u0007":1}', // a field name: OSC, title change
    '{"type":"track","userId":"u","event":"\x1b[2J"}', // a raw ESC: not valid JSON
    '{"type":"\\u009b31m"}', // C1 CSI in the type
    '{"type":"track","userId":"u","event":"E","timestamp":"\\u007f\\u0008"}', // DEL and backspace
  ].join("\n") + "\n";
  const send = await run(["send", "--dry-run"], { stdin: lines });
  assert.equal(send.code, 2, show(send));
  const missing = await run(["send", "--dry-run", "\x1b[31mmissing.ndjson"]);
  assert.equal(missing.code, 2, show(missing));
  const usage = await run(["track", "--user-id", "u", "--event", "E", "--timeout", "\x1b[2J\x9b1m", "--dry-run"]);
  assert.equal(usage.code, 2, show(usage));
  const dry = await run(["track", "--user-id", "u\x9b", "--event", "\x1b[5m\x7f", "--dry-run"]);
  assert.equal(dry.code, 0, show(dry));
  for (const r of [send, missing, usage]) {
    for (const line of stderrLines(r)) {
      assert.doesNotMatch(line, CONTROL, `a raw control character on stderr: ${JSON.stringify(line)}`);
    }
  }
  const stderr = stderrLines(send);
  assert.equal(stderr.length, 5, show(send));
  assert.match(stderr[0], /^tally: stdin:1: unknown field "\\u001b\]0;owned\\u0007" for a track/);
  assert.match(stderr[1], /^tally: stdin:2: not valid JSON/);
  assert.match(stderr[2], /^tally: stdin:3: type must be one of .*, got "\\u009b31m"$/);
  assert.match(stderr[3], /^tally: stdin:4: .*timestamp "\\u007f\\b"/);
  assert.deepEqual(stderrLines(missing), ["tally: cannot read \\u001b[31mmissing.ndjson: no such file"]);
  assert.deepEqual(stderrLines(usage), ['tally: --timeout must be a number, got "\\u001b[2J\\u009b1m"']);
  // stdout: the request body is JSON with the same escapes, and still the same message.
  assert.doesNotMatch(dry.stdout, CONTROL);
  const m = JSON.parse(dry.stdout).batch[0];
  assert.deepEqual([m.userId, m.event], ["u\x9b", "\x1b[5m\x7f"]);
});

test("tally serve's log escapes the control characters of what clients send", async () => {
  const [bin, pre] = tally();
  const server = spawn(bin, [...pre, "serve", "--port", "0", "--no-out"], {
    cwd: ROOT,
    env: baseEnv(),
    stdio: ["ignore", "pipe", "pipe"],
  });
  const killer = setTimeout(() => server.kill("SIGKILL"), 15_000);
  let output = "";
  const exited = new Promise<void>((resolve) => server.on("close", () => resolve()));
  const seen = (pattern: RegExp): Promise<void> =>
    new Promise((resolve, reject) => {
      const check = (): void => {
        if (!pattern.test(output)) return;
        clearInterval(timer);
        resolve();
      };
      const timer = setInterval(check, 20);
      void exited.then(() => reject(new Error(`tally serve exited: ${output}`)));
    });
  server.stdout!.on("data", (chunk) => void (output += chunk));
  server.stderr!.on("data", (chunk) => void (output += chunk));
  try {
    await seen(/Press Ctrl-C to stop/);
    const url = /listening on (http:\/\/\S+)/.exec(output)![1];
    const body = '{"batch":[{"type":"track","userId":"u\\u001b[31m","event":"\\u001b]0;owned\\u0007\\u009b"}]}';
    const answer = await fetch(`${url}/v1/batch`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body,
    });
    await answer.body?.cancel();
    await seen(/bad #1/);
    assert.doesNotMatch(output, CONTROL, output);
    assert.match(output, /bad #1 track "\\u001b\]0;owned\\u0007\\u009b" user u\\u001b\[31m/);
  } finally {
    clearTimeout(killer);
    server.kill("SIGTERM");
    await exited;
  }
});

// ---- invalid UTF-8

test("invalid UTF-8 in tally send's input is reported as file:line, not replaced; valid multibyte text arrives intact", async () => {
  const [dir, cleanup] = scratch();
  try {
    const track = (event: string | Buffer): Buffer =>
      Buffer.concat([Buffer.from('{"type":"track","userId":"u","event":"'), Buffer.from(event), Buffer.from('"}')]);
    const nl = Buffer.from("\n");
    const bad = [
      Buffer.from([0xff]), // never valid
      Buffer.from([0xe2, 0x82]), // cut short
      Buffer.from([0xc0, 0xaf]), // overlong "/"
      Buffer.from([0xed, 0xa0, 0x80]), // an encoded surrogate
    ];
    const file = join(dir, "utf8.ndjson");
    writeFileSync(
      file,
      Buffer.concat([
        track("Crème brûlée"),
        nl,
        ...bad.flatMap((b) => [track(b), nl, track("ok 😀"), nl]),
        Buffer.from('{"type":"track","userId":"u","event":"'),
        Buffer.from([0xf0, 0x9f]), // cut short at the very end of the file
      ]),
    );
    await withReceiver(async (url, receiver) => {
      const r = await run(["send", "--write-key", KEY, "--host", url, "--json", file]);
      assert.equal(r.code, 2, show(r));
      assert.deepEqual(stderrLines(r), [2, 4, 6, 8, 10].map((n) => `tally: ${file}:${n}: the line is not valid UTF-8`));
      assert.deepEqual(receiver.messages().map((m) => m.event), ["Crème brûlée", ...bad.map(() => "ok 😀")]);
      const summary = JSON.parse(r.stdout);
      assert.deepEqual([summary.sent, summary.invalid, summary.read], [5, 5, 10]);

      // A multibyte character across the 64 KB read boundary is no error; invalid bytes in a JSON array are.
      const blank = " ".repeat(64 * 1024 - 1 - 1 - '{"type":"track","userId":"u","event":"straddling '.length);
      const straddle = join(dir, "straddle.ndjson");
      writeFileSync(
        straddle,
        Buffer.concat([Buffer.from(`${blank}\n`), track("straddling €"), nl, track("ünïcödé"), nl]),
      );
      const array = join(dir, "array.json");
      writeFileSync(
        array,
        Buffer.concat([Buffer.from("[\n"), track(bad[0]), Buffer.from(",\n"), track("ok"), Buffer.from("\n]")]),
      );
      const more = await run(["send", "--write-key", KEY, "--host", url, "--json", straddle, array]);
      assert.equal(more.code, 2, show(more));
      assert.deepEqual(stderrLines(more), [`tally: ${array}:2: the array element is not valid UTF-8`]);
      assert.deepEqual(receiver.messages().slice(5).map((m) => m.event), ["straddling €", "ünïcödé", "ok"]);
    });
  } finally {
    cleanup();
  }
});

// ---- signals while stdin is open and idle

/** `tally send` reading a stdin pipe that the test keeps open, into a collector that holds each request `latency` ms. */
async function sendWithOpenStdin(latency: number) {
  const collector = await startCollector({ latency });
  const [bin, pre] = tally();
  const child = spawn(bin, [...pre, "send", "--write-key", KEY, "--host", collector.url, "--debug"], {
    cwd: ROOT,
    env: baseEnv(),
    stdio: ["pipe", "pipe", "pipe"],
  });
  const killer = setTimeout(() => child.kill("SIGKILL"), 20_000);
  let stdout = "";
  let stderr = "";
  child.stdout!.on("data", (chunk) => void (stdout += chunk));
  const waiters = new Set<() => void>();
  child.stderr!.on("data", (chunk) => {
    stderr += chunk;
    for (const waiter of waiters) waiter();
  });
  const exited = new Promise<{ code: number | null; signal: string | null }>((resolve) =>
    child.on("close", (code, signal) => {
      clearTimeout(killer);
      resolve({ code, signal });
    })
  );
  /** Resolves once stderr matches `pattern`; rejects after 10 s or when the child exits first. */
  const waitFor = (pattern: RegExp): Promise<void> =>
    new Promise((resolve, reject) => {
      const timer = setTimeout(() => done(new Error(`no ${pattern} on stderr in 10 s: ${stderr}`)), 10_000);
      const done = (error?: Error) => {
        clearTimeout(timer);
        waiters.delete(check);
        if (error) reject(error);
        else resolve();
      };
      const check = () => void (pattern.test(stderr) && done());
      waiters.add(check);
      void exited.then(() => done(pattern.test(stderr) ? undefined : new Error(`exited first: ${stderr}`)));
      check();
    });
  return {
    collector,
    child,
    exited,
    waitFor,
    output: () => `stdout: ${stdout}\nstderr: ${stderr}`,
    stderr: () => stderr,
    async stop() {
      child.kill("SIGKILL");
      await exited;
      await collector.stop();
    },
  };
}

for (const [signal, code] of [["SIGINT", 130], ["SIGTERM", 143]] as const) {
  test(`tally send on ${signal} while its stdin is open and idle: stops reading, delivers what it queued, sums up, exits ${code}`, async () => {
    const s = await sendWithOpenStdin(800);
    try {
      await s.waitFor(/debug: sending to /); // tally has started, its handlers in place
      s.child.stdin!.write('{"type":"track","userId":"u","event":"A"}\n{"type":"track","userId":"u","event":"B"}\n');
      s.child.stdin!.write('{"type":"track","userId":"u","event":"C"}\n');
      await s.waitFor(/debug: sending 3 messages/); // in flight, held by the collector's latency; stdin stays open
      process.kill(s.child.pid!, signal);
      const exit = await s.exited;
      assert.deepEqual(exit, { code, signal: null }, s.output());
      assert.deepEqual(s.collector.events().map((e) => e.message.event).sort(), ["A", "B", "C"], s.output());
      const lines = s.stderr().split("\n").filter((l) => !l.startsWith("tally: debug: ") && l !== "");
      assert.match(lines[0], signal === "SIGINT" ? /^tally: interrupted: / : /^tally: terminated: /, s.output());
      assert.match(lines.at(-1)!, /^tally: sent 3 of 3 messages \(.*\); stopped early in /, s.output());
    } finally {
      await s.stop();
    }
  });
}

test("tally send quits at once on a second SIGINT or SIGTERM, with what it queued still undelivered", async () => {
  for (const signal of ["SIGINT", "SIGTERM"] as const) {
    const s = await sendWithOpenStdin(60_000);
    try {
      await s.waitFor(/debug: sending to /);
      s.child.stdin!.write('{"type":"track","userId":"u","event":"A"}\n');
      await s.waitFor(/debug: sending 1 message/);
      process.kill(s.child.pid!, signal);
      await s.waitFor(/: sending what is queued/);
      const started = performance.now();
      process.kill(s.child.pid!, signal);
      const exit = await s.exited;
      assert.deepEqual(exit, { code: signal === "SIGINT" ? 130 : 143, signal: null }, s.output());
      assert.ok(performance.now() - started < 3000, s.output());
    } finally {
      await s.stop();
    }
  }
});

// ---- __proto__, constructor and prototype keys

test("__proto__, constructor and prototype keys in JSON flags and NDJSON lines stay own keys and pollute nothing", async () => {
  const hostile = '{"__proto__":{"polluted":1},"constructor":{"prototype":{"polluted":2}},"prototype":{"polluted":3}}';
  const [dir, cleanup] = scratch();
  try {
    const file = join(dir, "hostile.ndjson");
    writeFileSync(
      file,
      [
        `{"type":"identify","userId":"u","traits":${hostile},"context":${hostile}}`,
        `{"type":"track","userId":"u","event":"E","__proto__":{"polluted":4}}`,
        `{"type":"track","userId":"u","event":"E","constructor":{"prototype":{"polluted":5}}}`,
      ].join("\n") + "\n",
    );
    // In this process, so that a polluted Object.prototype would show.
    const before = Object.getOwnPropertyNames(Object.prototype).sort();
    const call = await runInProcess([
      "track",
      "--dry-run",
      "--user-id",
      "u",
      "--event",
      "E",
      ...["--properties", hostile, "--context", hostile, "--integrations", hostile],
    ]);
    const send = await runInProcess(["send", "--dry-run", file]);
    assert.equal(({} as Record<string, unknown>).polluted, undefined);
    assert.deepEqual(Object.getOwnPropertyNames(Object.prototype).sort(), before);
    assert.equal(call.code, 0, call.stderr);
    const sent = JSON.parse(call.stdout).batch[0];
    for (const field of ["properties", "context", "integrations"]) {
      assert.deepEqual(Object.keys(sent[field]).slice(0, 3), ["__proto__", "constructor", "prototype"], field);
      assert.deepEqual(sent[field].__proto__, { polluted: 1 }, field);
      assert.equal(Object.getPrototypeOf(sent[field]), Object.prototype, field);
    }
    assert.equal(send.code, 2, send.stderr);
    assert.deepEqual(send.stderr.split("\n").slice(0, 2).map((l) => l.replace(/ \(it takes .*/, "")), [
      `tally: ${file}:2: unknown field "__proto__" for a track`,
      `tally: ${file}:3: unknown field "constructor" for a track`,
    ]);
    const identify = JSON.parse(send.stdout).batch[0];
    assert.deepEqual(Object.keys(identify.traits), ["__proto__", "constructor", "prototype"]);
    assert.deepEqual(identify.context.__proto__, { polluted: 1 });

    // And on the wire, through each runtime's own JSON, as the collector received it.
    await withReceiver(async (url, receiver) => {
      const r = await run(["send", "--write-key", KEY, "--host", url, file]);
      assert.equal(r.code, 2, show(r));
      const [m] = receiver.messages();
      assert.deepEqual(Object.keys(m.traits as object), ["__proto__", "constructor", "prototype"]);
      assert.deepEqual(Object.getOwnPropertyDescriptor(m.traits, "__proto__")?.value, { polluted: 1 });
    });
  } finally {
    cleanup();
  }
});

/** Runs tally's main() in this process, with stdout and stderr captured. */
async function runInProcess(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  let stdout = "";
  let stderr = "";
  const sink = (append: (text: string) => void) => ({
    write(chunk: string, callback?: (error?: Error | null) => void): boolean {
      append(chunk);
      callback?.();
      return true;
    },
    on: () => undefined,
  });
  const io = streamIo(sink((t) => void (stdout += t)), sink((t) => void (stderr += t)), baseEnv());
  const code = await main(args, io);
  await io.settle();
  return { code, stdout, stderr };
}
