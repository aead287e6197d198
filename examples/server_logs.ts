// Seed: "Server Logs Example".
import analytics from "../mod.ts";
import { host, writeKey } from "./_env.ts";

analytics.writeKey = writeKey;
analytics.host = host;

const log = [
  "2012-10-17T18:58:57.911Z 019mr8mf4r /purchased/tshirt",
];

for (const entry of log) {
  const [timestampStr, userId] = entry.split(" ");

  // have a timezone? check yo'self: new Date() reads a zone-less string as local time
  if (!/(Z|[+-]\d{2}:?\d{2})$/i.test(timestampStr)) throw new Error(`no time zone in ${timestampStr}`);
  const timestamp = new Date(timestampStr);

  analytics.track(userId, "Shirt Bought", {
    color: "Blue",
    revenue: 17.90,
  }, { timestamp });
}

await analytics.flush();
