/**
 * Bodies over the collector's 500 KB limit: each gets its 400 with the JSON
 * error and `Connection: close`, and the connection then closes cleanly
 * (read to its end, so no reset), whichever runtime's fetch sends it, on a
 * new or a kept-alive connection, plain, streamed or gzip; a body that goes
 * on and on is read no further than a bound, in bytes and in time.
 *
 * The fetch clients are tests/fixtures/collector_client.mjs run by Node, Bun
 * and Deno in child processes; the collector runs in the runtime running this
 * file (Deno, Bun, or Node on the npm build), so each of the three serves them.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { Buffer } from "node:buffer";
import { spawn } from "node:child_process";
import { existsSync } from "node:fs";
import { connect, type Socket } from "node:net";
import { dirname, join } from "node:path";
import process from "node:process";
import { fileURLToPath } from "node:url";
import { type Collector, REQUEST_LIMIT, startCollector } from "../serve/mod.ts";

const CLIENT = fileURLToPath(new URL("./fixtures/collector_client.mjs", import.meta.url));
const REPEATS = 20;

/** `node_modules/.bin/NAME` in the nearest folder above this file that has it (the npm build runs from npm/). */
function devTool(name: string): string {
  let dir = dirname(CLIENT);
  for (;;) {
    const candidate = join(dir, "node_modules", ".bin", name);
    if (existsSync(candidate)) return candidate;
    const up = dirname(dir);
    if (up === dir) throw new Error(`Cannot find node_modules/.bin/${name} above ${CLIENT}: run npm ci`);
    dir = up;
  }
}

/** Runs `command args` to its end (killed after 60 s); its stdout, or a failure naming what went wrong. */
function run(command: string, args: string[]): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, { stdio: ["ignore", "pipe", "pipe"], env: { ...process.env, NO_COLOR: "1" } });
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (chunk) => void (stdout += chunk));
    child.stderr.on("data", (chunk) => void (stderr += chunk));
    const killer = setTimeout(() => child.kill("SIGKILL"), 60_000);
    child.on("error", (error) => {
      clearTimeout(killer);
      reject(new Error(`Cannot run ${command}: ${error.message}`));
    });
    child.on("close", (code, signal) => {
      clearTimeout(killer);
      if (code === 0) resolve(stdout);
      else reject(new Error(`${command} ${args.join(" ")} ended with ${code ?? signal}: ${stderr || stdout}`));
    });
  });
}

async function withCollector(body: (collector: Collector, log: string[]) => Promise<void>): Promise<void> {
  const log: string[] = [];
  const collector = await startCollector({ log: (line) => void log.push(line) });
  try {
    await body(collector, log);
  } finally {
    await collector.stop();
  }
}

/** What each step of the client's sequence must come to, whatever the runtime. */
const EXPECTED: Record<string, string> = {
  "good before": "200 success",
  "good after": "200 success",
};
const REFUSED: Record<string, string> = {
  plain: "400 (connection: close) request body is",
  chunked: "400 (connection: close) request body is over the 512000-byte",
  "gzip-wire": "400 (connection: close) request body is",
  "gzip-bomb": "400 (connection: close) gzip body inflates past the 512000-byte",
};

const clients: [string, () => [string, string[]]][] = [
  ["Node", () => ["node", [CLIENT]]],
  ["Bun", () => [devTool("bun"), [CLIENT]]],
  ["Deno", () => [devTool("deno"), ["run", "--allow-net=127.0.0.1", CLIENT]]],
];

for (const [name, command] of clients) {
  test(`${name}'s fetch always gets the 400 of a body over the limit, never a reset, on new and kept-alive connections`, async () => {
    await withCollector(async (collector) => {
      const [cmd, args] = command();
      const output = await run(cmd, [...args, collector.url, String(REPEATS)]);
      const report = JSON.parse(output) as {
        requests: number;
        wireBytes: Record<string, number>;
        outcomes: Record<string, Record<string, number>>;
      };
      const kinds = Object.keys(REFUSED);
      assert.deepEqual(Object.keys(report.wireBytes), kinds);
      for (const kind of ["plain", "chunked", "gzip-wire"]) assert.ok(report.wireBytes[kind] > REQUEST_LIMIT, kind);
      assert.ok(report.wireBytes["gzip-bomb"] < REQUEST_LIMIT / 10, "the bomb is small on the wire");
      assert.equal(report.requests, kinds.length * REPEATS * 5);

      const wrong: string[] = [];
      for (const [key, outcomes] of Object.entries(report.outcomes)) {
        const [kind, step] = key.split("/");
        const expected = step.startsWith("oversized") ? REFUSED[kind] : EXPECTED[step];
        for (const [outcome, n] of Object.entries(outcomes)) {
          if (!outcome.startsWith(expected)) wrong.push(`${key}: ${n} x ${outcome}`);
        }
      }
      assert.deepEqual(wrong, [], `${name} on ${report.requests} requests`);
      const stats = collector.stats();
      assert.equal(stats.bad, 0, "nothing of a refused body is stored");
      assert.equal(stats.requests, report.requests);
    });
  });
}

/** A raw connection to the collector, for what fetch does not show: how the connection ends. */
interface Raw {
  socket: Socket;
  /** Everything received so far. */
  received(): string;
  /** Resolves when the server has closed the connection: "end" for a clean close, else the error's code. */
  closed: Promise<string>;
}

function open(collector: Collector): Promise<Raw> {
  return new Promise((resolve, reject) => {
    const socket = connect(collector.port, "127.0.0.1");
    let text = "";
    let ending = "";
    socket.on("data", (chunk: Buffer) => void (text += chunk.toString("latin1")));
    const closed = new Promise<string>((done) => {
      socket.on("end", () => void (ending ||= "end"));
      socket.on("error", (error: Error & { code?: string }) => void (ending ||= error.code ?? error.message));
      socket.on("close", () => done(ending || "close"));
    });
    socket.once("connect", () => resolve({ socket, received: () => text, closed }));
    socket.once("error", reject);
  });
}

const until = async (ok: () => boolean, what: string, ms = 10_000): Promise<void> => {
  const end = Date.now() + ms;
  while (!ok()) {
    if (Date.now() > end) throw new Error(`Timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
};

const head = (length: string): string =>
  `POST /v1/batch HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n${length}\r\n`;
const goodBody = JSON.stringify({ batch: [{ type: "track", messageId: "g1", userId: "u1", event: "Good" }] });
/** A write that resolves once it is handed to the kernel, or fails when the socket is gone. */
const write = (socket: Socket, data: string | Buffer): Promise<void> =>
  new Promise((resolve, reject) => socket.write(data, (error) => error ? reject(error) : resolve()));
const chunk = (data: Buffer): Buffer =>
  Buffer.concat([Buffer.from(`${data.length.toString(16)}\r\n`), data, Buffer.from("\r\n")]);

test("after a good request, a body over the limit on the same connection gets 400 with Connection: close, then a clean close", async () => {
  for (const streamed of [false, true]) {
    await withCollector(async (collector, log) => {
      const raw = await open(collector);
      await write(raw.socket, head(`Content-Length: ${goodBody.length}\r\n`) + goodBody);
      await until(() => raw.received().includes('{"success":true}'), "the good answer");
      assert.match(raw.received(), /^HTTP\/1\.1 200 /);
      assert.doesNotMatch(raw.received(), /connection: close/i, "a good request keeps the connection");

      const body = Buffer.alloc(REQUEST_LIMIT + 100 * 1024, " ");
      if (streamed) {
        await write(raw.socket, head("Transfer-Encoding: chunked\r\n"));
        for (let at = 0; at < body.length; at += 64 * 1024) {
          await write(raw.socket, chunk(body.subarray(at, at + 64 * 1024)));
        }
        await write(raw.socket, "0\r\n\r\n");
      } else await write(raw.socket, Buffer.concat([Buffer.from(head(`Content-Length: ${body.length}\r\n`)), body]));

      assert.equal(await raw.closed, "end", `${streamed ? "streamed" : "sized"}: closed with a FIN, not a reset`);
      const second = raw.received().slice(raw.received().indexOf("HTTP/1.1", 10));
      assert.match(second, /^HTTP\/1\.1 400 /);
      assert.match(second, /\r\nconnection: close\r\n/i);
      const json = JSON.parse(second.slice(second.indexOf("\r\n\r\n") + 4));
      assert.equal(json.success, false);
      assert.match(json.error, /over the 512000-byte limit/);
      assert.equal(collector.stats().total, 1, "only the good message is stored");
      assert.ok(log.some((line) => /400 refused: .*read to its end .* and discarded; connection closed/.test(line)));
    });
  }
});

test("a body declared far over the limit is answered at once and not read; its connection is destroyed soon after", async () => {
  await withCollector(async (collector, log) => {
    const raw = await open(collector);
    await write(raw.socket, head(`Content-Length: ${100 * 1024 * 1024}\r\n`) + "{");
    await until(() => raw.received().includes("\r\n\r\n{"), "the answer", 2000);
    assert.match(
      raw.received(),
      /^HTTP\/1\.1 400 [^]*connection: close[^]*104857600 bytes, over the 512000-byte limit/i,
    );
    const started = Date.now();
    await raw.closed;
    assert.ok(Date.now() - started < 3000, "destroyed within the linger");
    assert.ok(log.some((line) => /refused: 100\.0 MB body declared, more than .* not read/.test(line)), log.join("\n"));
    assert.equal(collector.stats().bytes, 0);
  });
});

test("a body that stops coming past the limit is answered after 5 s and its connection destroyed: no hang", async () => {
  await withCollector(async (collector, log) => {
    const raw = await open(collector);
    await write(raw.socket, head("Transfer-Encoding: chunked\r\n"));
    await write(raw.socket, chunk(Buffer.alloc(REQUEST_LIMIT + 1024, " ")));
    const started = Date.now();
    const ending = await raw.closed;
    const took = Date.now() - started;
    assert.ok(took >= 4500 && took < 8000, `closed after ${took} ms`);
    assert.match(raw.received(), /^HTTP\/1\.1 400 [^]*connection: close/i, `${ending}: ${raw.received()}`);
    assert.ok(log.some((line) => /still sending after 5000 ms/.test(line)), log.join("\n"));
    // It still serves.
    const ok = await fetch(`${collector.url}/v1/batch`, { method: "POST", body: goodBody });
    assert.equal(ok.status, 200);
    await ok.body?.cancel();
  });
});
