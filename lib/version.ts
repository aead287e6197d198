/**
 * The package name sent as `context.library.name`.
 *
 * @example
 * ```ts
 * import { LIBRARY_NAME } from "@tally/analytics";
 *
 * console.log(LIBRARY_NAME); // "@tally/analytics"
 * ```
 */
export const LIBRARY_NAME = "@tally/analytics";

/**
 * The package version, sent as `context.library.version`; kept equal to deno.json.
 *
 * @example
 * ```ts
 * import { VERSION } from "@tally/analytics";
 *
 * console.log(VERSION);
 * ```
 */
export const VERSION = "0.1.0";
