/**
 * Why a message was not delivered. With a disk queue (`storage`), `storage`
 * is a segment file that could not be read (quarantined, torn; its messages
 * are unknown, so `messages` may be empty) and `expired` a message older
 * than `maxStorageAge`.
 *
 * @example
 * ```ts
 * import { Analytics, type FailureReason } from "@tally/analytics";
 *
 * const counts = new Map<FailureReason, number>();
 * new Analytics({
 *   writeKey: "KEY",
 *   onError: (error, messages) => counts.set(error.reason, (counts.get(error.reason) ?? 0) + messages.length),
 * });
 * ```
 */
export type FailureReason =
  | "http_status"
  | "network"
  | "timeout"
  | "queue_full"
  | "closed"
  | "too_large"
  | "middleware"
  | "storage"
  | "expired";

/**
 * A programmer error in a call (missing id, wrong type, unserializable value,
 * message over 32 KB, bad timestamp). Thrown by the call itself; `field` names
 * the offending field, such as `"userId"` or `"properties.items[2]"`.
 *
 * @example Catch a bad call
 * ```ts
 * import { Analytics, ValidationError } from "@tally/analytics";
 *
 * const analytics = new Analytics({ writeKey: "KEY", send: false });
 * try {
 *   analytics.track({ event: "Signed Up" });
 * } catch (error) {
 *   if (error instanceof ValidationError) console.log(error.field); // "userId"
 * }
 * ```
 */
export class ValidationError extends TypeError {
  /** The field that is wrong, as a path from the message's top level. */
  readonly field: string;

  /** Creates an error about `field`; `message` is the whole sentence. */
  constructor(field: string, message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = "ValidationError";
    this.field = field;
  }
}

/**
 * Why a batch of messages will not be delivered. Passed to `onError` and to
 * per-call callbacks; never thrown from a call.
 *
 * @example Log failures by reason
 * ```ts
 * import { Analytics, type DeliveryError } from "@tally/analytics";
 *
 * const analytics = new Analytics({
 *   writeKey: "KEY",
 *   send: false,
 *   onError: (error: DeliveryError, messages) => {
 *     console.error(error.reason, error.status, messages.length);
 *   },
 * });
 * ```
 */
export class DeliveryError extends Error {
  /** The reason, one of {@linkcode FailureReason}. */
  readonly reason: FailureReason;
  /** The last HTTP status the server answered, when there was one. */
  readonly status?: number;
  /** How many times the batch was retried before giving up. */
  readonly retries: number;

  /** Creates a delivery error; `cause` keeps the underlying error, if any. */
  constructor(
    reason: FailureReason,
    message: string,
    init: { status?: number; retries?: number; cause?: unknown } = {},
  ) {
    super(message, init.cause === undefined ? undefined : { cause: init.cause });
    this.name = "DeliveryError";
    this.reason = reason;
    if (init.status !== undefined) this.status = init.status;
    this.retries = init.retries ?? 0;
  }
}
