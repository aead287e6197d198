/**
 * Spec validation of one message: required fields per type, id types,
 * reserved traits and properties with their types, and timestamp sanity.
 * Each problem is one sentence naming the field. Sizes are checked by the
 * caller, which knows the bytes.
 */
import { EARLIEST_TIMESTAMP, FUTURE_SKEW_MS, MESSAGE_ID_LIMIT } from "./limits.ts";

/** The message types of the Segment spec. */
export const MESSAGE_TYPES: readonly string[] = ["identify", "track", "page", "screen", "group", "alias"];

type Kind = "string" | "number" | "object" | "date" | "strings" | "currency" | "email" | "string-or-number";

const IDENTIFY_TRAITS: [string, Kind][] = Object.entries(
  {
    address: "object",
    company: "object",
    age: "number",
    birthday: "date",
    createdAt: "date",
    avatar: "string",
    description: "string",
    email: "email",
    firstName: "string",
    gender: "string",
    id: "string",
    lastName: "string",
    name: "string",
    phone: "string",
    title: "string",
    username: "string",
    website: "string",
  } satisfies Record<string, Kind>,
);

const GROUP_TRAITS: [string, Kind][] = Object.entries(
  {
    address: "object",
    createdAt: "date",
    avatar: "string",
    description: "string",
    email: "email",
    // The spec types it as a string, but its own example sends a number.
    employees: "string-or-number",
    id: "string",
    industry: "string",
    name: "string",
    phone: "string",
    website: "string",
    plan: "string",
  } satisfies Record<string, Kind>,
);

const PAGE_PROPERTIES: [string, Kind][] = Object.entries(
  {
    name: "string",
    path: "string",
    referrer: "string",
    search: "string",
    title: "string",
    url: "string",
    keywords: "strings",
  } satisfies Record<string, Kind>,
);

const TRACK_PROPERTIES: [string, Kind][] = Object.entries(
  {
    revenue: "number",
    value: "number",
    currency: "currency",
  } satisfies Record<string, Kind>,
);

const NONE: string[] = [];
Object.freeze(NONE);

/** ISO 8601 date-time with a zone (Z or an offset), as Segment's libraries send it. */
const ISO_WITH_ZONE = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}(:?\d{2})?)$/i;
/** ISO 8601 date, or date-time with or without a zone: what date traits (birthday, createdAt) take. */
const ISO_DATE = /^\d{4}-\d{2}-\d{2}([T ]\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}(:?\d{2})?)?)?$/i;
const EMAIL = /^[^\s@]+@[^\s@]+$/;
const CURRENCY = /^[A-Za-z]{3}$/;

/** A short description of a value's JSON type, for reasons: `number 42`, `an array`, `null`. */
export function describe(value: unknown): string {
  if (value === null) return "null";
  if (Array.isArray(value)) return "an array";
  switch (typeof value) {
    case "string":
      return value.length > 40 ? `string "${value.slice(0, 40)}…"` : `string ${JSON.stringify(value)}`;
    case "number":
    case "boolean":
      return `${typeof value} ${value}`;
    default:
      return "an object";
  }
}

const isObject = (value: unknown): value is Record<string, unknown> =>
  typeof value === "object" && value !== null && !Array.isArray(value);

/**
 * Checks one message against the spec. `now` is the server's clock (ms), for the timestamp window.
 * Returns the reasons it is bad; an empty (shared, frozen) array when it is good.
 */
export function validateMessage(message: Record<string, unknown>, now: number): string[] {
  let reasons: string[] = NONE;
  const bad = (reason: string): void => {
    if (reasons === NONE) reasons = [];
    reasons.push(reason);
  };

  const type = message.type;
  let known = false;
  if (type === undefined || type === null) bad("type is missing: it must be one of " + MESSAGE_TYPES.join(", "));
  else if (typeof type !== "string") bad(`type must be a string, got ${describe(type)}`);
  else if (!MESSAGE_TYPES.includes(type)) bad(`type "${type}" is not one of ${MESSAGE_TYPES.join(", ")}`);
  else known = true;

  const messageId = message.messageId;
  if (messageId === undefined || messageId === null) {
    bad("messageId is missing: Segment deduplicates by it (libraries set a UUID per message)");
  } else if (typeof messageId !== "string") bad(`messageId must be a string, got ${describe(messageId)}`);
  else if (messageId === "") bad("messageId is an empty string");
  else if (messageId.length > MESSAGE_ID_LIMIT) {
    bad(`messageId is ${messageId.length} characters: Segment deduplicates by at most ${MESSAGE_ID_LIMIT}`);
  }

  const hasUser = checkId(message, "userId", bad);
  const hasAnonymous = checkId(message, "anonymousId", bad);
  if (type === "alias") {
    if (message.userId == null) bad("userId is missing: an alias needs userId and previousId");
    checkId(message, "previousId", bad);
    if (message.previousId == null) bad("previousId is missing: an alias needs userId and previousId");
  } else if (known && !hasUser && !hasAnonymous && message.userId == null && message.anonymousId == null) {
    bad("userId and anonymousId are both missing: every " + type + " needs one of them");
  }

  if (type === "track") {
    const event = message.event;
    if (event === undefined || event === null) bad("event is missing: every track needs an event name");
    else if (typeof event !== "string") bad(`event must be a string, got ${describe(event)}`);
    else if (event.trim() === "") bad("event is an empty string");
  } else if (type === "group") {
    if (!checkId(message, "groupId", bad) && message.groupId == null) bad("groupId is missing: every group needs one");
  } else if (type === "page" || type === "screen") {
    checkKind(message.name, "string", "name", bad);
    checkKind(message.category, "string", "category", bad);
  }

  const timestamp = message.timestamp;
  if (timestamp !== undefined && timestamp !== null) checkTimestamp(timestamp, now, bad);

  checkKind(message.context, "object", "context", bad);
  checkKind(message.integrations, "object", "integrations", bad);

  const traits = message.traits;
  if (checkKind(traits, "object", "traits", bad) && traits !== undefined && traits !== null) {
    if (type === "identify") checkReserved(traits as Record<string, unknown>, IDENTIFY_TRAITS, "traits", bad);
    else if (type === "group") checkReserved(traits as Record<string, unknown>, GROUP_TRAITS, "traits", bad);
  }
  const properties = message.properties;
  if (checkKind(properties, "object", "properties", bad) && properties !== undefined && properties !== null) {
    if (type === "page") checkReserved(properties as Record<string, unknown>, PAGE_PROPERTIES, "properties", bad);
    else if (type === "track") {
      checkReserved(properties as Record<string, unknown>, TRACK_PROPERTIES, "properties", bad);
    }
  }
  return reasons;
}

/**
 * An id field: absent or null is fine here (the caller decides what is required); a non-empty string is the
 * spec's type. Numbers are bad: the spec types ids as strings, Segment's libraries send them as strings, and
 * destinations disagree on numbers (a warehouse column typed from the first value). Returns whether it is usable.
 */
function checkId(message: Record<string, unknown>, field: string, bad: (reason: string) => void): boolean {
  const value = message[field];
  if (value === undefined || value === null) return false;
  if (typeof value === "string") {
    if (value.trim() !== "") return true;
    bad(`${field} is an empty string`);
    return false;
  }
  if (typeof value === "number") {
    bad(`${field} must be a string, got number ${value}: send it as "${value}"`);
    return false;
  }
  bad(`${field} must be a string, got ${describe(value)}`);
  return false;
}

function checkTimestamp(value: unknown, now: number, bad: (reason: string) => void): void {
  if (typeof value !== "string") {
    bad(`timestamp must be an ISO 8601 string, got ${describe(value)}`);
    return;
  }
  if (!ISO_WITH_ZONE.test(value)) {
    bad(
      /^\d{4}-\d{2}-\d{2}T[\d:.]+$/.test(value)
        ? `timestamp "${value}" has no time zone: add Z or an offset, or it is read in the server's zone`
        : `timestamp "${value}" is not an ISO 8601 date-time with a zone`,
    );
    return;
  }
  const ms = Date.parse(value);
  if (Number.isNaN(ms)) bad(`timestamp "${value}" is not a real date`);
  else if (ms < EARLIEST_TIMESTAMP) bad(`timestamp "${value}" is before 2000: a unit or clock mistake?`);
  else if (ms > now + FUTURE_SKEW_MS) bad(`timestamp "${value}" is more than 24 hours in the future`);
}

/** Checks `value` (when present and not null) is of `kind`; returns false when it was reported bad. */
function checkKind(value: unknown, kind: Kind, path: string, bad: (reason: string) => void): boolean {
  if (value === undefined || value === null) return true;
  switch (kind) {
    case "string":
      if (typeof value === "string") return true;
      break;
    case "number":
      if (typeof value === "number") return true;
      break;
    case "string-or-number":
      if (typeof value === "string" || typeof value === "number") return true;
      bad(`${path} must be a string or a number, got ${describe(value)}`);
      return false;
    case "object":
      if (isObject(value)) return true;
      break;
    case "strings":
      if (Array.isArray(value)) {
        const at = value.findIndex((item) => typeof item !== "string");
        if (at < 0) return true;
        bad(`${path}[${at}] must be a string, got ${describe(value[at])}`);
        return false;
      }
      bad(`${path} must be an array of strings, got ${describe(value)}`);
      return false;
    case "date":
      if (typeof value === "string" && ISO_DATE.test(value) && !Number.isNaN(Date.parse(value))) return true;
      bad(`${path} must be an ISO 8601 date string such as "2024-05-01T12:00:00Z", got ${describe(value)}`);
      return false;
    case "email":
      if (typeof value === "string" && EMAIL.test(value)) return true;
      bad(
        typeof value === "string"
          ? `${path} ${describe(value)} is not an email address`
          : `${path} must be a string, got ${describe(value)}`,
      );
      return false;
    case "currency":
      if (typeof value === "string" && CURRENCY.test(value)) return true;
      bad(`${path} must be an ISO 4217 currency code such as "USD", got ${describe(value)}`);
      return false;
  }
  bad(`${path} must be ${kind === "object" ? "an object" : `a ${kind}`}, got ${describe(value)}`);
  return false;
}

/** Checks the reserved names present in `fields`: a lookup per reserved name, whatever else the object holds. */
function checkReserved(
  fields: Record<string, unknown>,
  reserved: [string, Kind][],
  path: string,
  bad: (reason: string) => void,
): void {
  for (const [key, kind] of reserved) {
    const value = fields[key];
    if (value !== undefined && Object.hasOwn(fields, key)) checkKind(value, kind, `${path}.${key}`, bad);
  }
}
