import type { CountryCode } from "libphonenumber-js/core";
import type { CrmStore } from "../bitrix/crm-store";
import { fetchChatMessages, fetchChats, fetchRequests, fetchVisitors, type ReadSession } from "../comagic/communications";
import type { CoMagicRpcClient } from "../comagic/data-api";
import { fetchInboundCalls } from "../comagic/reports";
import { classifySession, type CoMagicSession, type IgnoreReason } from "../domain/comagic-session";
import { parseComagicDateTime } from "../domain/comagic-time";
import { callKey, chatKey, requestKey } from "../domain/event-keys";
import { type FeedRules, feedWindow, nextCursor } from "../domain/feed-window";
import { contactKeys, type LeadEvent } from "../domain/lead-event";
import { errorMessage, type Logger } from "../log";
import { recordInLedger, type AppliedEvents } from "../storage/d1";
import type { FeedState, FeedStateStore } from "../storage/feed-state";
import { type PortalActivity, recordQuietly } from "../storage/portal-activity";
import { leadJob, type LeadJob } from "./schema";
import { sendInBatches } from "./send-in-batches";

/*
 * The CoMagic feed: every call, chat and request CoMagic recorded, read from its reports since a cursor kept in D1
 * (with an overlap for the reports' lag: domain/feed-window.ts), becomes the same lead job a notification would
 * make, keyed so that it is applied once however often it is seen (notification, feed, replay). A lost
 * notification is found within one feed interval. Three reads a run (calls, chats, requests), plus one for the
 * messages of the chats it accepts, whatever the number of rows.
 */

export interface FeedReport {
  from: string;
  to: string;
  calls: number;
  chats: number;
  requests: number;
  /** Calls, chats and requests that make a lead. */
  targeted: number;
  alreadyInBitrix: number;
  enqueued: number;
  /** Rows that make nothing, by reason (an open chat is read again once closed). */
  ignored: Partial<Record<IgnoreReason, number>>;
}

export interface FeedDeps {
  /** The portal whose CoMagic account this is: the lead jobs the feed queues name it. */
  portal: string;
  dataApi: CoMagicRpcClient;
  store: Pick<CrmStore, "findAppliedKeys">;
  ledger: AppliedEvents | null;
  leadJobs: Pick<Queue<LeadJob>, "sendBatch">;
  log: Logger;
  now: () => Date;
  rules: { defaultRegion: CountryCode; minLostCallSeconds: number; timeZone: string; includeTechRequests: boolean };
  /** Where the events a feed read queues are counted for the agency page (best effort); absent, they are not. */
  activity?: Pick<PortalActivity, "recordEvents"> | null;
}

type Read = ReadSession & { session: CoMagicSession };

/** The key a call, chat or request is applied under, whoever saw it (notification, feed, replay). */
function sessionKey(session: CoMagicSession): string {
  return session.kind === "call" ? callKey(session.id) : session.kind === "chat" ? chatKey(session.id) : requestKey(session.id);
}

/** Each row's event, dated by CoMagic's own time (start_time, date_time), or the reason it makes nothing. */
function classifyAll(rows: readonly Read[], deps: FeedDeps) {
  const receivedAt = deps.now();
  return rows.map(({ session, at }) => {
    const result = classifySession(session, { ...deps.rules, receivedAt });
    const occurredAt = at ? parseComagicDateTime(at, deps.rules.timeZone) : null;
    return { session, occurredAt, result };
  });
}

/**
 * Site chats whose row has no phone get the name and email CoMagic keeps for their visitor (typed into the chat's
 * form: unverified, verified-source.ts), all in one get.visitors read; with none, the chat would make nothing.
 */
async function withVisitorContacts(chats: readonly Read[], deps: FeedDeps): Promise<Read[]> {
  const ask = (s: CoMagicSession) => s.kind === "chat" && !s.phone && !s.email && s.visitorId !== null && s.chat?.status !== "new" && s.chat?.status !== "active";
  const visitorIds = chats.flatMap(({ session }) => (ask(session) && session.visitorId ? [session.visitorId] : []));
  if (visitorIds.length === 0) return [...chats];
  const people = await fetchVisitors(deps.dataApi, visitorIds);
  return chats.map((read) => {
    const { session } = read;
    const person = session.visitorId ? people.get(session.visitorId) : undefined;
    if (!person || !ask(session) || session.kind !== "chat") return read;
    return { ...read, session: { ...session, name: session.name ?? person.name, email: person.email } };
  });
}

/** Reads one span of CoMagic's reports and queues what never became a lead. Moves no cursor: `npm run reconcile` uses it too. */
export async function readFeed(window: { from: Date; to: Date }, deps: FeedDeps): Promise<FeedReport & { openSince: Date | null }> {
  const span = { ...window, timeZone: deps.rules.timeZone };
  const [calls, chats, requests] = await Promise.all([
    fetchInboundCalls(deps.dataApi, span).then((rows) => rows.map((session): Read => ({ session, at: session.startTime }))),
    fetchChats(deps.dataApi, span),
    fetchRequests(deps.dataApi, span, deps.rules.includeTechRequests),
  ]);
  const queued = await queueRows({ calls, chats, requests }, deps);
  await recordQuietly(deps.activity?.recordEvents(queued.enqueuedByKind, deps.now()), deps.log);
  const report: FeedReport = { from: window.from.toISOString(), to: window.to.toISOString(), calls: calls.length, chats: chats.length, requests: requests.length, ...queued.counts };
  deps.log.info("feed.read", { ...report, missingKeys: queued.missingKeys });
  return { ...report, openSince: queued.openSince };
}

/**
 * Rows read from CoMagic, however they were found (a feed read, a notification naming them), into lead jobs: site
 * chats get their visitor's name and email, accepted chats their messages (one read each), every row its class; what
 * the ledger or Bitrix24 has already is not queued again.
 */
export async function queueRows(rows: { calls?: readonly Read[]; chats?: readonly Read[]; requests?: readonly Read[] }, deps: FeedDeps) {
  const calls = rows.calls ?? [];
  const chats = rows.chats ?? [];
  const requests = rows.requests ?? [];
  // What the ledger or Bitrix24 has already needs no more reads: an overlap re-reads every closed chat of its span.
  const keys = [...calls, ...chats, ...requests].map(({ session }) => sessionKey(session));
  const known = new Set((await deps.ledger?.find(keys))?.keys() ?? []);
  const inBitrix = await deps.store.findAppliedKeys(keys.filter((k) => !known.has(k)));
  const isNew = (session: CoMagicSession) => !known.has(sessionKey(session)) && !inBitrix.has(sessionKey(session));

  const newChats = chats.filter(({ session }) => isNew(session));
  const named = await withVisitorContacts(newChats, deps);
  // A chat's messages are read only for the new chats that make a lead, all in one read, then classified again with them.
  const wanted = classifyAll(named, deps)
    .filter((c) => c.result.status === "accepted")
    .map((c) => c.session.id);
  const messages = await fetchChatMessages(deps.dataApi, wanted);
  const withMessages = named.map((read): Read => {
    const { session } = read;
    if (session.kind !== "chat" || !session.chat || !wanted.includes(session.id)) return read;
    return { ...read, session: { ...session, chat: { ...session.chat, messages: messages.get(session.id) ?? [] } } };
  });
  // Chats and requests applied before are counted, not classified again (their visitors and messages were not read).
  const applied = [...chats, ...requests].filter(({ session }) => !isNew(session)).length;
  const newRequests = requests.filter(({ session }) => isNew(session));

  const classified = [...classifyAll(calls, deps), ...classifyAll(withMessages, deps), ...classifyAll(newRequests, deps)];
  const ignored: FeedReport["ignored"] = {};
  let openSince: Date | null = null;
  const events: LeadEvent[] = [];
  for (const { result, occurredAt } of classified) {
    if (result.status === "accepted") {
      events.push({ ...result.event, fromReport: true, ...(occurredAt ? { occurredAt: occurredAt.toISOString() } : {}) });
      continue;
    }
    ignored[result.reason] = (ignored[result.reason] ?? 0) + 1;
    if (result.reason === "chat_open" && occurredAt && (!openSince || occurredAt < openSince)) openSince = occurredAt;
  }
  const missing = events.filter((e) => !known.has(e.key) && !inBitrix.has(e.key));
  // Written to Bitrix24 by a consumer stopped before its ledger write: record them as the consumer would have. Only a
  // call's number is surely on what it landed on (a chat's or request's typed contacts may not be: verified-source.ts).
  const byKey = new Map(events.map((e) => [e.key, e]));
  await recordInLedger(
    deps.ledger,
    [...inBitrix].map(([key, ref]) => {
      const event = byKey.get(key);
      return { key, ref, contactKeys: event?.kind === "call" ? contactKeys(event) : [] };
    }),
    deps.now(),
    deps.log,
  );
  const requestId = `feed-${deps.now().toISOString()}`;
  await sendInBatches(
    deps.leadJobs,
    missing.map((event) => ({ body: leadJob(deps.portal, event, requestId), contentType: "json" as const })),
  );
  return {
    counts: { targeted: events.length + applied, alreadyInBitrix: events.length - missing.length + applied, enqueued: missing.length, ignored },
    openSince,
    missingKeys: missing.slice(0, 20).map((e) => e.key),
    enqueuedByKind: countKinds(missing),
  };
}

/** How many events of each kind: what the agency page counts for a feed read. */
function countKinds(events: readonly LeadEvent[]): Partial<Record<LeadEvent["kind"], number>> {
  const counts: Partial<Record<LeadEvent["kind"], number>> = {};
  for (const e of events) counts[e.kind] = (counts[e.kind] ?? 0) + 1;
  return counts;
}

/**
 * The cron's feed: reads when an interval has passed since the last read, from the cursor less the overlap, and
 * moves the cursor only after every report was read and every job queued. A failure keeps the cursor, so the next
 * run reads the same span again, and leaves its words for /health.
 */
export async function runFeed(deps: FeedDeps & { state: FeedStateStore; feed: FeedRules }): Promise<FeedReport | null> {
  const state = await deps.state.get();
  const now = deps.now();
  const window = feedWindow(state, now, deps.feed);
  if (!window) return null;
  const ran: FeedState = { ...state, lastRunAt: now.toISOString() };
  try {
    const { openSince, ...report } = await readFeed(window, deps);
    await deps.state.put({
      ...ran,
      cursor: nextCursor(window.to, openSince).toISOString(),
      lastSuccessAt: now.toISOString(),
      lastReport: { ...report },
      lastError: null,
      lastCallsSeenAt: report.calls > 0 ? now.toISOString() : state.lastCallsSeenAt,
    });
    return report;
  } catch (error) {
    deps.log.warn("feed.failed", { error: errorMessage(error), from: window.from.toISOString() });
    await deps.state.put({ ...ran, lastError: errorMessage(error) });
    throw error;
  }
}
