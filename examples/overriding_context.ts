// Seed: "Overriding Context Value".
import analytics from "../mod.ts";
import { host, writeKey } from "./_env.ts";

analytics.writeKey = writeKey;
analytics.host = host;

analytics.track("9742", "Song Played", {}, {
  context: {
    ip: 1234,
    userAgent:
      "Mozilla/5.0 (Linux; U; Android 4.1.1; en-gb; Build/KLP) AppleWebKit/534.30 (KHTML, like Gecko) Version/4.0 Safari/534.30",
  },
});

await analytics.flush();
