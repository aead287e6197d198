/**
 * Runs every example against a recording receiver on 127.0.0.1 and reports
 * what arrived. Nothing leaves the machine: each example gets the receiver's
 * URL as `TALLY_HOST` (and, on Deno, `--allow-net=127.0.0.1` only).
 *
 *     deno task demo               (add --verbose to see what each example printed)
 *     npx bun examples/demo.ts
 *
 * @module
 */
import { spawn } from "node:child_process";
import process from "node:process";
import { fileURLToPath } from "node:url";
import { startReceiver } from "../tests/receiver.ts";

/** The examples, in the seed's order. */
const EXAMPLES = [
  "getting_started.ts",
  "identify.ts",
  "track.ts",
  "page.ts",
  "screen.ts",
  "group.ts",
  "alias.ts",
  "historical_import.ts",
  "server_logs.ts",
  "selecting_destinations.ts",
  "batching.ts",
  "gzip.ts",
  "options.ts",
  "overriding_context.ts",
  "sync_mode.ts",
];

/** A made-up key shaped like a Segment write key (32 letters and digits). */
const WRITE_KEY = "9pQv2sLxT4kWb7RmZc1HfN8yJd3GaE6u";
/** An example that has not exited by then is killed and counted as failed. */
const CHILD_TIMEOUT_MS = 10_000;
const TYPES = ["identify", "track", "page", "screen", "group", "alias"];

const verbose = process.argv.includes("--verbose");
const root = fileURLToPath(new URL("..", import.meta.url));
const isDeno = typeof (globalThis as { Deno?: unknown }).Deno !== "undefined";
const runtime = isDeno ? `Deno ${process.versions.deno}` : `Bun ${process.versions.bun}`;

interface Run {
  file: string;
  ok: boolean;
  code: number | null;
  timedOut: boolean;
  ms: number;
  messages: number;
  output: string;
}

/** Runs one example as a child process of the same runtime; never rejects. */
function runExample(file: string, host: string): Promise<Omit<Run, "messages">> {
  const path = fileURLToPath(new URL(file, import.meta.url));
  const args = isDeno ? ["run", "--quiet", "--allow-net=127.0.0.1", "--allow-env", path] : [path];
  const started = performance.now();
  return new Promise((resolve) => {
    const chunks: string[] = [];
    let timedOut = false;
    const child = spawn(process.execPath, args, {
      cwd: root,
      env: { ...process.env, TALLY_HOST: host, TALLY_WRITE_KEY: WRITE_KEY, NO_COLOR: "1" },
      stdio: ["ignore", "pipe", "pipe"],
    });
    child.stdout.on("data", (chunk) => chunks.push(String(chunk)));
    child.stderr.on("data", (chunk) => chunks.push(String(chunk)));
    const timer = setTimeout(() => {
      timedOut = true;
      child.kill("SIGKILL");
    }, CHILD_TIMEOUT_MS);
    const finish = (code: number | null) => {
      clearTimeout(timer);
      const ms = Math.round(performance.now() - started);
      resolve({ file, ok: code === 0, code, timedOut, ms, output: chunks.join("") });
    };
    child.on("error", (error) => {
      chunks.push(String(error));
      finish(null);
    });
    child.on("close", (code) => finish(code));
  });
}

/** The write key from `Authorization: Basic base64(key + ":")`. */
function keyFromAuthorization(header: string | undefined): string | undefined {
  const match = /^Basic\s+(\S+)$/i.exec(header ?? "");
  if (!match) return undefined;
  try {
    return atob(match[1]).replace(/:$/, "");
  } catch {
    return undefined;
  }
}

const mask = (key: string): string => `${key.slice(0, 4)}…`;
const plural = (n: number, word: string): string => `${n} ${word}${n === 1 ? "" : "s"}`;

const receiver = await startReceiver();
console.log(`Tally demo: ${EXAMPLES.length} examples on ${runtime}, sending to ${receiver.url}\n`);

// One at a time, so each message is credited to the example that sent it.
const runs: Run[] = [];
for (const file of EXAMPLES) {
  const before = receiver.messages().length;
  const run = await runExample(file, receiver.url);
  const messages = receiver.messages().length - before;
  // An example that exits cleanly but delivers nothing has failed too.
  runs.push({ ...run, ok: run.ok && messages > 0, messages });
}
await receiver.stop();

console.log("Examples");
const width = Math.max(...EXAMPLES.map((f) => f.length));
for (const run of runs) {
  const status = run.ok ? "ok    " : "FAILED";
  const why = run.ok
    ? ""
    : run.timedOut
    ? `  (killed: still running after ${CHILD_TIMEOUT_MS / 1000} s)`
    : run.code === 0
    ? "  (exited 0 but nothing arrived)"
    : `  (exit code ${run.code})`;
  console.log(
    `  ${status} ${run.file.padEnd(width)}  ${plural(run.messages, "message").padStart(12)}  ${run.ms} ms${why}`,
  );
  if ((verbose || !run.ok) && run.output.trim() !== "") {
    console.log(run.output.trimEnd().split("\n").map((line) => `         | ${line}`).join("\n"));
  }
}

const requests = receiver.requests;
const messages = receiver.messages();
const counts = TYPES.map((type) => `${type} ${messages.filter((m) => m.type === type).length}`);
const gzipped = requests.filter((r) => r.headers["content-encoding"] === "gzip").length;
const paths = [...new Set(requests.map((r) => `${r.method} ${r.path}`))];
const keys = [...new Set(requests.map((r) => keyFromAuthorization(r.headers["authorization"]) ?? "(none)"))];
const keyOk = keys.length === 1 && keys[0] === WRITE_KEY;
const agents = [...new Set(requests.map((r) => r.headers["user-agent"] ?? "(none)"))];

console.log("\nReceived");
console.log(`  requests   ${requests.length} (${gzipped} gzipped), ${paths.join(", ") || "none"}`);
console.log(`  messages   ${messages.length}: ${counts.join(", ")}`);
console.log(
  `  write key  ${keys.map((k) => k === "(none)" ? k : mask(k)).join(", ")} in Authorization` +
    (keyOk ? " (the key the examples were given)" : " (not the key the examples were given)"),
);
console.log(`  user agent ${agents.join(", ")}`);

const shirt = messages.find((m) => m.event === "Shirt Bought");
const shown = shirt ?? messages[0];
if (shown !== undefined) {
  console.log(`\nOne message as it arrived (${shirt ? "server_logs.ts" : "the first one"}):`);
  console.log(JSON.stringify(shown, null, 2).split("\n").map((line) => `  ${line}`).join("\n"));
}

const failed = runs.filter((run) => !run.ok);
if (failed.length > 0 || messages.length === 0 || !keyOk) {
  console.log(`\nFAILED: ${plural(failed.length, "example")} failed, ${plural(messages.length, "message")} arrived`);
  process.exit(1);
}
console.log(`\nAll ${EXAMPLES.length} examples ok; ${plural(messages.length, "message")} arrived.`);
