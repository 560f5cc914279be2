/*
 * Website forms sent to CoMagic as offline messages (COMAGIC_FORMS, issue #25 §2), per portal and ledger key
 * (`form-…`): the message built when the form came, `waiting` until its lead is in Bitrix24 (its key in the ledger)
 * and CoMagic took it, then `sent` with CoMagic's id, or `rejected` with CoMagic's reason. One row a key: a form
 * posted twice is sent once, since CoMagic does not document what it does with a repeated ext_id (FACTS-loop §2).
 * The deal loop reads the id to link a form's deal. D1 table `form_uploads`; docs/storage.md has an example row.
 */
import type { OfflineMessage } from "../domain/offline-message";
import { ensureSchema } from "./d1-schema";
import { selectAnyOf } from "./d1-lookup";

export interface FormUploadStore {
  /** A form to send once its lead is written; a key already known is left as it is. */
  add(key: string, message: OfflineMessage, at: Date): Promise<void>;
  /** Waiting forms whose lead is in Bitrix24 (their key in the ledger), the oldest first, and the oldest's time. */
  landed(limit: number): Promise<{ key: string; message: OfflineMessage; createdAt: string }[]>;
  settle(outcomes: readonly { key: string; state: "sent" | "rejected"; comagicId?: number; reason?: string }[], at: Date): Promise<void>;
  /** CoMagic's offline message id of each sent form, by key. */
  comagicIds(keys: readonly string[]): Promise<Map<string, number>>;
}

export function d1FormUploads(db: D1Database, portal: string): FormUploadStore {
  return {
    async add(key, message, at) {
      await ensureSchema(db);
      await db
        .prepare("INSERT OR IGNORE INTO form_uploads (portal, key, message, state, created_at) VALUES (?, ?, ?, 'waiting', ?)")
        .bind(portal, key, JSON.stringify(message), at.toISOString())
        .run();
    },
    async landed(limit) {
      await ensureSchema(db);
      const { results } = await db
        .prepare(
          `SELECT f.key, f.message, f.created_at FROM form_uploads f JOIN applied_events a ON a.portal = f.portal AND a.key = f.key
           WHERE f.portal = ? AND f.state = 'waiting' ORDER BY f.created_at LIMIT ?`,
        )
        .bind(portal, limit)
        .all<{ key: string; message: string; created_at: string }>();
      return results.map((r) => ({ key: r.key, message: JSON.parse(r.message) as OfflineMessage, createdAt: r.created_at }));
    },
    async settle(outcomes, at) {
      if (outcomes.length === 0) return;
      await ensureSchema(db);
      await db.batch(
        outcomes.map((o) =>
          db
            .prepare("UPDATE form_uploads SET state = ?, comagic_id = ?, reason = ?, sent_at = ? WHERE portal = ? AND key = ?")
            .bind(o.state, o.comagicId ?? null, o.reason ?? null, at.toISOString(), portal, o.key),
        ),
      );
    },
    async comagicIds(keys) {
      if (keys.length === 0) return new Map();
      await ensureSchema(db);
      const rows = await selectAnyOf<{ key: string; comagic_id: number }>(
        db,
        (any) => `SELECT key, comagic_id FROM form_uploads WHERE portal = ? AND state = 'sent' AND key IN (${any})`,
        [portal],
        keys,
      );
      return new Map(rows.map((r) => [r.key, r.comagic_id]));
    },
  };
}
