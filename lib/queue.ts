import { MAX_MESSAGE_BYTES } from "./serialize.ts";
import type { Callback } from "./types.ts";

/** Bytes per arena chunk: room for many messages, and always for the largest one. */
export const CHUNK_BYTES = 256 * 1024;
const COMMA = 0x2c;
/** What a taken message's chunk slot points at: the queue lets go of a chunk once its messages are taken. */
const RELEASED = new Uint8Array(0);

const encoder = new TextEncoder();
const decoder = new TextDecoder();

/**
 * A run of consecutive queued messages that travels in one request. Each
 * message is `bytes[i]` UTF-8 bytes at `starts[i]` in `chunks[i]`, followed
 * there by a comma, so neighbours in one chunk copy into a body in one go.
 */
export interface Batch {
  chunks: Uint8Array[];
  starts: number[];
  bytes: number[];
  /** Per-call callbacks by position in the batch, when any call passed one. */
  callbacks: Map<number, Callback> | undefined;
  /** The sequence number of the first message; the rest follow without gaps. */
  first: number;
}

/** The number of messages in `batch`. */
export const sizeOf = (batch: Batch): number => batch.bytes.length;

/** The JSON text of message `i` of `batch` (for callbacks and `onError`, off the hot path). */
export function textOf(batch: Batch, i: number): string {
  return decoder.decode(batch.chunks[i].subarray(batch.starts[i], batch.starts[i] + batch.bytes[i]));
}

/**
 * Encodes `json` as UTF-8 into `chunk` at `from`, keeping one byte after it
 * for the comma. Returns the bytes written; -1 when the message is over
 * {@linkcode MAX_MESSAGE_BYTES}; -2 when the chunk's tail is too short to
 * tell (start a fresh chunk and try again). Shared by both queues' arenas.
 */
export function encodeAt(chunk: Uint8Array, from: number, json: string): number {
  const room = chunk.length - from - 1;
  if (room <= 0) return -2;
  const view = chunk.subarray(from, from + Math.min(room, MAX_MESSAGE_BYTES + 1));
  const { read, written } = encoder.encodeInto(json, view);
  if (read === json.length && written <= MAX_MESSAGE_BYTES) return written;
  return view.length > MAX_MESSAGE_BYTES ? -1 : -2;
}

/**
 * The in-memory queue. Each message is encoded once, straight into a byte
 * arena (UTF-8 is what goes on the wire, and the size check needs it anyway):
 * no JavaScript string is kept per message, and a request body is built by
 * copying byte ranges, not by joining and re-encoding strings. Parallel
 * arrays and a moving head keep a push free of per-message objects.
 */
export class Queue {
  #chunks: Uint8Array[] = [];
  #starts: number[] = [];
  #bytes: number[] = [];
  #callbacks = new Map<number, Callback>();
  #head = 0;
  #firstSeq = 1; // sequence number of the message at #head
  #queuedBytes = 0;
  #chunk = new Uint8Array(0);
  #used = 0;

  /** Messages waiting. */
  get size(): number {
    return this.#bytes.length - this.#head;
  }

  /** UTF-8 bytes of the messages waiting. */
  get bytes(): number {
    return this.#queuedBytes;
  }

  /** The sequence number of the oldest waiting message (if any). */
  get headSeq(): number {
    return this.#firstSeq;
  }

  /** The sequence number of the newest message ever queued (0 before the first). */
  get lastSeq(): number {
    return this.#firstSeq + this.size - 1;
  }

  /**
   * Encodes and appends a message; returns its sequence number, or -1 (and
   * keeps nothing) when it is over {@linkcode MAX_MESSAGE_BYTES} in UTF-8.
   */
  push(json: string, callback: Callback | undefined): number {
    if (json.length > MAX_MESSAGE_BYTES) return -1;
    let written = this.#write(json);
    if (written === -2) {
      // The chunk's tail is too short for this message: start a fresh chunk.
      this.#chunk = new Uint8Array(CHUNK_BYTES);
      this.#used = 0;
      written = this.#write(json);
    }
    if (written < 0) return -1;
    this.#chunks.push(this.#chunk);
    this.#starts.push(this.#used);
    this.#bytes.push(written);
    this.#chunk[this.#used + written] = COMMA;
    this.#used += written + 1;
    this.#queuedBytes += written;
    const seq = this.#firstSeq + this.size - 1;
    if (callback !== undefined) this.#callbacks.set(seq, callback);
    return seq;
  }

  #write(json: string): number {
    return encodeAt(this.#chunk, this.#used, json);
  }

  /**
   * Removes the next batch: up to `maxCount` messages whose body, with
   * `envelope` bytes of framing and a comma between messages, fits `maxBytes`.
   * Returns undefined when that batch is not full and `partial` is false.
   */
  take(maxCount: number, maxBytes: number, envelope: number, partial: boolean): Batch | undefined {
    const size = this.size;
    if (size === 0) return undefined;
    let n = 0;
    let total = envelope - 1;
    let full = false;
    while (n < size) {
      if (n === maxCount) {
        full = true;
        break;
      }
      const next = total + 1 + this.#bytes[this.#head + n];
      if (next > maxBytes) {
        full = true;
        break;
      }
      total = next;
      n++;
    }
    // Exactly maxCount messages is a full batch: it goes out now, not at the timer.
    if (n === maxCount) full = true;
    if (!full && !partial) return undefined;
    const start = this.#head;
    const end = start + n;
    const first = this.#firstSeq;
    let callbacks: Map<number, Callback> | undefined;
    if (this.#callbacks.size > 0) {
      for (let seq = first; seq < first + n; seq++) {
        const callback = this.#callbacks.get(seq);
        if (callback === undefined) continue;
        (callbacks ??= new Map()).set(seq - first, callback);
        this.#callbacks.delete(seq);
      }
    }
    const batch: Batch = {
      chunks: this.#chunks.slice(start, end),
      starts: this.#starts.slice(start, end),
      bytes: this.#bytes.slice(start, end),
      callbacks,
      first,
    };
    this.#queuedBytes -= total - envelope + 1 - n;
    // The batch holds its chunks now: once it settles, a chunk whose messages are all sent is garbage, not kept
    // until the arrays are compacted (which, mid-burst, held up to half the sent burst).
    this.#chunks.fill(RELEASED, start, end);
    this.#head = end;
    this.#firstSeq += n;
    if (this.#head === this.#bytes.length) {
      this.#chunks = [];
      this.#starts = [];
      this.#bytes = [];
      this.#head = 0;
    } else if (this.#head > 4096 && this.#head * 2 > this.#bytes.length) {
      this.#chunks = this.#chunks.slice(this.#head);
      this.#starts = this.#starts.slice(this.#head);
      this.#bytes = this.#bytes.slice(this.#head);
      this.#head = 0;
    }
    return batch;
  }

  /** Removes every waiting message (for a client that is giving up). */
  takeAll(): Batch | undefined {
    return this.take(Number.MAX_SAFE_INTEGER, Number.MAX_SAFE_INTEGER, 0, true);
  }
}

/** Splits a batch in two halves (after a 413), keeping sequence numbers and callbacks. */
export function split(batch: Batch): [Batch, Batch] {
  const n = sizeOf(batch);
  const half = Math.ceil(n / 2);
  const part = (from: number, to: number): Batch => {
    let callbacks: Map<number, Callback> | undefined;
    for (const [i, callback] of batch.callbacks ?? []) {
      if (i >= from && i < to) (callbacks ??= new Map()).set(i - from, callback);
    }
    return {
      chunks: batch.chunks.slice(from, to),
      starts: batch.starts.slice(from, to),
      bytes: batch.bytes.slice(from, to),
      callbacks,
      first: batch.first + from,
    };
  };
  return [part(0, half), part(half, n)];
}
