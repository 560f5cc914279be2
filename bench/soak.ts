/**
 * `npm run soak [-- --events 1000] [-- --restart] [-- --simple]`: call and form events, 20% delivered twice and some out of
 * order, while the Bitrix24 sandbox fails 30% of requests (503, 500 after the work, answers past the client's
 * timeout, connections cut after the work). Every event must end up created, updated, ignored with a reason, or
 * dead-lettered with a reason, and every person must have exactly one lead. Prints the ledger; exits 1 if not.
 * With --restart the worker is stopped halfway and started again on the same local state. Throughout, Bitrix24's
 * duplicate search lags behind its writes (FACTS.md §7): a new phone or email is found by findbycomm only
 * `--lag` ms (default 30 s) after it is written. Calls use the shipped call-finished template's variables.
 */
import { readFileSync, rmSync, writeFileSync } from "node:fs";
import { parseArgs } from "node:util";
import { ADMIN, freshId, freshPhone, json, machine, pool, startBenchWorker, startStack, TOKEN, waitForQuiet } from "./common";
import { formatComagicDateTime } from "../worker/domain/comagic-time";

const { values } = parseArgs({
  options: {
    events: { type: "string", default: "1000" },
    restart: { type: "boolean", default: false },
    simple: { type: "boolean", default: false },
    seed: { type: "string", default: "42" },
    lag: { type: "string", default: "30000" },
  },
});
// --simple: a portal without leads (crm.settings.mode.get answers 2), where every person must end with one contact and one deal.
const SIMPLE = values.simple;
const FINDBYCOMM_LAG_MS = Number(values.lag);
const EVENTS = Number(values.events);
let rng = Number(values.seed);
const random = () => {
  rng = (rng * 1103515245 + 12345) % 2 ** 31;
  return rng / 2 ** 31;
};

interface Person {
  phone: string;
  email: string | null;
}
interface SoakEvent {
  n: number;
  kind: "call" | "form";
  person: Person;
  targeted: boolean;
  body: string;
  path: string;
  headers: Record<string, string>;
  callId?: number;
  direction?: "in" | "out";
  at: Date;
}

// About 1.6 events a person, so many people call or write more than once.
const people: Person[] = Array.from({ length: Math.ceil(EVENTS / 1.6) }, (_, i) => ({ phone: freshPhone(), email: i % 3 === 0 ? `soak${i}-${Date.now()}@example.ru` : null }));
const events: SoakEvent[] = Array.from({ length: EVENTS }, (_, n): SoakEvent => {
  const person = people[n < people.length ? n : Math.floor(random() * people.length)] as Person;
  const at = new Date(Date.now() - 20 * 60_000 + n * 500);
  if (random() < 0.7) {
    const callId = freshId();
    const targeted = random() > 0.05;
    // A few outbound calls (a manager calling back): answered "ignored: outbound_call", never a lead.
    const direction = random() < 0.03 ? "out" : "in";
    const talk = targeted ? 50 + (n % 300) : 0;
    const body = JSON.stringify({
      notification_name: "Завершение звонка",
      call_session_id: callId,
      contact_phone_number: person.phone.slice(1),
      direction,
      employee_id: 25,
      employee_full_name: "Soak Operator",
      talk_time_duration: talk,
      wait_time_duration: 5,
      total_time_duration: talk + 5,
      tag_names: "soak",
    });
    return {
      n,
      kind: "call",
      person,
      targeted: targeted && direction === "in",
      body,
      path: `/webhooks/comagic?token=${TOKEN}`,
      headers: { "content-type": "application/json" },
      callId,
      direction,
      at,
    };
  }
  const body = JSON.stringify({ name: `Person ${n}`, phone: person.phone, ...(person.email ? { email: person.email } : {}), message: `soak form ${n}`, submission_id: `soak-${n}` });
  return {
    n,
    kind: "form",
    person,
    targeted: true,
    body,
    path: "/forms",
    headers: { "content-type": "text/plain;charset=UTF-8", origin: "https://shop.example.ru", "cf-connecting-ip": `198.18.${Math.floor(n / 250)}.${n % 250}` },
    at,
  };
});

// 20% delivered twice; deliveries shuffled within windows of 20 so some arrive out of order.
const deliveries = events.flatMap((e) => (random() < 0.2 ? [e, e] : [e]));
for (let start = 0; start < deliveries.length; start += 20) {
  for (let i = Math.min(start + 19, deliveries.length - 1); i > start; i--) {
    const j = start + Math.floor(random() * (i - start + 1));
    [deliveries[i], deliveries[j]] = [deliveries[j] as SoakEvent, deliveries[i] as SoakEvent];
  }
}

const stateDir = `.wrangler/soak-${process.pid}`;
const vars = { BITRIX_TIMEOUT_MS: "2000", ENRICH_DELAY_SECONDS: "3600" };
// Telephony through the webhook (the source's reading of FACTS.md §2.9), so every written call is also a Bitrix24 call.
let stack = await startStack(vars, stateDir, (sandbox) => json(`${sandbox.url}/_sandbox/portal`, { mode: SIMPLE ? 2 : 1, telephony: { webhook: true } }));
const { sandbox } = stack;
// CoMagic's calls report knows every call, so the feed can bring back what a restart lost.
await json(`${sandbox.url}/_sandbox/comagic/data`, {
  calls: events
    .filter((e) => e.kind === "call")
    .map((e) => ({
      id: e.callId,
      start_time: formatComagicDateTime(e.at, "Europe/Moscow"),
      direction: e.direction,
      is_lost: !e.targeted && e.direction === "in",
      contact_phone_number: e.person.phone.slice(1),
      total_duration: e.targeted ? 60 : 5,
      talk_duration: e.targeted ? 50 : 0,
      wait_duration: 5,
      utm_source: "soak",
    })),
});
await json(`${sandbox.url}/_sandbox/faults`, { rate: 0.3, kinds: ["503", "500", "timeout", "drop"], delayMs: 3_000, seed: 5, findbycommLagMs: FINDBYCOMM_LAG_MS });

const outcomes = new Map<number, { status: number; id?: string; reason?: string }>();
async function deliver(list: SoakEvent[]) {
  await pool(list, 10, async (e) => {
    const res = await fetch(`${stack.worker.url}${e.path}`, { method: "POST", headers: e.headers, body: e.body }).catch(() => null);
    const answer = res ? ((await res.json().catch(() => ({}))) as { id?: string; reason?: string }) : {};
    // The body's own "status" word must not hide the HTTP status.
    if (!outcomes.has(e.n) || outcomes.get(e.n)?.status !== 202) outcomes.set(e.n, { id: answer.id, reason: answer.reason, status: res?.status ?? 0 });
  });
}

const progress = (text: string) => console.log(`[${((Date.now() - started) / 1000).toFixed(1)} s] ${text}`);
const started = Date.now();
const half = Math.floor(deliveries.length / 2);
await deliver(deliveries.slice(0, half));
progress(`delivered ${half} of ${deliveries.length}`);
let restartNote = "";
if (values.restart) {
  // Stop the worker with work still queued, then start it again on the same local state.
  const queuedAt = Date.now();
  await stack.worker.stop();
  progress("worker stopped");
  stack = { sandbox, worker: await startBenchWorker(sandbox, vars, stateDir, { port: Number(new URL(stack.worker.url).port) }) };
  progress("worker started again");
  restartNote = `worker stopped and restarted ${((Date.now() - queuedAt) / 1000).toFixed(1)} s after half the deliveries`;
}
await deliver(deliveries.slice(half));
const posted = Date.now();
progress(`delivered all ${deliveries.length}`);

const admin = { authorization: `Bearer ${ADMIN}` };
const acceptedKeys = () => [...new Set([...outcomes.values()].filter((o) => o.status === 202 && o.id).map((o) => o.id as string))];
async function account() {
  const keys = acceptedKeys();
  const applied: Record<string, string> = {};
  // The admin routes take small bodies (16 KiB): 200 keys a request.
  for (let i = 0; i < keys.length; i += 200)
    Object.assign(applied, (await json<{ applied: Record<string, string> }>(`${stack.worker.url}/admin/applied`, { keys: keys.slice(i, i + 200) }, admin)).applied);
  const { deadLetters } = await json<{ deadLetters: { code: string; job: { event?: { key?: string } } }[] }>(`${stack.worker.url}/admin/dead-letters?limit=500`, undefined, admin);
  const dead = new Map(deadLetters.flatMap((d) => (d.job?.event?.key ? [[d.job.event.key, d.code] as const] : [])));
  const lost = keys.filter((k) => !applied[k] && !dead.has(k));
  return { keys, applied, dead, lost };
}

let result = await account();
// Retries back off up to minutes: wait until every accepted event is accounted for, or no progress for 2 minutes.
for (let idle = 0, before = result.lost.length; result.lost.length > 0 && idle < 120_000; ) {
  await new Promise((r) => setTimeout(r, 5_000));
  result = await account();
  idle = result.lost.length < before ? 0 : idle + 5_000;
  before = result.lost.length;
  progress(`${result.keys.length - result.lost.length} of ${result.keys.length} accepted events accounted for`);
}
const kindOfKey = new Map([...outcomes].flatMap(([n, o]) => (o.id ? [[o.id, events[n]?.kind] as const] : [])));
const lostOf = (kind: SoakEvent["kind"]) => result.lost.filter((key) => kindOfKey.get(key) === kind);
let reconciled = "";
let formsLostInRestart: string[] = [];
if (result.lost.length > 0 && values.restart) {
  const [callsBefore, formsBefore] = [lostOf("call").length, lostOf("form").length];
  // What production does every FEED_INTERVAL_MINUTES without anyone asking: the Cron Trigger's CoMagic feed.
  progress(`missing after the restart: ${callsBefore} calls, ${formsBefore} forms; running the scheduled feed`);
  const cron = await fetch(`${stack.worker.url}/cdn-cgi/handler/scheduled?cron=${encodeURIComponent("*/5 * * * *")}`);
  if (!cron.ok) throw new Error(`the scheduled handler answered HTTP ${cron.status}`);
  for (let waited = 0; lostOf("call").length > 0 && waited < 300_000; waited += 5_000) {
    await new Promise((r) => setTimeout(r, 5_000));
    result = await account();
    progress(`calls still missing: ${lostOf("call").length}`);
  }
  formsLostInRestart = lostOf("form");
  reconciled = `missing after the restart: ${callsBefore} calls and ${formsBefore} forms; after the scheduled feed (CoMagic's reports since its cursor, less FEED_OVERLAP_MINUTES) ${lostOf("call").length} calls and ${formsLostInRestart.length} forms missing (forms have no second source to reconcile from)`;
}
await waitForQuiet(sandbox.url, 5_000, 120_000);
// Telephony jobs retry on their own backoff: wait until every written call is a finished Bitrix24 call, or 2 minutes.
const finishedCalls = async () => (await json<{ calls: { finished: unknown }[] }>(`${sandbox.url}/_sandbox/crm`)).calls.filter((c) => c.finished).length;
const callsWritten = result.keys.filter((k) => result.applied[k] && kindOfKey.get(k) === "call").length;
for (let waited = 0; (await finishedCalls()) < callsWritten && waited < 120_000; waited += 5_000) await new Promise((r) => setTimeout(r, 5_000));
const finished = Date.now();

// The ledger.
type Item = { ID: string; ORIGIN_ID: string | null; CONTACT_ID?: string | null; PHONE?: { VALUE: string }[]; CALLS?: unknown[] };
const crm = await json<{ leads: Item[]; deals: Item[]; contacts: Item[]; calls: { EXTERNAL_CALL_ID: string | null; finished: unknown }[] }>(`${sandbox.url}/_sandbox/crm`);
const leads = crm.leads;
const byRef = new Map([...crm.leads.map((l) => [l.ID, l] as const), ...crm.deals.map((d) => [`deal:${d.ID}`, d] as const)]);
const statusCounts = new Map<string, number>();
for (const o of outcomes.values()) {
  const label = o.status === 202 ? "accepted" : o.status === 200 ? `ignored: ${o.reason}` : `HTTP ${o.status}`;
  statusCounts.set(label, (statusCounts.get(label) ?? 0) + 1);
}
let created = 0;
let updated = 0;
for (const key of result.keys) {
  const ref = result.applied[key];
  if (!ref) continue;
  if (byRef.get(ref)?.ORIGIN_ID === key) created += 1;
  else updated += 1;
}
const deadCodes = new Map<string, number>();
for (const key of result.keys) {
  const code = !result.applied[key] ? result.dead.get(key) : undefined;
  if (code) deadCodes.set(code, (deadCodes.get(code) ?? 0) + 1);
}
const lostForever = new Set(formsLostInRestart);
// A person whose only accepted events are forms lost in the local restart cannot have a lead; reported above.
const acceptedEventsOf = (p: Person) => events.filter((e) => e.person === p && outcomes.get(e.n)?.status === 202);
const peopleWithAccepted = people.filter((p) => acceptedEventsOf(p).length > 0);
const personsWithEvents = peopleWithAccepted.filter((p) => acceptedEventsOf(p).some((e) => !lostForever.has(outcomes.get(e.n)?.id ?? "")));
const peopleOnlyInLostForms = peopleWithAccepted.length - personsWithEvents.length;
const withPhone = (items: Item[], p: Person) => items.filter((l) => l.PHONE?.some((x) => x.VALUE === p.phone));
// Classic: one lead a person. Without leads: one contact and one deal (of that contact) a person.
const perPerson = personsWithEvents.map((p) => {
  if (!SIMPLE) return withPhone(leads, p).length;
  const contacts = withPhone(crm.contacts, p);
  const deals = crm.deals.filter((d) => contacts.some((c) => c.ID === d.CONTACT_ID));
  return contacts.length === 1 && deals.length === 1 ? 1 : Math.max(contacts.length, deals.length, contacts.length === 0 ? 0 : 2);
});
const leadsPerPerson = perPerson;
const duplicated = leadsPerPerson.filter((c) => c > 1).length;
for (const p of personsWithEvents.filter((_, i) => (leadsPerPerson[i] ?? 0) > 1).slice(0, 3)) {
  const contacts = withPhone(SIMPLE ? crm.contacts : leads, p);
  console.log(
    `more than one for ${p.phone}: ${contacts.map((c) => `${c.ID} (origin ${c.ORIGIN_ID})`).join(", ")}; deals ${crm.deals
      .filter((d) => contacts.some((c) => c.ID === d.CONTACT_ID))
      .map((d) => `${d.ID} (origin ${d.ORIGIN_ID})`)
      .join(", ")}; events ${acceptedEventsOf(p)
      .map((e) => `${e.kind} ${outcomes.get(e.n)?.id}`)
      .join(", ")}`,
  );
}
const missingLead = leadsPerPerson.filter((c) => c === 0).length;
const registered = crm.calls.filter((c) => c.finished);
const telephonyKeys = registered.map((c) => c.EXTERNAL_CALL_ID);
const writtenCalls = callsWritten;
const what = SIMPLE ? "one contact and one deal" : "exactly one lead";
const faults = await json<{ faultsInjected: Record<string, number>; httpRequests: number }>(`${sandbox.url}/_sandbox/stats`);

const lines = [
  `events ${EVENTS} (${events.filter((e) => e.kind === "call").length} calls, ${events.filter((e) => e.kind === "form").length} forms), deliveries ${deliveries.length} (${deliveries.length - EVENTS} repeated), ${people.length} people`,
  `faults injected by the Bitrix24 sandbox: ${Object.entries(faults.faultsInjected)
    .map(([k, v]) => `${k} ${v}`)
    .join(", ")} of ${faults.httpRequests} REST requests`,
  `duplicate search lag: findbycomm finds a new phone or email ${(FINDBYCOMM_LAG_MS / 1000).toFixed(0)} s after it is written`,
  ...[...statusCounts].map(([label, count]) => `webhook/form answers: ${label} ${count}`),
  `accepted events (unique keys) ${result.keys.length}: created ${created}, updated ${updated}, dead-lettered ${[...deadCodes.values()].reduce((a, b) => a + b, 0)}${deadCodes.size ? ` (${[...deadCodes].map(([c, n]) => `${c} ${n}`).join(", ")})` : ""}, lost ${result.lost.length - formsLostInRestart.length}${formsLostInRestart.length ? ` (plus ${formsLostInRestart.length} forms dropped with the local queue in the restart)` : ""}`,
  `portal: ${SIMPLE ? "without leads (crm.settings.mode.get = 2): contacts and deals" : "classic (leads)"}`,
  `people with accepted events ${personsWithEvents.length}: ${what} ${leadsPerPerson.filter((c) => c === 1).length}, more than one ${duplicated}, none ${missingLead}${peopleOnlyInLostForms ? ` (and ${peopleOnlyInLostForms} people whose only events were the dropped forms)` : ""}`,
  `Bitrix24 telephony: ${registered.length} finished calls for ${writtenCalls} written calls, ${telephonyKeys.length - new Set(telephonyKeys).size} registered twice`,
  `time: posting ${((posted - started) / 1000).toFixed(1)} s, everything settled after ${((finished - started) / 1000).toFixed(1)} s`,
  ...(restartNote ? [`restart: ${restartNote}`] : []),
  ...(reconciled ? [`feed: ${reconciled}`] : []),
];
console.log(lines.join("\n"));

const everyEventAnswered = outcomes.size === EVENTS && [...outcomes.values()].every((o) => o.status === 202 || (o.status === 200 && o.reason));
const ok =
  everyEventAnswered && result.keys.length > 0 && result.lost.length === formsLostInRestart.length && duplicated === 0 && missingLead === 0 && telephonyKeys.length === new Set(telephonyKeys).size;
const title = `Soak${values.restart ? " with a restart" : ""}${SIMPLE ? " on a portal without leads" : ""}`;
const section = `## ${title}

\`npm run soak${values.restart ? " -- --restart" : ""}${SIMPLE ? " -- --simple" : ""}\` on ${new Date().toISOString().slice(0, 16).replace("T", " ")} UTC, ${machine()}: ${!ok ? "**FAILED**" : formsLostInRestart.length ? `every call accounted for, ${what} per person; ${formsLostInRestart.length} forms dropped with the local queue` : `every event accounted for, ${what} per person`}.

\`\`\`
${lines.join("\n")}
\`\`\`
`;
const path = "docs/performance.md";
let doc = "";
try {
  doc = readFileSync(path, "utf8");
} catch {
  doc = "# Performance\n";
}
const heading = `## ${title}\n`;
const at = doc.indexOf(heading);
if (at >= 0) {
  const next = doc.indexOf("\n## ", at + 3);
  doc = doc.slice(0, at) + (next >= 0 ? doc.slice(next + 1) : "");
}
writeFileSync(path, `${doc.trimEnd()}\n\n${section}`);
await stack.worker.stop();
await sandbox.close();
rmSync(stateDir, { recursive: true, force: true });
process.exit(ok ? 0 : 1);
