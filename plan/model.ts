/**
 * A tracking plan, as Tally holds it once read from any of the formats it
 * accepts (its own file, a Segment Public API rules export, Typewriter's
 * plan.json): the loaders in this folder normalize to this shape, and the
 * validator, `tally plan check`, `tally serve --plan` and the type generator
 * read only this.
 *
 * Schemas are JSON Schema draft-07 objects (or booleans), as Segment
 * Protocols uses them.
 */

/** A JSON Schema (draft-07): an object, or `true`/`false`. */
export type JSONSchema = { [keyword: string]: unknown } | boolean;

/** One planned track event, or one planned page or screen name. */
export interface PlanEvent {
  /** The event name (`event` of a track call, `name` of a page or screen call). */
  name: string;
  /** What the event means (kept as a doc comment in generated types). */
  description?: string;
  /**
   * The event's version, matched against `context.protocols.event_version`
   * (a message without one matches the highest version planned).
   */
  version?: number;
  /** The schema of the message's `properties` object. */
  properties: JSONSchema;
}

/** A tracking plan. */
export interface Plan {
  /** The plan's name, when its file gives one. */
  name?: string;
  /** Applied to every message, whole (for example, required `context` fields). */
  common?: JSONSchema;
  /** Track events. */
  events: PlanEvent[];
  /** Page names (`page` calls). */
  pages: PlanEvent[];
  /** Screen names (`screen` calls). */
  screens: PlanEvent[];
  /** The schema of identify `traits` (optional properties unless the plan says otherwise). */
  identify?: JSONSchema;
  /** The schema of group `traits`. */
  group?: JSONSchema;
}

/** Stable violation categories: the same string in the collector, `tally plan check` and the JSON outputs. */
export const VIOLATION_CATEGORIES = [
  "unplanned_event",
  "required_missing",
  "type_mismatch",
  "additional_property",
  "enum_mismatch",
  "format_mismatch",
  "constraint",
  "unknown_version",
] as const;

/** One of {@linkcode VIOLATION_CATEGORIES}. */
export type ViolationCategory = typeof VIOLATION_CATEGORIES[number];

/**
 * What `tally serve --plan` does with a message that breaks the plan, after
 * Segment Protocols: `observe` marks violations; `block-unplanned` also
 * blocks unplanned events.
 */
export const PLAN_MODES = ["observe", "block-unplanned"] as const;

/** One of {@linkcode PLAN_MODES}. */
export type PlanMode = typeof PLAN_MODES[number];

/** Whether `mode` is one of {@linkcode PLAN_MODES}. */
export const isPlanMode = (mode: unknown): mode is PlanMode => (PLAN_MODES as readonly unknown[]).includes(mode);

/** One way a message breaks the plan. */
export interface Violation {
  category: ViolationCategory;
  /** JSON path of the value in the message, `$.properties.total` style (`$` for the message itself). */
  path: string;
  /** One line a person reads: what was expected and what came. */
  message: string;
}
