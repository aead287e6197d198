/**
 * Whether Segment's own libraries retry this status: 408, 410, 429, 460,
 * 5xx except 501 (not implemented) and 505 (HTTP version not supported), and
 * a 1xx, which is no final answer.
 */
export function isRetryableStatus(status: number): boolean {
  if (status < 200) return true; // not a final answer (an httpClient object may pass one on)
  if (status >= 500) return status !== 501 && status !== 505 && status < 600;
  return status === 408 || status === 410 || status === 429 || status === 460;
}

/**
 * The wait before retry number `retry` (0 for the first): `min` seconds
 * doubled each time, capped at `max`, with up to 25% of jitter added (and the
 * cap still holding), in milliseconds.
 */
export function backoff(retry: number, min: number, max: number, random: number = Math.random()): number {
  const base = Math.min(max, min * 2 ** retry);
  return Math.round(Math.min(max, base * (1 + random / 4)) * 1000);
}

/**
 * Parses `Retry-After` (delay-seconds or an HTTP date) into milliseconds from
 * `now`, or undefined when absent or unreadable.
 */
export function parseRetryAfter(value: string | null, now: number = Date.now()): number | undefined {
  if (value === null) return undefined;
  const text = value.trim();
  if (/^\d+(\.\d+)?$/.test(text)) return Math.round(Number(text) * 1000);
  const date = Date.parse(text);
  return Number.isNaN(date) ? undefined : Math.max(0, date - now);
}
