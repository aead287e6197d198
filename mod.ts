/**
 * Tally: a Segment-compatible analytics client for Deno, Bun, Node and
 * Cloudflare Workers, built on web standards only. Calls queue messages and
 * return at once; batches go out in the background, gzipped and retried,
 * and every message that cannot be delivered reaches `onError`.
 *
 * @example The module-level default client
 * ```ts
 * import analytics from "@tally/analytics";
 *
 * analytics.writeKey = "YOUR_WRITE_KEY";
 * analytics.send = false; // this example sends nothing
 * analytics.identify("019mr8mf4r", { email: "john@example.com", name: "John Smith", friends: 30 });
 * analytics.track("f4ca124298", "Signed Up", { plan: "Enterprise" });
 * await analytics.flush();
 * ```
 *
 * @module
 */
export { Analytics } from "./lib/client.ts";
export { Context, ContextCancelation } from "./lib/context.ts";
export type { EmitterEvents, ErrorEvent, EventName, HttpRequestEvent, HttpResponseEvent } from "./lib/emitter.ts";
export { OAuthError, type OAuthSettings } from "./lib/oauth.ts";
export type { CloseOnSignalsOptions } from "./lib/signals.ts";
export { FetchHTTPClient } from "./lib/http_client.ts";
export type { Plugin } from "./lib/plugins.ts";
export { default } from "./lib/default_client.ts";
export { DeliveryError, type FailureReason, ValidationError } from "./lib/errors.ts";
export type { AnalyticsOptions } from "./lib/options.ts";
export type {
  AliasParams,
  Callback,
  CallOptions,
  ErrorHandler,
  FetchFn,
  FlushOptions,
  FlushResult,
  GroupParams,
  GroupTraits,
  HTTPClient,
  HttpClient,
  HTTPClientRequest,
  HttpClientRequest,
  HttpClientResponse,
  HTTPResponse,
  Id,
  IdentifyParams,
  Integrations,
  Logger,
  Message,
  MessageType,
  Middleware,
  PageParams,
  Properties,
  Stats,
  Timestamp,
  TrackParams,
  UserTraits,
} from "./lib/types.ts";
export { LIBRARY_NAME, VERSION } from "./lib/version.ts";
