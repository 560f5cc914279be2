import { errorMessage, type Logger } from "../log";
import { ensureSchema } from "./d1-schema";
import { selectAnyOf } from "./d1-lookup";

export interface DeadLetterRecord {
  id: string;
  queue: string;
  jobType: string;
  job: unknown;
  reason: string;
  code: string;
  attempts: number;
  failedAt: string;
  replayedAt: string | null;
  replayCount: number;
  portal: string;
}

interface DeadLetterRow {
  id: string;
  queue: string;
  job_type: string;
  job: string;
  reason: string;
  code: string;
  attempts: number;
  failed_at: string;
  replayed_at: string | null;
  replay_count: number;
  portal: string;
}

const toRecord = (r: DeadLetterRow): DeadLetterRecord => ({
  id: r.id,
  queue: r.queue,
  jobType: r.job_type,
  job: JSON.parse(r.job),
  reason: r.reason,
  code: r.code,
  attempts: r.attempts,
  failedAt: r.failed_at,
  replayedAt: r.replayed_at,
  replayCount: r.replay_count,
  portal: r.portal,
});

/** A failed job as the store keeps it: what the dead-letter queue's letters carry (jobs/schema.ts `DeadLetter`). */
export interface FailedJob {
  job: unknown;
  reason: string;
  code: string;
  attempts: number;
  failedAt: string;
}

/** The deployment's dead letters, each with the portal its job names (a replay goes back to that portal). */
export function deadLetterStore(db: D1Database) {
  return {
    /** Idempotent by message id: the dead-letter queue may deliver a letter twice. */
    async record(letters: { id: string; queue: string; jobType: string; portal: string; letter: FailedJob }[]): Promise<void> {
      if (letters.length === 0) return;
      await ensureSchema(db);
      await db.batch(
        letters.map(({ id, queue, jobType, portal, letter }) =>
          db
            .prepare("INSERT OR IGNORE INTO dead_letters (id, queue, job_type, job, reason, code, attempts, failed_at, portal) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)")
            .bind(id, queue, jobType, JSON.stringify(letter.job), letter.reason.slice(0, 2000), letter.code, letter.attempts, letter.failedAt, portal),
        ),
      );
    },
    async list(options: { limit: number; pendingOnly: boolean; portal?: string }): Promise<DeadLetterRecord[]> {
      await ensureSchema(db);
      const where = [options.pendingOnly ? "replayed_at IS NULL" : null, options.portal ? "portal = ?" : null].filter(Boolean);
      const { results } = await db
        .prepare(`SELECT * FROM dead_letters ${where.length ? `WHERE ${where.join(" AND ")}` : ""} ORDER BY failed_at DESC, id LIMIT ?`)
        .bind(...(options.portal ? [options.portal] : []), options.limit)
        .all<DeadLetterRow>();
      return results.map(toRecord);
    },
    async get(id: string): Promise<DeadLetterRecord | null> {
      await ensureSchema(db);
      const row = await db.prepare("SELECT * FROM dead_letters WHERE id = ?").bind(id).first<DeadLetterRow>();
      return row ? toRecord(row) : null;
    },
    async markReplayed(id: string, at: Date): Promise<void> {
      await db.prepare("UPDATE dead_letters SET replayed_at = ?, replay_count = replay_count + 1 WHERE id = ?").bind(at.toISOString(), id).run();
    },
  };
}
export type DeadLetterStore = ReturnType<typeof deadLetterStore>;

/** One event written to Bitrix24: its key, what it landed on, and the contact keys (`phone:+7…`, `email:…`) tied to it. */
export interface AppliedEvent {
  key: string;
  /** The ledger ref of what the event wrote: a lead (a bare id), another entity (`deal:7`, domain/crm-entity.ts ledgerRef), or a telephony call id. */
  ref: string;
  /** What the contact keys are tied to, when not `ref`: a deal's contact, which the next event must find. */
  contactKeysRef?: string;
  contactKeys?: readonly string[];
}

/**
 * The ledger of events written to Bitrix24 (keyed like ORIGIN_ID / UF_CRM_COMAGIC_ID), and the entity each
 * contact key was last written to. Bitrix24 indexes a new lead's phone for findbycomm some time after
 * crm.lead.add returns (FACTS.md §7), so a second contact seconds later finds its lead here. It is a hint
 * checked against Bitrix24, never the truth: a deleted or closed lead is not updated.
 */
export interface AppliedEvents {
  find(keys: readonly string[]): Promise<Map<string, string>>;
  findContactKeys(contactKeys: readonly string[]): Promise<Map<string, string>>;
  /** Records the events and their contacts, and ends their creates in doubt. */
  record(rows: readonly AppliedEvent[], at: Date): Promise<void>;
  /**
   * Creates in doubt: a crm.lead.add was sent for these contacts and its outcome is not known yet (a timeout,
   * a lost answer). Another event about the same contact waits, or it could make a second lead while
   * Bitrix24's duplicate search has not indexed the first. Entries older than `since` are ignored.
   */
  findPending(contactKeys: readonly string[], since: Date): Promise<Map<string, string>>;
  markPending(rows: readonly { key: string; contactKeys: readonly string[] }[], at: Date): Promise<void>;
  clearPending(keys: readonly string[]): Promise<void>;
  /** The first event written to each of these refs (the one that made the lead or deal), by ref. */
  firstEvents(refs: readonly string[]): Promise<Map<string, { key: string; appliedAt: string }>>;
}

const LOOKUPS = {
  applied: "SELECT key AS k, ref AS v FROM applied_events WHERE portal = ? AND key IN",
  contactKeys: "SELECT contact_key AS k, ref AS v FROM contact_keys WHERE portal = ? AND contact_key IN",
  pending: "SELECT contact_key AS k, event_key AS v FROM pending_creates WHERE portal = ? AND since >= ? AND contact_key IN",
} as const;

async function lookUp(db: D1Database, query: keyof typeof LOOKUPS, values: readonly string[], ...leading: string[]): Promise<Map<string, string>> {
  if (values.length === 0) return new Map();
  await ensureSchema(db);
  const rows = await selectAnyOf<{ k: string; v: string }>(db, (any) => `${LOOKUPS[query]} (${any})`, leading, values);
  return new Map(rows.map((r) => [r.k, r.v]));
}

/** One portal's ledger. */
export function d1AppliedEvents(db: D1Database, portal: string): AppliedEvents {
  return {
    find: (keys) => lookUp(db, "applied", keys, portal),
    findContactKeys: (contactKeys) => lookUp(db, "contactKeys", contactKeys, portal),
    findPending: (contactKeys, since) => lookUp(db, "pending", contactKeys, portal, since.toISOString()),
    async firstEvents(refs) {
      if (refs.length === 0) return new Map();
      await ensureSchema(db);
      const rows = await selectAnyOf<{ ref: string; key: string; applied_at: string }>(
        db,
        (any) => `SELECT ref, key, applied_at FROM applied_events WHERE portal = ? AND ref IN (${any}) ORDER BY applied_at, key`,
        [portal],
        refs,
      );
      const found = new Map<string, { key: string; appliedAt: string }>();
      // Slices come in order each: the earliest of a ref is the first seen in its own slice (a ref is in one slice).
      for (const r of rows) if (!found.has(r.ref)) found.set(r.ref, { key: r.key, appliedAt: r.applied_at });
      return found;
    },
    async markPending(rows, at) {
      const statements = rows.flatMap((r) =>
        r.contactKeys.map((contactKey) =>
          db
            .prepare(
              "INSERT INTO pending_creates (portal, contact_key, event_key, since) VALUES (?, ?, ?, ?) ON CONFLICT (portal, contact_key) DO UPDATE SET event_key = excluded.event_key, since = excluded.since",
            )
            .bind(portal, contactKey, r.key, at.toISOString()),
        ),
      );
      if (statements.length === 0) return;
      await ensureSchema(db);
      await db.batch(statements);
    },
    async clearPending(keys) {
      if (keys.length === 0) return;
      await ensureSchema(db);
      await db.batch(keys.map((key) => db.prepare("DELETE FROM pending_creates WHERE portal = ? AND event_key = ?").bind(portal, key)));
    },
    async record(rows, at) {
      if (rows.length === 0) return;
      await ensureSchema(db);
      const when = at.toISOString();
      // One batch is one transaction: the event and its contacts are recorded together or not at all.
      await db.batch(
        rows.flatMap((r) => [
          db.prepare("INSERT OR IGNORE INTO applied_events (portal, key, ref, applied_at) VALUES (?, ?, ?, ?)").bind(portal, r.key, r.ref, when),
          db.prepare("DELETE FROM pending_creates WHERE portal = ? AND event_key = ?").bind(portal, r.key),
          ...(r.contactKeys ?? []).map((contactKey) =>
            db
              .prepare(
                "INSERT INTO contact_keys (portal, contact_key, ref, written_at) VALUES (?, ?, ?, ?) ON CONFLICT (portal, contact_key) DO UPDATE SET ref = excluded.ref, written_at = excluded.written_at",
              )
              .bind(portal, contactKey, r.contactKeysRef ?? r.ref, when),
          ),
        ]),
      );
    },
  };
}

/** The ledger's answer for these keys; when D1 cannot answer, an empty one (logged): Bitrix24 is asked anyway. */
export async function findInLedger(ledger: AppliedEvents | null, keys: readonly string[], log: Logger): Promise<Map<string, string>> {
  if (!ledger) return new Map();
  return ledger.find(keys).catch((error: unknown) => {
    log.warn("ledger.unavailable", { error: errorMessage(error) });
    return new Map<string, string>();
  });
}

/** Bitrix24 has the writes and stays the source of truth, so a failed ledger write is logged, never retried. */
export async function recordInLedger(ledger: AppliedEvents | null, rows: readonly AppliedEvent[], at: Date, log: Logger): Promise<void> {
  await ledger?.record(rows, at).catch((error: unknown) => {
    log.warn("ledger.record_failed", { error: errorMessage(error) });
  });
}
