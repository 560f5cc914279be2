import { readdirSync, readFileSync, statSync } from "node:fs";
import { dirname, join, normalize, relative } from "node:path";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";

/*
 * docs/architecture.md's layering, checked on the source: arrows point down (routes and jobs use domain,
 * bitrix, comagic and storage; domain uses none of them), and no module imports itself back through others.
 */

const workerDir = join(dirname(fileURLToPath(import.meta.url)), "../../worker");

function sourceFiles(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const path = join(dir, name);
    if (statSync(path).isDirectory()) return sourceFiles(path);
    return name.endsWith(".ts") && !name.endsWith(".d.ts") ? [path] : [];
  });
}

/** Each worker module (as `layer/file.ts`) and the worker modules it imports, type-only imports included. */
function importGraph(): Map<string, string[]> {
  const graph = new Map<string, string[]>();
  for (const file of sourceFiles(workerDir)) {
    const source = readFileSync(file, "utf8");
    const targets = [...source.matchAll(/(?:import|export)\s(?:[^'"]*?from\s+)?["'](\.[^"']+)["']/g)].map((m) => {
      const target = normalize(join(dirname(file), m[1] ?? ""));
      return relative(workerDir, target.endsWith(".ts") ? target : `${target}.ts`);
    });
    graph.set(relative(workerDir, file), targets);
  }
  return graph;
}

const layerOf = (module: string): string => (module.includes("/") ? (module.split("/")[0] ?? module) : module.replace(/\.ts$/, ""));

describe("the worker's layers", () => {
  const graph = importGraph();

  it("has no import cycles", () => {
    const cycles: string[] = [];
    const state = new Map<string, "visiting" | "done">();
    const visit = (module: string, path: string[]) => {
      if (state.get(module) === "done") return;
      if (state.get(module) === "visiting") {
        cycles.push([...path.slice(path.indexOf(module)), module].join(" → "));
        return;
      }
      state.set(module, "visiting");
      for (const next of graph.get(module) ?? []) visit(next, [...path, module]);
      state.set(module, "done");
    };
    for (const module of graph.keys()) visit(module, []);
    expect(cycles).toEqual([]);
  });

  it.each([
    ["domain", ["bitrix", "bitrix-app", "comagic", "jobs", "routes", "storage", "app", "wiring", "index", "env", "config"]],
    ["storage", ["jobs", "routes", "app"]],
    // The REST adapter knows Bitrix24 only: the app's use cases (bitrix-app/) combine it with CoMagic and storage.
    ["bitrix", ["jobs", "routes", "app", "bitrix-app", "comagic"]],
    ["bitrix-app", ["jobs", "routes", "app"]],
    ["comagic", ["jobs", "routes", "app"]],
    ["i18n", ["jobs", "routes", "bitrix", "comagic", "storage", "app"]],
    ["env", ["jobs", "routes", "domain", "storage"]],
  ])("keeps %s from importing upward (%j)", (layer, forbidden) => {
    const upward = [...graph].flatMap(([module, targets]) => (layerOf(module) === layer ? targets.filter((t) => forbidden.includes(layerOf(t))).map((t) => `${module} → ${t}`) : []));
    expect(upward).toEqual([]);
  });
});
