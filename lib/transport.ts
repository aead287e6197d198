import type { Settings } from "./options.ts";
import type { Stopper } from "./scheduler.ts";
import { isRetryableStatus, parseRetryAfter } from "./retry.ts";
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
    /** What went wrong, for the error message. */
    detail: string;
    cause?: unknown;
  };

const encoder = new TextEncoder();

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

/**
 * POSTs one batch body and classifies the answer; never throws. A 2xx whose
 * JSON says it failed (`{"success":false}`, Jitsu's `{"ok":false}`) is a failure.
 */
export async function post(
  body: Uint8Array<ArrayBuffer>,
  settings: Settings,
  retry: number,
  stop: Stopper,
): Promise<Outcome> {
  const fetch = settings.fetch ?? globalThis.fetch;
  if (typeof fetch !== "function") {
    return {
      ok: false,
      reason: "network",
      retryable: false,
      detail: "this runtime has no global fetch; pass { fetch } to new Analytics()",
    };
  }
  const headers: Record<string, string> = {
    "Content-Type": "application/json",
    "User-Agent": USER_AGENT,
  };
  if (settings.writeKey !== undefined) headers.Authorization = basicAuth(settings.writeKey);
  if (settings.gzip) headers["Content-Encoding"] = "gzip";
  if (retry > 0) headers["X-Retry-Count"] = String(retry);

  const controller = new AbortController();
  let timedOut = false;
  const timer = setTimeout(() => {
    timedOut = true;
    controller.abort();
  }, settings.timeout * 1000);
  const off = stop.onStop(() => controller.abort());
  try {
    const response = await fetch(settings.host + settings.path, {
      method: "POST",
      headers,
      body,
      signal: controller.signal,
    });
    const text = await response.text();
    const status = response.status;
    if (status >= 200 && status < 300) {
      const failed = text.startsWith("{") && saysFailed(text);
      if (!failed) return { ok: true, status };
      return {
        ok: false,
        reason: "http_status",
        status,
        retryable: false,
        detail: `the server answered ${status} but its body says it failed: ${snippet(text)}`,
      };
    }
    return {
      ok: false,
      reason: "http_status",
      status,
      retryable: isRetryableStatus(status),
      retryAfter: parseRetryAfter(response.headers.get("Retry-After")),
      detail: `the server answered ${status} ${response.statusText}${text ? `: ${snippet(text)}` : ""}`.trimEnd(),
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
      : `the request failed: ${(cause as Error)?.message ?? cause}`;
    // Deno without --allow-net for the host: no retry can succeed.
    const name = (cause as Error)?.name;
    const denied = name === "NotCapable" || name === "PermissionDenied";
    return { ok: false, reason: "network", retryable: !denied, detail, cause };
  } finally {
    clearTimeout(timer);
    off();
  }
}

function saysFailed(text: string): boolean {
  if (!text.includes("false")) return false; // Segment's usual answer is {"success":true}
  try {
    const answer = JSON.parse(text);
    return answer?.success === false || answer?.ok === false;
  } catch {
    return false;
  }
}
