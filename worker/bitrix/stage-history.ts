/**
 * Reads deals' stage histories from Bitrix24 (crm.stagehistory.list, FACTS-loop §1.7,
 * loop-docs/api-reference__crm__crm-stage-history-list.txt) for the deal sync into CoMagic: one `batch` command per
 * deal, 50 a request, further pages of a deal with more than a page of rows in the next batch. The reference
 * disagrees with itself on the answer ([CONFLICT]: the sample nests the rows in `result.items`, the field table says
 * `result` is the array), so both are read. Rows come in ID order: a row written while the pages are read lands
 * after them and never shifts a page.
 */
import * as z from "zod";
import type { StageHistoryItem } from "../domain/deal-history";
import { batchBuilder } from "./batch-builder";
import type { BitrixClient } from "./client";
import { BitrixError } from "./errors";

/** Bitrix24 list methods answer 50 rows a page (FACTS.md §2.4); a full page may have a next one. */
const PAGE_SIZE = 50;
const DEAL_ENTITY_TYPE_ID = 2;
const SELECT = ["ID", "TYPE_ID", "OWNER_ID", "CREATED_TIME", "CATEGORY_ID", "STAGE_SEMANTIC_ID", "STAGE_ID"];

/** The sample gives ids as integers, a portal's PHP often as strings ("7365"): either. */
const integer = z.union([z.number().int(), z.string().regex(/^\d+$/).transform(Number)]);
const row = z.object({
  ID: integer,
  TYPE_ID: integer,
  OWNER_ID: integer.transform(String),
  CREATED_TIME: z.string(),
  CATEGORY_ID: integer,
  STAGE_SEMANTIC_ID: z.string(),
  STAGE_ID: z.string(),
});
type Row = z.output<typeof row>;

/**
 * One page for one deal, in either shape. A row of another deal means the filter was not applied (Bitrix24 drops a
 * filter it does not know, and pages through everything): the answer is refused rather than read as this deal's.
 */
const eitherShape = z.union([z.array(row), z.object({ items: z.array(row) }).transform((answer) => answer.items)]);
const pageOf = (dealId: string) => eitherShape.refine((rows) => rows.every((r) => r.OWNER_ID === dealId), `rows of another deal than ${dealId}`);

const item = (r: Row): StageHistoryItem => ({
  ID: r.ID,
  TYPE_ID: r.TYPE_ID,
  CREATED_TIME: r.CREATED_TIME,
  CATEGORY_ID: r.CATEGORY_ID,
  STAGE_SEMANTIC_ID: r.STAGE_SEMANTIC_ID,
  STAGE_ID: r.STAGE_ID,
});

/**
 * Each deal's stage history, oldest row first (by ID); every deal asked for has an entry, empty when it has no rows.
 * A command Bitrix24 refused or answered in another shape fails the whole read (the caller retries it).
 */
export async function readStageHistories(bitrix: BitrixClient, dealIds: readonly string[]): Promise<Map<string, StageHistoryItem[]>> {
  const histories = new Map<string, StageHistoryItem[]>(dealIds.map((id) => [id, []]));
  let pending = [...histories.keys()].map((dealId) => ({ dealId, start: 0 }));
  while (pending.length > 0) {
    const batch = batchBuilder();
    const asked = pending.map((page) => ({
      ...page,
      handle: batch.add(
        "history",
        { method: "crm.stagehistory.list", params: { entityTypeId: DEAL_ENTITY_TYPE_ID, filter: { OWNER_ID: page.dealId }, order: { ID: "ASC" }, select: SELECT, start: page.start } },
        pageOf(page.dealId),
      ),
    }));
    const answers = await batch.send(bitrix, { readOnly: true });
    pending = [];
    for (const { dealId, start, handle } of asked) {
      const rows = answers.required(handle);
      const history = histories.get(dealId) ?? [];
      const lastId = history.at(-1)?.ID;
      // A next page that does not go on after the last row read (a portal ignoring `start`) would be read forever.
      if (start > 0 && rows[0] && lastId !== undefined && rows[0].ID <= Number(lastId)) {
        throw new BitrixError("ERROR_UNEXPECTED_ANSWER", `Bitrix24 crm.stagehistory.list: page at ${start} of deal ${dealId} repeats rows already read`, true, "no");
      }
      history.push(...rows.map(item));
      if (rows.length >= PAGE_SIZE) pending.push({ dealId, start: start + PAGE_SIZE });
    }
  }
  return histories;
}
