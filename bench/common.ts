/**
 * What the bench driver, the load generator and the orchestrator share: the
 * message inputs every runtime sends, and the shapes of the results the
 * drivers print. Web standards only, so it bundles for Node unchanged.
 *
 * @module
 */

/** Calls per burst: DESIGN.md section 5 measures 100k-call bursts. */
export const BURST = 100_000;

/** Messages per request, for the library (its default `uploadSize`) and for the fetch floor. */
export const BATCH = 100;

/** Measured rounds of the call-cost bench, after {@linkcode WARMUP_ROUNDS}. */
export const ROUNDS_CALLS = 7;

/** Measured rounds of the delivery bench (each a fetch floor, a burst and a paced run). */
export const ROUNDS_DELIVERY = 7;

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

/** The sink's counters, as `GET /stats` returns them. */
export interface SinkStats {
  requests: number;
  /** Messages counted in the bodies (occurrences of `"messageId":`). */
  messages: number;
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
}

/** Figures 2, 3 and 5. */
export interface DeliveryResult {
  rounds: number;
  floor: DeliveryRun[];
  burst: DeliveryRun[];
  paced: DeliveryRun[];
  gzip: { batches: number; messages: number; wireBytes: number; plainBytes: number };
}

/** Figure 4. */
export interface MemoryResult {
  /** What ran: the library's burst and delivery, or a floor for reference. */
  subject: "library" | "hold" | "fetch";
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
  | { phase: "memory"; result: MemoryResult };

/** The median of a list of numbers. */
export function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2;
}
