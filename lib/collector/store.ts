/** The in-memory event store: a bounded ring of events (oldest evicted), filters, and counters. */
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

/** Keeps the newest `capacity` events and counts everything that went through. */
export class EventStore {
  readonly capacity: number;
  #ring: StoredEvent[] = [];
  /** Index of the oldest event in `#ring` once it is full. */
  #head = 0;
  #nextId = 1;
  #good = 0;
  #bad = 0;
  #evicted = 0;
  #byType: Record<string, { good: number; bad: number }> = {};
  /** Transport counters, kept here so that `clear()` zeroes everything at once. */
  requests = 0;
  bytes = 0;

  constructor(capacity: number) {
    this.capacity = capacity;
  }

  /** Stores one message and returns the event made of it. */
  add(message: Record<string, unknown>, receivedAt: string, reasons: string[]): StoredEvent {
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
    const ring = this.#ring;
    if (ring.length < this.capacity) {
      ring.push(event);
    } else {
      ring[this.#head] = event;
      this.#head = this.#head + 1 === this.capacity ? 0 : this.#head + 1;
      this.#evicted++;
    }
    return event;
  }

  /** Events matching `filter`, newest first. */
  events(filter: EventFilter = {}): StoredEvent[] {
    const { type, event, status } = filter;
    const userId = filter.userId === undefined ? undefined : String(filter.userId);
    const anonymousId = filter.anonymousId === undefined ? undefined : String(filter.anonymousId);
    const limit = filter.limit ?? Infinity;
    const ring = this.#ring;
    const size = ring.length;
    const newest = (this.#head - 1 + size) % (size || 1);
    const found: StoredEvent[] = [];
    for (let n = 0; n < size && found.length < limit; n++) {
      const stored = ring[(newest - n + size) % size];
      if (status !== undefined && stored.status !== status) continue;
      const m = stored.message;
      if (type !== undefined && m.type !== type) continue;
      if (userId !== undefined && idText(m.userId) !== userId) continue;
      if (anonymousId !== undefined && idText(m.anonymousId) !== anonymousId) continue;
      if (event !== undefined && m.event !== event) continue;
      found.push(stored);
    }
    return found;
  }

  /**
   * Forgets the events matching `filter` (the newest `filter.limit` of them, when given) and takes them out of the
   * counters, as if they had never arrived; the transport counters and `evicted` stay. Returns them, newest first.
   */
  delete(filter: EventFilter): StoredEvent[] {
    const gone = this.events(filter);
    if (gone.length === 0) return gone;
    const ids = new Set(gone.map((event) => event.id));
    const ring = this.#ring;
    const kept: StoredEvent[] = [];
    // Oldest first, so that the ring starts over at 0 in arrival order.
    for (let n = 0; n < ring.length; n++) {
      const stored = ring[(this.#head + n) % ring.length];
      if (!ids.has(stored.id)) kept.push(stored);
    }
    this.#ring = kept;
    this.#head = 0;
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
    this.#ring = [];
    this.#head = 0;
    this.#good = 0;
    this.#bad = 0;
    this.#evicted = 0;
    this.#byType = {};
    this.requests = 0;
    this.bytes = 0;
  }
}
