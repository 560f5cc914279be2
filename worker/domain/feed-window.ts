import { JOURNEY_WINDOW_DAYS } from "./report-window";

/*
 * When the CoMagic feed reads, and which span. Every read costs a point per report however many rows it brings
 * (comagic/FACTS.md §1.4), so the feed reads every FEED_INTERVAL_MINUTES, not at every cron tick; and CoMagic's
 * reports lag behind its events by an unknown time (FACTS-calls.md §1.3), so each read reaches FEED_OVERLAP_MINUTES
 * back before the cursor: a row that appeared late is still read, and reading a row twice costs nothing (the ledger
 * and the event keys make it one lead).
 */

export interface FeedRules {
  intervalMinutes: number;
  overlapMinutes: number;
}

const MINUTE_MS = 60_000;
const DAY_MS = 86_400_000;
/** Cron ticks are not exact: a read due within this much is taken now rather than a whole tick later. */
const TICK_SLACK_MS = 60_000;
/** An open chat holds the cursor at its start so that it is read again once closed, but not for longer than this. */
export const OPEN_CHAT_HOLD_MS = DAY_MS;

/** The span to read now, or null when the last read was less than an interval ago. */
export function feedWindow(state: { cursor: string | null; lastRunAt: string | null }, now: Date, rules: FeedRules): { from: Date; to: Date } | null {
  const lastRun = state.lastRunAt ? Date.parse(state.lastRunAt) : Number.NaN;
  if (!Number.isNaN(lastRun) && now.getTime() - lastRun < rules.intervalMinutes * MINUTE_MS - TICK_SLACK_MS) return null;
  const cursor = state.cursor ? Date.parse(state.cursor) : Number.NaN;
  // A first read (or one after a lost cursor) looks back one overlap, as far as reconciliation used to.
  const start = Number.isNaN(cursor) ? now.getTime() : Math.min(cursor, now.getTime());
  // CoMagic refuses report spans over "3 months" / "90 days" (FACTS-calls §2): a worker down longer reads the last 89 days.
  const earliest = now.getTime() - (JOURNEY_WINDOW_DAYS - 1) * DAY_MS;
  return { from: new Date(Math.max(start - rules.overlapMinutes * MINUTE_MS, earliest)), to: now };
}

/** Where the next read starts: the end of this one, held back to the start of a chat still open (at most a day). */
export function nextCursor(to: Date, openSince: Date | null): Date {
  if (!openSince || to.getTime() - openSince.getTime() > OPEN_CHAT_HOLD_MS) return to;
  return openSince.getTime() < to.getTime() ? openSince : to;
}
