/**
 * Splits input bytes into one JSON text per message, with its line number,
 * without holding more than a chunk and one message in memory: NDJSON (one
 * message per line, blank lines skipped) or a JSON array of messages, told
 * apart by the input's first character (`[` means an array).
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

const tooLong = (what: string): string =>
  `the ${what} is over ${MAX_ITEM_CHARS / 1024 / 1024} MB (a message may be at most 32 KB)`;

/**
 * A push parser: `push(bytes)` returns the items completed by those bytes,
 * `end()` the rest. Line numbers count from 1.
 */
export class ItemReader {
  readonly #decoder = new TextDecoder();
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
    return this.#feed(this.#decoder.decode(chunk, { stream: true }));
  }

  /** Parses what is left at the end of the input. */
  end(): Item[] {
    const out = this.#feed(this.#decoder.decode());
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
    out.push({ line: this.#line, text });
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
      out.push({ line: this.#itemLine, text: this.#itemParts.join("").trim() });
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
