import { type Batch, CHUNK_BYTES, encodeAt } from "./queue.ts";
import { MAX_MESSAGE_BYTES } from "./serialize.ts";
import {
  codeOf,
  frame,
  RECORD_FRAMING,
  RECORD_HEADER,
  scanRecords,
  SEGMENT_BYTES,
  type Storage,
  type StorageProblem,
  TEMPORARY,
} from "./storage.ts";
import type { Callback } from "./types.ts";

/** JSON bytes of sealed segments kept in memory as well as on disk; a longer backlog is read back when sent. */
const CACHE_BYTES = 8 * 1024 * 1024;

/** One segment file (or, while the disk refuses writes, one in memory): one request body. */
interface Segment {
  id: number;
  /** Sequence number of its first message. */
  first: number;
  count: number;
  /** JSON bytes of its messages. */
  json: number;
  /** Bytes of its file. */
  fileBytes: number;
  /** Its messages in memory, when cached; else read back from the file when it is sent. */
  chunks: Uint8Array[] | undefined;
  starts: number[];
  lengths: number[];
  sealedAt: number;
  onDisk: boolean;
  /** Messages of it taken and not yet settled. */
  unsettled: number;
  /** Stays on disk for the next start (close() timed out). */
  kept: boolean;
}

/** What the queue asks of the delivery engine. */
export interface StoreHooks {
  /** Settles `batch`, taken out of turn, as failed (`queue_full` under drop-oldest, `expired`). */
  fail(batch: Batch, reason: "queue_full" | "expired", text: string): void;
  /** Settles messages `first..first+n-1` that cannot be read back, reported with reason `storage`. */
  lose(first: number, n: number, text: string): void;
  /** An error line for the program's logger (the disk refused a write). */
  warn(line: string): void;
  /** A debug line. */
  debug(line: string): void;
}

/** Limits the queue reads from the client's settings at each call (they may change). */
export interface StoreSettings {
  uploadSize: number;
  syncMode: boolean;
  maxQueueSize: number;
}

const why = (error: unknown): string => {
  const code = codeOf(error);
  const text = String((error as Error)?.message ?? error);
  return code !== undefined && !text.includes(code) ? `${text} (${code})` : text;
};

/**
 * The queue when a {@linkcode Storage} is given: the same calls as the
 * in-memory `Queue`, but each message is appended to a segment file before
 * `push` returns, a batch is one sealed segment, and a segment's file is
 * deleted only once every message of it is settled.
 */
export class StoredQueue {
  readonly #storage: Storage;
  readonly #s: StoreSettings;
  readonly #hooks: StoreHooks;
  readonly #waiting: Segment[] = [];
  readonly #inflight: Segment[] = [];
  readonly #callbacks = new Map<number, Callback>();
  #open: Segment | undefined;
  #nextId = 1;
  #nextSeq = 1;
  #queuedJson = 0;
  #fileBytes = 0;
  #cached = 0;
  #memoryHeld = 0;
  #chunk = new Uint8Array(0);
  #used = 0;
  #failing = false;
  #closed = false;
  /** Why the last push was refused. */
  refusal = "";
  /** Messages held in memory only, ever, because the disk refused them. */
  memoryOnly = 0;
  /** What opening the storage found wrong. */
  readonly problems: StorageProblem[];
  /** Messages found in the folder at start. */
  readonly recovered: number;

  /** Opens `storage` (lock, recovery): throws "Cannot open storage ..." when it cannot. */
  constructor(storage: Storage, settings: StoreSettings, hooks: StoreHooks) {
    this.#storage = storage;
    this.#s = settings;
    this.#hooks = hooks;
    const opening = storage.open(hooks.debug);
    for (const found of opening.segments) {
      this.#waiting.push({
        id: found.id,
        first: this.#nextSeq,
        count: found.count,
        json: found.bytes - found.count * RECORD_FRAMING,
        fileBytes: found.bytes,
        chunks: undefined,
        starts: [],
        lengths: [],
        sealedAt: found.sealedAt,
        onDisk: true,
        unsettled: 0,
        kept: false,
      });
      this.#nextSeq += found.count;
      this.#queuedJson += found.bytes - found.count * RECORD_FRAMING;
      this.#fileBytes += found.bytes;
    }
    this.recovered = this.#nextSeq - 1;
    this.#nextId = opening.nextId;
    this.problems = opening.problems;
  }

  /** Messages waiting (not taken). */
  get size(): number {
    return this.#nextSeq - this.headSeq;
  }

  /** JSON bytes of the messages waiting. */
  get bytes(): number {
    return this.#queuedJson;
  }

  /** The sequence number of the oldest waiting message. */
  get headSeq(): number {
    return this.#waiting[0]?.first ?? this.#open?.first ?? this.#nextSeq;
  }

  /** The sequence number of the newest message (0 before the first). */
  get lastSeq(): number {
    return this.#nextSeq - 1;
  }

  /** Whether a sealed segment waits: a full batch is ready. */
  get ready(): boolean {
    return this.#waiting.length > 0;
  }

  /** Bytes of segment files in the folder. */
  get fileBytes(): number {
    return this.#fileBytes;
  }

  /** The folder. */
  get dir(): string {
    return this.#storage.dir;
  }

  #sealCount(): number {
    return this.#s.syncMode ? 1 : this.#s.uploadSize;
  }

  /**
   * Encodes `json` as a record and appends it to the open segment; returns
   * its sequence number, -1 (keeping nothing) when it is over the message
   * limit, or -3 when it is refused (`refusal` says why).
   */
  push(json: string, callback: Callback | undefined): number {
    if (json.length > MAX_MESSAGE_BYTES) return -1;
    let written = this.#write(json);
    if (written === -2) {
      this.#chunk = new Uint8Array(CHUNK_BYTES);
      this.#used = 0;
      written = this.#write(json);
    }
    if (written < 0) return -1;
    const chunk = this.#chunk;
    const at = this.#used;
    const record = RECORD_FRAMING + written;
    const limits = this.#storage.limits;
    if (this.#fileBytes + record > limits.maxStorageBytes && !this.#makeRoom(record)) {
      this.refusal = `the storage ${this.dir} holds maxStorageBytes (${limits.maxStorageBytes} bytes)` +
        (limits.whenFull === "drop-newest" ? " (whenFull: drop-newest)" : " and nothing older can be dropped");
      return -3;
    }
    let segment = this.#open;
    if (segment !== undefined && segment.json + segment.count + written > SEGMENT_BYTES) {
      this.#seal(segment);
      segment = undefined;
    }
    segment ??= this.#start();
    frame(chunk, at, written);
    if (segment.onDisk) {
      try {
        this.#storage.append(segment.id, chunk, at, at + record);
        segment.fileBytes += record;
        this.#fileBytes += record;
        if (this.#failing) {
          this.#failing = false;
          this.#hooks.warn(`[tally] storage ${this.dir} takes writes again`);
        }
      } catch (error) {
        segment = this.#fallBack(segment, error);
      }
    }
    if (!segment.onDisk) {
      if (this.#memoryHeld >= this.#s.maxQueueSize) {
        this.refusal = `the storage ${this.dir} refuses writes and maxQueueSize (${this.#s.maxQueueSize}) ` +
          "messages are already held in memory";
        if (segment.count === 0) this.#open = undefined;
        return -3;
      }
      this.#memoryHeld++;
      this.memoryOnly++;
    }
    segment.chunks!.push(chunk);
    segment.starts.push(at + RECORD_HEADER);
    segment.lengths.push(written);
    segment.count++;
    segment.json += written;
    this.#used += record;
    this.#queuedJson += written;
    const seq = this.#nextSeq++;
    if (callback !== undefined) this.#callbacks.set(seq, callback);
    if (segment.count >= this.#sealCount() || segment.json + segment.count > SEGMENT_BYTES - MAX_MESSAGE_BYTES) {
      this.#seal(segment);
    }
    return seq;
  }

  /** Bytes written after the chunk's next record header (see {@linkcode encodeAt}). */
  #write(json: string): number {
    return encodeAt(this.#chunk, this.#used + RECORD_HEADER, json);
  }

  #start(): Segment {
    const segment: Segment = {
      id: this.#nextId++,
      first: this.#nextSeq,
      count: 0,
      json: 0,
      fileBytes: 0,
      chunks: [],
      starts: [],
      lengths: [],
      sealedAt: 0,
      onDisk: true,
      unsettled: 0,
      kept: false,
    };
    this.#open = segment;
    return segment;
  }

  /** The disk refused a write: what the open segment holds is sealed, and messages go to memory for a segment. */
  #fallBack(segment: Segment, error: unknown): Segment {
    if (!this.#failing) {
      this.#failing = true;
      this.#hooks.warn(
        `[tally] Cannot write to storage ${this.dir}: ${why(error)}; messages are held in memory ` +
          "(lost if the process dies) until it takes writes again",
      );
    }
    if (segment.count > 0) this.#seal(segment);
    else {
      this.#open = undefined;
      try {
        this.#storage.discard(segment.id); // no record reached it: no empty file is left behind
      } catch { /* an empty open segment is deleted at the next start */ }
    }
    const memory = this.#start();
    memory.onDisk = false;
    return memory;
  }

  #seal(segment: Segment): void {
    if (segment.onDisk && segment.count > 0) {
      try {
        this.#storage.seal(segment.id);
      } catch (error) {
        // The file stays open-N: the next start reads it again, whole.
        this.#hooks.warn(`[tally] Cannot seal a segment of storage ${this.dir}: ${why(error)}`);
      }
    }
    this.#open = undefined;
    if (segment.count === 0) return;
    segment.sealedAt = Date.now();
    this.#waiting.push(segment);
    if (segment.onDisk) {
      if (this.#cached + segment.json > CACHE_BYTES) segment.chunks = undefined;
      else this.#cached += segment.json;
    }
  }

  /** Drops the oldest sealed segments (whenFull: drop-oldest) until `record` bytes fit. */
  #makeRoom(record: number): boolean {
    const limits = this.#storage.limits;
    if (limits.whenFull === "drop-newest") return false;
    while (this.#fileBytes + record > limits.maxStorageBytes) {
      const oldest = this.#waiting.find((segment) => segment.onDisk);
      if (oldest === undefined) return false;
      if (oldest !== this.#waiting[0]) return false; // only the head may go out of turn
      const batch = this.#takeHead();
      if (batch === null) return false;
      if (batch !== undefined) {
        this.#hooks.fail(
          batch,
          "queue_full",
          `: the storage ${this.dir} reached maxStorageBytes (${limits.maxStorageBytes} bytes), ` +
            "and the oldest were dropped (whenFull: drop-oldest)",
        );
      }
    }
    return true;
  }

  /**
   * Removes the next batch: the oldest sealed segment; with `partial`,
   * the open segment is sealed for it when no sealed one waits. Returns
   * undefined when there is none, or when its file cannot be read just now.
   */
  take(_maxCount: number, _maxBytes: number, _envelope: number, partial: boolean): Batch | undefined {
    const maxAge = this.#storage.limits.maxStorageAge;
    for (;;) {
      if (this.#waiting.length === 0) {
        const open = this.#open;
        if (open === undefined || open.count === 0 || !partial) return undefined;
        this.#seal(open);
      }
      const head = this.#waiting[0];
      const batch = this.#takeHead();
      if (batch === null) return undefined;
      if (batch === undefined) continue;
      if (Date.now() - head.sealedAt > maxAge) {
        this.#hooks.fail(
          batch,
          "expired",
          `: they waited in storage ${this.dir} longer than maxStorageAge (${maxAge} ms)`,
        );
        continue;
      }
      return batch;
    }
  }

  /** Takes the head segment as a batch; undefined: it could not be read (reported); null: try again later. */
  #takeHead(): Batch | undefined | null {
    const segment = this.#waiting[0];
    let chunks = segment.chunks;
    if (chunks === undefined) {
      let bytes: Uint8Array;
      try {
        bytes = this.#storage.read(segment.id);
      } catch (error) {
        if (TEMPORARY.has(codeOf(error) ?? "")) {
          this.#hooks.debug(`cannot read segment ${segment.id} just now (${why(error)}); retrying later`);
          return null;
        }
        this.#waiting.shift();
        this.#lost(segment, `: cannot read them back from storage ${this.dir}: ${why(error)}`);
        return undefined;
      }
      const scan = scanRecords(bytes);
      if (scan.starts.length !== segment.count || scan.gaps > 0 || scan.tailBytes > 0) {
        this.#waiting.shift();
        let where = "";
        try {
          where = `; the file was moved to ${this.#storage.quarantine(segment.id)}`;
        } catch { /* it stays where it is, and is not read again by this process */ }
        this.#lost(segment, `: segment ${segment.id} of storage ${this.dir} changed on disk${where}`);
        return undefined;
      }
      chunks = new Array(segment.count).fill(bytes);
      segment.starts = scan.starts;
      segment.lengths = scan.lengths;
    } else if (segment.onDisk) {
      this.#cached -= segment.json;
    }
    this.#waiting.shift();
    this.#queuedJson -= segment.json;
    segment.unsettled = segment.count;
    this.#inflight.push(segment);
    let callbacks: Map<number, Callback> | undefined;
    if (this.#callbacks.size > 0) {
      for (let seq = segment.first; seq < segment.first + segment.count; seq++) {
        const callback = this.#callbacks.get(seq);
        if (callback === undefined) continue;
        (callbacks ??= new Map()).set(seq - segment.first, callback);
        this.#callbacks.delete(seq);
      }
    }
    const batch: Batch = {
      chunks,
      starts: segment.starts,
      bytes: segment.lengths,
      callbacks,
      first: segment.first,
    };
    segment.chunks = undefined;
    return batch;
  }

  #lost(segment: Segment, text: string): void {
    this.#queuedJson -= segment.json;
    this.#fileBytes -= segment.fileBytes;
    for (let seq = segment.first; seq < segment.first + segment.count; seq++) this.#callbacks.delete(seq);
    this.#hooks.lose(segment.first, segment.count, text);
  }

  #segmentOf(batch: Batch): Segment | undefined {
    return this.#inflight.find((s) => batch.first >= s.first && batch.first < s.first + s.count);
  }

  /** Whether `batch` can stay on disk for the next start (its segment has a file). */
  keeps(batch: Batch): boolean {
    return this.#segmentOf(batch)?.onDisk === true;
  }

  /**
   * Settles `batch`: once every message of its segment is settled, the
   * file is deleted, unless some of it is `kept` for the next start.
   */
  settle(batch: Batch, kept = false): void {
    const segment = this.#segmentOf(batch);
    if (segment === undefined) return;
    if (kept) segment.kept = true;
    segment.unsettled -= batch.bytes.length;
    if (segment.unsettled > 0) return;
    this.#inflight.splice(this.#inflight.indexOf(segment), 1);
    if (!segment.onDisk) {
      this.#memoryHeld -= segment.count;
      return;
    }
    if (segment.kept) return;
    this.#fileBytes -= segment.fileBytes;
    try {
      this.#storage.remove(segment.id);
    } catch (error) {
      this.#hooks.warn(`[tally] Cannot delete a delivered segment of storage ${this.dir}: ${why(error)}`);
    }
  }

  /**
   * For a client giving up (close timed out): everything waiting stays on
   * disk for the next start. Returns how many messages were kept, and the
   * batches held only in memory, which the caller reports as undelivered.
   */
  keepAll(): { kept: [first: number, n: number][]; unkept: Batch[] } {
    const open = this.#open;
    if (open !== undefined) this.#seal(open);
    const kept: [number, number][] = [];
    const unkept: Batch[] = [];
    while (this.#waiting.length > 0) {
      const segment = this.#waiting[0];
      if (!segment.onDisk) {
        const batch = this.#takeHead();
        if (batch) unkept.push(batch);
        continue;
      }
      this.#waiting.shift();
      if (segment.chunks !== undefined) this.#cached -= segment.json;
      this.#queuedJson -= segment.json;
      kept.push([segment.first, segment.count]);
      for (let seq = segment.first; seq < segment.first + segment.count; seq++) this.#callbacks.delete(seq);
    }
    return { kept, unkept };
  }

  /** Closes the storage (files written out, lock released); once. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    const open = this.#open;
    if (open !== undefined && open.count > 0) this.#seal(open);
    try {
      this.#storage.close();
    } catch (error) {
      this.#hooks.warn(`[tally] Cannot close storage ${this.dir}: ${why(error)}`);
    }
  }
}
