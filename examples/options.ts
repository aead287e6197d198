// Seed: "Options".
import { Analytics, type DeliveryError, type Message } from "../mod.ts";
import { host, writeKey } from "./_env.ts";

function onError(error: DeliveryError, items: Message[]): void {
  console.log("An error occurred:", error, `(${items.length} messages)`);
}

const analytics = new Analytics({
  writeKey,
  host,
  debug: true,
  onError,
  send: true,
  maxQueueSize: 100000,
  uploadInterval: 5,
  uploadSize: 500,
  gzip: true,
});

analytics.track("f4ca124298", "Signed Up", { plan: "Enterprise" });

// uploadInterval is 5 seconds: close() sends the batch now instead.
await analytics.close();
