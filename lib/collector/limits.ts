/** Segment's limits, as the collector enforces them, and the sanity window for timestamps. */

/** Bytes of one message's JSON (UTF-8): Segment's 32 KB. */
export const MESSAGE_LIMIT = 32 * 1024;
/** Bytes of one request body, on the wire and after gunzip: Segment's 500 KB. */
export const REQUEST_LIMIT = 500 * 1024;
/** Messages in one batch. */
export const BATCH_LIMIT = 2500;
/** Characters of a messageId Segment deduplicates by. */
export const MESSAGE_ID_LIMIT = 100;
/** The earliest timestamp taken as real: 2000-01-01T00:00:00Z. */
export const EARLIEST_TIMESTAMP = Date.UTC(2000, 0, 1);
/** How far past the server's clock a timestamp may be: 24 hours, room for any time zone mistake to show. */
export const FUTURE_SKEW_MS = 24 * 60 * 60 * 1000;
