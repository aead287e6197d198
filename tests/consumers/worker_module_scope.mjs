// A Cloudflare Worker that uses the module-level default client, created when
// the module loads and kept across requests: each request tracks and hands
// the flush to ctx.waitUntil.
import analytics from "@tally/analytics";

export default {
  fetch(_request, env, ctx) {
    analytics.writeKey ??= env.WRITE_KEY;
    analytics.host = env.TALLY_HOST;
    const messageId = analytics.track("workerd-module-user", "Worker Request", { consumer: "workerd-module-scope" });
    ctx.waitUntil(analytics.flush());
    return new Response(JSON.stringify({ messageId, userAgent: navigator.userAgent }), {
      headers: { "content-type": "application/json" },
    });
  },
};
