/**
 * `tally plan types`: TypeScript generated from a tracking plan, a typed
 * wrapper over an `Analytics` client with one function per planned event.
 *
 * The output, shaped after Segment's Typewriter (one function per event,
 * named after it, taking the message with typed `properties`), differs where
 * Typewriter's shape does not fit Tally's users:
 *
 * - a factory, `createTracking(analytics)`, instead of Typewriter's
 *   module-level `setTypewriterOptions({ analytics })`: a Worker makes a
 *   client per request, a test wraps a client of its own, and nothing is
 *   global;
 * - each function is named for its call and its name (`trackOrderCompleted`,
 *   `pageHome`, `screenSettings`), so the three kinds never collide and an
 *   editor lists them by kind;
 * - the identity is a union (`userId`, `anonymousId` or both), so a call
 *   without either does not compile, where the client would throw;
 * - versions: the unsuffixed function sends the highest version planned, and
 *   every version also has its own function suffixed `V<n>`
 *   (`trackOrderCompletedV1`); a versioned event's functions set
 *   `context.protocols.event_version`, so the plan checker checks each
 *   message against the shape it was typed with.
 *
 * JSON Schema maps to TypeScript as follows: objects with `properties`
 * become named object types (required properties required, others optional;
 * `additionalProperties: false` gives an exact type, which the compiler
 * holds object literals to; absent or `true` keeps an index signature of
 * `unknown`, as the checker accepts more; a schema gives the index signature
 * that type); `enum` and `const` literal unions; `type` lists unions
 * (`["string", "null"]` is `string | null`); `oneOf`/`anyOf` unions, `allOf`
 * intersections; arrays `T[]` (tuples for `items` lists); `integer`
 * `number`; `format: "date-time"` `string | Date` (the client sends a Date as
 * its ISO string); local `$ref`s (`#/definitions/X`) are followed. Each
 * description is kept as a doc comment. Object types are type aliases, not
 * interfaces, so they are assignable to the client's `Properties`.
 *
 * The output depends on the plan alone: events, pages and screens are sorted
 * by name and version, properties keep the schema's order, and no time or
 * path is written; the same plan gives the same bytes.
 *
 * @module
 */
import type { JSONSchema, Plan, PlanEvent } from "./model.ts";
import { pascalCase } from "./names.ts";

/** Options of {@linkcode generateTypes}. */
export interface GenerateOptions {
  /**
   * The module the generated file imports the client's types from.
   *
   * @default {"@tally/analytics"}
   */
  importFrom?: string;
}

/** A plan the generator cannot turn into TypeScript: two names that give the same function name. */
export class TypesError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "TypesError";
  }
}

/** The names the generated file imports or declares itself; planned names that would clash get a suffix. */
const RESERVED = [
  "Analytics",
  "Callback",
  "Id",
  "Integrations",
  "Properties",
  "Timestamp",
  "Identity",
  "CallFields",
  "Tracking",
  "createTracking",
  "withVersion",
];

/** The type of an object whose properties the plan leaves open. */
const OPEN = "{ [property: string]: unknown }";

const IDENTIFIER = /^[A-Za-z_$][A-Za-z0-9_$]*$/;

/** A JSON Schema object's keywords (a boolean schema reads as none). */
type Keywords = { [keyword: string]: unknown };

const isObject = (value: unknown): value is Keywords =>
  typeof value === "object" && value !== null && !Array.isArray(value);

/** `text` as the lines of a doc comment indented by `indent`, `*\/` escaped so the comment cannot end early. */
function docComment(text: string | undefined, indent: string): string {
  if (text === undefined || text.trim() === "") return "";
  const lines = text.replace(/\*\//g, "*\\/").replace(/\r\n?/g, "\n").trim().split("\n").map((l) => l.trimEnd());
  if (lines.length === 1) return `${indent}/** ${lines[0]} */\n`;
  return `${indent}/**\n${lines.map((l) => `${indent} *${l === "" ? "" : ` ${l}`}`).join("\n")}\n${indent} */\n`;
}

/** A property key as TypeScript writes it. */
const key = (name: string): string => IDENTIFIER.test(name) ? name : JSON.stringify(name);

/** `type` wrapped in parentheses when it is a union or intersection, for `T[]`. */
const operand = (type: string): string => /[|&]/.test(type) && !/^\w+$/.test(type) ? `(${type})` : type;

const union = (types: string[]): string => {
  const unique = [...new Set(types)];
  if (unique.includes("unknown")) return "unknown";
  const kept = unique.length > 1 ? unique.filter((t) => t !== "never") : unique;
  return kept.length === 0 ? "never" : kept.join(" | ");
};

function literal(value: unknown): string {
  if (value === null) return "null";
  if (typeof value === "string") return JSON.stringify(value);
  if (typeof value === "number" && Number.isFinite(value)) return String(value);
  if (typeof value === "boolean") return String(value);
  // Objects and arrays as enum members: TypeScript has no literal type for them.
  return "unknown";
}

/** Where a type is being built: the schema `$ref`s resolve against, and the names declared for its refs. */
interface Scope {
  root: JSONSchema;
  /** Declared names by `$ref`, so each is declared once and a recursive one refers to itself. */
  refs: Map<string, string>;
  /** The base of names for types nested in it (`OrderCompleted`). */
  base: string;
}

/** Builds the declarations of one generated file. */
class Emitter {
  /** Declarations in the order they are written, each a complete `export type ...` with its doc comment. */
  readonly declarations: string[] = [];
  readonly #taken = new Set<string>(RESERVED);

  /** `base`, or `base2`, `base3`, ... when taken; the name is taken from then on. */
  name(base: string): string {
    let name = base;
    for (let n = 2; this.#taken.has(name); n++) name = `${base}${n}`;
    this.#taken.add(name);
    return name;
  }

  /**
   * Declares `name` as the type of a whole schema (an event's properties, the traits) and returns it;
   * nested types are named after `base`. The type is always an object type, assignable to the client's
   * `Properties`: a schema that is not an object schema is intersected with an index signature.
   */
  declareRoot(name: string, schema: JSONSchema, doc: string | undefined, base: string): string {
    const scope: Scope = { root: schema, refs: new Map([["#", name]]), base };
    this.#declare(name, schema, doc, scope, true);
    return name;
  }

  /** Declares `name` as the type of `schema`, keeping its slot ahead of the types nested in it. */
  #declare(name: string, schema: unknown, doc: string | undefined, scope: Scope, root = false): void {
    const slot = this.declarations.length;
    this.declarations.push("");
    const description = doc ??
      (isObject(schema) && typeof schema.description === "string" ? schema.description : undefined);
    let body: string;
    if (isObject(schema) && this.#isObjectType(schema)) {
      body = this.#objectBody(schema, root ? scope.base : name, scope);
    } else {
      body = this.type(schema, name, scope);
      if (root) body = body === "unknown" ? OPEN : `${OPEN} & ${operand(body)}`;
    }
    this.declarations[slot] = `${docComment(description, "")}export type ${name} = ${body};\n`;
  }

  #isObjectType(schema: Keywords): boolean {
    const types = Array.isArray(schema.type) ? schema.type : [schema.type];
    return (schema.type === "object" || (schema.type === undefined && isObject(schema.properties))) &&
      !types.includes("null") && schema.oneOf === undefined && schema.anyOf === undefined &&
      schema.allOf === undefined && schema.$ref === undefined && schema.enum === undefined &&
      schema.const === undefined;
  }

  /** The TypeScript type of `schema`; nested object types are declared under names built from `hint`. */
  type(schema: unknown, hint: string, scope: Scope): string {
    if (schema === true || schema === undefined) return "unknown";
    if (schema === false) return "never";
    if (!isObject(schema)) return "unknown";
    if (typeof schema.$ref === "string") return this.#ref(schema.$ref, scope);
    if ("const" in schema) return literal(schema.const);
    if (Array.isArray(schema.enum)) return union(schema.enum.map(literal));
    const parts: string[] = [];
    const base = this.#baseType(schema, hint, scope);
    if (base !== undefined) parts.push(base);
    for (const [keyword, word] of [["oneOf", "Option"], ["anyOf", "Variant"]]) {
      const options = schema[keyword];
      if (Array.isArray(options) && options.length > 0) {
        parts.push(union(options.map((s, i) => this.type(s, `${hint}${word}${i + 1}`, scope))));
      }
    }
    if (Array.isArray(schema.allOf)) {
      for (const [i, s] of schema.allOf.entries()) parts.push(this.type(s, `${hint}Part${i + 1}`, scope));
    }
    const kept = parts.filter((p) => p !== "unknown");
    if (kept.length === 0) return "unknown";
    return kept.length === 1 ? kept[0] : kept.map(operand).join(" & ");
  }

  /** The type `type:` (or the keywords that imply one) gives, undefined when nothing does. */
  #baseType(schema: Keywords, hint: string, scope: Scope): string | undefined {
    let types: unknown[];
    if (Array.isArray(schema.type)) types = schema.type;
    else if (typeof schema.type === "string") types = [schema.type];
    else if (isObject(schema.properties) || schema.additionalProperties !== undefined) types = ["object"];
    else if (schema.items !== undefined) types = ["array"];
    else return undefined;
    return union(types.map((t) => {
      switch (t) {
        case "string":
          return schema.format === "date-time" ? "string | Date" : "string";
        case "integer":
        case "number":
          return "number";
        case "boolean":
          return "boolean";
        case "null":
          return "null";
        case "array":
          return this.#arrayType(schema, hint, scope);
        case "object":
          if (isObject(schema.properties) && Object.keys(schema.properties).length > 0) {
            const name = this.name(hint);
            const { properties, required, additionalProperties, description } = schema;
            this.#declare(
              name,
              { type: "object", properties, required, additionalProperties, description },
              undefined,
              scope,
            );
            return name;
          }
          return this.#objectBody(schema, hint, scope);
        default:
          return "unknown";
      }
    }));
  }

  #arrayType(schema: Keywords, hint: string, scope: Scope): string {
    const items = schema.items;
    if (Array.isArray(items)) {
      const members = items.map((s, i) => this.type(s, `${hint}Item${i + 1}`, scope));
      const rest = schema.additionalItems === false ? "" : `${members.length > 0 ? ", " : ""}...unknown[]`;
      return `[${members.join(", ")}${rest}]`;
    }
    return `${operand(this.type(items, `${hint}Item`, scope))}[]`;
  }

  /**
   * `{ ... }` for an object schema: its properties, then the index signature its `additionalProperties` gives;
   * types nested in it are named `name` + the property's name.
   */
  #objectBody(schema: Keywords, name: string, scope: Scope): string {
    const properties = isObject(schema.properties) ? schema.properties : {};
    const required = new Set(
      Array.isArray(schema.required) ? schema.required.filter((r): r is string => typeof r === "string") : [],
    );
    const lines: string[] = [];
    for (const [prop, propSchema] of Object.entries(properties)) {
      const type = this.type(propSchema, `${name}${pascalCase(prop)}`, scope);
      const doc = isObject(propSchema) && typeof propSchema.description === "string"
        ? propSchema.description
        : undefined;
      lines.push(`${docComment(doc, "  ")}  ${key(prop)}${required.has(prop) ? "" : "?"}: ${type};\n`);
    }
    // Required names the schema lists without describing them are still required, of any type.
    for (const prop of [...required].filter((r) => !Object.hasOwn(properties, r))) {
      lines.push(`  ${key(prop)}: unknown;\n`);
    }
    const extra = schema.additionalProperties;
    if (extra !== false) {
      // A typed index signature must cover the declared properties too: only a map without them gets one.
      const type = isObject(extra) && lines.length === 0 ? this.type(extra, `${name}Value`, scope) : "unknown";
      lines.push(`  [property: string]: ${type};\n`);
    }
    if (lines.length === 0) return "Record<string, never>";
    // A map alone fits on one line, inline where it is used.
    if (lines.length === 1 && lines[0].startsWith("  [property: string]")) return `{ ${lines[0].trim().slice(0, -1)} }`;
    return `{\n${lines.join("")}}`;
  }

  /** A local `$ref` (`#/definitions/Address`, `#/$defs/X`, `#`): declared once, named after its last segment. */
  #ref(ref: string, scope: Scope): string {
    const known = scope.refs.get(ref);
    if (known !== undefined) return known;
    if (!ref.startsWith("#/")) return "unknown";
    let target: unknown = scope.root;
    for (const raw of ref.slice(2).split("/")) {
      const segment = decodeURIComponent(raw).replace(/~1/g, "/").replace(/~0/g, "~");
      target = isObject(target) && Object.hasOwn(target, segment) ? target[segment] : undefined;
    }
    if (target === undefined) return "unknown";
    const name = this.name(`${scope.base}${pascalCase(ref.split("/").pop() ?? "")}`);
    scope.refs.set(ref, name);
    this.#declare(name, target, undefined, scope);
    return name;
  }
}

/** One function to generate: a call kind and a planned event at one version. */
interface Planned {
  kind: "track" | "page" | "screen";
  event: PlanEvent;
  /** The function's name. */
  fn: string;
  /** Whether this is the unsuffixed function of the event's highest version. */
  latest: boolean;
  /** The version to set in `context.protocols.event_version`, when the event is versioned. */
  version?: number;
}

/** Every function the plan's events give, in the order written; throws when two share a name. */
function plannedFunctions(plan: Plan): Planned[] {
  const out: Planned[] = [];
  const kinds = [["track", plan.events], ["page", plan.pages], ["screen", plan.screens]] as const;
  for (const [kind, events] of kinds) {
    const byName = new Map<string, PlanEvent[]>();
    for (const event of events) byName.set(event.name, [...(byName.get(event.name) ?? []), event]);
    for (const [name, versions] of byName) {
      const sorted = [...versions].sort((a, b) => (a.version ?? 0) - (b.version ?? 0));
      const versioned = sorted.some((e) => e.version !== undefined);
      const base = `${kind}${pascalCase(name)}`;
      const latest = sorted[sorted.length - 1];
      out.push({ kind, event: latest, fn: base, latest: true, version: versioned ? latest.version : undefined });
      if (versioned) {
        for (const event of sorted) {
          if (event.version === undefined) continue;
          out.push({ kind, event, fn: `${base}V${event.version}`, latest: false, version: event.version });
        }
      }
    }
  }
  // Track, then page, then screen; by function name within each (the plan's order carries no meaning).
  const rank = { track: 0, page: 1, screen: 2 };
  out.sort((a, b) => rank[a.kind] - rank[b.kind] || (a.fn < b.fn ? -1 : a.fn > b.fn ? 1 : 0));
  const byFn = new Map<string, Planned>();
  for (const b of out) {
    const a = byFn.get(b.fn);
    byFn.set(b.fn, b);
    if (a !== undefined) {
      const what = (p: Planned) =>
        `${p.kind} ${JSON.stringify(p.event.name)}${p.latest ? "" : ` version ${p.version}`}`;
      throw new TypesError(`Cannot generate types: ${what(a)} and ${what(b)} would both be the function ${a.fn}`);
    }
  }
  return out;
}

/** Whether the schema requires at least one property (so the payload argument must be given). */
function requiresSomething(schema: JSONSchema | undefined): boolean {
  return isObject(schema) && Array.isArray(schema.required) && schema.required.length > 0;
}

const KIND_NAME = { track: "", page: "Page", screen: "Screen" } as const;

/**
 * TypeScript source for a typed wrapper over an `Analytics` client: one
 * function per planned track event, page and screen, and `identify` and
 * `group` with the plan's traits. The file has no runtime dependency: it
 * imports only types, and its functions only call the client's methods, so
 * it runs wherever the client does (Deno, Bun, Node, Workers).
 *
 * Throws a {@linkcode TypesError} when two planned names give the same function name
 * (`tally plan lint` reports those before).
 *
 * @example
 * ```ts
 * import { generateTypes } from "./codegen.ts";
 * const source = generateTypes({
 *   events: [{ name: "Order Completed", properties: { type: "object", properties: { total: { type: "number" } } } }],
 *   pages: [],
 *   screens: [],
 * });
 * source.includes("trackOrderCompleted"); // true
 * ```
 */
export function generateTypes(plan: Plan, options: GenerateOptions = {}): string {
  const importFrom = options.importFrom ?? "@tally/analytics";
  const functions = plannedFunctions(plan);
  const emitter = new Emitter();

  // The context the plan's common schema describes, when it describes one.
  const common = isObject(plan.common) ? plan.common : undefined;
  const commonContext = common && isObject(common.properties) ? common.properties.context : undefined;
  const contextRequired = common !== undefined && Array.isArray(common.required) &&
    common.required.includes("context");
  const contextType = commonContext === undefined
    ? "Properties"
    : emitter.declareRoot(emitter.name("CommonContext"), commonContext as JSONSchema, undefined, "CommonContext");

  const members: string[] = [];
  const bodies: string[] = [];
  const payloadTypes = new Map<PlanEvent, string>();
  for (const planned of functions) {
    const { kind, event } = planned;
    let payload = payloadTypes.get(event);
    if (payload === undefined) {
      const suffix = `${KIND_NAME[kind]}${event.version !== undefined && !planned.latest ? `V${event.version}` : ""}`;
      const base = `${pascalCase(event.name)}${suffix}`;
      payload = emitter.declareRoot(
        emitter.name(`${base}Properties`),
        event.properties,
        `The properties of the ${kind} ${kind === "track" ? "event" : "call"} ${JSON.stringify(event.name)}${
          event.version !== undefined ? ` (version ${event.version})` : ""
        }.`,
        base,
      );
      payloadTypes.set(event, payload);
    }
    const optional = requiresSomething(event.properties) ? "" : "?";
    const extra = kind === "track" ? "" : "category?: string | null; ";
    const paramsType = `Identity & CallFields & { ${extra}properties${optional}: ${payload} }`;
    const sends = `Sends the ${kind} ${kind === "track" ? "event" : "call"} ${JSON.stringify(event.name)}${
      planned.version !== undefined ? ` at version ${planned.version}` : ""
    }.`;
    const what = event.description === undefined ? sends : `${event.description}\n\n${sends}`;
    members.push(
      `${
        docComment(`${what}\n\n@returns The message's messageId.`, "  ")
      }  ${planned.fn}(params: ${paramsType}, callback?: Callback): string;\n`,
    );
    const field = kind === "track" ? "event" : "name";
    const context = planned.version === undefined ? "" : `, context: withVersion(params.context, ${planned.version})`;
    bodies.push(
      `    ${planned.fn}: (params, callback) =>\n      analytics.${kind}({ ...params, ${field}: ${
        JSON.stringify(event.name)
      }${context} }, callback),\n`,
    );
  }

  const identifyTraits = plan.identify === undefined
    ? "Properties"
    : emitter.declareRoot(emitter.name("IdentifyTraits"), plan.identify, "The traits of identify calls.", "Identify");
  const groupTraits = plan.group === undefined
    ? "Properties"
    : emitter.declareRoot(emitter.name("GroupTraits"), plan.group, "The traits of group calls.", "Group");
  const traitsOptional = (schema: JSONSchema | undefined) => requiresSomething(schema) ? "" : "?";
  members.push(
    `${docComment("Sends an identify call with the plan's traits.\n\n@returns The message's messageId.", "  ")}` +
      `  identify(params: Identity & CallFields & { traits${
        traitsOptional(plan.identify)
      }: ${identifyTraits} }, callback?: Callback): string;\n`,
    `${docComment("Sends a group call with the plan's traits.\n\n@returns The message's messageId.", "  ")}` +
      `  group(params: Identity & CallFields & { groupId: Id; traits${
        traitsOptional(plan.group)
      }: ${groupTraits} }, callback?: Callback): string;\n`,
    `${docComment("Sends an alias call: `previousId` becomes `userId`.\n\n@returns The message's messageId.", "  ")}` +
      `  alias(params: CallFields & { previousId: Id; userId: Id }, callback?: Callback): string;\n`,
  );
  bodies.push(
    "    identify: (params, callback) => analytics.identify(params, callback),\n",
    "    group: (params, callback) => analytics.group(params, callback),\n",
    "    alias: (params, callback) => analytics.alias(params, callback),\n",
  );

  const versioned = functions.some((f) => f.version !== undefined);
  const imports = ["Analytics", "Callback", "Id", "Integrations", "Properties", "Timestamp"];
  const title = plan.name === undefined ? "a tracking plan" : `the tracking plan ${JSON.stringify(plan.name)}`;
  const out: string[] = [
    `// Generated by \`tally plan types\` from ${title.replace(/[\r\n]/g, " ")}. Do not edit: regenerate it.\n`,
    "// deno-fmt-ignore-file\n",
    "/* eslint-disable */\n",
    `import type { ${imports.join(", ")} } from ${JSON.stringify(importFrom)};\n`,
    "\n",
    "/** Who the call is about: a `userId`, an `anonymousId`, or both. */\n",
    "export type Identity = { userId: Id; anonymousId?: Id | null } | { userId?: Id | null; anonymousId: Id };\n",
    "\n",
    "/** The fields every call takes besides its identity and payload. */\n",
    "export type CallFields = {\n",
    `  /** Context about the call (\`ip\`, \`userAgent\`, ...); \`library\` is added. */\n`,
    `  context${contextRequired ? "" : "?"}: ${contextType}${contextRequired ? "" : " | null"};\n`,
    "  /** When the call took place (a Date, or an ISO-8601 string with a zone); defaults to now. */\n",
    "  timestamp?: Timestamp | null;\n",
    "  /** Destinations to turn on or off. */\n",
    "  integrations?: Integrations | null;\n",
    "  /** The message id; a random UUID v4 by default. */\n",
    "  messageId?: string | null;\n",
    "};\n",
  ];
  for (const declaration of emitter.declarations) out.push("\n", declaration);
  out.push(
    "\n",
    "/** The calls the tracking plan allows, each with its typed payload. */\n",
    "export interface Tracking {\n",
    members.join(""),
    "}\n",
  );
  if (versioned) {
    out.push(
      "\n",
      "/** `context` with `protocols.event_version` set, so the plan checks the message against that version. */\n",
      "function withVersion(context: Properties | null | undefined, version: number): Properties {\n",
      "  const protocols = context?.protocols;\n",
      '  return { ...context, protocols: { ...(typeof protocols === "object" ? protocols : {}), event_version: version } };\n',
      "}\n",
    );
  }
  out.push(
    "\n",
    "/** Wraps `analytics` in the plan's typed calls; each returns the message's messageId, as the client does. */\n",
    "export function createTracking(analytics: Analytics): Tracking {\n",
    "  return {\n",
    bodies.join(""),
    "  };\n",
    "}\n",
  );
  return out.join("");
}
