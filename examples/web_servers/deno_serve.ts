/**
 * Seed: "Django" and "Google App Engine", for a web server on plain
 * `Deno.serve`: one client for the whole process, created at startup (where
 * Django's `AppConfig.ready()` sets the write key), never one per request;
 * each handler names the request's user; on SIGINT or SIGTERM the server
 * stops taking requests, then `closeAndFlush()` delivers what they tracked.
 *
 *     deno run --allow-net --allow-env examples/web_servers/deno_serve.ts
 *     curl -H "x-user-id: 019mr8mf4r" http://127.0.0.1:PORT/articles/snow-fall
 *
 * @module
 */
import { Analytics } from "../../mod.ts";
import { host, port, writeKey } from "../_env.ts";

const analytics = new Analytics({ writeKey, host });

/** The signed-in user: a stand-in for your session lookup (a cookie, a JWT, ...). */
function userIdOf(request: Request): string | null {
  return request.headers.get("x-user-id");
}

const article = new URLPattern({ pathname: "/articles/:id" });

const server = Deno.serve({
  hostname: "127.0.0.1",
  port,
  onListen: ({ hostname, port }) => console.log(`Listening on http://${hostname}:${port}/`),
}, (request) => {
  const match = article.exec(request.url);
  if (match === null) return Response.json({ error: "Not found" }, { status: 404 });
  const userId = userIdOf(request);
  if (userId === null) return Response.json({ error: "Sign in first" }, { status: 401 });
  const messageId = analytics.track(userId, "Article Viewed", {
    articleId: match.pathname.groups.id,
    path: new URL(request.url).pathname,
  });
  return Response.json({ messageId });
});

async function shutdown(): Promise<void> {
  await server.shutdown(); // answer the requests in flight, take no more
  const { delivered, failed } = await analytics.closeAndFlush({ timeout: 5000 });
  console.log(`Stopped: at shutdown, ${delivered} delivered, ${failed} failed.`);
  Deno.exit(0);
}
Deno.addSignalListener("SIGINT", shutdown);
Deno.addSignalListener("SIGTERM", shutdown);
