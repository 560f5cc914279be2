import { type CrmEntityRef, ledgerRef } from "../domain/crm-entity";
import { ensureSchema } from "./d1-schema";
import { selectAnyOf } from "./d1-lookup";

/*
 * The CoMagic visitor id the worker itself wrote to each lead or deal (D1 `crm_visitors`). Anyone who may edit a
 * lead can type any number into UF_CRM_CM_VISITOR_ID; the CoMagic tab shows a visitor's visits (read with the
 * worker's own Data API key) only when the card's id is the one recorded here, so typing another id shows nothing.
 * Written by the lead consumer when it sets the field and by enrichment when it fills or confirms it.
 */

export interface CrmVisitorStore {
  record(rows: readonly { ref: CrmEntityRef; visitorId: string }[], at: Date): Promise<void>;
  /** The visitor id the worker wrote to this lead or deal, or null when it wrote none. */
  find(ref: CrmEntityRef): Promise<string | null>;
  /** The visitor ids of many ledger refs at once (bare lead ids, `deal:7`), by ref. */
  findMany(refs: readonly string[]): Promise<Map<string, string>>;
}

export function d1CrmVisitorStore(db: D1Database, portal: string): CrmVisitorStore {
  return {
    async record(rows, at) {
      if (rows.length === 0) return;
      await ensureSchema(db);
      await db.batch(
        rows.map(({ ref, visitorId }) =>
          db
            .prepare(
              "INSERT INTO crm_visitors (portal, ref, visitor_id, written_at) VALUES (?, ?, ?, ?) ON CONFLICT (portal, ref) DO UPDATE SET visitor_id = excluded.visitor_id, written_at = excluded.written_at",
            )
            .bind(portal, ledgerRef(ref), visitorId, at.toISOString()),
        ),
      );
    },
    async find(ref) {
      await ensureSchema(db);
      const row = await db.prepare("SELECT visitor_id FROM crm_visitors WHERE portal = ? AND ref = ?").bind(portal, ledgerRef(ref)).first<{ visitor_id: string }>();
      return row?.visitor_id ?? null;
    },
    async findMany(refs) {
      if (refs.length === 0) return new Map();
      await ensureSchema(db);
      const rows = await selectAnyOf<{ ref: string; visitor_id: string }>(db, (any) => `SELECT ref, visitor_id FROM crm_visitors WHERE portal = ? AND ref IN (${any})`, [portal], refs);
      return new Map(rows.map((r) => [r.ref, r.visitor_id]));
    },
  };
}
