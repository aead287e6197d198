/**
 * `tally plan lint`: problems in the plan itself, found before any message
 * is checked: a schema the validator cannot compile, names that collide
 * once turned into identifiers (`Order Completed` and `order_completed` are
 * both `orderCompleted`, which the type generator cannot tell apart), and
 * one event planned twice at the same version.
 *
 * @module
 */
import { compile, describeEvent, newAjv, PlanSchemaError } from "./check.ts";
import type { JSONSchema, Plan, PlanEvent } from "./model.ts";
import { collisions } from "./names.ts";

/** The kinds of problem `tally plan lint` reports. */
export type LintKind = "invalid_schema" | "name_collision" | "duplicate_version";

/** One problem in a plan. */
export interface LintProblem {
  kind: LintKind;
  /** What in the plan: `event "Order Completed" (version 2)`, `identify traits`, `events`. */
  where: string;
  message: string;
}

/** Every problem in `plan`, in plan order. */
export function lintPlan(plan: Plan): LintProblem[] {
  const problems: LintProblem[] = [];
  const ajv = newAjv();
  const tryCompile = (schema: JSONSchema, where: string): void => {
    try {
      compile(ajv, schema, where);
    } catch (error) {
      if (!(error instanceof PlanSchemaError)) throw error;
      problems.push({ kind: "invalid_schema", where, message: error.message.replace(/^Cannot use plan: /, "") });
    }
  };
  if (plan.common !== undefined) tryCompile(plan.common, "common");
  const lists: [string, string, PlanEvent[]][] = [
    ["event", "events", plan.events],
    ["page", "pages", plan.pages],
    ["screen", "screens", plan.screens],
  ];
  for (const [kind, field, events] of lists) {
    const seen = new Map<string, Set<number>>();
    for (const e of events) {
      tryCompile(e.properties, describeEvent(kind, e));
      const versions = seen.get(e.name) ?? new Set<number>();
      const version = e.version ?? 1;
      if (versions.has(version)) {
        problems.push({
          kind: "duplicate_version",
          where: describeEvent(kind, e),
          message: `${kind} ${JSON.stringify(e.name)} is planned twice at version ${version}`,
        });
      }
      versions.add(version);
      seen.set(e.name, versions);
    }
    for (const [id, names] of collisions(seen.keys())) {
      problems.push({
        kind: "name_collision",
        where: field,
        message: `${names.map((n) => JSON.stringify(n)).join(" and ")} are all "${id}" as identifiers`,
      });
    }
  }
  if (plan.identify !== undefined) tryCompile(plan.identify, "identify traits");
  if (plan.group !== undefined) tryCompile(plan.group, "group traits");
  return problems;
}
