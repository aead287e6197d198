// Seed: "Getting Started" and "Development Settings".
import analytics, { type DeliveryError, type Message } from "../mod.ts";
import { host, writeKey } from "./_env.ts";

analytics.writeKey = writeKey;
analytics.host = host;

function onError(error: DeliveryError, items: Message[]): void {
  console.log("An error occurred:", error, `(${items.length} messages)`);
}

analytics.debug = true;
analytics.onError = onError;

analytics.identify("019mr8mf4r", { email: "john@example.com", name: "John Smith", friends: 30 });
await analytics.flush();
