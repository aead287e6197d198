/**
 * Reloads a plan file when it changes on disk, for `tally serve --plan`:
 * `fs.watch` on the file's folder (editors replace a file rather than write
 * it, which ends a watch on the file itself), a poll of its modification
 * time and size as well (fs.watch misses changes on network and container
 * mounts, and is missing on some platforms), both debounced. A new plan
 * that cannot be read or compiled is reported and the old one kept.
 *
 * @module
 */
import { type FSWatcher, statSync, watch } from "node:fs";
import { basename, dirname } from "node:path";
import { loadPlan } from "./load.ts";
import type { Plan } from "./model.ts";

/** Options of {@linkcode watchPlan}. */
export interface WatchOptions {
  /**
   * Milliseconds between polls of the file's modification time and size.
   * @default {1000}
   */
  pollMs?: number;
  /**
   * Milliseconds a change waits for more before the file is read (an editor saves in steps).
   * @default {100}
   */
  debounceMs?: number;
  /** Called with the error when a changed file cannot be used; the previous plan stays in effect. */
  onError?: (error: Error) => void;
  /**
   * Checks a new plan before it is taken (compiling its schemas); what it throws goes to `onError`.
   * @default {() => {}}
   */
  accept?: (plan: Plan) => void;
}

/** A running watch. */
export interface PlanWatch {
  /** Stops watching. */
  close(): void;
}

/** Watches the plan file at `path` and calls `onChange` with each new plan that reads and compiles. */
export function watchPlan(path: string, onChange: (plan: Plan) => void, options: WatchOptions = {}): PlanWatch {
  const { pollMs = 1000, debounceMs = 100, onError = () => {}, accept = () => {} } = options;
  let closed = false;
  let timer: ReturnType<typeof setTimeout> | undefined;
  let reading = false;
  let again = false;
  const stamp = (): string => {
    try {
      const s = statSync(path);
      return `${s.mtimeMs}:${s.size}:${s.ino}`;
    } catch {
      return "missing";
    }
  };
  let last = stamp();

  const reload = async (): Promise<void> => {
    if (reading) {
      again = true;
      return;
    }
    reading = true;
    try {
      const plan = await loadPlan(path);
      accept(plan);
      if (!closed) onChange(plan);
    } catch (error) {
      if (!closed) onError(error instanceof Error ? error : new Error(String(error)));
    } finally {
      reading = false;
      if (again && !closed) {
        again = false;
        schedule();
      }
    }
  };
  const schedule = (): void => {
    if (closed) return;
    if (timer !== undefined) clearTimeout(timer);
    timer = setTimeout(() => {
      timer = undefined;
      void reload();
    }, debounceMs);
  };
  const look = (): void => {
    const now = stamp();
    if (now === last) return;
    last = now;
    // A file deleted on the way to being replaced: wait for the new one.
    if (now !== "missing") schedule();
  };

  let watcher: FSWatcher | undefined;
  try {
    const name = basename(path);
    watcher = watch(dirname(path), { persistent: false }, (_event, file) => {
      if (file === null || file === undefined || String(file) === name) look();
    });
    watcher.on("error", () => {
      watcher?.close();
      watcher = undefined;
    });
  } catch {
    watcher = undefined; // the poll alone, then
  }
  const poll = setInterval(look, pollMs);
  (poll as { unref?: () => void }).unref?.();
  return {
    close() {
      closed = true;
      clearInterval(poll);
      if (timer !== undefined) clearTimeout(timer);
      watcher?.close();
    },
  };
}
