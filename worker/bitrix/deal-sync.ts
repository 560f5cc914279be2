import * as z from "zod";
import type { AttributionStore, DealRecord } from "../storage/attribution-store";
import { batchBuilder } from "./batch-builder";
import type { BitrixClient } from "./client";

/*
 * Keeps D1's deals in step with Bitrix24 for the report: every deal changed since the last sync
 * (`>=DATE_MODIFY`, FACTS-portals §2), kept when it came from a credited lead (LEAD_ID) or is itself credited.
 * Pages are read in `batch`es ordered by ID, so a deal changed during the sync never shifts a page. One sync
 * reads at most `maxPages` pages (the portal's REST budget is the leads' too); the next one goes on after the
 * last deal read, and only a pass that reached the end moves "changed since" forward.
 */

const LIST_PAGE = 50;
/** Pages a round asks for: the first round is one page (most syncs find little), then batches grow. */
const ROUND_PAGES = [1, 10, 50];
/** Bitrix24's clock and ours differ a little; re-reading a few minutes costs nothing (writes are upserts). */
const OVERLAP_MS = 5 * 60_000;
/** A first sync looks back as far as the report does. */
const FIRST_SYNC_DAYS = 90;
const STATE_KEY = "deals.modified_since";
/** Where an unfinished pass stopped: the last deal id read, and when the pass began (its next "changed since"). */
const RESUME_KEY = "deals.resume";
/** 100 pages are 5,000 deals in four `batch` requests (1 + 10 + 50 + 39 pages). */
export const DEFAULT_MAX_PAGES = 100;
const resumeState = z.object({ afterId: z.string().regex(/^\d+$/), startedAt: z.iso.datetime() });

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
  /** false: the page cap stopped this sync; the next one goes on after the last deal read. */
  complete: boolean;
}

function parseResume(raw: string | null): z.infer<typeof resumeState> | null {
  if (!raw) return null;
  try {
    const parsed = resumeState.safeParse(JSON.parse(raw));
    return parsed.success ? parsed.data : null;
  } catch {
    return null;
  }
}

/** Bitrix24's filters take ISO 8601 with an explicit offset ([UNCERTAIN] zone handling otherwise: FACTS-portals §2). */
const bitrixTime = (date: Date) => `${date.toISOString().slice(0, 19)}+00:00`;

/** The deals this sync kept, as changed: CoMagic's deal loop and the offline conversions start from them. */
export type SyncedDeals = DealSyncResult & { changed: DealRecord[] };

export async function syncDeals(deps: { bitrix: BitrixClient; store: AttributionStore; now: () => Date; baseCurrency: string; maxPages?: number }): Promise<SyncedDeals> {
  const resume = parseResume(await deps.store.getState(RESUME_KEY));
  const started = resume ? new Date(resume.startedAt) : deps.now();
  const since = (await deps.store.getState(STATE_KEY)) ?? new Date(started.getTime() - FIRST_SYNC_DAYS * 86_400_000).toISOString();
  const filter = { ">=DATE_MODIFY": bitrixTime(new Date(since)), ...(resume ? { ">ID": resume.afterId } : {}) };
  const maxPages = Math.max(1, deps.maxPages ?? DEFAULT_MAX_PAGES);
  const before = deps.bitrix.requestCount;
  const rows: z.infer<typeof dealRow>[] = [];
  let nextPage = 0;
  let complete = false;
  for (let round = 0; nextPage < maxPages; round++) {
    const pages = Math.min(ROUND_PAGES[Math.min(round, ROUND_PAGES.length - 1)] ?? 1, maxPages - nextPage);
    const batch = batchBuilder();
    const handles = Array.from({ length: pages }, (_, i) =>
      batch.add(
        "page",
        {
          method: "crm.deal.list",
          params: {
            filter,
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
    if (!full) {
      complete = true;
      break;
    }
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
  const lastId = rows.at(-1)?.ID;
  if (complete || !lastId) {
    await deps.store.setState(STATE_KEY, new Date(started.getTime() - OVERLAP_MS).toISOString());
    if (resume) await deps.store.setState(RESUME_KEY, "");
  } else {
    await deps.store.setState(RESUME_KEY, JSON.stringify({ afterId: lastId, startedAt: started.toISOString() }));
  }
  return { read: rows.length, kept: kept.length, requests: deps.bitrix.requestCount - before, complete, changed: kept };
}
