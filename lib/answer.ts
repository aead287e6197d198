import type { HttpClientResponse } from "./types.ts";

const decoder = new TextDecoder();

/**
 * Reads at most `maxBytes` of an answer, then cancels the rest unread: an
 * endless or huge body costs nothing. Works on a fetch `Response` and on an
 * `HttpClient` object's answer (which may have only `text()`, or nothing).
 */
export async function readAnswer(response: HttpClientResponse, maxBytes: number): Promise<string> {
  const body = response.body;
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
