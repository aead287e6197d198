import type { DeliveryError } from "./errors.ts";
import type { Message } from "./types.ts";

/** Thrown by {@linkcode Context.cancel}: a plugin dropped the message on purpose. */
export class ContextCancelation extends Error {
  /** Creates the marker error. */
  constructor() {
    super("Cannot queue the message: a plugin canceled it");
    this.name = "ContextCancelation";
  }
}

/**
 * One message on its way, as analytics-node hands it to callbacks, plugins
 * and listeners: `ctx.event` is the message, `ctx.id` its messageId.
 *
 * @example
 * ```ts
 * import { Analytics, type Context, type DeliveryError } from "@tally/analytics";
 *
 * const analytics = new Analytics({ writeKey: "KEY", send: false });
 * analytics.track({ userId: "u1", event: "Signed Up" }, (error: DeliveryError | undefined, ctx: Context) => {
 *   if (error) console.error("not delivered:", ctx.id, error.reason);
 *   else console.log("delivered:", ctx.event.event);
 * });
 * ```
 */
export class Context {
  /** The message. Plugins may change it. */
  event: Message;
  #failed: { reason: DeliveryError | unknown } | undefined;

  /** Wraps `event`; `failed` is why it was not delivered, if it was not. */
  constructor(event: Message, failed?: DeliveryError) {
    this.event = event;
    if (failed !== undefined) this.#failed = { reason: failed };
  }

  /** The message's messageId. */
  get id(): string {
    return this.event.messageId;
  }

  /** Why the message was not delivered, or undefined when it was (or is still on its way). */
  failedDelivery(): { reason: DeliveryError | unknown } | undefined {
    return this.#failed;
  }

  /** Records why the message was not delivered (analytics-node's plugin API). */
  setFailedDelivery(failed: { reason: unknown }): void {
    this.#failed = failed;
  }

  /**
   * Sets a field of the message by a dotted path, creating objects on the
   * way: `ctx.updateEvent("context.app.name", "api")`.
   */
  updateEvent(path: string, value: unknown): Message {
    const keys = path.split(".");
    let target = this.event as unknown as Record<string, unknown>;
    for (const key of keys.slice(0, -1)) {
      const next = target[key];
      if (typeof next !== "object" || next === null) target[key] = {};
      target = target[key] as Record<string, unknown>;
    }
    target[keys[keys.length - 1]] = value;
    return this.event;
  }

  /** Drops the message on purpose (from a plugin): it is not sent and not reported as an error. */
  cancel(): never {
    throw new ContextCancelation();
  }

  /** The message, for logging and `JSON.stringify(ctx)`. */
  toJSON(): { id: string; event: Message } {
    return { id: this.id, event: this.event };
  }
}
