/**
 * One runtime's bench driver: `driver.ts <phase> <sink url>` runs one phase
 * against the sink and prints its result as one JSON line on stdout
 * (progress goes to stderr). Phases:
 *
 * - `calls`: µs per `track()` in a 100k-call synchronous burst, beside the
 *   message floor (building and `JSON.stringify`-ing the same message).
 * - `delivery`: events/s and client CPU per event for a 100k burst (and a
 *   paced run) delivered to the sink, beside the fetch floor; and gzip bytes
 *   on the wire for typical track batches.
 * - `memory [library|hold|fetch]`: peak RSS while a 100k burst is queued and
 *   delivered, or (references) while the message floor's 100k strings are
 *   kept, or while the fetch floor sends 100k; run each in a fresh process.
 *
 * Runs unchanged on Deno and Bun, and on Node once bundled by `bun build`.
 *
 * @module
 */
import process from "node:process";
import { Analytics, LIBRARY_NAME, VERSION } from "../mod.ts";
import {
  AUTHORIZATION,
  BATCH,
  BURST,
  type CallsResult,
  type DeliveryResult,
  type DeliveryRun,
  type DriverResult,
  type Input,
  inputs,
  type MemoryResult,
  ROUNDS_CALLS,
  ROUNDS_DELIVERY,
  type SinkStats,
  WARMUP_ROUNDS,
  WRITE_KEY,
} from "./common.ts";

const GZIP_BATCHES = 10;

const runtime = (globalThis as { Deno?: unknown }).Deno
  ? "deno"
  : (globalThis as { Bun?: unknown }).Bun
  ? "bun"
  : "node";

const log = (line: string): void => void process.stderr.write(`[${runtime}] ${line}\n`);

/** A full collection between measurements, where the runtime exposes one. */
function collect(): void {
  const g = globalThis as { gc?: () => void; Bun?: { gc(force: boolean): void } };
  if (g.Bun) g.Bun.gc(true);
  else g.gc?.();
}

async function sinkStats(url: string): Promise<SinkStats> {
  const response = await fetch(`${url}/stats`);
  return await response.json();
}

const tick = (): Promise<void> => new Promise((resolve) => setTimeout(resolve, 0));

/** The message the floors build: the fields `track()` sends, as one object literal. */
function floorMessage(input: Input): Record<string, unknown> {
  return {
    type: "track",
    messageId: crypto.randomUUID(),
    timestamp: new Date().toISOString(),
    userId: input.userId,
    event: input.event,
    properties: input.properties,
    context: { library: { name: LIBRARY_NAME, version: VERSION } },
  };
}

function client(url: string, options: { gzip?: boolean; onFailure?: (n: number) => void } = {}): Analytics {
  return new Analytics({
    writeKey: WRITE_KEY,
    host: url,
    maxQueueSize: BURST,
    gzip: options.gzip ?? false,
    onError: (_error, messages) => options.onFailure?.(messages.length),
  });
}

// ---- figure 1: the cost of one call

function floorCalls(pool: Input[]): number {
  // The strings are kept, as any queue keeps them, so both sides pay the same for retention.
  const kept: string[] = [];
  const t0 = performance.now();
  for (let i = 0; i < BURST; i++) kept.push(JSON.stringify(floorMessage(pool[i % pool.length])));
  const us = ((performance.now() - t0) * 1000) / BURST;
  if (kept.length !== BURST) throw new Error("unreachable");
  return us;
}

async function clientCalls(url: string, pool: Input[], style: "positional" | "object"): Promise<number> {
  const analytics = client(url);
  const n = pool.length;
  let t0: number;
  let t1: number;
  if (style === "positional") {
    t0 = performance.now();
    for (let i = 0; i < BURST; i++) {
      const input = pool[i % n];
      analytics.track(input.userId, input.event, input.properties);
    }
    t1 = performance.now();
  } else {
    t0 = performance.now();
    for (let i = 0; i < BURST; i++) {
      const input = pool[i % n];
      analytics.track({ userId: input.userId, event: input.event, properties: input.properties });
    }
    t1 = performance.now();
  }
  await analytics.close();
  return ((t1 - t0) * 1000) / BURST;
}

async function calls(url: string): Promise<CallsResult> {
  const pool = inputs();
  const result: CallsResult = {
    rounds: ROUNDS_CALLS,
    floor: [],
    positional: [],
    object: [],
    delivered: 0,
    expected: 0,
  };
  const before = await sinkStats(url);
  for (let round = 0; round < WARMUP_ROUNDS + ROUNDS_CALLS; round++) {
    // The order rotates each round, so a slow spell of the machine does not always land on one side.
    let floor = 0;
    let positional = 0;
    let object = 0;
    for (let k = 0; k < 3; k++) {
      collect();
      const which = (k + round) % 3;
      if (which === 0) floor = floorCalls(pool);
      else if (which === 1) positional = await clientCalls(url, pool, "positional");
      else object = await clientCalls(url, pool, "object");
    }
    result.expected += 2 * BURST;
    const label = round < WARMUP_ROUNDS ? "warm-up" : `round ${round - WARMUP_ROUNDS + 1}/${ROUNDS_CALLS}`;
    log(
      `calls ${label}: floor ${floor.toFixed(2)} µs, track ${positional.toFixed(2)} µs, ` +
        `object ${object.toFixed(2)} µs`,
    );
    if (round < WARMUP_ROUNDS) continue;
    result.floor.push(floor);
    result.positional.push(positional);
    result.object.push(object);
  }
  result.delivered = (await sinkStats(url)).messages - before.messages;
  return result;
}

// ---- figures 2, 3 and 5: delivery

async function timed(url: string, run: () => Promise<number>): Promise<DeliveryRun> {
  collect();
  const s0 = await sinkStats(url);
  const c0 = process.cpuUsage();
  const t0 = performance.now();
  const failed = await run();
  const ms = performance.now() - t0;
  const cpu = process.cpuUsage(c0);
  const s1 = await sinkStats(url);
  return {
    ms,
    eventsPerSecond: BURST / (ms / 1000),
    cpuPerEvent: (cpu.user + cpu.system) / BURST,
    sinkMessages: s1.messages - s0.messages,
    sinkRequests: s1.requests - s0.requests,
    sinkBusy: (s1.cpu - s0.cpu) / 1000 / (s1.now - s0.now),
    failed,
  };
}

/** The fetch floor: build the same messages, 100 per body, POST them one request at a time. */
async function fetchFloor(url: string, pool: Input[], count: number): Promise<number> {
  const endpoint = `${url}/v1/batch`;
  const headers = { "content-type": "application/json", authorization: AUTHORIZATION };
  for (let i = 0; i < count;) {
    const batch: Record<string, unknown>[] = [];
    for (let j = 0; j < BATCH; j++, i++) batch.push(floorMessage(pool[i % pool.length]));
    const body = JSON.stringify({ batch, sentAt: new Date().toISOString() });
    const response = await fetch(endpoint, { method: "POST", headers, body });
    await response.text();
    if (!response.ok) throw new Error(`the sink answered ${response.status}`);
  }
  return 0;
}

/** The library: `count` calls (yielding every 1000 when paced), then `flush()`. */
async function clientBurst(url: string, pool: Input[], count: number, paced: boolean): Promise<number> {
  let failed = 0;
  const analytics = client(url, { onFailure: (n) => void (failed += n) });
  const n = pool.length;
  for (let i = 0; i < count; i++) {
    const input = pool[i % n];
    analytics.track(input.userId, input.event, input.properties);
    if (paced && i % 1000 === 999) await tick();
  }
  await analytics.flush();
  const stats = analytics.stats();
  if (stats.delivered + failed !== count) {
    throw new Error(`delivered ${stats.delivered} and failed ${failed} of ${count}`);
  }
  return failed;
}

async function delivery(url: string): Promise<DeliveryResult> {
  const pool = inputs();
  const result: DeliveryResult = {
    rounds: ROUNDS_DELIVERY,
    floor: [],
    burst: [],
    paced: [],
    gzip: { batches: GZIP_BATCHES, messages: 0, wireBytes: 0, plainBytes: 0 },
  };
  // Warm-up: JIT, connection pools and the sink's own warm-up.
  await fetchFloor(url, pool, BURST / 5);
  await clientBurst(url, pool, BURST / 5, false);
  await clientBurst(url, pool, BURST / 5, true);
  for (let round = 1; round <= ROUNDS_DELIVERY; round++) {
    const runs: DeliveryRun[] = [];
    for (let k = 0; k < 3; k++) {
      const which = (k + round) % 3;
      runs[which] = await timed(
        url,
        () => which === 0 ? fetchFloor(url, pool, BURST) : clientBurst(url, pool, BURST, which === 2),
      );
    }
    const [floor, burst, paced] = runs;
    result.floor.push(floor);
    result.burst.push(burst);
    result.paced.push(paced);
    const k = (run: DeliveryRun) =>
      `${(run.eventsPerSecond / 1000).toFixed(1)}k/s ${run.cpuPerEvent.toFixed(1)} µs cpu/ev sink ${
        Math.round(run.sinkBusy * 100)
      }%`;
    log(`delivery round ${round}/${ROUNDS_DELIVERY}: floor ${k(floor)}; burst ${k(burst)}; paced ${k(paced)}`);
  }

  const s0 = await sinkStats(url);
  const analytics = client(url, { gzip: true });
  for (let i = 0; i < GZIP_BATCHES * BATCH; i++) {
    const input = pool[i % pool.length];
    analytics.track(input.userId, input.event, input.properties);
  }
  await analytics.close();
  const s1 = await sinkStats(url);
  result.gzip.messages = s1.messages - s0.messages;
  result.gzip.wireBytes = s1.wireBytes - s0.wireBytes;
  result.gzip.plainBytes = s1.plainBytes - s0.plainBytes;
  log(`gzip: ${result.gzip.wireBytes} bytes on the wire for ${result.gzip.plainBytes} bytes of JSON`);
  return result;
}

// ---- figure 4: peak memory

/**
 * Peak RSS of one subject, in a fresh process: `library` (a 100k burst, then
 * `flush()`), or two references on the same runtime: `hold` (the message
 * floor's 100k strings, kept) and `fetch` (the fetch floor's 100k messages).
 */
async function memory(url: string, subject: MemoryResult["subject"]): Promise<MemoryResult> {
  const pool = inputs();
  const rss = (): number => process.memoryUsage.rss();
  collect();
  await new Promise((resolve) => setTimeout(resolve, 50));
  const baseline = rss();
  let peak = baseline;
  let peakDuring: MemoryResult["peakDuring"] = "burst";
  let samples = 0;
  const sample = (during: MemoryResult["peakDuring"]) => {
    const now = rss();
    samples++;
    if (now > peak) [peak, peakDuring] = [now, during];
  };
  const n = pool.length;
  let delivered = 0;
  if (subject === "library") {
    const analytics = client(url);
    for (let i = 0; i < BURST; i++) {
      const input = pool[i % n];
      analytics.track(input.userId, input.event, input.properties);
      if ((i & 1023) === 1023) sample("burst");
    }
    sample("burst");
    const timer = setInterval(() => sample("delivery"), 2);
    await analytics.flush();
    clearInterval(timer);
    sample("delivery");
    delivered = analytics.stats().delivered;
  } else if (subject === "hold") {
    const kept: string[] = [];
    for (let i = 0; i < BURST; i++) {
      kept.push(JSON.stringify(floorMessage(pool[i % n])));
      if ((i & 1023) === 1023) sample("burst");
    }
    sample("burst");
    delivered = kept.length;
  } else {
    const timer = setInterval(() => sample("delivery"), 2);
    await fetchFloor(url, pool, BURST);
    clearInterval(timer);
    sample("delivery");
    delivered = BURST;
  }
  const usage = (process as { resourceUsage?: () => { maxRSS: number } }).resourceUsage?.();
  const result: MemoryResult = {
    subject,
    baseline,
    peak,
    peakDuring,
    maxRss: usage ? usage.maxRSS * 1024 : undefined,
    samples,
    delivered,
  };
  log(
    `memory (${subject}): baseline ${(baseline / 2 ** 20).toFixed(1)} MB, peak ${(peak / 2 ** 20).toFixed(1)} MB ` +
      `(${peakDuring})`,
  );
  return result;
}

async function main(): Promise<void> {
  const [phase, url, subject = "library"] = process.argv.slice(2);
  if (!url?.startsWith("http://127.0.0.1:")) {
    throw new Error("usage: driver <calls|delivery|memory> http://127.0.0.1:PORT [library|hold|fetch]");
  }
  let output: DriverResult;
  if (phase === "calls") output = { phase, result: await calls(url) };
  else if (phase === "delivery") output = { phase, result: await delivery(url) };
  else if (phase === "memory" && (subject === "library" || subject === "hold" || subject === "fetch")) {
    output = { phase, result: await memory(url, subject) };
  } else throw new Error(`unknown phase ${phase}`);
  process.stdout.write(JSON.stringify(output) + "\n");
  process.exit(0);
}

await main();
