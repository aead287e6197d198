/** What stands where the write key was. */
export const REDACTED = "[write key]";

/**
 * A key this long is taken to be random: any occurrence of it is the key.
 * A shorter one that looks like a token (digits, `_`, `-`, mixed case) is
 * redacted wherever it stands as a whole word. A short plain word (a test key
 * such as `wrong` or `message`) is redacted only where it stands as a
 * credential, so ordinary words are left alone and the key is not given away
 * by the words that vanish.
 */
const RANDOM_KEY_LENGTH = 8;

const wordLike = (key: string): boolean => /^[a-z]+$/.test(key) || /^[A-Z]+$/.test(key);

const escape = (text: string): string => text.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");

function base64(text: string): string {
  let binary = "";
  for (const byte of new TextEncoder().encode(text)) binary += String.fromCharCode(byte);
  return btoa(binary);
}

/** A key's forms as they can stand in text, and the pattern that finds them where they are the key. */
interface Finder {
  forms: string[];
  pattern: RegExp;
}

const cache = new Map<string, Finder>();

/** How to find `key` in a server's answer or an error text, in each form it can take there. */
function finderFor(key: string): Finder {
  const cached = cache.get(key);
  if (cached !== undefined) return cached;
  const plain = [...new Set([key, JSON.stringify(key).slice(1, -1), encodeURIComponent(key)])];
  const encoded = [base64(`${key}:`), base64(key)];
  const any = plain.map(escape).join("|");
  const basic = encoded.map(escape).join("|");
  const alternatives = key.length >= RANDOM_KEY_LENGTH
    ? [any, basic]
    : !wordLike(key)
    ? [`(?<![\\w-])(?:${any}|${basic})(?![\\w-])`]
    : [
      // As a credential: Basic auth, a JSON string, a query or form value, userinfo in a URL.
      `(?<=\\b[Bb]asic\\s+)(?:${basic})`,
      `(?<=")(?:${any})(?=")`,
      `(?<=(?:[Ww]rite_?[Kk]ey|[Kk]ey|[Tt]oken)\\s*[=:]\\s*["']?)(?:${any})(?![\\w-])`,
      `(?<=//)(?:${any})(?=[:@])`,
    ];
  const finder = { forms: [...plain, ...encoded], pattern: new RegExp(alternatives.join("|"), "g") };
  if (cache.size > 16) cache.clear();
  cache.set(key, finder);
  return finder;
}

/**
 * Removes the write key from text that came from elsewhere (a server's
 * answer, an error message): the key itself, JSON-escaped, URL-encoded, and
 * its Basic-auth base64 form. Apply it to whole texts, before they are cut or
 * their whitespace collapsed, so no part of the key survives.
 */
export function redact(text: string, key: string | undefined): string {
  if (key === undefined || key === "" || text === "") return text;
  const { forms, pattern } = finderFor(key);
  // Most texts hold no form of the key at all: a plain search is far cheaper than the pattern.
  if (!forms.some((form) => text.includes(form))) return text;
  return text.replace(pattern, REDACTED);
}
