import { ValidationError } from "./errors.ts";

/** The largest message Segment accepts, in UTF-8 bytes of its JSON. */
export const MAX_MESSAGE_BYTES = 32768;

const encoder = new TextEncoder();
// One byte over the limit tells "too large" without encoding the rest.
const scratch = new Uint8Array(MAX_MESSAGE_BYTES + 4);

/**
 * The UTF-8 size of `json` when it is at most {@linkcode MAX_MESSAGE_BYTES},
 * else -1. Native `encodeInto` is several times cheaper than a JavaScript loop.
 */
export function boundedByteLength(json: string): number {
  if (json.length > MAX_MESSAGE_BYTES) return -1;
  const { read, written } = encoder.encodeInto(json, scratch);
  return read < json.length || written > MAX_MESSAGE_BYTES ? -1 : written;
}

/** The exact UTF-8 size of any string (for error messages and batch envelopes). */
export function byteLength(text: string): number {
  let n = text.length;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c < 0x80) continue;
    if (c < 0x800) n += 1;
    else if (c >= 0xd800 && c <= 0xdbff && i + 1 < text.length) {
      const d = text.charCodeAt(i + 1);
      if (d >= 0xdc00 && d <= 0xdfff) i++;
      n += 2; // a pair is 4 bytes for 2 units; a lone surrogate becomes 3 bytes
    } else n += 2;
  }
  return n;
}

/**
 * Serializes a message. Plain `JSON.stringify` is the fast path; it already
 * turns Dates into ISO strings, drops undefined and functions, and writes
 * NaN/Infinity as null. It throws on BigInt and cycles and writes Map and Set
 * as `{}`, so those cases (and any `{}` in the output) take the slow path,
 * which converts them and names the field of a cycle.
 */
export function serialize(message: object, action: string): string {
  let json: string | undefined;
  try {
    json = JSON.stringify(message);
  } catch {
    // fall through to the slow path, which explains the problem
  }
  if (json === undefined || json.includes("{}") || (json.length > 2 * MAX_DEPTH && bracketsOver(json, MAX_DEPTH))) {
    json = JSON.stringify(normalize(message, "", [], action));
  }
  return json;
}

/**
 * Whether `json` has more than `max` opening brackets: a cheap, native
 * necessary condition for nesting deeper than `max`, so only such messages
 * take the slow path that measures the depth (and refuses it, as receivers do).
 */
function bracketsOver(json: string, max: number): boolean {
  let n = 0;
  for (const bracket of ["{", "["]) {
    for (let i = json.indexOf(bracket); i !== -1; i = json.indexOf(bracket, i + 1)) if (++n > max) return true;
  }
  return false;
}

/**
 * Deeper than this, a value is refused on every path: the slow path recurses, no runtime's stack is endless, and
 * receivers bound it too (`tally serve` refuses bodies nested over 1024 levels).
 */
export const MAX_DEPTH = 1000;

/**
 * One value as JSON will hold it. Anything a hostile value throws on the way
 * (a getter, `toJSON`, a Proxy trap, a revoked Proxy, a Date whose methods
 * were replaced) becomes a `ValidationError` naming where it happened.
 */
function normalize(value: unknown, path: string, parents: object[], action: string): unknown {
  if (typeof value !== "object" || value === null) return normalizeObject(value, path, parents, action);
  if (parents.length >= MAX_DEPTH) {
    throw new ValidationError(path, `Cannot ${action}: ${path} is nested more than ${MAX_DEPTH} levels deep`);
  }
  try {
    return normalizeObject(value, path, parents, action);
  } catch (cause) {
    if (cause instanceof ValidationError) throw cause;
    const where = path === "" ? "the message" : path;
    throw new ValidationError(path, `Cannot ${action}: reading ${where} threw: ${(cause as Error)?.message ?? cause}`, {
      cause,
    });
  }
}

function normalizeObject(value: unknown, path: string, parents: object[], action: string): unknown {
  switch (typeof value) {
    case "string":
    case "boolean":
      return value;
    case "number":
      return Number.isFinite(value) ? value : null;
    case "bigint":
      return value.toString();
    case "object":
      break;
    default:
      return undefined; // undefined, functions and symbols are dropped, as JSON does
  }
  if (value === null) return null;
  if (parents.includes(value)) {
    throw new ValidationError(path, `Cannot ${action}: ${path} refers back to an object that contains it (a cycle)`);
  }
  if (value instanceof Date) return Number.isNaN(value.getTime()) ? null : value.toISOString();
  parents.push(value);
  try {
    if (Array.isArray(value) || value instanceof Set) {
      const out: unknown[] = [];
      let i = 0;
      for (const item of value) out.push(normalize(item, `${path}[${i++}]`, parents, action) ?? null);
      return out;
    }
    const out: Record<string, unknown> = {};
    if (value instanceof Map) {
      for (const [k, v] of value) put(out, String(k), normalize(v, join(path, String(k)), parents, action));
      return out;
    }
    const toJSON = (value as { toJSON?: unknown }).toJSON;
    if (typeof toJSON === "function") {
      return normalize(toJSON.call(value, path), path, parents, action);
    }
    for (const key of Object.keys(value)) {
      let item: unknown;
      try {
        item = (value as Record<string, unknown>)[key];
      } catch (cause) {
        throw new ValidationError(
          join(path, key),
          `Cannot ${action}: reading ${join(path, key)} threw: ${(cause as Error)?.message ?? cause}`,
          { cause },
        );
      }
      put(out, key, normalize(item, join(path, key), parents, action));
    }
    return out;
  } finally {
    parents.pop();
  }
}

/** Sets an own property, even one named `__proto__` (which plain assignment would turn into a prototype). */
function put(out: Record<string, unknown>, key: string, value: unknown): void {
  if (key === "__proto__") {
    Object.defineProperty(out, key, { value, enumerable: true, writable: true, configurable: true });
  } else out[key] = value;
}

const join = (path: string, key: string): string =>
  path === "" ? key : /^[A-Za-z_$][\w$]*$/.test(key) ? `${path}.${key}` : `${path}[${JSON.stringify(key)}]`;
