// Seed: "Alias" (the full example).
import analytics from "../mod.ts";
import { host, writeKey } from "./_env.ts";

analytics.writeKey = writeKey;
analytics.host = host;

// the anonymous user does actions under an anonymous ID
analytics.track("92734232-2342423423-973945", "Anonymous Event");

// the anonymous user signs up and is aliased to their new user ID
analytics.alias("92734232-2342423423-973945", "1234");

// the user is identified
analytics.identify("1234", { plan: "Free" });

// the identified user does actions
analytics.track("1234", "Identified Action");

await analytics.flush();
