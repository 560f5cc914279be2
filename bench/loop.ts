/**
 * `npm run bench` (part), or `npx tsx bench/loop.ts [--dry]`: what closing the loop costs (issue #25) — CoMagic Data
 * API points, Metrica requests and Bitrix24 requests per 1,000 deal changes. The deal loop and the conversions run as
 * a portal tick runs them (bench/loop-worker.ts: real D1 in workerd via Miniflare) against the sandboxes, which charge
 * a point for every successful Data API call (FACTS-loop §1.5 "Все операции — 1") and count Metrica's requests.
 * 250 deals from CoMagic calls, four changes each (made, two stages, won or lost): 1,000 changes, ticks every
 * 5 minutes, FEED_INTERVAL_MINUTES 10. Two days: the changes spread over a 10-hour working day, and the same 1,000
 * within one busy hour. Prints the figures and writes docs/performance.md's "Closing the loop" section.
 */
import { readFileSync, writeFileSync } from "node:fs";
import { parseArgs } from "node:util";
import { build } from "esbuild";
import { Miniflare } from "miniflare";
import { formatComagicDateTime } from "../worker/domain/comagic-time";
import { SANDBOX_ACCOUNT_TIME_ZONE } from "../sandbox/comagic/calls-report-row";
import { SANDBOX_METRICA } from "../sandbox/metrica";
import { startSandbox } from "../sandbox/server";
import { json, machine } from "./common";

const { values } = parseArgs({ options: { dry: { type: "boolean", default: false } } });
const DEALS = 250;
const STAGES = ["NEW", "PREPARATION", "EXECUTING"] as const;
const TICK_MINUTES = 5;
const INTERVAL_MINUTES = 10;
/** CONVERSIONS_INTERVAL_MINUTES' default. */
const CONVERSIONS_INTERVAL_MINUTES = 60;

const sandbox = await startSandbox({ port: 0 });
await json(`${sandbox.url}/_sandbox/comagic/deals/settings`, { endToEndAnalytics: true });
await json(`${sandbox.url}/_sandbox/comagic/settings`, { dayLimit: 1_000_000, minuteLimit: 100_000 });
const bundle = await build({ entryPoints: ["bench/loop-worker.ts"], bundle: true, format: "esm", write: false, platform: "neutral", mainFields: ["module", "main"] });

type Change = { deal: number; at: number; stage: string };
type Figures = {
  methods: string;
  day: string;
  changes: number;
  ticks: number;
  uploads: number;
  points: number;
  metrica: number;
  bitrix: number;
  sent: number;
  rejected: number;
  conversions: number;
  seconds: number;
};

const pointStats = async () => (await json<{ points: { total: number; methods: Record<string, number> } }>(`${sandbox.url}/_sandbox/comagic/stats`)).points;
let seq = 70_000_000 + Math.floor(Math.random() * 1_000_000);

/** One day's 250 deals, each from a call lead CoMagic knows (its communication id, a visit with a Metrica ClientID). */
async function runDay(day: string, spanMinutes: number): Promise<Figures> {
  const mf = new Miniflare({ modules: true, script: bundle.outputFiles[0]?.text ?? "", compatibilityDate: "2026-04-20", d1Databases: ["DB"] });
  const post = async <T>(path: string, body: unknown) => (await (await mf.dispatchFetch(`http://bench${path}`, { method: "POST", body: JSON.stringify(body) })).json()) as T;
  const leads: { leadId: string; key: string; visitorId: string; communicationId: number; at: string }[] = [];
  const calls: unknown[] = [];
  const sessions: unknown[] = [];
  const now = Date.now();
  for (let i = 0; i < DEALS; i++) {
    const sessionId = ++seq;
    const visitorId = ++seq;
    const clientId = `17000000${seq}`;
    const { id } = await json<{ id: number }>(`${sandbox.url}/_sandbox/leads`, { fields: { TITLE: `Call ${sessionId}` } });
    const at = formatComagicDateTime(new Date(now - 3_600_000), SANDBOX_ACCOUNT_TIME_ZONE);
    leads.push({ leadId: String(id), key: String(sessionId), visitorId: String(visitorId), communicationId: sessionId * 3 + 1, at: new Date(now - 3_600_000).toISOString() });
    calls.push({ id: sessionId, communication_id: sessionId * 3 + 1, start_time: at, direction: "in", visitor_id: visitorId });
    sessions.push({ id: visitorId * 10, date_time: at, visitor_id: visitorId, ym_client_id: clientId });
    await json(`${sandbox.url}/_sandbox/metrica/visits`, { clientId, daysAgo: 1 });
  }
  await json(`${sandbox.url}/_sandbox/comagic/data`, { calls, visitor_sessions: sessions });
  await post("/seed", { leads });

  // Each deal's four changes at random moments of the span, in order; 30% end lost.
  const changes: Change[] = [];
  let rng = 42;
  const rand = () => {
    rng = (rng * 1103515245 + 12345) % 2 ** 31;
    return rng / 2 ** 31;
  };
  for (let d = 0; d < DEALS; d++) {
    const times = Array.from({ length: 4 }, () => rand() * spanMinutes * 60_000).sort((a, b) => a - b);
    const final = rand() < 0.3 ? "LOSE" : "WON";
    for (const [i, stage] of [...STAGES, final].entries()) changes.push({ deal: d, at: times[i] as number, stage });
  }
  const dealIds = new Map<number, string>();
  const setup = {
    bitrixWebhookUrl: sandbox.bitrixWebhookUrl,
    dataApiUrl: sandbox.dataApiUrl,
    metricaUrl: sandbox.url,
    login: sandbox.comagic.login,
    password: sandbox.comagic.password,
    counterId: SANDBOX_METRICA.counterId,
    metricaToken: SANDBOX_METRICA.token,
    intervalMinutes: INTERVAL_MINUTES,
    conversionsIntervalMinutes: CONVERSIONS_INTERVAL_MINUTES,
  };
  const before = await pointStats();
  const figures: Figures = { methods: "", day, changes: changes.length, ticks: 0, uploads: 0, points: 0, metrica: 0, bitrix: 0, sent: 0, rejected: 0, conversions: 0, seconds: 0 };
  const started = Date.now();
  const simulatedStart = Date.now();
  // One more interval after the span: what changed last is sent too.
  for (let t = TICK_MINUTES; t <= spanMinutes + INTERVAL_MINUTES + TICK_MINUTES; t += TICK_MINUTES) {
    const due = changes.filter((c) => c.at <= t * 60_000 && c.at > (t - TICK_MINUTES) * 60_000);
    const touched = new Map<number, string>();
    for (const c of due) {
      if (c.stage === "NEW") {
        const lead = leads[c.deal] as (typeof leads)[number];
        const { id } = await json<{ id: number }>(`${sandbox.url}/_sandbox/deals`, {
          fields: { TITLE: `Sofa ${c.deal}`, STAGE_ID: "NEW", OPPORTUNITY: "45000", CURRENCY_ID: "RUB" },
          fromLead: lead.leadId,
        });
        dealIds.set(c.deal, String(id));
      } else {
        await json(`${sandbox.bitrixWebhookUrl}crm.deal.update.json`, { id: dealIds.get(c.deal), fields: { STAGE_ID: c.stage } });
      }
      touched.set(c.deal, c.stage);
    }
    const at = new Date(simulatedStart + t * 60_000);
    // What the report's sync hands on for the deals it saw changed (bitrix/deal-sync.ts DealRecord).
    const deals = [...touched].map(([d, stage]) => ({
      sourceEntity: "lead",
      sourceId: leads[d]?.leadId,
      dealId: dealIds.get(d),
      semantic: stage === "WON" ? "S" : stage === "LOSE" ? "F" : "P",
      amount: 45000,
      currency: "RUB",
      createdAt: new Date().toISOString(),
      modifiedAt: new Date().toISOString(),
    }));
    if (deals.length) await post("/changed", { deals, at: at.toISOString() });
    const result = await post<{
      deals: { comagicCalls: number; sent: number; rejected: number };
      conversions: { sent: number };
      bitrixRequests: number;
      metricaRequests: number;
    }>("/tick", { setup, now: at.toISOString() });
    figures.ticks += 1;
    figures.uploads += result.deals.comagicCalls;
    figures.sent += result.deals.sent;
    figures.rejected += result.deals.rejected;
    figures.conversions += result.conversions.sent;
    figures.metrica += result.metricaRequests;
    figures.bitrix += result.bitrixRequests;
  }
  const after = await pointStats();
  figures.points = after.total - before.total;
  figures.methods = Object.entries(after.methods)
    .map(([method, n]) => [method, n - (before.methods[method] ?? 0)] as const)
    .filter(([, n]) => n > 0)
    .map(([method, n]) => `${method} ${n}`)
    .join(", ");
  figures.seconds = Math.round((Date.now() - started) / 1000);
  await mf.dispose();
  return figures;
}

const days = [await runDay("a working day (10 h)", 600), await runDay("one busy hour", 60)];
await sandbox.close();

const per1000 = (n: number, changes: number) => ((n * 1000) / changes).toFixed(0);
const lines = [
  `Measured ${new Date().toISOString().slice(0, 16)} UTC on ${machine()} with \`npx tsx bench/loop.ts\`: ${DEALS} deals from CoMagic calls, 4 changes each`,
  `(made, two stages, won or lost: ${DEALS * 4} changes), a tick every ${TICK_MINUTES} minutes, FEED_INTERVAL_MINUTES ${INTERVAL_MINUTES}, Metrica on.`,
  "",
  "| day | ticks | CoMagic points / 1,000 changes (goal ≤ 20) | Metrica requests / 1,000 changes | Bitrix24 requests / 1,000 changes | deal records accepted | refused | conversions sent |",
  "| --- | --- | --- | --- | --- | --- | --- | --- |",
  ...days.map((f) => `| ${f.day} | ${f.ticks} | ${per1000(f.points, f.changes)} | ${per1000(f.metrica, f.changes)} | ${per1000(f.bitrix, f.changes)} | ${f.sent} | ${f.rejected} | ${f.conversions} |`),
  "",
  ...days.map((f) => `Points by method, ${f.day}: ${f.methods}.`),
  "",
  "What sets the points: an upload is one point whatever it holds (FACTS-loop §1.5), and a change must reach CoMagic",
  "within one feed interval, so a tick with changes due sends them: at least one point a tick with changes. A call's",
  "communication id (what a deal is linked by; not its session id) is kept when the call's record is applied, so new",
  "deals cost no read (a chat's or request's costs one a tick); every CONVERSIONS_INTERVAL_MINUTES one read finds the",
  "visitors' Metrica ids. A busy hour (≈ 80 changes a tick) meets the goal; a working day of the same 1,000 changes",
  "spread over 10 hours pays the floor of one upload a tick with changes instead: a quieter portal pays less in all,",
  "more per change, and a longer FEED_INTERVAL_MINUTES lowers it.",
];
for (const line of lines) console.log(line);
if (!values.dry) {
  const path = "docs/performance.md";
  const doc = readFileSync(path, "utf8");
  const heading = "## Closing the loop: points and requests per 1,000 deal changes";
  const start = doc.indexOf(heading);
  const next = start < 0 ? -1 : doc.indexOf("\n## ", start + heading.length);
  const section = `${heading}\n\n${lines.join("\n")}\n`;
  writeFileSync(path, start < 0 ? `${doc.trimEnd()}\n\n${section}` : `${doc.slice(0, start)}${section}${next < 0 ? "" : doc.slice(next)}`);
  console.log(`wrote ${path}`);
}
