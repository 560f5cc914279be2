/**
 * `npm run bench`: the figures issue #6 asks for, measured in one run on this machine, printed and written to
 * docs/performance.md. Machines here are noisy: compare the ratios measured side by side, not absolute times.
 */
import { execFileSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { gzipSync } from "node:zlib";
import autocannon from "autocannon";
import { Miniflare } from "miniflare";
import { freshId, freshPhone, json, machine, pool, startStack, TOKEN, waitForQuiet, waitUntil } from "./common";

const rows: { area: string; figure: string; target: string; verdict: string }[] = [];
const notes: string[] = [];
function record(area: string, figure: string, target: string, ok: boolean | null) {
  rows.push({ area, figure, target, verdict: ok === null ? "—" : ok ? "met" : "missed" });
  console.log(`${area}: ${figure} (target: ${target})${ok === false ? "  ← MISSED" : ""}`);
}

// 1. Snippet
const snippetOut = execFileSync(process.execPath, ["snippet/build.mjs"]).toString();
const snippet = readFileSync("snippet/dist/snippet.min.js");
const snippetGz = gzipSync(snippet, { level: 9 }).length;
record("Snippet size", `${snippet.length} B minified, ${snippetGz} B gzipped (Plausible's legacy tracker: 743 B gz, attaches nothing to forms)`, "≤ 1,024 B gzipped", snippetGz <= 1024);
void snippetOut;

// 2. Worker bundle and startup
const outDir = mkdtempSync(join(tmpdir(), "bundle-"));
execFileSync("npx", ["wrangler", "deploy", "--dry-run", "--outdir", outDir], { stdio: "ignore", env: { ...process.env, WRANGLER_SEND_METRICS: "false" } });
const bundle = readFileSync(join(outDir, "index.js"));
const bundleGz = gzipSync(bundle, { level: 9 }).length;
record("Worker bundle", `${(bundle.length / 1024).toFixed(1)} KB minified, ${(bundleGz / 1024).toFixed(1)} KB gzipped`, "≤ 100 KB gzipped", bundleGz <= 100 * 1024);

async function startupMs(script: string, extra: Record<string, unknown> = {}): Promise<number[]> {
  const times: number[] = [];
  for (let i = 0; i < 5; i++) {
    const started = performance.now();
    const mf = new Miniflare({ modules: true, script, compatibilityDate: "2026-04-20", ...extra });
    await (await mf.dispatchFetch("http://localhost/health")).text();
    times.push(performance.now() - started);
    await mf.dispose();
  }
  return times.sort((a, b) => a - b);
}
const median = (xs: number[]) => xs[Math.floor(xs.length / 2)] ?? 0;
const trivial = await startupMs(`export default { fetch() { return new Response("ok"); } }`);
const worker = await startupMs(bundle.toString(), { bindings: { BITRIX_WEBHOOK_URL: "https://portal.bitrix24.ru/rest/1/x/", COMAGIC_WEBHOOK_TOKEN: "t" } });
record(
  "Worker startup (workerd via Miniflare, to first /health answer)",
  `${median(worker).toFixed(0)} ms median vs ${median(trivial).toFixed(0)} ms for a one-line worker in the same run (×${(median(worker) / median(trivial)).toFixed(2)})`,
  "small next to a trivial worker",
  null,
);
rmSync(outDir, { recursive: true, force: true });

// 3 and 4 need the whole stack.
const { sandbox, worker: local } = await startStack({ ENRICH_DELAY_SECONDS: "3600" });
try {
  // 3. Webhook ingest against a trivial route of the same worker
  const body = JSON.stringify({ event_type: "call_session_completed", call_session: { id: 777000111, visitor_phone_number: "+79120000001", duration_total: 60 } });
  const load = (opts: autocannon.Options) => autocannon({ connections: 20, duration: 10, ...opts });
  await load({ url: `${local.url}/health`, duration: 2 });
  const health = await load({ url: `${local.url}/health` });
  const ingest = await load({ url: `${local.url}/webhooks/comagic?token=${TOKEN}`, method: "POST", body, headers: { "content-type": "application/json" } });
  const ratio = ingest.requests.average / health.requests.average;
  const errors = ingest.errors + ingest.non2xx;
  record(
    "Webhook ingest (autocannon, 20 connections, 10 s, wrangler dev)",
    `${ingest.requests.average.toFixed(0)} req/s, p50 ${ingest.latency.p50} ms, p99 ${ingest.latency.p99} ms, ${errors} errors; GET /health: ${health.requests.average.toFixed(0)} req/s, p50 ${health.latency.p50} ms, p99 ${health.latency.p99} ms → ${(ratio * 100).toFixed(0)}%`,
    "≥ 80% of the trivial route's throughput, no errors",
    ratio >= 0.8 && errors === 0,
  );
  await waitForQuiet(sandbox.url, 4_000, 120_000);

  // 4. Bitrix24 cost per lead at the real limit (2 requests/s, burst 50)
  for (const n of [1, 100, 1000]) {
    await json(`${sandbox.url}/_sandbox/reset`, {});
    const phones = Array.from({ length: n }, () => freshPhone());
    const started = Date.now();
    await pool(phones, 20, async (phone) => {
      const payload = JSON.stringify({ event_type: "call_session_completed", call_session: { id: freshId(), visitor_phone_number: phone, duration_total: 60, utm_source: "bench" } });
      const res = await fetch(`${local.url}/webhooks/comagic?token=${TOKEN}`, { method: "POST", body: payload });
      if (res.status !== 202) throw new Error(`webhook answered ${res.status}`);
    });
    const posted = Date.now();
    const done = await waitUntil(async () => (await json<unknown[]>(`${sandbox.url}/_sandbox/leads`)).length >= n, 600_000, 200);
    const finished = Date.now();
    await waitForQuiet(sandbox.url, 3_000, 60_000);
    const stats = await json<{ httpRequests: number; rejectedByRateLimit: number }>(`${sandbox.url}/_sandbox/stats`);
    const leads = (await json<unknown[]>(`${sandbox.url}/_sandbox/leads`)).length;
    const perLead = stats.httpRequests / n;
    const perMinute = (n / Math.max(1, finished - started)) * 60_000;
    record(
      `Bitrix24 cost, ${n} queued event${n === 1 ? "" : "s"}`,
      `${stats.httpRequests} REST requests (${stats.rejectedByRateLimit} refused by the limit) → ${perLead.toFixed(3)} per lead; ${leads}/${n} leads in ${((finished - started) / 1000).toFixed(1)} s (posting took ${((posted - started) / 1000).toFixed(1)} s) → ${perMinute.toFixed(0)} leads/min${done ? "" : " (timed out)"}`,
      n === 1000 ? "≥ 1,000 leads/min sustained, ≤ 0.2 requests per lead" : "—",
      n === 1000 ? perMinute >= 1000 && perLead <= 0.2 && leads === n : null,
    );
  }
  notes.push("Cost figures count every HTTP request the Bitrix24 sandbox received (each `batch` is one). Enrichment is held back in this run (`ENRICH_DELAY_SECONDS=3600`): it adds one `batch` request per enrichment batch of up to 20 leads.");
} finally {
  await local.stop();
  await sandbox.close();
}

const date = new Date().toISOString().slice(0, 16).replace("T", " ");
const table = rows.map((r) => `| ${r.area} | ${r.figure} | ${r.target} | ${r.verdict} |`).join("\n");
const doc = `# Performance

Measured by \`npm run bench\` (\`bench/bench.ts\`) on ${date} UTC, on ${machine()}.
Machines here are shared and noisy: compare figures measured side by side in one run (the ratios), not
absolute times across runs. \`npm run soak\` (\`bench/soak.ts\`) is the long reliability run; its last output
is below.

| what | figure | target | |
| --- | --- | --- | --- |
${table}

${notes.map((n) => `- ${n}`).join("\n")}

## How the cost per lead stays low

The queue consumer takes a batch (up to 40 messages), splits it into rounds in which no two events concern the
same person or session, and for each round makes one \`batch\` request for every lookup (the idempotency
lists, \`crm.duplicate.findbycomm\` per event), one more to read candidate leads when any exist, and one or two
for the writes (adds and timeline comments, then updates). A round of 40 new callers costs 2 requests.

## Why webhook ingest misses its target

The accepted webhook runs at 30–40% of \`GET /health\`'s rate under \`wrangler dev\` (target 80%). Splitting the
cost (\`npx tsx bench/ingest-probe.ts\`, same run, same worker): a refused request (bad token) and an ignored
call (no queue write) run at about 55–60% of \`/health\`; an accepted call, which also writes to the queue,
at about 35–40%. So roughly half the gap is the queue write (locally a Durable Object round trip in
workerd; the 202 must wait for it, since it promises the job is durable), and the rest is the work a webhook
needs and \`/health\` does not: reading the body, hashing the token, two JSON parses with zod, phone parsing,
and one log line per request, which \`wrangler dev\` pipes to the terminal. The queue consumer also runs in the
same local process during the test. Not done yet: measuring on deployed Workers, where queue writes and
logging cost differently, before changing code for this number; the absolute figure (hundreds of webhooks a
second on one local process, p99 well under 300 ms) is far above any CoMagic account's call volume.

## Restarting the worker mid-soak (local runtime)

\`npm run soak -- --restart\` stops \`wrangler dev\` after half the deliveries and starts it again on the same
\`--persist-to\` state. With wrangler 4.86 / Miniflare 4, messages still in the local queue at the stop did
not survive it, and in the run we made the restarted worker went on to settle only a few more events (165 →
198 of 964 accounted for in four minutes), so local Queues cannot be relied on across a restart. In
production Cloudflare Queues are durable and this does not arise. What protects calls anyway is
reconciliation: every targeted call is in CoMagic's calls report, and the soak script seeds it and runs
\`POST /admin/reconcile\` when events are missing. Website forms have no such second source: a form whose
message is lost in a local restart is lost. Still open: completing the restart run with reconciliation
(it was cut short), and why the restarted local consumer stalls.

`;
const soakPath = "docs/performance.md";
let previousSoak = "";
try {
  const old = readFileSync(soakPath, "utf8");
  const at = old.indexOf("## Soak");
  if (at >= 0) previousSoak = old.slice(at);
} catch {
  // first run
}
writeFileSync(soakPath, `${doc}\n${previousSoak}`.trimEnd() + "\n");
console.log(`\nWritten to ${soakPath}`);
