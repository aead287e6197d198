/** A timer handle as the runtime returns it. */
export type Timer = ReturnType<typeof setTimeout>;

interface Unrefable {
  unref?: () => void;
}

/** Lets the process end while `timer` is pending (Node, Bun and Deno handles have `unref`). */
export function unrefTimer(timer: Timer): Timer {
  if (typeof timer === "object" && timer !== null) (timer as Unrefable).unref?.();
  else {
    (globalThis as { Deno?: { unrefTimer?: (id: number) => void } }).Deno?.unrefTimer?.(timer as number);
  }
  return timer;
}

/**
 * A stop switch in plain JavaScript. An `AbortController` would do, but
 * workerd forbids creating one outside a request handler and using one
 * across requests, and a client is often created at module scope.
 */
export class Stopper {
  #stopped = false;
  readonly #listeners = new Set<() => void>();

  /** Whether `stop()` was called. */
  get stopped(): boolean {
    return this.#stopped;
  }

  /** Stops, calling every listener once. */
  stop(): void {
    if (this.#stopped) return;
    this.#stopped = true;
    for (const listener of this.#listeners) listener();
    this.#listeners.clear();
  }

  /** Calls `listener` on stop (at once if stopped); returns a function that unregisters it. */
  onStop(listener: () => void): () => void {
    if (this.#stopped) {
      listener();
      return () => {};
    }
    this.#listeners.add(listener);
    return () => void this.#listeners.delete(listener);
  }
}

/**
 * Resolves after `ms`, or at once when `stopper` stops. The timer is
 * unref'd: a retry wait must not keep an ended program alive, so the
 * program reaches its exit hook, which bounds what is left by `exitTimeout`.
 */
export function sleep(ms: number, stopper: Stopper): Promise<void> {
  if (stopper.stopped) return Promise.resolve();
  return new Promise((resolve) => {
    const timer = unrefTimer(setTimeout(() => {
      off();
      resolve();
    }, ms));
    const off = stopper.onStop(() => {
      clearTimeout(timer);
      resolve();
    });
  });
}

/**
 * Resolves once every promise in `running` has settled, including those added
 * while it waits, or after `timeout` ms. Each promise must remove itself from
 * the set when it settles.
 */
export async function settled(running: Set<Promise<unknown>>, timeout?: number): Promise<void> {
  const end = timeout === undefined ? Infinity : Date.now() + timeout;
  while (running.size > 0) {
    const all = Promise.allSettled([...running]);
    if (end === Infinity) {
      await all;
      continue;
    }
    const left = end - Date.now();
    if (left <= 0) return;
    let timer: Timer | undefined;
    const late = await Promise.race([
      all.then(() => false),
      new Promise<boolean>((resolve) => timer = setTimeout(() => resolve(true), left)),
    ]);
    clearTimeout(timer);
    if (late) return;
  }
}

/** Anything with work to finish before the program ends. */
export interface Flushable {
  /** Delivers what is left, within a bound, as the program ends. */
  exit(): Promise<unknown>;
}

const pending = new Set<Flushable>();
let hooked = false;

interface ProcessLike {
  on?: (event: string, listener: () => void) => void;
}

function finishAll(): void {
  for (const client of [...pending]) void client.exit();
}

/**
 * Keeps `client` on the list of clients to flush when the program runs out of
 * other work, so events queued at the end of a script are still delivered.
 * Node and Bun (and Deno, which has `process` too) emit `beforeExit`; new
 * requests started there keep the program alive until they settle.
 * Elsewhere a `beforeunload` listener does the same where it exists; Workers
 * have neither, and there the caller passes `flush()` to `waitUntil`.
 */
export function deliverBeforeExit(client: Flushable): void {
  pending.add(client);
  if (hooked) return;
  hooked = true;
  const process = (globalThis as { process?: ProcessLike }).process;
  if (typeof process?.on === "function") {
    process.on("beforeExit", finishAll);
  } else if (typeof globalThis.addEventListener === "function") {
    globalThis.addEventListener("beforeunload", (event) => {
      if (pending.size === 0) return;
      event.preventDefault();
      finishAll();
    });
  }
}

/** Takes `client` off that list once it has nothing left to deliver. */
export function releaseBeforeExit(client: Flushable): void {
  pending.delete(client);
}
