/**
 * Splits input bytes into one JSON text per message, with its line number,
 * without holding more than a chunk and one message in memory: NDJSON (one
 * message per line, blank lines skipped) or a JSON array of messages, told
 * apart by the input's first character (`[` means an array).
 *
 * Input that is not valid UTF-8 is not silently repaired: the line (or
 * array element) that holds invalid bytes is reported as such. Each chunk is
 * decoded with a fatal decoder, which costs the common, valid chunk nothing
 * more; only a chunk it refuses is decoded again byte by byte, with a mark
 * where the invalid bytes were, and only then are lines looked at for it.
 *
 * @module
 */

/** One message's JSON text, or why its line cannot be one. */
export type Item = { line: number; text: string; error?: undefined } | {
  line: number;
  error: string;
  text?: undefined;
};

/** Longer lines or elements are reported, not buffered: a message may be at most 32 KB anyway. */
export const MAX_ITEM_CHARS = 1024 * 1024;

const NL = 10;
const CR = 13;
const QUOTE = 34;
const BACKSLASH = 92;
const COMMA = 44;
const OPEN_BRACE = 123;
const CLOSE_BRACE = 125;
const OPEN_BRACKET = 91;
const CLOSE_BRACKET = 93;

const isSpace = (c: number): boolean => c === 32 || c === NL || c === CR || c === 9 || c === 0xfeff;

/** Stands where invalid bytes were: a lone surrogate, which decoding valid UTF-8 never yields. */
const INVALID = "\udfff";
const EMPTY = new Uint8Array(0);

/**
 * The length of `bytes` without the multibyte sequence cut short at its end
 * (at most three bytes), which the next chunk completes.
 */
function wholeLength(bytes: Uint8Array): number {
  const n = bytes.length;
  let lead = n - 1;
  while (lead >= 0 && n - lead <= 3 && (bytes[lead] & 0xc0) === 0x80) lead--;
  if (lead < 0) return n;
  const c = bytes[lead];
  const needs = c >= 0xf0 && c <= 0xf4 ? 4 : c >= 0xe0 && c <= 0xef ? 3 : c >= 0xc2 && c <= 0xdf ? 2 : 1;
  return n - lead < needs ? lead : n;
}

/** The length of the valid UTF-8 sequence that starts at `i` (a byte >= 0x80), or 0 if it is not one. */
function sequenceAt(bytes: Uint8Array, i: number): number {
  const c = bytes[i];
  let length: number;
  let low = 0x80;
  let high = 0xbf;
  if (c >= 0xc2 && c <= 0xdf) length = 2;
  else if (c >= 0xe0 && c <= 0xef) {
    length = 3;
    if (c === 0xe0) low = 0xa0; // overlong
    if (c === 0xed) high = 0x9f; // a surrogate
  } else if (c >= 0xf0 && c <= 0xf4) {
    length = 4;
    if (c === 0xf0) low = 0x90; // overlong
    if (c === 0xf4) high = 0x8f; // past U+10FFFF
  } else return 0;
  if (i + length > bytes.length || bytes[i + 1] < low || bytes[i + 1] > high) return 0;
  for (let k = 2; k < length; k++) if ((bytes[i + k] & 0xc0) !== 0x80) return 0;
  return length;
}

/** `bytes` decoded, each invalid byte as {@linkcode INVALID}: the slow path, for a chunk that is not valid UTF-8. */
function decodeMarked(bytes: Uint8Array, decoder: TextDecoder): string {
  const parts: string[] = [];
  let run = 0;
  for (let i = 0; i < bytes.length;) {
    if (bytes[i] < 0x80) {
      i++;
      continue;
    }
    const length = sequenceAt(bytes, i);
    if (length > 0) {
      i += length;
      continue;
    }
    if (run < i) parts.push(decoder.decode(bytes.subarray(run, i)));
    parts.push(INVALID);
    run = ++i;
  }
  if (run < bytes.length) parts.push(decoder.decode(bytes.subarray(run)));
  return parts.join("");
}

function concat(a: Uint8Array, b: Uint8Array): Uint8Array {
  const out = new Uint8Array(a.length + b.length);
  out.set(a, 0);
  out.set(b, a.length);
  return out;
}

const tooLong = (what: string): string =>
  `the ${what} is over ${MAX_ITEM_CHARS / 1024 / 1024} MB (a message may be at most 32 KB)`;

/**
 * A push parser: `push(bytes)` returns the items completed by those bytes,
 * `end()` the rest. Line numbers count from 1.
 */
export class ItemReader {
  // ignoreBOM: each chunk is decoded on its own, so a BOM is dropped as leading space instead (isSpace).
  readonly #decoder = new TextDecoder("utf-8", { fatal: true, ignoreBOM: true });
  /** The start of a multibyte sequence that the last chunk cut short. */
  #carry: Uint8Array | undefined;
  /** Whether the input had invalid bytes: lines and elements are checked for the mark only then. */
  #invalid = false;
  #mode: "start" | "lines" | "array" | "after" = "start";
  #line = 1;
  #rest = "";
  #skipping = false; // NDJSON: inside a line that is too long
  // JSON-array state
  #inString = false;
  #escape = false;
  #depth = 0;
  #inItem = false;
  #itemLine = 0;
  #itemParts: string[] = [];
  #itemChars = 0;
  #expectValue = true;
  #afterComma = false;
  #reportedAfter = false;

  /** Whether the input turned out to be a JSON array. */
  get isArray(): boolean {
    return this.#mode === "array" || this.#mode === "after";
  }

  /** Parses `chunk`, returning the items it completes. */
  push(chunk: Uint8Array): Item[] {
    return this.#feed(this.#decode(chunk, false));
  }

  /** Parses what is left at the end of the input. */
  end(): Item[] {
    const out = this.#feed(this.#decode(EMPTY, true));
    if (this.#mode === "lines") {
      if (this.#skipping) out.push({ line: this.#line, error: tooLong("line") });
      else this.#emitLine(this.#rest, out);
      this.#rest = "";
    } else if (this.#mode === "array") {
      if (this.#inItem) this.#endItem("", out);
      out.push({ line: this.#line, error: "the JSON array is not closed (no ] at the end)" });
    }
    return out;
  }

  /** `chunk` as text, after what the last one cut short; at the `last` chunk, a sequence cut short is invalid. */
  #decode(chunk: Uint8Array, last: boolean): string {
    let bytes = chunk;
    if (this.#carry !== undefined) {
      bytes = concat(this.#carry, chunk);
      this.#carry = undefined;
    }
    const whole = last ? bytes.length : wholeLength(bytes);
    if (whole < bytes.length) {
      this.#carry = bytes.slice(whole);
      bytes = bytes.subarray(0, whole);
    }
    try {
      return this.#decoder.decode(bytes);
    } catch {
      this.#invalid = true;
      return decodeMarked(bytes, new TextDecoder("utf-8", { ignoreBOM: true }));
    }
  }

  #feed(text: string): Item[] {
    const out: Item[] = [];
    if (this.#mode === "start") {
      let i = 0;
      while (i < text.length && isSpace(text.charCodeAt(i))) {
        if (text.charCodeAt(i) === NL) this.#line++;
        i++;
      }
      if (i === text.length) return out;
      if (text.charCodeAt(i) === OPEN_BRACKET) {
        this.#mode = "array";
        this.#array(text, i + 1, out);
      } else {
        this.#mode = "lines";
        this.#lines(text.slice(i), out);
      }
      return out;
    }
    if (this.#mode === "lines") this.#lines(text, out);
    else this.#array(text, 0, out);
    return out;
  }

  #emitLine(raw: string, out: Item[]): void {
    let text = raw;
    if (text.length > 0 && text.charCodeAt(text.length - 1) === CR) text = text.slice(0, -1);
    // Blank lines are skipped; only they are checked with trim(), the common case stays one comparison.
    if (text.length === 0 || (isSpace(text.charCodeAt(0)) && text.trim() === "")) return;
    if (this.#invalid && text.includes(INVALID)) out.push({ line: this.#line, error: "the line is not valid UTF-8" });
    else out.push({ line: this.#line, text });
  }

  #lines(chunk: string, out: Item[]): void {
    let start = 0;
    let text = chunk;
    if (this.#skipping) {
      const nl = text.indexOf("\n");
      if (nl < 0) return;
      out.push({ line: this.#line, error: tooLong("line") });
      this.#line++;
      this.#skipping = false;
      start = nl + 1;
    } else if (this.#rest !== "") {
      text = this.#rest + chunk;
      this.#rest = "";
    }
    for (;;) {
      const nl = text.indexOf("\n", start);
      if (nl < 0) break;
      this.#emitLine(text.slice(start, nl), out);
      this.#line++;
      start = nl + 1;
    }
    const rest = text.length - start;
    if (rest > MAX_ITEM_CHARS) this.#skipping = true;
    else this.#rest = rest === 0 ? "" : text.slice(start);
  }

  #endItem(tail: string, out: Item[]): void {
    this.#inItem = false;
    if (this.#itemChars + tail.length > MAX_ITEM_CHARS) {
      out.push({ line: this.#itemLine, error: tooLong("array element") });
    } else {
      this.#itemParts.push(tail);
      const text = this.#itemParts.join("").trim();
      if (this.#invalid && text.includes(INVALID)) {
        out.push({ line: this.#itemLine, error: "the array element is not valid UTF-8" });
      } else out.push({ line: this.#itemLine, text });
    }
    this.#itemParts = [];
    this.#itemChars = 0;
    this.#expectValue = false;
    this.#afterComma = false;
  }

  #array(text: string, from: number, out: Item[]): void {
    let itemStart = this.#inItem ? from : -1;
    for (let i = from; i < text.length; i++) {
      const c = text.charCodeAt(i);
      if (c === NL) this.#line++;
      if (this.#inString) {
        if (this.#escape) this.#escape = false;
        else if (c === BACKSLASH) this.#escape = true;
        else if (c === QUOTE) this.#inString = false;
        continue;
      }
      if (this.#mode === "after") {
        if (!isSpace(c) && !this.#reportedAfter) {
          this.#reportedAfter = true;
          out.push({ line: this.#line, error: "unexpected text after the JSON array's closing ]" });
        }
        continue;
      }
      if (this.#inItem) {
        if (c === QUOTE) this.#inString = true;
        else if (c === OPEN_BRACE || c === OPEN_BRACKET) this.#depth++;
        else if ((c === CLOSE_BRACE || c === CLOSE_BRACKET) && this.#depth > 0) this.#depth--;
        else if (this.#depth === 0 && (c === COMMA || c === CLOSE_BRACKET)) {
          this.#endItem(text.slice(itemStart, i), out);
          itemStart = -1;
          // fall through: the comma or ] is handled below, between items
        }
        if (this.#inItem) continue;
      }
      if (isSpace(c)) continue;
      if (c === COMMA) {
        if (this.#expectValue) out.push({ line: this.#line, error: "an empty array element (two commas, or [,)" });
        this.#expectValue = true;
        this.#afterComma = true;
        continue;
      }
      if (c === CLOSE_BRACKET) {
        if (this.#afterComma) out.push({ line: this.#line, error: "a comma before the JSON array's closing ]" });
        this.#mode = "after";
        continue;
      }
      if (!this.#expectValue) out.push({ line: this.#line, error: "a missing comma between array elements" });
      this.#inItem = true;
      this.#itemLine = this.#line;
      this.#depth = 0;
      itemStart = i;
      i--; // the element's first character is read again, inside the element
    }
    if (this.#inItem && itemStart >= 0) {
      const part = text.slice(itemStart);
      if (this.#itemChars <= MAX_ITEM_CHARS) this.#itemParts.push(part);
      this.#itemChars += part.length;
    }
  }
}

/**
 * The keys of a line of `tally serve`'s NDJSON file (serve/server.ts `eventJson`, the `StoredEvent` type): a
 * received message, wrapped with what the collector found (source, duplicate, plan violations).
 */
const CAPTURED_KEYS = new Set([
  "id",
  "receivedAt",
  "status",
  "reasons",
  "source",
  "duplicate",
  "violations",
  "blocked",
  "message",
]);

const isObject = (value: unknown): value is Record<string, unknown> =>
  typeof value === "object" && value !== null && !Array.isArray(value);

/**
 * The message inside a line `tally serve` wrote, or `value` itself when it
 * is not one: an object whose `message` is an object, with `receivedAt` (a
 * string) and `status` ("good" or "bad"), and no key the collector does not write.
 */
export function unwrapCaptured(value: unknown): unknown {
  if (!isObject(value) || !isObject(value.message) || typeof value.receivedAt !== "string") return value;
  if (value.status !== "good" && value.status !== "bad") return value;
  for (const key in value) if (!CAPTURED_KEYS.has(key)) return value;
  return value.message;
}
