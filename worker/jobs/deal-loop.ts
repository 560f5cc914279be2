/**
 * The deal loop (issue #25 §1): deals that came from CoMagic, sent into its end-to-end analytics. The report's deal
 * sync marks a credited deal waiting when Bitrix24 says it changed (storage/deal-journal.ts); each portal tick then
 * runs this, which holds the waiting deals until a batch is full or the oldest has waited long enough for the change to
 * reach CoMagic within one feed interval, then: re-reads the deals and their stage history from Bitrix24 (an event
 * is never trusted: FACTS-loop §1.7), makes sure their CoMagic funnel exists, finds each new deal's communication
 * (the event that made its lead, in the ledger, then CoMagic's id for it), plans what is new against the journal
 * (domain/deal-history.ts), uploads (comagic/deals-upload.ts), and records the outcome: a deal CoMagic refuses for its
 * data becomes a dead letter with CoMagic's reason (its replay sends it again), the others go on.
 */
import { fullName, userRows } from "../bitrix/users";
import * as z from "zod";
import { batchBuilder } from "../bitrix/batch-builder";
import type { BitrixClient } from "../bitrix/client";
import { readCurrencyRates } from "../bitrix/currencies";
import { loadPipelines } from "../bitrix/pipelines";
import { readStageHistories } from "../bitrix/stage-history";
import type { CoMagicRpcClient } from "../comagic/data-api";
import { DEAL_BATCH_SIZE, ensureEmployees, ensureSalesFunnel, uploadDeals, type DealUpload } from "../comagic/deals-upload";
import { fetchCommunicationsOf, type CommunicationOf } from "../comagic/communications";
import { parseComagicDateTime } from "../domain/comagic-time";
import { ledgerRef } from "../domain/crm-entity";
import { type BitrixDeal, type CurrencyRates, type DealCommunication, type DealSyncPlan, FunnelShapeError, planDealSync, type SalesFunnel, salesFunnelFromPipeline } from "../domain/deal-history";
import { eventOfKey } from "../domain/event-keys";
import { sendDue } from "../domain/send-window";
import { journeyWindow } from "../domain/report-window";
import { errorMessage, type Logger } from "../log";
import type { AppliedEvents, DeadLetterStore } from "../storage/d1";
import type { DealJournalStore, DealOutcome, JournalEntry } from "../storage/deal-journal";
import type { FormUploadStore } from "../storage/form-uploads";
import type { CrmCommunicationStore } from "../storage/crm-communications";
import { dealUploadJob, dealUploadJobSchema } from "./schema";
import { readJobs } from "./settle";

/** Deals one tick sends at most (a few uploads, two Bitrix24 batches of reads). */
const MAX_DEALS = 250;
const SYNC_STATE_FUNNELS = "deals.funnels";

export interface DealLoopDeps {
  portal: string;
  bitrix: BitrixClient;
  dataApi: CoMagicRpcClient;
  journal: DealJournalStore;
  ledger: AppliedEvents;
  /** The forms sent to CoMagic (COMAGIC_FORMS), whose deals link to them. */
  forms?: FormUploadStore | null;
  /** The communications the call records kept, by lead. */
  communications?: CrmCommunicationStore | null;
  deadLetters: DeadLetterStore | null;
  /** The funnels CoMagic was told of (a signature per ext_id), so an unchanged pipeline costs no point. */
  state: { get(name: string): Promise<string | null>; set(name: string, value: string): Promise<void> };
  accountCurrency: string;
  timeZone: string;
  /** FEED_INTERVAL_MINUTES: a change reaches CoMagic within one. */
  intervalMinutes: number;
  now: () => Date;
  log: Logger;
}

export interface DealLoopResult {
  status: "idle" | "held" | "sent" | "not_connected";
  waiting: number;
  sent: number;
  rejected: number;
  pending: number;
  unchanged: number;
  gone: number;
  /** Data API calls this run made: uploads, funnel and communication reads (each a point, FACTS-loop §1.5). */
  comagicCalls: number;
}

const DEAL_FIELDS = ["ID", "TITLE", "CATEGORY_ID", "STAGE_ID", "DATE_CREATE", "OPPORTUNITY", "CURRENCY_ID", "ASSIGNED_BY_ID"];
const idText = z.union([z.string(), z.number()]).transform(String);
const dealRow = z
  .object({
    ID: idText,
    TITLE: z
      .string()
      .nullish()
      .transform((t) => t ?? ""),
    CATEGORY_ID: idText.nullish().transform((c) => c ?? "0"),
    STAGE_ID: z.string(),
    DATE_CREATE: z.string(),
    OPPORTUNITY: z.union([z.string(), z.number()]).nullish(),
    CURRENCY_ID: z.string().nullish(),
    ASSIGNED_BY_ID: idText.nullish(),
  })
  .loose();

/** The deals as Bitrix24 has them now: one `batch` of crm.deal.list pages by id; a deleted deal is missing. */
async function readDeals(bitrix: BitrixClient, ids: readonly string[]): Promise<Map<string, BitrixDeal>> {
  const batch = batchBuilder();
  const handles = [];
  for (let i = 0; i < ids.length; i += 50) {
    handles.push(batch.add("deals", { method: "crm.deal.list", params: { filter: { "@ID": ids.slice(i, i + 50) }, select: DEAL_FIELDS } }, z.array(dealRow)));
  }
  const answers = await batch.send(bitrix, { readOnly: true });
  const deals = new Map<string, BitrixDeal>();
  for (const handle of handles) {
    for (const row of answers.required(handle)) {
      deals.set(row.ID, { ...row, OPPORTUNITY: row.OPPORTUNITY ?? null, CURRENCY_ID: row.CURRENCY_ID ?? null, ASSIGNED_BY_ID: row.ASSIGNED_BY_ID ?? null });
    }
  }
  return deals;
}

/** The CoMagic funnels of the portal's pipelines, made or completed in CoMagic when a pipeline is new or changed. */
async function funnelsFor(deps: DealLoopDeps, categories: ReadonlySet<string>): Promise<{ funnels: Map<string, SalesFunnel>; calls: number; notConnected: boolean }> {
  const told = await deps.state.get(SYNC_STATE_FUNNELS).then((raw) => {
    try {
      return z.record(z.string(), z.string()).parse(JSON.parse(raw ?? "{}"));
    } catch {
      return {} as Record<string, string>;
    }
  });
  const funnels = new Map<string, SalesFunnel>();
  let calls = 0;
  for (const pipeline of await loadPipelines(deps.bitrix)) {
    if (!categories.has(pipeline.categoryId)) continue;
    let funnel: SalesFunnel;
    try {
      funnel = salesFunnelFromPipeline({ ...pipeline, name: pipeline.name || "Bitrix24" });
    } catch (error) {
      if (!(error instanceof FunnelShapeError)) throw error;
      deps.log.warn("deals.funnel_unfit", { category: pipeline.categoryId, reason: error.message });
      continue;
    }
    const signature = JSON.stringify(funnel.stages);
    if (told[funnel.ext_id] !== signature) {
      calls += 1;
      const outcome = await ensureSalesFunnel(deps.dataApi, funnel);
      if (outcome.status === "not_connected") return { funnels, calls, notConnected: true };
      calls += outcome.status === "updated" ? 1 + outcome.addedStages.length : 0;
      told[funnel.ext_id] = signature;
      await deps.state.set(SYNC_STATE_FUNNELS, JSON.stringify(told));
    }
    funnels.set(pipeline.categoryId, funnel);
  }
  return { funnels, calls, notConnected: false };
}

const SYNC_STATE_EMPLOYEES = "deals.employees";

/**
 * The deals' responsible users as CoMagic employees (§1.3): those not made yet are read from Bitrix24 (their names,
 * one `batch`) and made in CoMagic, once each; what CoMagic has is kept in `sync_state`.
 */
async function employeesFor(deps: DealLoopDeps, userIds: readonly string[]): Promise<{ known: Set<string>; calls: number }> {
  const known = new Set(
    await deps.state.get(SYNC_STATE_EMPLOYEES).then((raw) => {
      try {
        return z.array(z.string()).parse(JSON.parse(raw ?? "[]"));
      } catch {
        return [];
      }
    }),
  );
  const fresh = [...new Set(userIds)].filter((id) => !known.has(id));
  if (fresh.length === 0) return { known, calls: 0 };
  const batch = batchBuilder();
  const handles = fresh.slice(0, 50).map((id) => [id, batch.add("user", { method: "user.get", params: { ID: id } }, userRows)] as const);
  const answers = await batch.send(deps.bitrix, { readOnly: true });
  const named = handles.map(([id, handle]) => {
    const user = answers.failure(handle) ? undefined : answers.required(handle)[0];
    return { extId: id, name: fullName(user) ?? `Bitrix24 user ${id}` };
  });
  const { made, refused } = await ensureEmployees(deps.dataApi, named);
  for (const r of refused) deps.log.warn("deals.employee_refused", { userId: r.extId, mnemonic: r.mnemonic });
  for (const id of made) known.add(id);
  await deps.state.set(SYNC_STATE_EMPLOYEES, JSON.stringify([...known]));
  return { known, calls: named.length };
}

/** The communication each new deal came from: its lead's (or its own) first event in the ledger, then CoMagic's id. */
async function communicationsOf(deps: DealLoopDeps, entries: readonly JournalEntry[]): Promise<{ found: Map<string, DealCommunication>; calls: number }> {
  const found = new Map<string, DealCommunication>();
  const refOf = (e: JournalEntry) => ledgerRef({ type: e.sourceEntity, id: e.sourceId });
  // What the call record kept (jobs/call-record.ts) costs no read; only the rest is looked for in CoMagic.
  const unlinked = entries.filter((e) => e.communication === null);
  const kept = unlinked.length && deps.communications ? await deps.communications.find(unlinked.map(refOf)) : new Map<string, DealCommunication>();
  for (const entry of unlinked) {
    const communication = kept.get(refOf(entry));
    if (communication) found.set(entry.dealId, communication);
  }
  const wanted = unlinked.filter((e) => !found.has(e.dealId));
  if (wanted.length === 0) return { found, calls: 0 };
  const first = await deps.ledger.firstEvents(wanted.map(refOf));
  const events = new Map<string, { kind: "call" | "chat" | "request"; id: string }>();
  const formKeys = [...first.values()].map((f) => f.key).filter((key) => eventOfKey(key)?.kind === "form");
  // A form of ours is in CoMagic as the offline message we sent (COMAGIC_FORMS): linked by that request's id.
  const sentForms = formKeys.length && deps.forms ? await deps.forms.comagicIds(formKeys) : new Map<string, number>();
  for (const entry of wanted) {
    const key = first.get(refOf(entry))?.key;
    const event = key ? eventOfKey(key) : null;
    if (event && event.kind !== "form") events.set(entry.dealId, event);
    const sent = key ? sentForms.get(key) : undefined;
    if (sent !== undefined) events.set(entry.dealId, { kind: "request", id: String(sent) });
  }
  if (events.size === 0) return { found, calls: 0 };
  const kinds = new Set([...events.values()].map((e) => e.kind)).size;
  const read: Map<string, CommunicationOf> = await fetchCommunicationsOf(deps.dataApi, [...events.values()], journeyWindow(deps.now(), deps.timeZone));
  for (const [dealId, event] of events) {
    const communication = read.get(`${event.kind}:${event.id}`);
    const at = communication?.at ? parseComagicDateTime(communication.at, deps.timeZone)?.getTime() : undefined;
    if (communication && at !== undefined) found.set(dealId, { id: communication.id, type: communication.type, at });
  }
  return { found, calls: kinds };
}

export async function sendDealChanges(deps: DealLoopDeps): Promise<DealLoopResult> {
  const result: DealLoopResult = { status: "idle", waiting: 0, sent: 0, rejected: 0, pending: 0, unchanged: 0, gone: 0, comagicCalls: 0 };
  const waiting = await deps.journal.waiting(MAX_DEALS);
  result.waiting = waiting.length;
  if (waiting.length === 0) return result;
  if (!sendDue(waiting[0]?.changedAt, waiting.length, DEAL_BATCH_SIZE, deps.now(), deps.intervalMinutes)) {
    deps.log.info("deals.held", { waiting: waiting.length, since: waiting[0]?.changedAt });
    return { ...result, status: "held" };
  }

  const ids = waiting.map((w) => w.dealId);
  const [deals, histories, currencies] = await Promise.all([
    readDeals(deps.bitrix, ids),
    readStageHistories(deps.bitrix, ids),
    // crm.currency.list wants access to CRM settings (FACTS-portals §11): without it, only same-currency revenue goes.
    readCurrencyRates(deps.bitrix).catch((error: unknown) => {
      deps.log.warn("deals.currencies_unread", { error: errorMessage(error) });
      return { base: deps.accountCurrency, rates: {} as CurrencyRates };
    }),
  ]);
  const outcomes: DealOutcome[] = [];
  const present = waiting.filter((w) => {
    if (deals.has(w.dealId)) return true;
    outcomes.push({ dealId: w.dealId, changedAt: w.changedAt, state: "gone" });
    result.gone += 1;
    return false;
  });

  const funnels = await funnelsFor(deps, new Set(present.map((w) => deals.get(w.dealId)?.CATEGORY_ID ?? "0")));
  result.comagicCalls += funnels.calls;
  if (funnels.notConnected) {
    // Every deal waits: the CoMagic admin has to connect "Другая CRM" first (FACTS-loop §1.1), the settings page says so.
    deps.log.warn("deals.not_connected", { waiting: waiting.length });
    await deps.journal.record(outcomes, deps.now());
    return { ...result, status: "not_connected", pending: present.length };
  }
  const links = await communicationsOf(deps, present);
  result.comagicCalls += links.calls;

  const plans = new Map<string, { entry: JournalEntry; plan: DealSyncPlan; communication: DealCommunication | null }>();
  const now = deps.now();
  for (const entry of present) {
    const deal = deals.get(entry.dealId) as BitrixDeal;
    const funnel = funnels.funnels.get(deal.CATEGORY_ID);
    if (!funnel) {
      outcomes.push({ dealId: entry.dealId, changedAt: entry.changedAt, state: "rejected", reason: `pipeline ${deal.CATEGORY_ID} has no CoMagic funnel` });
      continue;
    }
    const communication = entry.communication ?? links.found.get(entry.dealId) ?? null;
    const plan = planDealSync({
      deal,
      history: histories.get(entry.dealId) ?? [],
      journal: entry.journal,
      funnel,
      communication,
      accountCurrency: deps.accountCurrency,
      rates: currencies.base === deps.accountCurrency || currencies.rates[deps.accountCurrency] ? currencies.rates : {},
      timeZone: deps.timeZone,
      now: now.getTime(),
    });
    if (plan.flags.includes("currency_not_convertible")) {
      deps.log.warn("deals.revenue_not_converted", { dealId: entry.dealId, currency: deal.CURRENCY_ID, accountCurrency: deps.accountCurrency });
    }
    if (plan.records.length === 0) {
      outcomes.push({ dealId: entry.dealId, changedAt: entry.changedAt, state: "sent", communication, flags: plan.flags });
      result.unchanged += 1;
      continue;
    }
    plans.set(entry.dealId, { entry, plan, communication });
  }

  const employees = await employeesFor(
    deps,
    [...plans.values()].flatMap(({ plan }) => plan.records.flatMap((r) => (r.employee_ext_id ? [r.employee_ext_id] : []))),
  );
  result.comagicCalls += employees.calls;
  const uploads: DealUpload[] = [...plans.entries()].map(([dealId, { plan }]) => ({
    dealId,
    // An employee CoMagic would not make goes unnamed rather than failing the deal (§1.4: employee_ext_id is optional).
    records: plan.records.map(({ employee_ext_id, ...record }) => (employee_ext_id && employees.known.has(employee_ext_id) ? { ...record, employee_ext_id } : record)),
  }));
  const upload = await uploadDeals(deps.dataApi, uploads);
  result.comagicCalls += upload.requests;
  for (const dealId of upload.sent) {
    const { entry, plan, communication } = plans.get(dealId) as { entry: JournalEntry; plan: DealSyncPlan; communication: DealCommunication | null };
    outcomes.push({ dealId, changedAt: entry.changedAt, state: "sent", journal: plan.journal, communication, flags: plan.flags });
  }
  const failedAt = now.toISOString();
  for (const refused of upload.rejected) {
    const entry = plans.get(refused.dealId)?.entry as JournalEntry;
    outcomes.push({ dealId: refused.dealId, changedAt: entry.changedAt, state: "rejected", reason: `${refused.mnemonic}: ${refused.reason}` });
  }
  if (upload.rejected.length && deps.deadLetters) {
    await deps.deadLetters.record(
      upload.rejected.map((refused) => ({
        id: `deal-${deps.portal}-${refused.dealId}-${now.getTime()}`,
        queue: "deal-loop",
        jobType: "deal.upload",
        portal: deps.portal,
        letter: { queue: "deal-loop", job: dealUploadJob(deps.portal, refused.dealId), reason: refused.reason, code: refused.mnemonic, attempts: 1, failedAt },
      })),
    );
  }
  if (upload.error) deps.log.warn("deals.upload_stopped", { error: errorMessage(upload.error), pending: upload.pending.length });
  await deps.journal.record(outcomes, now);
  result.sent = upload.sent.length;
  result.rejected = outcomes.filter((o) => o.state === "rejected").length;
  result.pending = upload.pending.length;
  result.status = "sent";
  deps.log.info("deals.sent", { ...result });
  return result;
}

/**
 * Replayed dead letters of the loop: each deal waits again, and the next tick re-reads and sends it. A deal the
 * journal no longer has (pruned, the portal removed) has nothing to send: acked, said in the log.
 */
export async function handleDealUploads(messages: readonly Message<unknown>[], journal: DealJournalStore | null, log: Logger): Promise<void> {
  for (const { message, job } of readJobs(messages, dealUploadJobSchema, log)) {
    try {
      const known = journal ? await journal.markWaiting(job.dealId, new Date()) : false;
      if (!known) log.warn("deals.replay_unknown", { dealId: job.dealId });
      message.ack();
    } catch (error) {
      log.warn("deals.replay_failed", { dealId: job.dealId, error: errorMessage(error) });
      message.retry();
    }
  }
}
