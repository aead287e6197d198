/**
 * What analytics-python's own tests and users expect, kept by Tally: a full
 * batch goes out at once, BigInt ids, `host = None`, `join()`, `VERSION`,
 * proxies; and the write key redacted where it stands as a key, never where
 * it is an ordinary word.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { createServer, request as httpRequest } from "node:http";
import { connect } from "node:net";
import type { AddressInfo } from "node:net";
import analytics, { Analytics, type DeliveryError, VERSION } from "../mod.ts";
import { redact } from "../lib/redact.ts";
import { startReceiver } from "./receiver.ts";

const FAST = { minRetryDelay: 0.01, maxRetryDelay: 0.05 } as const;
const delay = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));
const runtime = (globalThis as { Deno?: unknown }).Deno !== undefined
  ? "deno"
  : (globalThis as { Bun?: unknown }).Bun !== undefined
  ? "bun"
  : "node";

test("a batch goes out as soon as it holds uploadSize messages (analytics-python test_user_defined_upload_size)", async () => {
  const receiver = await startReceiver();
  // The interval is far longer than the test: only a full batch can explain a request.
  const client = new Analytics({ writeKey: "KEY", host: receiver.url, uploadSize: 10, uploadInterval: 600 });
  try {
    for (let i = 0; i < 20; i++) client.track("u1", "Counted", { i });
    await receiver.waitForMessages(20, 3000);
    assert.deepEqual(receiver.requests.map((r) => r.body.batch?.length), [10, 10]);
    assert.equal(client.stats().queued, 0);
  } finally {
    await client.close({ timeout: 100 });
    await receiver.stop();
  }
});

test("with uploadSize 1 (the serverless setting) each event is sent at once, not after uploadInterval", async () => {
  const receiver = await startReceiver();
  const client = new Analytics({ writeKey: "KEY", host: receiver.url, flushAt: 1, flushInterval: 600_000 });
  try {
    client.track("u1", "First");
    await receiver.waitForMessages(1, 2000);
    client.track("u1", "Second");
    await receiver.waitForMessages(2, 2000);
    assert.deepEqual(receiver.requests.map((r) => r.body.batch?.length), [1, 1]);
  } finally {
    await client.close({ timeout: 100 });
    await receiver.stop();
  }
});

test("BigInt user, anonymous and group ids go out as decimal strings, as Python's big ints do", async () => {
  const receiver = await startReceiver();
  const client = new Analytics({ writeKey: "KEY", host: receiver.url });
  try {
    client.identify(12345678901234567890n, { plan: "Pro" });
    client.track(null, "Anonymous", {}, { anonymousId: 98765432109876543210n });
    client.group(1n, 2n);
    client.alias(3n, 4n);
    await client.flush();
    const [identify, track, group, alias] = receiver.messages();
    assert.equal(identify.userId, "12345678901234567890");
    assert.equal(track.anonymousId, "98765432109876543210");
    assert.equal(group.userId, "1");
    assert.equal(group.groupId, "2");
    assert.deepEqual([alias.previousId, alias.userId], ["3", "4"]);
  } finally {
    await client.close({ timeout: 100 });
    await receiver.stop();
  }
});

test("host = null or undefined restores the default host, as analytics-python's host = None", () => {
  const client = new Analytics({ writeKey: "KEY", host: "http://127.0.0.1:1" });
  client.host = null;
  assert.equal(client.host, "https://api.segment.io");
  client.host = "http://127.0.0.1:2";
  client.host = undefined;
  assert.equal(client.host, "https://api.segment.io");
  assert.equal(new Analytics({ host: null }).host, "https://api.segment.io");
});

test("join() delivers what is queued and stops, on a client and on the module client", async () => {
  const receiver = await startReceiver();
  const client = new Analytics({ writeKey: "KEY", host: receiver.url, uploadInterval: 600 });
  const refused: DeliveryError[] = [];
  client.onError = (error) => void refused.push(error);
  client.track("u1", "Before Join");
  assert.deepEqual(await client.join(), { delivered: 1, failed: 0, pending: 0 });
  assert.equal(receiver.messages().length, 1);
  client.track("u1", "After Join");
  await delay(10);
  assert.equal(refused[0]?.reason, "closed", "a call after join() is reported, not lost silently");
  assert.equal(typeof analytics.join, "function");
  await receiver.stop();
});

test("VERSION is on the instance and on the module client", () => {
  assert.equal(new Analytics({ send: false }).VERSION, VERSION);
  assert.equal(analytics.VERSION, VERSION);
  assert.match(VERSION, /^\d+\.\d+\.\d+/);
});

/** A forward proxy on 127.0.0.1 that relays absolute-URI requests and CONNECT tunnels to loopback only. */
async function startProxy() {
  const seen: string[] = [];
  const server = createServer((req, res) => {
    seen.push(`${req.method} ${req.url}`);
    const target = new URL(req.url ?? "");
    if (target.hostname !== "127.0.0.1") {
      res.writeHead(403).end();
      return;
    }
    const upstream = httpRequest(
      { host: "127.0.0.1", port: target.port, path: target.pathname, method: req.method, headers: req.headers },
      (answer) => {
        res.writeHead(answer.statusCode ?? 502, answer.headers);
        answer.pipe(res);
      },
    );
    upstream.on("error", () => res.writeHead(502).end());
    req.pipe(upstream);
  });
  server.on("connect", (req, socket, head) => {
    seen.push(`CONNECT ${req.url}`);
    const [host, port] = (req.url ?? "").split(":");
    if (host !== "127.0.0.1") {
      socket.end("HTTP/1.1 403 Forbidden\r\n\r\n");
      return;
    }
    const upstream = connect(Number(port), host, () => {
      socket.write("HTTP/1.1 200 Connection Established\r\n\r\n");
      upstream.write(head);
      upstream.pipe(socket);
      socket.pipe(upstream);
    });
    upstream.on("error", () => socket.destroy());
    socket.on("error", () => upstream.destroy());
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    seen,
    stop: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections?.();
        server.close(() => resolve());
      }),
  };
}

test("proxy: batches go through the given HTTP proxy on Deno and Bun; Node says what to do instead", async () => {
  if (runtime === "node") {
    assert.throws(() => new Analytics({ writeKey: "KEY", proxy: "http://127.0.0.1:3128" }), (error: unknown) => {
      assert.ok(error instanceof TypeError);
      assert.match(error.message, /Cannot set proxy: .*pass \{ fetch \}/);
      return true;
    });
    return;
  }
  const receiver = await startReceiver();
  const proxy = await startProxy();
  const client = new Analytics({ writeKey: "KEY", host: receiver.url, proxy: proxy.url, ...FAST, maxRetries: 1 });
  try {
    client.track("u1", "Through The Proxy");
    assert.deepEqual(await client.flush(), { delivered: 1, failed: 0, pending: 0 });
    assert.equal(receiver.messages()[0]?.event, "Through The Proxy");
    assert.ok(proxy.seen.some((line) => line.includes(new URL(receiver.url).port)), proxy.seen.join("\n"));
    assert.equal(client.proxy, proxy.url);
  } finally {
    await client.close({ timeout: 100 });
    await proxy.stop();
    await receiver.stop();
  }
  assert.throws(() => new Analytics({ proxy: "socks5://127.0.0.1:1080" }), /http: or https:/);
  assert.throws(() => new Analytics({ proxy: "not a url" }), /Cannot set proxy: it is not a URL/);
});

// ---------------------------------------------------------------- the write key, redacted as a key

test("redact() removes a long key in every form it can take, even inside other text", () => {
  const key = "wk_live_4f9a8b7c6d5e";
  const basic = btoa(`${key}:`);
  for (
    const text of [
      `invalid key ${key}`,
      `{"writeKey":"${key}"}`,
      `Authorization: Basic ${basic}`,
      `https://h/?key=${encodeURIComponent(key)}`,
      `prefix${key}suffix`,
    ]
  ) {
    const out = redact(text, key);
    assert.ok(!out.includes(key) && !out.includes(basic), `${text} -> ${out}`);
    assert.ok(out.includes("[write key]"), out);
  }
  const quoted = 'wk"quoted\\key';
  assert.equal(redact(JSON.stringify({ writeKey: quoted }), quoted), '{"writeKey":"[write key]"}');
});

test("redact() leaves ordinary words alone when a short key is one of them", () => {
  assert.equal(redact("a wrong write key", "wrong"), "a wrong write key");
  assert.equal(redact("sending 1 message (120 bytes)", "message"), "sending 1 message (120 bytes)");
  // Where the word stands as a credential it is still the key.
  assert.equal(redact('{"writeKey":"wrong"}', "wrong"), '{"writeKey":"[write key]"}');
  assert.equal(redact(`Authorization: Basic ${btoa("wrong:")}`, "wrong"), "Authorization: Basic [write key]");
  assert.equal(redact("write_key=wrong&x=1", "wrong"), "write_key=[write key]&x=1");
  assert.equal(redact("http://wrong:@host/v1", "wrong"), "http://[write key]:@host/v1");
  // A short key that looks like a token is redacted as a whole word, not inside other words.
  assert.equal(redact("bad key KEY123 here", "KEY123"), "bad key [write key] here");
  assert.equal(redact("KEY1234 is another", "KEY123"), "KEY1234 is another");
  assert.equal(redact("k", "k"), "k");
});

test("a server's answer keeps its words when the key is a common word, and loses the key where it is one", async () => {
  const receiver = await startReceiver();
  const errors: DeliveryError[] = [];
  const client = new Analytics({
    writeKey: "wrong",
    host: receiver.url,
    maxRetries: 0,
    onError: (error) => void errors.push(error),
  });
  try {
    receiver.reply({ status: 401, body: '{"error":"a wrong write key","writeKey":"wrong"}' });
    client.track("u1", "E");
    await client.flush();
    assert.equal(errors.length, 1);
    assert.match(errors[0].message, /a wrong write key/);
    assert.match(errors[0].message, /"writeKey":"\[write key\]"/);
  } finally {
    await client.close({ timeout: 100 });
    await receiver.stop();
  }
});

test("a long key echoed by the server is redacted before the answer is cut or its whitespace collapsed", async () => {
  const receiver = await startReceiver();
  const key = "wk_live_0123456789abcdef";
  const errors: DeliveryError[] = [];
  const client = new Analytics({
    writeKey: key,
    host: receiver.url,
    maxRetries: 0,
    onError: (e) => void errors.push(e),
  });
  try {
    // The key straddles the 200-character cut of the snippet.
    receiver.reply({ status: 400, body: "x".repeat(190) + key + " tail" });
    client.track("u1", "E");
    await client.flush();
    const message = errors[0]?.message ?? "";
    assert.ok(!message.includes(key.slice(0, 10)), message);
    assert.match(message, /x\[write key/, "the marker, perhaps cut, stands where the key was");
  } finally {
    await client.close({ timeout: 100 });
    await receiver.stop();
  }
});
