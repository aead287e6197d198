/**
 * Checks messages against a {@linkcode Plan} with Ajv 8 (draft-07, the
 * formats of ajv-formats): every schema compiled once, when the checker is
 * made, and each of Ajv's errors mapped to a stable
 * {@linkcode ViolationCategory} with the JSON path of the value in the
 * message (`$.properties.items[0].price`). Ajv was picked over
 * @cfworker/json-schema by measurement (bench/plan.ts, BENCHMARKS.md).
 *
 * What is checked, by call type:
 *
 * - every message: the plan's `common` schema, against the whole message;
 * - `track`: `event` must be planned (else `unplanned_event`), at the version
 *   `context.protocols.event_version` names (else `unknown_version`; without
 *   one, the highest version planned), and `properties` must match its schema;
 * - `page` and `screen`: the same, by `name`, once the plan lists any page
 *   (or screen): a plan that lists none leaves those calls unchecked;
 * - `identify` and `group`: `traits` against the plan's traits schema.
 *
 * @module
 */
import { Ajv, type ErrorObject, type ValidateFunction } from "ajv";
import addFormatsModule from "ajv-formats";
import type { JSONSchema, Plan, PlanEvent, Violation, ViolationCategory } from "./model.ts";
import { jsonPath } from "./load.ts";

// ajv-formats is CommonJS: its default export is the plugin on Deno and Bun, the module object on Node.
const addFormats = ((addFormatsModule as unknown as { default?: unknown }).default ?? addFormatsModule) as (
  ajv: Ajv,
) => Ajv;

/** A schema of the plan that the validator cannot compile. */
export class PlanSchemaError extends Error {
  /** Which schema: `event "Order Completed" (version 2)`, `identify traits`, `common`. */
  readonly where: string;
  constructor(where: string, why: string) {
    super(`Cannot use plan: the schema of ${where} is invalid: ${why}`);
    this.name = "PlanSchemaError";
    this.where = where;
  }
}

/** Checks messages against one plan. */
export interface Checker {
  /** The ways `message` breaks the plan; an empty array when it keeps it. */
  check(message: Record<string, unknown>): Violation[];
}

/** A new Ajv set up as the plan checker uses it (draft-07, every error, formats, Segment's extra keywords ignored). */
export function newAjv(): Ajv {
  const ajv = new Ajv({ allErrors: true, strict: false, validateFormats: true, verbose: true });
  addFormats(ajv);
  return ajv;
}

const DRAFT_07 = /^https?:\/\/json-schema\.org\/draft-07\/schema#?$/;

/** `schema` ready for Ajv: its root `$id` dropped (several events may share one) and a draft-07 `$schema` too. */
function prepared(schema: JSONSchema): JSONSchema {
  if (typeof schema === "boolean") return schema;
  const { $id: _id, ...rest } = schema;
  if (typeof rest.$schema === "string" && DRAFT_07.test(rest.$schema)) delete rest.$schema;
  return rest;
}

/** Compiles `schema`, naming `where` in the error when it cannot be. */
export function compile(ajv: Ajv, schema: JSONSchema, where: string): ValidateFunction {
  try {
    return ajv.compile(prepared(schema));
  } catch (error) {
    throw new PlanSchemaError(where, (error as Error).message.replace(/^schema is invalid: /, ""));
  }
}

/** How a planned event is named in errors. */
export const describeEvent = (kind: string, e: PlanEvent): string =>
  `${kind} ${JSON.stringify(e.name)}${e.version === undefined ? "" : ` (version ${e.version})`}`;

interface Compiled {
  version: number;
  validate: ValidateFunction;
}

/** Planned names of one call type: each name's versions, highest first. */
type Table = Map<string, Compiled[]>;

function table(ajv: Ajv, events: PlanEvent[], kind: string): Table {
  const out: Table = new Map();
  for (const e of events) {
    const list = out.get(e.name) ?? [];
    list.push({ version: e.version ?? 1, validate: compile(ajv, e.properties, describeEvent(kind, e)) });
    out.set(e.name, list);
  }
  for (const list of out.values()) list.sort((a, b) => b.version - a.version);
  return out;
}

const short = (value: unknown): string => {
  if (value === undefined) return "nothing";
  const text = JSON.stringify(value) ?? String(value);
  return text.length > 60 ? `${text.slice(0, 57)}...` : text;
};

const typeOf = (value: unknown): string =>
  value === null
    ? "null"
    : Array.isArray(value)
    ? "array"
    : typeof value === "number" && Number.isInteger(value)
    ? "integer"
    : typeof value;

/** The JSON path of Ajv's `instancePath` (a JSON pointer) under `base`, arrays' indexes as `[n]`. */
function pathOf(base: string, pointer: string, data: unknown): string {
  if (pointer === "") return base;
  let path = base;
  let value = data;
  for (const raw of pointer.slice(1).split("/")) {
    const key = raw.replace(/~1/g, "/").replace(/~0/g, "~");
    if (Array.isArray(value)) {
      path = `${path}[${key}]`;
      value = value[Number(key)];
    } else {
      path = jsonPath(path, key);
      value = (value as Record<string, unknown> | undefined)?.[key];
    }
  }
  return path;
}

const CATEGORY: Record<string, ViolationCategory> = {
  required: "required_missing",
  type: "type_mismatch",
  additionalProperties: "additional_property",
  unevaluatedProperties: "additional_property",
  enum: "enum_mismatch",
  const: "enum_mismatch",
  format: "format_mismatch",
};

/** Ajv's errors as violations, paths under `base` (`$.properties`). */
function violations(errors: ErrorObject[], base: string, data: unknown, out: Violation[]): void {
  for (const e of errors) {
    // The branches' own errors say what is wrong; "must match a schema in anyOf" adds nothing but when alone.
    if ((e.keyword === "anyOf" || e.keyword === "oneOf" || e.keyword === "if") && errors.length > 1) continue;
    const category = CATEGORY[e.keyword] ?? "constraint";
    let path = pathOf(base, e.instancePath, data);
    const p = e.params as Record<string, unknown>;
    let message: string;
    switch (e.keyword) {
      case "required":
        path = jsonPath(path, String(p.missingProperty));
        message = `required ${JSON.stringify(p.missingProperty)} is missing`;
        break;
      case "additionalProperties":
      case "unevaluatedProperties": {
        const name = String(p.additionalProperty ?? p.unevaluatedProperty);
        path = jsonPath(path, name);
        message = `${JSON.stringify(name)} is not in the plan`;
        break;
      }
      case "type":
        message = `expected ${String(p.type).replace(/,/g, " or ")}, got ${typeOf(e.data)} ${short(e.data)}`;
        break;
      case "enum":
        message = `expected one of ${(p.allowedValues as unknown[]).map(short).join(", ")}, got ${short(e.data)}`;
        break;
      case "const":
        message = `expected ${short(p.allowedValue)}, got ${short(e.data)}`;
        break;
      case "format":
        message = `expected format ${String(p.format)}, got ${short(e.data)}`;
        break;
      default:
        message = `${e.message ?? e.keyword}, got ${short(e.data)}`;
    }
    out.push({ category, path, message });
  }
}

/** `context.protocols.event_version` as a number, undefined when absent, NaN when it is not a version. */
function requestedVersion(message: Record<string, unknown>): number | undefined {
  const context = message.context as { protocols?: { event_version?: unknown } } | undefined;
  const v = context?.protocols?.event_version;
  if (v === undefined || v === null) return undefined;
  const n = typeof v === "string" && v.trim() !== "" ? Number(v) : v;
  return typeof n === "number" && Number.isInteger(n) ? n : NaN;
}

/**
 * Compiles every schema of `plan` once and returns its checker; throws
 * {@linkcode PlanSchemaError} for a schema the validator refuses.
 *
 * @example
 * ```ts
 * import { parsePlan } from "./load.ts";
 * import { createChecker } from "./check.ts";
 * const plan = parsePlan('{"tally":1,"events":{"Signed Up":{"properties":{"required":["plan"]}}}}', "plan.json");
 * createChecker(plan).check({ type: "track", event: "Signed Up", properties: {} });
 * // [{ category: "required_missing", path: "$.properties.plan", message: 'required "plan" is missing' }]
 * ```
 */
export function createChecker(plan: Plan, ajv: Ajv = newAjv()): Checker {
  const common = plan.common === undefined ? undefined : compile(ajv, plan.common, "common");
  const events = table(ajv, plan.events, "event");
  const pages = table(ajv, plan.pages, "page");
  const screens = table(ajv, plan.screens, "screen");
  const identify = plan.identify === undefined ? undefined : compile(ajv, plan.identify, "identify traits");
  const group = plan.group === undefined ? undefined : compile(ajv, plan.group, "group traits");

  const named = (
    message: Record<string, unknown>,
    planned: Table,
    field: "event" | "name",
    kind: string,
    out: Violation[],
  ): void => {
    const name = message[field];
    const versions = typeof name === "string" ? planned.get(name) : undefined;
    if (versions === undefined) {
      const what = typeof name === "string" ? JSON.stringify(name) : `with no ${field}`;
      out.push({ category: "unplanned_event", path: `$.${field}`, message: `${kind} ${what} is not in the plan` });
      return;
    }
    const wanted = requestedVersion(message);
    let chosen = versions[0];
    if (wanted !== undefined) {
      const match = versions.find((v) => v.version === wanted);
      if (match === undefined) {
        const have = versions.map((v) => v.version).reverse().join(", ");
        out.push({
          category: "unknown_version",
          path: "$.context.protocols.event_version",
          message: `${kind} ${JSON.stringify(name)} has no version ${
            short((message.context as { protocols: { event_version: unknown } }).protocols.event_version)
          } in the plan (it has ${have})`,
        });
        return;
      }
      chosen = match;
    }
    const data = message.properties ?? {};
    if (!chosen.validate(data)) violations(chosen.validate.errors!, "$.properties", data, out);
  };

  return {
    check(message) {
      const out: Violation[] = [];
      if (common !== undefined && !common(message)) violations(common.errors!, "$", message, out);
      switch (message.type) {
        case "track":
          named(message, events, "event", "event", out);
          break;
        case "page":
          if (pages.size > 0) named(message, pages, "name", "page", out);
          break;
        case "screen":
          if (screens.size > 0) named(message, screens, "name", "screen", out);
          break;
        case "identify":
        case "group": {
          const validate = message.type === "identify" ? identify : group;
          const data = message.traits ?? {};
          if (validate !== undefined && !validate(data)) violations(validate.errors!, "$.traits", data, out);
          break;
        }
      }
      return out;
    },
  };
}
