/**
 * `tally track|identify|page|screen|group|alias`: one call of the library,
 * every field a flag, delivered before tally exits. Exit 0 when the server
 * took the message, 1 when it will not be delivered, 2 for a usage error or
 * a message the library refuses.
 *
 * @module
 */
import { type DeliveryError, type MessageType, ValidationError } from "../mod.ts";
import { flagHelp, type FlagSpec, parseArgs, UsageError } from "./args.ts";
import { COMMON_FLAGS, makeClient } from "./client.ts";
import { jsonLine } from "./escape.ts";
import type { Io } from "./io.ts";

/** The six call types, in the order help lists them. */
export const CALL_TYPES: readonly MessageType[] = ["track", "identify", "page", "screen", "group", "alias"];

const flag = (name: string, kind: FlagSpec["kind"], value: string, help: string): FlagSpec => ({
  name,
  kind,
  value,
  help,
});

const USER_ID = flag("user-id", "string", "ID", "the user's id in your database");
const ANONYMOUS_ID = flag("anonymous-id", "string", "ID", "an anonymous id (when there is no --user-id)");
const CALL_OPTIONS: FlagSpec[] = [
  flag("context", "json", "JSON", 'context object, such as \'{"ip":"1.2.3.4"}\' (library is added)'),
  flag("integrations", "json", "JSON", 'destinations on or off, such as \'{"All":false,"Mixpanel":true}\''),
  flag("timestamp", "string", "ISO", "when it happened, with a zone: 2012-10-17T18:58:57.911Z (default: now)"),
  flag("message-id", "string", "ID", "the message id Segment deduplicates on (default: a random UUID)"),
];

/** Each call's own flags, and what it does, for `--help`. */
const CALLS: Record<MessageType, { summary: string; example: string; flags: FlagSpec[] }> = {
  track: {
    summary: "Record an action a user performed.",
    example: `tally track --user-id 019mr8mf4r --event "Deploy Finished" --properties '{"service":"api"}'`,
    flags: [
      USER_ID,
      ANONYMOUS_ID,
      flag("event", "string", "NAME", 'the event name, such as "Signed Up" (required)'),
      flag("properties", "json", "JSON", "the event's properties object"),
    ],
  },
  identify: {
    summary: "Tie a user to their traits.",
    example: `tally identify --user-id 019mr8mf4r --traits '{"email":"john@example.com","plan":"Free"}'`,
    flags: [USER_ID, ANONYMOUS_ID, flag("traits", "json", "JSON", "what you know about the user")],
  },
  page: {
    summary: "Record a page view.",
    example:
      `tally page --user-id 019mr8mf4r --category Docs --name Python --properties '{"url":"http://segment.com"}'`,
    flags: [
      USER_ID,
      ANONYMOUS_ID,
      flag("name", "string", "NAME", "the page name"),
      flag("category", "string", "NAME", "the page category"),
      flag("properties", "json", "JSON", "the page's properties (url, title, ...)"),
    ],
  },
  screen: {
    summary: "Record a screen view in a mobile app.",
    example: `tally screen --user-id 019mr8mf4r --category Settings --name Brightness`,
    flags: [
      USER_ID,
      ANONYMOUS_ID,
      flag("name", "string", "NAME", "the screen name"),
      flag("category", "string", "NAME", "the screen category"),
      flag("properties", "json", "JSON", "the screen's properties"),
    ],
  },
  group: {
    summary: "Tie a user to a group (a company, an account).",
    example: `tally group --user-id 019mr8mf4r --group-id initech --traits '{"name":"Initech"}'`,
    flags: [
      USER_ID,
      ANONYMOUS_ID,
      flag("group-id", "string", "ID", "the group's id (required)"),
      flag("traits", "json", "JSON", "what you know about the group"),
    ],
  },
  alias: {
    summary: "Tie a user's previous id to their new one.",
    example: `tally alias --previous-id 92734232-2342423423-973945 --user-id 1234`,
    flags: [
      flag("previous-id", "string", "ID", "the id the user had before (required)"),
      flag("user-id", "string", "ID", "the id the user has now (required)"),
    ],
  },
};

/** The flags `tally <type>` accepts. */
export function callFlags(type: MessageType): FlagSpec[] {
  return [...CALLS[type].flags, ...CALL_OPTIONS, ...COMMON_FLAGS];
}

/** `tally <type> --help`. */
export function callHelp(type: MessageType): string {
  const call = CALLS[type];
  return `${call.summary}

Usage: tally ${type} [flags]

Example:
  ${call.example}

Flags (each also accepted in camelCase, such as --userId):
${flagHelp(callFlags(type))}

Exit codes: 0 delivered; 1 not delivered; 2 usage error or invalid message.
`;
}

/** Message fields, as the flags that set them, in the library's error sentences. */
const FIELD_FLAGS =
  /\b(userId|anonymousId|event|properties|traits|context|integrations|timestamp|messageId|category|name|groupId|previousId)\b/g;
const toFlag = (field: string): string => `--${field.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`)}`;

/** Runs `tally <type> ...`; resolves to the exit code. */
export async function runCall(type: MessageType, argv: readonly string[], io: Io): Promise<number> {
  const parsed = parseArgs(argv, callFlags(type), type, io.secrets);
  if (parsed.flags.get("help") === true) {
    await io.outFixed(callHelp(type));
    return 0;
  }
  if (parsed.positionals.length > 0) {
    const extra = io.secrets.value(parsed.positionals[0]);
    throw new UsageError(`${type} takes flags only, got "${extra}" (see tally ${type} --help)`);
  }
  const f = parsed.flags;
  const params: Record<string, unknown> = {};
  for (const [name, value] of f) {
    if (COMMON_FLAGS.some((s) => s.name === name)) continue;
    params[name.replace(/-([a-z])/g, (_, c: string) => c.toUpperCase())] = value;
  }
  // Failures are reported once, through the call's callback, not also through the logger.
  const client = makeClient(parsed, io, { onError: () => {} });
  const { analytics } = client;
  let outcome: DeliveryError | undefined | null = null; // null: not settled yet
  let messageId: string;
  try {
    const call = analytics[type] as (p: Record<string, unknown>, cb: (e: DeliveryError | undefined) => void) => string;
    messageId = call.call(analytics, params, (error) => void (outcome = error));
  } catch (error) {
    if (!(error instanceof ValidationError)) throw error;
    // "Cannot track: userId or anonymousId is required" -> "... --user-id or --anonymous-id is required".
    const message = error.message.replace(
      /^(Cannot \w+: )(.*)$/s,
      (_, head: string, rest: string) => head + rest.replace(FIELD_FLAGS, toFlag),
    );
    throw new UsageError(message);
  }
  await analytics.close();
  const error = outcome as DeliveryError | undefined | null;
  if (client.dryRun) return 0;
  if (error === null) throw new Error(`the ${type} was neither delivered nor reported`);
  // Cleaned field by field: the rest is tally's own words, which a short key must not eat ("type":"track").
  const id = io.secrets.value(messageId);
  if (client.json) {
    const result: Record<string, unknown> = { type, messageId: id, delivered: error === undefined };
    if (error !== undefined) {
      Object.assign(result, { reason: error.reason, status: error.status, error: io.secrets.text(error.message) });
    }
    await io.outFixed(jsonLine(result) + "\n");
  } else if (error === undefined) {
    await io.outFixed(id + "\n");
  }
  if (error !== undefined) {
    io.error(`${error.message} (reason: ${error.reason})`);
    return 1;
  }
  return 0;
}
