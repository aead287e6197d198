/**
 * Reads a tracking plan from any of the three formats Tally accepts and
 * normalizes it to a {@linkcode Plan}, the format told apart by the file's
 * shape, never by its name:
 *
 * - **Tally's own file**: `{"tally": 1, "name", "common", "events": {NAME:
 *   {"description", "version", "properties": SCHEMA}}, "pages": {...},
 *   "screens": {...}, "identify": SCHEMA, "group": SCHEMA}`, where an event
 *   may also be an array of such definitions, one per version.
 * - **A Segment Public API rules export** (`GET /tracking-plans/{id}/rules`):
 *   `{"data": {"rules": [{"type": "TRACK" | "IDENTIFY" | "GROUP" | "PAGE" |
 *   "SCREEN" | "COMMON", "key", "version", "jsonSchema"}]}}`, each
 *   `jsonSchema` a schema of the whole message: event properties are under
 *   `jsonSchema.properties.properties`, traits under
 *   `jsonSchema.properties.traits`.
 * - **Typewriter's `plan.json`**: `{"rules": {"events": [{"name",
 *   "description", "rules", "version"}], "identify", "group", "global"}}`
 *   (or `events` at the top), `rules` again a whole-message schema.
 *
 * Quirks handled: `id` where `$id` is meant (Segment's older exports),
 * Segment's own keywords (`labels`) left for the validator to ignore, and
 * traits: identify and group calls send only the traits that changed, so
 * the top-level `required` of a traits schema is dropped unless a Tally
 * plan says `"requiredTraits": true`.
 *
 * Errors are {@linkcode PlanError}s: "Cannot read plan FILE (FORMAT): $.path: why".
 *
 * @module
 */
import { readFile } from "node:fs/promises";
import { whyNotJson } from "../cli/json_error.ts";
import type { JSONSchema, Plan, PlanEvent } from "./model.ts";

/** The formats a plan file may be in. */
export type PlanFormat = "tally" | "segment" | "typewriter";

const FORMAT_NAMES: Record<PlanFormat, string> = {
  tally: "Tally plan",
  segment: "Segment Public API rules export",
  typewriter: "Typewriter plan.json",
};

/** A plan that cannot be read: which file, in which format, and where in it. */
export class PlanError extends Error {
  /** The file (or the source name given to {@linkcode parsePlan}). */
  readonly source: string;
  /** The format detected, when one was. */
  readonly format: PlanFormat | undefined;
  /** JSON path of what is wrong (`$` for the whole file). */
  readonly path: string;

  constructor(source: string, format: PlanFormat | undefined, path: string, why: string) {
    const what = format === undefined ? source : `${source} (${FORMAT_NAMES[format]})`;
    super(`Cannot read plan ${what}: ${path === "$" ? "" : `${path}: `}${why}`);
    this.name = "PlanError";
    this.source = source;
    this.format = format;
    this.path = path;
  }
}

type Obj = Record<string, unknown>;
const isObject = (v: unknown): v is Obj => typeof v === "object" && v !== null && !Array.isArray(v);

const describe = (v: unknown): string =>
  v === null ? "null" : Array.isArray(v) ? "an array" : typeof v === "object" ? "an object" : `a ${typeof v}`;

/** `$.events["Order Completed"]` style: a plain key as `.key`, any other in brackets. */
export function jsonPath(base: string, key: string | number): string {
  if (typeof key === "number") return `${base}[${key}]`;
  return /^[A-Za-z_$][A-Za-z0-9_$]*$/.test(key) ? `${base}.${key}` : `${base}[${JSON.stringify(key)}]`;
}

/** Keywords whose value is a map of subschemas, one subschema, or an array of them. */
const SCHEMA_MAPS = ["properties", "patternProperties", "definitions", "$defs", "dependencies"];
const SCHEMA_ONE = [
  "additionalProperties",
  "additionalItems",
  "contains",
  "propertyNames",
  "if",
  "then",
  "else",
  "not",
];
const SCHEMA_LIST = ["allOf", "anyOf", "oneOf"];

/** A copy of `schema` with `id` turned into `$id` wherever it stands as a keyword (never a property named id). */
function fixIds(schema: unknown): unknown {
  if (!isObject(schema)) return schema;
  const out: Obj = {};
  for (const [key, value] of Object.entries(schema)) {
    if (key === "id" && typeof value === "string" && !("$id" in schema)) out.$id = value;
    else if (SCHEMA_MAPS.includes(key) && isObject(value)) {
      out[key] = Object.fromEntries(Object.entries(value).map(([k, v]) => [k, fixIds(v)]));
    } else if (SCHEMA_ONE.includes(key)) out[key] = fixIds(value);
    else if (SCHEMA_LIST.includes(key) && Array.isArray(value)) out[key] = value.map(fixIds);
    else if (key === "items") out[key] = Array.isArray(value) ? value.map(fixIds) : fixIds(value);
    else out[key] = value;
  }
  return out;
}

/** Reads plans in one format, throwing {@linkcode PlanError}s that name it. */
class Reader {
  constructor(readonly source: string, readonly format: PlanFormat) {}

  fail(path: string, why: string): never {
    throw new PlanError(this.source, this.format, path, why);
  }

  schema(value: unknown, path: string): JSONSchema {
    if (typeof value === "boolean") return value;
    if (!isObject(value)) this.fail(path, `expected a JSON Schema (an object or true/false), got ${describe(value)}`);
    return fixIds(value) as JSONSchema;
  }

  object(value: unknown, path: string): Obj {
    if (!isObject(value)) this.fail(path, `expected an object, got ${describe(value)}`);
    return value;
  }

  array(value: unknown, path: string): unknown[] {
    if (!Array.isArray(value)) this.fail(path, `expected an array, got ${describe(value)}`);
    return value;
  }

  string(value: unknown, path: string): string {
    if (typeof value !== "string" || value === "") {
      this.fail(path, `expected a non-empty string, got ${describe(value)}`);
    }
    return value;
  }

  optionalString(value: unknown, path: string): string | undefined {
    if (value === undefined || value === null || value === "") return undefined;
    if (typeof value !== "string") this.fail(path, `expected a string, got ${describe(value)}`);
    return value;
  }

  version(value: unknown, path: string): number | undefined {
    if (value === undefined || value === null) return undefined;
    if (typeof value !== "number" || !Number.isInteger(value) || value < 1) {
      this.fail(path, `expected a version number (an integer from 1), got ${JSON.stringify(value) ?? describe(value)}`);
    }
    return value;
  }

  /**
   * The part of a whole-message schema under `properties[field]` (Segment and
   * Typewriter nest event properties as `properties.properties`).
   */
  nested(message: unknown, field: "properties" | "traits", path: string): JSONSchema {
    const whole = this.schema(message, path);
    if (typeof whole === "boolean") return whole;
    const props = whole.properties;
    if (props === undefined) return true;
    const inner = this.object(props, `${path}.properties`)[field];
    if (inner === undefined) return true;
    return this.schema(inner, `${path}.properties.${field}`);
  }
}

/** A traits schema with its top-level `required` dropped: identify and group calls send only what changed. */
function optionalTraits(schema: JSONSchema | undefined): JSONSchema | undefined {
  if (schema === undefined || typeof schema === "boolean" || !("required" in schema)) return schema;
  const { required: _, ...rest } = schema;
  return rest;
}

const emptyPlan = (): Plan => ({ events: [], pages: [], screens: [] });

function readTally(doc: Obj, source: string): Plan {
  const r = new Reader(source, "tally");
  if (doc.tally !== 1) {
    r.fail("$.tally", `expected 1 (the only version of the format), got ${JSON.stringify(doc.tally)}`);
  }
  const known = new Set(["tally", "name", "description", "common", "events", "pages", "screens", "identify", "group"]);
  known.add("requiredTraits");
  known.add("$schema");
  for (const key of Object.keys(doc)) {
    if (!known.has(key)) r.fail(jsonPath("$", key), `unknown field (a plan takes ${[...known].join(", ")})`);
  }
  const plan = emptyPlan();
  const name = r.optionalString(doc.name, "$.name");
  if (name !== undefined) plan.name = name;
  if (doc.common !== undefined) plan.common = r.schema(doc.common, "$.common");
  const list = (field: "events" | "pages" | "screens"): PlanEvent[] => {
    const out: PlanEvent[] = [];
    if (doc[field] === undefined) return out;
    for (const [eventName, value] of Object.entries(r.object(doc[field], `$.${field}`))) {
      const at = jsonPath(`$.${field}`, eventName);
      const defs = Array.isArray(value) ? value.map((v, i) => [v, `${at}[${i}]`] as const) : [[value, at] as const];
      for (const [def, path] of defs) {
        const d = r.object(def, path);
        for (const key of Object.keys(d)) {
          if (!["description", "version", "properties"].includes(key)) {
            r.fail(jsonPath(path, key), "unknown field (an event takes description, version, properties)");
          }
        }
        const event: PlanEvent = {
          name: eventName,
          properties: d.properties === undefined ? true : r.schema(d.properties, `${path}.properties`),
        };
        const description = r.optionalString(d.description, `${path}.description`);
        if (description !== undefined) event.description = description;
        const version = r.version(d.version, `${path}.version`);
        if (version !== undefined) event.version = version;
        out.push(event);
      }
    }
    return out;
  };
  plan.events = list("events");
  plan.pages = list("pages");
  plan.screens = list("screens");
  if (doc.requiredTraits !== undefined && typeof doc.requiredTraits !== "boolean") {
    r.fail("$.requiredTraits", `expected true or false, got ${describe(doc.requiredTraits)}`);
  }
  const keep = doc.requiredTraits === true;
  for (const call of ["identify", "group"] as const) {
    if (doc[call] === undefined) continue;
    const schema = r.schema(doc[call], `$.${call}`);
    plan[call] = keep ? schema : optionalTraits(schema);
  }
  return plan;
}

function readSegment(rules: unknown[], source: string, rulesPath: string, name: string | undefined): Plan {
  const r = new Reader(source, "segment");
  const plan = emptyPlan();
  if (name !== undefined) plan.name = name;
  rules.forEach((value, i) => {
    const path = `${rulesPath}[${i}]`;
    const rule = r.object(value, path);
    const type = rule.type;
    const schemaPath = `${path}.jsonSchema`;
    const jsonSchema = rule.jsonSchema ?? rule.json_schema;
    switch (type) {
      case "TRACK":
      case "PAGE":
      case "SCREEN": {
        const event: PlanEvent = {
          name: r.string(rule.key, `${path}.key`),
          properties: r.nested(jsonSchema, "properties", schemaPath),
        };
        const whole = isObject(jsonSchema) ? jsonSchema : {};
        const description = r.optionalString(rule.description ?? whole.description, `${path}.description`);
        if (description !== undefined) event.description = description;
        const version = r.version(rule.version, `${path}.version`);
        if (version !== undefined) event.version = version;
        (type === "TRACK" ? plan.events : type === "PAGE" ? plan.pages : plan.screens).push(event);
        break;
      }
      case "IDENTIFY":
      case "GROUP": {
        const field = type === "IDENTIFY" ? "identify" : "group";
        if (plan[field] !== undefined) r.fail(path, `a second ${type} rule (a plan has one)`);
        plan[field] = optionalTraits(r.nested(jsonSchema, "traits", schemaPath));
        break;
      }
      case "COMMON":
        if (plan.common !== undefined) r.fail(path, "a second COMMON rule (a plan has one)");
        plan.common = r.schema(jsonSchema, schemaPath);
        break;
      default:
        r.fail(`${path}.type`, `expected TRACK, IDENTIFY, GROUP, PAGE, SCREEN or COMMON, got ${JSON.stringify(type)}`);
    }
  });
  return plan;
}

function readTypewriter(doc: Obj, source: string): Plan {
  const r = new Reader(source, "typewriter");
  const nestedRules = isObject(doc.rules);
  const base = nestedRules ? "$.rules" : "$";
  const rules = nestedRules ? doc.rules as Obj : doc;
  const plan = emptyPlan();
  const name = r.optionalString(
    doc.display_name ?? doc.name,
    doc.display_name !== undefined ? "$.display_name" : "$.name",
  );
  if (name !== undefined) plan.name = name;
  r.array(rules.events, `${base}.events`).forEach((value, i) => {
    const path = `${base}.events[${i}]`;
    const e = r.object(value, path);
    const event: PlanEvent = {
      name: r.string(e.name, `${path}.name`),
      properties: e.rules === undefined ? true : r.nested(e.rules, "properties", `${path}.rules`),
    };
    const description = r.optionalString(e.description, `${path}.description`);
    if (description !== undefined) event.description = description;
    const version = r.version(e.version, `${path}.version`);
    if (version !== undefined) event.version = version;
    plan.events.push(event);
  });
  for (const call of ["identify", "group"] as const) {
    if (rules[call] === undefined || rules[call] === null) continue;
    plan[call] = optionalTraits(r.nested(rules[call], "traits", `${base}.${call}`));
  }
  if (rules.global !== undefined && rules.global !== null) plan.common = r.schema(rules.global, `${base}.global`);
  return plan;
}

/** Where `text` stops being JSON, as "PROBLEM at line L, column C". */
function where(text: string): string {
  const why = whyNotJson(text) ?? "unreadable";
  const m = /^(.*) at character (\d+)$/.exec(why);
  if (m === null) return why;
  const before = text.slice(0, Number(m[2]) - 1);
  const line = before.split("\n").length;
  return `${m[1]} at line ${line}, column ${before.length - before.lastIndexOf("\n")}`;
}

/** Which format `doc` is in, or undefined when it is none of them. */
export function detectFormat(doc: unknown): PlanFormat | undefined {
  if (!isObject(doc)) return undefined;
  if ("tally" in doc) return "tally";
  if (isObject(doc.data) && Array.isArray(doc.data.rules)) return "segment";
  if (Array.isArray(doc.rules)) return "segment";
  if (isObject(doc.rules) && Array.isArray(doc.rules.events)) return "typewriter";
  if (Array.isArray(doc.events)) return "typewriter";
  return undefined;
}

/**
 * Parses the text of a plan file; `source` names it in errors.
 *
 * @example
 * ```ts
 * import { parsePlan } from "./load.ts";
 * const plan = parsePlan('{"tally":1,"events":{"Signed Up":{"properties":{"type":"object"}}}}', "plan.json");
 * plan.events[0].name; // "Signed Up"
 * ```
 */
export function parsePlan(text: string, source: string): Plan {
  let doc: unknown;
  try {
    doc = JSON.parse(text.charCodeAt(0) === 0xfeff ? text.slice(1) : text);
  } catch {
    // In Tally's words, with a line: the runtimes' messages differ and quote pieces of the text.
    throw new PlanError(source, undefined, "$", `not valid JSON (${where(text)})`);
  }
  const format = detectFormat(doc);
  switch (format) {
    case "tally":
      return readTally(doc as Obj, source);
    case "segment": {
      const d = doc as Obj;
      const inData = isObject(d.data);
      const rules = inData ? (d.data as Obj).rules as unknown[] : d.rules as unknown[];
      const name = typeof d.name === "string" ? d.name : undefined;
      return readSegment(rules, source, inData ? "$.data.rules" : "$.rules", name);
    }
    case "typewriter":
      return readTypewriter(doc as Obj, source);
    default:
      throw new PlanError(
        source,
        undefined,
        "$",
        `not a plan: expected a Tally plan ({"tally": 1, "events": {...}}), a Segment Public API rules export ` +
          `({"data": {"rules": [...]}}) or a Typewriter plan.json ({"rules": {"events": [...]}}), got ${
            describe(doc)
          }` +
          (isObject(doc) ? ` with ${Object.keys(doc).length === 0 ? "no fields" : "other fields"}` : ""),
      );
  }
}

/** Reads and parses the plan file at `path`. */
export async function loadPlan(path: string): Promise<Plan> {
  let text: string;
  try {
    text = await readFile(path, "utf8");
  } catch (error) {
    const code = (error as { code?: string }).code;
    const why = code === "ENOENT"
      ? "no such file"
      : code === "EISDIR"
      ? "it is a directory"
      : code === "EACCES"
      ? "permission denied"
      : code ?? (error as Error).message;
    throw new PlanError(path, undefined, "$", why);
  }
  return parsePlan(text, path);
}
