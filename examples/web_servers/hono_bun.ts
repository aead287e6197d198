/**
 * Seed: "Django" and "Google App Engine", for a Hono app on Bun: one client
 * for the whole process, created at startup (where Django's
 * `AppConfig.ready()` sets the write key), never one per request; each
 * handler names the request's user; on SIGINT or SIGTERM the server stops
 * taking requests, then `closeAndFlush()` delivers what they tracked.
 * `hono_deno.ts` is the same app on Deno.
 *
 *     bun examples/web_servers/hono_bun.ts
 *     curl -H "x-user-id: 019mr8mf4r" http://127.0.0.1:PORT/articles/snow-fall
 *
 * @module
 */
import process from "node:process";
import { Hono } from "hono";
import { Analytics } from "../../mod.ts";
import { host, port, writeKey } from "../_env.ts";

/** The part of Bun's API used here (with `@types/bun` installed, drop this declaration). */
declare const Bun: {
  serve(options: { hostname: string; port: number; fetch: (request: Request) => Response | Promise<Response> }): {
    url: URL;
    stop(): Promise<void>;
  };
};

const analytics = new Analytics({ writeKey, host });

const app = new Hono();
app.get("/articles/:id", (c) => {
  // The signed-in user: a stand-in for your session lookup (a cookie, a JWT, ...).
  const userId = c.req.header("x-user-id");
  if (userId === undefined) return c.json({ error: "Sign in first" }, 401);
  const messageId = analytics.track(userId, "Article Viewed", { articleId: c.req.param("id"), path: c.req.path });
  return c.json({ messageId });
});

const server = Bun.serve({ hostname: "127.0.0.1", port, fetch: app.fetch });
console.log(`Listening on ${server.url}`);

async function shutdown(): Promise<void> {
  await server.stop(); // answer the requests in flight, take no more
  const { delivered, failed } = await analytics.closeAndFlush({ timeout: 5000 });
  console.log(`Stopped: at shutdown, ${delivered} delivered, ${failed} failed.`);
  process.exit(0);
}
process.once("SIGINT", shutdown);
process.once("SIGTERM", shutdown);
