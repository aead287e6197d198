import { Analytics } from "./client.ts";

/**
 * The module-level default client, as in analytics-python: set its
 * `writeKey` (and any other option) as a property, then call it.
 *
 * @example
 * ```ts
 * import analytics from "@tally/analytics";
 *
 * analytics.writeKey = "YOUR_WRITE_KEY";
 * analytics.send = false; // this example sends nothing
 * analytics.track("f4ca124298", "Signed Up", { plan: "Enterprise" });
 * await analytics.flush();
 * ```
 */
const analytics: Analytics = new Analytics();

export default analytics;
