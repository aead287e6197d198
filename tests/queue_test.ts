/** The byte-arena queue and the body builder: what goes in comes out, byte for byte. */
import { test } from "node:test";
import assert from "node:assert/strict";
import { encodeBody, envelopeBytes, MAX_BODY_BYTES } from "../lib/batch.ts";
import { Queue, sizeOf, split, textOf } from "../lib/queue.ts";

const SENT_AT = "2026-01-01T00:00:00.000Z";

/** Messages of varied sizes and scripts, enough to fill several 256 KB chunks. */
function messages(count: number): string[] {
  const units = ["a", "é", "€", "😀"];
  return Array.from({ length: count }, (_, i) => JSON.stringify({ i, text: units[i % 4].repeat((i * 7919) % 8000) }));
}

test("batches taken from the queue decode to exactly the messages pushed, across chunk boundaries", () => {
  const queue = new Queue();
  const sent = messages(400);
  for (const json of sent) assert.ok(queue.push(json, undefined) > 0);
  const envelope = envelopeBytes("KEY");
  const received: string[] = [];
  for (
    let batch = queue.take(100, MAX_BODY_BYTES, envelope, true);
    batch;
    batch = queue.take(100, MAX_BODY_BYTES, envelope, true)
  ) {
    const body = encodeBody(batch, SENT_AT, "KEY");
    assert.ok(body.length <= MAX_BODY_BYTES, `a body of ${body.length} bytes`);
    const decoded = JSON.parse(new TextDecoder().decode(body));
    assert.equal(decoded.sentAt, SENT_AT);
    assert.equal(decoded.writeKey, "KEY");
    assert.equal(decoded.batch.length, sizeOf(batch));
    for (let i = 0; i < sizeOf(batch); i++) assert.equal(textOf(batch, i), JSON.stringify(decoded.batch[i]));
    received.push(...decoded.batch.map((m: unknown) => JSON.stringify(m)));
  }
  assert.deepEqual(received, sent);
  assert.equal(queue.size, 0);
  assert.equal(queue.bytes, 0);
});

test("a split batch keeps every message, its order and its callbacks", () => {
  const queue = new Queue();
  const sent = messages(9);
  const called: number[] = [];
  sent.forEach((json, i) => queue.push(json, i % 3 === 0 ? () => void called.push(i) : undefined));
  const batch = queue.takeAll()!;
  const [a, b] = split(batch);
  assert.deepEqual([sizeOf(a), sizeOf(b)], [5, 4]);
  assert.equal(b.first, batch.first + 5);
  const texts = [a, b].flatMap((part) =>
    JSON.parse(new TextDecoder().decode(encodeBody(part, SENT_AT, undefined))).batch
  );
  assert.deepEqual(texts.map((m: unknown) => JSON.stringify(m)), sent);
  assert.deepEqual([...a.callbacks!.keys()], [0, 3]);
  assert.deepEqual([...b.callbacks!.keys()], [1]);
});

test("a message over 32768 UTF-8 bytes is refused by push and leaves nothing behind", () => {
  const queue = new Queue();
  assert.ok(queue.push('"small"', undefined) > 0);
  assert.equal(queue.push(JSON.stringify("€".repeat(11000)), undefined), -1);
  assert.equal(queue.push(JSON.stringify("x".repeat(40000)), undefined), -1);
  assert.equal(queue.size, 1);
  assert.equal(queue.bytes, 7);
  assert.equal(
    JSON.parse(new TextDecoder().decode(encodeBody(queue.takeAll()!, SENT_AT, undefined))).batch[0],
    "small",
  );
});
