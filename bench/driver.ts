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
 * - `memory [library|hold|fetch|<peer> <peers dir>]`: peak RSS while a 100k
 *   burst is queued and delivered (by Tally, or by a peer), or (references)
 *   while the message floor's 100k strings are kept, or while the fetch floor
 *   sends 100k; run each in a fresh process.
 * - `peers <peers dir>` (Node): Tally and each peer of bench/clients.ts,
 *   burst and paced, interleaved with both floors in one process, round
 *   after round; and each client's bytes on the wire, gzip off and on.
 * - `profile [burst|paced|floor]`: five of Tally's delivery runs (or of the
 *   fetch floor) after a warm-up, and nothing else, to run under
 *   `--cpu-prof` (see bench/profile.ts).
 *
 * Runs unchanged on Deno and Bun, and on Node once bundled by `bun build`.
 *
 * @module
 */
import process from "node:process";
import { Analytics, LIBRARY_NAME, VERSION } from "../mod.ts";
import { type BenchClient, GZIP, Peers, tally, TALLY_VERSION } from "./clients.ts";
import {
  AUTHORIZATION,
  BATCH,
  BURST,
  type CallsResult,
  type Client,
  type DeliveryResult,
  type DeliveryRun,
  type DriverResult,
  type Input,
  inputs,
  type MemoryResult,
  type MemorySubject,
  PEERS,
  type PeersResult,
  ROUNDS_CALLS,
  ROUNDS_DELIVERY,
  ROUNDS_PEERS,
  type SinkStats,
  WARMUP_ROUNDS,
  type WireBytes,
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

/** The sink's counters; `reset` also empties its set of ids, so duplicates count within one run. */
async function sinkStats(url: string, reset = false): Promise<SinkStats> {
  const response = await fetch(`${url}/stats${reset ? "?reset" : ""}`);
  return await response.json();
}

const tick = (): Promise<void> => new Promise((resolve) => setTimeout(resolve, 0));
/** After the promise jobs queued so far (and before timers that are due, on Node). */
const afterJobs = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

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

/** Figure 1's client: called directly, so the loop times `track()` and nothing around it. */
function client(url: string): Analytics {
  return new Analytics({ writeKey: WRITE_KEY, host: url, maxQueueSize: BURST, gzip: false });
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
    await sinkStats(url, true);
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

/** What one timed run reports besides its time. */
interface Outcome {
  failed: number;
  callUs: number;
  callSettledUs: number;
  /** Run after the measurement: the client's `close()`. */
  after?: () => Promise<void>;
}

async function timed(url: string, run: () => Promise<Outcome>): Promise<DeliveryRun> {
  collect();
  const s0 = await sinkStats(url, true);
  const c0 = process.cpuUsage();
  const t0 = performance.now();
  const outcome = await run();
  const ms = performance.now() - t0;
  const cpu = process.cpuUsage(c0);
  const s1 = await sinkStats(url);
  await outcome.after?.();
  return {
    ms,
    eventsPerSecond: BURST / (ms / 1000),
    cpuPerEvent: (cpu.user + cpu.system) / BURST,
    sinkMessages: s1.messages - s0.messages,
    sinkRequests: s1.requests - s0.requests,
    sinkBusy: (s1.cpu - s0.cpu) / 1000 / (s1.now - s0.now),
    failed: outcome.failed,
    wireBytes: s1.wireBytes - s0.wireBytes,
    plainBytes: s1.plainBytes - s0.plainBytes,
    duplicates: s1.duplicates - s0.duplicates,
    callUs: outcome.callUs,
    callSettledUs: outcome.callSettledUs,
  };
}

/** The fetch floor: build the same messages, 100 per body, POST them one request at a time. */
async function fetchFloor(url: string, pool: Input[], count: number): Promise<Outcome> {
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
  return { failed: 0, callUs: 0, callSettledUs: 0 };
}

/**
 * A client's burst: `count` calls (yielding every 1000 when paced), then its `drain()`. The calls are timed
 * apart: the loop alone, and (burst) until a `setImmediate` after it, which takes in the promise jobs the calls
 * queued.
 */
async function clientBurst(client: BenchClient, pool: Input[], count: number, paced: boolean): Promise<Outcome> {
  const n = pool.length;
  let callMs = 0;
  let settledMs = 0;
  if (!paced) {
    const t0 = performance.now();
    for (let i = 0; i < count; i++) client.track(pool[i % n]);
    callMs = performance.now() - t0;
    await afterJobs();
    settledMs = performance.now() - t0;
  } else {
    for (let i = 0; i < count;) {
      const t0 = performance.now();
      for (const end = Math.min(count, i + 1000); i < end; i++) client.track(pool[i % n]);
      callMs += performance.now() - t0;
      await tick();
    }
    settledMs = callMs;
  }
  await client.drain();
  return {
    failed: client.failed,
    callUs: (callMs * 1000) / count,
    callSettledUs: (settledMs * 1000) / count,
    after: () => client.close(),
  };
}

const tallyClient = (url: string, gzip = false): BenchClient => tally({ url, maxQueueSize: BURST, gzip });

/** Bytes on the wire for `count` typical messages, counted by the sink. */
async function wireBytes(url: string, pool: Input[], client: BenchClient, count: number) {
  const s0 = await sinkStats(url, true);
  for (let i = 0; i < count; i++) client.track(pool[i % pool.length]);
  await client.close();
  const s1 = await sinkStats(url);
  if (s1.messages - s0.messages !== count) {
    throw new Error(`the sink counted ${s1.messages - s0.messages} of ${count} messages`);
  }
  return {
    wireBytes: s1.wireBytes - s0.wireBytes,
    plainBytes: s1.plainBytes - s0.plainBytes,
    requests: s1.requests - s0.requests,
  };
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
  const warm = Math.max(1, Math.floor(BURST / 5));
  await fetchFloor(url, pool, warm);
  await clientBurst(tallyClient(url), pool, warm, false).then((o) => o.after?.());
  await clientBurst(tallyClient(url), pool, warm, true).then((o) => o.after?.());
  for (let round = 1; round <= ROUNDS_DELIVERY; round++) {
    const runs: DeliveryRun[] = [];
    for (let k = 0; k < 3; k++) {
      const which = (k + round) % 3;
      runs[which] = await timed(
        url,
        () => which === 0 ? fetchFloor(url, pool, BURST) : clientBurst(tallyClient(url), pool, BURST, which === 2),
      );
    }
    const [floor, burst, paced] = runs;
    result.floor.push(floor);
    result.burst.push(burst);
    result.paced.push(paced);
    log(
      `delivery round ${round}/${ROUNDS_DELIVERY}: floor ${brief(floor)}; burst ${brief(burst)}; paced ${brief(paced)}`,
    );
  }

  const gzip = await wireBytes(url, pool, tallyClient(url, true), GZIP_BATCHES * BATCH);
  result.gzip.messages = GZIP_BATCHES * BATCH;
  result.gzip.wireBytes = gzip.wireBytes;
  result.gzip.plainBytes = gzip.plainBytes;
  log(`gzip: ${result.gzip.wireBytes} bytes on the wire for ${result.gzip.plainBytes} bytes of JSON`);
  return result;
}

const brief = (run: DeliveryRun): string =>
  `${(run.eventsPerSecond / 1000).toFixed(1)}k/s ${run.cpuPerEvent.toFixed(1)} µs cpu/ev sink ${
    Math.round(run.sinkBusy * 100)
  }%`;

// ---- the peers, on Node

/**
 * Tally and every peer, interleaved with both floors in one process: each round runs the message floor, the
 * fetch floor and, per client, a burst and a paced run, in an order that rotates from round to round.
 */
async function peers(url: string, dir: string): Promise<PeersResult> {
  const installed = new Peers(dir);
  const clients: Client[] = ["tally", ...PEERS];
  const make = (name: Client, gzip = false): BenchClient => installed.create(name, { url, maxQueueSize: BURST, gzip });
  const versions = { tally: TALLY_VERSION } as Record<Client, string>;
  for (const name of PEERS) versions[name] = installed.version(name);
  const pool = inputs();
  const result: PeersResult = {
    rounds: ROUNDS_PEERS,
    versions,
    messageFloor: [],
    fetchFloor: [],
    burst: {} as Record<Client, DeliveryRun[]>,
    paced: {} as Record<Client, DeliveryRun[]>,
    wire: {} as Record<Client, WireBytes>,
  };
  for (const name of clients) [result.burst[name], result.paced[name]] = [[], []];

  const warm = Math.max(1, Math.floor(BURST / 5));
  floorCalls(pool);
  await fetchFloor(url, pool, warm);
  for (const name of clients) {
    log(`peers warm-up: ${name}`);
    await clientBurst(make(name), pool, warm, false).then((o) => o.after?.());
  }

  type Task = () => Promise<void>;
  const tasks: Task[] = [
    () => {
      collect();
      result.messageFloor.push(floorCalls(pool));
      return Promise.resolve();
    },
    async () => void result.fetchFloor.push(await timed(url, () => fetchFloor(url, pool, BURST))),
  ];
  for (const name of clients) {
    for (const paced of [false, true]) {
      tasks.push(async () => {
        const run = await timed(url, () => clientBurst(make(name), pool, BURST, paced));
        (paced ? result.paced : result.burst)[name].push(run);
        log(`  ${name} ${paced ? "paced" : "burst"}: ${brief(run)}, ${run.callUs.toFixed(2)} µs/call`);
      });
    }
  }
  for (let round = 0; round < ROUNDS_PEERS; round++) {
    log(`peers round ${round + 1}/${ROUNDS_PEERS}`);
    for (let k = 0; k < tasks.length; k++) await tasks[(k + round * 3) % tasks.length]();
  }

  for (const name of clients) {
    const messages = GZIP_BATCHES * BATCH;
    const plain = await wireBytes(url, pool, make(name), messages);
    const entry: WireBytes = { messages, plain: { wireBytes: plain.wireBytes, requests: plain.requests } };
    if (GZIP[name]) entry.gzip = await wireBytes(url, pool, make(name, true), messages);
    result.wire[name] = entry;
    log(`wire: ${name} ${plain.wireBytes} B plain, ${entry.gzip ? `${entry.gzip.wireBytes} B gzip` : "no gzip"}`);
  }
  return result;
}

// ---- figure 4: peak memory

/**
 * Peak RSS of one subject, in a fresh process: `library` (Tally's 100k burst, then its delivery) or a peer's
 * (from `dir`), or two references on the same runtime: `hold` (the message floor's 100k strings, kept) and
 * `fetch` (the fetch floor's 100k messages).
 */
async function memory(url: string, subject: MemorySubject, dir: string | undefined): Promise<MemoryResult> {
  const pool = inputs();
  const rss = (): number => process.memoryUsage.rss();
  let client: BenchClient | undefined;
  if (subject === "library") client = tallyClient(url);
  else if (subject !== "hold" && subject !== "fetch") {
    if (!dir) throw new Error("memory of a peer needs the peers directory");
    client = new Peers(dir).create(subject, { url, maxQueueSize: BURST });
  }
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
  if (client) {
    const s0 = await sinkStats(url, true);
    for (let i = 0; i < BURST; i++) {
      client.track(pool[i % n]);
      if ((i & 1023) === 1023) sample("burst");
    }
    sample("burst");
    const timer = setInterval(() => sample("delivery"), 2);
    await client.drain();
    clearInterval(timer);
    sample("delivery");
    delivered = (await sinkStats(url)).messages - s0.messages;
    await client.close();
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

/** Five timed runs of one kind and nothing else, for a CPU profile. */
async function profile(url: string, kind: string): Promise<DeliveryRun[]> {
  const pool = inputs();
  const run = (count: number) =>
    kind === "floor" ? fetchFloor(url, pool, count) : clientBurst(tallyClient(url), pool, count, kind === "paced");
  await run(Math.max(1, Math.floor(BURST / 5))).then((o) => o.after?.());
  const runs: DeliveryRun[] = [];
  for (let i = 0; i < 5; i++) {
    runs.push(await timed(url, () => run(BURST)));
    log(`profile ${kind} ${i + 1}/5: ${brief(runs[runs.length - 1])}`);
  }
  return runs;
}

async function main(): Promise<void> {
  const [phase, url, ...rest] = process.argv.slice(2);
  if (!url?.startsWith("http://127.0.0.1:")) {
    throw new Error(
      "usage: driver <calls|delivery|memory|peers|profile> http://127.0.0.1:PORT [library|hold|fetch|<peer>|burst|paced|floor] [peers dir]",
    );
  }
  const subjects: string[] = ["library", "hold", "fetch", ...PEERS];
  let output: DriverResult;
  if (phase === "calls") output = { phase, result: await calls(url) };
  else if (phase === "delivery") output = { phase, result: await delivery(url) };
  else if (phase === "peers" && rest[0]) output = { phase, result: await peers(url, rest[0]) };
  else if (phase === "profile") output = { phase, result: await profile(url, rest[0] ?? "burst") };
  else if (phase === "memory" && subjects.includes(rest[0] ?? "library")) {
    output = { phase, result: await memory(url, (rest[0] ?? "library") as MemorySubject, rest[1]) };
  } else throw new Error(`unknown phase ${phase} ${rest.join(" ")}`);
  process.stdout.write(JSON.stringify(output) + "\n");
  process.exit(0);
}

await main();
