import { byteLength } from "./serialize.ts";

/** The largest request body Tally sends (Segment's limit is 500 KB). */
export const MAX_BODY_BYTES = 512000;

const SAMPLE_SENT_AT = "2000-01-01T00:00:00.000Z";

/** Bytes a body spends outside its messages (for a given write key), commas aside. */
export function envelopeBytes(writeKey: string | undefined): number {
  return byteLength(encodeBody([], SAMPLE_SENT_AT, writeKey));
}

/**
 * The request body: `{"batch":[...],"sentAt":"...","writeKey":"..."}`, built
 * by joining the already-serialized messages, so nothing is serialized twice.
 */
export function encodeBody(messages: string[], sentAt: string, writeKey: string | undefined): string {
  const key = writeKey === undefined ? "" : `,"writeKey":${JSON.stringify(writeKey)}`;
  return `{"batch":[${messages.join(",")}],"sentAt":"${sentAt}"${key}}`;
}
