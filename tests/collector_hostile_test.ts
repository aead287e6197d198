/**
 * The collector under hostile input (issue 9, items 10 and 11, and the
 * collector parts of section 2): bodies nested thousands of levels deep, a
 * batch-level context that would swell every message once merged, answers
 * that would not fit in a string, a stream client that never reads, storage
 * bounded by bytes as well as count, clients that trickle their headers or
 * body, and a thousand idle connections. Each is answered clearly, keeps
 * memory bounded, and leaves the collector serving.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import type { Buffer } from "node:buffer";
import { mkdtempSync, rmSync, statSync } from "node:fs";
import { connect, type Socket } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { gzipSync } from "node:zlib";
import { Analytics } from "../mod.ts";
import {
  type Collector,
  type CollectorOptions,
  MESSAGE_LIMIT,
  NESTING_LIMIT,
  serve,
  startCollector,
  type StoredEvent,
} from "../serve/mod.ts";
import { canWrite, delay, tracks, withCollector } from "./fixtures/collector_helpers.ts";

const track = tracks("h", "Hostile");

async function post(
  collector: Collector,
  path: string,
  body: string | Uint8Array,
  headers: Record<string, string> = {},
): Promise<{ status: number; json: Record<string, unknown> }> {
  const response = await fetch(collector.url + path, {
    method: "POST",
    headers: { "content-type": "application/json", ...headers },
    body: body as BodyInit,
    signal: AbortSignal.timeout(10_000),
  });
  const text = await response.text();
  return { status: response.status, json: text === "" ? {} : JSON.parse(text) };
}

const until = async (ok: () => boolean, what: string, ms = 5000): Promise<void> => {
  const end = Date.now() + ms;
  while (!ok()) {
    if (Date.now() > end) throw new Error(`Timed out after ${ms} ms waiting for ${what}`);
    await delay(10);
  }
};

/** A raw connection: what arrives, and how it ends ("end" for a clean close, else the error's code). */
function open(
  collector: Collector,
): Promise<{ socket: Socket; received: () => number; text: () => string; closed: Promise<string> }> {
  return new Promise((resolve, reject) => {
    const socket = connect(collector.port, "127.0.0.1");
    let text = "";
    let bytes = 0;
    let ending = "";
    socket.on("data", (chunk: Buffer) => {
      bytes += chunk.length;
      if (text.length < 4096) text += chunk.toString("latin1");
    });
    const closed = new Promise<string>((done) => {
      socket.on("end", () => void (ending ||= "end"));
      socket.on("error", (error: Error & { code?: string }) => void (ending ||= error.code ?? error.message));
      socket.on("close", () => done(ending || "close"));
    });
    socket.once("connect", () => resolve({ socket, received: () => bytes, text: () => text, closed }));
    socket.once("error", reject);
  });
}

// ---- item 10: nesting, merged sizes, bounded answers

test("a 10 KB body of 5000 nested arrays is refused with 400 naming its depth, and the collector still serves", {
  skip: canWrite ? false : "needs --allow-write on Deno",
}, async () => {
  const dir = mkdtempSync(join(tmpdir(), "tally-hostile-"));
  try {
    // The NDJSON file and an open stream: both serialize every stored message.
    await withCollector({ out: join(dir, "events.ndjson") }, async (collector) => {
      const stream = await open(collector);
      stream.socket.write(`GET /api/stream HTTP/1.1\r\nHost: 127.0.0.1:${collector.port}\r\n\r\n`);
      await until(() => stream.text().includes("event: stats"), "the stream's first stats");
      const deep = (n: number) => "[".repeat(n) + "]".repeat(n);
      const bodies: [string, string | Uint8Array, Record<string, string>][] = [
        ["the batch itself", `{"batch":${deep(5000)}}`, {}],
        ["a property", JSON.stringify({ batch: [track({ properties: { x: "$" } })] }).replace('"$"', deep(5000)), {}],
        ["a single message", JSON.stringify(track({ properties: { x: "$" } })).replace('"$"', deep(5000)), {}],
        ["a gzip body", gzipSync(`{"batch":[${deep(20_000)}]}`), { "content-encoding": "gzip" }],
      ];
      for (const [what, body, headers] of bodies) {
        assert.ok(body.length <= 41_000, `${what}: a small body (${body.length} bytes)`);
        const path = what === "a single message" ? "/v1/track" : "/v1/batch";
        const answer = await post(collector, path, body, headers);
        assert.equal(answer.status, 400, what);
        assert.equal(answer.json.success, false);
        assert.match(answer.json.error as string, /^body is nested \d+ levels deep, over the 1024-level limit/, what);
      }
      assert.equal(collector.stats().total, 0, "nothing of a refused body is stored");
      assert.equal(collector.stats().requests, bodies.length);
      const api = await fetch(`${collector.url}/api/events`);
      assert.equal(api.status, 200);
      assert.deepEqual(await api.json(), { events: [], evicted: 0 });
      assert.equal((await post(collector, "/v1/batch", JSON.stringify({ batch: [track()] }))).status, 200);
      stream.socket.destroy();
    });
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test("nesting is counted from the body: 1024 levels are taken, 1025 are not, and brackets inside strings do not count", async () => {
  await withCollector({}, async (collector) => {
    assert.equal(NESTING_LIMIT, 1024);
    // The body is level 1, the batch array 2, the message 3, its properties 4.
    const nested = (levels: number) => "[".repeat(levels - 4) + "1" + "]".repeat(levels - 4);
    const body = (levels: number) =>
      JSON.stringify({ batch: [track({ properties: { x: "$" } })] }).replace('"$"', nested(levels));
    assert.equal((await post(collector, "/v1/batch", body(NESTING_LIMIT))).status, 200);
    const over = await post(collector, "/v1/batch", body(NESTING_LIMIT + 1));
    assert.equal(over.status, 400);
    assert.match(over.json.error as string, /nested 1025 levels deep, over the 1024-level limit/);
    const brackets = JSON.stringify({ batch: [track({ properties: { text: '[{\\"['.repeat(2000) } })] });
    assert.equal((await post(collector, "/v1/batch", brackets)).status, 200, "brackets in strings are text");
    assert.equal(collector.stats().good, 2);

    // What the library takes (a field nested up to 1000 levels), the collector takes.
    let value: unknown = "leaf";
    for (let i = 0; i < 999; i++) value = { v: value };
    const analytics = new Analytics({ writeKey: "K", host: collector.url, maxRetries: 0 });
    analytics.track({ userId: "u1", event: "Deep", properties: value as Record<string, unknown> });
    assert.deepEqual(await analytics.flush(), { delivered: 1, failed: 0, pending: 0 });
    assert.equal(collector.events({ event: "Deep" })[0].status, "good");
  });
});

test("1500 tiny messages with a 200 KB batch-level context are refused: nothing stored, nothing written", {
  skip: canWrite ? false : "needs --allow-write on Deno",
}, async () => {
  const dir = mkdtempSync(join(tmpdir(), "tally-hostile-"));
  try {
    const file = join(dir, "events.ndjson");
    await withCollector({ out: file }, async (collector) => {
      const batch = Array.from({ length: 1500 }, () => track());
      const body = JSON.stringify({ batch, context: { blob: "x".repeat(200 * 1024) } });
      assert.ok(body.length < 320 * 1024);
      const answer = await post(collector, "/v1/batch", body);
      assert.equal(answer.status, 400);
      assert.match(
        answer.json.error as string,
        /^the batch's top-level context and integrations are \d+ bytes: merged into each message, they put it over the 32768-byte limit per message/,
      );
      assert.equal(collector.stats().total, 0, "no over-limit message is stored, as good or bad");
      const api = await fetch(`${collector.url}/api/events`);
      assert.equal(api.status, 200);
      assert.deepEqual(await api.json(), { events: [], evicted: 0 });
    });
    assert.equal(statSync(file).size, 0);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test("each message is checked against 32 KB after the batch's context is merged in; one over is kept as sent, as bad", async () => {
  await withCollector({}, async (collector) => {
    const context = { blob: "c".repeat(20 * 1024) };
    const over = track({ properties: { pad: "o".repeat(15 * 1024) } });
    const within = track({ properties: { pad: "w".repeat(5 * 1024) } });
    const answer = await post(collector, "/v1/batch", JSON.stringify({ batch: [within, over], context }));
    assert.equal(answer.status, 400);
    assert.match(
      answer.json.error as string,
      /^batch\[1\] is 3\d{4} bytes once the batch's context and integrations are merged in, over the 32768-byte limit per message/,
    );
    const events = collector.events();
    assert.equal(events.length, 1, "only the message over the limit is kept");
    assert.equal(events[0].status, "bad");
    assert.deepEqual(events[0].message, over, "as sent: without the merged context");
    assert.match(
      events[0].reasons[0],
      /^message is 3\d{4} bytes once the batch's context and integrations are merged in/,
    );
  });
});

test("merged messages within 32 KB are good, and a batch that merging would swell past 5 MB is refused whole", async () => {
  await withCollector({}, async (collector) => {
    const context = { blob: "y".repeat(20 * 1024) };
    assert.equal(
      (await post(collector, "/v1/batch", JSON.stringify({ batch: [track(), track()], context }))).status,
      200,
    );
    assert.equal(collector.stats().good, 2);
    const [event] = collector.events();
    assert.deepEqual(event.message.context, context);
    assert.ok(JSON.stringify(event.message).length < MESSAGE_LIMIT);

    const swell = JSON.stringify({
      batch: Array.from({ length: 2000 }, () => track()),
      context: { blob: "z".repeat(3000) },
    });
    const answer = await post(collector, "/v1/batch", swell);
    assert.equal(answer.status, 400);
    assert.match(
      answer.json.error as string,
      /^the batch's 2000 messages come to more than 5120000 bytes once its context and integrations are merged into each/,
    );
    assert.equal(collector.stats().total, 2, "nothing of it is stored");
  });
});

test("GET /api/events answers in pages: 1000 by default, limit at most 10000, and next pages through the rest", async () => {
  await withCollector({}, async (collector) => {
    const batch = () => JSON.stringify({ batch: Array.from({ length: 1250 }, () => track()) });
    assert.equal((await post(collector, "/v1/batch", batch())).status, 200);
    assert.equal((await post(collector, "/v1/batch", batch())).status, 200);
    const first = await (await fetch(`${collector.url}/api/events`)).json();
    assert.equal(first.events.length, 1000, "the default page");
    assert.equal(first.events[0].id, 2500);
    assert.equal(first.next, "/api/events?limit=1000&before=1501");
    const seen: number[] = first.events.map((e: StoredEvent) => e.id);
    let next: string | undefined = first.next;
    while (next !== undefined) {
      const page = await (await fetch(collector.url + next)).json();
      seen.push(...page.events.map((e: StoredEvent) => e.id));
      next = page.next;
    }
    assert.deepEqual(seen, Array.from({ length: 2500 }, (_, i) => 2500 - i), "every event once, newest first");

    const filtered = await (await fetch(`${collector.url}/api/events?type=track&limit=2&before=100`)).json();
    assert.deepEqual(filtered.events.map((e: StoredEvent) => e.id), [99, 98]);
    assert.equal(filtered.next, "/api/events?type=track&limit=2&before=98");
    const last = await (await fetch(`${collector.url}/api/events?limit=5&before=4`)).json();
    assert.deepEqual(last.events.map((e: StoredEvent) => e.id), [3, 2, 1]);
    assert.equal(last.next, undefined, "no next page after the oldest");
    assert.equal((await (await fetch(`${collector.url}/api/events?limit=10000`)).json()).events.length, 2500);
    const over = await fetch(`${collector.url}/api/events?limit=10001`);
    assert.equal(over.status, 400);
    assert.match((await over.json()).error, /limit must be at most 10000 \(page with next\), got 10001/);
    const badBefore = await fetch(`${collector.url}/api/events?before=x`);
    assert.equal(badBefore.status, 400);
    await badBefore.body?.cancel();
    assert.equal(collector.events().length, 2500, "in code, events() has no page size");
  });
});

test("a large answer is streamed: 1000 events of 30 KB arrive whole and parse", async () => {
  await withCollector({}, async (collector) => {
    const pad = "p".repeat(30 * 1024);
    for (let i = 0; i < 63; i++) {
      const batch = Array.from({ length: 16 }, () => track({ properties: { pad } }));
      assert.equal((await post(collector, "/v1/batch", JSON.stringify({ batch }))).status, 200);
    }
    const response = await fetch(`${collector.url}/api/events`);
    assert.equal(response.status, 200);
    assert.equal(response.headers.get("content-length"), null, "streamed, not built as one string");
    const text = await response.text();
    assert.ok(text.length > 30 * 1024 * 1000, `${text.length} characters`);
    const json = JSON.parse(text);
    assert.equal(json.events.length, 1000);
    assert.equal(json.next, "/api/events?limit=1000&before=9");
    assert.deepEqual(json.events[0], collector.events({ limit: 1 })[0]);
  });
});

// ---- item 11: bounded memory

test("a stream client that never reads is dropped once 4 MB wait unread; it does not hold what follows", async () => {
  const log: string[] = [];
  await withCollector({ maxEvents: 50, log: (line) => void log.push(line) }, async (collector) => {
    const stream = await open(collector);
    stream.socket.write(`GET /api/stream HTTP/1.1\r\nHost: 127.0.0.1:${collector.port}\r\n\r\n`);
    await until(() => stream.text().includes("event: stats"), "the stream's first stats");
    stream.socket.pause(); // reads no more: the kernel's buffers fill, then the collector's
    const pad = "q".repeat(30 * 1024);
    let sent = 0;
    for (let i = 0; i < 120; i++) {
      const batch = Array.from({ length: 16 }, (_, j) => track({ properties: { pad: pad + i + "-" + j } }));
      const body = JSON.stringify({ batch });
      sent += body.length;
      assert.equal((await post(collector, "/v1/batch", body)).status, 200);
    }
    await until(() => log.some((line) => /dropped a stream client/.test(line)), "the drop", 5000);
    assert.match(log.find((line) => /dropped a stream client/.test(line))!, /more than 4\.0 MB unread/);
    stream.socket.resume();
    const ending = await stream.closed;
    const got = stream.received();
    assert.ok(got < sent / 2, `the client got ${got} of the ${sent} bytes sent to the collector (${ending})`);
    // The collector carries on, and a new stream is served.
    const again = await open(collector);
    again.socket.write(`GET /api/stream HTTP/1.1\r\nHost: 127.0.0.1:${collector.port}\r\n\r\n`);
    await until(() => again.text().includes("event: stats"), "a new stream's first stats");
    again.socket.destroy();
  });
});

test("storage is bounded by bytes as well as count: the oldest are evicted and counted", async () => {
  const maxBytes = 1024 * 1024;
  await withCollector({ maxBytes }, async (collector) => {
    const pad = "r".repeat(30 * 1024);
    for (let i = 0; i < 10; i++) {
      const batch = Array.from({ length: 10 }, () => track({ properties: { pad } }));
      assert.equal((await post(collector, "/v1/batch", JSON.stringify({ batch }))).status, 200);
    }
    const kept = collector.events();
    const bytes = kept.reduce((n, event) => n + JSON.stringify(event).length, 0);
    assert.ok(bytes <= maxBytes, `${kept.length} events hold ${bytes} bytes`);
    assert.ok(kept.length >= 30 && kept.length < 34, `${kept.length} events kept`);
    assert.equal(kept[0].id, 100, "the newest are kept");
    const stats = collector.stats();
    assert.equal(stats.evicted, 100 - kept.length);
    assert.equal(stats.total, 100);
    // An event bigger than the whole bound is still kept, alone.
    await withCollector({ maxBytes: 1000 }, async (tiny) => {
      await post(
        tiny,
        "/v1/batch",
        JSON.stringify({ batch: [track({ properties: { pad } }), track({ properties: { pad } })] }),
      );
      assert.equal(tiny.events().length, 1);
      assert.equal(tiny.stats().evicted, 1);
    });
  });
  await assert.rejects(startCollector({ maxBytes: 0 }), /maxBytes must be a positive integer/);
});

test("tally serve --max-bytes takes bytes or KB, MB, GB, and refuses anything else naming the flag", async () => {
  for (const bad of ["0", "-1", "lots", "1.5", "12TB", ""]) {
    const err: string[] = [];
    const code = await serve(["--max-bytes", bad, "--no-out"], { out: () => {}, err: (l) => void err.push(l) });
    assert.equal(code, 2, bad);
    assert.match(err[0], /^tally: --max-bytes must be a number of bytes, or with KB, MB or GB \(such as 256MB\), got/);
  }
  const help: string[] = [];
  await serve(["--help"], { out: (l) => void help.push(l), err: () => {} });
  assert.match(help.join("\n"), /--max-bytes SIZE .*default 256MB/);
  for (const good of ["1048576", "512KB", "64MB", "64mb", "1GB", "2G"]) {
    const out: string[] = [];
    const stop = new AbortController();
    const running = serve(["--port", "0", "--no-out", "--quiet", "--max-bytes", good], {
      out: (l) => void out.push(l),
      err: (l) => void out.push(l),
      signal: stop.signal,
    });
    await until(
      () => out.some((line) => line.startsWith("Press Ctrl-C")) || out.some((l) => l.startsWith("tally:")),
      good,
    );
    stop.abort();
    assert.equal(await running, 0, `${good}: ${out.join("\n")}`);
  }
});

// ---- section 2: slow clients and idle connections

test("a client trickling its headers or its body is answered 408 and cut off at the timeouts", async () => {
  await withCollector({ headersTimeout: 500, requestTimeout: 1000 }, async (collector) => {
    const trickle = async (head: string, body: string): Promise<{ ms: number; text: string }> => {
      const raw = await open(collector);
      const started = Date.now();
      let at = 0;
      const all = head + body;
      if (body !== "") {
        raw.socket.write(head);
        at = head.length;
      }
      const timer = setInterval(
        () => void (at < all.length && !raw.socket.destroyed && raw.socket.write(all[at++])),
        50,
      );
      try {
        await Promise.race([raw.closed, delay(5000)]);
      } finally {
        clearInterval(timer);
        raw.socket.destroy();
      }
      return { ms: Date.now() - started, text: raw.text() };
    };
    const head = `POST /v1/batch HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Pad: ${
      "h".repeat(200)
    }\r\nContent-Length: 400\r\n\r\n`;
    const [headers, body] = await Promise.all([trickle(head, ""), trickle(head, " ".repeat(400))]);
    assert.ok(headers.ms < 3000, `trickled headers were cut off after ${headers.ms} ms`);
    assert.ok(body.ms < 3500, `a trickled body was cut off after ${body.ms} ms`);
    assert.match(headers.text, /^HTTP\/1\.1 408 /);
    assert.match(body.text, /^HTTP\/1\.1 408 /);
    assert.equal((await post(collector, "/v1/batch", JSON.stringify({ batch: [track()] }))).status, 200);
  });
  for (
    const [options, message] of [
      [{ headersTimeout: 0 }, /headersTimeout must be a number of milliseconds > 0/],
      [{ requestTimeout: -1 }, /requestTimeout must be a number of milliseconds > 0/],
      [{ headersTimeout: 2000, requestTimeout: 1000 }, /requestTimeout must be at least headersTimeout/],
    ] as [CollectorOptions, RegExp][]
  ) await assert.rejects(startCollector(options), message);
});

test("a thousand idle connections do not stop it serving, and are closed at the headers timeout", async () => {
  await withCollector({ headersTimeout: 1500, requestTimeout: 3000 }, async (collector) => {
    const sockets = await Promise.all(Array.from({ length: 1000 }, () => open(collector)));
    // Half say nothing; half start a request and stop.
    for (const [i, raw] of sockets.entries()) {
      if (i % 2 === 1) raw.socket.write("POST /v1/batch HTTP/1.1\r\nHost: 127.0.0.1\r\n");
    }
    const answer = await post(collector, "/v1/batch", JSON.stringify({ batch: [track()] }));
    assert.equal(answer.status, 200, "served while they idle");
    const started = Date.now();
    const endings = await Promise.race([Promise.all(sockets.map((raw) => raw.closed)), delay(8000).then(() => [])]);
    assert.equal(endings.length, 1000, `all closed by the collector within ${Date.now() - started} ms`);
    assert.equal((await post(collector, "/v1/batch", JSON.stringify({ batch: [track()] }))).status, 200, "and after");
    assert.equal(collector.stats().good, 2);
  });
});
