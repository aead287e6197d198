// Seed: "Screen".
import analytics from "../mod.ts";
import { host, writeKey } from "./_env.ts";

analytics.writeKey = writeKey;
analytics.host = host;

// userId, category, name, properties
analytics.screen("user_id", "Settings", "Brightness", {
  from: "Home Screen",
});

await analytics.flush();
