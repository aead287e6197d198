import type { FetchFn, HttpClient, HttpClientResponse } from "./types.ts";

const decoder = new TextDecoder();

/** One POST, as {@linkcode send} takes it. */
export interface Post {
  url: string;
  headers: Record<string, string>;
  body: string | Uint8Array<ArrayBuffer>;
  /** What an `HttpClient` object is told its timeout is, in ms (`0`: none); `signal` enforces it. */
  timeoutMs: number;
  /** Aborts the request (timeout, close); also ends the wait on a client object that ignores it. */
  signal: AbortSignal;
  /** More fetch init (a proxy's client or option). */
  init?: Record<string, unknown>;
}

/**
 * POSTs through a fetch function or an analytics-node `{ makeRequest }`
 * object. A redirect is never followed: it could turn the POST into a GET that
 * drops the body, or carry the body and its credentials to another host.
 */
export function send(transport: FetchFn | HttpClient, post: Post): Promise<HttpClientResponse> {
  const { url, headers, body, signal } = post;
  if (typeof transport === "function") {
    return transport(url, { method: "POST", headers, body, signal, redirect: "manual", ...post.init });
  }
  const aborted = new Promise<never>((_, reject) => {
    signal.addEventListener("abort", () => reject(new Error("the request was aborted")), { once: true });
  });
  const request = { url, method: "POST" as const, headers, body, httpRequestTimeout: post.timeoutMs, signal };
  return Promise.race([transport.makeRequest(request), aborted]);
}

/**
 * Reads at most `maxBytes` of an answer, then cancels the rest unread: an
 * endless or huge body costs nothing. Works on a fetch `Response` and on an
 * `HttpClient` object's answer (which may have only `text()`, or nothing).
 */
export async function readAnswer(response: HttpClientResponse, maxBytes: number): Promise<string> {
  const body = response.body;
  // A short answer with a length (Segment's {"success":true}) is read whole: fetch keeps to its Content-Length,
  // and the native read is far cheaper than a reader loop.
  const length = Number(headerOf(response, "content-length") ?? NaN);
  if (length <= maxBytes && typeof response.text === "function") return (await response.text()).slice(0, maxBytes);
  if (body == null || typeof body.getReader !== "function") {
    if (typeof response.text !== "function") return "";
    return (await response.text()).slice(0, maxBytes);
  }
  const reader = body.getReader();
  const buffer = new Uint8Array(maxBytes);
  let size = 0;
  try {
    while (size < maxBytes) {
      const { done, value } = await reader.read();
      if (done) break;
      const take = Math.min(value.byteLength, maxBytes - size);
      buffer.set(value.subarray(0, take), size);
      size += take;
    }
  } finally {
    if (size >= maxBytes) void reader.cancel().catch(() => {});
    else reader.releaseLock();
  }
  return decoder.decode(buffer.subarray(0, size));
}

/** One response header, from a `Headers` or a plain object, by its lower-case name. */
export function headerOf(response: HttpClientResponse, name: string): string | null {
  const headers = response.headers;
  if (headers == null) return null;
  if (typeof (headers as Headers).get === "function") return (headers as Headers).get(name);
  for (const [key, value] of Object.entries(headers)) {
    if (key.toLowerCase() === name) return Array.isArray(value) ? value.join(", ") : value ?? null;
  }
  return null;
}
