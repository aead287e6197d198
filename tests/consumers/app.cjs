// A CommonJS application: require() of the ESM-only package, which Node
// supports from 20.19 and 22.12 (require of synchronous ES modules).
const process = require("node:process");
const { Analytics, VERSION } = require("@tally/analytics");

const [url, consumer = "node-cjs"] = process.argv.slice(2);
const client = new Analytics({ writeKey: "CONSUMER_KEY", host: url });
client.track(`${consumer}-user`, "Consumer Tested", { consumer, style: "require" });
client.flush().then((result) => {
  console.log(JSON.stringify({ consumer, version: VERSION, delivered: result.delivered, failed: result.failed }));
  process.exitCode = result.failed === 0 && result.delivered === 1 ? 0 : 1;
});
