/**
 * Why a text is not JSON, and where, in words of tally's own: the
 * runtimes' `JSON.parse` messages differ, and V8's and JavaScriptCore's
 * quote a piece of the text, which may be a write key typed in the wrong
 * place, cut where no redaction can recognize it, or an escape sequence.
 * This one names the character where the text stops being JSON and quotes
 * nothing of it. It runs only after `JSON.parse` failed.
 *
 * @module
 */

const TAB = 9;
const NEWLINE = 10;
const RETURN = 13;
const SPACE = 32;
const QUOTE = 34;
const COMMA = 44;
const MINUS = 45;
const COLON = 58;
const OPEN_BRACKET = 91;
const BACKSLASH = 92;
const CLOSE_BRACKET = 93;
const OPEN_BRACE = 123;
const CLOSE_BRACE = 125;

const NUMBER = /-?(?:0|[1-9]\d*)(?:\.\d+)?(?:[eE][+-]?\d+)?/y;
const ESCAPE = /["\\/bfnrt]|u[0-9a-fA-F]{4}/y;

/**
 * Why `text` is not JSON, as "PROBLEM at character N" (counted from 1), or
 * undefined if it is JSON after all.
 */
export function whyNotJson(text: string): string | undefined {
  let i = 0;
  const at = (problem: string, where = i): string => `${problem} at character ${where + 1}`;
  const space = (): void => {
    for (let c = text.charCodeAt(i); c === SPACE || c === NEWLINE || c === RETURN || c === TAB;) {
      c = text.charCodeAt(++i);
    }
  };
  /** Reads the string that starts at i; the problem, if it is not one. */
  const string = (): string | undefined => {
    const start = i++;
    for (; i < text.length; i++) {
      const c = text.charCodeAt(i);
      if (c === QUOTE) {
        i++;
        return undefined;
      }
      if (c < 0x20) return at("a control character inside a string (write it as \\u00XX)");
      if (c === BACKSLASH) {
        ESCAPE.lastIndex = i + 1;
        if (!ESCAPE.test(text)) return at("a bad escape inside a string");
        i = ESCAPE.lastIndex - 1;
      }
    }
    return at("a string that is not closed", start);
  };
  /** Reads an object's `"name":`; the problem, if it is not one. */
  const name = (): string | undefined => {
    space();
    if (text.charCodeAt(i) !== QUOTE) return at("a property name must be a string in double quotes");
    const problem = string();
    if (problem !== undefined) return problem;
    space();
    if (text.charCodeAt(i) !== COLON) return at("expected : after a property name");
    i++;
    return undefined;
  };
  /** Reads one value that is not an array or object; the problem, if it is not one. */
  const scalar = (): string | undefined => {
    const c = text.charCodeAt(i);
    if (c === QUOTE) return string();
    if (c === MINUS || (c >= 48 && c <= 57)) {
      NUMBER.lastIndex = i;
      if (NUMBER.test(text)) {
        i = NUMBER.lastIndex;
        return undefined;
      }
      return at("a bad number");
    }
    for (const word of ["true", "false", "null"]) {
      if (text.startsWith(word, i)) {
        i += word.length;
        return undefined;
      }
    }
    return at(i < text.length ? "unexpected text" : "the text ends where a value should be");
  };
  // Open arrays and objects, innermost last; iterative, so deep nesting needs no stack.
  const open: number[] = [];
  for (;;) {
    space();
    const c = text.charCodeAt(i);
    if (c === OPEN_BRACKET || c === OPEN_BRACE) {
      open.push(c);
      i++;
      space();
      const close = c === OPEN_BRACKET ? CLOSE_BRACKET : CLOSE_BRACE;
      if (text.charCodeAt(i) === close) {
        open.pop();
        i++;
      } else {
        const problem = c === OPEN_BRACE ? name() : undefined;
        if (problem !== undefined) return problem;
        continue;
      }
    } else {
      const problem = scalar();
      if (problem !== undefined) return problem;
    }
    // A value ended: what may follow it depends on what it is inside.
    for (;;) {
      space();
      const inside = open.at(-1);
      if (inside === undefined) return i < text.length ? at("unexpected text after the JSON value") : undefined;
      const close = inside === OPEN_BRACKET ? CLOSE_BRACKET : CLOSE_BRACE;
      const next = text.charCodeAt(i);
      if (next === close) {
        open.pop();
        i++;
        continue;
      }
      if (next !== COMMA) {
        return at(
          i >= text.length
            ? "the text ends before the JSON is complete"
            : `expected , or ${String.fromCharCode(close)}`,
        );
      }
      i++;
      const problem = inside === OPEN_BRACE ? name() : undefined;
      if (problem !== undefined) return problem;
      break;
    }
  }
}
