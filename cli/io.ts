/**
 * Where tally's output goes: results on stdout, one-line diagnostics on
 * stderr (`tally: ...`). Writes to stdout wait until the stream has taken
 * them, so a large `--dry-run` piped into a slow reader keeps memory flat,
 * and the last line is out before the process exits.
 *
 * Whatever may hold input (a result, a diagnostic) is cleaned on the way
 * out: every write key in effect redacted ({@linkcode Secrets}), and in a
 * diagnostic every control character escaped (cli/escape.ts). Tally's fixed
 * text (help, the version, a summary's counts) holds no input and is written
 * as it is: cleaning it could only redact ordinary words or numbers equal to
 * a short key, which would give the key away.
 *
 * When a stream can take no more, because its reader went away (`| head`,
 * `| true`: EPIPE) or a write failed (`>/dev/full`), every write pending on
 * it resolves at once, later ones are dropped, and {@linkcode Io.lost} is
 * aborted so the command stops. A closed pipe is the reader's choice and
 * says nothing; any other failure of stdout is one line on stderr. Nothing
 * here waits for an event that a dead stream never sends (`drain`): each
 * write waits for its own callback, which every runtime calls, with the
 * error when there is one.
 *
 * @module
 */
import process from "node:process";
import { escapeControls } from "./escape.ts";
import { Secrets } from "./secrets.ts";

/** The part of a Node-style writable stream tally uses. */
export interface Writable {
  write(chunk: string, callback?: (error?: Error | null) => void): boolean;
  on(event: "error", listener: (error: Error) => void): unknown;
  isTTY?: boolean;
}

/** The streams a command talks to; tests and the bench use the process's own. */
export interface Io {
  /** Writes a result to stdout, the write keys redacted; resolves once the stream can take more (at once when stdout is lost). */
  out(text: string): Promise<void>;
  /** Writes tally's own fixed text (help, the version, counts) to stdout as it is. */
  outFixed(text: string): Promise<void>;
  /** Writes one diagnostic line to stderr, prefixed `tally: `, cleaned as {@linkcode Io.clean} does. */
  error(line: string): void;
  /** Writes one line of tally's own fixed text (counts, a notice) to stderr, prefixed `tally: `, as it is. */
  errorFixed(line: string): void;
  /** `line` as a diagnostic shows it: the write keys redacted, control characters escaped. */
  clean(line: string): string;
  /** The write keys in effect, which nothing written may show; `main` sets them from its arguments. */
  secrets: Secrets;
  /** Writes raw text to stderr (the progress bar). */
  errRaw(text: string): void;
  /** Whether stderr is a terminal. */
  errIsTTY: boolean;
  /** The environment variables. */
  env: Record<string, string | undefined>;
  /** Resolves when stdout and stderr have taken everything written (or are lost). */
  settle(): Promise<void>;
  /** Called before each diagnostic line, so a progress bar can get out of the way. */
  beforeError?: () => void;
  /**
   * Aborted when stdout or stderr can take no more; its `reason` is the
   * error (`code` `EPIPE` when the reader went away). Commands stop reading
   * input then, and give what they already queued at most their timeout.
   */
  lost: AbortSignal;
}

/** The exit code of a command cut short because its reader went away: 128 + SIGPIPE, as a shell reports `yes | head`. */
export const EXIT_READER_GONE = 141;

const errorCode = (error: unknown): string | undefined => {
  const code = (error as { code?: unknown } | null)?.code;
  return typeof code === "string" ? code : undefined;
};

/**
 * The exit code that output lost on `io` calls for, or undefined while it
 * is not lost: {@linkcode EXIT_READER_GONE} when a reader went away, 1 when
 * a write failed (the result did not reach where it was sent).
 */
export function lostExitCode(io: Io): number | undefined {
  if (!io.lost.aborted) return undefined;
  return errorCode(io.lost.reason) === "EPIPE" ? EXIT_READER_GONE : 1;
}

/** What went wrong with a write, in words. */
function why(error: unknown): string {
  switch (errorCode(error)) {
    case "ENOSPC":
      return "no space left on device";
    case "EIO":
      return "input/output error";
    case "EBADF":
      return "it is closed";
    case "EFBIG":
      return "the file is too large";
    case "EDQUOT":
      return "disk quota exceeded";
    default:
      return (error as Error)?.message ?? String(error);
  }
}

/** One output stream: writes that never wait for an event a dead stream will not send. */
class Channel {
  readonly #stream: Writable;
  readonly #onLost: (error: Error) => void;
  /** Resolvers of writes waiting on this stream, released when it is lost. */
  readonly #waiting = new Set<() => void>();
  #lost = false;

  constructor(stream: Writable, onLost: (error: Error) => void) {
    this.#stream = stream;
    this.#onLost = onLost;
    // Without a listener, a failed write is an uncaught error on Node and Deno.
    stream.on?.("error", (error) => this.#fail(error));
  }

  get lost(): boolean {
    return this.#lost;
  }

  #fail(error: unknown): void {
    if (this.#lost) return;
    this.#lost = true;
    for (const release of this.#waiting) release();
    this.#waiting.clear();
    this.#onLost(error instanceof Error ? error : new Error(String(error)));
  }

  /**
   * Writes `text`; resolves at once when the stream took it without
   * pushing back (or `flushed` is false and it was accepted), else when its
   * callback fires or the stream is lost.
   */
  write(text: string, flushed = false): Promise<void> {
    if (this.#lost) return Promise.resolve();
    return new Promise((resolve) => {
      let done = false;
      const release = (): void => {
        if (done) return;
        done = true;
        this.#waiting.delete(release);
        resolve();
      };
      this.#waiting.add(release);
      let ok: boolean;
      try {
        ok = this.#stream.write(text, (error) => {
          if (error) this.#fail(error);
          release();
        });
      } catch (error) {
        // Some runtimes throw on a stream already known to be closed.
        this.#fail(error);
        return release();
      }
      if (ok && !flushed) release();
    });
  }
}

/** The process's stdout and stderr. */
export function processIo(): Io {
  return streamIo(process.stdout as unknown as Writable, process.stderr as unknown as Writable, process.env);
}

/** Tally's streams over any two writable streams (the process's own, or a test's). */
export function streamIo(out: Writable, err: Writable, env: Record<string, string | undefined>): Io {
  const lost = new AbortController();
  let first = true;
  const onLost = (name: string) => (error: Error): void => {
    if (!first) return;
    first = false;
    // A reader that went away (| head) chose to; a failed write (>/dev/full) is worth one line, when stderr can take it.
    if (name === "stdout" && errorCode(error) !== "EPIPE") {
      void stderr.write(`tally: Cannot write to stdout: ${why(error)}\n`);
    }
    // A write may fail inside a library call (a dry run's batch going out): the command hears of it after that call.
    queueMicrotask(() => lost.abort(error));
  };
  const stdout = new Channel(out, onLost("stdout"));
  const stderr = new Channel(err, onLost("stderr"));
  const io: Io = {
    out: (text) => stdout.write(io.secrets.text(text)),
    outFixed: (text) => stdout.write(text),
    error: (line) => io.errorFixed(io.clean(line)),
    errorFixed(line) {
      io.beforeError?.();
      void stderr.write(`tally: ${line}\n`);
    },
    // Redacted first: an escaped key would no longer be found in the form the library's redaction knows.
    clean: (line) => escapeControls(io.secrets.text(line)),
    secrets: Secrets.none,
    errRaw: (text) => void stderr.write(text),
    errIsTTY: err.isTTY === true,
    env,
    settle: async () => {
      await stdout.write("", true);
      await stderr.write("", true);
    },
    lost: lost.signal,
  };
  return io;
}
