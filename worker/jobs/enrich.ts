import { EMPTY_JOURNEY_RETRIES, EMPTY_JOURNEY_RETRY_SECONDS } from "../domain/retry-policy";
import * as z from "zod";
import { type BatchHandle, batchBuilder } from "../bitrix/batch-builder";
import type { BitrixClient } from "../bitrix/client";
import type { CoMagicRpcClient } from "../comagic/data-api";
import { loadJourney } from "../comagic/reports";
import { LEAD_FIELD } from "../domain/lead-plan";
import { summarizeJourney, type Journey } from "../domain/touchpoints";
import { creditRows } from "../domain/attribution-credits";
import type { AttributionStore } from "../storage/attribution-store";
import type { JourneyStore } from "../storage/journeys";
import { enrichJobSchema, type EnrichJob } from "./schema";
import { asFailure, readJobs, retryOrDeadLetter, type SettleDeps } from "./settle";

export interface EnrichDeps extends SettleDeps {
  dataApi: CoMagicRpcClient;
  bitrix: BitrixClient;
  journeys: JourneyStore | null;
  /** Where the report's credits go (D1); null without a DB binding. */
  attribution: AttributionStore | null;
  queue: string;
  timeZone: string;
}

/**
 * Fills each lead's CoMagic fields (visitor, sessions, first and last source) from the visitor's last 90
 * days in the Data API, and caches the touchpoints for the CRM tab. Rerunning a job writes the same values.
 */
export async function handleEnrichJobs(messages: readonly Message<unknown>[], deps: EnrichDeps): Promise<void> {
  const jobs = readJobs(messages, enrichJobSchema, deps.log);

  const now = deps.now();
  const journeys = new Map<string, Promise<Journey>>();
  const journeyOf = (visitorId: string) => {
    let pending = journeys.get(visitorId);
    if (!pending) {
      pending = loadJourney(deps.dataApi, visitorId, now, deps.timeZone);
      journeys.set(visitorId, pending);
    }
    return pending;
  };

  const updates = batchBuilder();
  const ready: { message: Message<unknown>; job: EnrichJob; journey: Journey; update: BatchHandle<unknown>; created: BatchHandle<unknown> | null }[] = [];
  for (const { message, job } of jobs) {
    const context = { leadId: job.leadId, visitorId: job.visitorId };
    try {
      const journey = await journeyOf(job.visitorId);
      const summary = summarizeJourney(journey);
      if (summary.sessions === 0 && message.attempts < EMPTY_JOURNEY_RETRIES) {
        deps.log.info("enrich.waiting_for_reports", { ...context, attempts: message.attempts });
        message.retry({ delaySeconds: EMPTY_JOURNEY_RETRY_SECONDS });
        continue;
      }
      await deps.journeys?.put(journey);
      const fields = {
        [LEAD_FIELD.visitorId]: job.visitorId,
        [LEAD_FIELD.sessions]: summary.sessions,
        [LEAD_FIELD.firstSource]: summary.firstSource ?? "",
        [LEAD_FIELD.lastSource]: summary.lastSource ?? "",
      };
      const update = updates.add("lead", { method: `crm.${job.entity}.update`, params: { id: Number(job.leadId), fields, params: { REGISTER_SONET_EVENT: "N" } } }, z.unknown());
      // The creation date places the conversion in the journey: only visits before it earn credit.
      const created = deps.attribution ? updates.add("created", { method: `crm.${job.entity}.get`, params: { id: Number(job.leadId) } }, z.unknown()) : null;
      ready.push({ message, job, journey, update, created });
    } catch (error) {
      await retryOrDeadLetter(message, deps.queue, asFailure(error), context, deps);
    }
  }
  if (ready.length === 0) return;

  // Field updates are idempotent, so the batch may be repeated after any failure.
  const answers = await updates.send(deps.bitrix, { readOnly: true });
  for (const { message, job, journey, update, created } of ready) {
    const failure = answers.failure(update);
    if (failure) {
      await retryOrDeadLetter(message, deps.queue, asFailure(failure), { leadId: job.leadId }, deps);
      continue;
    }
    try {
      await storeCredits(job, journey, created ? answers.value(created) : null, deps);
    } catch (error) {
      await retryOrDeadLetter(message, deps.queue, asFailure(error), { leadId: job.leadId }, deps);
      continue;
    }
    deps.log.info("lead.enriched", { leadId: job.leadId, visitorId: job.visitorId });
    message.ack();
  }
}

/** The report's credits of one enriched lead or deal, dated by its DATE_CREATE (else now: a just-made entity). */
async function storeCredits(job: EnrichJob, journey: Journey, entity: unknown, deps: EnrichDeps): Promise<void> {
  if (!deps.attribution) return;
  const raw = (entity as { DATE_CREATE?: unknown } | null)?.DATE_CREATE;
  const parsed = typeof raw === "string" ? Date.parse(raw) : Number.NaN;
  const createdAt = Number.isNaN(parsed) ? deps.now() : new Date(parsed);
  await deps.attribution.putCredits(job.entity, job.leadId, createdAt, creditRows(journey, createdAt), job.newContact);
}
