import type { Callback } from "./types.ts";

/** A run of consecutive queued messages that travels in one request. */
export interface Batch {
  /** Serialized messages. */
  json: string[];
  /** Their UTF-8 sizes. */
  bytes: number[];
  /** Per-call callbacks by position in the batch, when any call passed one. */
  callbacks: Map<number, Callback> | undefined;
  /** The sequence number of the first message; the rest follow without gaps. */
  first: number;
}

/**
 * The in-memory queue: serialized messages in arrival order, each with its
 * UTF-8 size and a sequence number. Parallel arrays and a moving head keep a
 * push to two array writes, with no object per message.
 */
export class Queue {
  #json: string[] = [];
  #bytes: number[] = [];
  #callbacks = new Map<number, Callback>();
  #head = 0;
  #firstSeq = 1; // sequence number of #json[#head]
  #queuedBytes = 0;

  /** Messages waiting. */
  get size(): number {
    return this.#json.length - this.#head;
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

  /** Appends a message and returns its sequence number. */
  push(json: string, bytes: number, callback: Callback | undefined): number {
    this.#json.push(json);
    this.#bytes.push(bytes);
    this.#queuedBytes += bytes;
    const seq = this.#firstSeq + this.size - 1;
    if (callback !== undefined) this.#callbacks.set(seq, callback);
    return seq;
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
      json: this.#json.slice(start, end),
      bytes: this.#bytes.slice(start, end),
      callbacks,
      first,
    };
    this.#queuedBytes -= total - envelope + 1 - n;
    this.#head = end;
    this.#firstSeq += n;
    if (this.#head === this.#json.length) {
      this.#json = [];
      this.#bytes = [];
      this.#head = 0;
    } else if (this.#head > 4096 && this.#head * 2 > this.#json.length) {
      this.#json = this.#json.slice(this.#head);
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
  const half = Math.ceil(batch.json.length / 2);
  const part = (from: number, to: number): Batch => {
    let callbacks: Map<number, Callback> | undefined;
    for (const [i, callback] of batch.callbacks ?? []) {
      if (i >= from && i < to) (callbacks ??= new Map()).set(i - from, callback);
    }
    return {
      json: batch.json.slice(from, to),
      bytes: batch.bytes.slice(from, to),
      callbacks,
      first: batch.first + from,
    };
  };
  return [part(0, half), part(half, batch.json.length)];
}
