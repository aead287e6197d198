import type { ErrorHandler, FetchFn, Logger } from "./types.ts";

/**
 * Options of {@linkcode Analytics}; names are the seed's, camelCased, with analytics-node's as aliases.
 *
 * @example
 * ```ts
 * import { Analytics, type AnalyticsOptions } from "@tally/analytics";
 *
 * const options: AnalyticsOptions = {
 *   writeKey: "YOUR_WRITE_KEY",
 *   gzip: true,
 *   uploadSize: 500,
 *   uploadInterval: 5,
 *   onError: (error, messages) => console.error(error.message, messages.length),
 * };
 * const analytics = new Analytics(options);
 * await analytics.close();
 * ```
 */
export interface AnalyticsOptions {
  /** The source's write key; required to send. Never logged. */
  writeKey?: string;
  /**
   * Any Segment-compatible endpoint (Segment EU, RudderStack, Jitsu, `tally serve`).
   * @default {"https://api.segment.io"}
   */
  host?: string;
  /**
   * The batch path on `host` (analytics-node's `path`).
   * @default {"/v1/batch"}
   */
  path?: string;
  /**
   * Log what the client does through `logger` at debug level.
   * @default {false}
   */
  debug?: boolean;
  /**
   * Where log lines go.
   * @default {console}
   */
  logger?: Logger;
  /** Called with every batch of messages that will not be delivered, and why. */
  onError?: ErrorHandler | null;
  /**
   * `false`: validate and build messages, send nothing.
   * @default {true}
   */
  send?: boolean;
  /** analytics-node's name for `send: false`. */
  disable?: boolean;
  /**
   * No batching and no timer: each call starts its own request; `flush()` awaits them.
   * @default {false}
   */
  syncMode?: boolean;
  /**
   * Messages held; beyond it new messages are dropped and reported (`queue_full`).
   * @default {10000}
   */
  maxQueueSize?: number;
  /**
   * Messages per batch, 1 to 2500.
   * @default {100}
   */
  uploadSize?: number;
  /** analytics-node's name for `uploadSize`. */
  flushAt?: number;
  /**
   * Seconds after its first message that a batch goes out.
   * @default {0.5}
   */
  uploadInterval?: number;
  /** analytics-node's name for `uploadInterval`, in milliseconds. */
  flushInterval?: number;
  /**
   * Compress each request with gzip.
   * @default {false}
   */
  gzip?: boolean;
  /**
   * Retries per batch.
   * @default {10}
   */
  maxRetries?: number;
  /**
   * Seconds before one request is abandoned (and retried).
   * @default {15}
   */
  timeout?: number;
  /** analytics-node's name for `timeout`, in milliseconds. */
  httpRequestTimeout?: number;
  /**
   * Seconds before the first retry; each later retry waits twice as long, with jitter.
   * @default {0.5}
   */
  minRetryDelay?: number;
  /**
   * The longest wait between retries, in seconds; also caps `Retry-After`.
   * @default {60}
   */
  maxRetryDelay?: number;
  /**
   * The transport.
   * @default {globalThis.fetch}
   */
  fetch?: FetchFn;
  /** analytics-node's name for `fetch` (a fetch-compatible function). */
  httpClient?: FetchFn;
}

/** Options after aliases and defaults, as the client reads them. */
export interface Settings {
  writeKey: string | undefined;
  host: string;
  path: string;
  debug: boolean;
  logger: Logger;
  onError: ErrorHandler | undefined;
  send: boolean;
  syncMode: boolean;
  maxQueueSize: number;
  uploadSize: number;
  uploadInterval: number;
  gzip: boolean;
  maxRetries: number;
  timeout: number;
  minRetryDelay: number;
  maxRetryDelay: number;
  fetch: FetchFn | undefined;
}

/** The largest batch Segment accepts; larger ones are dropped silently. */
export const MAX_BATCH_MESSAGES = 2500;

export const DEFAULTS: Readonly<Omit<Settings, "logger" | "fetch">> = {
  writeKey: undefined,
  host: "https://api.segment.io",
  path: "/v1/batch",
  debug: false,
  onError: undefined,
  send: true,
  syncMode: false,
  maxQueueSize: 10000,
  uploadSize: 100,
  uploadInterval: 0.5,
  gzip: false,
  maxRetries: 10,
  timeout: 15,
  minRetryDelay: 0.5,
  maxRetryDelay: 60,
};

type Check = (name: string, value: unknown) => unknown;

const describe = (value: unknown): string =>
  value === null
    ? "null"
    : Array.isArray(value)
    ? "an array"
    : typeof value === "string"
    ? `the string ${JSON.stringify(value.length > 40 ? value.slice(0, 40) + "…" : value)}`
    : typeof value === "number" || typeof value === "boolean"
    ? `${typeof value} ${value}`
    : `a ${typeof value}`;

const boolean: Check = (name, value) => {
  if (typeof value !== "boolean") {
    throw new TypeError(`Cannot set ${name}: expected true or false, got ${describe(value)}`);
  }
  return value;
};

const integer = (min: number, max = Number.MAX_SAFE_INTEGER): Check => (name, value) => {
  if (typeof value !== "number" || !Number.isInteger(value)) {
    throw new TypeError(`Cannot set ${name}: expected an integer, got ${describe(value)}`);
  }
  if (value < min || value > max) {
    const range = max === Number.MAX_SAFE_INTEGER ? `at least ${min}` : `from ${min} to ${max}`;
    throw new RangeError(`Cannot set ${name}: expected ${range}, got ${value}`);
  }
  return value;
};

const duration = (unit: string, min: number, inclusive: boolean): Check => (name, value) => {
  if (typeof value !== "number" || !Number.isFinite(value)) {
    throw new TypeError(`Cannot set ${name}: expected a finite number of ${unit}, got ${describe(value)}`);
  }
  if (inclusive ? value < min : value <= min) {
    throw new RangeError(
      `Cannot set ${name}: expected ${inclusive ? "at least" : "more than"} ${min} ${unit}, got ${value}`,
    );
  }
  return value;
};
const seconds = (min: number, inclusive: boolean): Check => duration("seconds", min, inclusive);
/** analytics-node's millisecond options: checked as the caller wrote them, stored in seconds. */
const milliseconds = (min: number, inclusive: boolean): Check => (name, value) =>
  (duration("milliseconds", min, inclusive)(name, value) as number) / 1000;

const fn: Check = (name, value) => {
  if (typeof value !== "function") {
    throw new TypeError(`Cannot set ${name}: expected a function, got ${describe(value)}`);
  }
  return value;
};

const CHECKS: Record<keyof Settings, Check> = {
  writeKey: (name, value) => {
    if (value === undefined) return undefined;
    if (typeof value !== "string" || value.trim() === "") {
      // The value itself is never echoed: it may be a real key in the wrong place.
      throw new TypeError(`Cannot set ${name}: expected a non-empty string`);
    }
    return value;
  },
  host: (name, value) => {
    if (typeof value !== "string") {
      throw new TypeError(`Cannot set ${name}: expected a URL string, got ${describe(value)}`);
    }
    let url: URL;
    try {
      url = new URL(value);
    } catch {
      throw new TypeError(`Cannot set ${name}: ${describe(value)} is not a URL (try "https://api.segment.io")`);
    }
    if (url.protocol !== "http:" && url.protocol !== "https:") {
      throw new TypeError(`Cannot set ${name}: expected an http: or https: URL, got ${url.protocol}`);
    }
    return value.replace(/\/+$/, "");
  },
  path: (name, value) => {
    if (typeof value !== "string" || !value.startsWith("/")) {
      throw new TypeError(`Cannot set ${name}: expected a path starting with "/", got ${describe(value)}`);
    }
    return value;
  },
  debug: boolean,
  logger: (name, value) => {
    const l = value as Partial<Logger> | null;
    if (
      typeof l !== "object" || l === null ||
      !["debug", "info", "warn", "error"].every((k) => typeof l[k as keyof Logger] === "function")
    ) {
      throw new TypeError(`Cannot set ${name}: expected an object with debug, info, warn and error functions`);
    }
    return value;
  },
  onError: (name, value) => value == null ? undefined : fn(name, value),
  send: boolean,
  syncMode: boolean,
  maxQueueSize: integer(1),
  uploadSize: integer(1, MAX_BATCH_MESSAGES),
  uploadInterval: seconds(0, true),
  gzip: boolean,
  maxRetries: integer(0),
  timeout: seconds(0, false),
  minRetryDelay: seconds(0, true),
  maxRetryDelay: seconds(0, true),
  fetch: fn,
};

/** Validates one option, by its canonical name, and returns the value to store. */
export function checkSetting<K extends keyof Settings>(name: K, value: unknown): Settings[K] {
  return CHECKS[name](name, value) as Settings[K];
}

/** analytics-node's names: canonical name, and how to convert the alias's value. */
const ALIASES: Record<string, [keyof Settings, (value: unknown) => unknown, Check?]> = {
  flushAt: ["uploadSize", (v) => v],
  flushInterval: ["uploadInterval", (v) => v, milliseconds(0, true)],
  disable: ["send", (v) => typeof v === "boolean" ? !v : v],
  httpRequestTimeout: ["timeout", (v) => v, milliseconds(0, false)],
  httpClient: ["fetch", (v) => v],
};

/** Validates constructor options, resolves aliases and fills in defaults. */
export function resolveOptions(options: AnalyticsOptions): Settings {
  if (typeof options !== "object" || options === null || Array.isArray(options)) {
    throw new TypeError(`Cannot create Analytics: expected an options object, got ${describe(options)}`);
  }
  const settings: Settings = { ...DEFAULTS, logger: console, fetch: undefined };
  const given = new Map<string, string>();
  for (const [key, value] of Object.entries(options)) {
    if (value === undefined) continue;
    const alias = ALIASES[key];
    const name = alias ? alias[0] : key as keyof Settings;
    if (!alias && !(key in CHECKS)) {
      throw new TypeError(`Cannot create Analytics: unknown option "${key}"`);
    }
    const earlier = given.get(name);
    if (earlier !== undefined) {
      throw new TypeError(`Cannot create Analytics: "${earlier}" and "${key}" are the same option; set one`);
    }
    given.set(name, key);
    if (alias && key === "httpClient" && typeof value === "object" && value !== null) {
      throw new TypeError(
        "Cannot set httpClient: Tally takes a fetch-compatible function; pass { fetch } instead of an HTTPClient object",
      );
    }
    const stored = alias?.[2] ? alias[2](key, value) : CHECKS[name](key, alias ? alias[1](value) : value);
    (settings as unknown as Record<string, unknown>)[name] = stored;
  }
  if (settings.minRetryDelay > settings.maxRetryDelay) {
    throw new RangeError("Cannot create Analytics: minRetryDelay is greater than maxRetryDelay");
  }
  return settings;
}
