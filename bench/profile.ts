/**
 * Reads a V8 CPU profile (`--cpu-prof` on Node and Deno) and prints where the
 * time went: self time per function and per source file, and inclusive time
 * per function, as Markdown tables. Frames of a `bun build` bundle (the Node
 * driver, `.bench/driver.mjs`) are mapped back to their source files through
 * the `// lib/x.ts` markers the bundler writes.
 *
 * Profile one phase (the sink must be running: `bench/sink.ts` prints its port):
 *
 * ```sh
 * node --cpu-prof --cpu-prof-dir=.bench/prof .bench/driver.mjs profile http://127.0.0.1:PORT burst
 * deno run --cpu-prof --cpu-prof-dir=.bench/prof --allow-net=127.0.0.1 bench/driver.ts profile http://127.0.0.1:PORT
 * deno run --allow-read bench/profile.ts .bench/prof/CPU.*.cpuprofile [--top=25]
 * ```
 *
 * @module
 */
import { readFileSync } from "node:fs";
import process from "node:process";
import { fileURLToPath } from "node:url";

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
  children?: number[];
}

interface Profile {
  nodes: ProfileNode[];
  samples: number[];
  timeDeltas: number[];
  startTime: number;
  endTime: number;
}

/** For a bundle: line numbers where each source file's code starts. */
const bundles = new Map<string, { line: number; file: string }[]>();

function sourceOf(url: string, line: number): string {
  if (!url) return "(native)";
  if (!url.startsWith("file://")) return url.replace(/^node:/, "node:");
  const path = fileURLToPath(url);
  if (!path.endsWith(".mjs")) return path.replace(/^.*\/(lib|bench|cli)\//, "$1/");
  let marks = bundles.get(path);
  if (!marks) {
    marks = [];
    try {
      readFileSync(path, "utf8").split("\n").forEach((text, i) => {
        const m = /^\/\/ (\S+\.[jt]s)$/.exec(text);
        if (m) marks!.push({ line: i, file: m[1] });
      });
    } catch {
      // not readable: the bundle's own name is all there is
    }
    bundles.set(path, marks);
  }
  let file = path.replace(/^.*\//, "");
  for (const mark of marks) if (mark.line <= line) file = mark.file;
  return file.replace(/^.*node_modules\//, "");
}

function main(): void {
  const file = process.argv.slice(2).find((a) => !a.startsWith("--"));
  const top = Number(process.argv.find((a) => a.startsWith("--top="))?.slice(6) ?? 25);
  if (!file) throw new Error("usage: profile.ts FILE.cpuprofile [--top=25]");
  const profile = JSON.parse(readFileSync(file, "utf8")) as Profile;
  const byId = new Map(profile.nodes.map((n) => [n.id, n]));
  const parent = new Map<number, number>();
  for (const n of profile.nodes) for (const c of n.children ?? []) parent.set(c, n.id);
  const key = (n: ProfileNode): string => {
    const name = n.callFrame.functionName || "(anonymous)";
    return `${sourceOf(n.callFrame.url, n.callFrame.lineNumber)}:${name}`;
  };
  const self = new Map<string, number>();
  const total = new Map<string, number>();
  const files = new Map<string, number>();
  let all = 0;
  profile.samples.forEach((id, i) => {
    const us = profile.timeDeltas[i] ?? 0;
    all += us;
    const node = byId.get(id)!;
    const k = key(node);
    self.set(k, (self.get(k) ?? 0) + us);
    const f = sourceOf(node.callFrame.url, node.callFrame.lineNumber);
    files.set(f, (files.get(f) ?? 0) + us);
    const seen = new Set<string>();
    for (let at: number | undefined = id; at !== undefined; at = parent.get(at)) {
      const kk = key(byId.get(at)!);
      if (seen.has(kk)) continue;
      seen.add(kk);
      total.set(kk, (total.get(kk) ?? 0) + us);
    }
  });
  const table = (title: string, map: Map<string, number>, n: number) => {
    console.log(`| ${title} | ms | share |\n| --- | --- | --- |`);
    for (const [k, us] of [...map].sort((a, b) => b[1] - a[1]).slice(0, n)) {
      console.log(`| ${k.replaceAll("|", "\\|")} | ${(us / 1000).toFixed(1)} | ${((us / all) * 100).toFixed(1)}% |`);
    }
    console.log("");
  };
  console.log(`${file}: ${(all / 1000).toFixed(0)} ms sampled\n`);
  table("self time by file", files, top);
  table("self time by function", self, top);
  table("inclusive time by function", total, top);
}

main();
