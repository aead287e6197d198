// A Node or Bun application that installed the packed tarball: imports the
// package the way its users do and sends to the receiver at argv[2].
// Prints one JSON line: what it sent and what the client counted.
import process from "node:process";
import analytics, { Analytics, VERSION } from "@tally/analytics";
import { Recorder } from "@tally/analytics/testing";

const [url, consumer = "node-esm"] = process.argv.slice(2);
if (!url) {
  console.error("usage: app.mjs URL [CONSUMER]");
  process.exit(2);
}

// The module-level default client, analytics-python style.
analytics.writeKey = "CONSUMER_KEY";
analytics.host = url;
analytics.identify(`${consumer}-user`, { runtime: consumer });
analytics.track(`${consumer}-user`, "Consumer Tested", { consumer, style: "positional" });

// A client of its own, analytics-node style, gzipped.
const client = new Analytics({ writeKey: "CONSUMER_KEY", host: url, gzip: true });
client.track({ userId: `${consumer}-user`, event: "Consumer Tested", properties: { consumer, style: "object" } });

// The test recorder from the testing entry point: no network.
const recorder = new Recorder();
recorder.client().track(`${consumer}-user`, "Recorded");
await recorder.flush();
recorder.assertTracked("Recorded", { userId: `${consumer}-user` });

const [a, b] = await Promise.all([analytics.flush(), client.closeAndFlush({ timeout: 5000 })]);
console.log(
  JSON.stringify({ consumer, version: VERSION, delivered: a.delivered + b.delivered, failed: a.failed + b.failed }),
);
process.exitCode = a.failed + b.failed === 0 ? 0 : 1;
