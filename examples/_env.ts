/**
 * Where the examples send: Segment unless the environment says otherwise, so
 * `deno task demo` can point every example at a local receiver.
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
