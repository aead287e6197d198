import { checkOAuthSettings, type OAuthSettings } from "./oauth.ts";
import { isStorage, type Storage } from "./storage.ts";
import type { ErrorHandler, FetchFn, HttpClient, Logger } from "./types.ts";

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
   * Any Segment-compatible endpoint (Segment EU, RudderStack, Jitsu, `tally serve`);
   * `null` restores the default (analytics-python's `host = None`).
   * @default {"https://api.segment.io"}
   */
  host?: string | null;
  /**
   * The batch path on `host` (analytics-node's `path`), with or without its
   * leading slash; a trailing slash is dropped.
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
  /** analytics-node's older name for `uploadSize`. */
  maxEventsInBatch?: number;
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
   * Seconds before one request is abandoned (and retried); `0`: no limit.
   * @default {15}
   */
  timeout?: number;
  /** analytics-node's name for `timeout`, in milliseconds (`0`: no limit). */
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
   * Seconds a program that ends (without calling `close()`) is kept alive to
   * deliver what is still queued; then the rest is reported as `closed`. Well
   * under a container's 30-second grace period.
   * @default {10}
   */
  exitTimeout?: number;
  /**
   * Seconds one batch may spend retrying before it is given up (analytics-node's option).
   * @default {43200}
   */
  maxTotalBackoffDuration?: number;
  /**
   * Seconds the client may stay paused by 429 answers with `Retry-After`
   * before the waiting batches are given up (analytics-node's option).
   * @default {43200}
   */
  maxRateLimitDuration?: number;
  /**
   * The transport: a fetch-compatible function, or analytics-node's
   * `{ makeRequest(options) }` HTTP client object.
   * @default {globalThis.fetch}
   */
  fetch?: FetchFn | HttpClient;
  /** analytics-node's name for `fetch`: a fetch-compatible function or a `{ makeRequest }` object. */
  httpClient?: FetchFn | HttpClient;
  /**
   * An HTTP proxy for every request, such as `"http://proxy.internal:3128"`
   * (analytics-python's `proxies`). Deno and Bun only: Node's and Workers'
   * built-in fetch take no proxy, so there pass `{ fetch }` (see the README).
   */
  proxy?: string;
  /** OAuth for server sources (analytics-node's `oauthSettings`): batches carry a Bearer token. */
  oauthSettings?: OAuthSettings;
  /** analytics-python's `oauth_client_id` (with the other `oauth*` options, in place of `oauthSettings`). */
  oauthClientId?: string;
  /** analytics-python's `oauth_client_key`: the PEM private key. */
  oauthClientKey?: string;
  /** analytics-python's `oauth_key_id`. */
  oauthKeyId?: string;
  /** analytics-python's `oauth_auth_server`. */
  oauthAuthServer?: string;
  /** analytics-python's `oauth_scope`. */
  oauthScope?: string;
  /**
   * A disk queue: each message is written to a file before the call returns,
   * and what a crashed or killed process left is sent at the next start.
   * Pass `fileStorage(dir)` from `@tally/analytics/storage` (see the README's
   * "Durable delivery"). Without it, the queue is in memory.
   */
  storage?: Storage;
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
  exitTimeout: number;
  maxTotalBackoffDuration: number;
  maxRateLimitDuration: number;
  fetch: FetchFn | HttpClient | undefined;
  proxy: string | undefined;
  oauthSettings: OAuthSettings | undefined;
  storage: Storage | undefined;
}

/** How this runtime's fetch takes a proxy: Deno through an HTTP client, Bun through an option. */
export function proxySupport(): "deno" | "bun" | undefined {
  const g = globalThis as { Deno?: { createHttpClient?: unknown }; Bun?: unknown };
  if (typeof g.Deno?.createHttpClient === "function") return "deno";
  if (g.Bun !== undefined) return "bun";
  return undefined;
}

/** The largest batch Segment accepts; larger ones are dropped silently. */
export const MAX_BATCH_MESSAGES = 2500;

export const DEFAULTS: Readonly<Omit<Settings, "logger" | "fetch" | "proxy" | "oauthSettings" | "storage">> = {
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
  exitTimeout: 10,
  maxTotalBackoffDuration: 43200,
  maxRateLimitDuration: 43200,
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
    if (value == null) return DEFAULTS.host;
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
    if (value == null) return DEFAULTS.path;
    if (typeof value !== "string" || /[?#\s]/.test(value)) {
      throw new TypeError(`Cannot set ${name}: expected a URL path such as "/v1/batch", got ${describe(value)}`);
    }
    // analytics-node takes "v1/batch", "/v1/batch" and "/v1/batch/" alike.
    return "/" + value.split("/").filter((part) => part !== "").join("/");
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
  timeout: seconds(0, true),
  minRetryDelay: seconds(0, true),
  maxRetryDelay: seconds(0, true),
  exitTimeout: seconds(0, true),
  maxTotalBackoffDuration: seconds(0, true),
  maxRateLimitDuration: seconds(0, true),
  fetch: (name, value) => {
    if (typeof value === "function") return value;
    const client = value as Partial<HttpClient> | null;
    if (typeof client === "object" && client !== null && typeof client.makeRequest === "function") return value;
    throw new TypeError(
      `Cannot set ${name}: expected a fetch-compatible function or an object with makeRequest(), got ${
        describe(value)
      }`,
    );
  },
  proxy: (name, value) => {
    if (value == null) return undefined;
    if (typeof value !== "string") {
      throw new TypeError(`Cannot set ${name}: expected a proxy URL string, got ${describe(value)}`);
    }
    let url: URL;
    try {
      url = new URL(value);
    } catch {
      // A proxy URL may carry credentials: never echo it.
      throw new TypeError(`Cannot set ${name}: it is not a URL (try "http://proxy.internal:3128")`);
    }
    if (url.protocol !== "http:" && url.protocol !== "https:") {
      throw new TypeError(`Cannot set ${name}: expected an http: or https: proxy URL, got ${url.protocol}`);
    }
    if (proxySupport() === undefined) {
      throw new TypeError(
        `Cannot set ${name}: this runtime's fetch takes no proxy (Deno and Bun do; Node and Workers do not); ` +
          "pass { fetch } that sends through your proxy instead (see the README's Proxies section)",
      );
    }
    return value;
  },
  oauthSettings: (_name, value) => value == null ? undefined : checkOAuthSettings(value),
  storage: (name, value) => {
    if (value == null) return undefined;
    if (!isStorage(value)) {
      throw new TypeError(
        `Cannot set ${name}: expected the object that fileStorage(dir) returns ` +
          `(imported from "@tally/analytics/storage"), got ${describe(value)}`,
      );
    }
    return value;
  },
};

/** Validates one option, by its canonical name, and returns the value to store. */
export function checkSetting<K extends keyof Settings>(name: K, value: unknown): Settings[K] {
  return CHECKS[name](name, value) as Settings[K];
}

/** analytics-node's names: canonical name, and how to convert the alias's value. */
const ALIASES: Record<string, [keyof Settings, (value: unknown) => unknown, Check?]> = {
  flushAt: ["uploadSize", (v) => v],
  maxEventsInBatch: ["uploadSize", (v) => v],
  flushInterval: ["uploadInterval", (v) => v, milliseconds(0, true)],
  disable: ["send", (v) => typeof v === "boolean" ? !v : v],
  httpRequestTimeout: ["timeout", (v) => v, milliseconds(0, true)],
  httpClient: ["fetch", (v) => v],
};

/** analytics-python's flat OAuth options, and their names in `oauthSettings`. */
const OAUTH_FIELDS: Record<string, keyof OAuthSettings> = {
  oauthClientId: "clientId",
  oauthClientKey: "clientKey",
  oauthKeyId: "keyId",
  oauthAuthServer: "authServer",
  oauthScope: "scope",
};

/** Validates constructor options, resolves aliases and fills in defaults. */
export function resolveOptions(options: AnalyticsOptions): Settings {
  if (typeof options !== "object" || options === null || Array.isArray(options)) {
    throw new TypeError(`Cannot create Analytics: expected an options object, got ${describe(options)}`);
  }
  const settings: Settings = {
    ...DEFAULTS,
    logger: console,
    fetch: undefined,
    proxy: undefined,
    oauthSettings: undefined,
    storage: undefined,
  };
  const given = new Map<string, string>();
  const oauth: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(options)) {
    if (value === undefined) continue;
    if (key in OAUTH_FIELDS) {
      oauth[OAUTH_FIELDS[key] as string] = value;
      continue;
    }
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
    const stored = alias?.[2] ? alias[2](key, value) : CHECKS[name](key, alias ? alias[1](value) : value);
    (settings as unknown as Record<string, unknown>)[name] = stored;
  }
  if (Object.keys(oauth).length > 0) {
    if (settings.oauthSettings !== undefined) {
      throw new TypeError("Cannot create Analytics: give oauthSettings or the oauth* options, not both");
    }
    settings.oauthSettings = checkOAuthSettings(oauth);
  }
  if (settings.minRetryDelay > settings.maxRetryDelay) {
    throw new RangeError("Cannot create Analytics: minRetryDelay is greater than maxRetryDelay");
  }
  return settings;
}
