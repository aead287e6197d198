// Seed: "Group".
import analytics from "../mod.ts";
import { host, writeKey } from "./_env.ts";

analytics.writeKey = writeKey;
analytics.host = host;

analytics.group("user_id", "group_id", {
  name: "Initech",
  domain: "Accounting Software",
});

await analytics.flush();
