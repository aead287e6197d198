/**
 * The local Segment-compatible collector behind `tally serve`: it takes
 * what Segment's HTTP Tracking API takes (`POST /v1/batch`, `/v1/import`,
 * `/v1/{identify,track,page,screen,group,alias}`, JSON or gzip) and what
 * analytics.js sends (`/v1/{t,i,p,s,g,a,b}`, text/plain, its metrics at
 * `/v1/m`, its settings at `/v1/projects/:writeKey/settings`), enforces
 * Segment's limits, checks every message against the spec and keeps it as
 * good or bad with the reasons, where it came from and whether its
 * messageId was seen before, in memory and optionally in an NDJSON file.
 * `GET /api/events`, `GET /api/stats`, `DELETE /api/events` and the
 * server-sent events of `GET /api/stream` feed the inspector at `/`; they
 * answer only the collector's own names and pages, and ingestion from a
 * page only from loopback origins and the allowed ones. Memory is bounded
 * (events by count and bytes, slow stream clients dropped, answers paged and
 * streamed, slow requests timed out). Fault
 * injection (failures, latency, dropped connections, seeded) and scripted
 * replies exercise a client's retry policy.
 *
 * Uses `node:http`, so it runs on Deno, Bun and Node; `mod.ts` never imports it.
 *
 * @example Check what a client sent
 * ```ts
 * import { startCollector } from "./mod.ts";
 *
 * const collector = await startCollector();
 * await fetch(`${collector.url}/v1/batch`, {
 *   method: "POST",
 *   headers: { "content-type": "application/json" },
 *   body: JSON.stringify({ batch: [{ type: "track", event: "Signed Up", messageId: "m1" }] }),
 * });
 * console.log(collector.events({ status: "bad" })[0].reasons);
 * // ["userId and anonymousId are both missing: every track needs one of them"]
 * await collector.stop();
 * ```
 *
 * @module
 */
export { startCollector } from "./server.ts";
export { serve, type ServeIo } from "./serve.ts";
export { validateMessage } from "./validate.ts";
export { BATCH_LIMIT, MERGED_LIMIT, MESSAGE_LIMIT, NESTING_LIMIT, REQUEST_LIMIT } from "./limits.ts";
export { STREAM_BUFFER, STREAM_CLIENTS } from "./stream.ts";
export type {
  Collector,
  CollectorEvent,
  CollectorOptions,
  CollectorRequest,
  CollectorStats,
  EventFilter,
  MessageSource,
  PlanMode,
  PlanStats,
  ScriptedReply,
  StoredEvent,
  Violation,
  ViolationCategory,
} from "./types.ts";
