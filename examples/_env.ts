/**
 * Where the examples send: Segment unless the environment says otherwise, so
 * `deno task demo` can point every example at a local receiver; and, for the
 * web server examples, the port they listen on.
 * On Deno, run with `--allow-env`; without it the defaults apply.
 *
 * @module
 */

interface Runtime {
  process?: { env?: Record<string, string | undefined> };
  Deno?: { env: { get(name: string): string | undefined } };
}

function env(name: string): string | undefined {
  const runtime = globalThis as Runtime;
  try {
    return runtime.process?.env?.[name] ?? runtime.Deno?.env.get(name);
  } catch {
    // Deno without --allow-env: fall back to the default.
    return undefined;
  }
}

/** The Segment-compatible endpoint, from `TALLY_HOST`. */
export const host: string = env("TALLY_HOST") ?? "https://api.segment.io";

/** The source's write key, from `TALLY_WRITE_KEY`. */
export const writeKey: string = env("TALLY_WRITE_KEY") ?? "YOUR_WRITE_KEY";

/**
 * The port the web server examples listen on (on 127.0.0.1), from `PORT`;
 * 0, the default, picks a free one, and the example prints its URL.
 */
export const port: number = parsePort(env("PORT"));

function parsePort(value: string | undefined): number {
  if (value === undefined || value === "") return 0;
  const port = Number(value);
  if (!Number.isInteger(port) || port < 0 || port > 65535) {
    throw new RangeError(`Cannot listen: PORT must be a port number from 0 to 65535, not ${JSON.stringify(value)}`);
  }
  return port;
}
