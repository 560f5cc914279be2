/*
 * What the snippet said of a form's visitor to the ad platforms (D1 `form_visitors`, by the form's ledger key):
 * Metrica's `_ym_uid`, Direct's `yclid` and GA's `_ga` client id, and when the form came (that visit). Written by
 * `/forms` when conversions are on; read by jobs/conversions.ts for a lead whose first event is that form, so a
 * visitor CoMagic does not know still converts (issue #25 §3: "`_ym_uid`, which the snippet already sends").
 */
import type { VisitorClickIds } from "../comagic/reports";
import { ensureSchema } from "./d1-schema";
import { selectAnyOf } from "./d1-lookup";

export interface FormVisitorStore {
  record(key: string, ids: { ymUid: string | null; yclid: string | null; gaClientId: string | null }, at: Date): Promise<void>;
  find(keys: readonly string[]): Promise<Map<string, VisitorClickIds>>;
}

export function d1FormVisitors(db: D1Database, portal: string): FormVisitorStore {
  return {
    async record(key, ids, at) {
      if (!ids.ymUid && !ids.yclid && !ids.gaClientId) return;
      await ensureSchema(db);
      await db
        .prepare("INSERT OR IGNORE INTO form_visitors (portal, key, ym_uid, yclid, ga_client_id, at) VALUES (?, ?, ?, ?, ?, ?)")
        .bind(portal, key, ids.ymUid, ids.yclid, ids.gaClientId, at.toISOString())
        .run();
    },
    async find(keys) {
      if (keys.length === 0) return new Map();
      await ensureSchema(db);
      const rows = await selectAnyOf<{ key: string; ym_uid: string | null; yclid: string | null; ga_client_id: string | null; at: string }>(
        db,
        (any) => `SELECT key, ym_uid, yclid, ga_client_id, at FROM form_visitors WHERE portal = ? AND key IN (${any})`,
        [portal],
        keys,
      );
      return new Map(rows.map((r) => [r.key, { lastVisitAt: Date.parse(r.at), ymClientId: r.ym_uid, yclid: r.yclid, gaClientId: r.ga_client_id }]));
    },
  };
}
