import { crmTexts } from "../i18n/crm-texts";
import { BitrixError } from "../bitrix/errors";
import type { CrmStore, WriteOutcome } from "../bitrix/crm-store";
import { contactKeys, identityKeys, type LeadEvent } from "../domain/lead-event";
import { isVerifiedSource } from "../domain/verified-source";
import { callBackTodo } from "../domain/call-back";
import { ledgerRef, parseLedgerRef, type CrmEntityRef, type CrmMode } from "../domain/crm-entity";
import { LEAD_FIELD, type PlanRules } from "../domain/lead-plan";
import { planWrite, type WritePlan, type WriteRules } from "../domain/write-plan";
import { responsibleUserId } from "../domain/responsible";
import { maskPhone } from "../domain/phone";
import { planBatch, planRound, type WaitReason } from "../domain/batch-plan";
import { errorMessage } from "../log";
import type { CrmVisitorStore } from "../storage/crm-visitors";
import { findInLedger, recordInLedger, type AppliedEvents } from "../storage/d1";
import { callRecordJob, callTelephonyJob, enrichJob, leadJobSchema, type CallTelephonyJob, type FollowUpJob, type FollowUpSender, type LeadJob } from "./schema";
import { asFailure, readJobs, retryOrDeadLetter, type SettleDeps } from "./settle";

export { MAX_DELIVERY_ATTEMPTS } from "../domain/retry-policy";

export interface ConsumerDeps extends SettleDeps {
  store: CrmStore;
  /** The portal's CRM mode (classic with leads, or simple without), read once a batch. */
  crmMode: () => Promise<CrmMode>;
  /** The ledger of applied events; without it, Bitrix24's own fields are the only record. */
  ledger: AppliedEvents | null;
  /** Which visitor id the worker wrote to which lead or deal (the tab shows only that one's journey). */
  visitors?: CrmVisitorStore | null;
  /** Queues telephony, call-record and enrichment jobs on the enrichment queue; null without that queue. */
  followUps: FollowUpSender | null;
  /**
   * Anyone can post forms, each naming a visitor id; enriching them spends CoMagic's API points. This
   * limit (FORM_ENRICH_LIMITER, per minute) says whether one more form may be enriched; null: no limit.
   */
  formEnrichLimit: Pick<RateLimit, "limit"> | null;
  /** Bitrix24 users of CoMagic employees COMAGIC_EMPLOYEES does not list, by email; null when that is off. */
  employeeUsers?: ((employeeIds: string[]) => Promise<Map<string, string>>) | null;
  queue: string;
  rules: Omit<PlanRules, "now">;
}

type Job = { message: Message<unknown>; job: LeadJob };

const WAIT_REASONS: Record<WaitReason, string> = {
  earlier_event_failed: "an earlier event about the same person failed",
  create_in_doubt: "an earlier event about the same person has a lead write in doubt",
};

async function retryOrGiveUp(item: Job, error: unknown, deps: ConsumerDeps): Promise<void> {
  const settled = await retryOrDeadLetter(item.message, deps.queue, asFailure(error), { key: item.job.event.key }, deps);
  // A dead-lettered event will not come back to settle its create in doubt: release its contacts now.
  if (settled === "dead-lettered") await bestEffort(deps, () => deps.ledger?.clearPending([item.job.event.key]));
}

/**
 * Work that helps but decides nothing (D1 helps Bitrix24, which stays the truth; an email match only picks
 * who gets a lead): a failure is logged under `event` and the work goes on.
 */
async function bestEffort(deps: ConsumerDeps, work: () => Promise<unknown> | undefined, event = "ledger.unavailable"): Promise<void> {
  try {
    await work();
  } catch (error) {
    deps.log.warn(event, { error: errorMessage(error) });
  }
}

/**
 * How long a create in doubt holds back other events about the same contact. Past it, Bitrix24's duplicate
 * search has long indexed whatever the create did, so findbycomm alone is safe again.
 */
const CREATE_IN_DOUBT_MS = 3_600_000;

/** Events whose contact is held by another event's create in doubt (FACTS.md §7: findbycomm may lag). */
async function heldByCreateInDoubt(events: readonly LeadEvent[], deps: ConsumerDeps): Promise<Set<string>> {
  let pending = new Map<string, string>();
  await bestEffort(deps, async () => {
    pending = (await deps.ledger?.findPending(events.flatMap(contactKeys), new Date(deps.now().getTime() - CREATE_IN_DOUBT_MS))) ?? pending;
  });
  return new Set(events.filter((e) => contactKeys(e).some((k) => pending.has(k) && pending.get(k) !== e.key)).map((e) => e.key));
}

function settle(item: Job, outcome: WriteOutcome | undefined, deps: ConsumerDeps): Promise<void> | void {
  if (!outcome) return retryOrGiveUp(item, new BitrixError("UNEXPECTED", "no outcome for job", true, "unknown"), deps);
  if (!outcome.ok) return retryOrGiveUp(item, outcome.error, deps);
  const { event } = item.job;
  const entity = outcome.target.type;
  const eventName = { created: `${entity}.created`, updated: `${entity}.updated`, skipped: `${entity}.already_applied` }[outcome.action];
  deps.log.info(eventName, {
    key: event.key,
    kind: event.kind,
    [`${entity}Id`]: outcome.target.id,
    phone: event.phone ? maskPhone(event.phone) : null,
    requestId: item.job.requestId,
    attempts: item.message.attempts,
  });
  item.message.ack();
}

/** Where Bitrix24 telephony binds a call: the lead itself, or the deal's contact (register takes LEAD, CONTACT or COMPANY). */
function telephonyEntity(outcome: Written): CallTelephonyJob["crmEntity"] | null {
  const bound = outcome.target.type === "lead" ? outcome.target : outcome.client;
  if (!bound || bound.type === "deal") return null;
  return { type: bound.type === "lead" ? "LEAD" : bound.type === "contact" ? "CONTACT" : "COMPANY", id: bound.id };
}

/** `rules` are the round's: with COMAGIC_MATCH_BY_EMAIL they know the employees found by email, as the lead's responsible did. */
function telephonyJob(job: LeadJob, outcome: Written, rules: PlanRules): CallTelephonyJob | null {
  const { event } = job;
  const crmEntity = telephonyEntity(outcome);
  if (event.kind !== "call" || !event.phone || !crmEntity) return null;
  const userId = rules.responsible ? responsibleUserId(event, rules.responsible) : null;
  const talkSeconds = event.call?.talkSeconds ?? 0;
  return callTelephonyJob({
    portal: job.portal,
    requestId: job.requestId,
    key: event.key,
    crmEntity,
    userId,
    phone: event.phone,
    // CoMagic's start of the call when the event has it; a notification comes when the call ends.
    startedAt: event.occurredAt ?? new Date(Date.parse(event.receivedAt) - 1000 * (event.call?.totalSeconds ?? 0)).toISOString(),
    talkSeconds,
    lost: event.call?.lost ?? false,
    recordingUrl: event.recordingUrl,
  });
}

/**
 * What follows a written call, chat or form: a call is shown in Bitrix24 telephony; a visitor the event names
 * is enriched; a call's record is read from CoMagic, since it carries the UTMs, visitor and recording a minimal
 * template lacks. The last two need the Data API.
 */
async function followUpJobs(job: LeadJob, outcome: Written, plan: WritePlan | undefined, deps: ConsumerDeps, rules: PlanRules): Promise<FollowUpJob[]> {
  const { event } = job;
  const jobs: FollowUpJob[] = [];
  const entity = outcome.target.type === "deal" ? "deal" : "lead";
  const telephony = telephonyJob(job, outcome, rules);
  if (telephony) jobs.push(telephony);
  if (!deps.followUps?.enrichment) return jobs;
  const id = outcome.target.id;
  const newContact = outcome.action === "created" && outcome.contactCreated === true;
  if (event.visitorId && mayCredit(event, plan) && (await mayEnrich(event, deps)))
    jobs.push(
      enrichJob({
        portal: job.portal,
        requestId: job.requestId,
        entityId: id,
        entity,
        visitorId: event.visitorId,
        newContact,
        ...(outcome.action === "created" && event.occurredAt ? { convertedAt: event.occurredAt } : {}),
      }),
    );
  // A call the feed read from the calls report carries its record already (UTMs, visitor, recording, who answered).
  if (event.kind === "call" && !event.fromReport) {
    const employeeKnown = Boolean(event.employeeId && rules.responsible?.userOfEmployee[event.employeeId]);
    jobs.push(
      callRecordJob({
        portal: job.portal,
        requestId: job.requestId,
        entityId: id,
        entity,
        sessionId: event.sessionId,
        calledAt: event.occurredAt ?? event.receivedAt,
        visitorId: event.visitorId,
        recordingUrl: event.recordingUrl,
        created: outcome.action === "created",
        newContact,
        employeeKnown,
        telephony,
      }),
    );
  }
  return jobs;
}

/**
 * Whether the event's visitor may be enriched onto what it landed on: a form's, a site chat's or a request's only
 * onto a lead or deal it made or speaks for through a vouched-for contact (verified-source.ts, the plan's
 * `credit`), or it would move a client's attribution (and revenue) to any visitor.
 */
function mayCredit(event: LeadEvent, plan: WritePlan | undefined): boolean {
  return plan ? plan.credit : isVerifiedSource(event);
}

/** The visitor id each plan writes into the lead or deal, to be recorded as the worker's (storage/crm-visitors.ts). */
function visitorsWritten(applied: readonly { plan: WritePlan | undefined; outcome: Written }[]): { ref: CrmEntityRef; visitorId: string }[] {
  return applied.flatMap(({ plan, outcome }) => {
    const fields = plan && plan.action !== "skip" ? plan.fields : {};
    const visitorId = fields[LEAD_FIELD.visitorId];
    return typeof visitorId === "string" && outcome.target.type !== "contact" && outcome.target.type !== "company" ? [{ ref: outcome.target, visitorId }] : [];
  });
}

async function mayEnrich(event: LeadEvent, deps: ConsumerDeps): Promise<boolean> {
  if (event.kind !== "form" || !deps.formEnrichLimit) return true;
  if ((await deps.formEnrichLimit.limit({ key: "form-enrichment" })).success) return true;
  deps.log.warn("enrich.skipped", { reason: "form_enrichment_limit", key: event.key });
  return false;
}

type Written = Extract<WriteOutcome, { ok: true }>;

/**
 * One call-back to-do for each lost call a round wrote (ledger key `todo:<event>`), for the round's responsible
 * (`rules`: the employees found by email included). A to-do add that fails is logged, not retried: the lead and
 * its comment are there, and a second to-do is worse than none.
 */
async function addCallBackTodos(written: { item: Job; outcome: Written }[], deps: ConsumerDeps, rules: PlanRules): Promise<void> {
  const wanted = written.flatMap(({ item, outcome }) => {
    const { event } = item.job;
    const responsibleId = rules.responsible ? responsibleUserId(event, rules.responsible) : null;
    const todo = callBackTodo(event, outcome.target, { minutes: deps.rules.callBackMinutes ?? 60, responsibleId, texts: crmTexts(deps.rules.language) });
    return todo ? [{ key: `todo:${event.key}`, ref: ledgerRef(outcome.target), todo }] : [];
  });
  if (wanted.length === 0) return;
  const done = await findInLedger(
    deps.ledger,
    wanted.map((w) => w.key),
    deps.log,
  );
  const todos = wanted.filter((w) => !done.has(w.key));
  try {
    const added = await deps.store.addTodos(todos);
    await recordInLedger(
      deps.ledger,
      todos.filter((t) => added.has(t.key)).map((t) => ({ key: t.key, ref: t.ref })),
      deps.now(),
      deps.log,
    );
    for (const t of todos.filter((t) => !added.has(t.key))) deps.log.warn("todo.failed", { key: t.key, target: t.ref });
  } catch (error) {
    deps.log.warn("todo.failed", { error: errorMessage(error), count: todos.length });
  }
}

/**
 * What the ledger ties a person's phone and email to: the lead, or on a deal the client (contact) it belongs to,
 * since the next event about that person must find the client while findbycomm may not yet.
 */
function contactRecordRef(outcome: Written): CrmEntityRef | null {
  if (outcome.target.type !== "deal") return outcome.target;
  // A deal whose client is unknown ties the contacts to nothing: lookups find clients, not deals.
  return outcome.client;
}

/**
 * Records applied events in the ledger, with the contact keys each plan says the lead or client now holds (never
 * a key a form merely mentioned), and the visitor ids written; then queues their follow-up work.
 */
async function afterWrites(round: Job[], outcomes: Map<string, WriteOutcome>, plans: ReadonlyMap<string, WritePlan>, deps: ConsumerDeps, rules: PlanRules): Promise<void> {
  const applied = round.flatMap((item) => {
    const outcome = outcomes.get(item.job.event.key);
    return outcome?.ok ? [{ item, outcome, plan: plans.get(item.job.event.key) }] : [];
  });
  await recordInLedger(
    deps.ledger,
    applied.map(({ item, outcome, plan }) => {
      const tiedTo = contactRecordRef(outcome);
      const contacts = plan?.ties ?? [];
      return { key: item.job.event.key, ref: ledgerRef(outcome.target), ...(tiedTo && contacts.length ? { contactKeysRef: ledgerRef(tiedTo), contactKeys: contacts } : {}) };
    }),
    deps.now(),
    deps.log,
  );
  await bestEffort(deps, () => deps.visitors?.record(visitorsWritten(applied), deps.now()));
  // A "skipped" event here was found in Bitrix24 but not in the ledger: an earlier try wrote it and lost the
  // answer, so its follow-ups (idempotent each) were never sent. They go now.
  const written = applied;
  await addCallBackTodos(written, deps, rules);
  const jobs: FollowUpJob[] = [];
  for (const { item, outcome, plan } of written) jobs.push(...(await followUpJobs(item.job, outcome, plan, deps, rules)));
  if (deps.followUps && jobs.length) {
    await deps.followUps.send(jobs).catch((error: unknown) => {
      // Neither queued nor kept in D1: the leads are written, their telephony calls and enrichment are not.
      deps.log.error("followup.lost", { error: errorMessage(error), jobs: jobs.length, events: written.map(({ item }) => item.job.event.key) });
    });
  }
}

/**
 * Leads (or clients) our own ledger says each event's phone or email was written to. Bitrix24's duplicate
 * search may not know a lead or contact for seconds after creating it (FACTS.md §7), so without these two
 * contacts close together would make two. A ledger that cannot be read leaves findbycomm alone.
 */
async function entitiesKnownByContact(events: readonly LeadEvent[], deps: ConsumerDeps): Promise<Map<string, CrmEntityRef[]>> {
  let known = new Map<string, string>();
  await bestEffort(deps, async () => {
    known = (await deps.ledger?.findContactKeys(events.flatMap(contactKeys))) ?? known;
  });
  return new Map(events.map((e) => [e.key, contactKeys(e).flatMap((k) => parseLedgerRef(known.get(k) ?? "") ?? [])]));
}

/** The plan rules for a round: COMAGIC_EMPLOYEES, plus the employees found by email for this round's calls. */
async function roundRules(events: readonly LeadEvent[], deps: ConsumerDeps, mode: CrmMode): Promise<WriteRules> {
  const rules: WriteRules = { now: deps.now(), ...deps.rules, mode };
  const responsible = deps.rules.responsible;
  const unmapped = events.flatMap((e) => (e.employeeId && responsible && !(e.employeeId in responsible.userOfEmployee) ? [e.employeeId] : []));
  if (!responsible || !deps.employeeUsers || unmapped.length === 0) return rules;
  const lookUp = deps.employeeUsers;
  let byEmail = new Map<string, string>();
  await bestEffort(
    deps,
    async () => {
      byEmail = await lookUp(unmapped);
    },
    "responsible.lookup_failed",
  );
  return { ...rules, responsible: { ...responsible, userOfEmployee: { ...Object.fromEntries(byEmail), ...responsible.userOfEmployee } } };
}

/**
 * Writes a queue batch into Bitrix24: events about different people are looked up and written together,
 * events about the same person or session one after another. Never throws: every message is acked,
 * retried with backoff, or dead-lettered with its reason.
 */
export async function handleLeadBatch(batch: Pick<MessageBatch<unknown>, "messages">, deps: ConsumerDeps): Promise<void> {
  const jobs: Job[] = readJobs(batch.messages, leadJobSchema, deps.log);

  // Events the ledger knows were applied need no Bitrix24 lookup at all.
  const eventOf = (item: Job) => item.job.event;
  const ledgered = await findInLedger(
    deps.ledger,
    jobs.map((j) => j.job.event.key),
    deps.log,
  );
  const { alreadyApplied, rounds } = planBatch(jobs, eventOf, ledgered);
  for (const { item, target } of alreadyApplied) await settle(item, { ok: true, action: "skipped", target, client: null }, deps);

  // Keys of events that failed in this batch: a later event about the same person waits for them.
  let failedKeys = new Set<string>();
  for (const [index, allInRound] of rounds.entries()) {
    const held = await heldByCreateInDoubt(allInRound.map(eventOf), deps);
    const round = planRound(allInRound, eventOf, failedKeys, held);
    failedKeys = round.failedKeys;
    for (const { item, reason } of round.wait) await retryOrGiveUp(item, new BitrixError("WAITING_FOR_EARLIER_EVENT", WAIT_REASONS[reason], true, "no"), deps);
    const written = round.write;
    if (written.length === 0) continue;
    try {
      const events = written.map((item) => item.job.event);
      const mode = await deps.crmMode();
      const lookups = await deps.store.lookup(events, mode, await entitiesKnownByContact(events, deps));
      const rules = await roundRules(events, deps, mode);
      const writes = events.map((event) => {
        const lookup = lookups.get(event.key) ?? { applied: null, leads: [], clients: [], deals: [] };
        return { event, plan: planWrite(event, lookup, rules) };
      });
      const creates = writes.filter((w) => w.plan.action === "create-lead" || w.plan.action === "create-deal").map((w) => ({ key: w.event.key, contactKeys: contactKeys(w.event) }));
      await bestEffort(deps, () => deps.ledger?.markPending(creates, deps.now()));
      const outcomes = await deps.store.apply(writes);
      // A create Bitrix24 surely did not carry out is no longer in doubt.
      const notCreated = creates.filter((c) => {
        const outcome = outcomes.get(c.key);
        return outcome && !outcome.ok && outcome.error.applied === "no";
      });
      await bestEffort(deps, () => deps.ledger?.clearPending(notCreated.map((c) => c.key)));
      await afterWrites(written, outcomes, new Map(writes.map((w) => [w.event.key, w.plan])), deps, rules);
      for (const item of written) {
        const outcome = outcomes.get(item.job.event.key);
        if (!outcome?.ok) for (const k of identityKeys(item.job.event)) failedKeys.add(k);
        await settle(item, outcome, deps);
      }
    } catch (error) {
      // Later rounds hold events about the same people: they wait too, so events keep their order.
      for (const item of [...written, ...rounds.slice(index + 1).flat()]) await retryOrGiveUp(item, error, deps);
      return;
    }
  }
}
