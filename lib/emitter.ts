import type { Context } from "./context.ts";
import type { DeliveryError } from "./errors.ts";
import type { Message } from "./types.ts";

/** What an `http_request` listener hears: the request as sent, with the write key redacted. */
export interface HttpRequestEvent {
  /** The batch URL. */
  url: string;
  /** Always `"POST"`. */
  method: string;
  /** The request headers; the `Authorization` value is redacted. */
  headers: Record<string, string>;
  /** The JSON body before gzip; its `writeKey` is redacted. */
  body: string;
}

/** What an `http_response` listener hears. */
export interface HttpResponseEvent {
  /** The HTTP status. */
  status: number;
  /** The status text. */
  statusText: string;
  /** The batch URL. */
  url: string;
  /** The JSON body that was sent (as in `http_request`). */
  body: string;
  /** The response headers, names lower-cased. */
  headers: Record<string, string>;
}

/** What an `error` listener hears, once per message that will not be delivered (analytics-node's shape). */
export interface ErrorEvent {
  /** `"delivery_failure"` for a message that will not be delivered. */
  code: string;
  /** Why: the same `DeliveryError` that `onError` and the callback get. */
  reason: DeliveryError;
  /** The message's context; `ctx.event` is the message. */
  ctx: Context;
}

/**
 * The events a client emits, with their arguments (analytics-node's names).
 *
 * @example
 * ```ts
 * import { Analytics } from "@tally/analytics";
 *
 * const analytics = new Analytics({ writeKey: "KEY", send: false });
 * analytics.on("track", (ctx) => console.log("delivered", ctx.event.event));
 * analytics.on("error", ({ reason, ctx }) => console.error(reason.message, ctx.id));
 * ```
 */
export interface EmitterEvents {
  /** A message will not be delivered. */
  error: [ErrorEvent];
  /** A request is about to be sent. */
  http_request: [HttpRequestEvent];
  /** A request was answered. */
  http_response: [HttpResponseEvent];
  /** Nothing is queued or in flight any more. */
  drained: [];
  /** A call was made after `close()`; the message is refused (reported as `closed`). */
  call_after_close: [Message];
  /** A plugin was registered. */
  register: [string[]];
  /** A plugin was deregistered. */
  deregister: [string[]];
  /** An identify was delivered. */
  identify: [Context];
  /** A track was delivered. */
  track: [Context];
  /** A page was delivered. */
  page: [Context];
  /** A screen was delivered. */
  screen: [Context];
  /** A group was delivered. */
  group: [Context];
  /** An alias was delivered. */
  alias: [Context];
}

/** The name of an event {@linkcode Emitter} emits. */
export type EventName = keyof EmitterEvents;

type Listener = (...args: never[]) => unknown;

/**
 * A small typed event emitter. Listeners run synchronously in the order
 * added; one that throws is logged through `onThrow` and the rest still run.
 * Any name may be listened to (names Tally never emits are simply never
 * heard), so code written for another library's events does not break.
 */
export class Emitter {
  readonly #listeners = new Map<string, Listener[]>();
  readonly #onThrow: (name: string, error: unknown) => void;

  /** Creates an emitter; `onThrow` hears what a listener throws. */
  constructor(onThrow: (name: string, error: unknown) => void) {
    this.#onThrow = onThrow;
  }

  /** Adds `listener` for `name`. */
  on<K extends EventName>(name: K, listener: (...args: EmitterEvents[K]) => void): this;
  /** Adds `listener` for an event name Tally does not emit (kept, never called). */
  on(name: string, listener: (...args: never[]) => unknown): this;
  on(name: string, listener: Listener): this {
    if (typeof listener !== "function") {
      throw new TypeError(`Cannot listen to "${name}": expected a function, got ${typeof listener}`);
    }
    const list = this.#listeners.get(name);
    if (list === undefined) this.#listeners.set(name, [listener]);
    else list.push(listener);
    return this;
  }

  /** Adds `listener` for the next `name` only. */
  once<K extends EventName>(name: K, listener: (...args: EmitterEvents[K]) => void): this;
  /** Adds `listener` for the next event of a name Tally does not emit. */
  once(name: string, listener: (...args: never[]) => unknown): this;
  once(name: string, listener: Listener): this {
    if (typeof listener !== "function") {
      throw new TypeError(`Cannot listen to "${name}": expected a function, got ${typeof listener}`);
    }
    const wrapper = (...args: never[]): unknown => {
      this.off(name, wrapper);
      return listener(...args);
    };
    (wrapper as { listener?: Listener }).listener = listener;
    return this.on(name, wrapper);
  }

  /** Removes `listener` for `name` (also one added with `once`). */
  off(name: string, listener: (...args: never[]) => unknown): this {
    const list = this.#listeners.get(name);
    if (list === undefined) return this;
    const i = list.findIndex((l) => l === listener || (l as { listener?: Listener }).listener === listener);
    if (i >= 0) list.splice(i, 1);
    if (list.length === 0) this.#listeners.delete(name);
    return this;
  }

  /** Whether anyone listens to `name` (so work for an event nobody hears is skipped). */
  listens(name: EventName): boolean {
    return this.#listeners.has(name);
  }

  /** Calls every listener of `name` with `args`. */
  emit<K extends EventName>(name: K, ...args: EmitterEvents[K]): void {
    const list = this.#listeners.get(name);
    if (list === undefined) return;
    for (const listener of [...list]) {
      try {
        (listener as (...a: unknown[]) => unknown)(...args);
      } catch (error) {
        this.#onThrow(name, error);
      }
    }
  }
}
