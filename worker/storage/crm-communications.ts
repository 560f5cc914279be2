/*
 * The CoMagic communication each lead or deal came from (D1 `crm_communications`, by ledger ref): written by the call
 * record job when CoMagic's record of the call that made it is applied (its `communication_id`, which is not the
 * call's session id: FACTS-loop §1.5 "Which id"), read by the deal loop to link a deal without a Data API read of its
 * own. The first one written stays: later calls to the same lead do not move what made it.
 */
import type { DealCommunication } from "../domain/deal-history";
import { ensureSchema } from "./d1-schema";

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
      const found = new Map<string, DealCommunication>();
      const unique = [...new Set(refs)];
      if (unique.length === 0) return found;
      await ensureSchema(db);
      // D1 allows 100 bound parameters a statement.
      for (let i = 0; i < unique.length; i += 90) {
        const part = unique.slice(i, i + 90);
        const { results } = await db
          .prepare(`SELECT ref, communication_id, communication_type, at FROM crm_communications WHERE portal = ? AND ref IN (${part.map(() => "?").join(",")})`)
          .bind(portal, ...part)
          .all<{ ref: string; communication_id: number; communication_type: DealCommunication["type"]; at: string }>();
        for (const r of results) found.set(r.ref, { id: r.communication_id, type: r.communication_type, at: Date.parse(r.at) });
      }
      return found;
    },
  };
}
