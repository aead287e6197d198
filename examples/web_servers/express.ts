/**
 * Seed: "Django" and "Google App Engine", for an Express app on Node: one
 * client for the whole process, created at startup (where Django's
 * `AppConfig.ready()` sets the write key), never one per request; each
 * handler names the request's user; on SIGINT or SIGTERM the server stops
 * taking requests, then `closeAndFlush()` delivers what they tracked.
 *
 * Bun runs it as it is. Node 20 cannot run TypeScript: a Node app compiles
 * its TypeScript as it already does (tsc, tsx, a bundler); the tests run this
 * file under Node from the npm build, compiled by tsc against the built package.
 *
 *     npx bun examples/web_servers/express.ts
 *     curl -H "x-user-id: 019mr8mf4r" http://127.0.0.1:PORT/articles/snow-fall
 *
 * @module
 */
import type { AddressInfo } from "node:net";
import process from "node:process";
import express from "express";
import { Analytics } from "../../mod.ts";
import { host, port, writeKey } from "../_env.ts";

const analytics = new Analytics({ writeKey, host });

const app = express();
app.get("/articles/:id", (req, res) => {
  // The signed-in user: a stand-in for your session lookup (express-session, passport, a JWT, ...).
  const userId = req.get("x-user-id");
  if (userId === undefined) {
    res.status(401).json({ error: "Sign in first" });
    return;
  }
  const messageId = analytics.track(userId, "Article Viewed", { articleId: req.params.id, path: req.path });
  res.json({ messageId });
});

const server = app.listen(port, "127.0.0.1", (error) => {
  if (error) throw error;
  console.log(`Listening on http://127.0.0.1:${(server.address() as AddressInfo).port}/`);
});

function shutdown(): void {
  // close() answers the requests in flight and takes no more; then deliver what they tracked.
  server.close(async () => {
    const { delivered, failed } = await analytics.closeAndFlush({ timeout: 5000 });
    console.log(`Stopped: at shutdown, ${delivered} delivered, ${failed} failed.`);
  });
}
process.once("SIGINT", shutdown);
process.once("SIGTERM", shutdown);
