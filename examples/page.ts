// Seed: "Page".
import analytics from "../mod.ts";
import { host, writeKey } from "./_env.ts";

analytics.writeKey = writeKey;
analytics.host = host;

// userId, category, name, properties
analytics.page("user_id", "Docs", "Python", {
  url: "http://segment.com",
});

await analytics.flush();
