/**
 * Text from input (field names, file names, flag values, a server's answer)
 * made safe for a terminal: its control characters written as JSON writes
 * them (`\u001b`), so an escape sequence in an event cannot move the cursor,
 * retitle the window or clear the screen of whoever reads tally's output.
 *
 * @module
 */

/** C0 controls but tab, DEL, and C1 controls (an 8-bit CSI is U+009B). */
// deno-lint-ignore no-control-regex -- finding control characters is the point
const CONTROLS = /[\x00-\x08\x0a-\x1f\x7f-\x9f]/g;
/** What JSON.stringify leaves raw of them: DEL and C1. */
const JSON_RAW_CONTROLS = /[\x7f-\x9f]/g;
const HAS_JSON_RAW_CONTROL = /[\x7f-\x9f]/;

const hex = (c: string): string => `\\u${c.charCodeAt(0).toString(16).padStart(4, "0")}`;

/** `line` with every control character but tab escaped, a newline included: a diagnostic is one line. */
export function escapeControls(line: string): string {
  return line.replace(CONTROLS, hex);
}

/** `value` as one line of JSON with no raw control character (JSON.stringify leaves DEL and C1 raw). */
export function jsonLine(value: unknown): string {
  const text = JSON.stringify(value);
  // Those characters can stand only inside JSON strings, where \u00XX is the same character.
  return HAS_JSON_RAW_CONTROL.test(text) ? text.replace(JSON_RAW_CONTROLS, hex) : text;
}
