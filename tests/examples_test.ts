/**
 * The examples run: the demo (every seed example against `tally serve`, its
 * port fallback with `--keep`, its collector stopped with it), and each web
 * server example of examples/web_servers/ on its runtime, against the
 * collector: a request with a user, SIGTERM, then the event must have arrived
 * with that user and the server must have exited.
 *
 * Each case runs its child with the runtime running the tests: the Deno
 * examples under `deno test`, Hono on Bun under `bun test`, Express and
 * Fastify under Node in the npm build's test run (scripts/build_npm.ts
 * compiles the examples against the built package: Node 20 cannot run .ts)
 * and under `bun test`. A case whose runtime is another is skipped, saying so.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { type ChildProcess, spawn } from "node:child_process";
import { readFileSync } from "node:fs";
import { type AddressInfo, createServer } from "node:net";
import process from "node:process";
import { fileURLToPath } from "node:url";
import { startReceiver } from "./receiver.ts";

const ROOT = fileURLToPath(new URL("..", import.meta.url));
const RUNTIME: "deno" | "bun" | "node" = "Deno" in globalThis ? "deno" : "Bun" in globalThis ? "bun" : "node";
const WRITE_KEY = "examples-test-write-key";
/** Generous bounds: each child takes well under a second here. */
const START_WITHIN_MS = 15_000;
const EXIT_WITHIN_MS = 10_000;

/** A child process with its output kept, and a way to wait for a line of it. */
interface Child {
  process: ChildProcess;
  output(): string;
  /** Resolves with the match of the first stdout line matching `pattern`; rejects if the child exits first or after `ms`. */
  line(pattern: RegExp, ms?: number): Promise<RegExpExecArray>;
  /** Resolves with how the child ended; rejects after `ms`. */
  exit(ms?: number): Promise<{ code: number | null; signal: string | null }>;
}

/** Runs a script with the runtime running this test (Deno gets `denoFlags`). */
function run(script: string, args: string[], env: Record<string, string>, denoFlags: string[] = []): Child {
  const argv = RUNTIME === "deno" ? ["run", "--quiet", ...denoFlags, script, ...args] : [script, ...args];
  const child = spawn(process.execPath, argv, {
    cwd: ROOT,
    env: { ...process.env, NO_COLOR: "1", ...env },
    stdio: ["ignore", "pipe", "pipe"],
  });
  let out = "";
  let err = "";
  const listeners = new Set<() => void>();
  child.stdout!.on("data", (chunk) => {
    out += chunk;
    for (const listener of listeners) listener();
  });
  child.stderr!.on("data", (chunk) => void (err += chunk));
  const ended = new Promise<{ code: number | null; signal: string | null }>((resolve) => {
    child.on("close", (code, signal) => {
      for (const listener of listeners) listener();
      resolve({ code, signal });
    });
  });
  const output = () => `stdout:\n${out}\nstderr:\n${err}`;
  return {
    process: child,
    output,
    line(pattern, ms = START_WITHIN_MS) {
      return new Promise((resolve, reject) => {
        const timer = setTimeout(() => done(new Error(`no line matching ${pattern} after ${ms} ms; ${output()}`)), ms);
        const done = (error: Error | null, match?: RegExpExecArray) => {
          clearTimeout(timer);
          listeners.delete(check);
          if (error) reject(error);
          else resolve(match!);
        };
        const check = () => {
          for (const line of out.split("\n")) {
            const match = pattern.exec(line);
            if (match) return done(null, match);
          }
          if (child.exitCode !== null || child.signalCode !== null) {
            done(new Error(`exited (${child.exitCode ?? child.signalCode}) before printing ${pattern}; ${output()}`));
          }
        };
        listeners.add(check);
        check();
      });
    },
    exit(ms = EXIT_WITHIN_MS) {
      let timer: ReturnType<typeof setTimeout> | undefined;
      const late = new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new Error(`still running ${ms} ms later; ${output()}`)), ms);
      });
      return Promise.race([ended, late]).finally(() => clearTimeout(timer));
    },
  };
}

/** Kills a child that a failed assertion left running. */
function cleanUp(child: Child): void {
  if (child.process.exitCode === null && child.process.signalCode === null) child.process.kill("SIGKILL");
}

// ---- the web servers

const USER_ID = "019mr8mf4r";

/** Starts the example, sends it one request without a user and one with, SIGTERMs it, and checks the event. */
async function checkWebServer(example: URL): Promise<void> {
  const receiver = await startReceiver();
  const script = fileURLToPath(example);
  const child = run(script, [], { TALLY_HOST: receiver.url, TALLY_WRITE_KEY: WRITE_KEY, PORT: "0" }, [
    "--allow-net=127.0.0.1",
    "--allow-env=TALLY_HOST,TALLY_WRITE_KEY,PORT",
  ]);
  try {
    const [, url] = await child.line(/^Listening on (http:\/\/127\.0\.0\.1:\d+)\/?$/);
    assert.doesNotMatch(url, /:0$/, "the example prints the port it got, not 0");

    const anonymous = await fetch(`${url}/articles/snow-fall`);
    assert.equal(anonymous.status, 401, "no user, no event");
    await anonymous.body?.cancel();
    const response = await fetch(`${url}/articles/snow-fall`, { headers: { "x-user-id": USER_ID } });
    assert.equal(response.status, 200, await response.clone().text());
    const { messageId } = await response.json() as { messageId: string };

    // process.kill, not child.kill: Deno's child.kill() reports the signal even when the child exits 0 on it.
    process.kill(child.process.pid!, "SIGTERM");
    const { code, signal } = await child.exit();
    assert.equal(signal, null, `killed by ${signal}; ${child.output()}`);
    assert.equal(code, 0, child.output());
    assert.match(child.output(), /^Stopped: at shutdown/m, "the shutdown handler ran");

    const messages = receiver.messages();
    assert.equal(messages.length, 1, JSON.stringify(messages));
    const [message] = messages;
    assert.equal(message.type, "track");
    assert.equal(message.userId, USER_ID);
    assert.equal(message.event, "Article Viewed");
    assert.equal(message.messageId, messageId);
    assert.deepEqual(message.properties, { articleId: "snow-fall", path: "/articles/snow-fall" });
    assert.equal(receiver.requests[0].headers.authorization, `Basic ${btoa(`${WRITE_KEY}:`)}`);
  } finally {
    cleanUp(child);
    await receiver.stop();
  }
}

const onNodeOrBun = RUNTIME === "deno" ? "runs under Node (the npm build's test run) and Bun" : false;

test("web servers: Deno.serve (deno_serve.ts) tracks the request's user and delivers on SIGTERM", {
  skip: RUNTIME === "deno" ? false : "Deno.serve is Deno's: runs under deno test",
}, () => checkWebServer(new URL("../examples/web_servers/deno_serve.ts", import.meta.url)));

test("web servers: Hono on Deno (hono_deno.ts) tracks the request's user and delivers on SIGTERM", {
  skip: RUNTIME === "deno" ? false : "Hono on Deno: runs under deno test",
}, () => checkWebServer(new URL("../examples/web_servers/hono_deno.ts", import.meta.url)));

test("web servers: Hono on Bun (hono_bun.ts) tracks the request's user and delivers on SIGTERM", {
  skip: RUNTIME === "bun" ? false : "Bun.serve is Bun's: runs under bun test",
}, () => checkWebServer(new URL("../examples/web_servers/hono_bun.ts", import.meta.url)));

test(`web servers: Express (express.ts) on ${RUNTIME} tracks the request's user and delivers on SIGTERM`, {
  skip: onNodeOrBun,
}, () => checkWebServer(new URL("../examples/web_servers/express.ts", import.meta.url)));

test(`web servers: Fastify (fastify.ts) on ${RUNTIME} tracks the request's user and delivers on SIGTERM`, {
  skip: onNodeOrBun,
}, () => checkWebServer(new URL("../examples/web_servers/fastify.ts", import.meta.url)));

// ---- the demo

const DEMO = fileURLToPath(new URL("../examples/demo.ts", import.meta.url));
/** What `deno task demo` grants. */
const DEMO_FLAGS = ["--allow-net=127.0.0.1", "--allow-run", "--allow-read", "--allow-env"];
const onDenoOrBun = RUNTIME === "node"
  ? "the demo runs on Deno or Bun (npx deno task demo): Node 20 cannot run the .ts examples it starts"
  : false;

/** Whether no process has this pid any more (a zombie waiting to be reaped counts as gone). */
function gone(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch {
    return true;
  }
  try {
    return /^\d+ \(.*\) Z/.test(readFileSync(`/proc/${pid}/stat`, "utf8"));
  } catch {
    return false;
  }
}

async function goneWithin(pid: number, ms: number): Promise<boolean> {
  const deadline = Date.now() + ms;
  while (!gone(pid)) {
    if (Date.now() > deadline) return false;
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  return true;
}

/** Runs the demo with `--keep`, waits for its collector, signals the demo alone, and checks both stopped. */
async function checkKeep(signal: "SIGINT" | "SIGTERM", port: number): Promise<{ url: string; output: string }> {
  const child = run(DEMO, ["--keep", "--port", String(port), "track.ts"], {}, DEMO_FLAGS);
  let collector: number | undefined;
  try {
    const [, url] = await child.line(/^Inspector: open (http:\/\/127\.0\.0\.1:\d+)\//, 60_000);
    collector = Number((await child.line(/^The collector \(pid (\d+)\)/))[1]);
    const stats = await (await fetch(`${url}/api/stats`)).json() as { total: number };
    assert.equal(stats.total, 2, "track.ts sent two messages");

    process.kill(child.process.pid!, signal);
    const exit = await child.exit();
    assert.deepEqual(exit, { code: signal === "SIGINT" ? 130 : 143, signal: null }, child.output());
    assert.ok(await goneWithin(collector, 5000), `the collector (pid ${collector}) outlived the demo`);
    assert.doesNotMatch(child.output(), /^\s+at /m, "no stack trace");
    return { url, output: child.output() };
  } finally {
    cleanUp(child);
    if (collector !== undefined && !gone(collector)) process.kill(collector, "SIGKILL");
  }
}

test("demo: runs every example against tally serve, reports what arrived and exits 0", {
  skip: onDenoOrBun,
}, async () => {
  const child = run(DEMO, [], {}, DEMO_FLAGS);
  try {
    const { code } = await child.exit(60_000);
    assert.equal(code, 0, child.output());
    assert.match(child.output(), /^All 15 examples ok; \d+ messages arrived, \d+ bad\.$/m);
    assert.match(child.output(), /^ {2}bad track .*timestamp/m, "the seed's year-2538 timestamp is flagged");
  } finally {
    cleanUp(child);
  }
});

test(
  "demo --keep: when its port is taken it picks a free one and says so; SIGINT to the demo alone stops the collector",
  {
    skip: onDenoOrBun,
  },
  async () => {
    // Taken by this test, not assumed taken or free: 8787 may be either on the machine running it.
    const blocker = createServer();
    await new Promise<void>((resolve) => blocker.listen(0, "127.0.0.1", resolve));
    const taken = (blocker.address() as AddressInfo).port;
    try {
      const { url, output } = await checkKeep("SIGINT", taken);
      assert.notEqual(new URL(url).port, String(taken));
      assert.match(output, new RegExp(`^Port ${taken} is in use .*: the demo's collector is on ${url}$`, "m"));
    } finally {
      blocker.close();
    }
  },
);

test("demo --keep: SIGTERM to the demo alone stops the collector", { skip: onDenoOrBun }, async () => {
  await checkKeep("SIGTERM", 0);
});

test("demo: a bad flag is one line naming it, exit code 2", { skip: onDenoOrBun }, async () => {
  const child = run(DEMO, ["--port", "http"], {}, DEMO_FLAGS);
  try {
    const { code } = await child.exit();
    assert.equal(code, 2, child.output());
    assert.match(child.output(), /^Cannot run the demo: --port needs a port number from 0 to 65535, not http/m);
    assert.doesNotMatch(child.output(), /^\s+at /m, "no stack trace");
  } finally {
    cleanUp(child);
  }
});
