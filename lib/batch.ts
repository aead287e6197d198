import type { Batch } from "./queue.ts";
import { byteLength } from "./serialize.ts";

/** The largest request body Tally sends (Segment's limit is 500 KB). */
export const MAX_BODY_BYTES = 512000;

const SAMPLE_SENT_AT = "2000-01-01T00:00:00.000Z";
const encoder = new TextEncoder();
const HEAD = encoder.encode('{"batch":[');

/** The text after the messages: `],"sentAt":"...","writeKey":"..."}`. */
function tail(sentAt: string, writeKey: string | undefined): string {
  const key = writeKey === undefined ? "" : `,"writeKey":${JSON.stringify(writeKey)}`;
  return `],"sentAt":"${sentAt}"${key}}`;
}

/** Bytes a body spends outside its messages (for a given write key), commas aside. */
export function envelopeBytes(writeKey: string | undefined): number {
  return HEAD.length + byteLength(tail(SAMPLE_SENT_AT, writeKey));
}

/**
 * The request body, `{"batch":[...],"sentAt":"...","writeKey":"..."}`, as
 * UTF-8 bytes: the messages are already encoded in the queue's chunks, each
 * followed by a comma, so neighbours are copied as one range.
 */
export function encodeBody(batch: Batch, sentAt: string, writeKey: string | undefined): Uint8Array<ArrayBuffer> {
  const { chunks, starts, bytes } = batch;
  const n = bytes.length;
  const end = encoder.encode(tail(sentAt, writeKey));
  let size = HEAD.length + end.length + n - 1;
  for (let i = 0; i < n; i++) size += bytes[i];
  const body = new Uint8Array(size);
  body.set(HEAD);
  let at = HEAD.length;
  for (let i = 0; i < n;) {
    // A run: messages stored back to back (with their commas) in one chunk.
    const chunk = chunks[i];
    const from = starts[i];
    let to = from + bytes[i];
    let j = i + 1;
    while (j < n && chunks[j] === chunk && starts[j] === to + 1) to = starts[j] + bytes[j++];
    if (j < n) to++; // the stored comma after the run separates it from the next
    body.set(chunk.subarray(from, to), at);
    at += to - from;
    i = j;
  }
  body.set(end, at);
  return body;
}
