/**
 * `tally`: send Segment-format analytics from CI pipelines and shell scripts.
 * Runs under Deno (`deno run --allow-net --allow-read --allow-write
 * --allow-env cli.ts`; `tally serve` writes its NDJSON file), Bun, Node (the
 * npm build's `bin`) and as one compiled binary (`deno task compile`). Run
 * `tally --help` for the commands.
 *
 * @module
 */
import process from "node:process";
import { processIo } from "./cli/io.ts";
import { main } from "./cli/main.ts";

const io = processIo();
const code = await main(process.argv.slice(2), io);
await io.settle();
process.exit(code);
