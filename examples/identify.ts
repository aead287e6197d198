// Seed: "Identify".
import analytics from "../mod.ts";
import { host, writeKey } from "./_env.ts";

analytics.writeKey = writeKey;
analytics.host = host;

analytics.identify("019mr8mf4r", {
  email: "john@example.com",
  name: "John Smith",
  friends: 30,
});

await analytics.flush();
