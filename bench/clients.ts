/**
 * The clients the bench drives, behind one small interface: Tally, and on
 * Node its peers (@segment/analytics-node, the legacy analytics-node 6,
 * posthog-node) as installed in `bench/peers/node_modules` (`npm ci --prefix
 * bench/peers`; `bench/run.ts` does it when they are missing).
 *
 * The peers are loaded at run time with `createRequire`, from a directory
 * the orchestrator passes, and typed here by the little the bench uses, so
 * `deno check bench/` needs neither their packages nor their types.
 *
 * Every client gets the same settings where it has them: the sink as its
 * host, batches of {@linkcode BATCH}, a queue that holds the whole burst,
 * retries and timeouts left at their defaults, gzip off unless asked.
 *
 * @module
 */
import { readFileSync } from "node:fs";
import { Agent } from "node:http";
import { createRequire } from "node:module";
import { join } from "node:path";
import { Analytics, VERSION } from "../mod.ts";
import { BATCH, type Client, type Input, type Peer, WRITE_KEY } from "./common.ts";

/** One client as the bench drives it. */
export interface BenchClient {
  /** One call with the input, in the client's own usual shape. */
  track(input: Input): void;
  /** Resolves once everything tracked so far was delivered or reported failed. */
  drain(): Promise<void>;
  /** Failures the client reported so far (messages; posthog-node reports failed requests, counted as one each). */
  readonly failed: number;
  /** Delivers what is left, then releases timers and connections. */
  close(): Promise<void>;
}

/** What every client is set to. */
export interface ClientSettings {
  /** The sink, `http://127.0.0.1:PORT`. */
  url: string;
  /** Messages the queue must hold: a whole burst. */
  maxQueueSize: number;
  /** @default {false} */
  gzip?: boolean;
}

/** Whether the client can gzip its requests. */
export const GZIP: Record<Client, boolean> = {
  "tally": true,
  "@segment/analytics-node": false,
  "analytics-node": false,
  "posthog-node": true,
};

/** Tally, `track(userId, event, properties)`. */
export function tally(settings: ClientSettings): BenchClient {
  let failed = 0;
  const analytics = new Analytics({
    writeKey: WRITE_KEY,
    host: settings.url,
    maxQueueSize: settings.maxQueueSize,
    uploadSize: BATCH,
    gzip: settings.gzip ?? false,
    onError: (_error, messages) => void (failed += messages.length),
  });
  return {
    track: (input) => analytics.track(input.userId, input.event, input.properties),
    drain: () => analytics.flush().then(() => undefined),
    get failed() {
      return failed;
    },
    close: () => analytics.close().then(() => undefined),
  };
}

// The peers, typed by what the bench calls.

interface SegmentClient {
  track(message: { userId: string; event: string; properties: Record<string, unknown> }): void;
  flush(): Promise<void>;
  closeAndFlush(options?: { timeout?: number }): Promise<void>;
  on(event: "error", listener: (error: { code?: string }) => void): void;
}
interface SegmentModule {
  Analytics: new (settings: Record<string, unknown>) => SegmentClient;
}

type LegacyCallback = (error?: unknown) => void;
interface LegacyClient {
  track(message: { userId: string; event: string; properties: Record<string, unknown> }, done: LegacyCallback): void;
  flush(): Promise<unknown>;
  queue: unknown[];
  timer?: ReturnType<typeof setTimeout> | null;
}
type LegacyModule = new (writeKey: string, options: Record<string, unknown>) => LegacyClient;

interface PostHogClient {
  capture(message: { distinctId: string; event: string; properties: Record<string, unknown> }): void;
  flush(): Promise<void>;
  shutdown(timeoutMs?: number): Promise<void>;
  on(event: "error" | "flush", listener: (payload: unknown) => void): () => void;
}
interface PostHogModule {
  PostHog: new (apiKey: string, options: Record<string, unknown>) => PostHogClient;
}

const afterJobs = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

/** The peers installed in one directory (`bench/peers`). */
export class Peers {
  readonly #dir: string;
  readonly #require: (name: string) => unknown;

  constructor(dir: string) {
    this.#dir = dir;
    this.#require = createRequire(join(dir, "package.json"));
  }

  /** The installed version of a peer (its package.json, read from node_modules). */
  version(name: Peer): string {
    const file = join(this.#dir, "node_modules", name, "package.json");
    return (JSON.parse(readFileSync(file, "utf8")) as { version: string }).version;
  }

  /** A fresh client of a peer, or of Tally. */
  create(name: Client, settings: ClientSettings): BenchClient {
    if (name === "tally") return tally(settings);
    if (name === "@segment/analytics-node") return this.#segment(settings);
    if (name === "analytics-node") return this.#legacy(settings);
    return this.#posthog(settings);
  }

  /** @segment/analytics-node: `track({...})`; `flush()` waits for every pending event. It has no gzip. */
  #segment(settings: ClientSettings): BenchClient {
    const { Analytics: Segment } = this.#require("@segment/analytics-node") as SegmentModule;
    const client = new Segment({ writeKey: WRITE_KEY, host: settings.url, maxEventsInBatch: BATCH });
    let failed = 0;
    client.on("error", (error) => {
      if (error.code === "delivery_failure") failed++;
    });
    return {
      track: (input) => client.track({ userId: input.userId, event: input.event, properties: input.properties }),
      drain: () => client.flush(),
      get failed() {
        return failed;
      },
      close: () => client.closeAndFlush(),
    };
  }

  /**
   * analytics-node 6: `track({...}, callback)`; one shared callback counts what settled (it has no promise for
   * "everything"), `flush()` sends the rest. Its own keep-alive agent, so its sockets end with the run. No gzip.
   */
  #legacy(settings: ClientSettings): BenchClient {
    const Legacy = this.#require("analytics-node") as LegacyModule;
    const agent = new Agent({ keepAlive: true });
    const client = new Legacy(WRITE_KEY, {
      host: settings.url,
      flushAt: BATCH,
      axiosConfig: { httpAgent: agent },
      // Without a handler, every failed background flush is an unhandled rejection; failures are counted below.
      errorHandler: () => {},
    });
    let tracked = 0;
    let settled = 0;
    let failed = 0;
    let waiting: (() => void) | undefined;
    const done: LegacyCallback = (error) => {
      settled++;
      if (error) failed++;
      if (waiting && settled === tracked) waiting();
    };
    const drain = async () => {
      while (client.queue.length > 0) await client.flush();
      if (settled < tracked) await new Promise<void>((resolve) => waiting = resolve);
      waiting = undefined;
    };
    return {
      track: (input) => {
        tracked++;
        client.track({ userId: input.userId, event: input.event, properties: input.properties }, done);
      },
      drain,
      get failed() {
        return failed;
      },
      close: async () => {
        await drain();
        if (client.timer) clearTimeout(client.timer);
        agent.destroy();
      },
    };
  }

  /**
   * posthog-node: `capture({distinctId, event, properties})`, whose work runs in promise jobs after the call; the
   * 'flush' event counts what was sent, `flush()` is repeated until all of it was. Its queue is raised to the burst
   * (the default of 1000 drops the oldest), its batches to {@linkcode BATCH}. Gzip is its default; off unless asked.
   */
  #posthog(settings: ClientSettings): BenchClient {
    const { PostHog } = this.#require("posthog-node") as PostHogModule;
    const client = new PostHog(WRITE_KEY, {
      host: settings.url,
      flushAt: BATCH,
      maxBatchSize: BATCH,
      maxQueueSize: settings.maxQueueSize,
      disableCompression: !(settings.gzip ?? false),
    });
    let tracked = 0;
    let sent = 0;
    let failed = 0;
    client.on("flush", (messages) => void (sent += (messages as unknown[]).length));
    client.on("error", () => void failed++);
    const drain = async () => {
      for (let before = -1; sent < tracked && sent !== before;) {
        before = sent;
        await afterJobs();
        await client.flush().catch(() => {});
      }
    };
    return {
      track: (input) => {
        tracked++;
        client.capture({ distinctId: input.userId, event: input.event, properties: input.properties });
      },
      drain,
      get failed() {
        return failed;
      },
      close: async () => {
        await drain();
        await client.shutdown();
      },
    };
  }
}

/** Tally's version, for the report. */
export const TALLY_VERSION: string = VERSION;
