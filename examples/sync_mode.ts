// Seed: "Background threads and synchronous mode".
import analytics from "../mod.ts";
import { host, writeKey } from "./_env.ts";

analytics.writeKey = writeKey;
analytics.host = host;
analytics.syncMode = true;

// No batching and no timer: each call starts its own request at once.
analytics.identify("019mr8mf4r", { email: "john@example.com" });
analytics.track("019mr8mf4r", "Signed Up", { plan: "Enterprise" });

// flush() waits for those requests.
await analytics.flush();
