import { headerOf, readAnswer, send } from "./http.ts";
import { backoff, isRetryableStatus, parseRetryAfter } from "./retry.ts";
import { sleep, Stopper } from "./scheduler.ts";
import type { FetchFn, HttpClient, HttpClientResponse } from "./types.ts";

/**
 * OAuth for server sources (analytics-node's `oauthSettings`): batches carry
 * `Authorization: Bearer <token>`, where the token comes from Segment's OAuth
 * server in exchange for a client assertion signed with the app's private key.
 *
 * @example
 * ```ts
 * import { Analytics, type OAuthSettings } from "@tally/analytics";
 *
 * const oauthSettings: OAuthSettings = {
 *   clientId: "<OAuth app id>",
 *   clientKey: "-----BEGIN PRIVATE KEY-----\n...\n-----END PRIVATE KEY-----",
 *   keyId: "<public key id>",
 * };
 * console.log(Object.keys(oauthSettings));
 * ```
 */
export interface OAuthSettings {
  /** The OAuth app's ID, from Access Management under Workspace Settings in Segment. */
  clientId: string;
  /**
   * The app's RSA private key as PEM PKCS#8 text (`-----BEGIN PRIVATE KEY-----`),
   * the pair of the public key uploaded to the OAuth app. Never logged.
   */
  clientKey: string;
  /** The ID Segment gave the uploaded public key. */
  keyId: string;
  /**
   * The OAuth server. Set it when the events go elsewhere than
   * `https://api.segment.io`: for `https://events.eu1.segmentapis.com` it is
   * `https://oauth2.eu1.segmentapis.com`.
   * @default {"https://oauth2.segment.io"}
   */
  authServer?: string;
  /**
   * The scope asked for; one of the OAuth app's scopes.
   * @default {"tracking_api:write"}
   */
  scope?: string;
  /**
   * Retries of one token request (429, 5xx, network errors) before it fails.
   * @default {3}
   */
  maxRetries?: number;
  /**
   * The transport for token requests only, when it must differ from the
   * client's: a fetch-compatible function or a `{ makeRequest }` object.
   * @default {the client's fetch}
   */
  httpClient?: FetchFn | HttpClient;
}

/** Segment's OAuth server (analytics-node's and analytics-python's default). */
export const DEFAULT_AUTH_SERVER = "https://oauth2.segment.io";
/** The scope that lets a token send events. */
export const DEFAULT_SCOPE = "tracking_api:write";
const DEFAULT_MAX_RETRIES = 3;

/** Per token request, as analytics-node's token manager. */
const REQUEST_TIMEOUT_MS = 10_000;
/** The longest wait between two token requests, whatever the server asks. */
const MAX_WAIT_MS = 60_000;
/** The wait after a 429 that names no time (analytics-node and analytics-python). */
const RATE_LIMIT_WAIT_MS = 5_000;
/** A token is used until this long before it expires (at most a quarter of its life). */
const EXPIRY_MARGIN_MS = 30_000;
/** The most of a token server's answer that is read. */
const MAX_ANSWER_BYTES = 16_384;

const ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";

/**
 * Why no OAuth token could be had. `retryable` says whether trying again
 * later may help (the token server was down or rate limited) or the settings
 * must change first (a rejected client, a key that cannot be read). The
 * message says what to change and never holds the key or a token.
 *
 * Delivery reports it as the `cause` of the batch's `DeliveryError`.
 *
 * @example
 * ```ts
 * import { Analytics } from "@tally/analytics";
 *
 * new Analytics({
 *   writeKey: "KEY",
 *   send: false,
 *   onError: (error) => {
 *     const cause = error.cause as { name?: string; retryable?: boolean } | undefined;
 *     if (cause?.name === "OAuthError") console.error(error.message, cause.retryable ? "(will pass)" : "(fix the settings)");
 *   },
 * });
 * ```
 */
export class OAuthError extends Error {
  /** Whether a later attempt may succeed without a change of settings. */
  readonly retryable: boolean;
  /** The token server's last HTTP status, when it answered. */
  readonly status?: number;
  /** Milliseconds the token server asked to wait, when it said. */
  readonly retryAfter?: number;

  /** Creates the error; `cause` keeps the underlying error, if any. */
  constructor(
    message: string,
    init: { retryable: boolean; status?: number; retryAfter?: number; cause?: unknown },
  ) {
    super(message, init.cause === undefined ? undefined : { cause: init.cause });
    this.name = "OAuthError";
    this.retryable = init.retryable;
    if (init.status !== undefined) this.status = init.status;
    if (init.retryAfter !== undefined) this.retryAfter = init.retryAfter;
  }
}

// ---- settings

/** A value's kind, never its content: a misplaced string may be a key. */
const kind = (value: unknown): string =>
  value === null
    ? "null"
    : Array.isArray(value)
    ? "an array"
    : typeof value === "object"
    ? "an object"
    : `a ${typeof value}`;

/** RFC 6749 3.3: scope tokens of printable ASCII but `"` and `\`, separated by spaces. */
const SCOPE = /^[!#-[\]-~]+(?: [!#-[\]-~]+)*$/;

const FIELDS = ["clientId", "clientKey", "keyId", "authServer", "scope", "maxRetries", "httpClient"];

function requiredText(given: Record<string, unknown>, name: string, what: string): string {
  const value = given[name];
  if (value === undefined || value === null) {
    throw new TypeError(`Cannot set oauthSettings: ${name} is missing (${what})`);
  }
  if (typeof value !== "string" || value.trim() === "") {
    throw new TypeError(
      `Cannot set oauthSettings: ${name} must be a non-empty string (${what}), got ${
        typeof value === "string" ? "an empty string" : kind(value)
      }`,
    );
  }
  return value.trim();
}

/**
 * Validates `oauthSettings` and returns them with the defaults filled in
 * (`authServer` without trailing slashes); throws a `TypeError` (a
 * `RangeError` for a negative `maxRetries`) that names the field and what to
 * change, never showing the key. Used by the client's options.
 */
export function checkOAuthSettings(value: unknown): OAuthSettings {
  if (typeof value !== "object" || value === null || Array.isArray(value)) {
    throw new TypeError(
      `Cannot set oauthSettings: expected an object with clientId, clientKey and keyId, got ${kind(value)}`,
    );
  }
  const given = value as Record<string, unknown>;
  for (const key of Object.keys(given)) {
    if (!FIELDS.includes(key)) {
      throw new TypeError(`Cannot set oauthSettings: unknown field "${key}" (known: ${FIELDS.join(", ")})`);
    }
  }
  const clientId = requiredText(given, "clientId", "the OAuth app's ID from Access Management in Segment");
  const keyId = requiredText(given, "keyId", "the ID Segment gave the uploaded public key");
  const clientKey = given.clientKey;
  pemToDer(clientKey); // throws what is wrong with it

  let authServer = DEFAULT_AUTH_SERVER;
  if (given.authServer != null) {
    if (typeof given.authServer !== "string") {
      throw new TypeError(`Cannot set oauthSettings: authServer must be a URL string, got ${kind(given.authServer)}`);
    }
    let url: URL;
    try {
      url = new URL(given.authServer);
    } catch {
      throw new TypeError(
        `Cannot set oauthSettings: authServer ${
          JSON.stringify(given.authServer.slice(0, 80))
        } is not a URL (try "${DEFAULT_AUTH_SERVER}")`,
      );
    }
    if (url.protocol !== "https:" && url.protocol !== "http:") {
      throw new TypeError(`Cannot set oauthSettings: authServer must be an https: URL, got ${url.protocol}`);
    }
    if (url.username || url.password || url.search || url.hash) {
      throw new TypeError(
        `Cannot set oauthSettings: authServer must be a plain URL, without credentials, query or hash`,
      );
    }
    authServer = given.authServer.trim().replace(/\/+$/, "");
  }

  let scope = DEFAULT_SCOPE;
  if (given.scope != null) {
    if (typeof given.scope !== "string" || !SCOPE.test(given.scope.trim())) {
      throw new TypeError(
        `Cannot set oauthSettings: scope must be one of the OAuth app's scopes, such as "${DEFAULT_SCOPE}"`,
      );
    }
    scope = given.scope.trim();
  }

  let maxRetries = DEFAULT_MAX_RETRIES;
  if (given.maxRetries != null) {
    if (typeof given.maxRetries !== "number" || !Number.isInteger(given.maxRetries)) {
      throw new TypeError(`Cannot set oauthSettings: maxRetries must be an integer, got ${kind(given.maxRetries)}`);
    }
    if (given.maxRetries < 0) {
      throw new RangeError(`Cannot set oauthSettings: maxRetries must be at least 0, got ${given.maxRetries}`);
    }
    maxRetries = given.maxRetries;
  }

  const settings: OAuthSettings = {
    clientId,
    clientKey: clientKey as string,
    keyId,
    authServer,
    scope,
    maxRetries,
  };
  if (given.httpClient != null) {
    const client = given.httpClient as Partial<HttpClient>;
    if (typeof client !== "function" && typeof client?.makeRequest !== "function") {
      throw new TypeError(
        `Cannot set oauthSettings: httpClient must be a fetch-compatible function or an object with makeRequest(), got ${
          kind(given.httpClient)
        }`,
      );
    }
    settings.httpClient = given.httpClient as FetchFn | HttpClient;
  }
  return settings;
}

const PEM_HELP = 'clientKey must be a PEM private key (PKCS#8 text starting "-----BEGIN PRIVATE KEY-----")';
/** DER of the AlgorithmIdentifier OID 1.2.840.113549.1.1.1 (rsaEncryption). */
const RSA_OID = [0x06, 0x09, 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x01];

function pemError(reason: string): TypeError {
  return new TypeError(`Cannot set oauthSettings: ${PEM_HELP}; ${reason}`);
}

/**
 * The DER bytes of a PEM PKCS#8 RSA private key, or a `TypeError` that says
 * what is wrong with it; the key's text is never quoted. `\n` escapes (a key
 * kept in an environment variable on one line) count as line breaks.
 */
function pemToDer(value: unknown): Uint8Array<ArrayBuffer> {
  if (value === undefined || value === null) throw pemError("it is missing");
  if (typeof value !== "string") throw pemError(`got ${kind(value)}`);
  const pem = value.replace(/\\r|\\n/g, "\n");
  const begin = /-----BEGIN ([A-Z0-9 ]+)-----/.exec(pem);
  if (begin === null) {
    throw pemError(
      'it has no "-----BEGIN PRIVATE KEY-----" line (pass the key\'s text, not a path to its file)',
    );
  }
  const label = begin[1];
  if (label === "RSA PRIVATE KEY") {
    throw pemError(
      "this one is PKCS#1 (BEGIN RSA PRIVATE KEY): convert it with `openssl pkcs8 -topk8 -nocrypt -in key.pem -out key.pkcs8.pem`",
    );
  }
  if (label === "ENCRYPTED PRIVATE KEY") {
    throw pemError("this one is encrypted: decrypt it with `openssl pkcs8 -in key.pem -out key.pkcs8.pem`");
  }
  if (label === "PUBLIC KEY" || label === "RSA PUBLIC KEY" || label === "CERTIFICATE") {
    throw pemError("this is a public key or certificate: pass the private key whose public key the OAuth app has");
  }
  if (label !== "PRIVATE KEY") {
    throw pemError(`this one is "${label}"; Segment's OAuth signs with RS256, so it must be an RSA key in PKCS#8`);
  }
  const start = begin.index + begin[0].length;
  const end = pem.indexOf("-----END PRIVATE KEY-----", start);
  if (end < 0) throw pemError('it has no "-----END PRIVATE KEY-----" line');
  const body = pem.slice(start, end).replace(/\s+/g, "");
  let binary: string;
  try {
    if (body === "" || !/^[A-Za-z0-9+/]+={0,2}$/.test(body)) throw new Error("not base64");
    binary = atob(body);
  } catch {
    throw pemError("the text between its BEGIN and END lines is not base64");
  }
  const der = new Uint8Array(binary.length);
  for (let i = 0; i < binary.length; i++) der[i] = binary.charCodeAt(i);
  // PrivateKeyInfo: SEQUENCE { INTEGER 0, SEQUENCE { OID, ... }, OCTET STRING }; the OID sits near the start.
  const head = Array.from(der.subarray(0, 32));
  const at = head.findIndex((_, i) => RSA_OID.every((byte, j) => head[i + j] === byte));
  if (der[0] !== 0x30 || at < 0) {
    throw pemError("it is not an RSA key (Segment's OAuth signs with RS256)");
  }
  return der;
}

// ---- the token manager

interface Token {
  value: string;
  /** When a new token is asked for: half its life, as analytics-node and analytics-python do. */
  refreshAt: number;
  /** The last moment it is sent (a margin before it expires). */
  usableUntil: number;
}

/** One token request in progress, shared by every caller waiting for it. */
interface Run {
  promise: Promise<Token>;
  stopper: Stopper;
  /** Callers that can leave (with their own stopper) still waiting; at none left, the run stops. */
  waiters: number;
  /** Whether the run gives up at once: a refresh while the current token is still good. */
  soft: boolean;
}

/** One attempt's failure: what to say, and whether to try again. */
interface Failure {
  problem: string;
  hint: string;
  retryable: boolean;
  /** Whether another attempt, now, may help (this can differ from `retryable`). */
  again: boolean;
  status?: number;
  wait?: number;
  cause?: unknown;
}

const encoder = new TextEncoder();

function base64url(bytes: Uint8Array): string {
  let binary = "";
  for (let i = 0; i < bytes.length; i++) binary += String.fromCharCode(bytes[i]);
  return btoa(binary).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
}

const snippet = (text: string): string => {
  const line = text.replace(/\s+/g, " ").trim();
  return line.length > 200 ? line.slice(0, 200) + "…" : line;
};

const aborted = (): OAuthError =>
  new OAuthError("Cannot get an OAuth token: the request was aborted", { retryable: true });

/**
 * Gets and keeps the OAuth access token of a server source, for the client's
 * delivery: `Authorization: Bearer ${await tokens.getToken(stop)}` on each
 * batch, and `tokens.invalidate(token)` after a 401 or 403.
 *
 * The token is asked for on demand: once for all concurrent callers, then
 * kept for half its life (as analytics-node and analytics-python do); after
 * that the next call asks for a new one, and falls back to the current one
 * while it is still good if that fails. No timer or poller runs between
 * calls, so a token manager never keeps a process alive.
 */
export class TokenManager {
  readonly #clientId: string;
  readonly #keyId: string;
  readonly #authServer: string;
  readonly #scope: string;
  readonly #maxRetries: number;
  readonly #transport: () => FetchFn | HttpClient | undefined;
  readonly #now: () => number;
  /** The PEM, until it is imported (then only the non-extractable CryptoKey is kept). */
  #pem: string | undefined;
  #key: Promise<CryptoKey> | undefined;
  #token: Token | undefined;
  #run: Run | undefined;
  /** After a failed refresh, the current token is used without asking again until then. */
  #quietUntil = 0;
  /** The token server's clock minus ours, in milliseconds (from its `Date` header). */
  #skew = 0;

  /**
   * `settings` are checked with {@linkcode checkOAuthSettings}; `transport`
   * is asked for the fetch function (or `{ makeRequest }` client) at each
   * request, unless `settings.httpClient` is set; `now` is the clock.
   */
  constructor(
    settings: OAuthSettings,
    transport: () => FetchFn | HttpClient | undefined,
    now: () => number = Date.now,
  ) {
    const checked = checkOAuthSettings(settings);
    this.#clientId = checked.clientId;
    this.#keyId = checked.keyId;
    this.#authServer = checked.authServer ?? DEFAULT_AUTH_SERVER;
    this.#scope = checked.scope ?? DEFAULT_SCOPE;
    this.#maxRetries = checked.maxRetries ?? DEFAULT_MAX_RETRIES;
    this.#pem = checked.clientKey;
    const own = checked.httpClient;
    this.#transport = own === undefined ? transport : () => own;
    this.#now = now;
  }

  /**
   * The access token: the kept one while it is fresh, else a new one (one
   * request for all concurrent callers). Rejects with an
   * {@linkcode OAuthError}; `stop` abandons the wait (the request goes on
   * while other callers wait for it).
   */
  async getToken(stop?: Stopper): Promise<string> {
    for (;;) {
      if (stop?.stopped) throw aborted();
      const now = this.#now();
      const token = this.#token;
      if (token !== undefined && now < token.refreshAt) return token.value;
      const usable = token !== undefined && now < token.usableUntil;
      if (usable && now < this.#quietUntil) return token.value;
      const run = this.#run ?? this.#start(usable);
      try {
        return (await this.#join(run, stop)).value;
      } catch (error) {
        if (stop?.stopped) throw error;
        const current = this.#token;
        if (current !== undefined && this.#now() < current.usableUntil) {
          this.#quietUntil = this.#now() + ((error as OAuthError).retryAfter ?? RATE_LIMIT_WAIT_MS);
          return current.value;
        }
        // A quick refresh failed and the token ran out meanwhile: ask again, with retries.
        if (run.soft && (error as OAuthError).retryable && this.#maxRetries > 0) continue;
        throw error;
      }
    }
  }

  /**
   * Forgets the token, after the tracking API refused it (401, 403), so the
   * next {@linkcode getToken} asks for a new one. Given the refused `token`,
   * forgets it only if it is still the kept one, so concurrent refusals of
   * one token cause one new request.
   */
  invalidate(token?: string): void {
    if (token !== undefined && this.#token?.value !== token) return;
    this.#token = undefined;
    this.#quietUntil = 0;
  }

  #start(soft: boolean): Run {
    const stopper = new Stopper();
    const promise = this.#obtain(soft ? 0 : this.#maxRetries, stopper).then((token) => {
      this.#token = token;
      this.#quietUntil = 0;
      return token;
    }, (error) => {
      if (error instanceof OAuthError) throw error;
      // Only a caller's own code (a transport resolver that throws) gets here.
      throw new OAuthError(`Cannot get an OAuth token: ${snippet(String((error as Error)?.message ?? error))}`, {
        retryable: false,
        cause: error,
      });
    }).finally(() => {
      if (this.#run === run) this.#run = undefined;
    });
    // A run that every waiter left settles unobserved.
    promise.catch(() => {});
    const run: Run = { promise, stopper, waiters: 0, soft };
    this.#run = run;
    return run;
  }

  /**
   * Waits for `run`, or until `stop` stops. A caller without a stopper waits
   * to the end; when the last caller left, the run stops (so a closed client
   * leaves no request or retry wait behind).
   */
  #join(run: Run, stop: Stopper | undefined): Promise<Token> {
    run.waiters++;
    return new Promise<Token>((resolve, reject) => {
      let done = false;
      const leave = (): boolean => {
        if (done) return false;
        done = true;
        run.waiters--;
        return true;
      };
      const off = stop?.onStop(() => {
        if (!leave()) return;
        reject(aborted());
        if (run.waiters > 0) return;
        if (this.#run === run) this.#run = undefined;
        run.stopper.stop();
      });
      run.promise.then(
        (token) => {
          off?.();
          if (leave()) resolve(token);
        },
        (error) => {
          off?.();
          if (leave()) reject(error);
        },
      );
    });
  }

  /** Asks for a token, retrying up to `retries` times; rejects with an OAuthError. */
  async #obtain(retries: number, stopper: Stopper): Promise<Token> {
    const key = await this.#importKey();
    for (let retry = 0;; retry++) {
      if (stopper.stopped) throw aborted();
      const result = await this.#request(key, stopper);
      if (!("problem" in result)) return result;
      if (stopper.stopped) throw aborted();
      if (!result.again || retry >= retries) {
        const tries = retry > 0 ? ` (after ${retry} ${retry === 1 ? "retry" : "retries"})` : "";
        throw new OAuthError(
          `Cannot get an OAuth token from ${this.#authServer}/token: ${result.problem}${tries}; ${result.hint}`,
          { retryable: result.retryable, status: result.status, retryAfter: result.wait, cause: result.cause },
        );
      }
      // As analytics-node: the first retry at once, then backing off from 100 ms.
      const wait = result.wait ?? (retry === 0 ? 0 : backoff(retry - 1, 0.1, MAX_WAIT_MS / 1000));
      await sleep(Math.min(wait, MAX_WAIT_MS), stopper);
    }
  }

  #importKey(): Promise<CryptoKey> {
    return this.#key ??= (async () => {
      const der = pemToDer(this.#pem);
      this.#pem = undefined;
      try {
        return await crypto.subtle.importKey("pkcs8", der, { name: "RSASSA-PKCS1-v1_5", hash: "SHA-256" }, false, [
          "sign",
        ]);
      } catch (cause) {
        throw new OAuthError(
          "Cannot get an OAuth token: oauthSettings.clientKey could not be read as an RSA private key; " +
            "pass the unencrypted PKCS#8 PEM of the key whose public key the OAuth app has",
          { retryable: false, cause },
        );
      }
    })();
  }

  /** The signed client assertion (RFC 7523): valid for 60 s, from 5 s back to allow for clock skew. */
  async #assertion(key: CryptoKey): Promise<string> {
    const now = Math.floor((this.#now() + this.#skew) / 1000);
    const header = { alg: "RS256", kid: this.#keyId, typ: "JWT" };
    const claims = {
      iss: this.#clientId,
      sub: this.#clientId,
      aud: this.#authServer,
      iat: now - 5,
      exp: now + 55,
      jti: crypto.randomUUID(),
    };
    const input = `${base64url(encoder.encode(JSON.stringify(header)))}.${
      base64url(encoder.encode(JSON.stringify(claims)))
    }`;
    const signature = await crypto.subtle.sign("RSASSA-PKCS1-v1_5", key, encoder.encode(input));
    return `${input}.${base64url(new Uint8Array(signature))}`;
  }

  /** One token request: the token, or why not. */
  async #request(key: CryptoKey, stopper: Stopper): Promise<Token | Failure> {
    const transport = this.#transport() ?? globalThis.fetch;
    if (typeof transport !== "function" && typeof transport?.makeRequest !== "function") {
      return {
        problem: "this runtime has no global fetch",
        hint: "pass { fetch } to new Analytics()",
        retryable: false,
        again: false,
      };
    }
    let assertion: string;
    try {
      assertion = await this.#assertion(key);
    } catch (cause) {
      return {
        problem: "the client assertion could not be signed",
        hint: "check that oauthSettings.clientKey is an RSA private key",
        retryable: false,
        again: false,
        cause,
      };
    }
    const scope = encodeURIComponent(this.#scope).replace(/%3A/gi, ":");
    const body =
      `grant_type=client_credentials&client_assertion_type=${ASSERTION_TYPE}&client_assertion=${assertion}&scope=${scope}`;
    const url = `${this.#authServer}/token`;
    const headers = { "Content-Type": "application/x-www-form-urlencoded", Accept: "application/json" };
    const started = this.#now();

    const controller = new AbortController();
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      controller.abort();
    }, REQUEST_TIMEOUT_MS);
    const off = stopper.onStop(() => controller.abort());
    let response: HttpClientResponse;
    let text: string;
    try {
      response = await send(transport, {
        url,
        headers,
        body,
        timeoutMs: REQUEST_TIMEOUT_MS,
        signal: controller.signal,
      });
      text = await readAnswer(response, MAX_ANSWER_BYTES);
    } catch (cause) {
      if (stopper.stopped) return { problem: "the request was aborted", hint: "", retryable: true, again: false };
      if (timedOut) {
        return {
          problem: `no answer within ${REQUEST_TIMEOUT_MS / 1000} s`,
          hint: "check oauthSettings.authServer and the network",
          retryable: true,
          again: true,
          cause,
        };
      }
      const name = (cause as Error)?.name;
      const denied = name === "NotCapable" || name === "PermissionDenied";
      return {
        problem: `the request failed: ${snippet(String((cause as Error)?.message ?? cause))}`,
        hint: denied
          ? `allow network access to ${new URL(url).host}`
          : "check oauthSettings.authServer and the network",
        retryable: !denied,
        again: !denied,
        cause,
      };
    } finally {
      clearTimeout(timer);
      off();
    }

    const date = Date.parse(headerOf(response, "date") ?? "");
    const before = this.#skew;
    // `Date` has whole seconds: only a larger difference is the clocks'.
    if (Number.isFinite(date) && Math.abs(date - this.#now() - before) >= 2000) this.#skew = date - this.#now();
    const status = response.status;
    const statusLine = `${status} ${response.statusText ?? ""}`.trim();

    if (status >= 200 && status < 300) {
      const answer = parseJson(text) as { access_token?: unknown; expires_in?: unknown } | undefined;
      const value = answer?.access_token;
      const life = Number(answer?.expires_in);
      if (typeof value !== "string" || value === "" || !Number.isFinite(life) || life <= 0) {
        // The answer itself is not quoted: it may hold a token.
        return {
          problem: `the token server answered ${statusLine} without an access_token and a positive expires_in`,
          hint: `check that oauthSettings.authServer is Segment's OAuth server (${DEFAULT_AUTH_SERVER} by default)`,
          retryable: false,
          again: false,
          status,
        };
      }
      const ms = life * 1000;
      return {
        value,
        refreshAt: started + ms / 2,
        usableUntil: started + ms - Math.min(EXPIRY_MARGIN_MS, ms / 4),
      };
    }

    const error = parseJson(text) as { error?: unknown; error_description?: unknown } | undefined;
    const code = typeof error?.error === "string" ? error.error : undefined;
    const description = typeof error?.error_description === "string" ? error.error_description : undefined;
    const said = code !== undefined || description !== undefined
      ? [code, description].filter((part) => part !== undefined).join(": ")
      : error === undefined
      ? text
      : "";
    const problem = `the token server answered ${statusLine}` +
      (said ? `: ${snippet(said.split(assertion).join("[assertion]"))}` : "");

    if (status >= 300 && status < 400 || status === 0) {
      const location = headerOf(response, "location");
      return {
        problem: `the token server answered ${statusLine}` + (location ? ` redirecting to ${snippet(location)}` : ""),
        hint: "redirects are not followed: set oauthSettings.authServer to the address the token endpoint really has",
        retryable: false,
        again: false,
        status,
      };
    }
    if (status === 429) {
      return {
        problem,
        hint: "too many token requests; try again later",
        retryable: true,
        again: true,
        status,
        wait: rateLimitWait(response, this.#now() + this.#skew),
      };
    }
    if (isRetryableStatus(status)) {
      return {
        problem,
        hint: "the token server failed; try again later",
        retryable: true,
        again: true,
        status,
        wait: parseRetryAfter(headerOf(response, "retry-after"), this.#now() + this.#skew),
      };
    }
    // analytics-python: an assertion refused for its time is asked again with the server's clock.
    const clock = /token is expired|token used before issued/i.test(description ?? "");
    return {
      problem,
      hint: clock ? "the assertion's time was refused: check this machine's clock" : hintFor(status, code),
      retryable: false,
      again: clock && this.#skew !== before,
      status,
    };
  }
}

function hintFor(status: number, code: string | undefined): string {
  if (code === "invalid_scope") {
    return `check oauthSettings.scope: it must be one of the OAuth app's scopes, such as "${DEFAULT_SCOPE}"`;
  }
  if (status === 400 || status === 401) {
    return "check oauthSettings.clientId and keyId, and that clientKey is the private key of the public key " +
      "uploaded to the OAuth app in Segment";
  }
  if (status === 403) return "check that the OAuth app is enabled and grants oauthSettings.scope";
  if (status === 404 || status === 405) {
    return `check oauthSettings.authServer (${DEFAULT_AUTH_SERVER}, or https://oauth2.eu1.segmentapis.com in the EU)`;
  }
  return "check oauthSettings";
}

/** Milliseconds a 429 asks to wait: `Retry-After`, else `X-RateLimit-Reset` (an epoch time or seconds), else 5 s. */
function rateLimitWait(response: HttpClientResponse, serverNow: number): number {
  const after = parseRetryAfter(headerOf(response, "retry-after"), serverNow);
  if (after !== undefined) return after;
  const reset = Number(headerOf(response, "x-ratelimit-reset") ?? NaN);
  if (Number.isFinite(reset) && reset >= 0) {
    // analytics-python reads it as epoch milliseconds; others send epoch seconds or a delay in seconds.
    const at = reset > 1e12 ? reset : reset > 1e9 ? reset * 1000 : serverNow + reset * 1000;
    return Math.max(0, Math.round(at - serverNow));
  }
  return RATE_LIMIT_WAIT_MS;
}

function parseJson(text: string): unknown {
  if (!text.trimStart().startsWith("{")) return undefined;
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}
