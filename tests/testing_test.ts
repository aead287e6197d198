/**
 * `@tally/analytics/testing`: the recorder's clients take the real path
 * (validation, serialization, batching, gzip, retries) and their requests end
 * in memory, where the helpers find and assert on them.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { Analytics, type DeliveryError, type Message, ValidationError, VERSION } from "../mod.ts";
import { AssertionError, Recorder, TEST_WRITE_KEY } from "../testing.ts";

/** Runs `fn` and returns the AssertionError it throws. */
function assertionFrom(fn: () => unknown): AssertionError {
  try {
    fn();
  } catch (error) {
    assert.ok(error instanceof AssertionError, `expected an AssertionError, got ${error}`);
    return error;
  }
  throw new Error("expected an AssertionError, nothing was thrown");
}

test("recorder.client() records every call type as sent, with the library context and the returned messageIds", async () => {
  const recorder = new Recorder();
  const analytics = recorder.client();
  const ids = [
    analytics.identify("019mr8mf4r", { email: "john@example.com", friends: 30 }),
    analytics.track("f4ca124298", "Signed Up", { plan: "Enterprise" }),
    analytics.page("user_id", "Docs", "Python", { url: "http://segment.com" }),
    analytics.screen("user_id", "Settings", "Brightness", { from: "Home Screen" }),
    analytics.group("user_id", "group_id", { name: "Initech" }),
    analytics.alias("92734232-2342423423-973945", "1234"),
  ];
  const messages = await recorder.flush();
  assert.deepEqual(messages.map((m) => m.type), ["identify", "track", "page", "screen", "group", "alias"]);
  assert.deepEqual(messages.map((m) => m.messageId), ids);
  for (const message of messages) {
    assert.deepEqual(message.context.library, { name: "@tally/analytics", version: VERSION });
  }
  assert.equal(messages[2].category, "Docs");
  assert.equal(messages[2].name, "Python");
  assert.equal(recorder.requests.length, 1, "one batch");
});

test("the recorded request carries the wire headers and envelope of the test write key", async () => {
  const recorder = new Recorder();
  recorder.client().track("u1", "Signed Up");
  await recorder.flush();
  const [request] = recorder.requests;
  assert.equal(request.method, "POST");
  assert.equal(request.url, "https://api.segment.io/v1/batch");
  assert.equal(request.status, 200);
  assert.equal(request.headers["content-type"], "application/json");
  assert.equal(request.headers.authorization, `Basic ${btoa(`${TEST_WRITE_KEY}:`)}`);
  assert.match(request.body?.sentAt ?? "", /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$/);
  assert.equal(request.body?.batch.length, 1);
});

test("a gzipped request is decoded, and its bytes on the wire are the compressed size", async () => {
  const recorder = new Recorder();
  const analytics = recorder.client({ gzip: true });
  for (let i = 0; i < 50; i++) analytics.track("u1", "Item Viewed", { i, sku: "SKU-0000-0000", title: "A long title" });
  await recorder.flush();
  const [request] = recorder.requests;
  assert.equal(request.headers["content-encoding"], "gzip");
  assert.equal(request.body?.batch.length, 50);
  const plain = new TextEncoder().encode(JSON.stringify(request.body)).byteLength;
  assert.ok(request.bytes < plain / 3, `${request.bytes} compressed bytes for ${plain} plain`);
  assert.equal(recorder.find({ event: "Item Viewed" }).length, 50);
});

test("messages are batched as the real client batches them", async () => {
  const recorder = new Recorder();
  const analytics = recorder.client({ uploadSize: 100 });
  for (let i = 0; i < 250; i++) analytics.track("u1", "Tick", { i });
  await recorder.flush();
  assert.deepEqual(recorder.requests.map((r) => r.body?.batch.length), [100, 100, 50]);
  assert.deepEqual(recorder.messages.map((m) => m.properties?.i), Array.from({ length: 250 }, (_, i) => i));
});

test("programmer errors still throw at the call, and nothing is recorded for them", async () => {
  const recorder = new Recorder();
  const analytics = recorder.client();
  assert.throws(() => analytics.track({ event: "No User" } as never), ValidationError);
  assert.throws(() => analytics.track("u1", "Old", {}, { timestamp: "2015-01-05T00:00:00" }), /zone/);
  await recorder.flush();
  recorder.assertNotSent();
  assert.equal(recorder.requests.length, 0);
});

test("find() matches type, event, ids as strings, and properties, traits and context as subsets", async () => {
  const recorder = new Recorder();
  const analytics = recorder.client();
  const when = new Date(Date.UTC(2024, 0, 2, 3, 4, 5));
  analytics.track(42, "Order Completed", {
    total: 30,
    items: [{ sku: "A1", qty: 2 }, { sku: "B2", qty: 1 }],
    shipping: { method: "express", address: { city: "Lyon" } },
    placedAt: when,
  }, { context: { ip: "1.2.3.4" } });
  analytics.track("u2", "Order Completed", { total: 10, items: [] });
  analytics.identify(42, { plan: "Pro", email: "a@example.com" });
  await recorder.flush();

  assert.equal(recorder.find().length, 3);
  assert.equal(recorder.find({ type: "track" }).length, 2);
  assert.equal(recorder.find({ userId: 42 }).length, 2, "a numeric id matches the string it is sent as");
  assert.equal(recorder.find({ event: "Order Completed", userId: "42" }).length, 1);
  assert.equal(recorder.find({ properties: { shipping: { address: { city: "Lyon" } } } }).length, 1);
  assert.equal(recorder.find({ properties: { items: [{ sku: "A1" }, { sku: "B2" }] } }).length, 1);
  assert.equal(recorder.find({ properties: { items: [{ sku: "A1" }] } }).length, 0, "arrays match element by element");
  assert.equal(recorder.find({ properties: { placedAt: when } }).length, 1, "a Date matches its ISO string");
  assert.equal(recorder.find({ context: { ip: "1.2.3.4" } }).length, 1);
  assert.equal(recorder.find({ traits: { plan: "Pro" } }).length, 1);
  assert.equal(recorder.find({ traits: { plan: "Free" } }).length, 0);
  assert.equal(recorder.find({ properties: { total: 10 }, userId: "42" }).length, 0, "every field must match");
  assert.equal(recorder.find((m: Message) => Number(m.properties?.total) > 20).length, 1, "a predicate");
  assert.throws(() => recorder.find("track" as never), TypeError);
});

test("assertSent() returns the first match, checks times, and explains a miss with what was delivered", async () => {
  const recorder = new Recorder();
  const analytics = recorder.client();
  analytics.track("u1", "Signed Up", { plan: "Free" });
  analytics.track("u1", "Signed Up", { plan: "Pro" });
  await recorder.flush();

  assert.equal(recorder.assertSent({ event: "Signed Up" }).properties?.plan, "Free");
  recorder.assertSent({ event: "Signed Up" }, { times: 2 });
  const times = assertionFrom(() => recorder.assertSent({ event: "Signed Up" }, { times: 1 }));
  assert.match(times.message, /Expected 1 message matching .*found 2/);

  const miss = assertionFrom(() => recorder.assertSent({ event: "Signed Up", properties: { plan: "Enterprise" } }));
  assert.equal(miss.name, "AssertionError");
  assert.match(miss.message, /found 0/);
  assert.match(miss.message, /track "Signed Up" userId=u1 properties=\{"plan":"Free"\}/);
  assert.match(miss.message, /properties\.plan: expected "Enterprise", got "Free"/);
});

test("assertTracked() and assertIdentified() are assertSent() for the two commonest calls", async () => {
  const recorder = new Recorder();
  const analytics = recorder.client();
  analytics.identify(7, { email: "a@example.com", name: "A" });
  analytics.track("7", "Signed Up", { plan: "Pro", coupon: "X" });
  await recorder.flush();
  assert.equal(recorder.assertTracked("Signed Up", { userId: 7, properties: { plan: "Pro" } }).event, "Signed Up");
  assert.equal(recorder.assertIdentified(7, { email: "a@example.com" }).type, "identify");
  recorder.assertIdentified("7");
  const miss = assertionFrom(() => recorder.assertTracked("Signed Out"));
  assert.match(miss.message, /event: expected "Signed Out", got "Signed Up"/);
  assert.match(miss.message, /type: expected "track", got "identify"/);
});

test("assertNotSent() passes when nothing matches and lists the matches when some do", async () => {
  const recorder = new Recorder();
  recorder.assertNotSent();
  const analytics = recorder.client();
  analytics.track("u1", "Viewed");
  await recorder.flush();
  recorder.assertNotSent({ userId: "someone-else" });
  const error = assertionFrom(() => recorder.assertNotSent({ userId: "u1" }));
  assert.match(error.message, /Expected no message matching \{"userId":"u1"\}, found 1:\n {2}track "Viewed" userId=u1/);
  assert.match(assertionFrom(() => recorder.assertNotSent()).message, /Expected no messages, found 1/);
});

test("an assertion on an empty recorder says that nothing was delivered and hints at flush()", () => {
  const recorder = new Recorder();
  const error = assertionFrom(() => recorder.assertTracked("Signed Up"));
  assert.match(error.message, /Nothing was delivered\. Was the client flushed/);
});

test("waitFor() waits for background delivery from a client that only has the recorder's fetch", async () => {
  const recorder = new Recorder();
  const analytics = new Analytics({ writeKey: "KEY", fetch: recorder.fetch, uploadInterval: 0.02 });
  analytics.track("u1", "First");
  analytics.track("u1", "Second");
  const found = await recorder.waitFor({ type: "track" }, { count: 2, timeout: 2000 });
  assert.deepEqual(found.map((m) => m.event), ["First", "Second"]);
  assert.equal(recorder.requests[0].headers.authorization, `Basic ${btoa("KEY:")}`);
});

test("waitFor() flushes the clients it knows, so a long uploadInterval does not slow a test down", async () => {
  const recorder = new Recorder();
  const analytics = recorder.client({ uploadInterval: 60 });
  analytics.track("u1", "Started");
  const start = Date.now();
  await recorder.waitFor({ event: "Started" }, { timeout: 2000 });
  assert.ok(Date.now() - start < 1000, `took ${Date.now() - start} ms`);
});

test("waitFor() rejects with an AssertionError that says what it waited for and what came", async () => {
  const recorder = new Recorder();
  const analytics = recorder.client();
  analytics.track("u1", "Started");
  await assert.rejects(recorder.waitFor({ event: "Finished" }, { timeout: 50 }), (error: Error) => {
    assert.ok(error instanceof AssertionError);
    assert.match(error.message, /Waited 50 ms for 1 message matching \{"event":"Finished"\}, found 0/);
    assert.match(error.message, /track "Started" userId=u1/);
    return true;
  });
  assert.throws(() => recorder.waitFor(undefined, { count: 0 }), RangeError);
});

test("attach() points an existing client at the recorder and gives it the test write key when it has none", async () => {
  const recorder = new Recorder();
  const client = new Analytics({ uploadInterval: 60 });
  assert.equal(recorder.attach(client), client);
  assert.equal(client.writeKey, TEST_WRITE_KEY);
  assert.equal(client.fetch, recorder.fetch);
  client.track("u1", "Attached");
  await recorder.flush();
  recorder.assertTracked("Attached");
  const keyed = recorder.attach(new Analytics({ writeKey: "REAL", send: true }));
  assert.equal(keyed.writeKey, "REAL", "a key already set is kept");
  assert.throws(() => recorder.attach({} as Analytics), TypeError);
});

test("failNext() answers with a status: a 400 reaches onError and is not recorded as delivered", async () => {
  const recorder = new Recorder().failNext({ status: 400, body: '{"error":"bad"}' });
  const errors: DeliveryError[] = [];
  const analytics = recorder.client({ onError: (error) => errors.push(error) });
  analytics.track("u1", "Refused");
  await recorder.flush();
  assert.equal(errors.length, 1);
  assert.equal(errors[0].reason, "http_status");
  assert.equal(errors[0].status, 400);
  recorder.assertNotSent();
  assert.deepEqual(recorder.requests.map((r) => r.status), [400]);
  analytics.track("u1", "Accepted");
  await recorder.flush();
  recorder.assertTracked("Accepted");
});

test("failNext() with a retryable status or a network error is retried at once, then delivered", async () => {
  const recorder = new Recorder().failNext({ status: 503, times: 2 }).failNext({ status: 0 });
  const analytics = recorder.client();
  analytics.track("u1", "Retried");
  const start = Date.now();
  await recorder.flush();
  assert.ok(Date.now() - start < 1000, "retries wait no time on a recorded client");
  assert.deepEqual(recorder.requests.map((r) => r.status), [503, 503, 0, 200]);
  assert.equal(recorder.requests[3].headers["x-retry-count"], "3");
  recorder.assertTracked("Retried", {}); // once, not once per attempt
  recorder.assertSent({ event: "Retried" }, { times: 1 });
  assert.equal(analytics.stats().retries, 3);
  assert.throws(() => recorder.failNext({ status: 99 }), RangeError);
  assert.throws(() => recorder.failNext({ times: 0 }), RangeError);
});

test("reset() forgets messages, requests and pending failures; clients stay connected", async () => {
  const recorder = new Recorder().failNext({ status: 500, times: 5 });
  const analytics = recorder.client();
  recorder.reset();
  analytics.track("u1", "After Reset");
  await recorder.flush();
  assert.deepEqual(recorder.requests.map((r) => r.status), [200]);
  recorder.reset();
  assert.equal(recorder.messages.length, 0);
  assert.equal(recorder.requests.length, 0);
  analytics.track("u1", "Again");
  await recorder.flush();
  assert.deepEqual(recorder.messages.map((m) => m.event), ["Again"]);
});

test("client() refuses a fetch of its own, and keeps other options as given", () => {
  const recorder = new Recorder();
  assert.throws(() => recorder.client({ fetch: globalThis.fetch }), /supplies fetch/);
  assert.throws(() => recorder.client({ httpClient: globalThis.fetch }), /supplies fetch/);
  const client = recorder.client({ writeKey: "MINE", uploadSize: 7, minRetryDelay: 1 });
  assert.equal(client.writeKey, "MINE");
  assert.equal(client.uploadSize, 7);
  assert.equal(client.minRetryDelay, 1);
  assert.equal(client.maxRetryDelay, 60, "the library default when the test sets a delay itself");
  assert.throws(() => recorder.client({ uploadSize: 0 }), RangeError);
});

test("close() delivers and closes the recorder's own clients, and only flushes attached ones", async () => {
  const recorder = new Recorder();
  const own = recorder.client();
  const attached = recorder.attach(new Analytics());
  own.track("u1", "Own");
  attached.track("u1", "Attached");
  await recorder.close();
  recorder.assertTracked("Own");
  recorder.assertTracked("Attached");
  const errors: string[] = [];
  own.onError = (error) => errors.push(error.reason);
  own.track("u1", "Too Late");
  attached.track("u1", "Still Open");
  await attached.flush();
  assert.deepEqual(errors, ["closed"]);
  recorder.assertTracked("Still Open");
  recorder.assertNotSent({ event: "Too Late" });
});
