// Seed: "How do I gzip requests?".
import { Analytics } from "../mod.ts";
import { host, writeKey } from "./_env.ts";

const analytics = new Analytics({ writeKey, host, gzip: true });

analytics.track("f4ca124298", "Signed Up", { plan: "Enterprise" });

await analytics.flush();
