/**
 * The NDJSON file writer: lines are gathered in memory and appended in
 * chunks (at most one write in flight), so a busy collector makes a few large
 * writes rather than one per message.
 */
import { type FileHandle, open } from "node:fs/promises";

/** Pending bytes (as UTF-16 length, close enough) that trigger a write at once. */
const CHUNK = 256 * 1024;
/** Longest a line waits before it is written. */
const LINGER_MS = 100;

/** Appends lines to one file. */
export class NdjsonWriter {
  readonly path: string;
  #file: FileHandle;
  #pending: string[] = [];
  #pendingLength = 0;
  #writing: Promise<void> | undefined;
  #timer: ReturnType<typeof setTimeout> | undefined;
  #onError: (error: Error) => void;
  #failed = false;

  private constructor(path: string, file: FileHandle, onError: (error: Error) => void) {
    this.path = path;
    this.#file = file;
    this.#onError = onError;
  }

  /** Opens (creating it if needed) `path` for appending; rejects when it cannot, so a bad path fails at start. */
  static async open(path: string, onError: (error: Error) => void): Promise<NdjsonWriter> {
    return new NdjsonWriter(path, await open(path, "a"), onError);
  }

  /** Queues one line (without its newline). */
  write(line: string): void {
    if (this.#failed) return;
    this.#pending.push(line);
    this.#pendingLength += line.length + 1;
    // While a write is in flight, lines gather; its completion starts the next one.
    if (this.#writing !== undefined) return;
    if (this.#pendingLength >= CHUNK) this.#start();
    else if (this.#timer === undefined) {
      this.#timer = setTimeout(() => {
        this.#timer = undefined;
        if (this.#writing === undefined) this.#start();
      }, LINGER_MS);
      (this.#timer as { unref?: () => void }).unref?.();
    }
  }

  /** Starts writing everything pending (none in flight). */
  #start(): void {
    if (this.#pending.length === 0 || this.#failed) return;
    const text = this.#pending.join("\n") + "\n";
    this.#pending = [];
    this.#pendingLength = 0;
    this.#writing = this.#file.write(text).then(
      () => {
        this.#writing = undefined;
        if (this.#pendingLength >= CHUNK) this.#start();
        else if (this.#pending.length > 0 && this.#timer === undefined) {
          this.#timer = setTimeout(() => {
            this.#timer = undefined;
            if (this.#writing === undefined) this.#start();
          }, LINGER_MS);
          (this.#timer as { unref?: () => void }).unref?.();
        }
      },
      (error: Error) => {
        this.#writing = undefined;
        this.#failed = true;
        this.#pending = [];
        this.#onError(error);
      },
    );
  }

  /** Resolves when every line queued so far is in the file. */
  async flush(): Promise<void> {
    if (this.#timer !== undefined) {
      clearTimeout(this.#timer);
      this.#timer = undefined;
    }
    while (this.#writing !== undefined || (this.#pending.length > 0 && !this.#failed)) {
      if (this.#writing === undefined) this.#start();
      await this.#writing;
    }
  }

  /** Writes what is pending and closes the file. */
  async close(): Promise<void> {
    await this.flush();
    await this.#file.close();
  }
}
