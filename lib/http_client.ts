import type { FetchFn, HttpClient, HttpClientRequest, HttpClientResponse } from "./types.ts";

/**
 * analytics-node's `FetchHTTPClient`: an {@linkcode HttpClient} over a fetch
 * function (the global one unless given), for code that builds its client
 * object from it.
 *
 * @example
 * ```ts
 * import { Analytics, FetchHTTPClient } from "@tally/analytics";
 *
 * const analytics = new Analytics({ writeKey: "KEY", httpClient: new FetchHTTPClient(), send: false });
 * await analytics.close();
 * ```
 */
export class FetchHTTPClient implements HttpClient {
  readonly #fetch: FetchFn | undefined;

  /** Wraps `fetch` (default: the global `fetch` at request time). */
  constructor(fetch?: FetchFn) {
    this.#fetch = fetch;
  }

  /** Sends one request with fetch. */
  makeRequest(request: HttpClientRequest): Promise<HttpClientResponse> {
    const fetch = this.#fetch ?? globalThis.fetch;
    const { url, method, headers, body, signal } = request;
    return fetch(url, { method, headers, body, signal, redirect: "manual" });
  }
}
