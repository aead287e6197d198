import { ValidationError } from "./errors.ts";
import type {
  AliasParams,
  CallOptions,
  GroupParams,
  IdentifyParams,
  Integrations,
  Message,
  MessageType,
  PageParams,
  Properties,
  TrackParams,
} from "./types.ts";
import { LIBRARY_NAME, VERSION } from "./version.ts";

const LIBRARY = Object.freeze({ name: LIBRARY_NAME, version: VERSION });
const BARE_CONTEXT = Object.freeze({ library: LIBRARY });

/** Segment deduplicates on messageId and keeps at most this many characters of it. */
export const MAX_MESSAGE_ID_LENGTH = 100;

const kind = (value: unknown): string =>
  value === null
    ? "null"
    : Array.isArray(value)
    ? "an array"
    : typeof value === "string"
    ? "a string"
    : typeof value === "number"
    ? `the number ${value}`
    : value === undefined
    ? "nothing"
    : typeof value === "object"
    ? "an object"
    : `a ${typeof value}`;

function id(action: MessageType, field: string, value: unknown): string | undefined {
  if (typeof value === "string") {
    if (value !== "") return value;
    throw new ValidationError(field, `Cannot ${action}: ${field} is an empty string`);
  }
  if (typeof value === "number") {
    if (Number.isFinite(value)) return String(value);
    throw new ValidationError(field, `Cannot ${action}: ${field} must be a finite number, got ${value}`);
  }
  // Python's big ints go out as strings; so do BigInts, as BigInt properties already do.
  if (typeof value === "bigint") return value.toString();
  if (value == null) return undefined;
  throw new ValidationError(field, `Cannot ${action}: ${field} must be a string or a number, got ${kind(value)}`);
}

function requiredId(action: MessageType, field: string, value: unknown): string {
  const result = id(action, field, value);
  if (result === undefined) throw new ValidationError(field, `Cannot ${action}: ${field} is required`);
  return result;
}

function text(action: MessageType, field: string, value: unknown): string | undefined {
  if (typeof value === "string" || value == null) return value ?? undefined;
  throw new ValidationError(field, `Cannot ${action}: ${field} must be a string, got ${kind(value)}`);
}

/** Objects that JSON writes as something other than an object (or as `{}`, losing what they hold). */
const NOT_RECORDS = [Date, Set, Number, String, Boolean, RegExp, Promise, WeakMap, WeakSet, ArrayBuffer];

/**
 * `value` as a JSON object (properties, traits, context, integrations always
 * are one on the wire): a plain object or a Map as it is, a class instance
 * whose `toJSON` gives an object as that object; anything else is refused.
 */
function record<T = Properties>(action: MessageType, field: string, value: unknown): T | undefined {
  if (value == null) return undefined;
  if (typeof value !== "object" || Array.isArray(value)) {
    throw new ValidationError(field, `Cannot ${action}: ${field} must be an object, got ${kind(value)}`);
  }
  const proto = Object.getPrototypeOf(value);
  if (proto !== Object.prototype && proto !== null) {
    const not = NOT_RECORDS.find((type) => value instanceof type) ??
      (ArrayBuffer.isView(value) ? Uint8Array : undefined);
    if (not !== undefined) {
      throw new ValidationError(field, `Cannot ${action}: ${field} must be an object, got a ${not.name}`);
    }
  }
  const toJSON = (value as { toJSON?: unknown }).toJSON;
  if (typeof toJSON !== "function") return value as T;
  let json: unknown;
  try {
    json = toJSON.call(value, field);
  } catch (cause) {
    throw new ValidationError(
      field,
      `Cannot ${action}: ${field}.toJSON() threw: ${(cause as Error)?.message ?? cause}`,
      {
        cause,
      },
    );
  }
  if (typeof json !== "object" || json === null || Array.isArray(json)) {
    throw new ValidationError(field, `Cannot ${action}: ${field}.toJSON() returned ${kind(json)}, not an object`);
  }
  return json as T;
}

const ISO = /^(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2})(?::(\d{2})(?:\.(\d{1,9}))?)?(Z|[+-]\d{2}(?::?\d{2})?)?$/i;

/** The ISO string of `date` in UTC, which must fall in the years 0000 to 9999 (past them it reads "+010000-..."). */
function checkYear(action: string, date: Date): string {
  const year = date.getUTCFullYear();
  if (year < 0 || year > 9999) {
    throw new ValidationError(
      "timestamp",
      `Cannot ${action}: timestamp is in the year ${year} (UTC), outside 0000 to 9999`,
    );
  }
  return date.toISOString();
}

/** Converts a timestamp to a UTC ISO-8601 string with milliseconds, or explains why it cannot. */
export function toTimestamp(action: string, value: unknown): string {
  if (value instanceof Date) {
    const time = value.getTime();
    if (Number.isNaN(time)) throw new ValidationError("timestamp", `Cannot ${action}: timestamp is an invalid Date`);
    return checkYear(action, new Date(time));
  }
  if (typeof value !== "string") {
    const hint = typeof value === "number" ? " (for epoch milliseconds, pass new Date(ms))" : "";
    throw new ValidationError(
      "timestamp",
      `Cannot ${action}: timestamp must be a Date or an ISO-8601 string, got ${kind(value)}${hint}`,
    );
  }
  const m = ISO.exec(value);
  if (m === null) {
    const dateOnly = /^\d{4}-\d{2}-\d{2}$/.test(value);
    throw new ValidationError(
      "timestamp",
      dateOnly
        ? `Cannot ${action}: timestamp ${
          JSON.stringify(value)
        } has no time or time zone; write "${value}T00:00:00Z" or give the zone it was in`
        : `Cannot ${action}: timestamp ${
          JSON.stringify(value)
        } is not an ISO-8601 date-time such as "2012-10-17T18:58:57.911Z"`,
    );
  }
  if (m[8] === undefined) {
    throw new ValidationError(
      "timestamp",
      `Cannot ${action}: timestamp ${JSON.stringify(value)} has no time zone, so it would be read in whatever zone ` +
        `the machine is in and land at the wrong time; add "Z" for UTC or an offset such as "+02:00"`,
    );
  }
  const [year, month, day, hour, minute, second] = [1, 2, 3, 4, 5, 6].map((i) => Number(m[i] ?? 0));
  const millis = Number((m[7] ?? "").padEnd(3, "0").slice(0, 3));
  const daysInMonth = new Date(Date.UTC(year, month, 0)).getUTCDate();
  if (month < 1 || month > 12 || day < 1 || day > daysInMonth || hour > 23 || minute > 59 || second > 59) {
    throw new ValidationError("timestamp", `Cannot ${action}: timestamp ${JSON.stringify(value)} is not a real date`);
  }
  let offset = 0;
  const zone = m[8];
  if (zone !== "Z" && zone !== "z") {
    const digits = zone.replace(":", "");
    const minutes = Number(digits.slice(1, 3)) * 60 + Number(digits.slice(3, 5) || 0);
    offset = (zone[0] === "-" ? -1 : 1) * minutes;
  }
  const date = new Date(0);
  date.setUTCFullYear(year, month - 1, day);
  date.setUTCHours(hour, minute - offset, second, millis);
  return checkYear(action, date);
}

function messageId(action: MessageType, value: unknown): string {
  if (value == null) return crypto.randomUUID();
  if (typeof value === "string" && value !== "" && value.length <= MAX_MESSAGE_ID_LENGTH) return value;
  throw new ValidationError(
    "messageId",
    `Cannot ${action}: messageId must be a non-empty string of at most ${MAX_MESSAGE_ID_LENGTH} characters`,
  );
}

function context(action: MessageType, value: unknown): Message["context"] {
  const given = record(action, "context", value);
  // A fresh object: the caller's context is never written to.
  return given === undefined ? BARE_CONTEXT : { ...given, library: LIBRARY };
}

/** The call's options (or the object-style params): only read from, never sent, so any object will do. */
function options(action: MessageType, value: unknown): CallOptions | undefined {
  if (value == null) return undefined;
  if (typeof value === "object" && !Array.isArray(value)) return value as CallOptions;
  throw new ValidationError("options", `Cannot ${action}: options must be an object, got ${kind(value)}`);
}

function anonymous(action: MessageType, userId: string | undefined, o: CallOptions | undefined) {
  const anonymousId = o === undefined ? undefined : id(action, "anonymousId", o.anonymousId);
  if (userId === undefined && anonymousId === undefined) {
    throw new ValidationError("userId", `Cannot ${action}: userId or anonymousId is required`);
  }
  return anonymousId;
}

function timestamp(action: MessageType, o: CallOptions | undefined): string {
  const t = o?.timestamp;
  return t == null ? new Date().toISOString() : toTimestamp(action, t);
}

/** `identify(userId, traits?, options?)` or `identify({ userId, traits, ... })`. */
export function identify(userId: unknown, traits: unknown, opts: unknown): Message {
  const o = options("identify", opts);
  const user = id("identify", "userId", userId);
  const anonymousId = anonymous("identify", user, o);
  return {
    type: "identify",
    messageId: messageId("identify", o?.messageId),
    timestamp: timestamp("identify", o),
    userId: user,
    anonymousId,
    traits: record("identify", "traits", traits),
    context: context("identify", o?.context),
    integrations: record<Integrations>("identify", "integrations", o?.integrations),
  };
}

/** `track(userId, event, properties?, options?)`. */
export function track(userId: unknown, event: unknown, properties: unknown, opts: unknown): Message {
  const o = options("track", opts);
  const user = id("track", "userId", userId);
  const anonymousId = anonymous("track", user, o);
  if (typeof event !== "string" || event === "") {
    throw new ValidationError(
      "event",
      `Cannot track: event must be a non-empty string, got ${event === "" ? "an empty string" : kind(event)}`,
    );
  }
  return {
    type: "track",
    messageId: messageId("track", o?.messageId),
    timestamp: timestamp("track", o),
    userId: user,
    anonymousId,
    event,
    properties: record("track", "properties", properties),
    context: context("track", o?.context),
    integrations: record<Integrations>("track", "integrations", o?.integrations),
  };
}

/** `page(userId, category?, name?, properties?, options?)`; `screen` has the same shape. */
export function view(
  type: "page" | "screen",
  userId: unknown,
  category: unknown,
  name: unknown,
  properties: unknown,
  opts: unknown,
): Message {
  const o = options(type, opts);
  const user = id(type, "userId", userId);
  const anonymousId = anonymous(type, user, o);
  return {
    type,
    messageId: messageId(type, o?.messageId),
    timestamp: timestamp(type, o),
    userId: user,
    anonymousId,
    category: text(type, "category", category),
    name: text(type, "name", name),
    properties: record(type, "properties", properties),
    context: context(type, o?.context),
    integrations: record<Integrations>(type, "integrations", o?.integrations),
  };
}

/** `group(userId, groupId, traits?, options?)`. */
export function group(userId: unknown, groupId: unknown, traits: unknown, opts: unknown): Message {
  const o = options("group", opts);
  const user = id("group", "userId", userId);
  const anonymousId = anonymous("group", user, o);
  return {
    type: "group",
    messageId: messageId("group", o?.messageId),
    timestamp: timestamp("group", o),
    userId: user,
    anonymousId,
    groupId: requiredId("group", "groupId", groupId),
    traits: record("group", "traits", traits),
    context: context("group", o?.context),
    integrations: record<Integrations>("group", "integrations", o?.integrations),
  };
}

/** `alias(previousId, userId, options?)`. */
export function alias(previousId: unknown, userId: unknown, opts: unknown): Message {
  const o = options("alias", opts);
  return {
    type: "alias",
    messageId: messageId("alias", o?.messageId),
    timestamp: timestamp("alias", o),
    previousId: requiredId("alias", "previousId", previousId),
    userId: requiredId("alias", "userId", userId),
    context: context("alias", o?.context),
    integrations: record<Integrations>("alias", "integrations", o?.integrations),
  };
}

/** The object style: `{ userId, traits, ... }` for identify. */
export const identifyParams = (p: IdentifyParams): Message => identify(p.userId, p.traits, p);
/** The object style for track. */
export const trackParams = (p: TrackParams): Message => track(p.userId, p.event, p.properties, p);
/** The object style for page and screen. */
export const viewParams = (type: "page" | "screen", p: PageParams): Message =>
  view(type, p.userId, p.category, p.name, p.properties, p);
/** The object style for group. */
export const groupParams = (p: GroupParams): Message => group(p.userId, p.groupId, p.traits, p);
/** The object style for alias. */
export const aliasParams = (p: AliasParams): Message => alias(p.previousId, p.userId, p);
