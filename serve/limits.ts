/** Segment's limits, as the collector enforces them, its own bounds, and the sanity window for timestamps. */

/** Bytes of one message's JSON (UTF-8): Segment's 32 KB. */
export const MESSAGE_LIMIT = 32 * 1024;
/** Bytes of one request body, on the wire and after gunzip: Segment's 500 KB. */
export const REQUEST_LIMIT = 500 * 1024;
/** Messages in one batch. */
export const BATCH_LIMIT = 2500;
/** Characters of a messageId Segment deduplicates by. */
export const MESSAGE_ID_LIMIT = 100;
/**
 * Levels of nested arrays and objects in a request body, the body itself being level 1 (so a batch's messages
 * are level 3 and their `properties` level 4). Checked on the bytes, before the body is parsed, so that nothing
 * that walks the value (JSON.stringify, the checks) can run out of stack, which Node does near 5000 levels. Above
 * the library's own bound (a field nested more than 1000 levels is a ValidationError), so that whatever the
 * library sends is taken.
 */
export const NESTING_LIMIT = 1024;
/**
 * Bytes of a batch's messages once its top-level `context` and `integrations` are merged into each: ten times
 * the request limit, so that one request cannot make the collector store or write much more than it sent.
 */
export const MERGED_LIMIT = 10 * REQUEST_LIMIT;
/** The earliest timestamp taken as real: 2000-01-01T00:00:00Z. */
export const EARLIEST_TIMESTAMP = Date.UTC(2000, 0, 1);
/** How far past the server's clock a timestamp may be: 24 hours, room for any time zone mistake to show. */
export const FUTURE_SKEW_MS = 24 * 60 * 60 * 1000;
