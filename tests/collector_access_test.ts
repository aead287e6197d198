/**
 * Who the collector answers (issue 9, item 12 and section 3): it binds
 * loopback by default; the query API, DELETE, the stream and the inspector
 * answer only requests addressed to a name it listens on (no DNS rebinding)
 * and from its own origin; ingestion that carries an `Origin` is taken only
 * from loopback origins and those allowed; the write key is never stored or
 * served; and the write key is compared in constant time.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { Buffer } from "node:buffer";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { connect } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { type Collector, serve } from "../serve/mod.ts";
import { canWrite, delay, raw, tracks, withCollector } from "./fixtures/collector_helpers.ts";
import { hostAllowed, originAllowed } from "../serve/access.ts";
import { sameKey } from "../serve/auth.ts";

const track = tracks("a", "Access");

const batchBody = (): string => JSON.stringify({ batch: [track()] });

// ---- binding

test("the collector binds 127.0.0.1 by default, and tally serve says so", async () => {
  await withCollector({}, async (collector) => {
    assert.equal(collector.url, `http://127.0.0.1:${collector.port}`);
    // A wildcard bind would also take connections to other loopback addresses.
    const probe = "Deno" in globalThis &&
        Deno.permissions.querySync({ name: "net", host: "127.0.0.2" }).state !== "granted"
      ? undefined
      : await new Promise<string>((resolve) => {
        const socket = connect(collector.port, "127.0.0.2");
        socket.on("connect", () => {
          socket.destroy();
          resolve("connected");
        });
        socket.on("error", (error: Error & { code?: string }) => resolve(error.code ?? error.message));
      });
    if (probe !== undefined) assert.equal(probe, "ECONNREFUSED", "not listening on 127.0.0.2");
  });
  const out: string[] = [];
  const stop = new AbortController();
  const running = serve(["--port", "0", "--no-out"], {
    out: (l) => void out.push(l),
    err: (l) => void out.push(l),
    signal: stop.signal,
  });
  const end = Date.now() + 3000;
  while (out.length < 1 && Date.now() < end) await delay(10);
  stop.abort();
  assert.equal(await running, 0);
  assert.match(out[0], /^Tally collector listening on http:\/\/127\.0\.0\.1:\d+$/);
});

// ---- Host: DNS rebinding

test("the API, the stream and the inspector answer only requests addressed to a name the collector listens on", async () => {
  await withCollector({}, async (collector) => {
    await raw(collector, "POST", "/v1/batch", { "content-type": "application/json" }, batchBody());
    const port = collector.port;
    for (const host of [`127.0.0.1:${port}`, `localhost:${port}`, `[::1]:${port}`, "127.0.0.1", `LOCALHOST:${port}`]) {
      const answer = await raw(collector, "GET", "/api/events", { host });
      assert.equal(answer.status, 200, host);
    }
    for (const host of [`evil.example:${port}`, `127.0.0.1.evil.example:${port}`, `localhost.evil.example`, "0"]) {
      for (
        const [method, path] of [
          ["GET", "/api/events"],
          ["GET", "/api/stats"],
          ["GET", "/api/stream"],
          [
            "GET",
            "/",
          ],
          ["DELETE", "/api/events"],
          ["DELETE", "/api/events?status=good"],
        ]
      ) {
        const answer = await raw(collector, method, path, { host });
        assert.equal(answer.status, 403, `${method} ${path} for host ${JSON.stringify(host)}`);
        assert.match(
          answer.text,
          /Cannot answer a request addressed to .*: the collector answers only for 127\.0\.0\.1, localhost, \[::1\]/,
        );
      }
    }
    assert.equal(collector.stats().total, 1, "nothing was deleted");
  });
  await withCollector({ allowHosts: ["tally", "dev.box.internal"] }, async (collector) => {
    assert.equal((await raw(collector, "GET", "/api/stats", { host: `tally:${collector.port}` })).status, 200);
    assert.equal((await raw(collector, "GET", "/api/stats", { host: "DEV.box.internal" })).status, 200);
    assert.equal((await raw(collector, "GET", "/api/stats", { host: "evil.example" })).status, 403);
  });
});

test("hostAllowed: loopback names, the bound address, any IP address when bound to all, and the allowed names", () => {
  const loopback = { hostname: "127.0.0.1", allowHosts: [] };
  for (const host of ["127.0.0.1:8787", "localhost:8787", "localhost.:1", "[::1]:8787", "app.localhost:9", "[::1]"]) {
    assert.ok(hostAllowed(host, loopback), host);
  }
  for (const host of ["evil.example:8787", "192.168.1.5:8787", "[fe80::1]:8787", "localhostx", "", "[::1", "a:b:c"]) {
    assert.ok(!hostAllowed(host, loopback), host);
  }
  for (const hostname of ["0.0.0.0", "::"]) {
    const all = { hostname, allowHosts: [] };
    for (const host of ["192.168.1.5:8787", "10.0.0.2", "[fe80::1]:8787", "localhost:8787"]) {
      assert.ok(hostAllowed(host, all), `${hostname}: ${host}`);
    }
    for (const host of ["evil.example:8787", "192.168.1.5.nip.io:8787", "999.1.1.1", "1.2.3"]) {
      assert.ok(!hostAllowed(host, all), `${hostname}: ${host}`);
    }
  }
  assert.ok(hostAllowed("192.168.1.5:80", { hostname: "192.168.1.5", allowHosts: [] }));
  assert.ok(hostAllowed("[fd00::5]:80", { hostname: "fd00::5", allowHosts: [] }));
  assert.ok(hostAllowed("mybox:80", { hostname: "mybox", allowHosts: [] }));
  assert.ok(!hostAllowed("192.168.1.6:80", { hostname: "192.168.1.5", allowHosts: [] }));
});

// ---- Origin

test("the API, DELETE and the stream refuse a foreign Origin with 403; same-origin and Origin-less requests pass", async () => {
  await withCollector({}, async (collector) => {
    await raw(collector, "POST", "/v1/batch", { "content-type": "application/json" }, batchBody());
    const own = `http://127.0.0.1:${collector.port}`;
    for (
      const origin of [
        "https://evil.example",
        "http://localhost:3000",
        "null",
        `http://127.0.0.1:${collector.port + 1}`,
      ]
    ) {
      for (
        const [method, path] of [["GET", "/api/events"], ["GET", "/api/stream"], ["DELETE", "/api/events"], [
          "DELETE",
          "/api/events?status=good",
        ], ["POST", "/api/events"]]
      ) {
        const answer = await raw(collector, method, path, { origin, "content-type": "text/plain" }, "");
        assert.equal(answer.status, 403, `${method} ${path} from ${origin}`);
        assert.match(
          answer.text,
          /Cannot answer .* from the page at .*: only the collector's own pages may use its API/,
        );
      }
    }
    assert.equal(collector.stats().total, 1, "nothing was deleted");
    assert.equal((await raw(collector, "GET", "/api/events", { origin: own })).status, 200, "same origin");
    assert.equal((await raw(collector, "GET", "/api/stats")).status, 200, "no Origin: curl, scripts");
    const deleted = await raw(collector, "DELETE", "/api/events", { origin: own });
    assert.equal(deleted.status, 204, "the inspector's Clear");
    assert.equal(collector.stats().total, 0);
  });
});

test("a form-style text/plain POST from another site stores nothing and deletes nothing", async () => {
  await withCollector({}, async (collector) => {
    await raw(collector, "POST", "/v1/batch", { "content-type": "application/json" }, batchBody());
    const form = { origin: "https://evil.example", "content-type": "text/plain", referer: "https://evil.example/x" };
    for (const path of ["/v1/track", "/v1/batch", "/api/events", "/api/events?status=good"]) {
      const body = path === "/v1/track" ? JSON.stringify(track({ event: "Forged" })) : batchBody();
      const answer = await raw(collector, "POST", path, form, body);
      assert.equal(answer.status, 403, path);
      assert.equal(JSON.parse(answer.text).success, false);
    }
    assert.equal(collector.stats().total, 1);
    assert.deepEqual(collector.events().map((e) => e.message.event), ["Access"]);
  });
});

test("ingestion with an Origin is taken from loopback origins and --allow-origin ones only; without one, always", async () => {
  await withCollector({ allowOrigins: ["https://staging.example.com", "null"] }, async (collector) => {
    const json = { "content-type": "application/json" };
    const taken = [
      "http://localhost:3000",
      "http://127.0.0.1:5173",
      "http://[::1]:8080",
      "http://app.localhost:3000",
      "https://localhost",
      "https://staging.example.com",
      "null",
    ];
    for (const origin of taken) {
      const answer = await raw(collector, "POST", "/v1/batch", { ...json, origin }, batchBody());
      assert.equal(answer.status, 200, origin);
      assert.equal(answer.headers["access-control-allow-origin"], origin, `${origin}: a browser may read the answer`);
    }
    const refused = [
      "https://evil.example",
      "http://localhost.evil.example:3000",
      "http://127.0.0.1.evil.example",
      "https://staging.example.com.evil.example",
      "http://staging.example.com",
      "file://",
    ];
    for (const origin of refused) {
      const answer = await raw(collector, "POST", "/v1/batch", { ...json, origin }, batchBody());
      assert.equal(answer.status, 403, origin);
      assert.match(
        JSON.parse(answer.text).error,
        /^Cannot accept events from the page at .*: only loopback origins .* and those given with --allow-origin/,
      );
      assert.equal(answer.headers["access-control-allow-origin"], undefined);
    }
    assert.equal((await raw(collector, "POST", "/v1/batch", json, batchBody())).status, 200, "no Origin: server SDKs");
    assert.equal((await raw(collector, "POST", "/v1/batch", { ...json, host: "tally:8787" }, batchBody())).status, 200);
    assert.equal(collector.stats().good, taken.length + 2);
    assert.equal(collector.stats().requests, taken.length + refused.length + 2, "refused requests are counted");

    // A browser's preflight for a JSON POST: answered for the origins taken, refused for others.
    const preflight = (origin: string) =>
      raw(collector, "OPTIONS", "/v1/batch", {
        origin,
        "access-control-request-method": "POST",
        "access-control-request-headers": "content-type, authorization",
      });
    const ok = await preflight("http://localhost:3000");
    assert.equal(ok.status, 204);
    assert.equal(ok.headers["access-control-allow-origin"], "http://localhost:3000");
    assert.match(String(ok.headers["access-control-allow-headers"]), /authorization/);
    assert.match(String(ok.headers["access-control-allow-methods"]), /POST/);
    assert.equal((await preflight("https://evil.example")).status, 403);
    assert.equal((await raw(collector, "OPTIONS", "/api/events", { origin: "https://evil.example" })).status, 403);
  });
});

test("originAllowed: loopback origins of any port and scheme, the allowed ones exactly", () => {
  const allowed = ["https://staging.example.com"];
  for (
    const origin of [
      "http://localhost:3000",
      "http://127.0.0.1:5173",
      "http://127.8.9.10",
      "http://[::1]:1",
      "https://a.b.localhost",
    ]
  ) {
    assert.ok(originAllowed(origin, allowed), origin);
  }
  for (
    const origin of ["http://localhost.evil", "http://127.0.0.1.evil", "ftp://localhost", "null", "http://[::2]", ""]
  ) {
    assert.ok(!originAllowed(origin, allowed), origin);
  }
  assert.ok(originAllowed("https://staging.example.com", allowed));
  assert.ok(originAllowed("HTTPS://Staging.Example.com", allowed), "origins compare case-insensitively");
  assert.ok(!originAllowed("https://staging.example.com:444", allowed));
});

test("tally serve --allow-origin is repeatable and takes only origins; --allow-host takes names", async () => {
  const cases: [string[], RegExp][] = [
    [
      ["--allow-origin", "localhost:3000"],
      /--allow-origin must be an origin such as http:\/\/localhost:3000, got "localhost:3000"/,
    ],
    [["--allow-origin", "https://a.example/path"], /--allow-origin must be an origin/],
    [["--allow-origin"], /--allow-origin needs a value/],
    [["--allow-host", "http://x"], /--allow-host must be a host name such as tally or dev\.local, got "http:\/\/x"/],
  ];
  for (const [args, message] of cases) {
    const err: string[] = [];
    const code = await serve([...args, "--no-out"], { out: () => {}, err: (l) => void err.push(l) });
    assert.equal(code, 2, args.join(" "));
    assert.equal(err.length, 1);
    assert.match(err[0], message);
  }
  const help: string[] = [];
  await serve(["--help"], { out: (l) => void help.push(l), err: () => {} });
  assert.match(help.join("\n"), /--allow-origin ORIGIN[\s\S]*--allow-host NAME/);

  const out: string[] = [];
  const stop = new AbortController();
  const running = serve([
    "--port",
    "0",
    "--no-out",
    "--quiet",
    "--allow-origin",
    "https://a.example",
    "--allowOrigin=https://b.example:8443",
  ], { out: (l) => void out.push(l), err: (l) => void out.push(l), signal: stop.signal });
  const end = Date.now() + 3000;
  while (!out.some((line) => line.startsWith("Press Ctrl-C")) && Date.now() < end) await delay(10);
  try {
    const url = /listening on (http:\/\/\S+)/.exec(out[0])?.[1];
    assert.ok(url, out.join("\n"));
    assert.ok(out.includes("Accepting events from pages at https://a.example, https://b.example:8443"), out.join("\n"));
    const port = Number(new URL(url).port);
    const fake = { port } as Collector;
    for (const origin of ["https://a.example", "https://b.example:8443"]) {
      assert.equal((await raw(fake, "POST", "/v1/batch", { origin }, batchBody())).status, 200, origin);
    }
    assert.equal((await raw(fake, "POST", "/v1/batch", { origin: "https://c.example" }, batchBody())).status, 403);
  } finally {
    stop.abort();
    assert.equal(await running, 0);
  }
});

// ---- the write key

test("a write key sent in the body or in a message is never stored or served: memory, NDJSON, API, stream", {
  skip: canWrite ? false : "needs --allow-write on Deno",
}, async () => {
  const dir = mkdtempSync(join(tmpdir(), "tally-access-"));
  const key = "wk_never_SHOWN_93";
  const log: string[] = [];
  try {
    const file = join(dir, "events.ndjson");
    await withCollector({ out: file, log: (line) => void log.push(line) }, async (collector) => {
      const stream = await fetch(`${collector.url}/api/stream`);
      const reader = stream.body!.pipeThrough(new TextDecoderStream()).getReader();
      let streamed = "";
      const pump = (async () => {
        for (;;) {
          const { value, done } = await reader.read().catch(() => ({ value: undefined, done: true }));
          if (done) return;
          streamed += value;
        }
      })();
      const json = { "content-type": "application/json" };
      await raw(
        collector,
        "POST",
        "/v1/batch",
        json,
        JSON.stringify({ batch: [track(), track({ writeKey: key })], writeKey: key }),
      );
      await raw(collector, "POST", "/v1/track", json, JSON.stringify(track({ writeKey: key, event: undefined })));
      await raw(
        collector,
        "POST",
        "/v1/identify",
        json,
        JSON.stringify({ messageId: "i", userId: "u", writeKey: key }),
      );
      assert.equal(collector.stats().total, 4);
      for (const event of collector.events()) assert.ok(!("writeKey" in event.message), JSON.stringify(event.message));
      assert.ok(!JSON.stringify(collector.events()).includes(key), "not in memory");
      const api = await raw(collector, "GET", "/api/events");
      assert.ok(!api.text.includes(key) && api.text.includes("Access"), "not in GET /api/events");
      const end = Date.now() + 3000;
      while ((streamed.match(/event: message/g) ?? []).length < 4 && Date.now() < end) await delay(10);
      assert.equal((streamed.match(/event: message/g) ?? []).length, 4);
      assert.ok(!streamed.includes(key), "not in the stream");
      await reader.cancel();
      await pump;
    });
    const text = readFileSync(file, "utf8");
    assert.equal(text.trimEnd().split("\n").length, 4);
    assert.ok(!text.includes(key), "not in the NDJSON file");
    assert.ok(!log.join("\n").includes(key), "not in the log");
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test("--write-key is compared in constant time: digests, so where two keys differ does not change the time", () => {
  assert.ok(sameKey("SECRET", "SECRET"));
  for (const other of ["SECRE", "SECRETX", "secret", "SECRET ", "", "SÉCRET", "TECRES"]) {
    assert.ok(!sameKey(other, "SECRET"), other);
  }
  assert.ok(!sameKey(undefined, "SECRET"));
  assert.ok(!sameKey(42 as unknown as string, "SECRET"));

  // A plain comparison stops at the first differing character: with 1 MB keys, a key wrong at its first
  // character is rejected hundreds of times faster than one wrong at its last. Here both take the same time.
  const secret = "k".repeat(1024 * 1024);
  const early = "x" + secret.slice(1);
  const late = secret.slice(0, -1) + "x";
  const time = (candidate: string): number => {
    const runs: number[] = [];
    for (let i = 0; i < 15; i++) {
      const started = performance.now();
      for (let j = 0; j < 4; j++) sameKey(candidate, secret);
      runs.push(performance.now() - started);
    }
    return runs.sort((a, b) => a - b)[7];
  };
  time(early); // warm up
  const [a, b] = [time(early), time(late)];
  const ratio = Math.max(a, b) / Math.min(a, b);
  assert.ok(ratio < 2, `wrong at the first character: ${a.toFixed(3)} ms, at the last: ${b.toFixed(3)} ms`);
  assert.ok(Buffer.byteLength(secret) === 1024 * 1024);
});

test("with writeKey, a key wrong in its last character or longer is refused, the right one accepted", async () => {
  await withCollector({ writeKey: "wk_right" }, async (collector) => {
    const json = { "content-type": "application/json" };
    for (const key of ["wk_righT", "wk_right2", "wk_righ", ""]) {
      const auth = { ...json, authorization: "Basic " + btoa(`${key}:`) };
      assert.equal((await raw(collector, "POST", "/v1/batch", auth, batchBody())).status, 401, key);
    }
    const body = JSON.stringify({ batch: [track()], writeKey: { toString: "wk_right" } });
    assert.equal((await raw(collector, "POST", "/v1/batch", json, body)).status, 401, "a key that is not a string");
    const good = { ...json, authorization: "Basic " + btoa("wk_right:") };
    assert.equal((await raw(collector, "POST", "/v1/batch", good, batchBody())).status, 200);
    assert.equal(collector.stats().good, 1);
  });
});
