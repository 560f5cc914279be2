/**
 * `npm run bench` (third part), or `npx tsx bench/points.ts [--events 200]`: the CoMagic Data API points the worker
 * spends, measured. Real events go through the worker under wrangler dev against the CoMagic sandbox, which counts a
 * point for every successful read (GET /_sandbox/comagic/stats, data_api.txt:129,150), with every feature on: the
 * feed, call records, enrichment, the cost import. Prints points per 1,000 events of each kind (calls notified, calls
 * only the feed finds, chats, requests, website forms), before issue #22 (read from the old code) and after
 * (measured), then the points a day at 300 communications a day, and writes docs/performance.md's "Data API points".
 */
import { readFileSync, rmSync, writeFileSync } from "node:fs";
import { parseArgs } from "node:util";
import { formatComagicDateTime } from "../worker/domain/comagic-time";
import { sampleCall } from "../sandbox/sample-call";
import { SANDBOX_ACCOUNT_TIME_ZONE } from "../sandbox/comagic/calls-report-row";
import { freshId, freshPhone, json, machine, pool, startStack, TOKEN, waitUntil } from "./common";

// --dry: print only, leave docs/performance.md alone.
const { values } = parseArgs({ options: { events: { type: "string", default: "200" }, dry: { type: "boolean", default: false } } });
const N = Number(values.events);
/** The feed reads at every cron tick the bench sends (wrangler dev runs no cron of its own); a day is computed. */
const FEED_INTERVAL_MINUTES = 1;
/** FEED_OVERLAP_MINUTES's default: every run reads this far back before its cursor. */
const OVERLAP_MINUTES = 120;
/** Follow-ups (call records, enrichment) wait this long: short for the bench, and the same batching as a minute. */
const ENRICH_DELAY_SECONDS = 3;
/** Longer than a follow-up's delay and the enrichment queue's 5 s batch timeout: no Data API request for this long after every lead is enriched means done. */
const SETTLED_MS = 10_000;
/** Done when some lead is never enriched: no Data API request for this long. */
const QUIET_MS = 20_000;
const DAY_POINTS = 750;
/** Deferrable reads (enrichment, cost import) stop when less than 10% of the day is left (domain/comagic-budget.ts). */
const DEFERRABLE_CEILING = DAY_POINTS * 0.9;
const WORKING_HOURS = 10;
const SITES = 1;

const stateDir = `.wrangler/bench-points-${process.pid}`;
const { sandbox, worker } = await startStack({ FEED_INTERVAL_MINUTES: String(FEED_INTERVAL_MINUTES), ENRICH_DELAY_SECONDS: String(ENRICH_DELAY_SECONDS), COMAGIC_SITE_IDS: "1" }, stateDir);
const started = Date.now();
const progress = (text: string) => console.log(`[${((Date.now() - started) / 1000).toFixed(0)} s] ${text}`);

type Counts = Record<string, number>;
interface ComagicStats {
  requests: number;
  logins: number;
  points: { total: number; methods: Counts };
}
const comagicStats = () => json<ComagicStats>(`${sandbox.url}/_sandbox/comagic/stats`);
const seed = (rows: Record<string, unknown[]>) => json(`${sandbox.url}/_sandbox/comagic/data`, rows);
type Lead = { UF_CRM_COMAGIC_ID?: string | null; UF_CRM_CM_SESSIONS?: unknown };
const leads = async () => (await json<{ leads: Lead[] }>(`${sandbox.url}/_sandbox/crm`)).leads;

const enrichedLead = (l: Lead) => l.UF_CRM_CM_SESSIONS !== null && l.UF_CRM_CM_SESSIONS !== undefined && l.UF_CRM_CM_SESSIONS !== "";

/**
 * Waits until the follow-ups are done: every lead enriched and no Data API request for SETTLED_MS, or (when some
 * lead is never enriched, e.g. past FORM_ENRICH_LIMITER) no request for QUIET_MS.
 */
async function settled(mine: () => Promise<Lead[]>, timeoutMs = 300_000): Promise<void> {
  let last = -1;
  let since = Date.now();
  for (const begun = Date.now(); Date.now() - begun < timeoutMs; await new Promise((r) => setTimeout(r, 500))) {
    const { requests } = await comagicStats();
    if (requests !== last) [last, since] = [requests, Date.now()];
    const quiet = Date.now() - since;
    if (quiet >= QUIET_MS) return;
    if (quiet >= SETTLED_MS && (await mine()).every(enrichedLead)) return;
  }
}

/** One Cron Trigger tick: the feed (due at every tick here), retention, the report's sync with the cost import. */
async function cron(): Promise<void> {
  const res = await fetch(`${worker.url}/cdn-cgi/handler/scheduled?cron=${encodeURIComponent("*/5 * * * *")}`);
  if (!res.ok) throw new Error(`the scheduled handler answered HTTP ${res.status}`);
  await res.text();
}

const ago = (minutes: number) => formatComagicDateTime(new Date(Date.now() - minutes * 60_000), SANDBOX_ACCOUNT_TIME_ZONE);
let visitorSeq = 30_000_000 + Math.floor(Math.random() * 1e6);
/** A visitor CoMagic has two visits of: enrichment finds a journey at once (no "reports not caught up" retries). */
function visitor(rows: { visitor_sessions: unknown[] }): number {
  visitorSeq += 1;
  for (const [i, days] of [9, 2].entries())
    rows.visitor_sessions.push({
      id: visitorSeq * 10 + i,
      date_time: ago(days * 1440),
      visitor_id: visitorSeq,
      channel: i ? "paid" : "organic",
      source_name: i ? "Яндекс.Директ" : "Google",
      utm_source: i ? "yandex" : null,
      utm_medium: i ? "cpc" : null,
      utm_campaign: i ? "sofas" : null,
      entrance_page: "https://shop.example.ru/sofas",
      site_id: 1,
    });
  return visitorSeq;
}

/** A kind of event: how to make `n` of them reach the worker, and the keys of the leads they make. */
interface Kind {
  name: string;
  /** Seeds CoMagic, posts what is posted; says whether a feed run brings them (then the bench fires the cron). */
  make(n: number): Promise<{ keys: string[]; viaFeed: boolean }>;
}

const whatsAppOrSite = (i: number) => i % 2 === 0;
const KINDS: Kind[] = [
  {
    name: "calls, notified",
    // The shipped template (no visitor id), its row in get.calls_report; the feed's next run sees it applied.
    async make(n) {
      const rows = { visitor_sessions: [] as unknown[] };
      const calls = Array.from({ length: n }, () => {
        const c = sampleCall();
        c.reportRow.visitor_id = visitor(rows);
        return c;
      });
      await seed({ ...rows, calls: calls.map((c) => c.reportRow) });
      await pool(calls, 10, async (c) => {
        const res = await fetch(`${worker.url}/webhooks/comagic?token=${TOKEN}`, { method: "POST", headers: { "content-type": "application/json" }, body: c.notification });
        if (res.status !== 202) throw new Error(`webhook answered ${res.status}: ${await res.text()}`);
      });
      return { keys: calls.map((c) => String(c.id)), viaFeed: false };
    },
  },
  {
    name: "calls, found by the feed",
    // A lost notification: only get.calls_report has the call.
    async make(n) {
      const rows = { visitor_sessions: [] as unknown[] };
      const calls = Array.from({ length: n }, () => {
        const c = sampleCall();
        c.reportRow.visitor_id = visitor(rows);
        c.reportRow.start_time = ago(10);
        return c;
      });
      await seed({ ...rows, calls: calls.map((c) => c.reportRow) });
      return { keys: calls.map((c) => String(c.id)), viaFeed: true };
    },
  },
  {
    name: "chats (half WhatsApp, half site chats with a typed email)",
    // WhatsApp: the number is in the row. Site chat: no number, the email from get.visitors (RD get_visitors.txt:20-30).
    async make(n) {
      const rows = { visitor_sessions: [] as unknown[], chats: [] as unknown[], chat_messages: [] as unknown[], visitors: [] as unknown[] };
      const keys: string[] = [];
      for (let i = 0; i < n; i++) {
        const id = freshId();
        const visitorId = visitor(rows);
        const site = !whatsAppOrSite(i);
        rows.chats.push({
          id,
          status: "succeed",
          initiator: "visitor",
          date_time: ago(12),
          chat_channel_type: site ? "comagic" : "whatsapp",
          chat_channel_name: site ? "Сайт" : "WhatsApp магазина",
          is_group_chat: false,
          visitor_phone_number: site ? null : Number(freshPhone().slice(1)),
          visitor_id: visitorId,
          employee_id: 25,
          employee_full_name: "Ivan Admin",
        });
        if (site) rows.visitors.push({ id: visitorId, name: `Гость ${i}`, emails: [`chat${visitorId}@example.ru`], phones: [] });
        rows.chat_messages.push(
          { id: id * 10, chat_id: id, date_time: ago(11), source: site ? "visitor" : "chat_channel", text: "Есть ли диван в наличии?", employee_full_name: null },
          { id: id * 10 + 1, chat_id: id, date_time: ago(10), source: "operator", text: "Да, есть.", employee_full_name: "Ivan Admin" },
        );
        keys.push(`chat-${id}`);
      }
      await seed(rows);
      return { keys, viaFeed: true };
    },
  },
  {
    name: "requests",
    async make(n) {
      const rows = { visitor_sessions: [] as unknown[], offline_messages: [] as unknown[] };
      const keys: string[] = [];
      for (let i = 0; i < n; i++) {
        const id = freshId();
        rows.offline_messages.push({
          id,
          date_time: ago(10),
          form_name: "Обратный звонок",
          form_type: "Стандартная",
          text: "Перезвоните после 18:00",
          visitor_phone_number: freshPhone().slice(1),
          visitor_name: "Пётр",
          visitor_id: visitor(rows),
        });
        keys.push(`request-${id}`);
      }
      await seed(rows);
      return { keys, viaFeed: true };
    },
  },
  {
    name: "website forms",
    // The snippet's fields with CoMagic's visitor id; one address each (FORM_RATE_LIMITER is per address).
    async make(n) {
      const rows = { visitor_sessions: [] as unknown[] };
      const forms = Array.from({ length: n }, (_, i) => ({ i, visitorId: visitor(rows) }));
      await seed(rows);
      const keys = await pool(forms, 10, async ({ i, visitorId }) => {
        const body = JSON.stringify({ name: `Olga ${i}`, phone: freshPhone(), message: "Call me", form_name: "Callback", comagic_visitor_id: String(visitorId), submission_id: `points-${visitorId}` });
        const headers = { "content-type": "text/plain;charset=UTF-8", origin: "https://shop.example.ru", "cf-connecting-ip": `198.19.${Math.floor(visitorId / 250) % 250}.${visitorId % 250}` };
        const res = await fetch(`${worker.url}/forms`, { method: "POST", headers, body });
        const answer = (await res.json()) as { id?: string };
        if (res.status !== 202 || !answer.id) throw new Error(`/forms answered ${res.status}`);
        return answer.id;
      });
      return { keys, viaFeed: false };
    },
  },
];
const CHATS = KINDS[2] as Kind;

interface Measured {
  label: string;
  events: number;
  feedRuns: number;
  points: Counts;
  total: number;
  leads: number;
  enriched: number;
  seconds: number;
}

const diff = (after: Counts, before: Counts): Counts =>
  Object.fromEntries(
    Object.entries(after)
      .map(([m, v]) => [m, v - (before[m] ?? 0)] as const)
      .filter(([, v]) => v > 0),
  );

/** Runs `work`, lets every follow-up finish, and counts the points spent meanwhile. */
async function measure(label: string, events: number, work: () => Promise<{ keys: string[]; feedRuns: number }>): Promise<Measured> {
  const before = await comagicStats();
  const begun = Date.now();
  const { keys, feedRuns } = await work();
  const wanted = new Set(keys);
  const mine = async () => (await leads()).filter((l) => wanted.has(String(l.UF_CRM_COMAGIC_ID ?? "")));
  await waitUntil(async () => (await mine()).length >= wanted.size, 300_000, 500);
  await settled(mine);
  const after = await comagicStats();
  const made = await mine();
  const m: Measured = {
    label,
    events,
    feedRuns,
    points: diff(after.points.methods, before.points.methods),
    total: after.points.total - before.points.total,
    leads: made.length,
    enriched: made.filter(enrichedLead).length,
    seconds: (Date.now() - begun) / 1000,
  };
  progress(
    `${label}: ${m.total} points (${Object.entries(m.points)
      .map(([k, v]) => `${k} ${v}`)
      .join(", ")}), ${m.leads}/${wanted.size} leads, ${m.enriched} enriched, ${feedRuns} feed runs`,
  );
  return m;
}

async function runKind(kind: Kind, n: number, label: string): Promise<Measured> {
  return measure(label, n, async () => {
    const { keys, viaFeed } = await kind.make(n);
    // A notified call's feed run comes after its lead: it reads the call again and leaves it.
    if (viaFeed) await cron();
    else {
      const wanted = new Set(keys);
      await waitUntil(async () => (await leads()).filter((l) => wanted.has(String(l.UF_CRM_COMAGIC_ID ?? ""))).length >= wanted.size, 300_000, 500);
      await cron();
    }
    return { keys, feedRuns: 1 };
  });
}

/**
 * What the events themselves cost: the points less the feed's three reports a run, and, but for chats, less the
 * messages and visitors reads a run makes for chats of earlier steps still inside its overlap.
 */
function variable(m: Measured, kind: Kind): number {
  return m.total - 3 * m.feedRuns - (kind === CHATS ? 0 : perRunReads(m));
}
const get = (m: Measured, method: string) => m.points[method] ?? 0;
/** Record reads: get.calls_report reads beyond the feed's one a run. */
const recordReads = (m: Measured) => get(m, "get.calls_report") - m.feedRuns;
const journeyReads = (m: Measured) => get(m, "get.visitor_sessions_report") + get(m, "get.communications_report");
/** Reads a feed run makes once for all the chats it holds: their messages, site chats' visitors. */
const perRunReads = (m: Measured) => get(m, "get.chat_messages_report") + get(m, "get.visitors");

/**
 * Before issue #22, per event, from the old code (5b2af90): a call 1 record read (call-record.ts, one read a job)
 * and 2 journey reads (the shipped template has no visitor id, so the record's visitor is enriched: reports.ts
 * loadJourney, 2 reads a visitor, enrich.ts deduplicating visitors only); a chat (the old chat_session body, which
 * CoMagic never sends) 2; a CoMagic request none (never read, so never a lead); a form with a visitor 2. Fixed:
 * reconciliation every 10 minutes, one read (144 a day), and the cost import, one a site a day.
 */
const BEFORE: Record<string, { record: number; journey: number; note?: string }> = {
  calls: { record: 1, journey: 2 },
  chats: { record: 0, journey: 2, note: "the old chat_session body only" },
  requests: { record: 0, journey: 0, note: "never read: no lead" },
  website: { record: 0, journey: 2 },
};
const beforeOf = (name: string) => BEFORE[name.split(/[ ,]/)[0] ?? ""] ?? { record: 0, journey: 0 };
const BEFORE_RUNS = 144;

const fmt = (n: number) => Math.round(n).toLocaleString("en-US");
const methods = (m: Measured) =>
  Object.entries(m.points)
    .map(([k, v]) => `${k} ${v}`)
    .join(", ");

function summarize(r: { first: Measured; idle: Measured; load: { kind: Kind; m: Measured }[]; reread: Measured; low: { kind: Kind; m: Measured }[]; logins: number }) {
  const out: string[] = [];
  const per1000 = (points: number, n: number) => (n ? fmt((points / n) * 1000) : "—");
  const fixedRun = r.idle.total;
  const chatRunExtra = r.reread.total - fixedRun;
  const costImport = r.first.total - fixedRun;

  out.push(`Points per 1,000 events (what the events cost; the feed's reads are per run, below)`);
  out.push(`| kind | before | after, ${N} at once | after, one at a time | measured reads |`, "| --- | ---: | ---: | ---: | --- |");
  for (const { kind, m } of r.load) {
    const lowM = r.low.find((l) => l.kind === kind)?.m as Measured;
    const b = beforeOf(kind.name);
    const reads = (x: Measured) =>
      `${recordReads(x)} record + ${journeyReads(x)} journey${kind === CHATS ? ` + ${perRunReads(x)} messages/visitors` : ""} for ${x.events} (${x.enriched}/${x.leads} leads enriched)`;
    out.push(
      `| ${kind.name} | ${fmt((b.record + b.journey) * 1000)}${b.note ? ` (${b.note})` : ""} | ${per1000(variable(m, kind), m.events)} | ${per1000(variable(lowM, kind), lowM.events)} | at once: ${reads(m)}; one at a time: ${reads(lowM)} |`,
    );
  }
  out.push(
    "",
    `Per run and per day (measured): a feed run ${fixedRun} points (${methods(r.idle)}), whatever the rows; a run whose window (${OVERLAP_MINUTES}-minute overlap) holds closed chats ${r.reread.total} (${methods(r.reread)}), even when every chat in it is already a lead. Cost import: ${costImport} on the first tick (7 catch-up days × ${SITES} site), then ${SITES} a site a day. login.user: ${r.logins} in the whole run (the sandbox charges none; if CoMagic does, at most one an hour: the token lives an hour).`,
    `Before: reconciliation ${BEFORE_RUNS} a day (one read every 10 minutes), cost import ${SITES} a site a day.`,
  );

  // At 300 a day over WORKING_HOURS hours an event comes every 2 minutes: a queue batch (5 s timeout) holds one.
  const lowKind = (prefix: string) => r.low.find((l) => l.kind.name.startsWith(prefix))?.m as Measured;
  const each = (prefix: string) => {
    const m = lowKind(prefix);
    return { record: recordReads(m) / m.events, journey: journeyReads(m) / m.events };
  };
  const per = { calls: each("calls, notified"), chats: each("chats"), requests: each("requests"), forms: each("website forms") };
  type Mix = { name: string; calls: number; chats: number; requests: number; forms: number };
  const scenarios: Mix[] = [
    { name: "300 calls", calls: 300, chats: 0, requests: 0, forms: 0 },
    { name: "300 chats", calls: 0, chats: 300, requests: 0, forms: 0 },
    { name: "300 requests", calls: 0, chats: 0, requests: 300, forms: 0 },
    { name: "300 forms", calls: 0, chats: 0, requests: 0, forms: 300 },
    { name: "180 calls, 60 chats, 30 requests, 30 forms", calls: 180, chats: 60, requests: 30, forms: 30 },
  ];
  const kinds = ["calls", "chats", "requests", "forms"] as const;
  /** Reads the feed priority makes (feed, records, messages, visitors) and the deferrable ones (journeys, costs). */
  const day = (s: Mix, interval: number) => {
    const runs = 1440 / interval;
    // Every run whose window holds a closed chat reads messages (and visitors): working hours plus the overlap.
    const chatRuns = s.chats > 0 ? Math.min(runs, Math.ceil((WORKING_HOURS * 60 + OVERLAP_MINUTES) / interval)) : 0;
    const feed = fixedRun * runs + chatRuns * chatRunExtra;
    const records = kinds.reduce((sum, k) => sum + s[k] * per[k].record, 0);
    const journeys = kinds.reduce((sum, k) => sum + s[k] * per[k].journey, 0);
    return { feed, records, journeys, total: feed + records + journeys + SITES };
  };
  const before = (s: Mix) => kinds.reduce((sum, k) => sum + s[k] * (beforeOf(k === "forms" ? "website" : k).record + beforeOf(k === "forms" ? "website" : k).journey), BEFORE_RUNS + SITES);
  /** What a 750-point day does with it: deferrable reads stop at 675 (domain/comagic-budget.ts), the rest at 750. */
  const verdict = (d: ReturnType<typeof day>) => {
    const firm = d.feed + d.records;
    if (d.total <= DEFERRABLE_CEILING) return "fits";
    if (firm > DAY_POINTS) return "**over 750**: the feed itself stops before the day ends";
    const share = Math.max(0, Math.min(1, (DEFERRABLE_CEILING - firm) / (d.journeys + SITES)));
    return `**over ${fmt(DEFERRABLE_CEILING)}**: ≈ ${fmt(share * 100)}% of the events enriched, the rest deferred`;
  };
  const cell = (d: ReturnType<typeof day>) => `${fmt(d.total)} = feed ${fmt(d.feed)} + records ${fmt(d.records)} + journeys ${fmt(d.journeys)} + costs ${SITES}; ${verdict(d)}`;
  out.push(
    "",
    `Points a day at 300 communications a day, arriving over ${WORKING_HOURS} working hours (one every 2 minutes: every queue batch holds one event, so each costs what it costs one at a time)`,
    "| a day | before | after, feed every 10 min | after, feed every 5 min |",
    "| --- | ---: | --- | --- |",
  );
  for (const s of scenarios) out.push(`| ${s.name} | ${fmt(before(s))}${before(s) > DAY_POINTS ? " **over 750**" : ""} | ${cell(day(s, 10))} | ${cell(day(s, 5))} |`);
  const callsWithin = (limit: number, interval: number) => Math.max(0, Math.floor((limit - fixedRun * (1440 / interval) - SITES) / (per.calls.record + per.calls.journey)));
  out.push(
    "",
    `Calls a day with every feature on, one at a time (${per.calls.record + per.calls.journey} points a call): before ${Math.floor((DAY_POINTS - BEFORE_RUNS - SITES) / 3)} within 750; after, feed every 10 min: ${callsWithin(DEFERRABLE_CEILING, 10)} with every call enriched (675), ${callsWithin(DAY_POINTS, 10)} within 750; every 5 min: ${callsWithin(DAY_POINTS, 5)}.`,
  );
  return { text: out.join("\n"), fixedRun, chatRunExtra, per, day: (interval: number) => day(scenarios[0] as Mix, interval) };
}

function writeSection(text: string): void {
  const date = new Date().toISOString().slice(0, 16).replace("T", " ");
  const section = `## Data API points

\`npx tsx bench/points.ts\` (the last part of \`npm run bench\`) on ${date} UTC, ${machine()}: ${N} events of each kind at
once, then one event at a time, through the worker under \`wrangler dev\` against the CoMagic sandbox, which charges a
point for every successful request (data_api.txt:129, 150) and counts them per method. Every feature on: the feed,
call records, enrichment, the cost import (one site). The bench fires the Cron Trigger by hand with
FEED_INTERVAL_MINUTES=1, so every tick reads; a day's runs are counted from the measured points per run.

${text}
`;
  const path = "docs/performance.md";
  const doc = readFileSync(path, "utf8");
  const at = doc.indexOf("## Data API points\n");
  let rest = doc;
  if (at >= 0) {
    const next = doc.indexOf("\n## ", at + 3);
    rest = doc.slice(0, at) + (next >= 0 ? doc.slice(next + 1) : "");
  }
  writeFileSync(path, `${rest.trimEnd()}\n\n${section}`);
  console.log(`\nWritten to ${path}`);
}

try {
  // 0. The fixed cost: the first tick imports the missed days' costs (7 catch-up days a site), later ticks only read the feed.
  const first = await measure("first cron tick, no events", 0, async () => {
    await cron();
    return { keys: [], feedRuns: 1 };
  });
  const idle = await measure("cron tick, no events", 0, async () => {
    await cron();
    return { keys: [], feedRuns: 1 };
  });

  // 1. At load: N events of each kind at once, so the queues' batches fill (20 enrichment jobs a batch).
  const load: { kind: Kind; m: Measured }[] = [];
  for (const kind of KINDS) load.push({ kind, m: await runKind(kind, N, `${kind.name}, ${N} at once`) });
  // The chats stay inside the next run's overlap: the run reads their messages (and site chats' visitors) again.
  const reread = await measure("cron tick re-reading the chats above (inside the overlap)", 0, async () => {
    await cron();
    return { keys: [], feedRuns: 1 };
  });

  // 2. At a low rate: one event at a time, so every batch holds one event (as at 300 a day: one every 2 minutes).
  const low: { kind: Kind; m: Measured }[] = [];
  for (const kind of KINDS) low.push({ kind, m: await runKind(kind, 1, `${kind.name}, one at a time`) });
  const stats = await comagicStats();
  const report = summarize({ first, idle, load, reread, low, logins: stats.logins });
  console.log(`\n${report.text}`);
  if (!values.dry) writeSection(report.text);
} finally {
  await worker.stop();
  await sandbox.close();
  rmSync(stateDir, { recursive: true, force: true });
}
