import { ensureSchema } from "./d1-schema";

const DAY_MS = 86_400_000;
/** Click-to-call tokens live 15 minutes and daily counts a day: a couple of days covers every time zone. */
const CALL_GUARD_DAYS = 2;

/**
 * Removes what D1 no longer needs. Dead letters hold names, phones and emails: they go once older than the
 * retention period, replayed or not. Spent call tokens and old daily counts go after two days.
 */
export async function purgeExpired(db: D1Database, now: Date, deadLetterRetentionDays: number): Promise<{ deadLetters: number }> {
  await ensureSchema(db);
  const lettersBefore = new Date(now.getTime() - deadLetterRetentionDays * DAY_MS).toISOString();
  const guardsBefore = new Date(now.getTime() - CALL_GUARD_DAYS * DAY_MS);
  const [letters] = await db.batch([
    db.prepare("DELETE FROM dead_letters WHERE failed_at < ?").bind(lettersBefore),
    db.prepare("DELETE FROM call_tokens WHERE used_at < ?").bind(guardsBefore.toISOString()),
    db.prepare("DELETE FROM call_counts WHERE day < ?").bind(guardsBefore.toISOString().slice(0, 10)),
    db.prepare("DELETE FROM pending_creates WHERE since < ?").bind(guardsBefore.toISOString()),
  ]);
  return { deadLetters: letters?.meta.changes ?? 0 };
}
