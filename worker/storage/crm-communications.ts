/*
 * The CoMagic communication each lead or deal came from (D1 `crm_communications`, by ledger ref): written by the call
 * record job when CoMagic's record of the call that made it is applied (its `communication_id`, which is not the
 * call's session id: FACTS-loop §1.5 "Which id"), read by the deal loop to link a deal without a Data API read of its
 * own. The first one written stays: later calls to the same lead do not move what made it.
 */
import type { DealCommunication } from "../domain/deal-history";
import { ensureSchema } from "./d1-schema";
import { selectAnyOf } from "./d1-lookup";

export interface CrmCommunicationStore {
  record(rows: readonly { ref: string; communication: DealCommunication }[]): Promise<void>;
  find(refs: readonly string[]): Promise<Map<string, DealCommunication>>;
}

export function d1CrmCommunications(db: D1Database, portal: string): CrmCommunicationStore {
  return {
    async record(rows) {
      if (rows.length === 0) return;
      await ensureSchema(db);
      await db.batch(
        rows.map(({ ref, communication }) =>
          db
            .prepare("INSERT OR IGNORE INTO crm_communications (portal, ref, communication_id, communication_type, at) VALUES (?, ?, ?, ?, ?)")
            .bind(portal, ref, communication.id, communication.type, new Date(communication.at).toISOString()),
        ),
      );
    },
    async find(refs) {
      if (refs.length === 0) return new Map();
      await ensureSchema(db);
      const rows = await selectAnyOf<{ ref: string; communication_id: number; communication_type: DealCommunication["type"]; at: string }>(
        db,
        (any) => `SELECT ref, communication_id, communication_type, at FROM crm_communications WHERE portal = ? AND ref IN (${any})`,
        [portal],
        refs,
      );
      return new Map(rows.map((r) => [r.ref, { id: r.communication_id, type: r.communication_type, at: Date.parse(r.at) }]));
    },
  };
}
