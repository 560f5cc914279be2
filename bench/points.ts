/**
 * `npm run bench` (last part), or `npx tsx bench/points.ts [--events 100] [--dry]`: the CoMagic Data API points the
 * worker spends, measured. Real events go through the worker under wrangler dev against the CoMagic sandbox, which
 * charges a point for every successful read and counts them per method (GET /_sandbox/comagic/stats;
 * data_api.txt:129,150), with every feature on: the feed, call records, enrichment, the cost import. Three steps:
 *   1. N events of each kind at once (calls notified, calls only the feed finds, chats, requests, website forms):
 *      points per 1,000 events when the queues' batches fill;
 *   2. one call alone in its slot: what an event costs when its batch holds nothing else;
 *   3. one working hour at 300 communications a day, 30 times faster (the feed's tick, the follow-up slot, the
 *      overlap and the gaps between events all divided by 30): what the day costs when batches hold a few events.
 * Prints the figures, before issue #22 (read from the old code) and after, and the points a day at 300
 * communications a day for a 10- and a 5-minute feed; writes docs/performance.md's "Data API points" section.
 */
import { readFileSync, rmSync, writeFileSync } from "node:fs";
import { parseArgs } from "node:util";
import { formatComagicDateTime } from "../worker/domain/comagic-time";
import { sampleCall } from "../sandbox/sample-call";
import { SANDBOX_ACCOUNT_TIME_ZONE } from "../sandbox/comagic/calls-report-row";
import { freshId, freshPhone, json, machine, pool, startStack, TOKEN, waitUntil } from "./common";

// --dry: print only, leave docs/performance.md alone.
// 100 fill five enrichment batches of 20; Bitrix24's 2 requests a second, not CoMagic, sets how long a step takes.
const { values } = parseArgs({ options: { events: { type: "string", default: "100" }, dry: { type: "boolean", default: false } } });
const N = Number(values.events);

/** The deployed settings (wrangler.toml, config.ts) the day is computed for. */
const SLOT_SECONDS = 600;
const OVERLAP_MINUTES = 120;
const DELAY_SECONDS = 60;
/** The worker's slot, delay and overlap run this many times faster throughout; step 3's events and feed ticks too (10 minutes: 20 s). */
const SPEED = 30;
const DAY_POINTS = 750;
/** Deferrable reads (enrichment, cost import) stop when less than 10% of the day is left (domain/comagic-budget.ts). */
const DEFERRABLE_CEILING = DAY_POINTS * 0.9;
const WORKING_HOURS = 10;
const PER_DAY = 300;
const SITES = 1;
/** Quiet this long once every lead is enriched means the follow-ups are done (longer than the enrichment batch timeout). */
const SETTLED_MS = 8_000;
/** Done when some lead is never enriched (past FORM_ENRICH_LIMITER): no request to either sandbox for longer than a slot and a batch. */
const QUIET_MS = (SLOT_SECONDS * 1000) / SPEED + 10_000;

const stateDir = `.wrangler/bench-points-${process.pid}`;
// The feed reads at every tick the bench fires (FEED_INTERVAL_MINUTES=1; wrangler dev runs no cron of its own).
const { sandbox, worker } = await startStack(
  {
    FEED_INTERVAL_MINUTES: "1",
    FEED_OVERLAP_MINUTES: String(OVERLAP_MINUTES / SPEED),
    ENRICH_DELAY_SECONDS: String(DELAY_SECONDS / SPEED),
    ENRICH_SLOT_SECONDS: String(SLOT_SECONDS / SPEED),
    COMAGIC_SITE_IDS: "1",
  },
  stateDir,
);
const started = Date.now();
const progress = (text: string) => console.log(`[${((Date.now() - started) / 1000).toFixed(0)} s] ${text}`);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

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
 * Waits until the follow-ups are done: every lead enriched and neither sandbox asked anything for SETTLED_MS, or
 * (when some lead is never enriched, e.g. past FORM_ENRICH_LIMITER) nothing asked for QUIET_MS. Bitrix24 counts
 * too: at its 2 requests a second the queues spend most of their time on it, between two Data API reads.
 */
async function settled(mine: () => Promise<Lead[]>, timeoutMs = 600_000): Promise<void> {
  let last = "";
  let since = Date.now();
  for (const begun = Date.now(); Date.now() - begun < timeoutMs; await sleep(500)) {
    const [comagic, bitrix] = await Promise.all([comagicStats(), json<{ httpRequests: number }>(`${sandbox.url}/_sandbox/stats`)]);
    const seen = `${comagic.requests}/${bitrix.httpRequests}`;
    if (seen !== last) [last, since] = [seen, Date.now()];
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

let chatSeq = 0;
const KINDS: Kind[] = [
  {
    name: "calls, notified",
    // The shipped template (no visitor id), its row in get.calls_report; the feed's next run sees it applied.
    async make(n) {
      const rows = { visitor_sessions: [] as unknown[] };
      const calls = Array.from({ length: n }, () => {
        const c = sampleCall(sandbox.url);
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
        const c = sampleCall(sandbox.url);
        c.reportRow.visitor_id = visitor(rows);
        c.reportRow.start_time = ago(1.5);
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
        chatSeq += 1;
        const site = chatSeq % 2 === 0;
        rows.chats.push({
          id,
          status: "succeed",
          initiator: "visitor",
          date_time: ago(1.5),
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
          { id: id * 10, chat_id: id, date_time: ago(1.2), source: site ? "visitor" : "chat_channel", text: "Есть ли диван в наличии?", employee_full_name: null },
          { id: id * 10 + 1, chat_id: id, date_time: ago(1), source: "operator", text: "Да, есть.", employee_full_name: "Ivan Admin" },
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
          date_time: ago(1),
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

interface Measured {
  label: string;
  events: number;
  feedRuns: number;
  points: Counts;
  total: number;
  leads: number;
  enriched: number;
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
    // What was posted meets the feed's next run once it is a lead: the run reads it again and leaves it.
    const wanted = new Set(keys);
    if (!viaFeed) await waitUntil(async () => (await leads()).filter((l) => wanted.has(String(l.UF_CRM_COMAGIC_ID ?? ""))).length >= wanted.size, 300_000, 500);
    await cron();
    return { keys, feedRuns: 1 };
  });
}

/** 300 a day over 10 hours in this mix (180 calls, 60 chats, 30 requests, 30 forms): 30 an hour, one every 2 minutes. */
const HOUR_MIX = ["calls, notified", "chats", "calls, notified", "requests", "calls, notified", "website forms", "calls, notified", "chats", "calls, notified", "calls, notified"];

/**
 * One working hour at 300 a day, SPEED times faster: an event every 2 minutes, a feed tick every 10 minutes, both
 * divided by SPEED; the worker's slot, delay and overlap are divided the same way. Then one more tick for what came
 * last, and the follow-ups of the hour's last slots.
 */
async function simulatedHour(feedMinutes: number): Promise<Measured> {
  const perHour = PER_DAY / WORKING_HOURS;
  const gapMs = (3_600_000 / perHour / SPEED) | 0;
  const tickMs = (feedMinutes * 60_000) / SPEED;
  const hourMs = 3_600_000 / SPEED;
  return measure(`one working hour, ${perHour} events (${SPEED}× faster), feed every ${feedMinutes} min`, perHour, async () => {
    const keys: string[] = [];
    const begun = Date.now();
    const ticks: Promise<void>[] = [];
    for (let at = 0; at < hourMs; at += tickMs) ticks.push(sleep(at).then(cron));
    for (let i = 0; i < perHour; i++) {
      await sleep(begun + i * gapMs - Date.now());
      const kind = KINDS.find((k) => k.name.startsWith(HOUR_MIX[i % HOUR_MIX.length] as string)) as Kind;
      keys.push(...(await kind.make(1)).keys);
    }
    await Promise.all(ticks);
    await sleep(begun + hourMs - Date.now());
    await cron();
    return { keys, feedRuns: ticks.length + 1 };
  });
}

/**
 * What the events themselves cost: the points less what every feed run reads once for all its rows (the three
 * reports; the messages of the closed chats in its window and their visitors, counted per run below).
 */
function variable(m: Measured): number {
  return m.total - 3 * m.feedRuns - perRunReads(m);
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

interface Results {
  first: Measured;
  idle: Measured;
  load: { kind: Kind; m: Measured }[];
  reread: Measured;
  alone: Measured;
  hour: Measured;
  logins: number;
}

function summarize(r: Results): string {
  const out: string[] = [];
  const per1000 = (points: number, n: number) => (n ? fmt((points / n) * 1000) : "—");
  const fixedRun = r.idle.total;
  const chatRunExtra = r.reread.total - fixedRun;
  const costImport = r.first.total - fixedRun;
  const aloneCall = variable(r.alone);
  const slots = (WORKING_HOURS * 3600) / SLOT_SECONDS;

  out.push(
    "Points per 1,000 events: the reads the events cause (call records, journeys). What a feed run reads once for all its rows is counted per run, below.",
    "",
    `| kind | before | after, ${N} at once | after, one event a batch | measured (${N} at once) |`,
    "| --- | ---: | ---: | ---: | --- |",
  );
  for (const { kind, m } of r.load) {
    const b = beforeOf(kind.name);
    // A batch reads once for its calls' records and twice for its visitors' journeys, however many it holds.
    const alone = kind.name.startsWith("calls") ? 3 : 2;
    out.push(
      `| ${kind.name} | ${fmt((b.record + b.journey) * 1000)}${b.note ? ` (${b.note})` : ""} | ${per1000(variable(m), m.events)} | ${fmt(alone * 1000)} | ${recordReads(m)} record + ${journeyReads(m)} journey reads; ${m.enriched} of ${m.leads} leads enriched |`,
    );
  }
  out.push(
    "",
    `One call alone in its slot, measured: ${aloneCall} points (${recordReads(r.alone)} record + ${journeyReads(r.alone)} journey reads): the "one event a batch" column.`,
    `A feed run: ${fixedRun} points (${methods(r.idle)}) whatever the rows; ${r.reread.total} (+ get.chat_messages_report ${get(r.reread, "get.chat_messages_report")}, get.visitors ${get(r.reread, "get.visitors")}) while closed chats are in its window (the overlap), even when every one of them is a lead already. Cost import: ${costImport} on the first tick (7 catch-up days, ${SITES} site), then ${SITES} a site a day. login.user: ${r.logins} in the whole run (the sandbox charges none; a token lives an hour). Before: reconciliation ${BEFORE_RUNS} a day (one read every 10 minutes), cost import ${SITES} a site a day.`,
  );

  // The day: the feed's runs, and per follow-up slot (ENRICH_SLOT_SECONDS) one record read and two journey reads.
  type Mix = { name: string; calls: number; chats: number; requests: number; forms: number };
  const scenarios: Mix[] = [
    { name: "300 calls", calls: 300, chats: 0, requests: 0, forms: 0 },
    { name: "300 chats", calls: 0, chats: 300, requests: 0, forms: 0 },
    { name: "300 requests", calls: 0, chats: 0, requests: 300, forms: 0 },
    { name: "300 forms", calls: 0, chats: 0, requests: 0, forms: 300 },
    { name: "180 calls, 60 chats, 30 requests, 30 forms", calls: 180, chats: 60, requests: 30, forms: 30 },
  ];
  const chatRuns = (interval: number) => Math.min(1440 / interval, Math.ceil((WORKING_HOURS * 60 + OVERLAP_MINUTES) / interval));
  const day = (s: Mix, interval: number) => {
    const feed = fixedRun * (1440 / interval) + (s.chats > 0 ? chatRuns(interval) * chatRunExtra : 0);
    // At 30 an hour a 10-minute slot holds ~5 events: every slot of the working hours reads, and one more after them.
    const records = s.calls > 0 ? slots + 1 : 0;
    const journeys = 2 * (slots + 1);
    return { feed, records, journeys, total: feed + records + journeys + SITES };
  };
  const kinds = ["calls", "chats", "requests", "forms"] as const;
  const beforeKind = (k: (typeof kinds)[number]) => beforeOf(k === "forms" ? "website" : k);
  const before = (s: Mix) => kinds.reduce((sum, k) => sum + s[k] * (beforeKind(k).record + beforeKind(k).journey), BEFORE_RUNS + SITES);
  /** What a 750-point day does with it: deferrable reads stop with 10% left (domain/comagic-budget.ts), the rest at 750. */
  const verdict = (d: { feed: number; records: number; journeys: number; total: number }) => {
    const firm = d.feed + d.records;
    if (d.total <= DEFERRABLE_CEILING) return "fits";
    if (firm > DAY_POINTS) return `**over 750**: ${d.records ? "the feed and call records alone" : "the feed alone"} (${fmt(firm)}) ${d.records ? "run" : "runs"} out before the day ends`;
    const share = Math.max(0, Math.min(1, (DEFERRABLE_CEILING - firm) / (d.journeys + SITES)));
    return `**over ${fmt(DEFERRABLE_CEILING)}**: ≈ ${fmt(share * 100)}% of the events enriched, the rest deferred`;
  };
  const cell = (d: { feed: number; records: number; journeys: number; total: number }) =>
    `${fmt(d.total)} = feed ${fmt(d.feed)} + records ${fmt(d.records)} + journeys ${fmt(d.journeys)} + costs ${SITES}; ${verdict(d)}`;
  const beforeNote = (s: Mix) => (s.requests === PER_DAY ? " (no request read: no lead)" : s.chats === PER_DAY ? " (chats only by the old chat_session body)" : "");

  // The simulated hour, measured: its event reads (records, journeys) ten times, the feed's runs as above.
  const hour = r.hour;
  const simulated = (interval: number) => {
    const feed = fixedRun * (1440 / interval) + chatRuns(interval) * chatRunExtra;
    const records = recordReads(hour) * WORKING_HOURS;
    const journeys = journeyReads(hour) * WORKING_HOURS;
    return { feed, records, journeys, total: feed + records + journeys + SITES };
  };
  out.push(
    "",
    `Points a day at ${PER_DAY} communications a day over ${WORKING_HOURS} working hours (one every 2 minutes). Feed: ${fixedRun} a run, 1440 / interval runs, + ${chatRunExtra} for each run whose window meets a closed chat, (${WORKING_HOURS} h + ${OVERLAP_MINUTES} min overlap) / interval runs. Follow-ups: ENRICH_SLOT_SECONDS=${SLOT_SECONDS} delivers a slot's record and enrichment jobs together, so each of the ${slots} slots of the working hours (and the one after) reads once for records when it has calls and twice for journeys; ~${PER_DAY / WORKING_HOURS / (3600 / SLOT_SECONDS)} events a slot.`,
    "",
    "| a day | before | after, feed every 10 min | after, feed every 5 min |",
    "| --- | ---: | --- | --- |",
  );
  for (const s of scenarios) out.push(`| ${s.name} | ${fmt(before(s))}${before(s) > DAY_POINTS ? " **over 750**" : ""}${beforeNote(s)} | ${cell(day(s, 10))} | ${cell(day(s, 5))} |`);
  out.push(
    `| the same mix, simulated: one hour measured (${hour.events} events, ${SPEED}× faster: ${recordReads(hour)} record + ${journeyReads(hour)} journey reads, ${hour.feedRuns} feed runs reading ${get(hour, "get.chat_messages_report")} messages + ${get(hour, "get.visitors")} visitors; ${hour.enriched} of ${hour.leads} leads enriched) × ${WORKING_HOURS} | | ${cell(simulated(10))} | ${cell(simulated(5))} |`,
  );
  const callsWithin = (limit: number, interval: number) => Math.max(0, Math.floor((limit - fixedRun * (1440 / interval) - SITES) / 3));
  out.push(
    "",
    `Without slots (ENRICH_SLOT_SECONDS=0), every event is alone in its batch (${aloneCall} points a call, 2 anything else): ${PER_DAY} calls a day cost ${fmt(fixedRun * 144 + PER_DAY * 3 + SITES)} at a 10-minute feed; a 750-point account then carries ${callsWithin(DAY_POINTS, 10)} calls a day (${callsWithin(DEFERRABLE_CEILING, 10)} all enriched), against ${Math.floor((DAY_POINTS - BEFORE_RUNS - SITES) / 3)} before.`,
  );
  return out.join("\n");
}

function writeSection(text: string): void {
  const date = new Date().toISOString().slice(0, 16).replace("T", " ");
  const section = `## Data API points

\`npx tsx bench/points.ts\` (the last part of \`npm run bench\`) on ${date} UTC, ${machine()}. Real events go
through the worker under \`wrangler dev\` against the CoMagic sandbox, which charges a point for every successful
request (data_api.txt:129, 150) and counts them per method; every feature on: the feed, call records, enrichment,
the cost import (one site). The bench fires the Cron Trigger itself (each tick reads the feed) and runs the
worker's clock ${SPEED} times faster: follow-up slot ${SLOT_SECONDS / SPEED} s, delay ${DELAY_SECONDS / SPEED} s, overlap ${OVERLAP_MINUTES / SPEED} minutes. Steps: ${N}
events of each kind at once; one call alone in its slot; one working hour at ${PER_DAY} a day (${PER_DAY / WORKING_HOURS} events
in the mix below, a feed tick every 10 minutes), ${SPEED} times faster. Before: read from the code before issue #22.

${text}
`;
  const path = "docs/performance.md";
  const doc = readFileSync(path, "utf8");
  // In place when it is there (the prose after it stays after it), else at the end.
  const at = doc.indexOf("## Data API points\n");
  const next = at >= 0 ? doc.indexOf("\n## ", at + 3) : -1;
  if (at < 0) writeFileSync(path, `${doc.trimEnd()}\n\n${section}`);
  else writeFileSync(path, `${doc.slice(0, at)}${section}${next >= 0 ? `\n${doc.slice(next + 1)}` : ""}`);
  console.log(`\nWritten to ${path}`);
}

try {
  // 0. The fixed cost: the first tick imports the missed days' costs (7 catch-up days a site), later ticks only read the feed.
  const tick = async () => {
    await cron();
    return { keys: [], feedRuns: 1 };
  };
  const first = await measure("first cron tick, no events", 0, tick);
  const idle = await measure("cron tick, no events", 0, tick);

  // 1. N events of each kind at once, so the queues' batches fill (20 jobs a batch on the enrichment queue).
  const load: { kind: Kind; m: Measured }[] = [];
  let reread: Measured | null = null;
  for (const kind of KINDS) {
    load.push({ kind, m: await runKind(kind, N, `${kind.name}, ${N} at once`) });
    // While the chats are inside the overlap, the next run reads their messages (and site chats' visitors) again.
    if (kind.name.startsWith("chats")) reread = await measure("cron tick with those chats in its window", 0, tick);
  }
  // 2. One call alone in its slot.
  const alone = await runKind(KINDS[0] as Kind, 1, "one call alone");

  // 3. A working hour at 300 a day, SPEED times faster.
  const hour = await simulatedHour(10);

  const stats = await comagicStats();
  const report = summarize({ first, idle, load, reread: reread as Measured, alone, hour, logins: stats.logins });
  console.log(`\n${report}`);
  if (!values.dry) writeSection(report);
} finally {
  await worker.stop();
  await sandbox.close();
  rmSync(stateDir, { recursive: true, force: true });
}
