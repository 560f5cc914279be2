/**
 * When what waits for CoMagic goes (deal changes, website forms: issue #25). Each upload costs a Data API point
 * whatever it holds (FACTS-loop §1.5), so changes wait to go together, but never past their feed interval: a full
 * batch goes at once; otherwise the oldest goes at the last tick that still lands it within FEED_INTERVAL_MINUTES.
 * Pure: times are arguments.
 */

/** The cron's period: what a tick does not send waits this long for the next. */
export const TICK_MINUTES = 5;

export function sendDue(oldestAt: string | undefined, waiting: number, batchSize: number, now: Date, intervalMinutes: number): boolean {
  if (waiting === 0) return false;
  if (waiting >= batchSize) return true;
  const holdMs = Math.max(0, intervalMinutes - TICK_MINUTES) * 60_000;
  if (holdMs === 0) return true;
  return Date.parse(oldestAt ?? "") <= now.getTime() - holdMs;
}
