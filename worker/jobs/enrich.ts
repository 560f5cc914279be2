import { EMPTY_JOURNEY_RETRIES, EMPTY_JOURNEY_RETRY_SECONDS } from "../domain/retry-policy";
import * as z from "zod";
import { type BatchHandle, batchBuilder } from "../bitrix/batch-builder";
import type { BitrixClient } from "../bitrix/client";
import type { CrmStore, EntityFields } from "../bitrix/crm-store";
import type { CoMagicRpcClient } from "../comagic/data-api";
import { loadJourneys } from "../comagic/reports";
import { ledgerRef } from "../domain/crm-entity";
import { LEAD_FIELD } from "../domain/lead-plan";
import { buildJourney, summarizeJourney, type Journey } from "../domain/touchpoints";
import { creditRows } from "../domain/attribution-credits";
import { errorMessage } from "../log";
import type { AttributionStore, ConversionCredits } from "../storage/attribution-store";
import type { CrmVisitorStore } from "../storage/crm-visitors";
import type { JourneyStore } from "../storage/journeys";
import { enrichJobSchema, type EnrichJob } from "./schema";
import { asFailure, readJobs, retryOrDeadLetter, type SettleDeps } from "./settle";

/*
 * Enrichment: a lead's (or deal's) CoMagic fields (visitor, sessions, first and last source) from the visitor's
 * last 90 days in the Data API, the report's credits in D1, and the touchpoints cached for the CRM tab.
 *
 * It fills; it never moves. A lead or deal that already has another visitor keeps it, with its credits, whatever
 * a job says (a form can name any visitor id: verified-source.ts); a visitor CoMagic knows no visits of, after the
 * reports had time to catch up, writes nothing at all. Rerunning a job writes the same values.
 *
 * A batch costs two Data API reads whatever its size: the visits and the contacts of all its visitors at once;
 * and two D1 commits: the credits and the visitors of all its leads at once.
 */

export interface EnrichDeps extends SettleDeps {
  dataApi: CoMagicRpcClient;
  bitrix: BitrixClient;
  /** Reads the leads and deals first: what they have decides what may be written. */
  store: Pick<CrmStore, "entityFields">;
  journeys: JourneyStore | null;
  /** Where the report's credits go (D1); null without a DB binding. */
  attribution: AttributionStore | null;
  /** Which visitor the worker wrote to which lead or deal; null without a DB binding. */
  visitors: CrmVisitorStore | null;
  queue: string;
  timeZone: string;
}

type Item = { message: Message<unknown>; job: EnrichJob };

/** Why a job writes nothing, or null when it may fill the lead or deal it names. */
function skipReason(job: EnrichJob, entity: EntityFields | undefined): "entity_gone" | "other_visitor" | null {
  if (!entity) return "entity_gone";
  return entity.visitorId && entity.visitorId !== job.visitorId ? "other_visitor" : null;
}

export async function handleEnrichJobs(messages: readonly Message<unknown>[], deps: EnrichDeps): Promise<void> {
  const jobs = readJobs(messages, enrichJobSchema, deps.log);
  if (jobs.length === 0) return;

  let entities: Map<string, EntityFields>;
  try {
    entities = await deps.store.entityFields(jobs.map(({ job }) => ({ type: job.entity, id: job.entityId })));
  } catch (error) {
    for (const { message, job } of jobs) await retryOrDeadLetter(message, deps.queue, asFailure(error), { entityId: job.entityId }, deps);
    return;
  }

  const wanted: (Item & { entity: EntityFields })[] = [];
  for (const { message, job } of jobs) {
    const entity = entities.get(ledgerRef({ type: job.entity, id: job.entityId }));
    const skipped = skipReason(job, entity);
    if (skipped || !entity) {
      deps.log.info("enrich.skipped", { entityId: job.entityId, visitorId: job.visitorId, entity: job.entity, reason: skipped });
      message.ack();
      continue;
    }
    wanted.push({ message, job, entity });
  }
  if (wanted.length === 0) return;

  const now = deps.now();
  let journeys: Map<string, Journey>;
  try {
    journeys = await loadJourneys(
      deps.dataApi,
      wanted.map(({ job }) => job.visitorId),
      now,
      deps.timeZone,
    );
  } catch (error) {
    for (const { message, job } of wanted) await retryOrDeadLetter(message, deps.queue, asFailure(error), { entityId: job.entityId, visitorId: job.visitorId }, deps);
    return;
  }

  const updates = batchBuilder();
  const ready: (Item & { journey: Journey; entity: EntityFields; update: BatchHandle<unknown> })[] = [];
  for (const { message, job, entity } of wanted) {
    const context = { entityId: job.entityId, visitorId: job.visitorId };
    try {
      const journey = journeys.get(job.visitorId) ?? buildJourney(job.visitorId, now, []);
      const summary = summarizeJourney(journey);
      if (summary.sessions === 0) {
        // CoMagic's reports lag behind its events: wait a while, then give up without writing a visitor with no visits.
        if (message.attempts < EMPTY_JOURNEY_RETRIES) {
          deps.log.info("enrich.waiting_for_reports", { ...context, attempts: message.attempts });
          message.retry({ delaySeconds: EMPTY_JOURNEY_RETRY_SECONDS });
        } else {
          deps.log.info("enrich.skipped", { ...context, entity: job.entity, reason: "no_visits" });
          message.ack();
        }
        continue;
      }
      await deps.journeys?.put(journey);
      const fields = {
        [LEAD_FIELD.visitorId]: job.visitorId,
        [LEAD_FIELD.sessions]: summary.sessions,
        [LEAD_FIELD.firstSource]: summary.firstSource ?? "",
        [LEAD_FIELD.lastSource]: summary.lastSource ?? "",
      };
      const update = updates.add("lead", { method: `crm.${job.entity}.update`, params: { id: Number(job.entityId), fields, params: { REGISTER_SONET_EVENT: "N" } } }, z.unknown());
      ready.push({ message, job, journey, entity, update });
    } catch (error) {
      await retryOrDeadLetter(message, deps.queue, asFailure(error), context, deps);
    }
  }
  if (ready.length === 0) return;

  // Field updates are idempotent, so the batch may be repeated after any failure.
  const answers = await updates.send(deps.bitrix, { readOnly: true });
  const updated: typeof ready = [];
  for (const item of ready) {
    const failure = answers.failure(item.update);
    if (failure) await retryOrDeadLetter(item.message, deps.queue, asFailure(failure), { entityId: item.job.entityId }, deps);
    else updated.push(item);
  }
  const failures = await storeEnriched(updated, deps);
  for (const { message, job } of updated) {
    if (failures.has(message)) {
      const error = failures.get(message);
      deps.log.warn("enrich.store_failed", { entityId: job.entityId, error: errorMessage(error) });
      await retryOrDeadLetter(message, deps.queue, asFailure(error), { entityId: job.entityId }, deps);
      continue;
    }
    deps.log.info("lead.enriched", { entityId: job.entityId, visitorId: job.visitorId });
    message.ack();
  }
}

type Enriched = Item & { journey: Journey; entity: EntityFields };

/**
 * Writes the batch's credits and visitors to D1: one commit each for the whole batch (D1 has one writer for
 * every portal, and a commit costs it several ms), not two a lead. A commit is all or nothing, so when one fails
 * the leads are written again one by one: a lead D1 refuses goes back to the queue alone, as it did when each
 * was written apart, and the others are acked. Both writes replace what a lead had, so writing one twice is
 * harmless. Returns the error of each lead that could not be written.
 */
async function storeEnriched(items: readonly Enriched[], deps: EnrichDeps): Promise<Map<Message<unknown>, unknown>> {
  const failures = new Map<Message<unknown>, unknown>();
  if (items.length > 1) {
    try {
      await writeEnriched(items, deps);
      return failures;
    } catch (error) {
      deps.log.warn("enrich.store_batch_failed", { leads: items.length, error: errorMessage(error) });
    }
  }
  for (const item of items) {
    await writeEnriched([item], deps).catch((error: unknown) => failures.set(item.message, error));
  }
  return failures;
}

async function writeEnriched(items: readonly Enriched[], deps: EnrichDeps): Promise<void> {
  await deps.attribution?.putCreditsMany(items.map(({ job, journey, entity }) => conversionCredits(job, journey, entity.dateCreate, deps.now())));
  await deps.visitors?.record(
    items.map(({ job, entity }) => ({ ref: entity.ref, visitorId: job.visitorId })),
    deps.now(),
  );
}

/**
 * The report's credits of one enriched lead or deal, dated by when CoMagic recorded the contact that created it
 * (a feed read may come hours later), else by its DATE_CREATE (else now: a just-made entity).
 */
function conversionCredits(job: EnrichJob, journey: Journey, dateCreate: string | null, now: Date): ConversionCredits {
  const parsed = Date.parse(job.convertedAt ?? dateCreate ?? "");
  const createdAt = Number.isNaN(parsed) ? now : new Date(parsed);
  return { entity: job.entity, entityId: job.entityId, createdAt, rows: creditRows(journey, createdAt), madeContact: job.newContact };
}
