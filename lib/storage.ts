/**
 * The disk queue as the library sees it: the interface a storage object
 * (such as `fileStorage(dir)` from `@tally/analytics/storage`) implements,
 * and the record framing both sides share. Web standards only: the files
 * themselves are handled outside `lib/`.
 *
 * A record is `[u32 length][u32 crc32][length bytes of JSON][","]`, little-endian
 * (the comma is what the in-memory queue keeps after each message, so a
 * request body is copied from a segment exactly as from the queue);
 * a segment file is records back to back, one request body's worth.
 *
 * @module
 */

/** Bytes before each record's JSON: its length and its CRC32. */
export const RECORD_HEADER = 8;

/** Bytes of framing per record: the header, and a comma after the JSON (so records copy into a body as runs). */
export const RECORD_FRAMING = RECORD_HEADER + 1;

/** A segment is sealed before its JSON, with a comma between messages, would pass this (Segment's limit is 500 KB). */
export const SEGMENT_BYTES = 475_000;

/** The largest JSON a record holds (Segment's per-message limit). */
const MAX_RECORD = 32768;

/** Slicing-by-8 tables: eight 256-entry tables back to back (table k at 256 * k). */
const TABLES = (() => {
  const t = new Int32Array(256 * 8);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    t[n] = c;
  }
  for (let n = 0; n < 256; n++) {
    for (let k = 1; k < 8; k++) t[256 * k + n] = (t[256 * (k - 1) + n] >>> 8) ^ t[t[256 * (k - 1) + n] & 0xff];
  }
  return t;
})();

/** The CRC-32 (IEEE, as zlib's) of `bytes[from..to)`, eight bytes a step. */
export function crc32(bytes: Uint8Array, from = 0, to: number = bytes.length): number {
  const t = TABLES;
  let c = -1;
  let i = from;
  for (; i + 8 <= to; i += 8) {
    c ^= bytes[i] | (bytes[i + 1] << 8) | (bytes[i + 2] << 16) | (bytes[i + 3] << 24);
    c = t[1792 + (c & 0xff)] ^ t[1536 + ((c >>> 8) & 0xff)] ^ t[1280 + ((c >>> 16) & 0xff)] ^ t[1024 + (c >>> 24)] ^
      t[768 + bytes[i + 4]] ^ t[512 + bytes[i + 5]] ^ t[256 + bytes[i + 6]] ^ t[bytes[i + 7]];
  }
  for (; i < to; i++) c = t[(c ^ bytes[i]) & 0xff] ^ (c >>> 8);
  return (c ^ -1) >>> 0;
}

const u32 = (b: Uint8Array, at: number): number =>
  (b[at] | (b[at + 1] << 8) | (b[at + 2] << 16) | (b[at + 3] << 24)) >>> 0;

/** Writes the header and the comma of the record whose `length` bytes of JSON start at `at + RECORD_HEADER`. */
export function frame(bytes: Uint8Array, at: number, length: number): void {
  bytes[at + RECORD_HEADER + length] = 0x2c;
  const crc = crc32(bytes, at + RECORD_HEADER, at + RECORD_HEADER + length);
  bytes[at] = length;
  bytes[at + 1] = length >>> 8;
  bytes[at + 2] = length >>> 16;
  bytes[at + 3] = length >>> 24;
  bytes[at + 4] = crc;
  bytes[at + 5] = crc >>> 8;
  bytes[at + 6] = crc >>> 16;
  bytes[at + 7] = crc >>> 24;
}

/** The intact records of a segment file, and what was not. */
export interface Scan {
  /** Where each intact record's JSON starts. */
  starts: number[];
  /** Each intact record's JSON length. */
  lengths: number[];
  /** Bytes between intact records that are no record (corruption inside the file). */
  lostBytes: number;
  /** Unreadable stretches inside the file. */
  gaps: number;
  /** Bytes after the last intact record (a torn or corrupt tail), cut off. */
  tailBytes: number;
  /** The offset just past the last intact record. */
  end: number;
}

function intactAt(b: Uint8Array, at: number): number {
  if (at + RECORD_HEADER > b.length) return -1;
  const length = u32(b, at);
  const from = at + RECORD_HEADER;
  if (length < 2 || length > MAX_RECORD || from + length + 1 > b.length) return -1;
  // A message is a JSON object, and the comma follows it.
  if (b[from] !== 0x7b || b[from + length - 1] !== 0x7d || b[from + length] !== 0x2c) return -1;
  return crc32(b, from, from + length) === u32(b, at + 4) ? length : -1;
}

/**
 * Reads the records of a segment file. A record whose length or CRC is
 * wrong is skipped up to the next intact one (so every intact record is
 * kept); what follows the last intact record is the tail.
 */
export function scanRecords(b: Uint8Array): Scan {
  const scan: Scan = { starts: [], lengths: [], lostBytes: 0, gaps: 0, tailBytes: 0, end: 0 };
  let at = 0;
  while (at < b.length) {
    const length = intactAt(b, at);
    if (length >= 0) {
      scan.starts.push(at + RECORD_HEADER);
      scan.lengths.push(length);
      at += RECORD_FRAMING + length;
      scan.end = at;
      continue;
    }
    let next = at + 1;
    while (next < b.length && intactAt(b, next) < 0) next++;
    if (next >= b.length) {
      scan.tailBytes = b.length - at;
      break;
    }
    scan.lostBytes += next - at;
    scan.gaps++;
    at = next;
  }
  return scan;
}

/**
 * How often a segment's writes reach the disk itself (not only the
 * operating system): `"always"` after every record, `"interval"` at most
 * `syncInterval` ms after a write.
 */
export type Durability = "always" | "interval";

/** What a full storage gives up: the oldest sealed segment, or the new message. */
export type WhenFull = "drop-oldest" | "drop-newest";

/** The bounds a storage holds to, as the client reads them. */
export interface StorageLimits {
  /** Bytes of segment files at most. */
  maxStorageBytes: number;
  /** Milliseconds a sealed segment may wait; older ones are reported as `expired` instead of sent. */
  maxStorageAge: number;
  /** What goes when `maxStorageBytes` is reached. */
  whenFull: WhenFull;
}

/** A sealed segment found when the storage opened. */
export interface StoredSegment {
  /** Its number: segments are sent in this order. */
  id: number;
  /** Intact records. */
  count: number;
  /** Its file's size in bytes (after any cut). */
  bytes: number;
  /** When it was last written (ms since the epoch). */
  sealedAt: number;
}

/** A file the storage could not read whole when it opened; reported through `onError` (reason `storage`). */
export interface StorageProblem {
  /** The file's name in the folder. */
  file: string;
  /** `torn`: a tail cut off; `corrupt`: unreadable stretches inside; `unreadable`: no record could be read. */
  kind: "torn" | "corrupt" | "unreadable";
  /** Intact records kept from it (and sent). */
  kept: number;
  /** Bytes dropped. */
  lostBytes: number;
  /** Where the original was moved or copied, under the folder's `quarantine/`, when it was. */
  quarantined?: string;
  /** One sentence: what was wrong. */
  detail: string;
}

/** What a storage found when it opened. */
export interface StorageOpening {
  /** Sealed segments, oldest first, ready to send. */
  segments: StoredSegment[];
  /** Files that were cut, quarantined or partly read. */
  problems: StorageProblem[];
  /** The number the next new segment takes. */
  nextId: number;
}

/**
 * A disk queue the client writes each message to before a call returns.
 * `fileStorage(dir)` from `@tally/analytics/storage` is the implementation;
 * the client calls these methods, a program does not. Every method is
 * synchronous; each throws an `Error` (with the system's `code` when there is
 * one) when the disk refuses.
 */
export interface Storage {
  /** The folder, as given (for messages). */
  readonly dir: string;
  /** The bounds. */
  readonly limits: StorageLimits;
  /** Takes the folder's lock and rebuilds the queue from its files. Throws "Cannot open storage DIR: why". */
  open(debug: (line: string) => void): StorageOpening;
  /** Appends the records in `bytes[from..to)` to the open segment `id`, creating it when new. */
  append(id: number, bytes: Uint8Array, from: number, to: number): void;
  /** Closes and deletes open segment `id`, which holds no record (its first write failed). */
  discard(id: number): void;
  /** Seals segment `id` (atomically: a crash leaves it either open or sealed, whole). */
  seal(id: number): void;
  /** Reads sealed segment `id` whole. */
  read(id: number): Uint8Array;
  /** Deletes sealed segment `id` (it was delivered, or reported). */
  remove(id: number): void;
  /** Moves segment `id` to `quarantine/`; returns its new path. */
  quarantine(id: number): string;
  /** Writes what is pending to the disk, closes files and releases the lock. */
  close(): void;
}

const METHODS = ["open", "append", "discard", "seal", "read", "remove", "quarantine", "close"] as const;

/** Whether `value` implements {@linkcode Storage}. */
export function isStorage(value: unknown): value is Storage {
  const s = value as Partial<Record<string, unknown>> | null;
  return typeof s === "object" && s !== null && typeof s.dir === "string" &&
    typeof s.limits === "object" && s.limits !== null && METHODS.every((m) => typeof s[m] === "function");
}

/** Error codes that say "try again": the access is retried, the file kept. */
export const TEMPORARY = new Set(["EAGAIN", "EBUSY", "EMFILE", "ENFILE", "EINTR", "EWOULDBLOCK"]);

/** An error's system code (`ENOSPC`, ...), when it has one. */
export const codeOf = (error: unknown): string | undefined => {
  const code = (error as { code?: unknown } | null)?.code;
  return typeof code === "string" ? code : undefined;
};
