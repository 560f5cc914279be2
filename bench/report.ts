/**
 * `npm run bench` (second part): the attribution report's figures. Report server time for 10,000 leads and
 * 2,000 deals over 90 days in local D1 (workerd via Miniflare), every model; deal sync cost in Bitrix24
 * requests per 1,000 changed deals against the sandbox portal. Prints the figures and appends them to
 * docs/performance.md's report section.
 */
import { readFileSync, writeFileSync } from "node:fs";
import { build } from "esbuild";
import { Miniflare } from "miniflare";
import { syncDeals } from "../worker/bitrix/deal-sync";
import { createBitrixClient } from "../worker/bitrix/client";
import { MODELS } from "../worker/domain/attribution";
import type { AttributionStore } from "../worker/storage/attribution-store";
import { startSandbox } from "../sandbox/server";

const LEADS = 10_000;
const DEALS = 2_000;
const RUNS = 15;
const lines: string[] = [];
const say = (line: string) => {
  console.log(line);
  lines.push(line);
};

const bundle = await build({ entryPoints: ["bench/report-worker.ts"], bundle: true, format: "esm", write: false, platform: "neutral", mainFields: ["module", "main"] });
const mf = new Miniflare({ modules: true, script: bundle.outputFiles[0]?.text ?? "", compatibilityDate: "2026-04-20", d1Databases: ["DB"] });
const seeded = Date.now();
await (await mf.dispatchFetch(`http://bench/seed?leads=${LEADS}&deals=${DEALS}`)).text();
say(`Seeded ${LEADS} leads (1–4 visits each) and ${DEALS} deals over 90 days in ${((Date.now() - seeded) / 1000).toFixed(1)} s`);
say("| model | grouping | p50 server ms | p90 server ms | target p50 ≤ 300 ms |");
say("|---|---|---|---|---|");
for (const model of MODELS) {
  for (const grouping of ["source_medium", "comagic_campaign"]) {
    const times: number[] = [];
    for (let i = 0; i < RUNS; i++) times.push(((await (await mf.dispatchFetch(`http://bench/report?model=${model}&grouping=${grouping}`)).json()) as { ms: number }).ms);
    times.sort((a, b) => a - b);
    const p50 = times[Math.floor(RUNS / 2)] ?? 0;
    say(`| ${model} | ${grouping} | ${p50.toFixed(0)} | ${(times[Math.floor(RUNS * 0.9)] ?? 0).toFixed(0)} | ${p50 <= 300 ? "met" : "missed"} |`);
  }
}
await mf.dispose();

// Deal sync: 1,000 deals changed since the last sync, read in ID-ordered pages through `batch`.
const sandbox = await startSandbox({ port: 0 });
for (let i = 0; i < 1000; i++) {
  await fetch(`${sandbox.url}/_sandbox/deals`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ fields: { TITLE: `Deal ${i}`, STAGE_ID: i % 3 ? "NEW" : "WON", OPPORTUNITY: "1000" }, fromLead: i + 1 }),
  });
}
const state = new Map<string, string>();
const store = {
  credited: async (_entity: string, ids: readonly string[]) => new Set(ids),
  putDeals: async () => undefined,
  getState: async (name: string) => state.get(name) ?? null,
  setState: async (name: string, value: string) => void state.set(name, value),
} as unknown as AttributionStore;
const bitrix = createBitrixClient({ baseUrl: sandbox.bitrixWebhookUrl, timeoutMs: 10_000 });
const result = await syncDeals({ bitrix, store, now: () => new Date(), baseCurrency: "RUB" });
say(`Deal sync: ${result.read} changed deals read in ${result.requests} Bitrix24 requests (target ≤ 25 per 1,000); ${result.kept} kept`);
await sandbox.close();

const doc = "docs/performance.md";
const text = readFileSync(doc, "utf8");
const section = `## Attribution report (\`npm run bench\`, ${new Date().toISOString().slice(0, 10)})\n\n${lines.join("\n")}\n`;
writeFileSync(doc, text.includes("## Attribution report") ? text.replace(/## Attribution report[\s\S]*?(?=\n## |$)/, section) : `${text.trimEnd()}\n\n${section}`);
