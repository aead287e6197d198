// Seed: "Selecting Destinations".
import analytics from "../mod.ts";
import { host, writeKey } from "./_env.ts";

analytics.writeKey = writeKey;
analytics.host = host;

// analytics-python's docs write 'all'; Segment's key is "All" (destination flags are case sensitive).
analytics.track("9742", "Song Played", {}, {
  integrations: {
    All: false,
    KISSmetrics: true,
    "Google Analytics": false,
  },
});

await analytics.flush();
