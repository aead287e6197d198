import fs from "node:fs";
import path from "node:path";
import process from "node:process";
import { setTimeout as nodeSetTimeout } from "node:timers";
import {
  codeOf,
  type Durability,
  RECORD_FRAMING,
  RECORD_HEADER,
  scanRecords,
  type Storage,
  type StorageLimits,
  type StorageOpening,
  type StorageProblem,
  type StoredSegment,
  TEMPORARY,
  type WhenFull,
} from "../lib/storage.ts";

/**
 * Options of {@linkcode fileStorage}.
 *
 * @example
 * ```ts
 * import { fileStorage, type FileStorageOptions } from "@tally/analytics/storage";
 *
 * const options: FileStorageOptions = { durability: "always", maxStorageBytes: 10_000_000 };
 * const storage = fileStorage("./.tally", options);
 * ```
 */
export interface FileStorageOptions {
  /**
   * `"interval"`: each message is written to the file (the operating system
   * has it: a crash of the process loses nothing) and the file is synced to
   * the disk at most `syncInterval` ms later (a power loss loses at most that
   * window). `"always"`: synced after every message (a power loss loses
   * nothing that a call returned), at the cost of one fdatasync per call.
   * @default {"interval"}
   */
  durability?: Durability;
  /**
   * Milliseconds between a write and its sync with `durability: "interval"`.
   * @default {50}
   */
  syncInterval?: number;
  /**
   * Bytes of segment files the folder may hold; then `whenFull` decides.
   * @default {104857600}
   */
  maxStorageBytes?: number;
  /**
   * Milliseconds a sealed segment may wait; an older one is reported as
   * `expired` (through `onError`) instead of being sent.
   * @default {604800000}
   */
  maxStorageAge?: number;
  /**
   * When `maxStorageBytes` is reached: drop the oldest waiting segment
   * (reported as `queue_full`), or refuse the new message (reported as `queue_full`).
   * @default {"drop-oldest"}
   */
  whenFull?: WhenFull;
}

const DEFAULT_SYNC_INTERVAL = 50;
const DEFAULT_MAX_BYTES = 100 * 1024 * 1024;
const DEFAULT_MAX_AGE = 7 * 24 * 60 * 60 * 1000;
/** Sealed segments awaiting their sync before it is done at once. */
const MAX_PENDING_SYNCS = 64;
/** Waits between attempts at a temporary error (EAGAIN, EBUSY, EMFILE...), in ms. */
const RETRY_WAITS = [5, 20, 100];

const SEALED = /^(\d{12})\.seg$/;
const OPEN = /^open-(\d{12})\.seg$/;
const TMP = /^tmp-(\d{12})\.seg$/;
const FREE = /^\d+\.free$/;
/** Delivered segment files kept to be reused (creating a file costs far more than truncating one). */
const MAX_FREE = 16;
/** Empty segment files kept ready. */
const SPARES = 16;
const pad = (id: number): string => String(id).padStart(12, "0");

const sleepSync = (ms: number): void => {
  Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms);
};

/** Runs `fn`, again after a short wait while it fails with a temporary error. */
function retrying<T>(fn: () => T): T {
  for (let attempt = 0;; attempt++) {
    try {
      return fn();
    } catch (error) {
      if (attempt >= RETRY_WAITS.length || !TEMPORARY.has(codeOf(error) ?? "")) throw error;
      sleepSync(RETRY_WAITS[attempt]);
    }
  }
}

const ignoring = (codes: string[], fn: () => void): void => {
  try {
    fn();
  } catch (error) {
    if (!codes.includes(codeOf(error) ?? "")) throw error;
  }
};

/** Folders (resolved) whose lock a client of this process holds: a second client here is refused by this, not by pid. */
const HELD = new Set<string>();

/** The part of Deno's file API the lock uses: an OS lock that the kernel releases when the process dies. */
interface DenoLockFile {
  tryLockSync(exclusive: boolean): boolean;
  unlockSync(): void;
  truncateSync(length?: number): void;
  writeSync(data: Uint8Array): number;
  close(): void;
}
interface DenoFiles {
  openSync(path: string, options: { read: boolean; write: boolean; create: boolean }): DenoLockFile;
}
const denoFiles = (): DenoFiles | undefined => {
  const deno = (globalThis as { Deno?: Partial<DenoFiles> }).Deno;
  return typeof deno?.openSync === "function" ? deno as DenoFiles : undefined;
};

/** When process `pid` started, in clock ticks since boot (Linux, /proc), to tell a reused pid from its first owner. */
function startTime(pid: number): string | undefined {
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, "utf8");
    // Field 22, counted after the command name's closing parenthesis (the name may hold spaces).
    return stat.slice(stat.lastIndexOf(")") + 2).split(" ")[19];
  } catch {
    return undefined;
  }
}

/** This process's lock line: its pid and, where /proc tells, when it started. */
const lockLine = (): string => `${process.pid} ${startTime(process.pid) ?? ""}`.trim() + "\n";

/**
 * Whether the process that wrote lock line `text` still runs: its pid runs and, where /proc tells, started when the
 * line says (so a pid reused after a restart, as a container's pid 1 always is, is not taken for the dead owner).
 */
function lockOwnerRuns(text: string): boolean {
  const [pidText, started] = text.trim().split(" ");
  const pid = Number.parseInt(pidText, 10);
  if (!(Number.isInteger(pid) && pid > 0)) return false;
  // Not held by a client of this process (HELD says so): a lock with this pid is from an earlier process.
  if (pid === process.pid) return false;
  try {
    process.kill(pid, 0);
  } catch (error) {
    if (codeOf(error) === "ESRCH") return false;
    if (codeOf(error) !== "EPERM") return true; // cannot tell: assume it runs, never take a live lock
  }
  const now = startTime(pid);
  return started === undefined || now === undefined || now === started;
}

/** The text of `file`, or `fallback` when it cannot be read. */
function readOr(file: string, fallback: string): string {
  try {
    return fs.readFileSync(file, "utf8");
  } catch {
    return fallback;
  }
}

/** Why a folder cannot be used, in words. */
function explain(error: unknown, dir: string): string {
  const name = (error as Error)?.name;
  const text = String((error as Error)?.message ?? error);
  if (
    name === "NotCapable" || name === "PermissionDenied" && /--allow-/.test(text) || /--allow-(read|write)/.test(text)
  ) {
    return `Deno needs read and write access to it (run with --allow-read=${dir} --allow-write=${dir})`;
  }
  switch (codeOf(error)) {
    case "EACCES":
    case "EPERM":
      return "permission denied (the folder must be writable by this process)";
    case "EROFS":
      return "the file system is read-only";
    case "ENOTDIR":
      return "a part of its path is a file, not a folder";
    case "EEXIST":
      return "it exists and is not a folder";
    case "ENOSPC":
      return "no space left on the device";
    default:
      return text;
  }
}

/**
 * A folder of segment files, as `Analytics` takes it in its `storage`
 * option. Create it with {@linkcode fileStorage}; the client opens it
 * (takes its lock, reads what is there) when it is constructed and closes
 * it in `close()`.
 */
export class FileStorage implements Storage {
  /** The folder, as given. */
  readonly dir: string;
  /** The bounds the client holds to. */
  readonly limits: StorageLimits;
  /** When writes reach the disk. */
  readonly durability: Durability;
  /** Milliseconds between a write and its sync (`durability: "interval"`). */
  readonly syncInterval: number;
  #fd = -1;
  #fdId = 0;
  #written = 0;
  #dirty = false;
  #dirDirty = false;
  /** Sealed segments' files awaiting their sync and close (`interval`), by segment. */
  readonly #pending = new Map<number, number>();
  #timer: ReturnType<typeof nodeSetTimeout> | undefined;
  #open = false;
  /** Names of delivered segment files kept for reuse. */
  readonly #free: string[] = [];
  #freeCounter = 0;
  /** Empty files made ahead, off the main thread, with their descriptors: a new segment is then one rename. */
  readonly #spares: { name: string; fd: number }[] = [];
  #sparesComing = 0;
  #debug: (line: string) => void = () => {};
  #recovered: StorageOpening | undefined;

  /** See {@linkcode fileStorage}. */
  constructor(dir: string, options: FileStorageOptions = {}) {
    if (typeof dir !== "string" || dir === "") {
      throw new TypeError('Cannot create fileStorage: expected a folder path, such as "./.tally"');
    }
    if (typeof options !== "object" || options === null) {
      throw new TypeError("Cannot create fileStorage: options must be an object");
    }
    const durability = options.durability ?? "interval";
    if (durability !== "always" && durability !== "interval") {
      throw new TypeError(
        `Cannot create fileStorage: durability must be "always" or "interval", got ${String(durability)}`,
      );
    }
    const whenFull = options.whenFull ?? "drop-oldest";
    if (whenFull !== "drop-oldest" && whenFull !== "drop-newest") {
      throw new TypeError(
        `Cannot create fileStorage: whenFull must be "drop-oldest" or "drop-newest", got ${String(whenFull)}`,
      );
    }
    const positive = (name: string, value: unknown, fallback: number): number => {
      if (value === undefined) return fallback;
      if (typeof value !== "number" || !Number.isFinite(value)) {
        throw new TypeError(`Cannot create fileStorage: ${name} must be a finite number, got ${String(value)}`);
      }
      if (value <= 0) throw new RangeError(`Cannot create fileStorage: ${name} must be more than 0, got ${value}`);
      return value;
    };
    this.dir = dir;
    this.durability = durability;
    this.syncInterval = positive("syncInterval", options.syncInterval, DEFAULT_SYNC_INTERVAL);
    this.limits = {
      maxStorageBytes: positive("maxStorageBytes", options.maxStorageBytes, DEFAULT_MAX_BYTES),
      maxStorageAge: positive("maxStorageAge", options.maxStorageAge, DEFAULT_MAX_AGE),
      whenFull,
    };
  }

  /** What the last `open()` found: the segments it queued and the files it cut or quarantined. */
  get recovered(): StorageOpening | undefined {
    return this.#recovered;
  }

  #path(name: string): string {
    return path.join(this.dir, name);
  }

  #openPath(id: number): string {
    return this.#path(`open-${pad(id)}.seg`);
  }

  #sealedPath(id: number): string {
    return this.#path(`${pad(id)}.seg`);
  }

  /** Takes the lock and rebuilds the queue from the folder's files. */
  open(debug: (line: string) => void): StorageOpening {
    if (this.#open) throw new Error(`Cannot open storage ${this.dir}: a client of this process already uses it`);
    this.#debug = debug;
    try {
      fs.mkdirSync(this.dir, { recursive: true });
      if (!fs.statSync(this.dir).isDirectory()) throw Object.assign(new Error("not a folder"), { code: "EEXIST" });
    } catch (error) {
      throw new Error(`Cannot open storage ${this.dir}: ${explain(error, this.dir)}`, { cause: error });
    }
    this.#lock();
    try {
      this.#recovered = this.#recover();
    } catch (error) {
      this.#unlock();
      throw new Error(`Cannot open storage ${this.dir}: ${explain(error, this.dir)}`, { cause: error });
    }
    this.#open = true;
    this.#refill();
    return this.#recovered;
  }

  /** The lock file held open by Deno's OS lock, while this client has the folder. */
  #lockFile: DenoLockFile | undefined;

  /**
   * Takes the folder's lock. On Deno, an OS lock on `lock` (`flock`: the kernel
   * drops it when the process dies, so a killed process's folder is taken back
   * with no more permissions than the folder's). On Node and Bun, which have no
   * file locks, `lock` is created exclusively and holds the pid and its start
   * time; a lock whose process no longer runs is taken over.
   */
  #lock(): void {
    const key = path.resolve(this.dir);
    if (HELD.has(key)) {
      throw new Error(`Cannot open storage ${this.dir}: a client of this process (pid ${process.pid}) already uses it`);
    }
    const file = this.#path("lock");
    const deno = denoFiles();
    if (deno !== undefined) this.#lockDeno(deno, file);
    else this.#lockByPid(file);
    HELD.add(key);
  }

  #lockDeno(deno: DenoFiles, file: string): void {
    let lock: DenoLockFile;
    try {
      lock = deno.openSync(file, { read: true, write: true, create: true });
    } catch (error) {
      throw new Error(`Cannot open storage ${this.dir}: ${explain(error, this.dir)}`, { cause: error });
    }
    if (!lock.tryLockSync(true)) {
      lock.close();
      const owner = Number.parseInt(readOr(file, ""), 10);
      throw new Error(
        `Cannot open storage ${this.dir}: another process${
          Number.isInteger(owner) ? ` (pid ${owner})` : ""
        } is using it`,
      );
    }
    const left = readOr(file, "").trim();
    if (left !== "") this.#debug(`storage ${this.dir}: taking over the lock of pid ${left}, which no longer runs`);
    lock.truncateSync(0);
    lock.writeSync(new TextEncoder().encode(lockLine()));
    this.#lockFile = lock;
  }

  #lockByPid(file: string): void {
    for (let attempt = 0; attempt < 3; attempt++) {
      try {
        const fd = fs.openSync(file, "wx");
        try {
          fs.writeSync(fd, lockLine());
        } finally {
          fs.closeSync(fd);
        }
        return;
      } catch (error) {
        if (codeOf(error) !== "EEXIST") {
          throw new Error(`Cannot open storage ${this.dir}: ${explain(error, this.dir)}`, { cause: error });
        }
      }
      let text: string;
      try {
        text = fs.readFileSync(file, "utf8");
      } catch (error) {
        if (codeOf(error) === "ENOENT") continue;
        throw new Error(`Cannot open storage ${this.dir}: ${explain(error, this.dir)}`, { cause: error });
      }
      if (lockOwnerRuns(text)) {
        throw new Error(
          `Cannot open storage ${this.dir}: another process (pid ${Number.parseInt(text, 10)}) is using it`,
        );
      }
      this.#debug(`storage ${this.dir}: taking over the lock of pid ${text.trim() || "?"}, which no longer runs`);
      ignoring(["ENOENT"], () => fs.unlinkSync(file));
    }
    throw new Error(`Cannot open storage ${this.dir}: another process keeps taking its lock`);
  }

  #unlock(): void {
    HELD.delete(path.resolve(this.dir));
    const file = this.#path("lock");
    const lock = this.#lockFile;
    this.#lockFile = undefined;
    if (lock !== undefined) {
      // Unlinked while still locked, so no other process can lock the old file after we let go.
      ignoring(["ENOENT"], () => fs.unlinkSync(file));
      try {
        lock.unlockSync();
      } catch { /* closing releases it too */ }
      lock.close();
      return;
    }
    try {
      if (Number.parseInt(fs.readFileSync(file, "utf8"), 10) === process.pid) fs.unlinkSync(file);
    } catch { /* already gone */ }
  }

  #recover(): StorageOpening {
    const sealed = new Map<number, string>();
    const open = new Map<number, string>();
    for (const name of fs.readdirSync(this.dir)) {
      let match = SEALED.exec(name);
      if (match !== null) sealed.set(Number(match[1]), name);
      else if ((match = OPEN.exec(name)) !== null) open.set(Number(match[1]), name);
      else if (FREE.test(name)) {
        this.#free.push(name);
        this.#freeCounter = Math.max(this.#freeCounter, Number.parseInt(name, 10));
      } else if (TMP.test(name)) {
        // A rewrite that a crash cut short: the file it was to replace is still there, whole.
        ignoring(["ENOENT"], () => fs.unlinkSync(this.#path(name)));
      }
    }
    const ids = [...new Set([...sealed.keys(), ...open.keys()])].sort((a, b) => a - b);
    const segments: StoredSegment[] = [];
    const problems: StorageProblem[] = [];
    for (const id of ids) {
      if (sealed.has(id) && open.has(id)) {
        // Cannot happen through rename; keep the sealed one, put the other aside.
        problems.push(
          this.#quarantineFile(open.get(id)!, 0, 0, "unreadable", "a sealed file of the same number exists"),
        );
        open.delete(id);
      }
      const name = sealed.get(id) ?? open.get(id)!;
      const found = this.#recoverFile(id, name, !sealed.has(id), problems);
      if (found !== undefined) segments.push(found);
    }
    if (ids.length > 0) this.#syncDir();
    const nextId = ids.length === 0 ? 1 : ids[ids.length - 1] + 1;
    if (segments.length > 0) {
      const n = segments.reduce((sum, s) => sum + s.count, 0);
      this.#debug(`storage ${this.dir}: ${n} messages in ${segments.length} segments to send`);
    }
    return { segments, problems, nextId };
  }

  #recoverFile(id: number, name: string, isOpen: boolean, problems: StorageProblem[]): StoredSegment | undefined {
    const file = this.#path(name);
    let bytes: Uint8Array;
    let mtime: number;
    try {
      const stat = fs.statSync(file);
      if (!stat.isFile()) {
        problems.push(this.#quarantineFile(name, 0, 0, "unreadable", "it is not a regular file"));
        return undefined;
      }
      mtime = stat.mtimeMs;
      bytes = retrying(() => fs.readFileSync(file));
    } catch (error) {
      if (codeOf(error) === "ENOENT") return undefined;
      problems.push(this.#quarantineFile(name, 0, 0, "unreadable", `it cannot be read: ${explain(error, this.dir)}`));
      return undefined;
    }
    if (bytes.length === 0) {
      if (isOpen) {
        // A segment a crash left right after creating it: nothing was written to it.
        ignoring(["ENOENT"], () => fs.unlinkSync(file));
        return undefined;
      }
      problems.push(this.#quarantineFile(name, 0, 0, "unreadable", "the file is empty"));
      return undefined;
    }
    const scan = scanRecords(bytes);
    const count = scan.starts.length;
    const target = this.#sealedPath(id);
    if (count === 0) {
      problems.push(
        this.#quarantineFile(name, 0, bytes.length, "unreadable", `no intact record in its ${bytes.length} bytes`),
      );
      return undefined;
    }
    let size = scan.end;
    if (scan.gaps > 0) {
      // Keep the intact records in a fresh file (written whole, then renamed over), the original aside.
      const quarantined = this.#quarantineCopy(name);
      const out = new Uint8Array(count * RECORD_FRAMING + scan.lengths.reduce((a, b) => a + b, 0));
      let at = 0;
      for (let i = 0; i < count; i++) {
        const from = scan.starts[i] - RECORD_HEADER;
        const to = scan.starts[i] + scan.lengths[i] + 1;
        out.set(bytes.subarray(from, to), at);
        at += to - from;
      }
      const tmp = this.#path(`tmp-${pad(id)}.seg`);
      const fd = fs.openSync(tmp, "w");
      try {
        fs.writeSync(fd, out);
        fs.fdatasyncSync(fd);
      } finally {
        fs.closeSync(fd);
      }
      fs.renameSync(tmp, target);
      if (isOpen) ignoring(["ENOENT"], () => fs.unlinkSync(file));
      size = out.length;
      const lost = scan.lostBytes + scan.tailBytes;
      problems.push({
        file: name,
        kind: "corrupt",
        kept: count,
        lostBytes: lost,
        quarantined,
        detail: `${scan.gaps + (scan.tailBytes > 0 ? 1 : 0)} unreadable stretches (${lost} bytes) were dropped, ` +
          `${count} intact messages kept`,
      });
    } else {
      if (scan.tailBytes > 0) {
        fs.truncateSync(file, scan.end);
        problems.push({
          file: name,
          kind: "torn",
          kept: count,
          lostBytes: scan.tailBytes,
          detail: `a torn record at its end (${scan.tailBytes} bytes) was cut off, ${count} intact messages kept`,
        });
      }
      if (isOpen) fs.renameSync(file, target);
    }
    return { id, count, bytes: size, sealedAt: mtime };
  }

  #quarantineDir(): string {
    const dir = this.#path("quarantine");
    fs.mkdirSync(dir, { recursive: true });
    return dir;
  }

  #quarantineName(name: string): string {
    const dir = this.#quarantineDir();
    let target = path.join(dir, name);
    if (fs.existsSync(target)) target = path.join(dir, `${Date.now()}-${name}`);
    return target;
  }

  #quarantineCopy(name: string): string {
    const target = this.#quarantineName(name);
    fs.copyFileSync(this.#path(name), target);
    return target;
  }

  #quarantineFile(
    name: string,
    kept: number,
    lostBytes: number,
    kind: StorageProblem["kind"],
    detail: string,
  ): StorageProblem {
    const target = this.#quarantineName(name);
    fs.renameSync(this.#path(name), target);
    return { file: name, kind, kept, lostBytes, quarantined: target, detail };
  }

  /** Appends `bytes[from..to)` to open segment `id`; a failed write is cut back off, so the file stays whole. */
  append(id: number, bytes: Uint8Array, from: number, to: number): void {
    if (this.#fdId !== id) this.#create(id);
    const fd = this.#fd;
    let at = from;
    try {
      while (at < to) at += fs.writeSync(fd, bytes, at, to - at);
    } catch (error) {
      if (at > from) {
        try {
          fs.ftruncateSync(fd, this.#written);
        } catch { /* the next start cuts the torn tail */ }
      }
      throw error;
    }
    this.#written += to - from;
    if (this.durability === "always") fs.fdatasyncSync(fd);
    else {
      this.#dirty = true;
      this.#schedule();
    }
  }

  #create(id: number): void {
    if (this.#fd >= 0) this.#retire(this.#fdId, this.#fd);
    this.#fd = -1;
    this.#fdId = 0;
    const target = this.#openPath(id);
    let fd = -1;
    const spare = this.#spares.pop();
    if (spare !== undefined) {
      try {
        fs.renameSync(this.#path(spare.name), target);
        fd = spare.fd;
      } catch {
        fs.closeSync(spare.fd);
      }
    }
    this.#refill();
    const free = fd < 0 ? this.#free.pop() : undefined;
    if (free !== undefined) {
      // Truncated first, then renamed: a crash in between leaves an empty spare, never old records in a segment.
      try {
        fd = fs.openSync(this.#path(free), "w");
        fs.renameSync(this.#path(free), target);
      } catch {
        if (fd >= 0) fs.closeSync(fd);
        fd = -1;
      }
    }
    if (fd < 0) fd = retrying(() => fs.openSync(target, "w"));
    this.#fd = fd;
    this.#fdId = id;
    this.#written = 0;
    if (this.durability === "always") this.#syncDir();
    else this.#dirDirty = true;
  }

  /** Starts making empty spare files in libuv's pool until enough are ready or coming. */
  #refill(): void {
    while (this.#open && this.#spares.length + this.#sparesComing < SPARES) {
      this.#sparesComing++;
      const name = `${++this.#freeCounter}.free`;
      fs.open(this.#path(name), "w", (error, fd) => {
        this.#sparesComing--;
        if (error) return;
        if (this.#open) this.#spares.push({ name, fd });
        else {
          fs.close(fd, () => {});
          fs.unlink(this.#path(name), () => {});
        }
      });
    }
  }

  /** A file done with: closed now (`always`), or after its sync (`interval`). */
  #retire(id: number, fd: number): void {
    if (this.durability === "always") {
      fs.closeSync(fd);
      return;
    }
    this.#pending.set(id, fd);
    // A burst seals many files before the timer can fire: their syncs start now, off the main thread.
    if (this.#pending.size > MAX_PENDING_SYNCS) this.#syncSoon();
    else this.#schedule();
  }

  /** Closes and deletes open segment `id`, which holds no record. */
  discard(id: number): void {
    if (this.#fdId === id) {
      const fd = this.#fd;
      this.#fd = -1;
      this.#fdId = 0;
      fs.closeSync(fd);
    }
    ignoring(["ENOENT"], () => fs.unlinkSync(this.#openPath(id)));
  }

  /** Seals segment `id`: closes it and renames `open-N.seg` to `N.seg` (atomic). */
  seal(id: number): void {
    if (this.#fdId === id) {
      const fd = this.#fd;
      this.#fd = -1;
      this.#fdId = 0;
      this.#retire(id, fd);
    }
    fs.renameSync(this.#openPath(id), this.#sealedPath(id));
    if (this.durability === "always") this.#syncDir();
    else {
      this.#dirDirty = true;
      this.#schedule();
    }
  }

  /** Reads sealed segment `id`. */
  read(id: number): Uint8Array {
    return retrying(() => fs.readFileSync(this.#sealedPath(id)));
  }

  /** Deletes sealed segment `id`. */
  remove(id: number): void {
    const fd = this.#pending.get(id);
    if (fd !== undefined) {
      // Delivered before its sync: nothing left to sync.
      this.#pending.delete(id);
      fs.closeSync(fd);
    }
    if (this.#free.length < MAX_FREE) {
      const name = `${++this.#freeCounter}.free`;
      try {
        fs.renameSync(this.#sealedPath(id), this.#path(name));
        this.#free.push(name);
        return;
      } catch { /* deleted below instead */ }
    }
    ignoring(["ENOENT"], () => retrying(() => fs.unlinkSync(this.#sealedPath(id))));
  }

  /** Moves sealed segment `id` to `quarantine/`; returns where. */
  quarantine(id: number): string {
    const name = `${pad(id)}.seg`;
    const target = this.#quarantineName(name);
    fs.renameSync(this.#path(name), target);
    return target;
  }

  #schedule(): void {
    if (this.#timer !== undefined) return;
    this.#timer = nodeSetTimeout(() => {
      this.#timer = undefined;
      this.#syncSoon();
    }, this.syncInterval);
    this.#timer.unref();
  }

  /**
   * The `interval` sync, off the main thread (libuv's pool): the open file,
   * the sealed files not yet deleted (then closed), then the folder's names.
   */
  #syncSoon(): void {
    const fail = (error: unknown) =>
      error && this.#debug(`storage ${this.dir}: cannot sync to the disk: ${explain(error, this.dir)}`);
    if (this.#dirty && this.#fd >= 0) fs.fdatasync(this.#fd, fail);
    this.#dirty = false;
    for (const [id, fd] of this.#pending) {
      this.#pending.delete(id);
      fs.fdatasync(fd, (error) => {
        fail(error);
        fs.close(fd, () => {});
      });
    }
    if (this.#dirDirty) {
      this.#dirDirty = false;
      fs.open(this.dir, "r", (error, fd) => {
        if (error) return;
        fs.fsync(fd, () => fs.close(fd, () => {}));
      });
    }
  }

  /** Syncs what was written since the last sync to the disk, now (files, then the folder's names). */
  #syncNow(): void {
    if (this.#timer !== undefined) clearTimeout(this.#timer);
    this.#timer = undefined;
    try {
      if (this.#dirty && this.#fd >= 0) fs.fdatasyncSync(this.#fd);
      this.#dirty = false;
      for (const [id, fd] of this.#pending) {
        this.#pending.delete(id);
        try {
          fs.fdatasyncSync(fd);
        } finally {
          fs.closeSync(fd);
        }
      }
      if (this.#dirDirty) this.#syncDir();
      this.#dirDirty = false;
    } catch (error) {
      this.#debug(`storage ${this.dir}: cannot sync to the disk: ${explain(error, this.dir)}`);
    }
  }

  #syncDir(): void {
    let fd = -1;
    try {
      fd = fs.openSync(this.dir, "r");
      fs.fsyncSync(fd);
    } catch {
      // Some systems cannot sync a folder; the files themselves are synced.
    } finally {
      if (fd >= 0) fs.closeSync(fd);
    }
  }

  /** Syncs and closes every file, and releases the lock. */
  close(): void {
    if (!this.#open) return;
    this.#open = false;
    if (this.#fd >= 0) {
      this.#pending.set(this.#fdId, this.#fd);
      this.#dirty = false;
      this.#fd = -1;
      this.#fdId = 0;
    }
    this.#syncNow();
    for (const name of this.#free.splice(0)) ignoring(["ENOENT"], () => fs.unlinkSync(this.#path(name)));
    for (const { name, fd } of this.#spares.splice(0)) {
      fs.closeSync(fd);
      ignoring(["ENOENT"], () => fs.unlinkSync(this.#path(name)));
    }
    this.#unlock();
  }
}

/**
 * A disk queue in folder `dir` for `new Analytics({ storage })`: each
 * message is written to a segment file before the call returns, and what a
 * crashed or killed process left there is sent when the next one starts.
 * One process per folder (a lock file). Deno needs `--allow-read` and
 * `--allow-write` for the folder.
 *
 * @example
 * ```ts
 * import { Analytics } from "@tally/analytics";
 * import { fileStorage } from "@tally/analytics/storage";
 *
 * const analytics = new Analytics({
 *   writeKey: "YOUR_WRITE_KEY",
 *   storage: fileStorage("./.tally", { durability: "interval", syncInterval: 50 }),
 * });
 * analytics.track({ userId: "u1", event: "Signed Up" });
 * await analytics.close({ timeout: 5000 });
 * ```
 */
export function fileStorage(dir: string, options: FileStorageOptions = {}): FileStorage {
  return new FileStorage(dir, options);
}
