import type { FlushResult } from "./types.ts";

/** Options for {@linkcode Analytics.closeOnSignals}. */
export interface CloseOnSignalsOptions {
  /** Milliseconds to deliver what is queued before the signal takes its course (default 10000). */
  timeout?: number;
  /** The signals to handle (default `["SIGTERM", "SIGINT"]`). */
  signals?: readonly ("SIGTERM" | "SIGINT" | "SIGHUP")[];
}

/** What the signal handler closes: an `Analytics` client. */
export interface Closable {
  close(options: { timeout?: number }): Promise<FlushResult>;
}

/**
 * Installs handlers that, on one of `options.signals`, close `client` within
 * `options.timeout`, then let the program's own handlers and the signal's
 * default behaviour run. Returns a function that uninstalls them.
 */
export function closeOnSignals(client: Closable, options: CloseOnSignalsOptions = {}): () => void {
  void client;
  void options;
  throw new Error("Cannot closeOnSignals: not built yet");
}
