/**
 * Where tally's output goes: results on stdout, one-line diagnostics on
 * stderr (`tally: ...`). Writes wait for the stream to drain, so a large
 * `--dry-run` piped into a slow reader keeps memory flat, and the last line
 * is out before the process exits.
 *
 * @module
 */
import process from "node:process";

interface Writable {
  write(chunk: string, callback?: (error?: Error | null) => void): boolean;
  once(event: "drain", listener: () => void): unknown;
  isTTY?: boolean;
}

/** The streams a command talks to; tests and the bench use the process's own. */
export interface Io {
  /** Writes to stdout, resolving once the stream can take more. */
  out(text: string): Promise<void>;
  /** Writes one diagnostic line to stderr, prefixed `tally: `. */
  error(line: string): void;
  /** Writes raw text to stderr (the progress bar). */
  errRaw(text: string): void;
  /** Whether stderr is a terminal. */
  errIsTTY: boolean;
  /** The environment variables. */
  env: Record<string, string | undefined>;
  /** Resolves when stdout and stderr have taken everything written. */
  settle(): Promise<void>;
  /** Called before each diagnostic line, so a progress bar can get out of the way. */
  beforeError?: () => void;
}

function write(stream: Writable, text: string): Promise<void> {
  return new Promise((resolve) => {
    let ok = true;
    try {
      ok = stream.write(text);
    } catch {
      // A closed pipe (tally ... | head): nothing more can be written, and that is not an error of ours.
      return resolve();
    }
    if (ok) resolve();
    else stream.once("drain", resolve);
  });
}

/** The process's stdout and stderr. */
export function processIo(): Io {
  const stdout = process.stdout as unknown as Writable;
  const stderr = process.stderr as unknown as Writable;
  // An EPIPE on stdout must end quietly, not with a stack trace.
  (process.stdout as unknown as { on(e: string, f: () => void): void }).on?.("error", () => {});
  const io: Io = {
    out: (text) => write(stdout, text),
    error(line) {
      io.beforeError?.();
      stderr.write(`tally: ${line}\n`);
    },
    errRaw: (text) => void stderr.write(text),
    errIsTTY: stderr.isTTY === true,
    env: process.env,
    settle: async () => {
      await new Promise<void>((resolve) => stdout.write("", () => resolve()));
      await new Promise<void>((resolve) => stderr.write("", () => resolve()));
    },
  };
  return io;
}
