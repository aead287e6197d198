import { headerOf, readAnswer, send } from "./http.ts";
import type { HttpRequestEvent, HttpResponseEvent } from "./emitter.ts";
import { proxySupport, type Settings } from "./options.ts";
import { redact, REDACTED } from "./redact.ts";
import type { Stopper } from "./scheduler.ts";
import { isRetryableStatus, parseRetryAfter } from "./retry.ts";
import type { FetchFn, HttpClient, HttpClientResponse } from "./types.ts";
import { LIBRARY_NAME, VERSION } from "./version.ts";

/** What one request came to. */
export type Outcome =
  | { ok: true; status: number }
  | {
    ok: false;
    reason: "http_status" | "network" | "timeout";
    status?: number;
    retryable: boolean;
    /** Milliseconds the server asked to wait (Retry-After). */
    retryAfter?: number;
    /** What went wrong, for the error message (the write key already redacted). */
    detail: string;
    cause?: unknown;
  };

/** Who hears about requests and answers (analytics-node's `http_request` / `http_response`). */
export interface Observer {
  request?: (event: HttpRequestEvent) => void;
  response?: (event: HttpResponseEvent) => void;
}

/** The most of an answer that is read: a Segment answer is a few bytes; the rest is never buffered. */
export const MAX_ANSWER_BYTES = 4096;

const encoder = new TextEncoder();
const decoder = new TextDecoder();

/** `@tally/analytics/0.1.0 Deno/2.9.6`, naming the runtime where it tells. */
export const USER_AGENT: string = (() => {
  const agent = (globalThis as { navigator?: { userAgent?: string } }).navigator?.userAgent;
  const node = (globalThis as { process?: { versions?: { node?: string } } }).process?.versions?.node;
  const runtime = agent && !agent.startsWith("Mozilla/") ? agent : node ? `Node.js/${node}` : "";
  return `${LIBRARY_NAME}/${VERSION}${runtime ? ` ${runtime}` : ""}`;
})();

let lastKey: string | undefined;
let lastAuth = "";

/** `Basic base64(writeKey + ":")`, from the key's UTF-8 bytes (the last one is remembered). */
export function basicAuth(writeKey: string): string {
  if (writeKey === lastKey) return lastAuth;
  let binary = "";
  for (const byte of encoder.encode(writeKey + ":")) binary += String.fromCharCode(byte);
  [lastKey, lastAuth] = [writeKey, `Basic ${btoa(binary)}`];
  return lastAuth;
}

/** Gzips `data` with the web-standard CompressionStream. */
export async function gzip(data: string | Uint8Array<ArrayBuffer>): Promise<Uint8Array<ArrayBuffer>> {
  const stream = new Blob([data]).stream().pipeThrough(new CompressionStream("gzip"));
  return new Uint8Array(await new Response(stream).arrayBuffer());
}

const snippet = (text: string): string => {
  const line = text.replace(/\s+/g, " ").trim();
  return line.length > 200 ? line.slice(0, 200) + "…" : line;
};

function headerRecord(response: HttpClientResponse): Record<string, string> {
  const out: Record<string, string> = {};
  const headers = response.headers;
  if (headers == null) return out;
  const entries = typeof (headers as Headers).entries === "function"
    ? (headers as Headers).entries()
    : Object.entries(headers);
  for (const [key, value] of entries) if (value !== undefined) out[key.toLowerCase()] = String(value);
  return out;
}

const isHttpClient = (transport: unknown): transport is HttpClient =>
  typeof transport === "object" && transport !== null;

let denoProxy: { url: string; client: unknown } | undefined;

/** The extra fetch init that routes a request through `proxy` on this runtime. */
function proxyInit(proxy: string): Record<string, unknown> {
  if (proxySupport() === "bun") return { proxy };
  if (denoProxy?.url !== proxy) {
    const deno = (globalThis as { Deno?: { createHttpClient(o: unknown): unknown } }).Deno!;
    denoProxy = { url: proxy, client: deno.createHttpClient({ proxy: { url: proxy } }) };
  }
  return { client: denoProxy.client };
}

/**
 * POSTs one batch body and classifies the answer; never throws. A 2xx whose
 * JSON says it failed (`{"success":false}`, Jitsu's `{"ok":false}`) is a
 * failure; a redirect is never followed (it could turn the POST into a GET
 * that drops the batch, or carry the write key to another host).
 */
export async function post(
  body: Uint8Array<ArrayBuffer>,
  json: Uint8Array<ArrayBuffer>,
  settings: Settings,
  authorization: string | undefined,
  retry: number,
  stop: Stopper,
  observer: Observer | undefined,
): Promise<Outcome> {
  const transport: FetchFn | HttpClient | undefined = settings.fetch ?? globalThis.fetch;
  if (transport === undefined || (typeof transport !== "function" && !isHttpClient(transport))) {
    return {
      ok: false,
      reason: "network",
      retryable: false,
      detail: "this runtime has no global fetch; pass { fetch } to new Analytics()",
    };
  }
  const key = settings.writeKey;
  const url = settings.host + settings.path;
  const headers: Record<string, string> = {
    "Content-Type": "application/json",
    "User-Agent": USER_AGENT,
  };
  if (authorization !== undefined) headers.Authorization = authorization;
  if (settings.gzip) headers["Content-Encoding"] = "gzip";
  if (retry > 0) headers["X-Retry-Count"] = String(retry);

  let sentText: string | undefined;
  const sent = (): string => sentText ??= redactBody(decoder.decode(json), key);
  if (observer?.request) {
    const shown = { ...headers };
    if (shown.Authorization !== undefined) shown.Authorization = shown.Authorization.replace(/ .*/, ` ${REDACTED}`);
    observer.request({ url, method: "POST", headers: shown, body: sent() });
  }

  const controller = new AbortController();
  let timedOut = false;
  const timer = settings.timeout > 0
    ? setTimeout(() => {
      timedOut = true;
      controller.abort();
    }, settings.timeout * 1000)
    : undefined;
  const off = stop.onStop(() => controller.abort());
  try {
    // A fetch or client you pass gets the JSON text (gzip off), as analytics-node's httpClient does; the built-in fetch gets the bytes.
    const response = await send(transport, {
      url,
      headers,
      body: settings.fetch === undefined || settings.gzip ? body : decoder.decode(json),
      timeoutMs: settings.timeout * 1000,
      signal: controller.signal,
      init: settings.proxy === undefined ? undefined : proxyInit(settings.proxy),
    });
    const status = response.status;
    const text = await readAnswer(response, MAX_ANSWER_BYTES);
    const statusText = response.statusText ?? "";
    observer?.response?.({ status, statusText, url, body: sent(), headers: headerRecord(response) });
    const shown = (answer: string): string => snippet(redact(answer, key));
    if (status >= 200 && status < 300) {
      if (!saysFailed(text)) return { ok: true, status };
      return {
        ok: false,
        reason: "http_status",
        status,
        retryable: false,
        detail: `the server answered ${status} but its body says it failed: ${shown(text)}`,
      };
    }
    if (status >= 300 && status < 400 || status === 0) {
      const location = headerOf(response, "location");
      return {
        ok: false,
        reason: "http_status",
        status,
        retryable: false,
        detail: `the server answered ${status} ${statusText}`.trimEnd() +
          (location ? ` redirecting to ${snippet(redact(location, key))}` : " (a redirect)") +
          "; redirects are not followed, so set host to the address the batch endpoint really has",
      };
    }
    return {
      ok: false,
      reason: "http_status",
      status,
      retryable: isRetryableStatus(status),
      retryAfter: parseRetryAfter(headerOf(response, "retry-after")),
      detail: `the server answered ${status} ${statusText}`.trimEnd() + (text ? `: ${shown(text)}` : ""),
    };
  } catch (cause) {
    if (timedOut) {
      return {
        ok: false,
        reason: "timeout",
        retryable: true,
        detail: `no answer within ${settings.timeout} s`,
        cause,
      };
    }
    const detail = stop.stopped
      ? "the request was aborted"
      : `the request failed: ${redact(String((cause as Error)?.message ?? cause), key)}`;
    // Deno without --allow-net for the host: no retry can succeed.
    const name = (cause as Error)?.name;
    const denied = name === "NotCapable" || name === "PermissionDenied";
    return { ok: false, reason: "network", retryable: !denied, detail, cause };
  } finally {
    if (timer !== undefined) clearTimeout(timer);
    off();
  }
}

/** The sent body as listeners see it: the write key field redacted. */
function redactBody(text: string, key: string | undefined): string {
  if (key === undefined) return text;
  const field = `,"writeKey":${JSON.stringify(key)}}`;
  return text.endsWith(field) ? text.slice(0, -field.length) + `,"writeKey":"${REDACTED}"}` : text;
}

function saysFailed(text: string): boolean {
  const start = text.trimStart();
  if (!start.startsWith("{") || !start.includes("false")) return false; // Segment's usual answer is {"success":true}
  try {
    const answer = JSON.parse(start);
    return answer?.success === false || answer?.ok === false;
  } catch {
    return false;
  }
}
