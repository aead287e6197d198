/**
 * OAuth for server sources (lib/oauth.ts): the token request on the wire,
 * checked by a local token server that verifies the client assertion's RS256
 * signature with the public key; sharing, caching and refreshing the token on
 * an injected clock; retries; settings errors; and that no error shows the
 * private key or a token.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { Buffer } from "node:buffer";
import { spawn } from "node:child_process";
import { createServer, type IncomingMessage, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import process from "node:process";
import { fileURLToPath } from "node:url";
import { checkOAuthSettings, OAuthError, type OAuthSettings, TokenManager } from "../lib/oauth.ts";
import { Stopper } from "../lib/scheduler.ts";
import type { FetchFn, HttpClient } from "../lib/types.ts";
import { childArgv } from "./fixtures/child_argv.ts";

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;
const ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";

function toPem(label: string, der: ArrayBuffer | Uint8Array): string {
  const lines = Buffer.from(der as ArrayBuffer).toString("base64").match(/.{1,64}/g) ?? [];
  return `-----BEGIN ${label}-----\n${lines.join("\n")}\n-----END ${label}-----\n`;
}

const pair = await crypto.subtle.generateKey(
  { name: "RSASSA-PKCS1-v1_5", modulusLength: 2048, publicExponent: new Uint8Array([1, 0, 1]), hash: "SHA-256" },
  true,
  ["sign", "verify"],
) as CryptoKeyPair;
const PKCS8 = new Uint8Array(await crypto.subtle.exportKey("pkcs8", pair.privateKey));
const PEM = toPem("PRIVATE KEY", PKCS8);
/** The key's base64 lines: none of them may appear in any message. */
const PEM_LINES = PEM.split("\n").filter((line) => line !== "" && !line.startsWith("-----"));

const delay = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

/** A scripted answer; the token server answers with a fresh token once the script runs out. */
interface Reply {
  status?: number;
  headers?: Record<string, string>;
  body?: string | ((assertion: string) => string);
  /** Milliseconds before answering. */
  delay?: number;
  /** Close the connection without answering. */
  destroy?: boolean;
}

interface Received {
  at: number;
  contentType: string | undefined;
  body: string;
  header: Record<string, unknown>;
  claims: Record<string, unknown>;
}

/**
 * A token server on 127.0.0.1 that verifies each client assertion (signature,
 * header, claims, form fields) and records what is wrong in `problems`.
 */
async function startTokenServer(
  options: { expiresIn?: number; scope?: string; checkTime?: boolean } = {},
) {
  const requests: Received[] = [];
  const problems: string[] = [];
  const script: Reply[] = [];
  const jtis = new Set<string>();
  const closed: number[] = [];
  let issued = 0;
  let url = "";
  /** Answers held back; stop() drops them, so no timer outlives the server. */
  const held = new Set<ReturnType<typeof setTimeout>>();
  const hold = (ms: number) =>
    new Promise<void>((resolve) => {
      const timer = setTimeout(() => {
        held.delete(timer);
        resolve();
      }, ms);
      held.add(timer);
    });

  async function verify(body: string, contentType: string | undefined): Promise<Received> {
    const form = new URLSearchParams(body);
    const assertion = form.get("client_assertion") ?? "";
    const [h = "", c = "", s = ""] = assertion.split(".");
    const decode = (part: string) => JSON.parse(Buffer.from(part, "base64url").toString("utf8"));
    let header: Record<string, unknown> = {};
    let claims: Record<string, unknown> = {};
    try {
      [header, claims] = [decode(h), decode(c)];
    } catch {
      problems.push("the assertion is not a JWT");
    }
    const ok = await crypto.subtle.verify(
      "RSASSA-PKCS1-v1_5",
      pair.publicKey,
      Buffer.from(s, "base64url"),
      new TextEncoder().encode(`${h}.${c}`),
    );
    if (!ok) problems.push("the signature does not verify with the public key");
    const expect = (what: string, got: unknown, want: unknown) => {
      if (got !== want) problems.push(`${what}: got ${JSON.stringify(got)}, want ${JSON.stringify(want)}`);
    };
    expect("content-type", contentType, "application/x-www-form-urlencoded");
    expect("grant_type", form.get("grant_type"), "client_credentials");
    expect("client_assertion_type", form.get("client_assertion_type"), ASSERTION_TYPE);
    expect("scope", form.get("scope"), options.scope ?? "tracking_api:write");
    expect("alg", header.alg, "RS256");
    expect("kid", header.kid, "key-1");
    expect("typ", header.typ, "JWT");
    expect("iss", claims.iss, "app-1");
    expect("sub", claims.sub, "app-1");
    expect("aud", claims.aud, url);
    expect("exp - iat", (claims.exp as number) - (claims.iat as number), 60);
    if (!UUID.test(String(claims.jti))) problems.push(`jti is not a UUID: ${claims.jti}`);
    if (jtis.has(String(claims.jti))) problems.push("a jti was used twice");
    jtis.add(String(claims.jti));
    return { at: Date.now(), contentType, body, header, claims };
  }

  const server = createServer((req: IncomingMessage, res: ServerResponse) => {
    const chunks: Uint8Array[] = [];
    req.on("data", (chunk: Uint8Array) => chunks.push(chunk));
    req.on("end", async () => {
      res.on("close", () => void (res.writableFinished || closed.push(Date.now())));
      if (req.method !== "POST" || req.url !== "/token") problems.push(`${req.method} ${req.url}`);
      const body = Buffer.concat(chunks).toString("utf8");
      const received = await verify(body, req.headers["content-type"]);
      requests.push(received);
      const reply: Reply = script.shift() ?? {};
      if (reply.delay) await hold(reply.delay);
      if (reply.destroy) return void req.socket.destroy();
      if (res.destroyed) return;
      const nowSeconds = Math.floor(Date.now() / 1000);
      const late = options.checkTime && (received.claims.exp as number) < nowSeconds;
      const status = late ? 400 : reply.status ?? 200;
      const assertion = new URLSearchParams(body).get("client_assertion") ?? "";
      const answer = late
        ? JSON.stringify({ error: "invalid_request", error_description: "Token is expired" })
        : typeof reply.body === "function"
        ? reply.body(assertion)
        : reply.body ?? (status !== 200 ? "" : JSON.stringify({
          access_token: `token-${++issued}`,
          expires_in: options.expiresIn ?? 3600,
          token_type: "Bearer",
        }));
      res.writeHead(status, {
        "content-type": "application/json",
        date: new Date().toUTCString(),
        ...reply.headers,
      });
      res.end(answer);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return {
    url,
    requests,
    problems,
    script,
    /** Times at which a connection was closed before its answer was sent. */
    closed,
    stop: () =>
      new Promise<void>((resolve) => {
        for (const timer of held) clearTimeout(timer);
        server.closeAllConnections?.();
        server.close(() => resolve());
      }),
  };
}
type TokenServer = Awaited<ReturnType<typeof startTokenServer>>;

const settingsFor = (server: TokenServer, more: Partial<OAuthSettings> = {}): OAuthSettings => ({
  clientId: "app-1",
  clientKey: PEM,
  keyId: "key-1",
  authServer: server.url,
  ...more,
});

/** A token manager on `server` with a clock the test moves. */
function managerFor(server: TokenServer, more: Partial<OAuthSettings> = {}) {
  const clock = { now: Date.now() };
  const tokens = new TokenManager(settingsFor(server, more), () => globalThis.fetch, () => clock.now);
  return { tokens, clock };
}

/** Runs `body` against a fresh token server, and checks that every assertion it got was right. */
async function withServer(
  options: Parameters<typeof startTokenServer>[0],
  body: (server: TokenServer) => Promise<void>,
): Promise<void> {
  const server = await startTokenServer(options);
  try {
    await body(server);
    assert.deepEqual(server.problems, [], "the token server found nothing wrong with the requests");
  } finally {
    await server.stop();
  }
}

async function rejection(promise: Promise<unknown>): Promise<OAuthError> {
  try {
    await promise;
  } catch (error) {
    assert.ok(error instanceof OAuthError, `an OAuthError, got ${error}`);
    return error;
  }
  throw new Error("expected a rejection");
}

/** Neither the key (whole, or any of its lines) nor any of `secrets` is in `text`. */
function assertNoSecrets(text: string, secrets: string[] = []): void {
  assert.ok(!text.includes(PEM.trim()), "the key is not shown");
  for (const line of PEM_LINES) assert.ok(!text.includes(line), `no line of the key is shown: ${text}`);
  for (const secret of secrets) assert.ok(!text.includes(secret), `${JSON.stringify(secret)} is not shown: ${text}`);
}

const errorText = (error: Error): string => `${error.message}\n${error.stack}\n${String(error.cause ?? "")}`;

test("getToken() POSTs a signed client assertion to {authServer}/token and returns the access token", async () => {
  await withServer({}, async (server) => {
    let resolved = 0;
    const clock = { now: Date.now() };
    const tokens = new TokenManager(settingsFor(server), () => {
      resolved++;
      return globalThis.fetch;
    }, () => clock.now);
    assert.equal(resolved, 0, "fetch is looked up at request time, not at construction");
    assert.equal(await tokens.getToken(), "token-1");
    assert.equal(server.requests.length, 1);
    assert.equal(resolved, 1);
    const [request] = server.requests;
    assert.match(
      request.body,
      new RegExp(
        `^grant_type=client_credentials&client_assertion_type=${ASSERTION_TYPE}` +
          "&client_assertion=[\\w-]+\\.[\\w-]+\\.[\\w-]+&scope=tracking_api:write$",
      ),
    );
    assert.deepEqual(request.header, { alg: "RS256", kid: "key-1", typ: "JWT" });
    const { iat, exp, ...rest } = request.claims as { iat: number; exp: number };
    assert.deepEqual(Object.keys(rest).sort(), ["aud", "iss", "jti", "sub"]);
    const seconds = Math.floor(clock.now / 1000);
    assert.ok(Math.abs(iat - (seconds - 5)) <= 1, `iat is 5 s back: ${iat} vs ${seconds}`);
    assert.equal(exp, iat + 60);
  });
});

test("a custom scope and an authServer with a trailing slash are sent as Segment expects", async () => {
  await withServer({ scope: "tracking_api:write other:read" }, async (server) => {
    const { tokens } = managerFor(server, { authServer: server.url + "/", scope: "tracking_api:write other:read" });
    assert.equal(await tokens.getToken(), "token-1");
    assert.match(server.requests[0].body, /&scope=tracking_api:write%20other:read$/);
  });
});

test("concurrent getToken() calls share one token request", async () => {
  await withServer({}, async (server) => {
    server.script.push({ delay: 50 });
    const { tokens } = managerFor(server);
    const all = await Promise.all(Array.from({ length: 20 }, () => tokens.getToken()));
    assert.deepEqual(new Set(all), new Set(["token-1"]));
    assert.equal(server.requests.length, 1);
  });
});

test("the token is kept for half its life, then getToken() asks for a new one", async () => {
  await withServer({ expiresIn: 100 }, async (server) => {
    const { tokens, clock } = managerFor(server);
    assert.equal(await tokens.getToken(), "token-1");
    clock.now += 49_000;
    assert.equal(await tokens.getToken(), "token-1");
    assert.equal(server.requests.length, 1, "kept: no new request before half its life");
    clock.now += 1_000;
    assert.equal(await tokens.getToken(), "token-2");
    assert.equal(server.requests.length, 2);
    assert.equal(await tokens.getToken(), "token-2");
    assert.equal(server.requests.length, 2);
  });
});

test("a failed refresh falls back to the still good token, and asks again only after a pause", async () => {
  await withServer({ expiresIn: 100 }, async (server) => {
    const { tokens, clock } = managerFor(server);
    assert.equal(await tokens.getToken(), "token-1");
    const start = clock.now;
    clock.now = start + 50_000;
    server.script.push({ status: 500 });
    assert.equal(await tokens.getToken(), "token-1", "the current token while the refresh failed");
    assert.equal(server.requests.length, 2, "one attempt: no retries while the token is good");
    assert.equal(await tokens.getToken(), "token-1");
    assert.equal(server.requests.length, 2, "no request again right away");
    clock.now += 5_000;
    assert.equal(await tokens.getToken(), "token-2", "asked again after the pause");
    assert.equal(server.requests.length, 3);

    // token-2 was asked for at start + 55 s: past start + 55 s + 75 s it is no longer sent.
    clock.now = start + 55_000 + 75_000;
    server.script.push({ status: 503 });
    assert.equal(await tokens.getToken(), "token-3", "an expired token is not a fallback: retried");
    assert.equal(server.requests.length, 5);
  });
});

test("invalidate() forgets the token; invalidate(token) only if it is still the kept one", async () => {
  await withServer({}, async (server) => {
    const { tokens } = managerFor(server);
    assert.equal(await tokens.getToken(), "token-1");
    tokens.invalidate("an older token");
    assert.equal(await tokens.getToken(), "token-1");
    assert.equal(server.requests.length, 1);
    tokens.invalidate("token-1");
    assert.equal(await tokens.getToken(), "token-2");
    assert.equal(server.requests.length, 2);
    tokens.invalidate("token-1"); // a late 401 for the token already replaced
    assert.equal(await tokens.getToken(), "token-2");
    tokens.invalidate();
    assert.equal(await tokens.getToken(), "token-3");
    assert.equal(server.requests.length, 3);
  });
});

test("a 429 waits for Retry-After before the next token request", async () => {
  await withServer({}, async (server) => {
    server.script.push({ status: 429, headers: { "retry-after": "1" } });
    const { tokens } = managerFor(server);
    assert.equal(await tokens.getToken(), "token-1");
    assert.equal(server.requests.length, 2);
    const gap = server.requests[1].at - server.requests[0].at;
    assert.ok(gap >= 900 && gap < 3000, `waited ${gap} ms for Retry-After: 1`);
  });
});

test("a 429 with X-RateLimit-Reset (epoch milliseconds) waits until then", async () => {
  await withServer({}, async (server) => {
    server.script.push({ status: 429, headers: { "x-ratelimit-reset": String(Date.now() + 300) } });
    const tokens = new TokenManager(settingsFor(server), () => globalThis.fetch);
    assert.equal(await tokens.getToken(), "token-1");
    const gap = server.requests[1].at - server.requests[0].at;
    assert.ok(gap >= 200 && gap < 3000, `waited ${gap} ms for the reset (not the 5 s default)`);
  });
});

test("5xx answers are retried maxRetries times, then fail with a retryable OAuthError", async () => {
  await withServer({}, async (server) => {
    for (let i = 0; i < 5; i++) server.script.push({ status: 503, body: "" });
    const { tokens } = managerFor(server, { maxRetries: 2 });
    const error = await rejection(tokens.getToken());
    assert.equal(server.requests.length, 3, "one request and 2 retries");
    assert.equal(error.retryable, true);
    assert.equal(error.status, 503);
    assert.match(
      error.message,
      /^Cannot get an OAuth token from http:\/\/127\.0\.0\.1:\d+\/token: the token server answered 503 Service Unavailable \(after 2 retries\); /,
    );
    server.script.length = 0;
    assert.equal(await tokens.getToken(), "token-1", "a later call asks again");
  });
});

test("a dropped connection is retried", async () => {
  await withServer({}, async (server) => {
    server.script.push({ destroy: true });
    const { tokens } = managerFor(server);
    assert.equal(await tokens.getToken(), "token-1");
    assert.equal(server.requests.length, 2);
  });
});

test("other 4xx answers are not retried, and the error says which setting to check", async () => {
  const cases: [Reply, RegExp][] = [
    [
      { status: 400, body: '{"error":"invalid_client","error_description":"Unknown key id"}' },
      /answered 400 Bad Request: invalid_client: Unknown key id; check oauthSettings\.clientId and keyId/,
    ],
    [{ status: 400, body: '{"error":"invalid_scope"}' }, /invalid_scope; check oauthSettings\.scope/],
    [{ status: 401, body: "" }, /answered 401 Unauthorized; check oauthSettings\.clientId/],
    [{ status: 403, body: "" }, /answered 403 Forbidden; check that the OAuth app is enabled/],
    [{ status: 404, body: "not here" }, /answered 404 Not Found: not here; check oauthSettings\.authServer/],
  ];
  await withServer({}, async (server) => {
    for (const [reply, message] of cases) {
      const before = server.requests.length;
      server.script.push(reply);
      const { tokens } = managerFor(server);
      const error = await rejection(tokens.getToken());
      assert.equal(server.requests.length, before + 1, `${reply.status} is not retried`);
      assert.equal(error.retryable, false);
      assert.equal(error.status, reply.status);
      assert.match(error.message, message);
    }
  });
});

test("a redirect is not followed and names where it pointed", async () => {
  await withServer({}, async (server) => {
    server.script.push({ status: 302, headers: { location: "http://127.0.0.1:9/elsewhere" }, body: "" });
    const { tokens } = managerFor(server);
    const error = await rejection(tokens.getToken());
    assert.equal(server.requests.length, 1);
    assert.equal(error.retryable, false);
    assert.match(
      error.message,
      /answered 302 Found redirecting to http:\/\/127\.0\.0\.1:9\/elsewhere; redirects are not/,
    );
  });
});

test("an assertion refused for this machine's clock is signed again on the token server's time", async () => {
  await withServer({ checkTime: true }, async (server) => {
    const { tokens, clock } = managerFor(server);
    clock.now -= 3_600_000; // this machine runs an hour late
    assert.equal(await tokens.getToken(), "token-1");
    assert.equal(server.requests.length, 2);
    const iat = server.requests[1].claims.iat as number;
    assert.ok(Math.abs(iat + 5 - Date.now() / 1000) < 5, "the second assertion is on the server's clock");
  });
  await withServer({}, async (server) => {
    server.script.push({ status: 400, body: '{"error":"invalid_request","error_description":"Token is expired"}' });
    server.script.push({ status: 400, body: '{"error":"invalid_request","error_description":"Token is expired"}' });
    const { tokens } = managerFor(server);
    const error = await rejection(tokens.getToken());
    assert.equal(server.requests.length, 1, "the server's clock is ours: asking again cannot help");
    assert.match(error.message, /Token is expired; the assertion's time was refused: check this machine's clock/);
  });
});

test("an answer without access_token or expires_in is a clear, non-retryable error", async () => {
  await withServer({}, async (server) => {
    for (const body of ['{"access_token":"secret-token-1"}', '{"expires_in":3600}', "<html>hello</html>"]) {
      server.script.push({ body });
      const { tokens } = managerFor(server);
      const error = await rejection(tokens.getToken());
      assert.equal(error.retryable, false);
      assert.match(error.message, /answered 200 OK without an access_token and a positive expires_in; check that/);
      assertNoSecrets(errorText(error), ["secret-token-1"]);
    }
  });
});

test("getToken(stop) stops waiting at once; the request goes on for callers still waiting", async () => {
  await withServer({}, async (server) => {
    server.script.push({ delay: 300 });
    const { tokens } = managerFor(server);
    const stop = new Stopper();
    const started = Date.now();
    const leaving = rejection(tokens.getToken(stop));
    const staying = tokens.getToken();
    setTimeout(() => stop.stop(), 30);
    const error = await leaving;
    assert.ok(Date.now() - started < 250, "the stopped caller did not wait for the answer");
    assert.equal(error.retryable, true);
    assert.equal(error.message, "Cannot get an OAuth token: the request was aborted");
    assert.equal(await staying, "token-1");
    assert.equal(server.requests.length, 1);
  });
});

test("when its last caller stops waiting, the token request is abandoned, and the next call starts anew", async () => {
  await withServer({}, async (server) => {
    server.script.push({ delay: 2000 }, { status: 500 });
    const { tokens } = managerFor(server);
    const stop = new Stopper();
    const waiting = rejection(tokens.getToken(stop));
    while (server.requests.length === 0) await delay(5);
    stop.stop();
    await waiting;
    const deadline = Date.now() + 1000;
    while (server.closed.length === 0 && Date.now() < deadline) await delay(5);
    assert.equal(server.closed.length, 1, "the held request was aborted");
    assert.equal(await tokens.getToken(), "token-1", "a new request after the 500 is retried");
    assert.equal(server.requests.length, 3);
  });
});

test("settings.httpClient, a { makeRequest } object, sends the token requests", async () => {
  await withServer({}, async (server) => {
    const urls: string[] = [];
    const httpClient: HttpClient = {
      makeRequest: async ({ url, method, headers, body, signal }) => {
        urls.push(url);
        return await fetch(url, { method, headers, body, signal });
      },
    };
    const unused: FetchFn = () => Promise.reject(new Error("the client's fetch was used"));
    const tokens = new TokenManager(settingsFor(server, { httpClient }), () => unused);
    assert.equal(await tokens.getToken(), "token-1");
    assert.deepEqual(urls, [`${server.url}/token`]);
  });
});

test("checkOAuthSettings() fills in the defaults and names what is wrong", () => {
  const base = { clientId: "app-1", clientKey: PEM, keyId: "key-1" };
  assert.deepEqual(checkOAuthSettings(base), {
    ...base,
    authServer: "https://oauth2.segment.io",
    scope: "tracking_api:write",
    maxRetries: 3,
  });
  assert.equal(
    checkOAuthSettings({ ...base, authServer: "https://oauth2.eu1.segmentapis.com/" }).authServer,
    "https://oauth2.eu1.segmentapis.com",
  );
  // A key kept on one line in an environment variable, with "\n" escapes.
  assert.equal(checkOAuthSettings({ ...base, clientKey: PEM.replace(/\n/g, "\\n") }).clientId, "app-1");
  const cases: [unknown, RegExp, typeof TypeError][] = [
    [null, /^Cannot set oauthSettings: expected an object with clientId, clientKey and keyId, got null$/, TypeError],
    [{ ...base, clientId: undefined }, /^Cannot set oauthSettings: clientId is missing/, TypeError],
    [{ ...base, keyId: "" }, /^Cannot set oauthSettings: keyId must be a non-empty string/, TypeError],
    [{ ...base, clientSecret: "x" }, /^Cannot set oauthSettings: unknown field "clientSecret"/, TypeError],
    [{ ...base, authServer: "oauth2.segment.io" }, /authServer "oauth2\.segment\.io" is not a URL/, TypeError],
    [{ ...base, authServer: "ftp://oauth2.segment.io" }, /authServer must be an https: URL/, TypeError],
    [{ ...base, scope: 'bad"scope' }, /scope must be one of the OAuth app's scopes/, TypeError],
    [{ ...base, maxRetries: 1.5 }, /maxRetries must be an integer/, TypeError],
    [{ ...base, maxRetries: -1 }, /maxRetries must be at least 0, got -1/, RangeError],
    [
      { ...base, httpClient: {} },
      /httpClient must be a fetch-compatible function or an object with makeRequest/,
      TypeError,
    ],
  ];
  for (const [value, message, type] of cases) {
    assert.throws(() => checkOAuthSettings(value), (error: Error) => {
      assert.equal(error.constructor, type);
      assert.match(error.message, message);
      return true;
    });
  }
});

test("a bad clientKey is a TypeError that says what to do and never shows the key", async () => {
  const base = { clientId: "app-1", keyId: "key-1" };
  const ec = await crypto.subtle.generateKey({ name: "ECDSA", namedCurve: "P-256" }, true, ["sign"]) as CryptoKeyPair;
  const ecPem = toPem("PRIVATE KEY", await crypto.subtle.exportKey("pkcs8", ec.privateKey));
  const publicPem = toPem("PUBLIC KEY", await crypto.subtle.exportKey("spki", pair.publicKey));
  const body = PEM_LINES.join("\n");
  const cases: [unknown, RegExp][] = [
    [undefined, /it is missing$/],
    [42, /got a number$/],
    ["Garbage", /no "-----BEGIN PRIVATE KEY-----" line \(pass the key's text, not a path to its file\)$/],
    [PEM.replace(/PRIVATE KEY/g, "RSA PRIVATE KEY"), /PKCS#1 .*openssl pkcs8 -topk8 -nocrypt/],
    [PEM.replace(/PRIVATE KEY/g, "ENCRYPTED PRIVATE KEY"), /encrypted: decrypt it with `openssl pkcs8/],
    [publicPem, /this is a public key or certificate/],
    [PEM.replace(/PRIVATE KEY/g, "EC PRIVATE KEY"), /"EC PRIVATE KEY"; Segment's OAuth signs with RS256/],
    [ecPem, /it is not an RSA key/],
    [PEM.replace("-----END PRIVATE KEY-----", ""), /no "-----END PRIVATE KEY-----" line$/],
    [`-----BEGIN PRIVATE KEY-----\n${body.replace(/[A-M]/g, "*")}\n-----END PRIVATE KEY-----`, /is not base64$/],
  ];
  for (const [clientKey, message] of cases) {
    for (
      const make of [
        () => checkOAuthSettings({ ...base, clientKey }),
        () => new TokenManager({ ...base, clientKey } as OAuthSettings, () => fetch),
      ]
    ) {
      assert.throws(make, (error: Error) => {
        assert.equal(error.constructor, TypeError);
        assert.match(
          error.message,
          /^Cannot set oauthSettings: clientKey must be a PEM private key \(PKCS#8 text starting "-----BEGIN PRIVATE KEY-----"\); /,
        );
        assert.match(error.message, message);
        assertNoSecrets(errorText(error), [body.slice(0, 40)]);
        return true;
      });
    }
  }
});

test("a key WebCrypto cannot import fails getToken() without a request, once and for all", async () => {
  await withServer({}, async (server) => {
    const broken = toPem("PRIVATE KEY", PKCS8.subarray(0, 300));
    const tokens = new TokenManager(settingsFor(server, { clientKey: broken }), () => globalThis.fetch);
    for (let i = 0; i < 2; i++) {
      const error = await rejection(tokens.getToken());
      assert.equal(error.retryable, false);
      assert.match(
        error.message,
        /oauthSettings\.clientKey could not be read as an RSA private key; pass the unencrypted/,
      );
      assertNoSecrets(errorText(error), broken.split("\n").filter((l) => l.length > 20));
    }
    assert.equal(server.requests.length, 0);
  });
});

test("no error message holds the key, a token or the client assertion", async () => {
  await withServer({}, async (server) => {
    const errors: OAuthError[] = [];
    const replies: Reply[] = [
      {
        status: 400,
        body: (assertion) => JSON.stringify({ error: "invalid_grant", error_description: `bad ${assertion}` }),
      },
      { status: 500, body: (assertion) => `upstream said no to ${assertion}` },
      { body: '{"access_token":"secret-token-2","expires_in":' },
      { body: '{"access_token":"secret-token-3","expires_in":"soon"}' },
    ];
    for (const reply of replies) {
      server.script.push(reply);
      const { tokens } = managerFor(server, { maxRetries: 0 });
      errors.push(await rejection(tokens.getToken()));
    }
    const assertions = server.requests.map((r) => new URLSearchParams(r.body).get("client_assertion") ?? "");
    assert.equal(assertions.length, replies.length);
    for (const error of errors) assertNoSecrets(errorText(error), ["secret-token-2", "secret-token-3", ...assertions]);
    assert.match(errors[0].message, /invalid_grant: bad \[assertion\]/);
    assert.match(errors[1].message, /upstream said no to \[assertion\]/);
  });
});

const CHILD = fileURLToPath(new URL("./fixtures/oauth_child.ts", import.meta.url));
const ROOT = fileURLToPath(new URL("..", import.meta.url));

/** Runs the child with the runtime running this test; kills it if it outlives 5 s. */
function runChild(url: string, mode: "token" | "abandon") {
  const args = childArgv(CHILD, [url, PEM, mode], ["--allow-net=127.0.0.1"]);
  const start = Date.now();
  const child = spawn(process.execPath, args, { cwd: ROOT, stdio: ["ignore", "pipe", "pipe"] });
  let stdout = "";
  let stderr = "";
  child.stdout.on("data", (chunk) => void (stdout += chunk));
  child.stderr.on("data", (chunk) => void (stderr += chunk));
  const killer = setTimeout(() => child.kill("SIGKILL"), 5000);
  return new Promise<{ code: number | null; signal: string | null; ms: number; stdout: string; stderr: string }>(
    (resolve, reject) => {
      child.on("error", (error) => {
        clearTimeout(killer);
        reject(error);
      });
      child.on("close", (code, signal) => {
        clearTimeout(killer);
        resolve({ code, signal, ms: Date.now() - start, stdout, stderr });
      });
    },
  );
}

test("a kept token, or an abandoned token request, does not keep the process alive", async () => {
  const server = await startTokenServer();
  try {
    const kept = await runChild(server.url, "token");
    assert.equal(kept.signal, null, `the child was killed: ${kept.stderr}`);
    assert.equal(kept.code, 0, kept.stderr);
    assert.equal(kept.stdout.trim(), "token-1");
    assert.ok(kept.ms < 3000, `the child took ${kept.ms} ms to exit`);

    server.script.push({ delay: 10_000 });
    const abandoned = await runChild(server.url, "abandon");
    assert.equal(abandoned.signal, null, `the child was killed: ${abandoned.stderr}`);
    assert.equal(abandoned.stdout.trim(), "Cannot get an OAuth token: the request was aborted");
    assert.ok(abandoned.ms < 3000, `the child took ${abandoned.ms} ms to exit`);
    assert.deepEqual(server.problems, []);
  } finally {
    await server.stop();
  }
});

// ---------------------------------------------------------------- the client, end to end

test("a client with oauthSettings sends each batch with a Bearer token and fetches a new one after a 401", async () => {
  const { Analytics } = await import("../mod.ts");
  const { startReceiver } = await import("./receiver.ts");
  await withServer({}, async (server) => {
    const receiver = await startReceiver();
    const errors: string[] = [];
    const analytics = new Analytics({
      writeKey: "KEY",
      host: receiver.url,
      oauthSettings: settingsFor(server),
      minRetryDelay: 0.01,
      maxRetryDelay: 0.05,
      onError: (error) => void errors.push(error.message),
    });
    try {
      analytics.track("u1", "With A Token");
      assert.deepEqual(await analytics.flush(), { delivered: 1, failed: 0, pending: 0 });
      assert.equal(receiver.requests[0].headers.authorization, "Bearer token-1");
      assert.equal(server.requests.length, 1);

      // The tracking API refuses the token once: a new token is fetched and the batch sent again, not counted as a retry.
      receiver.reply({ status: 401, body: '{"error":"token expired"}' });
      analytics.track("u1", "After A Refusal");
      assert.deepEqual(await analytics.flush(), { delivered: 1, failed: 0, pending: 0 });
      assert.deepEqual(receiver.requests.slice(1).map((r) => r.headers.authorization), [
        "Bearer token-1",
        "Bearer token-2",
      ]);
      assert.equal(server.requests.length, 2);
      assert.equal(analytics.stats().retries, 0);
      assert.deepEqual(errors, []);
    } finally {
      await analytics.close({ timeout: 100 });
      await receiver.stop();
    }
  });
});

test("analytics-python's flat oauth* options build the same settings; a token server that refuses fails the batch clearly", async () => {
  const { Analytics } = await import("../mod.ts");
  const { startReceiver } = await import("./receiver.ts");
  await withServer({}, async (server) => {
    const receiver = await startReceiver();
    const errors: { reason: string; message: string }[] = [];
    const analytics = new Analytics({
      writeKey: "KEY",
      host: receiver.url,
      oauthClientId: "app-1",
      oauthClientKey: PEM,
      oauthKeyId: "key-1",
      oauthAuthServer: server.url,
      maxRetries: 0,
      onError: (error) => void errors.push({ reason: error.reason, message: error.message }),
    });
    try {
      server.script.push({ status: 401, body: '{"error":"invalid_client"}' });
      analytics.track("u1", "No Token");
      assert.deepEqual(await analytics.flush(), { delivered: 0, failed: 1, pending: 0 });
      assert.equal(receiver.requests.length, 0, "nothing is sent without a token");
      assert.equal(errors.length, 1);
      assert.match(errors[0].message, /Cannot deliver 1 message: Cannot get an OAuth token/);
      for (const line of PEM_LINES) assert.ok(!errors[0].message.includes(line), "the key never shows");
    } finally {
      await analytics.close({ timeout: 100 });
      await receiver.stop();
    }
  });
  assert.throws(
    () => new Analytics({ oauthSettings: { clientId: "a", clientKey: PEM, keyId: "k" }, oauthClientId: "b" }),
    /not both/,
  );
});
