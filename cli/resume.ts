/**
 * What `tally send --resume` remembers of an input file between runs: which
 * of its messages the server acknowledged, so that a rerun after Ctrl-C, a
 * kill or a network outage sends only the others.
 *
 * One small JSON progress file per input file, next to it
 * (`events.ndjson.tally-progress`) or in the folder `--resume DIR` names. It
 * holds the input's identity (absolute path, size, mtime, and a SHA-256 of
 * its first 64 KB), and the messages done, by their number in the file (the
 * n-th message: for NDJSON the n-th non-blank line, for a JSON array the
 * n-th element): every message up to `done`, plus ranges above it, since
 * requests are answered out of order. A message is done when the server
 * acknowledged it, or when it is invalid (a rerun would only report it
 * again); one that failed stays to be sent again.
 *
 * The file is rewritten whole after each acknowledged request (to a
 * temporary file, then renamed over the old one, so a kill leaves the old
 * or the new file, never a torn one), and fsync'd at least every
 * {@linkcode SYNC_EVERY_MS} and at the end: a process that is killed loses
 * no acknowledgement already written (the kernel has it), so a rerun
 * resends only the requests in flight at the kill; a power loss may lose
 * the last second's records, which means more duplicates, never a message
 * skipped that was not sent.
 *
 * @module
 */
import { createHash } from "node:crypto";
import { closeSync, fsyncSync, openSync, readFileSync, readSync, renameSync, statSync, writeSync } from "node:fs";
import { basename, join, resolve } from "node:path";
import { UsageError } from "./args.ts";

/** The progress file's name beside its input: `FILE` + this. */
export const PROGRESS_SUFFIX = ".tally-progress";
/** The longest a written record goes without an fsync. */
export const SYNC_EVERY_MS = 500;
/** How much of the input's start the identity hashes. */
const HEAD_BYTES = 64 * 1024;
const FORMAT = "tally-send-progress/1";

/** What identifies an input file across runs. */
interface Identity {
  path: string;
  size: number;
  mtimeMs: number;
  head: string;
}

/** A progress file's content. */
interface Record {
  format: string;
  input: Identity;
  /** Every message numbered 1..done is done. */
  done: number;
  /** Done messages above `done + 1`, as sorted, disjoint, non-adjacent [first, last] ranges. */
  ranges: [number, number][];
}

function identify(path: string): Identity {
  const stat = statSync(path);
  const fd = openSync(path, "r");
  try {
    const head = new Uint8Array(Math.min(HEAD_BYTES, stat.size));
    let got = 0;
    while (got < head.length) {
      const n = readSync(fd, head, got, head.length - got, got);
      if (n === 0) break;
      got += n;
    }
    return {
      path: resolve(path),
      size: stat.size,
      mtimeMs: stat.mtimeMs,
      head: createHash("sha256").update(head.subarray(0, got)).digest("hex"),
    };
  } finally {
    closeSync(fd);
  }
}

/** Where the progress of `path` is kept: beside it, or in `dir` under a name its absolute path makes unique. */
export function progressPath(path: string, dir: string | undefined): string {
  if (dir === undefined) return `${path}${PROGRESS_SUFFIX}`;
  const id = createHash("sha256").update(resolve(path)).digest("hex").slice(0, 12);
  return join(dir, `${basename(path)}.${id}${PROGRESS_SUFFIX}`);
}

const code = (error: unknown): string => (error as { code?: string }).code ?? (error as Error).message;

function isRecord(value: unknown): value is Record {
  const r = value as Record;
  return typeof r === "object" && r !== null && r.format === FORMAT && typeof r.input === "object" &&
    r.input !== null && typeof r.input.size === "number" && typeof r.input.head === "string" &&
    Number.isSafeInteger(r.done) && r.done >= 0 && Array.isArray(r.ranges) &&
    r.ranges.every((x, i) =>
      Array.isArray(x) && Number.isSafeInteger(x[0]) && Number.isSafeInteger(x[1]) && x[0] <= x[1] &&
      x[0] > (i === 0 ? r.done + 1 : r.ranges[i - 1][1] + 1)
    );
}

/** The progress of one input file: which of its messages are done, written to its progress file as they are. */
export class Progress {
  /** The input as messages name it. */
  readonly name: string;
  /** The progress file. */
  readonly file: string;
  /** Messages done when the run started (skipped by it). */
  readonly doneAtStart: number;
  #record: Record;
  #dirty = false;
  #scheduled = false;
  #lastSync = 0;
  #failedWrite: string | undefined;

  private constructor(name: string, file: string, record: Record) {
    this.name = name;
    this.file = file;
    this.#record = record;
    this.doneAtStart = record.done + record.ranges.reduce((n, [a, b]) => n + b - a + 1, 0);
  }

  /**
   * Opens the progress of input `path` (shown as `name`), kept in `dir` or
   * beside the input: the recorded one when the input is the same file as
   * then, a fresh one when there is none or `restart` is set. Throws a
   * {@linkcode UsageError} when the input changed since, or the progress
   * file is unreadable or not tally's; writes the progress file at once, so
   * a place it cannot be written is found before anything is sent.
   */
  static open(path: string, name: string, dir: string | undefined, restart: boolean): Progress {
    const file = progressPath(path, dir);
    const shownFile = dir === undefined ? `${name}${PROGRESS_SUFFIX}` : file;
    let input: Identity;
    try {
      input = identify(path);
    } catch (error) {
      throw new UsageError(`cannot read ${name}: ${code(error)}`);
    }
    let record: Record = { format: FORMAT, input, done: 0, ranges: [] };
    if (!restart) {
      let text: string | undefined;
      try {
        text = readFileSync(file, "utf8");
      } catch (error) {
        if (code(error) !== "ENOENT") {
          throw new UsageError(`cannot resume ${name}: cannot read ${shownFile}: ${code(error)}`);
        }
      }
      if (text !== undefined) {
        let found: unknown;
        try {
          found = JSON.parse(text);
        } catch {
          found = undefined;
        }
        if (!isRecord(found)) {
          throw new UsageError(
            `cannot resume ${name}: ${shownFile} is not a tally send progress file; remove it, or pass --restart`,
          );
        }
        const then = found.input;
        if (then.size !== input.size || then.head !== input.head) {
          const why = then.size !== input.size
            ? `its size was ${then.size} bytes, now ${input.size}`
            : "its first bytes differ";
          throw new UsageError(
            `cannot resume ${name}: it changed since its progress was recorded (${why}); ` +
              "pass --restart to send it from the start",
          );
        }
        record = { ...found, input };
      }
    }
    const progress = new Progress(name, file, record);
    progress.#write(true);
    if (progress.#failedWrite !== undefined) {
      const elsewhere = dir === undefined ? " (--resume DIR keeps the progress in another folder)" : "";
      throw new UsageError(`cannot resume ${name}: ${progress.#failedWrite}${elsewhere}`);
    }
    return progress;
  }

  /** Whether message `n` (from 1) is done. */
  isDone(n: number): boolean {
    const r = this.#record;
    if (n <= r.done) return true;
    const ranges = r.ranges;
    let lo = 0;
    let hi = ranges.length - 1;
    while (lo <= hi) {
      const mid = (lo + hi) >> 1;
      if (n < ranges[mid][0]) hi = mid - 1;
      else if (n > ranges[mid][1]) lo = mid + 1;
      else return true;
    }
    return false;
  }

  /** Marks message `n` done; the progress file is rewritten once the current task ends. */
  done(n: number): void {
    const r = this.#record;
    const ranges = r.ranges;
    if (n === r.done + 1) {
      r.done = n;
      if (ranges.length > 0 && ranges[0][0] === n + 1) r.done = ranges.shift()![1];
    } else if (n > r.done) {
      const last = ranges[ranges.length - 1];
      if (last !== undefined && n === last[1] + 1) last[1] = n;
      else if (last === undefined || n > last[1] + 1) ranges.push([n, n]);
      else this.#insert(n);
    } else return;
    this.#dirty = true;
    if (!this.#scheduled) {
      this.#scheduled = true;
      queueMicrotask(() => {
        this.#scheduled = false;
        this.#write(false);
      });
    }
  }

  /** The slow path of {@linkcode Progress.done}: `n` falls below the last range. */
  #insert(n: number): void {
    const ranges = this.#record.ranges;
    let i = 0;
    while (i < ranges.length && ranges[i][1] + 1 < n) i++;
    const at = ranges[i];
    if (n >= at[0] && n <= at[1]) return;
    if (n === at[0] - 1) at[0] = n;
    else if (n === at[1] + 1) at[1] = n;
    else ranges.splice(i, 0, [n, n]);
    // Merge with the neighbours it now touches.
    const before = ranges[i - 1];
    if (before !== undefined && before[1] + 1 >= ranges[i][0]) {
      before[1] = Math.max(before[1], ranges[i][1]);
      ranges.splice(i, 1);
      i--;
    }
    const after = ranges[i + 1];
    if (after !== undefined && ranges[i][1] + 1 >= after[0]) {
      ranges[i][1] = Math.max(ranges[i][1], after[1]);
      ranges.splice(i + 1, 1);
    }
  }

  /** Writes what is recorded and fsyncs it: at the end of a run. Returns why it could not, if it could not. */
  finish(): string | undefined {
    this.#write(true);
    return this.#failedWrite;
  }

  /** Messages done now. */
  get doneCount(): number {
    return this.#record.done + this.#record.ranges.reduce((n, [a, b]) => n + b - a + 1, 0);
  }

  #write(sync: boolean): void {
    if (!sync && !this.#dirty) return;
    this.#dirty = false;
    const now = performance.now();
    const fsync = sync || now - this.#lastSync >= SYNC_EVERY_MS;
    const tmp = `${this.file}.tmp`;
    try {
      const fd = openSync(tmp, "w", 0o600);
      try {
        writeSync(fd, JSON.stringify(this.#record) + "\n");
        if (fsync) fsyncSync(fd);
      } finally {
        closeSync(fd);
      }
      renameSync(tmp, this.file);
      if (fsync) this.#lastSync = now;
      this.#failedWrite = undefined;
    } catch (error) {
      this.#failedWrite = `cannot write ${this.file}: ${code(error)}`;
    }
  }
}
