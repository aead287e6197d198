/** The write key of an ingestion request, and its comparison with `--write-key` in constant time. */
import { Buffer } from "node:buffer";
import { createHash, timingSafeEqual } from "node:crypto";

/** The user name of `Authorization: Basic base64(user:password)`, or undefined. */
export function basicUser(header: string | undefined): string | undefined {
  if (header === undefined) return undefined;
  const match = /^Basic\s+([A-Za-z0-9+/=_-]+)\s*$/i.exec(header);
  if (!match) return undefined;
  const decoded = Buffer.from(match[1], "base64").toString("utf8");
  const colon = decoded.indexOf(":");
  return colon < 0 ? decoded : decoded.slice(0, colon);
}

const digest = (text: string): Buffer => createHash("sha256").update(text, "utf8").digest();

/**
 * Whether `given` is the write key `expected`, in time that does not depend on where the two differ: both are
 * hashed (SHA-256) and the digests, always 32 bytes, compared with `timingSafeEqual`. Anything but a string is no
 * key.
 */
export function sameKey(given: unknown, expected: string): boolean {
  if (typeof given !== "string") return false;
  return timingSafeEqual(digest(given), digest(expected));
}

/** `sameKey` with the expected key's digest computed once. */
export function keyChecker(expected: string): (given: unknown) => boolean {
  const want = digest(expected);
  return (given) => typeof given === "string" && timingSafeEqual(digest(given), want);
}
