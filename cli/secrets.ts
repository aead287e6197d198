/**
 * The write keys tally must never print, and the text it prints cleaned of
 * them. The keys are every one in effect: each `--write-key` (or
 * `--writeKey`) value on the command line, `TALLY_WRITE_KEY` and
 * `SEGMENT_WRITE_KEY`, read before the arguments are parsed so that a
 * parsing error is cleaned too.
 *
 * Two rules apply. Any text is passed through the library's redaction
 * (lib/redact.ts), which finds a key in each form it takes and leaves an
 * ordinary word equal to a short key alone outside credential positions.
 * And a value the user typed that is a key (`tally send $KEY`, `--timeout
 * $KEY`) is the key typed in the wrong place: it is shown as `[write key]`
 * whatever its shape, which only the CLI can know, since only it knows which
 * part of a line is such a value.
 *
 * @module
 */
import { redact, REDACTED } from "../lib/redact.ts";

const KEY_FLAGS = new Set(["--write-key", "--writeKey"]);

/** The write keys in effect, and how text is cleaned of them. */
export class Secrets {
  /** No key: nothing to clean. */
  static readonly none: Secrets = new Secrets([]);

  readonly #keys: string[];

  /** `keys`: each key (undefined and blank ones are skipped). */
  constructor(keys: Iterable<string | undefined>) {
    const found = new Set<string>();
    for (const key of keys) {
      if (key === undefined || key.trim() === "") continue;
      found.add(key);
      found.add(key.trim());
    }
    // Longest first: a short key found inside a longer one must not break the longer one up before it is found.
    this.#keys = [...found].sort((a, b) => b.length - a.length);
  }

  /** The keys given on `argv` (before any `--`) and in `env`. */
  static of(argv: readonly string[], env: Record<string, string | undefined>): Secrets {
    const keys = [env.TALLY_WRITE_KEY, env.SEGMENT_WRITE_KEY];
    for (let i = 0; i < argv.length; i++) {
      const arg = argv[i];
      if (arg === "--") break;
      const eq = arg.indexOf("=");
      if (eq > 0 && KEY_FLAGS.has(arg.slice(0, eq))) keys.push(arg.slice(eq + 1));
      // "--write-key --event E" is a forgotten value (args.ts), not a key named "--event".
      else if (KEY_FLAGS.has(arg) && argv[i + 1] !== undefined && !argv[i + 1].startsWith("--")) keys.push(argv[++i]);
    }
    return new Secrets(keys);
  }

  /** `text` with every key in it replaced by `[write key]`, by the library's rules. */
  text(text: string): string {
    for (const key of this.#keys) text = redact(text, key);
    return text;
  }

  /** A value the user typed, as a message may quote it: `[write key]` when it is a key, else cleaned as {@linkcode text}. */
  value(value: string): string {
    return this.#keys.includes(value) || this.#keys.includes(value.trim()) ? REDACTED : this.text(value);
  }

  /** Whether `text` is a key or holds one: then a message that would quote a cut piece of it must not. */
  holds(text: string): boolean {
    return this.value(text) !== text;
  }
}
