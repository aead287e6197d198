/**
 * What the bench driver, the load generator and the orchestrator share: the
 * message inputs every runtime sends, and the shapes of the results the
 * drivers print. Web standards only, so it bundles for Node unchanged.
 *
 * @module
 */

/**
 * A number from the environment (`TALLY_BENCH_BURST`, `TALLY_BENCH_ROUNDS`), for quick runs while developing
 * the bench; unset, the DESIGN.md sizes. Read where the runtime lets it (the Deno driver gets
 * `--allow-env` for these two names only).
 */
function setting(name: string, fallback: number): number {
  const g = globalThis as {
    Deno?: { env: { get(name: string): string | undefined } };
    process?: { env: Record<string, string | undefined> };
  };
  let raw: string | undefined;
  try {
    raw = g.Deno ? g.Deno.env.get(name) : g.process?.env[name];
  } catch {
    raw = undefined;
  }
  const value = Number(raw);
  return raw && Number.isInteger(value) && value > 0 ? value : fallback;
}

/** Calls per burst: DESIGN.md section 5 measures 100k-call bursts (`TALLY_BENCH_BURST` for quick runs). */
export const BURST = setting("TALLY_BENCH_BURST", 100_000);

/** Messages per request, for the library (its default `uploadSize`), the fetch floor and every peer. */
export const BATCH = 100;

/** Measured rounds of the call-cost bench, after {@linkcode WARMUP_ROUNDS}. */
export const ROUNDS_CALLS = setting("TALLY_BENCH_ROUNDS", 7);

/** Measured rounds of the delivery bench (each a fetch floor, a burst and a paced run). */
export const ROUNDS_DELIVERY = setting("TALLY_BENCH_ROUNDS", 7);

/**
 * Measured rounds of the peers bench on Node (each: both floors, then Tally and every peer, burst and paced).
 * Fewer than Tally's own, as @segment/analytics-node alone takes about 25 s a round.
 */
export const ROUNDS_PEERS = setting("TALLY_BENCH_ROUNDS", 5);

/** Unmeasured rounds first (JIT, connection pools). */
export const WARMUP_ROUNDS = 1;

/** The write key every bench request carries (the sink accepts anything). */
export const WRITE_KEY = "bench-write-key";

/** The arguments of one `track()` call. */
export interface Input {
  userId: string;
  event: string;
  properties: Record<string, unknown>;
}

const EVENTS = [
  "Product Viewed",
  "Product Added",
  "Cart Viewed",
  "Checkout Started",
  "Order Completed",
  "Signed Up",
  "Song Played",
  "Video Played",
];
const SOURCES = ["web", "ios", "android"];

/**
 * A pool of typical `track()` inputs: a userId out of 200 users, one of eight
 * event names and five properties, drawn from a seeded generator so every
 * runtime and every run sends the same inputs.
 */
export function inputs(count = 1000): Input[] {
  let seed = 0x2545f491;
  const random = (): number => {
    // mulberry32
    seed = (seed + 0x6d2b79f5) | 0;
    let t = Math.imul(seed ^ (seed >>> 15), 1 | seed);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  const pick = <T>(list: T[]): T => list[Math.floor(random() * list.length)];
  const users = Array.from({ length: 200 }, () => `user_${Math.floor(random() * 900000) + 100000}`);
  return Array.from({ length: count }, () => ({
    userId: pick(users),
    event: pick(EVENTS),
    properties: {
      sku: `SKU-${Math.floor(random() * 90000) + 10000}`,
      price: Math.round(random() * 20000) / 100,
      quantity: 1 + Math.floor(random() * 5),
      currency: "USD",
      source: pick(SOURCES),
    },
  }));
}

/** `Basic base64(writeKey + ":")`, as Segment expects. */
export const AUTHORIZATION = `Basic ${btoa(WRITE_KEY + ":")}`;

/** The clients the bench runs on Node beside Tally, by their npm name. */
export const PEERS = ["@segment/analytics-node", "analytics-node", "posthog-node"] as const;

/** One of {@linkcode PEERS}. */
export type Peer = typeof PEERS[number];

/** What the bench runs: Tally or a peer. */
export type Client = "tally" | Peer;

/** The sink's counters, as `GET /stats` returns them. */
export interface SinkStats {
  requests: number;
  /** Messages counted in the bodies (their `"messageId"`, or `"uuid"` on PostHog's endpoints). */
  messages: number;
  /** Messages whose id the sink had already counted since its id set was last reset. */
  duplicates: number;
  /** Ids in the set now. */
  ids: number;
  /** Times the set outgrew its bound and started over (0 when every run resets it). */
  idResets: number;
  /** Request body bytes as they arrived. */
  wireBytes: number;
  /** Request body bytes after gunzip. */
  plainBytes: number;
  /** The sink's CPU time so far, in microseconds (user + system). */
  cpu: number;
  /** The sink's own clock, in milliseconds. */
  now: number;
}

/** Figure 1: the cost of one call, per round. */
export interface CallsResult {
  rounds: number;
  /** µs per call of the message floor, one value per measured round. */
  floor: number[];
  /** µs per positional `track(userId, event, properties)`. */
  positional: number[];
  /** µs per object-style `track({ userId, event, properties })`. */
  object: number[];
  /** Messages the sink counted against what the clients said they delivered. */
  delivered: number;
  expected: number;
}

/** One timed delivery run. */
export interface DeliveryRun {
  /** Wall milliseconds from the first call until everything was delivered. */
  ms: number;
  eventsPerSecond: number;
  /** Client CPU (user + system) per delivered event, in µs. */
  cpuPerEvent: number;
  /** Messages the sink counted during the run. */
  sinkMessages: number;
  /** Requests the sink answered during the run. */
  sinkRequests: number;
  /** Share of one core the sink used during the run (0..1). */
  sinkBusy: number;
  /** Messages the client reported as not delivered. */
  failed: number;
  /** Request body bytes as the sink received them, and after gunzip. */
  wireBytes: number;
  plainBytes: number;
  /** Messages the sink had already seen in this run (counted by id). */
  duplicates: number;
  /**
   * µs per call spent in the calls themselves: the synchronous loop of the burst, or the sum of the paced run's
   * 1000-call stretches (without the pauses).
   */
  callUs: number;
  /**
   * µs per call until a `setImmediate` after the burst's loop: the calls plus the promise jobs they queued (where a
   * client defers its per-call work, as posthog-node does). The same as {@linkcode callUs} for paced runs.
   */
  callSettledUs: number;
}

/** Figures 2, 3 and 5. */
export interface DeliveryResult {
  rounds: number;
  floor: DeliveryRun[];
  burst: DeliveryRun[];
  paced: DeliveryRun[];
  gzip: { batches: number; messages: number; wireBytes: number; plainBytes: number };
}

/** Bytes on the wire for typical track batches, gzip off and (where the client has it) on. */
export interface WireBytes {
  messages: number;
  plain: { wireBytes: number; requests: number };
  /** Undefined where the client cannot gzip. */
  gzip?: { wireBytes: number; plainBytes: number; requests: number };
}

/** The peers bench on Node: Tally and each peer, interleaved with both floors, in one process. */
export interface PeersResult {
  rounds: number;
  /** Versions as installed in bench/peers (and Tally's own). */
  versions: Record<Client, string>;
  /** µs per call of the message floor, per round. */
  messageFloor: number[];
  fetchFloor: DeliveryRun[];
  burst: Record<Client, DeliveryRun[]>;
  paced: Record<Client, DeliveryRun[]>;
  wire: Record<Client, WireBytes>;
}

/** What {@linkcode MemoryResult} measures: a client's burst and delivery, or a floor for reference. */
export type MemorySubject = "library" | "hold" | "fetch" | Peer;

/** Figure 4. */
export interface MemoryResult {
  /** What ran: the library's (or a peer's) burst and delivery, or a floor for reference. */
  subject: MemorySubject;
  /** RSS after loading the library, before the burst, in bytes. */
  baseline: number;
  /** The highest sampled RSS during the burst and its delivery, in bytes. */
  peak: number;
  /** When the peak was seen. */
  peakDuring: "burst" | "delivery";
  /** The kernel's high-water mark for the process, where the runtime reports it, in bytes. */
  maxRss: number | undefined;
  samples: number;
  delivered: number;
}

/** What a driver prints: one JSON line. */
export type DriverResult =
  | { phase: "calls"; result: CallsResult }
  | { phase: "delivery"; result: DeliveryResult }
  | { phase: "memory"; result: MemoryResult }
  | { phase: "peers"; result: PeersResult }
  | { phase: "profile"; result: DeliveryRun[] };

/** The median of a list of numbers. */
export function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2;
}
