// A Cloudflare Worker using the installed package, bundled the way wrangler
// bundles (here with `bun build`). Each request gets its own client, tracks,
// and hands the flush to ctx.waitUntil, so delivery finishes after the
// response is sent. (worker_module_scope.mjs keeps one client across requests.)
import { Analytics } from "@tally/analytics";

export default {
  fetch(request, env, ctx) {
    const analytics = new Analytics({ writeKey: env.WRITE_KEY, host: env.TALLY_HOST });
    const url = new URL(request.url);
    const userId = url.searchParams.get("user") ?? "anonymous";
    const messageId = analytics.track(userId, "Worker Request", { consumer: "workerd", path: url.pathname });
    ctx.waitUntil(analytics.flush());
    return new Response(JSON.stringify({ messageId, userAgent: navigator.userAgent }), {
      headers: { "content-type": "application/json" },
    });
  },
};
