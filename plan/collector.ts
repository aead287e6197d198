/**
 * The tracking plan as `tally serve --plan FILE` uses it: loaded and
 * compiled once, every message checked as it is received, and the file
 * reloaded when it changes (a broken new version is reported and the old
 * one kept). The collector imports only this file of plan/.
 *
 * Modes, after Segment Protocols: `observe` marks violations and blocks
 * nothing; `block-unplanned` also blocks unplanned events. A blocked
 * message is answered as Segment answers it (the request still gets 200:
 * blocking happens after Segment has accepted the batch) and is kept,
 * marked blocked, so the inspector shows what would have been dropped.
 *
 * @module
 */
import { type Checker, createChecker } from "./check.ts";
import { loadPlan } from "./load.ts";
import { isPlanMode, type Plan, PLAN_MODES, type PlanMode, type Violation } from "./model.ts";
import { watchPlan } from "./watch.ts";

export { PLAN_MODES, type PlanMode } from "./model.ts";

/** Options of {@linkcode openPlan}. */
export interface OpenPlanOptions {
  /**
   * `observe` marks violations; `block-unplanned` also blocks unplanned events.
   * @default {"observe"}
   */
  mode?: PlanMode;
  /**
   * Reload the file when it changes on disk.
   * @default {false}
   */
  watch?: boolean;
  /** Called after the file changed and the new plan is in effect, with its {@linkcode OpenPlan.describe}. */
  onReload?: (description: string) => void;
  /** Called when the changed file cannot be used (the previous plan stays in effect). */
  onError?: (error: Error) => void;
  /** Poll interval of the watch, in milliseconds (tests make it short). */
  pollMs?: number;
}

/** The verdict on one message. */
export interface PlanVerdict {
  violations: Violation[];
  /** True when the mode blocks this message (`block-unplanned` and an unplanned event). */
  blocked: boolean;
}

/** An open plan. */
export interface OpenPlan {
  /** Checks one message against the plan in effect. */
  check(message: Record<string, unknown>): PlanVerdict;
  /** One line for the collector's log: the file, what it plans, the mode. */
  describe(): string;
  /** The plan in effect. */
  readonly plan: Plan;
  /** Stops watching the file. */
  close(): void;
}

const count = (n: number, one: string): string => `${n} ${one}${n === 1 ? "" : "s"}`;

const distinct = (events: Plan["events"]): number => new Set(events.map((e) => e.name)).size;

/** `plan`'s contents in a few words. */
export function summary(plan: Plan): string {
  const parts = [count(distinct(plan.events), "event")];
  if (plan.pages.length > 0) parts.push(count(distinct(plan.pages), "page"));
  if (plan.screens.length > 0) parts.push(count(distinct(plan.screens), "screen"));
  if (plan.identify !== undefined) parts.push("identify traits");
  if (plan.group !== undefined) parts.push("group traits");
  if (plan.common !== undefined) parts.push("a common schema");
  return parts.join(", ");
}

/**
 * Loads and compiles the plan at `path`; rejects with a `PlanError` or
 * `PlanSchemaError` (both "Cannot ..." one-liners) when it cannot be used.
 */
export async function openPlan(path: string, options: OpenPlanOptions = {}): Promise<OpenPlan> {
  const mode = options.mode ?? "observe";
  if (!isPlanMode(mode)) {
    throw new TypeError(`Cannot open plan: mode must be ${PLAN_MODES.join(" or ")}, got ${JSON.stringify(mode)}`);
  }
  let plan = await loadPlan(path);
  let checker: Checker = createChecker(plan);
  const describe = (): string => `plan ${path}: ${summary(plan)} (mode ${mode})`;
  let pending: Checker | undefined;
  const watch = options.watch === true
    ? watchPlan(path, (next) => {
      plan = next;
      checker = pending ?? createChecker(next);
      pending = undefined;
      options.onReload?.(describe());
    }, {
      onError: (error) => options.onError?.(error),
      // Compiled before it is taken: a plan whose schemas do not compile leaves the old one in effect.
      accept: (next) => void (pending = createChecker(next)),
      ...(options.pollMs === undefined ? {} : { pollMs: options.pollMs }),
    })
    : undefined;
  return {
    check(message) {
      const violations = checker.check(message);
      const blocked = mode === "block-unplanned" && violations.some((v) => v.category === "unplanned_event");
      return { violations, blocked };
    },
    describe,
    get plan() {
      return plan;
    },
    close() {
      watch?.close();
    },
  };
}
