/** The in-memory event store: a bounded ring of events (oldest evicted), filters, and counters. */
import { MESSAGE_TYPES } from "./validate.ts";
import type { CollectorStats, EventFilter, StoredEvent } from "./types.ts";

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
    const type = typeof message.type === "string" && MESSAGE_TYPES.includes(message.type) ? message.type : "unknown";
    const counts = this.#byType[type] ??= { good: 0, bad: 0 };
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
    const { type, userId, anonymousId, event, status } = filter;
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
      if (userId !== undefined && m.userId !== userId) continue;
      if (anonymousId !== undefined && m.anonymousId !== anonymousId) continue;
      if (event !== undefined && m.event !== event) continue;
      found.push(stored);
    }
    return found;
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
