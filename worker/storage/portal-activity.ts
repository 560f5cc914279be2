/*
 * What arrived for each portal: per UTC day and source (calls, chats, requests, forms) the events received and when
 * the last one came, and the last CoMagic notification of any kind (an ignored one too: it shows that notifications
 * still flow). The agency page shows it (events today, this week, the last per source), and the health rule reads it
 * ("notifications stopped": domain/portal-health.ts). One D1 table, `portal_activity`, one row per portal, day and
 * source (`notification` for the notifications), written where events arrive: the CoMagic webhook and the forms
 * routes, and the feed for what it queues. Each of those makes one upsert (one statement, however many rows),
 * and only as best effort: the counts are for people, so a D1 failure is logged (recordQuietly) and never fails
 * what arrived. Rows are kept ACTIVITY_RETENTION_DAYS, pruned by the cron's daily part (storage/retention.ts).
 */
import { errorMessage, type Logger } from "../log";
import { ensureSchema } from "./d1-schema";

export const ACTIVITY_SOURCES = ["call", "chat", "request", "form"] as const;
export type ActivitySource = (typeof ACTIVITY_SOURCES)[number];

/** A week of counts and a month of "last event", with a few days' room for the daily prune. */
export const ACTIVITY_RETENTION_DAYS = 35;
/** The row that holds the notifications (any kind): not an event source of its own. */
const NOTIFICATION = "notification";
const DAY_MS = 86_400_000;
/** "This week": today and the six UTC days before it. */
const WEEK_DAYS = 7;

export interface ActivitySummary {
  today: Record<ActivitySource, number>;
  week: Record<ActivitySource, number>;
  /** ISO time of the last event per source within ACTIVITY_RETENTION_DAYS, or null. */
  last: Record<ActivitySource, string | null>;
  lastNotificationAt: string | null;
}

export interface PortalActivity {
  /** One event of `source` arrived at `at`. */
  record(source: ActivitySource, at: Date): Promise<void>;
  /** A CoMagic notification arrived at `at`; with `source`, it brought an event of that source (the same one upsert). */
  recordNotification(at: Date, source?: ActivitySource): Promise<void>;
  /** Several events at once (the feed's), in one upsert. */
  recordEvents(counts: Partial<Record<ActivitySource, number>>, at: Date): Promise<void>;
  summary(now: Date): Promise<ActivitySummary>;
}

const utcDay = (at: Date) => at.toISOString().slice(0, 10);
const perSource = <T>(value: T) => Object.fromEntries(ACTIVITY_SOURCES.map((s) => [s, value])) as Record<ActivitySource, T>;

export function d1PortalActivity(db: D1Database, portal: string): PortalActivity {
  /** One statement for every row: a request that brings a notification and an event still writes once. */
  async function upsert(rows: readonly { source: string; count: number }[], at: Date): Promise<void> {
    const counted = rows.filter((r) => r.count > 0);
    if (counted.length === 0) return;
    await ensureSchema(db);
    const day = utcDay(at);
    const when = at.toISOString();
    await db
      .prepare(
        `INSERT INTO portal_activity (portal, day, source, count, last_at) VALUES ${counted.map(() => "(?, ?, ?, ?, ?)").join(", ")}
         ON CONFLICT (portal, day, source) DO UPDATE SET count = count + excluded.count, last_at = max(last_at, excluded.last_at)`,
      )
      .bind(...counted.flatMap((r) => [portal, day, r.source, r.count, when]))
      .run();
  }
  return {
    record: (source, at) => upsert([{ source, count: 1 }], at),
    recordNotification: (at, source) => upsert([{ source: NOTIFICATION, count: 1 }, ...(source ? [{ source, count: 1 }] : [])], at),
    recordEvents: (counts, at) =>
      upsert(
        ACTIVITY_SOURCES.map((source) => ({ source, count: counts[source] ?? 0 })),
        at,
      ),
    async summary(now) {
      await ensureSchema(db);
      const today = utcDay(now);
      const weekStart = utcDay(new Date(now.getTime() - (WEEK_DAYS - 1) * DAY_MS));
      const { results } = await db
        .prepare(
          `SELECT source, sum(CASE WHEN day = ?2 THEN count ELSE 0 END) AS today, sum(CASE WHEN day >= ?3 THEN count ELSE 0 END) AS week, max(last_at) AS last
           FROM portal_activity WHERE portal = ?1 GROUP BY source`,
        )
        .bind(portal, today, weekStart)
        .all<{ source: string; today: number; week: number; last: string | null }>();
      const summary: ActivitySummary = { today: perSource(0), week: perSource(0), last: perSource<string | null>(null), lastNotificationAt: null };
      for (const row of results) {
        if (row.source === NOTIFICATION) summary.lastNotificationAt = row.last;
        else if ((ACTIVITY_SOURCES as readonly string[]).includes(row.source)) {
          const source = row.source as ActivitySource;
          summary.today[source] = row.today;
          summary.week[source] = row.week;
          summary.last[source] = row.last;
        }
      }
      return summary;
    },
  };
}

/** The portal's activity store, or null without D1. */
export function activityOf(env: { DB?: D1Database }, portal: string): PortalActivity | null {
  return env.DB ? d1PortalActivity(env.DB, portal) : null;
}

/** Runs a write of the counts and logs its failure instead of throwing: what arrived is handled all the same. */
export async function recordQuietly(write: Promise<void> | undefined, log: Logger): Promise<void> {
  try {
    await write;
  } catch (error) {
    log.warn("activity.record_failed", { error: errorMessage(error) });
  }
}
