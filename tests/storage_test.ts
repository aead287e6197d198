/**
 * The disk queue (`storage: fileStorage(dir)`, issue 10 item 1) over real
 * HTTP against the collector: delivery and deletion, a crash (a child
 * killed with SIGKILL) and the next start, the lock, close({ timeout })
 * keeping what it could not send, bounds and whenFull, and validation.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import fs from "node:fs";
import path from "node:path";
import process from "node:process";
import { spawn } from "node:child_process";
import { fileURLToPath } from "node:url";
import { Analytics, type DeliveryError, type Message } from "../mod.ts";
import { fileStorage } from "../storage.ts";
import { delay, ids, storedIds, until, withFolder, withServer } from "./fixtures/storage_helpers.ts";
import { childArgv } from "./fixtures/child_argv.ts";

const ROOT = fileURLToPath(new URL("..", import.meta.url));
const CHILD = fileURLToPath(new URL("./fixtures/storage_child.ts", import.meta.url));

const segments = (dir: string): string[] => fs.readdirSync(dir).filter((name) => name.endsWith(".seg")).sort();

interface Reports {
  errors: { reason: string; message: string; n: number; ids: string[] }[];
  onError: (error: DeliveryError, messages: Message[]) => void;
  count(reason: string): number;
}

function reports(): Reports {
  const errors: Reports["errors"] = [];
  return {
    errors,
    onError: (error, messages) =>
      void errors.push({
        reason: error.reason,
        message: error.message,
        n: messages.length,
        ids: messages.map((m) => String(m.messageId)),
      }),
    count: (reason) => errors.filter((e) => e.reason === reason).reduce((sum, e) => sum + e.n, 0),
  };
}

function track(analytics: Analytics, prefix: string, n: number, from = 1): void {
  for (let i = from; i < from + n; i++) {
    analytics.track({ userId: "u1", event: "Stored", messageId: `${prefix}-${i}`, properties: { i } });
  }
}

test("a disk-backed client delivers every message with its messageId and deletes each segment once acknowledged", async () => {
  await withFolder(async (dir) => {
    await withServer(async (collector) => {
      const r = reports();
      const analytics = new Analytics({
        writeKey: "K",
        host: collector.url,
        storage: fileStorage(dir),
        onError: r.onError,
      });
      track(analytics, "live", 250);
      // Written before the calls returned: two full segments sealed, the rest in the open one.
      assert.deepEqual(segments(dir), ["000000000001.seg", "000000000002.seg", "open-000000000003.seg"]);
      const result = await analytics.flush();
      assert.deepEqual(result, { delivered: 250, failed: 0, pending: 0, kept: 0 });
      assert.deepEqual(storedIds(collector), ids("live", 250));
      assert.deepEqual(segments(dir), []);
      assert.equal(collector.stats().requests, 3, "one sealed segment is one request");
      await analytics.close();
      assert.ok(!fs.existsSync(path.join(dir, "lock")), "close() releases the lock");
      assert.deepEqual(r.errors, []);
    });
  });
});

test("a 413 split deletes the segment only when both halves are settled", async () => {
  await withFolder(async (dir) => {
    await withServer(async (collector) => {
      collector.script({ status: 413 });
      const analytics = new Analytics({ writeKey: "K", host: collector.url, storage: fileStorage(dir) });
      track(analytics, "split", 10);
      const result = await analytics.flush();
      assert.equal(result.delivered, 10);
      assert.deepEqual(storedIds(collector), ids("split", 10));
      assert.deepEqual(segments(dir), []);
      await analytics.close();
    });
  });
});

/** Runs the child (with only the folder's permissions on Deno) and waits until it has tracked `n`; it then waits to be killed. */
async function trackingChild(
  dir: string,
  url: string,
  n: number,
  durability: string,
): Promise<{ pid: number; crash: () => Promise<void> }> {
  const args = childArgv(CHILD, [dir, url, String(n), durability], [
    "--allow-net=127.0.0.1",
    `--allow-read=${dir},${ROOT}`,
    `--allow-write=${dir}`,
  ]);
  const child = spawn(process.execPath, args, {
    cwd: ROOT,
    stdio: ["ignore", "pipe", "pipe"],
  });
  let stdout = "";
  let stderr = "";
  child.stdout.on("data", (chunk) => void (stdout += chunk));
  child.stderr.on("data", (chunk) => void (stderr += chunk));
  const closed = new Promise<void>((resolve) => child.on("close", () => resolve()));
  const guard = setTimeout(() => child.kill("SIGKILL"), 20_000);
  const crash = async (): Promise<void> => {
    child.kill("SIGKILL");
    await closed;
    clearTimeout(guard);
    assert.equal(child.signalCode, "SIGKILL");
  };
  try {
    await until(() => stdout.includes(`tracked ${n}`) || child.exitCode !== null, 20_000, "the child to track");
    assert.ok(stdout.includes(`tracked ${n}`), `the child tracked (stderr: ${stderr})`);
  } catch (error) {
    await crash();
    throw error;
  }
  return { pid: child.pid!, crash };
}

/** Runs the child, waits until it has tracked, and kills it with SIGKILL: a crash. */
async function crashChild(dir: string, url: string, n: number, durability: string): Promise<number> {
  const child = await trackingChild(dir, url, n, durability);
  await child.crash();
  return child.pid;
}

for (const durability of ["interval", "always"] as const) {
  test(`messages of a process killed with SIGKILL are sent by the next client on the folder (durability: ${durability})`, async () => {
    await withFolder(async (dir) => {
      await withServer(async (collector) => {
        // Nothing is acknowledged while the child runs: every request hangs.
        collector.setDefaultReply({ hang: true });
        const n = 130;
        const pid = await crashChild(dir, collector.url, n, durability);
        assert.ok(fs.existsSync(path.join(dir, "lock")), "the dead child's lock is left behind");
        collector.setDefaultReply(undefined);
        collector.clear();
        const debug: string[] = [];
        const r = reports();
        const analytics = new Analytics({
          writeKey: "K",
          host: collector.url,
          storage: fileStorage(dir),
          onError: r.onError,
          debug: true,
          logger: { debug: (...a) => debug.push(a.join(" ")), info() {}, warn() {}, error() {} },
        });
        assert.ok(debug.some((line) => line.includes(`taking over the lock of pid ${pid}`)), debug.join("\n"));
        assert.equal(analytics.stats().queued, n, "recovered messages are queued at start");
        const result = await analytics.flush();
        assert.equal(result.delivered, n);
        assert.deepEqual(storedIds(collector), ids("crash", n), "every message, ids unchanged");
        assert.equal(collector.events({ limit: 1_000_000 }).filter((e) => e.duplicate).length, 0);
        assert.deepEqual(segments(dir), []);
        await analytics.close();
        assert.deepEqual(r.errors, []);
      });
    });
  });
}

test("a second client on the same folder fails at construction, as does one while another live process holds it; stale locks are taken over", async () => {
  await withFolder(async (dir) => {
    const first = new Analytics({ writeKey: "K", send: false, storage: fileStorage(dir) });
    assert.throws(
      () => new Analytics({ writeKey: "K", send: false, storage: fileStorage(dir) }),
      { message: `Cannot open storage ${dir}: a client of this process (pid ${process.pid}) already uses it` },
    );
    await first.close();
    // A lock left by an earlier process with this very pid (a restarted container's pid 1) is taken over.
    fs.writeFileSync(path.join(dir, "lock"), `${process.pid} 1\n`);
    const second = new Analytics({ writeKey: "K", send: false, storage: fileStorage(dir) });
    await second.close();
    // Another process that runs holds it: a child on the folder, alive.
    await withServer(async (collector) => {
      collector.setDefaultReply({ hang: true });
      const child = await trackingChild(dir, collector.url, 1, "interval");
      try {
        assert.throws(
          () => new Analytics({ writeKey: "K", send: false, storage: fileStorage(dir) }),
          { message: `Cannot open storage ${dir}: another process (pid ${child.pid}) is using it` },
        );
      } finally {
        await child.crash();
      }
      collector.setDefaultReply(undefined);
    });
    // A lock with no pid (a process killed between creating and writing it) is stale.
    fs.writeFileSync(path.join(dir, "lock"), "");
    const third = new Analytics({ writeKey: "K", send: false, storage: fileStorage(dir) });
    assert.match(fs.readFileSync(path.join(dir, "lock"), "utf8"), new RegExp(`^${process.pid}( \\d+)?\n$`));
    await third.close();
  });
});

test("with send: false a client takes the folder but sends nothing, not even what an earlier process left; it stays kept", async () => {
  await withFolder(async (dir) => {
    await withServer(async (collector) => {
      collector.setDefaultReply({ hang: true });
      await crashChild(dir, collector.url, 5, "always");
      collector.setDefaultReply(undefined);
      collector.clear();
      const quiet = new Analytics({ writeKey: "K", host: collector.url, send: false, storage: fileStorage(dir) });
      assert.deepEqual(await quiet.flush({ timeout: 1000 }), { delivered: 0, failed: 0, pending: 5 });
      const closed = await quiet.close({ timeout: 1000 });
      assert.equal(closed.kept, 5, JSON.stringify(closed));
      assert.equal(collector.events().length, 0, "nothing was sent");
      const next = new Analytics({ writeKey: "K", host: collector.url, storage: fileStorage(dir) });
      assert.equal((await next.flush()).delivered, 5);
      assert.deepEqual(storedIds(collector), ids("crash", 5));
      await next.close();
    });
  });
});

test("close({ timeout }) with the server down keeps what it could not send on disk, and the next start sends it", async () => {
  await withFolder(async (dir) => {
    await withServer(async (collector) => {
      collector.setDefaultReply({ status: 503 });
      const r = reports();
      const analytics = new Analytics({
        writeKey: "K",
        host: collector.url,
        storage: fileStorage(dir),
        onError: r.onError,
      });
      track(analytics, "kept", 520);
      const result = await analytics.close({ timeout: 300 });
      assert.equal(result.delivered, 0);
      assert.equal(result.failed, 0);
      assert.equal(result.kept, 520, "every message is reported as kept");
      assert.equal(analytics.stats().kept, 520);
      assert.deepEqual(r.errors, [], "kept messages are not lost, so onError is not called");
      assert.ok(segments(dir).length >= 6 && segments(dir).every((name) => !name.startsWith("open-")));

      collector.setDefaultReply(undefined);
      collector.clear();
      const next = new Analytics({ writeKey: "K", host: collector.url, storage: fileStorage(dir), onError: r.onError });
      const sent = await next.flush();
      assert.equal(sent.delivered, 520);
      assert.deepEqual(storedIds(collector), ids("kept", 520));
      assert.deepEqual(segments(dir), []);
      await next.close();
      assert.deepEqual(r.errors, []);
    });
  });
});

test("whenFull: drop-oldest drops the oldest waiting segment, drop-newest the new message; every drop is reported", async () => {
  for (const whenFull of ["drop-oldest", "drop-newest"] as const) {
    await withFolder(async (dir) => {
      await withServer(async (collector) => {
        collector.setDefaultReply({ hang: true }); // 4 segments stay in flight; the rest wait on disk
        const r = reports();
        const storage = fileStorage(dir, { maxStorageBytes: 20_000, whenFull });
        const analytics = new Analytics({
          writeKey: "K",
          host: collector.url,
          uploadSize: 10,
          storage,
          onError: r.onError,
          timeout: 0,
        });
        const n = 400;
        track(analytics, whenFull, n);
        await delay(20);
        const stats = analytics.stats();
        assert.ok(stats.storedBytes! <= 20_000, `${stats.storedBytes} bytes on disk`);
        const dropped = r.count("queue_full");
        assert.ok(dropped > 0, "messages were dropped");
        if (whenFull === "drop-newest") {
          assert.equal(stats.dropped, dropped);
          assert.deepEqual(r.errors.flatMap((e) => e.ids).sort(), ids(whenFull, dropped, n - dropped + 1));
        } else {
          assert.equal(stats.failed, dropped);
          assert.ok(r.errors.every((e) => e.n === 10 && /whenFull: drop-oldest/.test(e.message)));
        }
        const result = await analytics.close({ timeout: 100 });
        assert.equal(dropped + result.kept!, n, "every message was either dropped (reported) or kept");
      });
    });
  }
});

test("segments older than maxStorageAge are reported as expired, not sent", async () => {
  await withFolder(async (dir) => {
    await withServer(async (collector) => {
      collector.setDefaultReply({ status: 503 });
      const first = new Analytics({ writeKey: "K", host: collector.url, storage: fileStorage(dir) });
      track(first, "old", 30);
      assert.equal((await first.close({ timeout: 50 })).kept, 30);
      collector.setDefaultReply(undefined);
      await delay(30);
      const r = reports();
      const next = new Analytics({
        writeKey: "K",
        host: collector.url,
        storage: fileStorage(dir, { maxStorageAge: 10 }),
        onError: r.onError,
      });
      await next.flush();
      assert.equal(next.stats().failed, 30);
      assert.equal(r.count("expired"), 30);
      assert.ok(r.errors.every((e) => /longer than maxStorageAge \(10 ms\)/.test(e.message)), r.errors[0]?.message);
      assert.equal(collector.stats().total, 0);
      assert.deepEqual(segments(dir), []);
      await next.close();
    });
  });
});

test("storage must be the object fileStorage(dir) returns; fileStorage checks its options", () => {
  assert.throws(
    () => new Analytics({ writeKey: "K", storage: "./.tally" as never }),
    {
      name: "TypeError",
      message:
        'Cannot set storage: expected the object that fileStorage(dir) returns (imported from "@tally/analytics/storage"), got the string "./.tally"',
    },
  );
  assert.throws(
    () => fileStorage("./x", { durability: "sometimes" as never }),
    /durability must be "always" or "interval"/,
  );
  assert.throws(() => fileStorage("./x", { maxStorageBytes: 0 }), RangeError);
  assert.throws(() => fileStorage("./x", { whenFull: "drop-all" as never }), TypeError);
});
