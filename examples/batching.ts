// Seed: "Batching" ("How do I flush right now?!" and "Detecting errors").
import analytics from "../mod.ts";
import { host, writeKey } from "./_env.ts";

analytics.writeKey = writeKey;
analytics.host = host;

// Every call is queued in memory; a batch goes out every uploadSize (100) messages
// or uploadInterval (0.5 s) after its first message, whichever comes first.
analytics.uploadSize = 100;
analytics.uploadInterval = 0.5;

analytics.onError = (error, items) => {
  console.log("Failure", error, `(${items.length} messages)`);
};

for (let i = 0; i < 250; i++) {
  analytics.track("f4ca124298", "Song Played", { track: i });
}

// Resolves when nothing is left in the queue: delivered, or reported to onError.
await analytics.flush();
