// Seed: "Track".
import analytics from "../mod.ts";
import { host, writeKey } from "./_env.ts";

analytics.writeKey = writeKey;
analytics.host = host;

analytics.track("f4ca124298", "Signed Up", {
  plan: "Enterprise",
});

analytics.track("f4ca124298", "Article Bookmarked", {
  title: "Snow Fall",
  subtitle: "The Avalance at Tunnel Creek",
  author: "John Branch",
});

await analytics.flush();
