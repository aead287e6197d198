/**
 * Who the collector answers. The query API, the stream and the inspector answer only requests addressed to a name
 * the collector listens on (a page on another site can point its own name at 127.0.0.1: DNS rebinding) and coming
 * from the collector's own pages, when they say where they come from. Ingestion that says it comes from a page
 * (`Origin`) is taken only from loopback origins and the allowed ones; server SDKs and curl send no `Origin`.
 */

/** What `hostAllowed` checks against. */
export interface HostPolicy {
  /** The address the collector is bound to. */
  hostname: string;
  /** More names to answer for (lower case). */
  allowHosts: readonly string[];
}

const IPV4 = /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})$/;
const IPV6 = /^\[[0-9a-f:.]*:[0-9a-f:.]*(%[\w.-]+)?\]$/;
const NAME = /^[a-z0-9]([a-z0-9-]*[a-z0-9])?(\.[a-z0-9]([a-z0-9-]*[a-z0-9])?)*$/;
const ORIGIN = /^(https?):\/\/(\[[0-9a-f:.]+\]|[a-z0-9.-]+)(:\d{1,5})?$/;
const WILDCARDS = ["0.0.0.0", "::", "[::]"];

const isIpv4 = (name: string): boolean => {
  const parts = IPV4.exec(name);
  return parts !== null && parts.slice(1).every((part) => Number(part) <= 255);
};
const isIp = (name: string): boolean => isIpv4(name) || IPV6.test(name);

/** A host name as a Host header or a flag spells it: lower case, IPv6 in brackets, no trailing dot. */
export function normalHost(name: string): string {
  let host = name.trim().toLowerCase();
  if (host.includes(":") && !host.startsWith("[")) host = `[${host}]`;
  return host.endsWith(".") ? host.slice(0, -1) : host;
}

/** Whether `name` (normalized) is a loopback name: localhost and its subdomains, 127.0.0.0/8, [::1]. */
function isLoopbackName(name: string): boolean {
  return name === "localhost" || name.endsWith(".localhost") || name === "[::1]" ||
    (isIpv4(name) && name.startsWith("127."));
}

/** The name of a Host header (`name` or `name:port`, IPv6 in brackets), or undefined when it is not one. */
function hostName(header: string): string | undefined {
  const host = header.trim().toLowerCase();
  let name: string;
  let rest: string;
  if (host.startsWith("[")) {
    const end = host.indexOf("]");
    if (end < 0) return undefined;
    name = host.slice(0, end + 1);
    rest = host.slice(end + 1);
  } else {
    const colon = host.indexOf(":");
    name = colon < 0 ? host : host.slice(0, colon);
    rest = colon < 0 ? "" : host.slice(colon);
  }
  if (rest !== "" && !/^:\d{1,5}$/.test(rest)) return undefined;
  if (name.endsWith(".")) name = name.slice(0, -1);
  return name === "" ? undefined : name;
}

/**
 * Whether a request whose Host header is `header` is addressed to the collector: a loopback name (127.0.0.1,
 * localhost, [::1]), the bound address, or an allowed name; bound to all addresses (0.0.0.0, ::), also any IP
 * address (a phone on the same network uses the machine's). The port is not checked: port mappings (Docker's
 * `-p 9000:8787`) change it, and it is not what DNS rebinding changes.
 */
export function hostAllowed(header: string | undefined, policy: HostPolicy): boolean {
  if (header === undefined) return false;
  const name = hostName(header);
  if (name === undefined || !(NAME.test(name) || isIp(name))) return false;
  if (name === "localhost" || name.endsWith(".localhost") || name === "127.0.0.1" || name === "[::1]") return true;
  const bound = normalHost(policy.hostname);
  if (name === bound) return true;
  if (WILDCARDS.includes(bound) && isIp(name)) return true;
  return policy.allowHosts.includes(name);
}

/** The names `hostAllowed` takes, for an error message. */
export function hostNames(policy: HostPolicy): string {
  const bound = normalHost(policy.hostname);
  const names = ["127.0.0.1", "localhost", "[::1]"];
  if (WILDCARDS.includes(bound)) names.push("this machine's IP addresses");
  else if (!names.includes(bound)) names.push(bound);
  for (const name of policy.allowHosts) if (!names.includes(name)) names.push(name);
  return names.join(", ");
}

/**
 * An origin as `--allow-origin` takes it (`https://app.example.com`, `http://localhost:3000`, or `null`), in the
 * form browsers send: lower case, without the default port. Undefined when it is not one.
 */
export function normalOrigin(text: string): string | undefined {
  const origin = text.trim().toLowerCase().replace(/\/$/, "");
  if (origin === "null") return origin;
  const parts = ORIGIN.exec(origin);
  if (parts === null) return undefined;
  const [, scheme, host, port] = parts;
  if (!(NAME.test(host) || isIp(host))) return undefined;
  const fallback = scheme === "https" ? ":443" : ":80";
  return `${scheme}://${host}${port === fallback ? "" : port ?? ""}`;
}

/** Whether ingestion from a page at `origin` is taken: a loopback origin (any port, http or https), or an allowed one. */
export function originAllowed(origin: string, allowOrigins: readonly string[]): boolean {
  const normal = normalOrigin(origin);
  if (normal === undefined) return false;
  if (allowOrigins.includes(normal)) return true;
  const parts = ORIGIN.exec(normal);
  return parts !== null && isLoopbackName(parts[2]);
}

/** Whether a page at `origin` is one of the collector's own, reached as `host` (the request's Host header). */
export function sameOrigin(origin: string, host: string | undefined): boolean {
  return host !== undefined && origin.toLowerCase() === `http://${host.trim().toLowerCase()}`;
}
