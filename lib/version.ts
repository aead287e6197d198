/** The package name sent as `context.library.name`. */
export const LIBRARY_NAME = "@tally/analytics";

/** The package version, sent as `context.library.version`; kept equal to deno.json. */
export const VERSION = "0.1.0";
