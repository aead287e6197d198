// A Cloudflare Worker calling the typed wrapper `tally plan types` generated
// from examples/plan.json (written beside this file as tracking.ts, importing
// the installed "@tally/analytics"): the generated code runs in workerd as it
// does on Deno, Bun and Node.
import { Analytics } from "@tally/analytics";
import { createTracking } from "./tracking.ts";

export default {
  fetch(request, env, ctx) {
    const analytics = new Analytics({ writeKey: env.WRITE_KEY, host: env.TALLY_HOST });
    const tracking = createTracking(analytics);
    const messageId = tracking.trackDeployFinished({
      userId: "workerd-typed-user",
      properties: { service: new URL(request.url).pathname, ok: true },
    });
    ctx.waitUntil(analytics.flush());
    return new Response(JSON.stringify({ messageId, userAgent: navigator.userAgent }), {
      headers: { "content-type": "application/json" },
    });
  },
};
