/** The in-memory event store: the newest events within a count and a byte bound (oldest evicted), filters, counters. */
import { MESSAGE_ID_LIMIT } from "./limits.ts";
import { MESSAGE_TYPES } from "./validate.ts";
import type { CollectorStats, EventFilter, MessageSource, StoredEvent, Violation } from "./types.ts";

/** The plan's verdict on a message, as the store keeps it. */
export interface Verdict {
  violations: Violation[];
  blocked: boolean;
}

/** The plan counters of `stats().plan`, besides the file and mode. */
export interface PlanCounts {
  violations: number;
  blocked: number;
  byCategory: Record<string, number>;
}

/** What `stats().byType` counts a message under: its type when the spec has it, else "unknown". */
function typeKey(message: Record<string, unknown>): string {
  return typeof message.type === "string" && MESSAGE_TYPES.includes(message.type) ? message.type : "unknown";
}

/**
 * An id as the text it compares by: the spec types ids as strings, but clients send numbers too (42 and "42" are
 * the same user). Anything else is no id.
 */
function idText(value: unknown): string | undefined {
  return typeof value === "string" ? value : typeof value === "number" ? String(value) : undefined;
}

/**
 * The messageIds stored so far, to flag re-sends: at most `capacity` of them, the oldest (first seen) forgotten
 * past it. A ring of the ids in the order seen says which is oldest: taking the first of a Set's iterator instead
 * walks over every entry deleted since the Set last rehashed, which made each check past `capacity` cost up to
 * `capacity` steps (10k checks/s at 100000 ids).
 */
export class SeenIds {
  readonly capacity: number;
  #ids = new Set<string>();
  #ring: (string | undefined)[] = [];
  #next = 0;

  constructor(capacity: number) {
    this.capacity = capacity;
  }

  /** Whether `id` was seen before; remembers it when not. Ids that are not strings of 1 to 100 characters: false. */
  check(id: unknown): boolean {
    if (typeof id !== "string" || id === "" || id.length > MESSAGE_ID_LIMIT) return false;
    if (this.#ids.has(id)) return true;
    this.#ids.add(id);
    if (this.#ring.length < this.capacity) this.#ring.push(id);
    else {
      this.#ids.delete(this.#ring[this.#next]!);
      this.#ring[this.#next] = id;
      this.#next = (this.#next + 1) % this.capacity;
    }
    return false;
  }

  clear(): void {
    this.#ids.clear();
    this.#ring = [];
    this.#next = 0;
  }
}

/** Keeps the newest events within `capacity` events and `maxBytes` bytes, and counts everything that went through. */
export class EventStore {
  readonly capacity: number;
  readonly maxBytes: number;
  /** Oldest first, from `#start` on (the slots before it were evicted; compacted now and then). */
  #events: StoredEvent[] = [];
  /** The size each event was counted at, alongside `#events`. */
  #sizes: number[] = [];
  #start = 0;
  #bytes = 0;
  #nextId = 1;
  #good = 0;
  #bad = 0;
  #evicted = 0;
  #duplicates = 0;
  #seen: SeenIds;
  #byType: Record<string, { good: number; bad: number }> = {};
  #planViolations = 0;
  #planBlocked = 0;
  #byCategory: Record<string, number> = {};
  /** Transport counters, kept here so that `clear()` zeroes everything at once. */
  requests = 0;
  bytes = 0;
  /** analytics.js metrics data points received. */
  metrics = 0;

  constructor(capacity: number, maxBytes: number, maxSeenIds: number) {
    this.capacity = capacity;
    this.maxBytes = maxBytes;
    this.#seen = new SeenIds(maxSeenIds);
  }

  /**
   * Stores one message, counted as `size` bytes, and returns the event made of it; `verdict` is the plan's, when
   * there is one.
   */
  add(
    message: Record<string, unknown>,
    receivedAt: string,
    reasons: string[],
    source: MessageSource,
    size: number,
    verdict?: Verdict,
  ): StoredEvent {
    const status = reasons.length === 0 ? "good" : "bad";
    const id = this.#nextId++;
    const duplicate = this.#seen.check(message.messageId);
    // `duplicate`, `violations` and `blocked` only when there are any, in this order and before `message`: the key
    // order of the NDJSON line (`eventJson`).
    let event: StoredEvent;
    if (verdict === undefined || verdict.violations.length === 0) {
      event = duplicate
        ? { id, receivedAt, status, reasons, source, duplicate, message }
        : { id, receivedAt, status, reasons, source, message };
    } else {
      const { violations } = verdict;
      const dup = duplicate ? { duplicate } as const : undefined;
      const blocked = verdict.blocked ? { blocked: true } as const : undefined;
      event = { id, receivedAt, status, reasons, source, ...dup, violations, ...blocked, message };
      this.#countPlan(event, 1);
    }
    if (duplicate) this.#duplicates++;
    const counts = this.#byType[typeKey(message)] ??= { good: 0, bad: 0 };
    if (status === "good") {
      this.#good++;
      counts.good++;
    } else {
      this.#bad++;
      counts.bad++;
    }
    this.#events.push(event);
    this.#sizes.push(size);
    this.#bytes += size;
    while (
      this.#events.length - this.#start > 1 &&
      (this.#events.length - this.#start > this.capacity || this.#bytes > this.maxBytes)
    ) {
      this.#bytes -= this.#sizes[this.#start];
      (this.#events as (StoredEvent | undefined)[])[this.#start] = undefined;
      this.#start++;
      this.#evicted++;
    }
    if (this.#start > 1024 && this.#start * 2 > this.#events.length) {
      this.#events = this.#events.slice(this.#start);
      this.#sizes = this.#sizes.slice(this.#start);
      this.#start = 0;
    }
    return event;
  }

  /** Adds (`by` 1) or takes away (-1) an event with violations from the plan counters. */
  #countPlan(event: StoredEvent, by: 1 | -1): void {
    const violations = event.violations;
    if (violations === undefined) return;
    this.#planViolations += by;
    if (event.blocked) this.#planBlocked += by;
    let seen = "";
    for (const { category } of violations) {
      // A category counts once per message; messages rarely have more than a few violations.
      if (seen.includes(`|${category}|`)) continue;
      seen += `|${category}|`;
      const n = (this.#byCategory[category] ?? 0) + by;
      if (n === 0) delete this.#byCategory[category];
      else this.#byCategory[category] = n;
    }
  }

  /** The plan counters: messages with violations, blocked, per category. */
  planCounts(): PlanCounts {
    return { violations: this.#planViolations, blocked: this.#planBlocked, byCategory: { ...this.#byCategory } };
  }

  /** Events matching `filter`, newest first. */
  events(filter: EventFilter = {}): StoredEvent[] {
    return this.#matching(filter).map((at) => this.#events[at]);
  }

  /** Indexes into `#events` of the events matching `filter`, newest first. */
  #matching(filter: EventFilter): number[] {
    const { type, event, status, before, source, duplicate, violations, violation, blocked } = filter;
    const userId = filter.userId === undefined ? undefined : String(filter.userId);
    const anonymousId = filter.anonymousId === undefined ? undefined : String(filter.anonymousId);
    const limit = filter.limit ?? Infinity;
    const events = this.#events;
    const found: number[] = [];
    for (let at = events.length - 1; at >= this.#start && found.length < limit; at--) {
      const stored = events[at];
      if (before !== undefined && stored.id >= before) continue;
      if (status !== undefined && stored.status !== status) continue;
      if (duplicate !== undefined && (stored.duplicate === true) !== duplicate) continue;
      if (source !== undefined && stored.source.library !== source) continue;
      if (violations !== undefined && (stored.violations !== undefined) !== violations) continue;
      if (blocked !== undefined && (stored.blocked === true) !== blocked) continue;
      if (violation !== undefined && !stored.violations?.some((v) => v.category === violation)) continue;
      const m = stored.message;
      if (type !== undefined && m.type !== type) continue;
      if (userId !== undefined && idText(m.userId) !== userId) continue;
      if (anonymousId !== undefined && idText(m.anonymousId) !== anonymousId) continue;
      if (event !== undefined && m.event !== event) continue;
      found.push(at);
    }
    return found;
  }

  /**
   * Forgets the events matching `filter` (the newest `filter.limit` of them, when given) and takes them out of the
   * counters, as if they had never arrived; the transport counters, `evicted`, `metrics` and the messageIds seen
   * stay (a re-send of a deleted message is still a re-send). Returns them, newest first.
   */
  delete(filter: EventFilter): StoredEvent[] {
    const at = this.#matching(filter);
    if (at.length === 0) return [];
    const gone = at.map((i) => this.#events[i]);
    const drop = new Set(at);
    const events: StoredEvent[] = [];
    const sizes: number[] = [];
    for (let i = this.#start; i < this.#events.length; i++) {
      if (drop.has(i)) this.#bytes -= this.#sizes[i];
      else {
        events.push(this.#events[i]);
        sizes.push(this.#sizes[i]);
      }
    }
    this.#events = events;
    this.#sizes = sizes;
    this.#start = 0;
    for (const event of gone) {
      if (event.duplicate) this.#duplicates--;
      this.#countPlan(event, -1);
      const type = typeKey(event.message);
      const counts = this.#byType[type];
      if (event.status === "good") {
        this.#good--;
        counts.good--;
      } else {
        this.#bad--;
        counts.bad--;
      }
      if (counts.good === 0 && counts.bad === 0) delete this.#byType[type];
    }
    return gone;
  }

  stats(): CollectorStats {
    const byType: CollectorStats["byType"] = {};
    for (const [type, counts] of Object.entries(this.#byType)) byType[type] = { ...counts };
    return {
      total: this.#good + this.#bad,
      good: this.#good,
      bad: this.#bad,
      byType,
      requests: this.requests,
      bytes: this.bytes,
      evicted: this.#evicted,
      duplicates: this.#duplicates,
      metrics: this.metrics,
    };
  }

  get evicted(): number {
    return this.#evicted;
  }

  /** Forgets every event and every messageId seen, and zeroes every counter; ids keep increasing. */
  clear(): void {
    this.#seen.clear();
    this.#duplicates = 0;
    this.metrics = 0;
    this.#events = [];
    this.#sizes = [];
    this.#start = 0;
    this.#bytes = 0;
    this.#good = 0;
    this.#bad = 0;
    this.#evicted = 0;
    this.#byType = {};
    this.#planViolations = 0;
    this.#planBlocked = 0;
    this.#byCategory = {};
    this.requests = 0;
    this.bytes = 0;
  }
}
