/**
 * `npm run bench` (many portals), or `npx tsx bench/portals.ts [--dry]`: one deployment serving many portals, the
 * proof issue #23 asks for. The sandbox serves PORTALS quiet portals and one noisy one, each a Bitrix24 portal with
 * its own 2 requests/s bucket (burst 50) and a CoMagic account; the worker (without the devtools inspector) stores
 * each through PUT /admin/portals/<key>. Two phases, the quiet portals sending at the same steady rate in both:
 *   1. quiet only: half of each quiet portal's events;
 *   2. the other half, while the noisy portal sends NOISY events at once.
 * Prints events a minute in all, Bitrix24 refusals (goal 0), each portal's REST rate (≤ 2/s), and the p95 time from
 * webhook to lead for the quiet portals in phase 1 and while the noisy portal drains (goal: within 2×); writes the
 * "Many portals" section of docs/performance.md (not with --dry).
 * Sizes by env: BENCH_PORTALS (100), BENCH_EVENTS (100 a quiet portal), BENCH_NOISY (5000), BENCH_RATE (quiet events a
 * second, all quiet portals together, 10), BENCH_TIMEOUT_MINUTES (60, for each wait); BENCH_KEEP_STATE=1 keeps the worker's
 * local state (.wrangler/bench-portals-<pid>) for a look afterwards.
 */
import { execFileSync } from "node:child_process";
import { copyFileSync, existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { serve } from "@hono/node-server";
import { createSandbox, type RunningSandbox, type SandboxPortal } from "../sandbox/server";
import { createBitrixClient } from "../worker/bitrix/client";
import { ensureCrmUserFields } from "../worker/bitrix/user-fields";
import { sandboxWorkerVars, startLocalWorker } from "../sandbox/local-worker";
import { ADMIN, freshId, freshPhone, json, machine, pool, TOKEN, waitUntil } from "./common";

const { values } = parseArgs({ options: { dry: { type: "boolean", default: false } } });
const size = (name: string, fallback: number) => {
  const n = Number(process.env[name] ?? fallback);
  if (!Number.isFinite(n) || n <= 0) throw new Error(`${name} must be a positive number`);
  return n;
};
const PORTALS = Math.floor(size("BENCH_PORTALS", 100));
const EVENTS = Math.floor(size("BENCH_EVENTS", 100));
const NOISY = Math.floor(size("BENCH_NOISY", 5000));
const RATE = size("BENCH_RATE", 10);
const TIMEOUT_MS = size("BENCH_TIMEOUT_MINUTES", 60) * 60_000;
/** Webhooks of the noisy portal in flight at once while it sends everything. */
const NOISY_CONNECTIONS = 20;
/** The burst of the Bitrix24 bucket the sandbox keeps per portal (FACTS.md §4.1) and of the permits the portal's Durable Object grants. */
const BITRIX_BURST = 50;
const PERMIT_BURST = 40;

/** Per-portal tables of D1: their rows, and their bytes with their indexes (what grows with events). */
const D1_TABLES = ["applied_events", "contact_keys", "pending_creates", "crm_visitors", "attribution_touches"];

const QUIET = Array.from({ length: PORTALS }, (_, i) => `q${String(i + 1).padStart(3, "0")}`);
const NOISY_PORTAL = "noisy";
const ALL = [...QUIET, NOISY_PORTAL];
const tokenOf = (portal: string) => `bench-token-${portal}`;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const begun = Date.now();
const progress = (text: string) => console.log(`[${((Date.now() - begun) / 1000).toFixed(0)} s] ${text}`);

// The sandbox as startSandbox serves it, with every REST request's time noted per portal (the REST rates below).
const restTimes = new Map<string, number[]>(ALL.map((p) => [p, []]));
const { app, describe } = createSandbox({ portals: ALL });
const server = await new Promise<ReturnType<typeof serve>>((resolve) => {
  const s = serve(
    {
      fetch: (req, env) => {
        const portal = /^\/p\/([^/]+)\/rest\//.exec(new URL(req.url).pathname)?.[1];
        if (portal) restTimes.get(portal)?.push(Date.now());
        return app.fetch(req, env);
      },
      port: 0,
      hostname: "127.0.0.1",
    },
    () => resolve(s),
  );
});
const address = server.address();
const sandbox: RunningSandbox = {
  ...describe(`http://127.0.0.1:${typeof address === "object" && address ? address.port : 0}`),
  close: () => new Promise((resolve) => server.close(() => resolve())),
};
const portalOf = (name: string) => sandbox.portals[name] as SandboxPortal;

interface Sent {
  portal: string;
  phase: 1 | 2;
  postedAt: number;
  leadAt: number | null;
  status: number | null;
}
/** Every event by its phone's digits (unique in the run); a lead is matched to its event by phone. */
const sent = new Map<string, Sent>();
const failures: string[] = [];
let duplicates = 0;
const seenLeads = new Map<string, number>(ALL.map((p) => [p, 0]));

/** Reads the leads the sandbox portals made since the last look, in this process: no HTTP, so it can run often. */
function scanLeads(): void {
  for (const name of ALL) {
    const leads = portalOf(name).bitrix.portal.items.lead;
    let last = seenLeads.get(name) ?? 0;
    for (let id = last + 1; leads.has(id); id++) {
      const lead = leads.get(id);
      last = id;
      const digits = (lead?.PHONE[0]?.VALUE ?? "").replace(/\D/g, "");
      const event = sent.get(digits);
      if (!event || !lead) continue;
      if (event.leadAt !== null) duplicates += 1;
      else event.leadAt = lead.DATE_CREATE.getTime();
    }
    seenLeads.set(name, last);
  }
}
const scanner = setInterval(scanLeads, 200);

async function post(portal: string, phase: 1 | 2): Promise<void> {
  const phone = freshPhone().slice(1);
  const event: Sent = { portal, phase, postedAt: Date.now(), leadAt: null, status: null };
  sent.set(phone, event);
  const body = JSON.stringify({ event_type: "call_session_completed", call_session: { id: freshId(), visitor_phone_number: phone, duration_total: 60, utm_source: "bench" } });
  try {
    const res = await fetch(`${worker.url}/webhooks/comagic/${portal}?token=${tokenOf(portal)}`, { method: "POST", headers: { "content-type": "application/json" }, body });
    event.status = res.status;
    if (res.status !== 202) failures.push(`${portal} at ${secs(event.postedAt - begun)}: HTTP ${res.status} ${(await res.text()).slice(0, 200)}`);
    else await res.arrayBuffer();
  } catch (error) {
    failures.push(`${portal} at ${secs(event.postedAt - begun)}: ${error instanceof Error ? error.message : String(error)}`);
  }
}

/** The quiet portals' events, round-robin over the portals, one every 1/RATE s (the post time is what counts). */
async function postSteady(perPortal: number, phase: 1 | 2): Promise<void> {
  const start = Date.now();
  const inFlight = new Set<Promise<void>>();
  for (let i = 0; i < perPortal * QUIET.length; i++) {
    const wait = start + (i * 1000) / RATE - Date.now();
    if (wait > 0) await sleep(wait);
    const p: Promise<void> = post(QUIET[i % QUIET.length] as string, phase).finally(() => inFlight.delete(p));
    inFlight.add(p);
  }
  await Promise.all(inFlight);
}

const events = (filter: (e: Sent) => boolean) => [...sent.values()].filter(filter);
const accepted = (e: Sent) => e.status === 202;
async function allLeads(filter: (e: Sent) => boolean, what: string): Promise<boolean> {
  const done = await waitUntil(async () => events((e) => filter(e) && accepted(e)).every((e) => e.leadAt !== null), TIMEOUT_MS, 500);
  scanLeads();
  if (!done) progress(`${what}: timed out with ${events((e) => filter(e) && accepted(e) && e.leadAt === null).length} leads missing`);
  return done;
}

/** Waits until no sandbox portal has had a REST request for `quietMs` (telephony follow-ups drain after the leads). */
async function restQuiet(quietMs: number, timeoutMs: number): Promise<void> {
  const last = () => Math.max(0, ...[...restTimes.values()].map((t) => t.at(-1) ?? 0));
  await waitUntil(async () => Date.now() - last() >= quietMs, timeoutMs, 500);
}

function percentile(xs: number[], p: number): number {
  if (xs.length === 0) return Number.NaN;
  const sorted = [...xs].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))] as number;
}
const latencies = (list: Sent[]) => list.flatMap((e) => (e.leadAt === null ? [] : [e.leadAt - e.postedAt]));
const secs = (ms: number) => `${(ms / 1000).toFixed(1)} s`;

/** The most requests in any window of `windowMs`, as a rate a second. */
function peakRate(times: readonly number[], windowMs: number): number {
  let peak = 0;
  for (let i = 0, j = 0; i < times.length; i++) {
    while ((times[i] as number) - (times[j] as number) >= windowMs) j++;
    peak = Math.max(peak, i - j + 1);
  }
  return peak / (windowMs / 1000);
}

const stateDir = `.wrangler/bench-portals-${process.pid}`;
progress(`${PORTALS} quiet portals × ${EVENTS} events at ${RATE}/s, and a noisy portal sending ${NOISY} at once; ${machine()}`);
for (const name of ALL) await ensureCrmUserFields(createBitrixClient({ baseUrl: portalOf(name).bitrixWebhookUrl, timeoutMs: 10_000 }));
for (const name of ALL) {
  const { bitrix } = portalOf(name);
  bitrix.bucket.reset();
  Object.assign(bitrix.stats, { httpRequests: 0, rejectedByRateLimit: 0, telephonyRequests: 0, methods: {} });
  // Stored portals reach telephony through their webhook (the app serves the default portal only): the reading of
  // FACTS.md §2.9 under which a webhook may register calls.
  bitrix.portal.telephony = { ...bitrix.portal.telephony, webhook: true };
  restTimes.set(name, []);
}
// startBenchWorker's settings without its app install: every sandbox portal has the same origin, so the worker would
// find the root portal's app by origin (telephonyClients) and register every portal's calls there.
const worker = await startLocalWorker({
  vars: sandboxWorkerVars(sandbox, { COMAGIC_WEBHOOK_TOKEN: TOKEN, ADMIN_TOKEN: ADMIN }),
  stateDir,
  output: process.env.BENCH_WORKER_OUTPUT === "inherit" ? "inherit" : "ignore",
  devtools: false,
});

interface Result {
  phase1: { ms: number; latency: number[] };
  phase2: { startMs: number; ms: number; events: number; noisyMs: number; quietDuring: number[]; quietAll: number[]; noisyLatency: number[] };
  totalMs: number;
  eventsDone: number;
  eventsSent: number;
  refusals: number;
  restByPortal: Map<string, { requests: number; telephony: number; peak60: number; peak10: number; spanRate: number }>;
  deadLetters: number;
  d1: { rows: Record<string, number>; bytes: Record<string, number>; total: number } | null;
  objects: { count: number; bytes: number; counts: ObjectCounts[] } | null;
  complete: boolean;
}

let result: Result | null = null;
try {
  for (const name of ALL) {
    const portal = portalOf(name);
    // No CoMagic credentials: without them a call's follow-ups are its telephony only. With them every call also queues
    // a call record and an enrichment job, delayed; Miniflare's broker keeps a timer per delayed message and refuses
    // sends past 10,000 (QuotaExceededError), which the consumer logs as enrich.enqueue_failed, losing the telephony.
    const settings = {
      BITRIX_WEBHOOK_URL: portal.bitrixWebhookUrl,
      COMAGIC_DATA_API_URL: portal.dataApiUrl,
      COMAGIC_CALL_API_URL: portal.callApiUrl,
      COMAGIC_WEBHOOK_TOKEN: tokenOf(name),
      CRM_LANGUAGE: "en",
    };
    const res = await fetch(`${worker.url}/admin/portals/${name}`, {
      method: "PUT",
      headers: { authorization: `Bearer ${ADMIN}`, "content-type": "application/json" },
      body: JSON.stringify({ settings }),
    });
    if (!res.ok) throw new Error(`PUT /admin/portals/${name} answered HTTP ${res.status}: ${await res.text()}`);
  }
  progress(`${ALL.length} portals stored; phase 1: quiet portals only`);

  const firstHalf = Math.floor(EVENTS / 2);
  const start1 = Date.now();
  await postSteady(firstHalf, 1);
  let complete = await allLeads((e) => e.phase === 1, "phase 1");
  const end1 = Math.max(...events((e) => e.phase === 1).map((e) => e.leadAt ?? 0));
  progress(`phase 1: ${events((e) => e.phase === 1).length} events, leads in ${secs(end1 - start1)}; waiting for the follow-ups`);
  await restQuiet(5_000, 300_000);

  progress("phase 2: the noisy portal sends everything at once, the quiet portals go on");
  const start2 = Date.now();
  const noisyPosts = pool(
    Array.from({ length: NOISY }, () => NOISY_PORTAL),
    NOISY_CONNECTIONS,
    (portal) => post(portal, 2),
  );
  const quietPosts = postSteady(EVENTS - firstHalf, 2);
  await noisyPosts;
  progress(`phase 2: the noisy portal's ${NOISY} webhooks answered in ${secs(Date.now() - start2)}`);
  await quietPosts;
  complete = (await allLeads((e) => e.phase === 2, "phase 2")) && complete;
  const noisy = events((e) => e.portal === NOISY_PORTAL);
  const noisyEnd = Math.max(...noisy.map((e) => e.leadAt ?? 0));
  const end2 = Math.max(...events((e) => e.phase === 2).map((e) => e.leadAt ?? 0));
  progress(`phase 2: the noisy portal drained in ${secs(noisyEnd - start2)}, everything in ${secs(end2 - start2)}; waiting for the follow-ups`);
  await restQuiet(10_000, TIMEOUT_MS);
  scanLeads();

  const quiet2 = events((e) => e.phase === 2 && e.portal !== NOISY_PORTAL);
  const restByPortal = new Map(
    ALL.map((name) => {
      const times = restTimes.get(name) ?? [];
      const span = (times.at(-1) ?? 0) - (times[0] ?? 0);
      const { stats } = portalOf(name).bitrix;
      return [
        name,
        { requests: times.length, telephony: stats.telephonyRequests, peak60: peakRate(times, 60_000), peak10: peakRate(times, 10_000), spanRate: span > 0 ? times.length / (span / 1000) : 0 },
      ] as const;
    }),
  );
  const letters = await json<{ deadLetters: unknown[] }>(`${worker.url}/admin/dead-letters?limit=500`, undefined, { authorization: `Bearer ${ADMIN}` });
  const done = events((e) => e.leadAt !== null);
  result = {
    phase1: { ms: end1 - start1, latency: latencies(events((e) => e.phase === 1)) },
    phase2: {
      startMs: start2 - begun,
      ms: end2 - start2,
      events: events((e) => e.phase === 2 && e.leadAt !== null).length,
      noisyMs: noisyEnd - start2,
      quietDuring: latencies(quiet2.filter((e) => e.postedAt >= start2 && e.postedAt <= noisyEnd)),
      quietAll: latencies(quiet2),
      noisyLatency: latencies(noisy),
    },
    totalMs: end2 - start1 - (start2 - end1),
    eventsDone: done.length,
    eventsSent: sent.size,
    refusals: ALL.reduce((sum, name) => sum + portalOf(name).bitrix.stats.rejectedByRateLimit, 0),
    restByPortal,
    deadLetters: letters.deadLetters.length,
    d1: null,
    objects: null,
    complete,
  };
} finally {
  clearInterval(scanner);
  await worker.stop();
  await sandbox.close();
}

if (result) {
  result.d1 = d1Figures(stateDir);
  result.objects = objectFigures(stateDir);
}
if (!process.env.BENCH_KEEP_STATE) rmSync(stateDir, { recursive: true, force: true });
if (!result) process.exit(1);

/**
 * The local D1 database's rows and bytes per table, read with the sqlite3 CLI from a vacuumed copy (the live file
 * keeps most pages in its write-ahead log, and D1 refuses PRAGMA page_count); null without sqlite3.
 */
function d1Figures(dir: string): Result["d1"] {
  const file = walk(dir).find((f) => f.includes("D1DatabaseObject") && f.endsWith(".sqlite") && !f.endsWith("metadata.sqlite"));
  if (!file) return null;
  const copy = mkdtempSync(join(tmpdir(), "bench-d1-"));
  try {
    for (const suffix of ["", "-wal"]) if (existsSync(`${file}${suffix}`)) copyFileSync(`${file}${suffix}`, join(copy, `db.sqlite${suffix}`));
    const sql = (query: string) => JSON.parse(execFileSync("sqlite3", ["-json", join(copy, "db.sqlite"), query]).toString() || "[]") as Record<string, number | string>[];
    sql("VACUUM");
    const rows = Object.fromEntries(sql(D1_TABLES.map((t) => `SELECT '${t}' AS t, COUNT(*) AS n FROM ${t}`).join(" UNION ALL ")).map((r) => [r.t, Number(r.n)]));
    const pages = sql("SELECT name, tbl_name AS owner, SUM(pgsize) AS bytes FROM dbstat JOIN sqlite_schema USING (name) GROUP BY name");
    const bytes = Object.fromEntries(D1_TABLES.map((t) => [t, pages.filter((p) => p.owner === t).reduce((sum, p) => sum + Number(p.bytes), 0)]));
    const [total] = sql("SELECT SUM(pgsize) AS bytes FROM dbstat");
    return { rows, bytes, total: Number(total?.bytes ?? 0) };
  } catch (error) {
    console.log(`D1 figures unavailable: ${error instanceof Error ? error.message.split("\n")[0] : String(error)}`);
    return null;
  } finally {
    rmSync(copy, { recursive: true, force: true });
  }
}

/** One portal object's own counts (worker/portal-state.ts): admissions, permits, waits, refusals Bitrix24 sent anyway. */
interface ObjectCounts {
  admitted: number;
  sentBack: number;
  permits: number;
  waits: number;
  drained: number;
}

/**
 * The portals' Durable Objects (PortalState, SQLite): how many, their files' bytes, and each one's counters read with
 * the sqlite3 CLI (an object does not know its portal's name, so they come unnamed; the busiest is the noisy portal's).
 */
function objectFigures(dir: string): Result["objects"] {
  const files = walk(dir).filter((f) => f.includes("PortalState") && f.endsWith(".sqlite") && !f.endsWith("metadata.sqlite"));
  if (files.length === 0) return null;
  const counts: ObjectCounts[] = [];
  const copy = mkdtempSync(join(tmpdir(), "bench-do-"));
  try {
    for (const file of files) {
      for (const suffix of ["", "-wal"]) if (existsSync(`${file}${suffix}`)) copyFileSync(`${file}${suffix}`, join(copy, `do.sqlite${suffix}`));
      const one = (query: string) => {
        try {
          const [row] = JSON.parse(execFileSync("sqlite3", ["-json", join(copy, "do.sqlite"), query], { stdio: ["ignore", "pipe", "ignore"] }).toString() || "[]") as Record<string, number>[];
          return row ?? {};
        } catch {
          return {};
        }
      };
      const admission = one("SELECT admitted, refused FROM admission WHERE id = 1");
      const budget = one("SELECT permits, refused, drained FROM budget WHERE id = 1");
      counts.push({ admitted: admission.admitted ?? 0, sentBack: admission.refused ?? 0, permits: budget.permits ?? 0, waits: budget.refused ?? 0, drained: budget.drained ?? 0 });
      rmSync(join(copy, "do.sqlite-wal"), { force: true });
    }
  } catch (error) {
    console.log(`Object counts unavailable: ${error instanceof Error ? error.message.split("\n")[0] : String(error)}`);
  } finally {
    rmSync(copy, { recursive: true, force: true });
  }
  counts.sort((a, b) => b.permits - a.permits);
  return { count: files.length, bytes: files.reduce((sum, f) => sum + statSync(f).size, 0), counts };
}

function walk(dir: string): string[] {
  try {
    return readdirSync(dir, { withFileTypes: true }).flatMap((d) => (d.isDirectory() ? walk(join(dir, d.name)) : [join(dir, d.name)]));
  } catch {
    return [];
  }
}

// ---- the figures ----
const r = result;
const p95 = (xs: number[]) => percentile(xs, 95);
const baseline = p95(r.phase1.latency);
const during = p95(r.phase2.quietDuring);
const ratio = during / baseline;
const quietRest = QUIET.map((q) => r.restByPortal.get(q)).filter((x) => x !== undefined);
const noisyRest = r.restByPortal.get(NOISY_PORTAL);
const maxOf = (xs: number[]) => Math.max(...xs);
const perMinute = (n: number, ms: number) => Math.round((n / ms) * 60_000);
/** The busiest object (the noisy portal's) apart from the others, summed. */
function objectsFigure(): string {
  const counts = r.objects?.counts ?? [];
  const [busiest, ...others] = counts;
  if (!busiest) return "not read";
  const sum = (key: keyof ObjectCounts) => others.reduce((total, c) => total + c[key], 0);
  const describe = (c: ObjectCounts) =>
    `${fmt(c.permits)} permits (${fmt(c.waits)} times told to wait, ${fmt(c.drained)} Bitrix24 refusals seen); ${fmt(c.admitted)} shares of a batch admitted, ${fmt(c.sentBack)} sent back to the queue`;
  const rest = { admitted: sum("admitted"), sentBack: sum("sentBack"), permits: sum("permits"), waits: sum("waits"), drained: sum("drained") };
  return `the noisy portal's: ${describe(busiest)}; the other ${others.length} together: ${describe(rest)}`;
}

const rows: [string, string, string][] = [
  [
    "Events a minute, in all",
    `${fmt(perMinute(r.eventsDone, r.totalMs))} over both phases (${fmt(r.eventsDone)} of ${fmt(r.eventsSent)} calls became leads in ${secs(r.totalMs)}); phase 2 ${fmt(perMinute(r.phase2.events, r.phase2.ms))} (${fmt(r.phase2.events)} in ${secs(r.phase2.ms)}); the noisy portal alone ${fmt(perMinute(NOISY, r.phase2.noisyMs))} (${fmt(NOISY)} in ${secs(r.phase2.noisyMs)})`,
    "—",
  ],
  ["Bitrix24 refusals (QUERY_LIMIT_EXCEEDED)", `${r.refusals}`, r.refusals === 0 ? "goal 0: met" : "goal 0: **missed**"],
  [
    "REST rate, noisy portal",
    `${noisyRest?.requests} requests (${noisyRest?.telephony} of them telephony) over ${((noisyRest?.requests ?? 0) / (noisyRest?.spanRate || 1)).toFixed(0)} s → ${noisyRest?.spanRate.toFixed(2)}/s; busiest minute ${noisyRest?.peak60.toFixed(2)}/s, busiest 10 s ${noisyRest?.peak10.toFixed(1)}/s`,
    `≤ 2/s sustained (a burst of ${PERMIT_BURST} permits first, inside Bitrix24's ${BITRIX_BURST})`,
  ],
  [
    `REST rate, each quiet portal (${quietRest.length})`,
    `${Math.min(...quietRest.map((q) => q.requests))}–${maxOf(quietRest.map((q) => q.requests))} requests each; busiest minute of any: ${maxOf(quietRest.map((q) => q.peak60)).toFixed(2)}/s, busiest 10 s of any: ${maxOf(quietRest.map((q) => q.peak10)).toFixed(1)}/s`,
    "≤ 2/s",
  ],
  [
    "Webhook → lead, quiet portals, phase 1 (no noisy portal)",
    `p50 ${secs(percentile(r.phase1.latency, 50))}, **p95 ${secs(baseline)}**, max ${secs(maxOf(r.phase1.latency))} (${fmt(r.phase1.latency.length)} calls)`,
    "—",
  ],
  [
    "Webhook → lead, quiet portals, while the noisy one drains",
    `p50 ${secs(percentile(r.phase2.quietDuring, 50))}, **p95 ${secs(during)}** (×${ratio.toFixed(1)} phase 1's), max ${secs(maxOf(r.phase2.quietDuring))} (${fmt(r.phase2.quietDuring.length)} calls posted before the noisy portal's last lead)`,
    ratio <= 2 ? "within 2×: met" : "within 2×: **missed**",
  ],
  ["The portals' objects' own counts", objectsFigure(), "—"],
  ["Webhook → lead, noisy portal", `p50 ${secs(percentile(r.phase2.noisyLatency, 50))}, p95 ${secs(p95(r.phase2.noisyLatency))}`, "—"],
  [
    "One lead per person, nothing lost",
    `second leads: ${duplicates}; events without a lead: ${r.eventsSent - r.eventsDone}; webhooks refused: ${failures.length}${failures.length ? ` (${[...new Set(failures.map((f) => f.replace(/^\S+ at \S+ s: /, "")))].join("; ")})` : ""}; dead letters: ${r.deadLetters}`,
    "0 each",
  ],
];
for (const [what, figure, goal] of rows) console.log(`${what}: ${figure} (${goal})`);
// How the quiet portals' times moved through the run: p95 by the minute they were posted in.
const byMinute = new Map<number, number[]>();
for (const e of events((e) => e.portal !== NOISY_PORTAL && e.leadAt !== null)) {
  const minute = Math.floor((e.postedAt - begun) / 60_000);
  byMinute.set(minute, [...(byMinute.get(minute) ?? []), (e.leadAt as number) - e.postedAt]);
}
// Machines here are shared: a minute slower than its neighbours in phase 1 is another process, not the worker.
const restarted = failures.filter((f) => f.includes("restarted mid-request")).length;
const timeline = `Quiet portals' p95 by the minute they were posted in (phase 2 began in minute ${Math.floor(r.phase2.startMs / 60_000)}): ${[...byMinute].map(([m, xs]) => `${m}: ${secs(p95(xs))}`).join(", ")}.${
  restarted
    ? ` ${restarted} webhook${restarted === 1 ? " was" : "s were"} refused with 503 "Your worker restarted mid-request": the local runtime restarting under the load, not the worker's answer; the sender learns it was not taken, and deployed, the CoMagic feed reads a call whose notification was lost.`
    : ""
}`;
console.log(timeline);
for (const f of failures.slice(0, 5)) console.log(`  refused webhook: ${f}`);
console.log(`Quiet portals' REST requests, busiest minute (req/s): ${QUIET.map((q) => `${q} ${r.restByPortal.get(q)?.requests}/${r.restByPortal.get(q)?.peak60.toFixed(2)}`).join(", ")}`);
if (r.d1) console.log(`D1 (vacuumed): ${fmt(r.d1.total)} B in all; per table rows/bytes ${D1_TABLES.map((t) => `${t} ${r.d1?.rows[t]}/${r.d1?.bytes[t]}`).join(", ")}`);
if (r.objects) console.log(`Durable Objects: ${r.objects.count} files, ${fmt(r.objects.bytes / 1024)} KB`);
console.log(`Noisy portal's REST methods: ${JSON.stringify(portalOf(NOISY_PORTAL).bitrix.stats.methods)}`);

function fmt(n: number, digits = 0): string {
  return n.toLocaleString("en-US", { minimumFractionDigits: digits, maximumFractionDigits: digits });
}

/** Where D1, the portals' objects and the queues stop, from this run's figures, the code and FACTS.md. */
function limitsSection(): string {
  const perObject = r.objects ? r.objects.bytes / r.objects.count : null;
  // A portal draining a backlog as fast as Bitrix24 lets it: the noisy portal's rate, measured above.
  const drainPerSecond = NOISY / (r.phase2.noisyMs / 1000);
  // FACTS.md §8: "roughly 200–500 writes/s for all portals together" (writes take "several ms", §3).
  const d1Writes = { low: 200, high: 500 };
  // From the code (see the text): rows a new call writes, and D1 transactions (a batch() is one commit).
  const rowsPerCall = 14;
  // Counted by test/worker/d1-spy.ts on a real batch: ≈ 0.35 a call in full batches, ≈ 3.2 when each holds one message.
  const commitsPerCall = { full: 0.35, single: 3.2 };
  const byRows = { low: d1Writes.low / rowsPerCall, high: d1Writes.high / rowsPerCall };
  const byCommits = { low: d1Writes.low / commitsPerCall.full, high: d1Writes.high / commitsPerCall.full };
  const bySingleCommits = { low: d1Writes.low / commitsPerCall.single, high: d1Writes.high / commitsPerCall.single };
  // The days each kind of row is kept (LEDGER_RETENTION_DAYS, REPORT_RETENTION_DAYS: worker/config.ts defaults).
  const keptDays = { ledger: 90, report: 400 };
  const perDay = (perSecond: number) => perSecond * 36_000; // in 10 working hours
  const range = (x: { low: number; high: number }, f: (n: number) => number = (n) => n, digits = 0) => `${fmt(f(x.low), digits)}–${fmt(f(x.high), digits)}`;
  const d1 = r.d1;
  const rowBytes = (t: string) => (d1?.rows[t] ? (d1.bytes[t] ?? 0) / (d1.rows[t] as number) : 0);
  // Tables this run wrote to (an empty table still takes a page or two).
  const measuredPerCall = d1 ? D1_TABLES.filter((t) => d1.rows[t]).reduce((sum, t) => sum + (d1.bytes[t] ?? 0), 0) / r.eventsSent : null;
  // What this run does not write (no call records or enrichment): a timeline ledger row, a visitor row and ~3 touches
  // of ~300 B (20 columns and two indexes: an estimate, not measured).
  const fullCall = measuredPerCall === null ? null : measuredPerCall + rowBytes("applied_events") + rowBytes("contact_keys") + 3 * 300;
  const d1Size =
    d1 && measuredPerCall !== null && fullCall !== null
      ? (() => {
          const reportShare = fullCall - measuredPerCall;
          const perDailyCall = keptDays.ledger * measuredPerCall + keptDays.report * reportShare;
          const callsADay = 10e9 / perDailyCall;
          return [
            `This run's ${fmt(r.eventsSent)} calls left, with their indexes (vacuumed): ${D1_TABLES.filter((t) => d1.rows[t])
              .map((t) => `\`${t}\` ${fmt(d1.rows[t] as number)} rows, ${fmt(rowBytes(t))} B a row`)
              .join("; ")}:`,
            `≈ ${fmt(measuredPerCall)} B a call of ledger (a lead row and two telephony rows, one contact key). The report's share, which`,
            "this run leaves out (the call record's timeline ledger row, a `crm_visitors` row, ~3 `attribution_touches` rows at",
            `an estimated 300 B each), is ≈ ${fmt(reportShare)} B a call. The cron prunes the ledger after \`LEDGER_RETENTION_DAYS\` (${keptDays.ledger}) and`,
            `the report's rows after \`REPORT_RETENTION_DAYS\` (${keptDays.report}) (\`storage/retention.ts\`, once a day), so the database`,
            `levels off at ≈ ${keptDays.ledger} × ${fmt(measuredPerCall)} B + ${keptDays.report} × ${fmt(reportShare)} B ≈ ${fmt(perDailyCall / 1000)} KB per daily call: 10 GB hold ≈ ${fmt(Math.round(callsADay / 100) * 100)} calls a day for good,`,
            `i.e. ≈ ${fmt(callsADay / 300)} portals at 300 calls a day. Beyond that: a shorter \`REPORT_RETENTION_DAYS\` (at 90 days, ≈ ${fmt(Math.round(10e9 / (90 * fullCall) / 1000) * 1000)} calls`,
            "a day), or a second deployment; one D1 database per group of portals is not built.",
          ].join("\n  ");
        })()
      : "";
  const noisyObject = r.objects?.counts[0];
  const drainSeconds = (noisyRest?.requests ?? 0) / (noisyRest?.spanRate || 1);
  const objectRate = noisyObject
    ? `; the noisy portal's, ≈ ${fmt((noisyObject.permits + noisyObject.admitted + noisyObject.sentBack) / Math.max(1, drainSeconds))} a second while it drained (mostly \`admit\` calls of shares sent back), a few hundredths of the limit`
    : "";
  const sentBackLine = noisyObject
    ? ` Here the noisy portal's object sent its share back ${fmt(noisyObject.sentBack)} times while admitting ${fmt(noisyObject.admitted)}: ${fmt(noisyObject.sentBack / Math.max(1, noisyObject.admitted), 1)} trips round the queue for every share written. A backlog of B messages on one queue that all come back every 2 s puts B / 2 messages a second on it: 10,000 of them reach its 5,000 a second with no call written any faster.`
    : "";
  return `### Where each limit is reached

One deployment: one Durable Object per portal, one D1 database and three queues for all portals. Cloudflare's
figures are from \`reference/cloudflare/FACTS.md\` (its section in brackets); the rest is this run or the code.

- **Durable Object size: 10 GB per object (§1.7). Never reached.** A portal's object keeps one-row tables
  (\`budget\`, \`lease\`, \`admission\`) and \`_schema\`, whatever the portal's events.${perObject === null ? "" : ` Here: ${r.objects?.count} objects, ${fmt(perObject / 1024)} KB each on disk.`}
  The ledger, contact keys and pending creates stay in D1 (below).
- **Durable Object request rate: soft limit 1,000 requests/s per object; ~500–750 for JSON RPC, ~200–500 with
  storage writes (§1.7). Never reached.** Each object serves one portal: one \`take\` RPC per Bitrix24 HTTP request
  (a \`batch\` is one; each permit is one request and one row written), one more each time a consumer is told to
  wait and asks again, one \`admit\` per portal's share of a batch (sent back or not), and \`lease\` + \`release\`
  per lead batch. Bitrix24 lets a portal have 2 requests/s (the noisy portal above: ${noisyRest?.spanRate.toFixed(2)}/s over its drain, its
  first 40 a burst), so a quiet portal's object sees a few requests a second${objectRate}, however many portals there are.
- **D1 size: 10 GB per database (§3). Reached by the calls of the retention periods.** ${d1Size}
- **D1 write rate: one writer for all portals, ~200–500 writes/s (§3, §8). The first limit a busy deployment
  reaches.** Rows one new call writes, from the code: its pending create (1 per phone or email, storage/d1.ts),
  the ledger (\`applied_events\`, the pending delete, \`contact_keys\` 1 per phone or email: 3), the visitor written
  (\`crm_visitors\`: 1); telephony's ledger rows (register, finish, recording: 2–3); the call record's timeline row
  (1); enrichment (\`crm_visitors\` 1, the \`attribution_touches\` delete 1 and a row a visit, ~3): about ${rowsPerCall}, each
  also writing its primary-key index. Transactions (a \`batch()\` is one commit, the "several ms" of a write): the
  lead consumer writes once or twice a round of up to 40 calls, telephony up to three times a batch of 20, the call
  record once a batch and enrichment twice a batch (counted with \`test/worker/d1-spy.ts\` on a real batch: 20 call
  records 1 commit, 20 enrichments 2): ≈ ${commitsPerCall.full} a call in full batches, ≈ ${commitsPerCall.single} when each batch holds one
  message. Counting every row as a write, D1 carries ${range(byRows)} calls/s for all portals together (${range(byRows, (n) => perDay(n) / 1e6, 1)} M a day in
  10 working hours, i.e. ${range(byRows, (n) => perDay(n) / 300)} portals at 300 calls a day); counting commits, ${range(byCommits)} calls/s in full
  batches, ${range(bySingleCommits)} in single-message ones. Backlogs reach it sooner: a portal drains at ≈ ${fmt(drainPerSecond, 1)} calls/s when
  Bitrix24 lets it (the noisy portal above), and its follow-ups come at the same rate a minute later, so
  ${range(byRows, (n) => n / drainPerSecond, 1)} portals draining at once by rows (after a Bitrix24 or CoMagic outage, with consumers side by side)
  load D1 as much as it takes; by commits in full batches, ${range(byCommits, (n) => n / drainPerSecond, 1)}. Reads (the ledger's lookups once a round, portal settings once in 30 s an
  isolate) are indexed, under a millisecond each.
- **Queue throughput: 5,000 messages/s per queue (§2). Not reached before D1's rows.** A call is one lead message and
  up to three follow-ups (telephony, call record, enrichment) on the enrichment queue, so a queue's 5,000 messages/s
  are ≈ 1,250 calls/s: above D1 by rows (${fmt(byRows.high)} calls/s), about level with D1's best case by commits
  (${fmt(byCommits.high)}), unless a backlog goes round the queue: a portal's share of a batch that its object does not admit
  (its lease held, its permits spoken for) is sent again as new messages at a return slot of its own (2 s to 15 min,
  a round after the last one given; a held lease: 2–30 s) (jobs/portal-gate.ts), about 3 queue operations a message
  each time round (§2).${sentBackLine}
- **Worker secrets: 128 per Worker (§5); cron triggers: 250 per account (§6).** One deployment seals every portal's
  secrets with one key (SETTINGS_KEY) and has one cron trigger whatever the number of portals. A Worker per portal
  stops at 250 portals per account by cron triggers alone, and per-portal secrets as Worker secrets at about 40
  portals (3 secrets each, §8).`;
}

const date = new Date().toISOString().slice(0, 16).replace("T", " ");
const section = `## Many portals

\`npx tsx bench/portals.ts\` (part of \`npm run bench\`) on ${date} UTC, ${machine()}. The sandbox serves ${PORTALS} quiet
portals and one noisy one, each a Bitrix24 portal with its own bucket (2 requests/s, burst ${BITRIX_BURST}) and a CoMagic
account; the worker (\`wrangler dev\`'s runtime without the devtools inspector) stores each through
\`PUT /admin/portals/<key>\` and takes CoMagic call notifications on \`/webhooks/comagic/<key>\`. Phase 1: the quiet
portals send ${Math.floor(EVENTS / 2)} calls each, round-robin, ${RATE} a second in all. Phase 2: the noisy portal sends ${fmt(NOISY)} at once
(${NOISY_CONNECTIONS} connections) while the quiet portals send their other ${EVENTS - Math.floor(EVENTS / 2)} at the same rate. Every call becomes a lead and a
Bitrix24 telephony call (through the portal's webhook). The portals have no CoMagic credentials, so no call record or
enrichment follows: locally each delayed message holds a timer in Miniflare's queue broker, which refuses sends past
10,000 of them (a limit of the local broker; FACTS.md lists none like it for Cloudflare Queues).
Times are from the webhook's post to the lead's DATE_CREATE in the sandbox; REST rates from each request's arrival.
Sizes: BENCH_PORTALS, BENCH_EVENTS, BENCH_NOISY, BENCH_RATE.${r.complete ? "" : " **The run timed out before every lead was written.**"}

**One consumer.** Local queues deliver one batch at a time per queue (FACTS.md §2, Local: Miniflare's broker has no
consumer concurrency), so these figures are for one lead consumer and one enrichment consumer, whatever
\`max_concurrency\` says; deployed, up to 10 of each run side by side. Each portal's share of a batch goes through
its Durable Object first (jobs/portal-gate.ts), the portals of a batch side by side: lead writes take the portal's
lease, and a portal whose permits are spoken for more than a few seconds ahead gets its messages sent back to the
queue for later instead of keeping the consumer waiting.

| what | figure | goal |
| --- | --- | --- |
${rows.map(([what, figure, goal]) => `| ${what} | ${figure} | ${goal} |`).join("\n")}

${timeline}

${limitsSection()}
`;

if (values.dry) {
  console.log(`\n${section}`);
} else {
  const path = "docs/performance.md";
  const doc = readFileSync(path, "utf8");
  const at = doc.indexOf("## Many portals\n");
  const next = at >= 0 ? doc.indexOf("\n## ", at + 3) : -1;
  if (at < 0) writeFileSync(path, `${doc.trimEnd()}\n\n${section}`);
  else writeFileSync(path, `${doc.slice(0, at)}${section}${next >= 0 ? `\n${doc.slice(next + 1)}` : ""}`);
  console.log(`\nWritten to ${path}`);
}
