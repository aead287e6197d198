/**
 * The disk queue's numbers (issue 10): `track()` cost with `storage` on
 * against the memory queue, delivered events/s of both, and the start-up
 * replay of 100k stored messages against sending them fresh, on Deno, Bun
 * and Node, into the loopback sink (bench/sink.ts under Bun, its own process).
 *
 * Run: `node_modules/.bin/deno run -A bench/storage.ts` (driver); it runs
 * itself as `bench/storage.ts worker URL` under each runtime (Node through a
 * bundle made by `bun build`). `TALLY_BENCH_BURST` (100000) and
 * `TALLY_BENCH_ROUNDS` (3) size it. Prints a JSON line per runtime and a table.
 *
 * @module
 */
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import process from "node:process";
import { spawn } from "node:child_process";
import { Analytics } from "../mod.ts";
import { fileStorage } from "../storage.ts";
import { inputs } from "./common.ts";

const BURST = Number(process.env.TALLY_BENCH_BURST ?? 100_000);
const ROUNDS = Number(process.env.TALLY_BENCH_ROUNDS ?? 3);
const ROOT = path.resolve(path.dirname(new URL(import.meta.url).pathname), "..");
const BIN = path.join(ROOT, "node_modules/.bin/");

interface Round {
  memoryTrackUs: number;
  storageTrackUs: number;
  memoryEventsPerSecond: number;
  storageEventsPerSecond: number;
  pacedMemoryTrackUs: number;
  pacedStorageTrackUs: number;
  pacedMemoryEventsPerSecond: number;
  pacedStorageEventsPerSecond: number;
  replayEventsPerSecond: number;
  replayStartMs: number;
  replayed: number;
}

const median = (values: number[]): number => {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)];
};

/**
 * One burst into a client (`paced`: yielding to the event loop every 1000
 * calls); returns the µs per call (time in the loops only) and the delivered
 * events/s (first call to flush resolved).
 */
async function burst(analytics: Analytics, pool: ReturnType<typeof inputs>, paced = false): Promise<[number, number]> {
  const start = performance.now();
  let inCalls = 0;
  for (let from = 0; from < BURST; from += paced ? 1000 : BURST) {
    const loop = performance.now();
    const to = Math.min(BURST, from + (paced ? 1000 : BURST));
    for (let i = from; i < to; i++) analytics.track(pool[i % pool.length]);
    inCalls += performance.now() - loop;
    if (paced) await new Promise((resolve) => setTimeout(resolve, 0));
  }
  await analytics.flush();
  const done = performance.now();
  const { delivered } = analytics.stats();
  if (delivered !== BURST) throw new Error(`delivered ${delivered} of ${BURST}`);
  return [(inCalls * 1000) / BURST, BURST / ((done - start) / 1000)];
}

async function worker(url: string): Promise<void> {
  const pool = inputs();
  const rounds: Round[] = [];
  for (let round = 0; round <= ROUNDS; round++) {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "tally-bench-storage-"));
    try {
      const memory = new Analytics({ writeKey: "bench", host: url, maxQueueSize: BURST });
      const [memoryTrackUs, memoryEventsPerSecond] = await burst(memory, pool);
      await memory.close();
      const stored = new Analytics({ writeKey: "bench", host: url, storage: fileStorage(dir) });
      const [storageTrackUs, storageEventsPerSecond] = await burst(stored, pool);
      await stored.close();
      const pacedMemory = new Analytics({ writeKey: "bench", host: url, maxQueueSize: BURST });
      const [pacedMemoryTrackUs, pacedMemoryEventsPerSecond] = await burst(pacedMemory, pool, true);
      await pacedMemory.close();
      const pacedStored = new Analytics({ writeKey: "bench", host: url, storage: fileStorage(dir) });
      const [pacedStorageTrackUs, pacedStorageEventsPerSecond] = await burst(pacedStored, pool, true);
      await pacedStored.close();

      // Replay: a client that could send nothing leaves the burst on disk; the next one sends it at start.
      const leaving = new Analytics({ writeKey: "bench", host: "http://127.0.0.1:9", storage: fileStorage(dir) });
      for (let i = 0; i < BURST; i++) leaving.track(pool[i % pool.length]);
      const left = await leaving.close({ timeout: 0 });
      const start = performance.now();
      const next = new Analytics({ writeKey: "bench", host: url, storage: fileStorage(dir) });
      const opened = performance.now();
      const replay = await next.flush();
      const done = performance.now();
      await next.close();
      if (replay.delivered !== left.kept) throw new Error(`replayed ${replay.delivered} of ${left.kept}`);
      if (round > 0) { // round 0 warms up
        rounds.push({
          memoryTrackUs,
          storageTrackUs,
          memoryEventsPerSecond,
          storageEventsPerSecond,
          pacedMemoryTrackUs,
          pacedStorageTrackUs,
          pacedMemoryEventsPerSecond,
          pacedStorageEventsPerSecond,
          replayEventsPerSecond: replay.delivered / ((done - start) / 1000),
          replayStartMs: opened - start,
          replayed: replay.delivered,
        });
      }
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  }
  const summary: Record<string, number> = {};
  for (const key of Object.keys(rounds[0]) as (keyof Round)[]) summary[key] = median(rounds.map((r) => r[key]));
  console.log(JSON.stringify(summary));
}

function run(cmd: string, args: string[], stdin: "pipe" | "ignore" = "ignore") {
  return spawn(cmd, args, { cwd: ROOT, stdio: [stdin, "pipe", "inherit"] });
}

async function firstLine(child: ReturnType<typeof spawn>): Promise<string> {
  let out = "";
  for await (const chunk of child.stdout!) {
    out += chunk;
    if (out.includes("\n")) break;
  }
  return out.split("\n")[0];
}

async function collect(child: ReturnType<typeof spawn>): Promise<string> {
  let out = "";
  for await (const chunk of child.stdout!) out += chunk;
  await new Promise((resolve) => child.on("close", resolve));
  return out;
}

async function driver(): Promise<void> {
  const sink = run(`${BIN}bun`, ["bench/sink.ts"], "pipe");
  const url = `http://127.0.0.1:${JSON.parse(await firstLine(sink)).port}`;
  const self = "bench/storage.ts";
  await collect(run(`${BIN}bun`, ["build", self, "--target=node", "--format=esm", "--outfile=.bench/storage.mjs"]));
  const runtimes: [string, string, string[]][] = [
    ["deno", `${BIN}deno`, ["run", "-A", self, "worker", url]],
    ["bun", `${BIN}bun`, [self, "worker", url]],
    ["node", "node", [".bench/storage.mjs", "worker", url]],
  ];
  const table: string[] = [];
  try {
    for (const [name, cmd, args] of runtimes) {
      const out = (await collect(run(cmd, args))).trim().split("\n").pop()!;
      console.log(JSON.stringify({ runtime: name, ...JSON.parse(out) }));
      const r = JSON.parse(out);
      const us = (v: number) => `${v.toFixed(2)} µs`;
      const k = (v: number) => `${Math.round(v / 1000)}k/s`;
      const x = (a: number, b: number) => `${(a / b).toFixed(2)}x`;
      for (const [mode, p] of [["burst", ""], ["paced", "paced"]] as const) {
        const f = (key: string) => r[p === "" ? key : p + key[0].toUpperCase() + key.slice(1)];
        table.push(
          `| ${name} ${mode} | ${us(f("memoryTrackUs"))} | ${us(f("storageTrackUs"))} | ` +
            `${x(f("storageTrackUs"), f("memoryTrackUs"))} | ${k(f("memoryEventsPerSecond"))} | ` +
            `${k(f("storageEventsPerSecond"))} | ${x(f("storageEventsPerSecond"), f("memoryEventsPerSecond"))} |`,
        );
      }
      table.push(
        `| ${name} replay | ${k(r.replayEventsPerSecond)} of ${r.replayed} (${
          Math.round(r.replayStartMs)
        } ms to open) ` +
          `| ${x(r.replayEventsPerSecond, r.memoryEventsPerSecond)} of the fresh burst |`,
      );
    }
  } finally {
    sink.stdin!.end();
  }
  console.log(table.join("\n"));
}

if (process.argv[2] === "worker") await worker(process.argv[3]);
else await driver();
