import * as z from "zod";
import { type BatchAnswers, type BatchHandle, batchBuilder } from "../bitrix/batch-builder";
import type { BitrixClient } from "../bitrix/client";
import type { CrmStore, EntityFields } from "../bitrix/crm-store";
import type { CoMagicRpcClient } from "../comagic/data-api";
import { fetchCallRecords } from "../comagic/reports";
import { callRecordUpdate, type CallRecord } from "../domain/call-record";
import { ledgerRef, type CrmEntityRef } from "../domain/crm-entity";
import { parseComagicDateTime } from "../domain/comagic-time";
import { errorMessage } from "../log";
import type { CrmCommunicationStore } from "../storage/crm-communications";
import { findInLedger, recordInLedger, type AppliedEvents } from "../storage/d1";
import { callRecordJobSchema, callTelephonyJob, enrichJob, type CallRecordJob, type FollowUpSender } from "./schema";
import { asFailure, readJobs, retryOrDeadLetter, type SettleDeps } from "./settle";

/*
 * CoMagic's reports lag behind its notifications by an unknown time (FACTS-calls §1.3 [UNCERTAIN]): a call
 * missing from get.calls_report is asked for again after `retrySeconds` (ENRICH_DELAY_SECONDS, a minute by
 * default), six times in all, then given up with a log line. The lead exists by then, so giving up loses
 * attribution detail, never the client. Every call of a batch is asked for in the same read (`id` in […]):
 * a Data API point per batch, not per call.
 */
export const CALL_RECORD_TRIES = 6;
// A call starts before its notification, and calls can last hours: its record is looked for from a day before.
const LOOKBACK_MS = 86_400_000;
// CoMagic refuses a report interval over 3 months or 90 days (FACTS-calls §2); 85 days is inside both readings.
const MAX_WINDOW_MS = 85 * 86_400_000;

export interface CallRecordDeps extends SettleDeps {
  dataApi: CoMagicRpcClient;
  store: Pick<CrmStore, "entityFields">;
  /** The Bitrix24 user of a CoMagic employee (COMAGIC_EMPLOYEES, else by email), for the record's answering employee. */
  userOfEmployee: (employeeId: string) => Promise<string | null>;
  bitrix: BitrixClient;
  /** Remembers which records already put their recording on the timeline, so a redelivery does not repeat it. */
  ledger: AppliedEvents | null;
  /** Queues the visitor's enrichment when the record names a visitor the notification did not. */
  followUps: FollowUpSender | null;
  queue: string;
  timeZone: string;
  /** Pause before asking CoMagic again for a call its report does not have yet. */
  retrySeconds: number;
  /** Where each lead's communication is kept for the deal loop (issue #25): a deal links to it with no read of its own. */
  communications?: CrmCommunicationStore | null;
}

type Found = { message: Message<unknown>; job: CallRecordJob; record: CallRecord };

const timelineKey = (sessionId: string) => `record:${sessionId}`;

/** A visitor the notification named is being enriched already; one only the record names is enriched now. */
async function enrichNewVisitor(job: CallRecordJob, visitorId: string | null, deps: CallRecordDeps): Promise<void> {
  if (!visitorId || visitorId === job.visitorId || !deps.followUps) return;
  const enrich = enrichJob({ portal: job.portal, requestId: job.requestId, entityId: job.entityId, entity: job.entity, visitorId, newContact: job.newContact });
  await deps.followUps.send([enrich]).catch((error: unknown) => {
    deps.log.warn("enrich.enqueue_failed", { error: errorMessage(error), leads: 1 });
  });
}

/** A recording only the record has goes onto the call in Bitrix24 telephony too (its telephony job, sent again). */
async function attachNewRecording(job: CallRecordJob, recordingUrl: string | null, deps: CallRecordDeps): Promise<void> {
  if (!recordingUrl || recordingUrl === job.recordingUrl || !job.telephony || !deps.followUps) return;
  await deps.followUps.send([{ ...job.telephony, recordingUrl }]).catch((error: unknown) => {
    deps.log.warn("telephony.enqueue_failed", { error: errorMessage(error), key: job.telephony?.key });
  });
}

/** A click-to-call's record, once CoMagic has it, becomes an outbound call in Bitrix24 telephony (TYPE 1). */
async function registerOutboundCalls(found: Found[], deps: CallRecordDeps): Promise<void> {
  for (const { message, job, record } of found) {
    const outbound = job.outbound;
    if (!outbound || !deps.followUps) {
      message.ack();
      continue;
    }
    const telephony = callTelephonyJob({
      portal: job.portal,
      requestId: job.requestId,
      key: `click-to-call-${job.sessionId}`,
      crmEntity: outbound.crmEntity,
      userId: outbound.userId,
      phone: outbound.phone,
      startedAt: job.calledAt,
      talkSeconds: record.talkSeconds ?? 0,
      lost: record.lost ?? false,
      recordingUrl: record.recordingUrl,
      outbound: true,
    });
    try {
      await deps.followUps.send([telephony]);
      message.ack();
    } catch (error) {
      await retryOrDeadLetter(message, deps.queue, asFailure(error), { sessionId: job.sessionId }, deps);
    }
  }
}

type Read = { from: number; to: number; items: { message: Message<unknown>; job: CallRecordJob }[] };

/**
 * The reads a batch's calls need: one whose window runs from a day before the earliest call to now, unless a
 * call is so old (a replayed dead letter, a backfill) that the window would pass CoMagic's limit; older calls
 * then share reads of their own. `calledAt` is CoMagic's start time when the event had it.
 */
function recordReads(items: Read["items"], now: number): Read[] {
  const at = (item: Read["items"][number]) => Date.parse(item.job.calledAt);
  const sorted = [...items].sort((a, b) => at(a) - at(b));
  const end = Math.max(now, ...sorted.map(at));
  const reads: Read[] = [];
  for (const item of sorted) {
    const last = reads.at(-1);
    if (last && at(item) <= last.to) last.items.push(item);
    else {
      const from = at(item) - LOOKBACK_MS;
      reads.push({ from, to: Math.min(end, from + MAX_WINDOW_MS), items: [item] });
    }
  }
  return reads;
}

/** Looks the batch's calls up in CoMagic's calls report, all in one read: found, waiting for the report, or given up. */
async function findRecords(messages: readonly Message<unknown>[], deps: CallRecordDeps): Promise<Found[]> {
  const found: Found[] = [];
  for (const read of recordReads(readJobs(messages, callRecordJobSchema, deps.log), deps.now().getTime())) {
    let records: Map<string, CallRecord>;
    try {
      const window = { from: new Date(read.from), to: new Date(read.to), timeZone: deps.timeZone };
      records = await fetchCallRecords(
        deps.dataApi,
        read.items.map(({ job }) => job.sessionId),
        window,
      );
    } catch (error) {
      for (const { message, job } of read.items) await retryOrDeadLetter(message, deps.queue, asFailure(error), { entityId: job.entityId, sessionId: job.sessionId }, deps);
      continue;
    }
    for (const { message, job } of read.items) {
      const context = { entityId: job.entityId, sessionId: job.sessionId };
      const record = records.get(job.sessionId);
      if (record) {
        found.push({ message, job, record });
      } else if (message.attempts < CALL_RECORD_TRIES) {
        deps.log.info("call_record.waiting_for_report", { ...context, attempts: message.attempts });
        message.retry({ delaySeconds: deps.retrySeconds });
      } else {
        deps.log.warn("call_record.not_found", { ...context, attempts: message.attempts });
        message.ack();
      }
    }
  }
  return found;
}

/**
 * Fills each call's lead from CoMagic's own record of the call: empty UTM and visitor fields, and one timeline
 * entry with the recording and source. Then the visitor's journey is enriched as for any lead.
 */
export async function handleCallRecordJobs(messages: readonly Message<unknown>[], deps: CallRecordDeps): Promise<void> {
  const all = await findRecords(messages, deps);
  const found = all.filter((f) => !f.job.outbound);
  await registerOutboundCalls(
    all.filter((f) => f.job.outbound),
    deps,
  );
  if (found.length === 0) return;
  const giveBack = async (items: Found[], error: unknown) => {
    for (const { message, job } of items) await retryOrDeadLetter(message, deps.queue, asFailure(error), { entityId: job.entityId, sessionId: job.sessionId }, deps);
  };

  const refOf = (job: CallRecordJob): CrmEntityRef => ({ type: job.entity, id: job.entityId });
  let entities: Map<string, EntityFields>;
  try {
    entities = await deps.store.entityFields(found.map((f) => refOf(f.job)));
  } catch (error) {
    await giveBack(found, error);
    return;
  }
  const commented = await findInLedger(
    deps.ledger,
    found.map((f) => timelineKey(f.job.sessionId)),
    deps.log,
  );

  const writes = batchBuilder();
  const writing: { item: Found; handles: BatchHandle<unknown>[]; fields: number; commented: boolean }[] = [];
  for (const item of found) {
    const entity = entities.get(ledgerRef(refOf(item.job)));
    if (!entity) {
      deps.log.warn("call_record.lead_gone", { [`${item.job.entity}Id`]: item.job.entityId, sessionId: item.job.sessionId });
      item.message.ack();
      continue;
    }
    const update = callRecordUpdate(item.record, entity, item.job.recordingUrl);
    // The notification named nobody who answered, the record does: a lead or deal this call made goes to them.
    const answeredBy = item.job.created && !item.job.employeeKnown && item.record.employeeId ? await deps.userOfEmployee(item.record.employeeId).catch(() => null) : null;
    if (answeredBy) update.fields.ASSIGNED_BY_ID = answeredBy;
    const handles: BatchHandle<unknown>[] = [];
    if (Object.keys(update.fields).length) {
      const params = { id: Number(item.job.entityId), fields: update.fields, params: { REGISTER_SONET_EVENT: "N" } };
      handles.push(writes.add("fields", { method: `crm.${item.job.entity}.update`, params }, z.unknown()));
    }
    const comment = update.comment !== null && !commented.has(timelineKey(item.job.sessionId));
    if (comment) {
      const fields = { ENTITY_ID: Number(item.job.entityId), ENTITY_TYPE: item.job.entity, COMMENT: update.comment };
      handles.push(writes.add("comment", { method: "crm.timeline.comment.add", params: { fields } }, z.unknown()));
    }
    writing.push({ item, handles, fields: Object.keys(update.fields).length, commented: comment });
  }

  let answers: BatchAnswers;
  try {
    answers = await writes.send(deps.bitrix, { readOnly: false });
  } catch (error) {
    await giveBack(
      writing.map((w) => w.item),
      error,
    );
    return;
  }
  const applied: (typeof writing)[number][] = [];
  for (const w of writing) {
    const failed = w.handles.map((handle) => answers.failure(handle)).find((failure) => failure !== null);
    if (failed) await giveBack([w.item], failed);
    else applied.push(w);
  }
  // The comments written, in one ledger commit for the batch (D1 has one writer for every portal), before any
  // call is acked: a redelivery finds each of them there. A ledger that fails is logged; the acks stand.
  await recordInLedger(
    deps.ledger,
    applied.filter((w) => w.commented).map(({ item }) => ({ key: timelineKey(item.job.sessionId), ref: ledgerRef(refOf(item.job)) })),
    deps.now(),
    deps.log,
  );
  await rememberCommunications(
    applied.map((w) => w.item),
    deps,
  );
  for (const { item, fields } of applied) {
    deps.log.info("call_record.applied", { entityId: item.job.entityId, sessionId: item.job.sessionId, fields, recording: item.record.recordingUrl !== null });
    await enrichNewVisitor(item.job, item.record.visitorId, deps);
    await attachNewRecording(item.job, item.record.recordingUrl, deps);
    item.message.ack();
  }
}

/** The communication each applied call is (its record's communication_id), by the lead it made. Best effort: the deal loop reads it from CoMagic otherwise. */
async function rememberCommunications(items: readonly Found[], deps: CallRecordDeps): Promise<void> {
  const rows = items.flatMap(({ job, record }) => {
    const id = record.communicationId && /^\d+$/.test(record.communicationId) ? Number(record.communicationId) : null;
    const at = record.startTime ? parseComagicDateTime(record.startTime, deps.timeZone)?.getTime() : undefined;
    return id !== null && at !== undefined ? [{ ref: ledgerRef({ type: job.entity, id: job.entityId }), communication: { id, type: "call" as const, at } }] : [];
  });
  await deps.communications?.record(rows).catch((error: unknown) => deps.log.warn("call_record.communication_unsaved", { error: errorMessage(error), calls: rows.length }));
}
