import * as z from "zod";
import type { AttributionStore, DealRecord } from "../storage/attribution-store";
import { batchBuilder } from "./batch-builder";
import type { BitrixClient } from "./client";

/*
 * Keeps D1's deals in step with Bitrix24 for the report: every deal changed since the last sync
 * (`>=DATE_MODIFY`, FACTS-portals §2), kept when it came from a credited lead (LEAD_ID) or is itself credited.
 * Pages are read in `batch`es ordered by ID, so a deal changed during the sync never shifts a page.
 */

const LIST_PAGE = 50;
/** Pages a round asks for: the first round is one page (most syncs find little), then batches grow. */
const ROUND_PAGES = [1, 10, 50];
/** Bitrix24's clock and ours differ a little; re-reading a few minutes costs nothing (writes are upserts). */
const OVERLAP_MS = 5 * 60_000;
/** A first sync looks back as far as the report does. */
const FIRST_SYNC_DAYS = 90;
const STATE_KEY = "deals.modified_since";

const id = z.union([z.string(), z.number()]).transform(String);
const dealRow = z
  .object({
    ID: id,
    LEAD_ID: z
      .union([z.string(), z.number()])
      .nullish()
      .transform((v) => (v === null || v === undefined || v === "" || v === "0" || v === 0 ? null : String(v))),
    STAGE_SEMANTIC_ID: z.string().nullish(),
    OPPORTUNITY: z
      .union([z.string(), z.number()])
      .nullish()
      .transform((v) => Number(v ?? 0) || 0),
    CURRENCY_ID: z.string().nullish(),
    DATE_CREATE: z.string().nullish(),
    DATE_MODIFY: z.string().nullish(),
  })
  .loose();
const page = z.array(dealRow);

export interface DealSyncResult {
  read: number;
  kept: number;
  requests: number;
}

/** Bitrix24's filters take ISO 8601 with an explicit offset ([UNCERTAIN] zone handling otherwise: FACTS-portals §2). */
const bitrixTime = (date: Date) => `${date.toISOString().slice(0, 19)}+00:00`;

export async function syncDeals(deps: { bitrix: BitrixClient; store: AttributionStore; now: () => Date; baseCurrency: string }): Promise<DealSyncResult> {
  const started = deps.now();
  const since = (await deps.store.getState(STATE_KEY)) ?? new Date(started.getTime() - FIRST_SYNC_DAYS * 86_400_000).toISOString();
  const before = deps.bitrix.requestCount;
  const rows: z.infer<typeof dealRow>[] = [];
  let nextPage = 0;
  for (let round = 0; ; round++) {
    const pages = ROUND_PAGES[Math.min(round, ROUND_PAGES.length - 1)] ?? 1;
    const batch = batchBuilder();
    const handles = Array.from({ length: pages }, (_, i) =>
      batch.add(
        "page",
        {
          method: "crm.deal.list",
          params: {
            filter: { ">=DATE_MODIFY": bitrixTime(new Date(since)) },
            order: { ID: "ASC" },
            select: ["ID", "LEAD_ID", "STAGE_SEMANTIC_ID", "OPPORTUNITY", "CURRENCY_ID", "DATE_CREATE", "DATE_MODIFY"],
            start: (nextPage + i) * LIST_PAGE,
          },
        },
        page,
      ),
    );
    const answers = await batch.send(deps.bitrix, { readOnly: true });
    let full = true;
    for (const handle of handles) {
      const found = answers.required(handle);
      rows.push(...found);
      if (found.length < LIST_PAGE) full = false;
    }
    nextPage += pages;
    if (!full) break;
  }
  const fromLeads = await deps.store.credited(
    "lead",
    rows.flatMap((r) => (r.LEAD_ID ? [r.LEAD_ID] : [])),
  );
  const ownDeals = await deps.store.credited(
    "deal",
    rows.map((r) => r.ID),
  );
  const kept: DealRecord[] = [];
  for (const r of rows) {
    const source = ownDeals.has(r.ID) ? { sourceEntity: "deal" as const, sourceId: r.ID } : r.LEAD_ID && fromLeads.has(r.LEAD_ID) ? { sourceEntity: "lead" as const, sourceId: r.LEAD_ID } : null;
    if (!source) continue;
    const semantic = r.STAGE_SEMANTIC_ID === "S" ? "S" : r.STAGE_SEMANTIC_ID === "F" ? "F" : "P";
    kept.push({ ...source, dealId: r.ID, semantic, amount: r.OPPORTUNITY, currency: r.CURRENCY_ID || deps.baseCurrency, createdAt: r.DATE_CREATE ?? null, modifiedAt: r.DATE_MODIFY ?? null });
  }
  await deps.store.putDeals(kept);
  await deps.store.setState(STATE_KEY, new Date(started.getTime() - OVERLAP_MS).toISOString());
  return { read: rows.length, kept: kept.length, requests: deps.bitrix.requestCount - before };
}
