import * as z from "zod";
import { batchBuilder } from "../bitrix/batch-builder";
import type { BitrixClient } from "../bitrix/client";
import type { CreditedEntity } from "../domain/attribution-credits";
import { LEAD_FIELD } from "../domain/lead-plan";
import type { AttributionStore } from "../storage/attribution-store";
import { enrichJob } from "./schema";
import { sendInBatches } from "./send-in-batches";

/*
 * Credits for leads (or deals) made before the report existed: one page of Bitrix24's list per call, each
 * entity with a CoMagic visitor id queued for enrichment, which writes its credits. Resumable: the last id
 * done is kept in D1 per entity and start day, so the same command picks up where it stopped.
 */

const idText = z.union([z.string(), z.number()]).transform(String);
const rows = z.array(z.object({ ID: idText, [LEAD_FIELD.visitorId]: z.union([z.string(), z.number()]).nullish() }).loose());
/** Pages a call reads: 4 × 50 in one batch request keeps a call well inside a Worker request's limits. */
const PAGES_PER_CALL = 4;
const PAGE = 50;

export interface BackfillStep {
  read: number;
  queued: number;
  lastId: string;
  done: boolean;
}

export async function backfillStep(
  request: { entity: CreditedEntity; from: string },
  deps: { bitrix: BitrixClient; store: AttributionStore; enrichQueue: Queue<unknown>; requestId: string; portal: string },
): Promise<BackfillStep> {
  const stateKey = `backfill:${request.entity}:${request.from}`;
  const after = (await deps.store.getState(stateKey)) ?? "0";
  const batch = batchBuilder();
  const filter = { ">=DATE_CREATE": `${request.from}T00:00:00+00:00`, ">ID": after };
  const pages = Array.from({ length: PAGES_PER_CALL }, (_, i) =>
    batch.add("page", { method: `crm.${request.entity}.list`, params: { filter, order: { ID: "ASC" }, select: ["ID", LEAD_FIELD.visitorId], start: i * PAGE } }, rows),
  );
  const answers = await batch.send(deps.bitrix, { readOnly: true });
  const found = pages.flatMap((page) => answers.required(page));
  const jobs = found.flatMap((row) => {
    const visitorId = row[LEAD_FIELD.visitorId];
    return visitorId ? [enrichJob({ portal: deps.portal, requestId: deps.requestId, entityId: row.ID, entity: request.entity, visitorId: String(visitorId) })] : [];
  });
  await sendInBatches(
    deps.enrichQueue,
    jobs.map((body) => ({ body, contentType: "json" as const })),
  );
  const lastId = found.reduce((max, row) => (Number(row.ID) > Number(max) ? row.ID : max), after);
  await deps.store.setState(stateKey, lastId);
  return { read: found.length, queued: jobs.length, lastId, done: found.length < PAGES_PER_CALL * PAGE };
}
