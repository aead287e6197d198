import { Context, ContextCancelation } from "./context.ts";
import type { Emitter } from "./emitter.ts";
import type { Message, MessageType, Middleware } from "./types.ts";
import { LIBRARY_NAME, VERSION } from "./version.ts";

/**
 * An analytics-node plugin. `before` and `enrichment` plugins get each
 * message as `ctx` before it is queued, and return `ctx` (or a promise of
 * it) after changing `ctx.event` as they like; `ctx.cancel()` drops the
 * message. `destination` plugins get each queued message; what they return
 * is ignored.
 *
 * @example Stamp every event with the service that sent it
 * ```ts
 * import { Analytics, type Plugin } from "@tally/analytics";
 *
 * const service: Plugin = {
 *   name: "Service",
 *   type: "enrichment",
 *   version: "1.0.0",
 *   isLoaded: () => true,
 *   load: () => Promise.resolve(),
 *   track: (ctx) => {
 *     ctx.updateEvent("context.app.name", "billing-api");
 *     return ctx;
 *   },
 * };
 * const analytics = new Analytics({ writeKey: "KEY", send: false });
 * await analytics.register(service);
 * ```
 */
export interface Plugin {
  /** The plugin's name, for `deregister(name)`. */
  name: string;
  /** When it runs. */
  type: "before" | "enrichment" | "destination" | "after" | "utility";
  /** The plugin's version. */
  version?: string;
  /** Whether `load()` is done. */
  isLoaded?: () => boolean;
  /** Called once by `register()`; awaited. */
  load?: (ctx: Context, analytics: unknown) => unknown;
  /** Called by `deregister()`; awaited. */
  unload?: (ctx: Context, analytics: unknown) => unknown;
  /** Runs on each identify. */
  identify?: (ctx: Context) => Context | void | Promise<Context | void>;
  /** Runs on each track. */
  track?: (ctx: Context) => Context | void | Promise<Context | void>;
  /** Runs on each page. */
  page?: (ctx: Context) => Context | void | Promise<Context | void>;
  /** Runs on each screen. */
  screen?: (ctx: Context) => Context | void | Promise<Context | void>;
  /** Runs on each group. */
  group?: (ctx: Context) => Context | void | Promise<Context | void>;
  /** Runs on each alias. */
  alias?: (ctx: Context) => Context | void | Promise<Context | void>;
}

interface Entry {
  run: Middleware;
  stage: 0 | 1; // before plugins run ahead of enrichment plugins and use() middleware
  plugin?: Plugin;
}

const system = (): Context =>
  new Context({
    type: "track",
    event: "system",
    messageId: crypto.randomUUID(),
    timestamp: new Date().toISOString(),
    context: { library: { name: LIBRARY_NAME, version: VERSION } },
  });

/** The event a plugin's method returned, or the one it changed in place. */
function eventOf(ctx: Context, returned: unknown): Message | null {
  return returned instanceof Context ? returned.event : ctx.event;
}

/** A plugin as middleware: its method for the message's type gets a context of it. */
function asMiddleware(plugin: Plugin): Middleware {
  return (message) => {
    const method = plugin[message.type as MessageType];
    if (typeof method !== "function") return message;
    const ctx = new Context(message);
    let returned: unknown;
    try {
      returned = method.call(plugin, ctx);
    } catch (error) {
      if (error instanceof ContextCancelation) return null;
      throw error;
    }
    if (typeof (returned as Promise<unknown>)?.then !== "function") return eventOf(ctx, returned);
    return Promise.resolve(returned).then(
      (value) => eventOf(ctx, value),
      (error) => {
        if (error instanceof ContextCancelation) return null;
        throw error;
      },
    );
  };
}

/** The middleware chain (use() and before/enrichment plugins) and the destination plugins of one client. */
export class Plugins {
  readonly #owner: unknown;
  readonly #events: Emitter;
  readonly #entries: Entry[] = [];
  /** The chain, in the order it runs. */
  middleware: Middleware[] = [];
  /** Destination (and after) plugins. */
  destinations: Plugin[] = [];
  readonly #log: (...args: unknown[]) => void;

  /** Creates the chain of `owner` (passed to each plugin's `load`). */
  constructor(owner: unknown, events: Emitter, log: (...args: unknown[]) => void = () => {}) {
    this.#owner = owner;
    this.#events = events;
    this.#log = log;
  }

  /** Adds middleware at the end of the chain. */
  use(run: Middleware): void {
    this.#entries.push({ run, stage: 1 });
    this.#rebuild();
  }

  /** While plugins load: calls made meanwhile wait for it. */
  loading: Promise<void> | undefined;

  /** Loads and adds plugins, in order; registrations queue behind each other. */
  register(plugins: Plugin[]): Promise<void> {
    for (const plugin of plugins) check(plugin);
    const before = this.loading ?? Promise.resolve();
    const loading: Promise<void> = before.then(() => this.#load(plugins));
    const settled: Promise<void> = loading.then(
      () => {},
      () => {},
    ).finally(() => {
      if (this.loading === settled) this.loading = undefined;
    });
    this.loading = settled;
    return loading;
  }

  async #load(plugins: Plugin[]): Promise<void> {
    for (const plugin of plugins) {
      await plugin.load?.(system(), this.#owner);
      if (plugin.type === "destination" || plugin.type === "after") this.destinations.push(plugin);
      else if (plugin.type !== "utility") {
        this.#entries.push({ run: asMiddleware(plugin), stage: plugin.type === "before" ? 0 : 1, plugin });
      }
    }
    this.#rebuild();
    this.#events.emit("register", plugins.map((p) => p.name));
  }

  /** Removes plugins by name, unloading each. */
  async deregister(names: string[]): Promise<void> {
    const gone: Plugin[] = [];
    for (let i = this.#entries.length - 1; i >= 0; i--) {
      const plugin = this.#entries[i].plugin;
      if (plugin === undefined || !names.includes(plugin.name)) continue;
      gone.push(plugin);
      this.#entries.splice(i, 1);
    }
    const kept: Plugin[] = [];
    for (const plugin of this.destinations) (names.includes(plugin.name) ? gone : kept).push(plugin);
    this.destinations = kept;
    this.#rebuild();
    for (const plugin of gone) await plugin.unload?.(system(), this.#owner);
    this.#events.emit("deregister", names);
  }

  /** Hands a queued message (its JSON) to each destination plugin, a copy each; what they throw is logged, never thrown. */
  deliverTo(json: string): void {
    for (const plugin of this.destinations) {
      const message: Message = JSON.parse(json);
      const method = plugin[message.type];
      if (typeof method !== "function") continue;
      try {
        const returned = method.call(plugin, new Context(message));
        if (typeof (returned as Promise<unknown>)?.then === "function") {
          (returned as Promise<unknown>).catch((error) => this.#log(`[tally] plugin ${plugin.name} failed:`, error));
        }
      } catch (error) {
        this.#log(`[tally] plugin ${plugin.name} threw:`, error);
      }
    }
  }

  #rebuild(): void {
    this.middleware = [...this.#entries.filter((e) => e.stage === 0), ...this.#entries.filter((e) => e.stage === 1)]
      .map((e) => e.run);
  }
}

function check(plugin: Plugin): void {
  if (typeof plugin !== "object" || plugin === null) {
    throw new TypeError(
      `Cannot register a plugin: expected a plugin object, got ${plugin === null ? "null" : typeof plugin}`,
    );
  }
  if (typeof plugin.name !== "string" || plugin.name === "") {
    throw new TypeError("Cannot register a plugin: it has no name");
  }
  const types = ["before", "enrichment", "destination", "after", "utility"];
  if (!types.includes(plugin.type)) {
    throw new TypeError(
      `Cannot register plugin "${plugin.name}": its type must be one of ${types.join(", ")}, got ${
        JSON.stringify(plugin.type)
      }`,
    );
  }
}
