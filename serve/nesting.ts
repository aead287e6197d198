/** How deeply a JSON text nests, read off its bytes without parsing it. */

const QUOTE = 0x22;
const BACKSLASH = 0x5c;
const OPEN_ARRAY = 0x5b;
const OPEN_OBJECT = 0x7b;
const CLOSE_ARRAY = 0x5d;
const CLOSE_OBJECT = 0x7d;

/**
 * The deepest nesting of arrays and objects in the JSON text `bytes` (UTF-8): 0 for a bare value, 1 for `[]` or
 * `{"a":1}`, 2 for `[[]]`. Brackets inside strings are text. One pass, no recursion and no allocation, strings
 * skipped with a native search; malformed text gets some number, and is refused by the parser afterwards.
 */
export function nestingDepth(bytes: Uint8Array): number {
  let depth = 0;
  let deepest = 0;
  const length = bytes.length;
  for (let i = 0; i < length; i++) {
    const byte = bytes[i];
    if (byte === QUOTE) {
      // The closing quote: the next one not escaped by an odd run of backslashes.
      let end = i;
      for (;;) {
        end = bytes.indexOf(QUOTE, end + 1);
        if (end < 0) return deepest;
        let before = end - 1;
        while (bytes[before] === BACKSLASH) before--;
        if ((end - 1 - before) % 2 === 0) break;
      }
      i = end;
    } else if (byte === OPEN_ARRAY || byte === OPEN_OBJECT) {
      if (++depth > deepest) deepest = depth;
    } else if (byte === CLOSE_ARRAY || byte === CLOSE_OBJECT) depth--;
  }
  return deepest;
}
