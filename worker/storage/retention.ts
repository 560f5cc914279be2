/**
 * What D1 keeps no longer, removed by the cron. Every run: dead letters (they hold names, phones and emails) once
 * older than DEAD_LETTER_RETENTION_DAYS, replayed or not; spent call tokens, old daily counts and stale pending
 * creates after two days. Once a day (the run at 00:00–00:04 UTC): the per-call history that would otherwise fill
 * the 10 GB database (docs/performance.md "Where each limit is reached"): ledger rows after LEDGER_RETENTION_DAYS,
 * the report's visits, visitors and ad costs after REPORT_RETENTION_DAYS, the agency page's activity counts after
 * ACTIVITY_RETENTION_DAYS (storage/portal-activity.ts). Those tables are keyed by portal, not
 * time, so each prune scans them: once a day, in slices, so no statement holds D1's single writer for long.
 */
import { ensureSchema } from "./d1-schema";
import { ACTIVITY_RETENTION_DAYS } from "./portal-activity";

const DAY_MS = 86_400_000;
/** Click-to-call tokens live 15 minutes and daily counts a day: a couple of days covers every time zone. */
const CALL_GUARD_DAYS = 2;
/** Rows one statement deletes, and statements a table gets a day: 500,000 rows a table a day at most. */
const SLICE = 10_000;
const MAX_SLICES = 50;

export interface RetentionDays {
  deadLetters: number;
  ledger: number;
  report: number;
}

/** The per-call history each daily prune removes: table, the column that dates a row, and which retention applies. */
const HISTORY = [
  { table: "applied_events", dated: "applied_at", keep: "ledger" },
  { table: "contact_keys", dated: "written_at", keep: "ledger" },
  { table: "crm_visitors", dated: "written_at", keep: "report" },
  { table: "attribution_touches", dated: "created_at", keep: "report" },
  { table: "ad_costs", dated: "day", keep: "report" },
  { table: "portal_activity", dated: "day", keep: "activity" },
  // A deal unchanged for the report's span is not reported on any more; its conversions neither.
  { table: "deal_journal", dated: "changed_at", keep: "report" },
  { table: "conversions", dated: "at", keep: "report" },
  { table: "metrica_uploads", dated: "created_at", keep: "report" },
  // A form is sent within minutes, or its lead never came: the ledger's span is plenty.
  { table: "form_uploads", dated: "created_at", keep: "ledger" },
  // A communication older than 30 days before its deal is not linked anyway (FACTS-loop §1.5).
  { table: "crm_communications", dated: "at", keep: "ledger" },
  // Metrica links nothing more than 21 days after the visit (FACTS-loop §3.4): the ledger's span is plenty.
  { table: "form_visitors", dated: "at", keep: "ledger" },
] as const;

/** Whether a cron run at `now` is the day's one that prunes the history: the first run of the UTC day (crons run at least every 5 minutes). */
export function prunesHistory(now: Date): boolean {
  return now.getUTCHours() === 0 && now.getUTCMinutes() < 5;
}

export async function purgeExpired(db: D1Database, now: Date, days: RetentionDays): Promise<Record<string, number>> {
  await ensureSchema(db);
  const lettersBefore = new Date(now.getTime() - days.deadLetters * DAY_MS).toISOString();
  const guardsBefore = new Date(now.getTime() - CALL_GUARD_DAYS * DAY_MS);
  const [letters] = await db.batch([
    db.prepare("DELETE FROM dead_letters WHERE failed_at < ?").bind(lettersBefore),
    db.prepare("DELETE FROM call_tokens WHERE used_at < ?").bind(guardsBefore.toISOString()),
    db.prepare("DELETE FROM call_counts WHERE day < ?").bind(guardsBefore.toISOString().slice(0, 10)),
    db.prepare("DELETE FROM pending_creates WHERE since < ?").bind(guardsBefore.toISOString()),
  ]);
  const purged: Record<string, number> = { deadLetters: letters?.meta.changes ?? 0 };
  if (!prunesHistory(now)) return purged;
  for (const { table, dated, keep } of HISTORY) {
    // ISO timestamps and YYYY-MM-DD days compare as text; a day column gets the cut-off's day.
    const cutoff = new Date(now.getTime() - { ...days, activity: ACTIVITY_RETENTION_DAYS }[keep] * DAY_MS).toISOString();
    const before = dated === "day" ? cutoff.slice(0, 10) : cutoff;
    purged[table] = await deleteInSlices(db, `DELETE FROM ${table} WHERE rowid IN (SELECT rowid FROM ${table} WHERE ${dated} < ? LIMIT ${SLICE})`, before);
  }
  return purged;
}

async function deleteInSlices(db: D1Database, sql: string, before: string): Promise<number> {
  let deleted = 0;
  for (let slice = 0; slice < MAX_SLICES; slice++) {
    const changes = (await db.prepare(sql).bind(before).run()).meta.changes ?? 0;
    deleted += changes;
    if (changes < SLICE) break;
  }
  return deleted;
}
