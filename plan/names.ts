/**
 * Event, page and property names turned into identifiers: one function, so
 * that `tally plan lint` reports exactly the collisions the type generator
 * (plan/codegen.ts) would trip on. `Order Completed`, `order_completed`,
 * `orderCompleted` and `order-completed` are all `orderCompleted`.
 *
 * @module
 */

/** Splits a name into words: at every run of characters that are not letters or digits, and where a lower-case letter or digit meets an upper-case one. */
export function words(name: string): string[] {
  return name
    .replace(/([\p{Ll}\p{N}])(\p{Lu})/gu, "$1 $2")
    .replace(/(\p{Lu})(\p{Lu}\p{Ll})/gu, "$1 $2")
    .split(/[^\p{L}\p{N}]+/u)
    .filter((w) => w !== "");
}

const capital = (word: string): string => word.charAt(0).toUpperCase() + word.slice(1);

/**
 * The camelCase identifier for `name`: `Order Completed` -> `orderCompleted`.
 * A name that starts with a digit gets a leading `_` (`42 Things` -> `_42Things`);
 * a name with no letter or digit at all is `_`.
 *
 * @example
 * ```ts
 * import { camelCase } from "./names.ts";
 * camelCase("Order Completed"); // "orderCompleted"
 * ```
 */
export function camelCase(name: string): string {
  const parts = words(name).map((w) => w.toLowerCase());
  if (parts.length === 0) return "_";
  const id = parts[0] + parts.slice(1).map(capital).join("");
  return /^\p{N}/u.test(id) ? `_${id}` : id;
}

/** The PascalCase identifier for `name`: `Order Completed` -> `OrderCompleted` (a leading digit gets `_`). */
export function pascalCase(name: string): string {
  const id = camelCase(name);
  return id.startsWith("_") ? id : capital(id);
}

/**
 * The names among `names` that share an identifier, grouped by that
 * identifier, in the order first seen; names that are equal strings count once.
 */
export function collisions(names: Iterable<string>): Map<string, string[]> {
  const byId = new Map<string, string[]>();
  for (const name of names) {
    const id = camelCase(name);
    const group = byId.get(id);
    if (group === undefined) byId.set(id, [name]);
    else if (!group.includes(name)) group.push(name);
  }
  for (const [id, group] of byId) if (group.length < 2) byId.delete(id);
  return byId;
}
