/** The in-memory event store: the newest events within a count and a byte bound (oldest evicted), filters, counters. */
import { MESSAGE_TYPES } from "./validate.ts";
import type { CollectorStats, EventFilter, StoredEvent } from "./types.ts";

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
  #byType: Record<string, { good: number; bad: number }> = {};
  /** Transport counters, kept here so that `clear()` zeroes everything at once. */
  requests = 0;
  bytes = 0;

  constructor(capacity: number, maxBytes: number) {
    this.capacity = capacity;
    this.maxBytes = maxBytes;
  }

  /** Stores one message, counted as `size` bytes, and returns the event made of it. */
  add(message: Record<string, unknown>, receivedAt: string, reasons: string[], size: number): StoredEvent {
    const status = reasons.length === 0 ? "good" : "bad";
    const event: StoredEvent = { id: this.#nextId++, receivedAt, status, reasons, message };
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

  /** Events matching `filter`, newest first. */
  events(filter: EventFilter = {}): StoredEvent[] {
    return this.#matching(filter).map((at) => this.#events[at]);
  }

  /** Indexes into `#events` of the events matching `filter`, newest first. */
  #matching(filter: EventFilter): number[] {
    const { type, event, status, before } = filter;
    const userId = filter.userId === undefined ? undefined : String(filter.userId);
    const anonymousId = filter.anonymousId === undefined ? undefined : String(filter.anonymousId);
    const limit = filter.limit ?? Infinity;
    const events = this.#events;
    const found: number[] = [];
    for (let at = events.length - 1; at >= this.#start && found.length < limit; at--) {
      const stored = events[at];
      if (before !== undefined && stored.id >= before) continue;
      if (status !== undefined && stored.status !== status) continue;
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
   * counters, as if they had never arrived; the transport counters and `evicted` stay. Returns them, newest first.
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
    };
  }

  get evicted(): number {
    return this.#evicted;
  }

  /** Forgets every event and zeroes every counter; ids keep increasing. */
  clear(): void {
    this.#events = [];
    this.#sizes = [];
    this.#start = 0;
    this.#bytes = 0;
    this.#good = 0;
    this.#bad = 0;
    this.#evicted = 0;
    this.#byType = {};
    this.requests = 0;
    this.bytes = 0;
  }
}
