/**
 * A disk queue for `@tally/analytics`: messages are written to files in a
 * folder before each call returns, and what a crashed, killed or timed-out
 * process left there is sent at the next start. Uses `node:fs` (Deno, Bun,
 * Node); Workers have no disk and do not import it.
 *
 * @example
 * ```ts
 * import { Analytics } from "@tally/analytics";
 * import { fileStorage } from "@tally/analytics/storage";
 *
 * const analytics = new Analytics({ writeKey: "YOUR_WRITE_KEY", storage: fileStorage("./.tally") });
 * analytics.track({ userId: "u1", event: "Signed Up" });
 * await analytics.close({ timeout: 5000 });
 * ```
 *
 * @module
 */
export { FileStorage, fileStorage, type FileStorageOptions } from "./storage/file_storage.ts";
export type {
  Durability,
  Storage,
  StorageLimits,
  StorageOpening,
  StorageProblem,
  StoredSegment,
  WhenFull,
} from "./lib/storage.ts";
