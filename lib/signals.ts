import type { FlushResult } from "./types.ts";

/** A signal {@linkcode closeOnSignals} can handle. */
type ShutdownSignal = "SIGTERM" | "SIGINT" | "SIGHUP";

/** Options for {@linkcode Analytics.closeOnSignals}. */
export interface CloseOnSignalsOptions {
  /**
   * Milliseconds to deliver what is queued before the signal takes its course;
   * well under Kubernetes' 30 s grace period.
   * @default {10000}
   */
  timeout?: number;
  /**
   * The signals to handle.
   * @default {["SIGTERM", "SIGINT"]}
   */
  signals?: readonly ("SIGTERM" | "SIGINT" | "SIGHUP")[];
}

/** What the signal handler closes: an `Analytics` client. */
export interface Closable {
  close(options: { timeout?: number }): Promise<FlushResult>;
}

type Listener = (...args: unknown[]) => void;

/** The part of Node's and Bun's `process` (Deno has it too) this file uses. */
interface ProcessLike {
  pid: number;
  on(name: string, listener: Listener): unknown;
  removeListener(name: string, listener: Listener): unknown;
  listeners(name: string): Listener[];
  kill(pid: number, signal: string): unknown;
}

/** The part of `Deno` this file uses. */
interface DenoLike {
  pid: number;
  addSignalListener(signal: string, listener: () => void): void;
  removeSignalListener(signal: string, listener: () => void): void;
  kill(pid: number, signal: string): void;
}

/** Where the signal comes from: Deno's own listeners, or `process` (Node, Bun). */
interface Source {
  add(signal: ShutdownSignal, listener: () => void): void;
  remove(signal: ShutdownSignal, listener: () => void): void;
  raise(signal: ShutdownSignal): void;
}

const SIGNALS: readonly ShutdownSignal[] = ["SIGTERM", "SIGINT", "SIGHUP"];
const DEFAULT_TIMEOUT_MS = 10_000;
/** Slack past `timeout` before the signal takes its course even if close() has not settled. */
const GUARD_MS = 1000;

const installed = new WeakMap<Closable, () => void>();

function processLike(): ProcessLike | undefined {
  const p = (globalThis as { process?: Partial<ProcessLike> }).process;
  return typeof p?.on === "function" && typeof p.removeListener === "function" &&
      typeof p.listeners === "function" && typeof p.kill === "function"
    ? p as ProcessLike
    : undefined;
}

function source(): Source | undefined {
  const deno = (globalThis as { Deno?: Partial<DenoLike> }).Deno;
  if (typeof deno?.addSignalListener === "function" && typeof deno.kill === "function") {
    const d = deno as DenoLike;
    return {
      add: (signal, listener) => d.addSignalListener(signal, listener),
      remove: (signal, listener) => d.removeSignalListener(signal, listener),
      raise: (signal) => d.kill(d.pid, signal),
    };
  }
  const p = processLike();
  if (p === undefined) return undefined;
  return {
    add: (signal, listener) => void p.on(signal, listener),
    remove: (signal, listener) => void p.removeListener(signal, listener),
    raise: (signal) => void p.kill(p.pid, signal),
  };
}

function checked(options: CloseOnSignalsOptions): { timeout: number; signals: ShutdownSignal[] } {
  if (typeof options !== "object" || options === null) {
    throw new TypeError(
      `Cannot closeOnSignals: options must be an object, got ${options === null ? "null" : typeof options}`,
    );
  }
  const timeout = options.timeout ?? DEFAULT_TIMEOUT_MS;
  if (typeof timeout !== "number" || !(timeout >= 0) || timeout === Infinity) {
    throw new RangeError(`Cannot closeOnSignals: timeout must be a finite number of milliseconds, got ${timeout}`);
  }
  const signals = options.signals ?? ["SIGTERM", "SIGINT"];
  if (!Array.isArray(signals) || signals.length === 0) {
    throw new TypeError("Cannot closeOnSignals: signals must be a non-empty array of signal names");
  }
  for (const signal of signals) {
    if (!SIGNALS.includes(signal)) {
      throw new RangeError(`Cannot closeOnSignals: signal must be one of ${SIGNALS.join(", ")}, got ${String(signal)}`);
    }
  }
  return { timeout, signals: [...new Set(signals)] };
}

/**
 * Installs handlers that, on one of `options.signals`, close `client` within
 * `options.timeout`, then let the program's own handlers and the signal's
 * default behaviour run. Returns a function that uninstalls them.
 *
 * - `process` listeners the program added before this call are held back
 *   while the client closes and called after it (so one that calls
 *   `process.exit` no longer cuts the delivery short), then put back.
 *   Listeners added after it are called by the runtime when the signal
 *   arrives, as ever.
 * - When no other `process` listener for the signal is left, the default is
 *   restored and the signal raised again, so the process ends by it (exit
 *   code 128 + n); `process.exit` is never called. Deno's own
 *   `Deno.addSignalListener` listeners cannot be seen: a Deno program that
 *   ends itself on the signal should close the client itself instead.
 * - A second signal while the client closes takes its course at once.
 * - Once per client: a second call returns the first call's uninstaller.
 * - Where the runtime has no signals (Workers), nothing is installed.
 *
 * @example
 * ```ts
 * import { Analytics } from "@tally/analytics";
 * const analytics = new Analytics({ writeKey: "KEY" });
 * const uninstall = analytics.closeOnSignals({ timeout: 5000 });
 * uninstall();
 * ```
 */
export function closeOnSignals(client: Closable, options: CloseOnSignalsOptions = {}): () => void {
  const { timeout, signals } = checked(options);
  const existing = installed.get(client);
  if (existing !== undefined) return existing;
  const from = source();
  if (from === undefined) return () => {};
  const proc = processLike();
  const held = new Map<ShutdownSignal, Listener[]>();
  const ours = new Map<ShutdownSignal, () => void>();
  let closing = false;
  let done = false;

  /** Gives back the program's held listeners to `process`, and returns them. */
  const giveBack = (signal: ShutdownSignal): Listener[] => {
    const listeners = held.get(signal) ?? [];
    held.delete(signal);
    for (const listener of listeners) proc?.on(signal, listener);
    return listeners;
  };

  const uninstall = (): void => {
    if (done) return;
    done = true;
    if (installed.get(client) === uninstall) installed.delete(client);
    for (const [signal, listener] of ours) from.remove(signal, listener);
    ours.clear();
    for (const signal of signals) giveBack(signal);
  };

  /** What the signal would have done without us: the program's listeners, or the default. */
  const takeCourse = (signal: ShutdownSignal): void => {
    const others = held.get(signal) ?? [];
    uninstall();
    for (const listener of others) {
      try {
        listener(signal);
      } catch (error) {
        // A listener that throws would have thrown from the runtime's own dispatch: keep that.
        queueMicrotask(() => {
          throw error;
        });
      }
    }
    const left = proc?.listeners(signal).length ?? 0;
    if (others.length === 0 && left === 0) from.raise(signal);
  };

  const onSignal = (signal: ShutdownSignal): void => {
    if (done) return;
    if (closing) {
      takeCourse(signal);
      return;
    }
    closing = true;
    // A ref'd timer keeps the program alive while the client closes, and bounds the wait.
    let guard: ReturnType<typeof setTimeout> | undefined;
    const bounded = new Promise<void>((resolve) => {
      guard = setTimeout(resolve, timeout + GUARD_MS);
    });
    const closed = Promise.resolve()
      .then(() => client.close({ timeout }))
      .then(() => {}, () => {});
    void Promise.race([closed, bounded]).then(() => {
      clearTimeout(guard);
      if (!done) takeCourse(signal);
    });
  };

  for (const signal of signals) {
    if (proc !== undefined) {
      const listeners = proc.listeners(signal);
      held.set(signal, listeners);
      for (const listener of listeners) proc.removeListener(signal, listener);
    }
    const listener = (): void => onSignal(signal);
    try {
      from.add(signal, listener);
      ours.set(signal, listener);
    } catch {
      // A signal this platform does not deliver (SIGTERM on Windows under Deno): nothing to wait for.
      giveBack(signal);
    }
  }
  installed.set(client, uninstall);
  return uninstall;
}
