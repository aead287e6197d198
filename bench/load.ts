/**
 * Measures the sink's capacity: `load.ts <sink url> <seconds> <connections>`
 * keeps that many requests in flight, each a body of 100 typical track
 * messages, and prints `{"requests":N,"messages":N,"ms":N}` as one JSON line.
 * Run it under Bun, whose fetch costs least, so the sink is what saturates.
 *
 * @module
 */
import process from "node:process";
import { AUTHORIZATION, BATCH, inputs } from "./common.ts";

const [url, seconds = "3", connections = "8"] = process.argv.slice(2);
if (!url?.startsWith("http://127.0.0.1:")) {
  throw new Error("usage: load <http://127.0.0.1:PORT> [seconds] [connections]");
}

const batch = inputs(BATCH).map((input) => ({
  type: "track",
  messageId: crypto.randomUUID(),
  timestamp: new Date().toISOString(),
  ...input,
  context: { library: { name: "@tally/analytics", version: "0.1.0" } },
}));
const body = JSON.stringify({ batch, sentAt: new Date().toISOString() });
const headers = { "content-type": "application/json", authorization: AUTHORIZATION };

let requests = 0;
const t0 = performance.now();
const end = t0 + Number(seconds) * 1000;
await Promise.all(
  Array.from({ length: Number(connections) }, async () => {
    while (performance.now() < end) {
      const response = await fetch(`${url}/v1/batch`, { method: "POST", headers, body });
      await response.text();
      if (!response.ok) throw new Error(`the sink answered ${response.status}`);
      requests++;
    }
  }),
);
const ms = performance.now() - t0;
process.stdout.write(JSON.stringify({ requests, messages: requests * BATCH, ms }) + "\n");
process.exit(0);
