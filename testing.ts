/**
 * `@tally/analytics/testing`: an in-memory recorder that application tests
 * use instead of a server. Its clients take the real path (validation,
 * serialization, batching, gzip, retries); their requests end in memory,
 * where tests find messages and assert on them by type, event, user and a
 * subset of properties or traits. No network, no mocking of `fetch`.
 *
 * @example An application test
 * ```ts
 * import type { Analytics } from "@tally/analytics";
 * import { Recorder } from "@tally/analytics/testing";
 *
 * // The code under test takes its client as a parameter (or attach() the one it uses).
 * function checkout(analytics: Analytics, userId: string, total: number): void {
 *   analytics.track(userId, "Order Completed", { total, currency: "EUR" });
 * }
 *
 * // The body of a test, in any runner (node:test, Deno.test, bun:test, vitest):
 * const recorder = new Recorder();
 * checkout(recorder.client(), "user-1", 30);
 * await recorder.flush();
 * recorder.assertTracked("Order Completed", { userId: "user-1", properties: { total: 30 } });
 * recorder.assertNotSent({ type: "identify" });
 * ```
 *
 * @module
 */
export {
  AssertionError,
  type FailReply,
  type MessageFilter,
  type MessageMatcher,
  type RecordedBody,
  type RecordedRequest,
  Recorder,
  TEST_WRITE_KEY,
  type WaitOptions,
} from "./lib/testing.ts";
