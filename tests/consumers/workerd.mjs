// Runs a bundled Worker inside workerd through miniflare (offline) and
// sends it `count` requests; the Worker delivers to the receiver at `url`.
// Usage: node workerd.mjs BUNDLE URL COUNT
// Prints each response on stdout, then keeps workerd running (so waitUntil
// work can finish) until stdin closes.
import process from "node:process";
import { Miniflare } from "miniflare";

const [bundle, url, count = "2"] = process.argv.slice(2);
const mf = new Miniflare({
  modules: true,
  scriptPath: bundle,
  compatibilityDate: "2025-01-01",
  bindings: { WRITE_KEY: "CONSUMER_KEY", TALLY_HOST: url },
});
try {
  for (let i = 0; i < Number(count); i++) {
    const response = await mf.dispatchFetch(`http://worker.test/page/${i}?user=workerd-user`);
    console.log(JSON.stringify({ status: response.status, body: await response.json() }));
  }
} catch (error) {
  console.error(`workerd: ${error?.stack ?? error}`);
  process.exitCode = 1;
}
process.stdin.resume();
process.stdin.on("end", () => void mf.dispose());
