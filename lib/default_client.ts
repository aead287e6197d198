import { Analytics } from "./client.ts";

/**
 * The module-level default client, as in analytics-python: set its
 * `writeKey` (and any other option) as a property, then call it.
 */
const analytics: Analytics = new Analytics();

export default analytics;
