/**
 * What analytics.js (Segment's browser SDK, `@segment/analytics-next`) needs
 * from the collector beside Segment's HTTP API: its one-letter endpoints, the
 * settings it loads from `cdnURL`, its metrics, and where each stored message
 * came from.
 */
import type { MessageSource } from "./types.ts";

/**
 * The ingestion endpoints under `/v1/`, each with the kind of body it takes: a message type (one message), or
 * "batch", "import" (batches), "metrics". analytics.js posts to `/v1/` + the first letter of the type (`t`, `i`,
 * `p`, `s`, `g`, `a`), batches to `/v1/b` and its metrics to `/v1/m`.
 */
export const ENDPOINTS: ReadonlyMap<string, string> = new Map([
  ["identify", "identify"],
  ["track", "track"],
  ["page", "page"],
  ["screen", "screen"],
  ["group", "group"],
  ["alias", "alias"],
  ["batch", "batch"],
  ["import", "import"],
  ["i", "identify"],
  ["t", "track"],
  ["p", "page"],
  ["s", "screen"],
  ["g", "group"],
  ["a", "alias"],
  ["b", "batch"],
  ["m", "metrics"],
]);

/** `/v1/projects/:writeKey/settings`, the path analytics.js loads its settings from, under `cdnURL`. */
export const SETTINGS_PATH = /^\/v1\/projects\/([^/]*)\/settings$/;

/** A Host header that can be written into settings as it is: a name or an address, and a port. */
const PLAIN_HOST = /^(\[[0-9a-fA-F:.]+\]|[A-Za-z0-9.-]+)(:\d{1,5})?$/;

/**
 * The settings analytics.js gets for `writeKey`, pointing it back at the collector reached as `host` (the
 * request's Host header when it is a plain host, else `fallback`): only the Segment.io destination (no device-mode
 * integration to download), over http. Metrics point at the collector too, with a sample rate of 0: analytics.js
 * sends them over https unless the page's own load options say `protocol: "http"` (it does not read the protocol
 * from these settings), and an https request to this http server fails in the page's console.
 */
export function settingsFor(writeKey: string, host: string | undefined, fallback: string): Record<string, unknown> {
  const at = host !== undefined && PLAIN_HOST.test(host.trim()) ? host.trim() : fallback;
  const apiHost = `${at}/v1`;
  return {
    integrations: {
      "Segment.io": {
        apiKey: writeKey,
        apiHost,
        protocol: "http",
        unbundledIntegrations: [],
        addBundledMetadata: true,
        maybeBundledConfigIds: {},
        versionSettings: { componentTypes: ["browser"] },
      },
    },
    plan: { track: { __default: { enabled: true, integrations: {} } } },
    edgeFunction: {},
    analyticsNextEnabled: true,
    middlewareSettings: {},
    enabledMiddleware: {},
    metrics: { sampleRate: 0, host: apiHost },
    legacyVideoPluginsEnabled: false,
    remotePlugins: [],
  };
}

/** Data points in a `/v1/m` body (`{ series: [...] }`); anything else holds none. */
export function countMetrics(body: unknown): number {
  const series = (body as { series?: unknown } | null)?.series;
  return Array.isArray(series) ? series.length : 0;
}

/** Characters of a User-Agent, a library name or version kept with each message. */
const SOURCE_TEXT = 256;

const short = (value: unknown): string | undefined =>
  typeof value === "string" && value !== "" ? value.slice(0, SOURCE_TEXT) : undefined;

/**
 * The sources of one request's messages: what the request tells (user agent, origin, endpoint) with each
 * message's `context.library`. Messages of one library share one object, so a batch costs one source, not one per
 * message.
 */
export class SourceMaker {
  #base: MessageSource;
  #last: MessageSource | undefined;
  /** The source's JSON, for the NDJSON line and the stream. */
  json = "";

  constructor(endpoint: string, userAgent: string | undefined, origin: string | undefined) {
    const base: MessageSource = { userAgent: short(userAgent), origin: origin?.slice(0, SOURCE_TEXT), endpoint };
    if (base.userAgent === undefined) delete base.userAgent;
    if (base.origin === undefined) delete base.origin;
    this.#base = base;
  }

  /** The source of `message`; `json` is its JSON afterwards. */
  of(message: Record<string, unknown>): MessageSource {
    const context = message.context;
    const library = typeof context === "object" && context !== null
      ? (context as { library?: unknown }).library
      : undefined;
    const name = typeof library === "object" && library !== null
      ? short((library as { name?: unknown }).name)
      : undefined;
    const version = name === undefined ? undefined : short((library as { version?: unknown }).version);
    const last = this.#last;
    if (last !== undefined && last.library === name && last.version === version) return last;
    let source: MessageSource = this.#base;
    if (name !== undefined) {
      source = version === undefined ? { library: name, ...this.#base } : { library: name, version, ...this.#base };
    }
    this.#last = source;
    this.json = JSON.stringify(source);
    return source;
  }
}
