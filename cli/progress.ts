/**
 * The progress bar `tally send` draws on stderr when stderr is a terminal:
 * messages read, their rate, bytes read (and the share of the input when its
 * size is known), and what the server has taken so far. Redrawn five times a
 * second on one line; nothing at all when stderr is piped.
 *
 * @module
 */
import type { Io } from "./io.ts";

/** What the bar shows, read at each redraw. */
export interface Counts {
  messages: number;
  bytesRead: number;
  delivered: number;
  invalid: number;
}

const REDRAW_MS = 200;
const BAR_WIDTH = 20;

/** `1234567` -> `1,234,567`. */
export const thousands = (n: number): string => Math.round(n).toString().replace(/\B(?=(\d{3})+(?!\d))/g, ",");

/** `1536` -> `1.5 KB`. */
export function bytes(n: number): string {
  if (n < 1024) return `${n} B`;
  const units = ["KB", "MB", "GB", "TB"];
  let value = n / 1024;
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit++;
  }
  return `${value.toFixed(1)} ${units[unit]}`;
}

/** A redrawing one-line progress bar. */
export class Progress {
  readonly #io: Io;
  readonly #counts: () => Counts;
  readonly #total: number | undefined;
  readonly #started = performance.now();
  #timer: ReturnType<typeof setInterval> | undefined;
  #shown = false;

  /** `total`: the input's size in bytes, when it is known (files, not stdin). */
  constructor(io: Io, counts: () => Counts, total?: number) {
    this.#io = io;
    this.#counts = counts;
    this.#total = total;
    this.#timer = setInterval(() => this.#draw(), REDRAW_MS);
    (this.#timer as { unref?: () => void }).unref?.();
    // Diagnostic lines clear the bar first; the next redraw puts it back under them.
    io.beforeError = () => this.#clear();
  }

  #clear(): void {
    if (this.#shown) this.#io.errRaw("\r\x1b[K");
    this.#shown = false;
  }

  #draw(): void {
    const c = this.#counts();
    const seconds = (performance.now() - this.#started) / 1000;
    const rate = seconds > 0 ? c.messages / seconds : 0;
    let bar = "";
    if (this.#total !== undefined && this.#total > 0) {
      const share = Math.min(1, c.bytesRead / this.#total);
      const filled = Math.round(share * BAR_WIDTH);
      bar = `[${"#".repeat(filled)}${"-".repeat(BAR_WIDTH - filled)}] ${Math.floor(share * 100)}% `;
    }
    const invalid = c.invalid > 0 ? `, ${thousands(c.invalid)} invalid` : "";
    this.#io.errRaw(
      `\r\x1b[K${bar}${thousands(c.messages)} ${c.messages === 1 ? "message" : "messages"} (${thousands(rate)}/s), ${
        bytes(c.bytesRead)
      } read, ` +
        `${thousands(c.delivered)} delivered${invalid}`,
    );
    this.#shown = true;
  }

  /** Removes the bar for good. */
  stop(): void {
    if (this.#timer !== undefined) clearInterval(this.#timer);
    this.#timer = undefined;
    this.#clear();
    this.#io.beforeError = undefined;
  }
}
