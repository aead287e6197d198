/**
 * Seed: "Django" and "Google App Engine", for a Fastify app on Node: one
 * client for the whole process, created at startup (where Django's
 * `AppConfig.ready()` sets the write key), never one per request; each
 * handler names the request's user; on SIGINT or SIGTERM `app.close()` stops
 * taking requests, and its `onClose` hook runs `closeAndFlush()` to deliver
 * what they tracked.
 *
 * Bun runs it as it is. Node 20 cannot run TypeScript: a Node app compiles
 * its TypeScript as it already does (tsc, tsx, a bundler); the tests run this
 * file under Node from the npm build, compiled by tsc against the built package.
 *
 *     npx bun examples/web_servers/fastify.ts
 *     curl -H "x-user-id: 019mr8mf4r" http://127.0.0.1:PORT/articles/snow-fall
 *
 * @module
 */
import process from "node:process";
import Fastify from "fastify";
import { Analytics } from "../../mod.ts";
import { host, port, writeKey } from "../_env.ts";

const analytics = new Analytics({ writeKey, host });

const app = Fastify();
app.addHook("onClose", async () => {
  const { delivered, failed } = await analytics.closeAndFlush({ timeout: 5000 });
  console.log(`Stopped: at shutdown, ${delivered} delivered, ${failed} failed.`);
});

app.get<{ Params: { id: string } }>("/articles/:id", (request, reply) => {
  // The signed-in user: a stand-in for your session lookup (@fastify/session, @fastify/jwt, ...).
  const userId = request.headers["x-user-id"];
  if (typeof userId !== "string") return reply.code(401).send({ error: "Sign in first" });
  const messageId = analytics.track(userId, "Article Viewed", {
    articleId: request.params.id,
    path: request.url.split("?")[0],
  });
  return reply.send({ messageId });
});

const url = await app.listen({ host: "127.0.0.1", port });
console.log(`Listening on ${url}/`);

const shutdown = (): void => void app.close();
process.once("SIGINT", shutdown);
process.once("SIGTERM", shutdown);
