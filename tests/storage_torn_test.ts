/**
 * The disk queue when its files or its disk are damaged (issue 10, "Torn
 * writes" and "Disk full or read-only folder"): truncated and corrupted
 * segments (seeded random offsets) keep every intact record and report what
 * was dropped; empty and garbage files are quarantined once; a disk that
 * refuses writes (ENOSPC from /dev/full) falls back to memory, said once;
 * a folder that cannot be written is an error at construction.
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
import {
  seeded,
  segmentBytes,
  segmentName,
  storedIds,
  storedMessage,
  withFolder,
  withServer,
} from "./fixtures/storage_helpers.ts";

const SEEDS = Number(process.env.TALLY_STORAGE_SEEDS ?? 8);
const ROOT = fileURLToPath(new URL("..", import.meta.url));

interface Report {
  reason: string;
  message: string;
  n: number;
}

function collecting(): { reports: Report[]; onError: (error: DeliveryError, messages: Message[]) => void } {
  const reports: Report[] = [];
  return {
    reports,
    onError: (error, messages) =>
      void reports.push({ reason: error.reason, message: error.message, n: messages.length }),
  };
}

/** Writes segment `id` of `n` messages `PREFIX-1..n`; returns the record ranges and the ids. */
function writeSegment(dir: string, id: number, prefix: string, n: number, open = false) {
  const messageIds = Array.from({ length: n }, (_, i) => `${prefix}-${i + 1}`);
  const { bytes, records } = segmentBytes(messageIds.map((m, i) => storedMessage(m, i)));
  const file = path.join(dir, segmentName(id, open));
  fs.writeFileSync(file, bytes);
  return { file, bytes, records, messageIds };
}

test(`a segment torn at a random offset keeps every whole record and cuts the tail (${SEEDS} seeds)`, async () => {
  for (let seed = 1; seed <= SEEDS; seed++) {
    const random = seeded(seed);
    await withFolder(async (dir) => {
      await withServer(async (collector) => {
        const sealed = writeSegment(dir, 1, `sealed${seed}`, 20);
        const open = writeSegment(dir, 2, `open${seed}`, 20, true);
        const cut = Math.floor(random() * open.bytes.length);
        fs.truncateSync(open.file, cut);
        const whole = open.records.filter(([, end]) => end <= cut).length;
        const lastEnd = whole === 0 ? 0 : open.records[whole - 1][1];
        const { reports, onError } = collecting();
        const storage = fileStorage(dir);
        const analytics = new Analytics({ writeKey: "K", host: collector.url, storage, onError });
        await analytics.flush();
        const expected = [...sealed.messageIds, ...open.messageIds.slice(0, whole)].sort();
        assert.deepEqual(storedIds(collector), expected, `seed ${seed}, cut at ${cut}`);
        const problems = storage.recovered!.problems;
        if (cut === lastEnd) {
          assert.deepEqual(problems, [], `seed ${seed}: a cut between records loses nothing`);
        } else if (whole === 0) {
          assert.equal(problems.length, 1);
          assert.equal(problems[0].kind, "unreadable", `seed ${seed}`);
          assert.ok(fs.existsSync(problems[0].quarantined!));
        } else {
          assert.equal(problems.length, 1, `seed ${seed}`);
          assert.equal(problems[0].kind, "torn");
          assert.equal(problems[0].kept, whole);
          assert.equal(problems[0].lostBytes, cut - lastEnd);
        }
        assert.equal(reports.filter((r) => r.reason === "storage").length, problems.length, "each problem reported");
        await analytics.close();
        assert.deepEqual(fs.readdirSync(dir).filter((f) => f.endsWith(".seg")), []);
      });
    });
  }
});

test(`bytes corrupted at random offsets inside a segment lose only the records they hit (${SEEDS} seeds)`, async () => {
  for (let seed = 1; seed <= SEEDS; seed++) {
    const random = seeded(1000 + seed);
    await withFolder(async (dir) => {
      await withServer(async (collector) => {
        const before = writeSegment(dir, 1, `a${seed}`, 10);
        const hit = writeSegment(dir, 2, `b${seed}`, 30);
        const after = writeSegment(dir, 3, `c${seed}`, 10);
        const original = hit.bytes.slice();
        const offsets = Array.from({ length: 3 }, () => Math.floor(random() * hit.bytes.length));
        for (const at of offsets) hit.bytes[at] ^= 1 + Math.floor(random() * 255);
        fs.writeFileSync(hit.file, hit.bytes);
        const intact = hit.records.map(([from, to]) => !offsets.some((at) => at >= from && at < to));
        const keptIds = hit.messageIds.filter((_, i) => intact[i]);
        const { reports, onError } = collecting();
        const storage = fileStorage(dir);
        const analytics = new Analytics({ writeKey: "K", host: collector.url, storage, onError });
        await analytics.flush();
        assert.deepEqual(
          storedIds(collector),
          [...before.messageIds, ...keptIds, ...after.messageIds].sort(),
          `seed ${seed}, offsets ${offsets}`,
        );
        const problems = storage.recovered!.problems;
        assert.equal(problems.length, 1, `seed ${seed}`);
        assert.equal(problems[0].file, segmentName(2));
        assert.equal(problems[0].kept, keptIds.length);
        const lastIntact = intact.lastIndexOf(true);
        const inside = intact.slice(0, lastIntact + 1).includes(false);
        if (inside) {
          // Unreadable stretches inside the file: the original is kept aside, byte for byte.
          assert.equal(problems[0].kind, "corrupt");
          assert.deepEqual(new Uint8Array(fs.readFileSync(problems[0].quarantined!)), hit.bytes);
        } else {
          assert.equal(problems[0].kind, keptIds.length === 0 ? "unreadable" : "torn");
        }
        assert.notDeepEqual(hit.bytes, original);
        const storageReports = reports.filter((r) => r.reason === "storage");
        assert.equal(storageReports.length, 1);
        assert.match(storageReports[0].message, new RegExp(`Cannot read all of ${segmentName(2)} in storage`));
        await analytics.close();
      });
    });
  }
});

test("an empty and a garbage segment are quarantined and reported once, never retried", async () => {
  await withFolder(async (dir) => {
    await withServer(async (collector) => {
      fs.writeFileSync(path.join(dir, segmentName(1)), "");
      const good = writeSegment(dir, 2, "good", 5);
      const garbage = new Uint8Array(5000);
      const random = seeded(7);
      for (let i = 0; i < garbage.length; i++) garbage[i] = Math.floor(random() * 256);
      fs.writeFileSync(path.join(dir, segmentName(3)), garbage);
      const { reports, onError } = collecting();
      const analytics = new Analytics({ writeKey: "K", host: collector.url, storage: fileStorage(dir), onError });
      await analytics.flush();
      assert.deepEqual(storedIds(collector), good.messageIds.sort());
      assert.deepEqual(reports.map((r) => [r.reason, r.n]), [["storage", 0], ["storage", 0]]);
      assert.match(reports[0].message, /000000000001\.seg .*the file is empty; the original is in .*quarantine/);
      assert.match(reports[1].message, /no intact record in its 5000 bytes/);
      assert.deepEqual(fs.readdirSync(path.join(dir, "quarantine")).sort(), [segmentName(1), segmentName(3)]);
      await analytics.close();

      // The next start finds nothing to report: quarantined files are not read again.
      const again = collecting();
      const next = new Analytics({
        writeKey: "K",
        host: collector.url,
        storage: fileStorage(dir),
        onError: again.onError,
      });
      await next.flush();
      await next.close();
      assert.deepEqual(again.reports, []);
    });
  });
});

test("a disk that refuses a write (ENOSPC) keeps the messages in memory, says so once, and uses the disk again after", {
  skip: process.platform !== "linux",
}, async () => {
  await withFolder(async (dir) => {
    await withServer(async (collector) => {
      const errors: string[] = [];
      const { reports, onError } = collecting();
      const analytics = new Analytics({
        writeKey: "K",
        host: collector.url,
        uploadSize: 5,
        storage: fileStorage(dir),
        onError,
        logger: { debug() {}, info() {}, warn() {}, error: (...a) => errors.push(a.join(" ")) },
      });
      // The first segment file is /dev/full: every write to it fails with ENOSPC, as on a full disk (Deno
      // refuses to open a device without --allow-all: a refused open is the same case to the client).
      fs.symlinkSync("/dev/full", path.join(dir, segmentName(1, true)));
      for (let i = 1; i <= 15; i++) analytics.track({ userId: "u", event: "Full", messageId: `full-${i}` });
      assert.equal(analytics.stats().memoryOnly, 5, "the first segment's messages are held in memory");
      assert.equal(errors.length, 2, errors.join("\n"));
      assert.match(errors[0], /^\[tally\] Cannot write to storage .*held in memory \(lost if the process dies\)/);
      if (!("Deno" in globalThis)) assert.match(errors[0], /ENOSPC/);
      assert.match(errors[1], /takes writes again/);
      assert.ok(!fs.existsSync(path.join(dir, segmentName(1, true))), "the failed segment is not left behind");
      const result = await analytics.flush();
      assert.equal(result.delivered, 15);
      assert.deepEqual(storedIds(collector), Array.from({ length: 15 }, (_, i) => `full-${i + 1}`).sort());
      assert.deepEqual(reports, []);
      await analytics.close();
    });
  });
});

test("a folder that cannot be written is a clear error at construction", async () => {
  await withFolder((dir) => {
    const probe = path.join(dir, "probe");
    fs.mkdirSync(probe, { mode: 0o555 });
    let chmodBinds = true;
    try {
      fs.writeFileSync(path.join(probe, "x"), "");
      chmodBinds = false; // root: chmod does not bind
    } catch { /* EACCES: it binds */ }
    if (!chmodBinds) {
      // Root writes through chmod 0555: a path under a regular file fails the same way for everyone (ENOTDIR).
      const file = path.join(dir, "a-file");
      fs.writeFileSync(file, "");
      const target = path.join(file, "sub");
      assert.throws(() => new Analytics({ writeKey: "K", storage: fileStorage(target) }), {
        message: `Cannot open storage ${target}: a part of its path is a file, not a folder`,
      });
    } else {
      const target = path.join(dir, "read-only");
      fs.mkdirSync(target, { mode: 0o555 });
      assert.throws(() => new Analytics({ writeKey: "K", storage: fileStorage(target) }), {
        message: `Cannot open storage ${target}: permission denied (the folder must be writable by this process)`,
      });
    }
    return Promise.resolve();
  });
});

test("Deno without --allow-write for the folder: the error at construction names the flag", {
  skip: !("Deno" in globalThis),
}, async () => {
  await withFolder(async (dir) => {
    const child = spawn(process.execPath, [
      "run",
      `--allow-read=${ROOT}`,
      fileURLToPath(new URL("./fixtures/storage_child.ts", import.meta.url)),
      dir,
      "http://127.0.0.1:9",
      "1",
    ], { cwd: ROOT, stdio: ["ignore", "pipe", "pipe"] });
    let stderr = "";
    child.stderr.on("data", (chunk) => void (stderr += chunk));
    const code = await new Promise<number | null>((resolve) => child.on("close", (c) => resolve(c)));
    assert.notEqual(code, 0);
    assert.match(stderr, new RegExp(`Cannot open storage ${dir}: Deno needs read and write access to it`));
    assert.match(stderr, /--allow-write=/);
  });
});
