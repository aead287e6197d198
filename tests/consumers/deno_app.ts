/**
 * The Deno consumer: imports mod.ts as a JSR user imports the package and
 * delivers to the receiver at the first argument. Run with
 * `deno run --allow-net=127.0.0.1 --no-prompt` and no other permission: the
 * library needs no env, read or write access.
 *
 * @module
 */
import analytics, { Analytics, VERSION } from "../../mod.ts";
import { Recorder } from "../../testing.ts";

const [url, consumer = "deno"] = Deno.args;
if (url === undefined) {
  console.error("usage: deno_app.ts URL [CONSUMER]");
  Deno.exit(2);
}

analytics.writeKey = "CONSUMER_KEY";
analytics.host = url;
analytics.identify(`${consumer}-user`, { runtime: consumer });
analytics.track(`${consumer}-user`, "Consumer Tested", { consumer, style: "positional" });

const client = new Analytics({ writeKey: "CONSUMER_KEY", host: url, gzip: true });
client.track({ userId: `${consumer}-user`, event: "Consumer Tested", properties: { consumer, style: "object" } });

const recorder = new Recorder();
recorder.client().track(`${consumer}-user`, "Recorded");
await recorder.flush();
recorder.assertTracked("Recorded", { userId: `${consumer}-user` });

const [a, b] = await Promise.all([analytics.flush(), client.closeAndFlush({ timeout: 5000 })]);
console.log(
  JSON.stringify({ consumer, version: VERSION, delivered: a.delivered + b.delivered, failed: a.failed + b.failed }),
);
if (a.failed + b.failed > 0) Deno.exitCode = 1;
