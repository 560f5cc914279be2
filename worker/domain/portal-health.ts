/*
 * A portal's health, judged from what the deployment knows about it. The rules, worst first:
 *   failing   its settings do not parse; or the CoMagic feed has failed for more than 3 feed intervals (no success
 *             since, or none ever); or the day's Data API points are out (none left, and the reset still to come);
 *   degraded  dead letters wait for a replay; or notifications stopped: none for 24 h while the feed's last read
 *             found calls ("notifications stopped while CoMagic's reports show calls"); or the report's deals were
 *             last synced more than a day ago; or Yandex Metrica or GA4 refused conversions today (UTC day: a token,
 *             counter or secret a person must fix; a refused conversion is not sent again, so the day clears it);
 *   ok        otherwise.
 * Each reason is a code with its facts, failing ones first; the words are in i18n (`agency.reasons`), in the
 * reader's language (healthReasonText). Pure: the caller reads the stores (worker/portal-overview.ts) and passes
 * the time.
 */
import type { Messages } from "../i18n/en";

export const HEALTH_STATUSES = ["ok", "degraded", "failing"] as const;
export type HealthStatus = (typeof HEALTH_STATUSES)[number];

/** One failed read is a passing fault; three intervals without a success are not (as the admin's /health warns). */
export const FEED_FAILING_INTERVALS = 3;
/** A working CoMagic account notifies each call within seconds; a day without one while its reports show calls is not chance. */
export const NOTIFICATION_SILENCE_MS = 24 * 3_600_000;
/** The cron syncs the report's deals every 5 minutes; a day behind means it stopped. */
export const REPORT_STALE_MS = 24 * 3_600_000;

export interface HealthFacts {
  /** The settings named as missing or invalid, or null when they parse. */
  invalidSettings: string[] | null;
  /** The feed's state (storage/feed-state.ts), or null when it has none to judge (no Data API, never ran). */
  /** `callsSeenAt`: when a read of the feed last found calls (it stays until one finds calls again, so the rule below holds still). */
  feed: { lastSuccessAt: string | null; lastError: string | null; callsSeenAt: string | null; intervalMinutes: number } | null;
  /** The last CoMagic notification of any kind (storage/portal-activity.ts). */
  lastNotificationAt: string | null;
  deadLettersWaiting: number;
  /** The Data API's day window as CoMagic's last answer left it (storage/comagic-budget.ts), or null. */
  points: { remaining: number; resetAt: string } | null;
  /** When the report's deals were last synced through (`deals.modified_since`), or null before the first sync. */
  reportSyncedAt: string | null;
  /** Conversions each destination refused for good today (storage/conversions.ts `failed`); 0 where it is off. */
  conversionsRefusedToday: Record<ConversionDestination, number>;
}

/** Where offline conversions go (issue #25). */
export type ConversionDestination = "metrica" | "ga4";

export type HealthReason =
  | { code: "settings_invalid"; status: "failing"; settings: string[] }
  | { code: "feed_failing"; status: "failing"; minutesSinceSuccess: number | null; error: string }
  | { code: "points_out"; status: "failing"; minutesToReset: number }
  | { code: "dead_letters"; status: "degraded"; count: number }
  | { code: "notifications_stopped"; status: "degraded"; minutesSinceNotification: number | null; minutesSinceCalls: number }
  | { code: "report_stale"; status: "degraded"; minutesSinceSync: number }
  | { code: "conversions_refused"; status: "degraded"; destination: ConversionDestination; count: number };

export interface PortalHealth {
  status: HealthStatus;
  reasons: HealthReason[];
}

const minutesBetween = (later: number, earlier: number) => Math.max(0, Math.floor((later - earlier) / 60_000));

export function portalHealth(facts: HealthFacts, now: Date): PortalHealth {
  const at = now.getTime();
  const reasons: HealthReason[] = [];
  if (facts.invalidSettings) reasons.push({ code: "settings_invalid", status: "failing", settings: facts.invalidSettings });
  const feed = facts.feed;
  if (feed?.lastError) {
    const lastSuccess = feed.lastSuccessAt ? Date.parse(feed.lastSuccessAt) : null;
    if (lastSuccess === null || at - lastSuccess > FEED_FAILING_INTERVALS * feed.intervalMinutes * 60_000) {
      reasons.push({ code: "feed_failing", status: "failing", minutesSinceSuccess: lastSuccess === null ? null : minutesBetween(at, lastSuccess), error: feed.lastError });
    }
  }
  if (facts.points && facts.points.remaining <= 0 && Date.parse(facts.points.resetAt) > at) {
    reasons.push({ code: "points_out", status: "failing", minutesToReset: Math.ceil((Date.parse(facts.points.resetAt) - at) / 60_000) });
  }
  if (facts.deadLettersWaiting > 0) reasons.push({ code: "dead_letters", status: "degraded", count: facts.deadLettersWaiting });
  // Compared with when the feed last found calls, not with its last read alone: a quiet read must not clear the alarm.
  const callsSeen = feed?.callsSeenAt ? Date.parse(feed.callsSeenAt) : null;
  const lastNotification = facts.lastNotificationAt ? Date.parse(facts.lastNotificationAt) : null;
  if (callsSeen !== null && (lastNotification === null || callsSeen - lastNotification > NOTIFICATION_SILENCE_MS)) {
    reasons.push({
      code: "notifications_stopped",
      status: "degraded",
      minutesSinceNotification: lastNotification === null ? null : minutesBetween(at, lastNotification),
      minutesSinceCalls: minutesBetween(at, callsSeen),
    });
  }
  const synced = facts.reportSyncedAt ? Date.parse(facts.reportSyncedAt) : null;
  if (synced !== null && at - synced > REPORT_STALE_MS) reasons.push({ code: "report_stale", status: "degraded", minutesSinceSync: minutesBetween(at, synced) });
  for (const destination of ["metrica", "ga4"] as const) {
    const count = facts.conversionsRefusedToday[destination];
    if (count > 0) reasons.push({ code: "conversions_refused", status: "degraded", destination, count });
  }
  const status = reasons.some((r) => r.status === "failing") ? "failing" : reasons.length ? "degraded" : "ok";
  return { status, reasons };
}

/** Worse first: failing, degraded, ok. */
export function worseFirst(a: HealthStatus, b: HealthStatus): number {
  return HEALTH_STATUSES.indexOf(b) - HEALTH_STATUSES.indexOf(a);
}

/** A reason in the reader's words (`agency.reasons` of en.ts or ru.ts). */
export function healthReasonText(reason: HealthReason, words: Messages["agency"]["reasons"]): string {
  switch (reason.code) {
    case "settings_invalid":
      return words.settings_invalid(reason.settings);
    case "feed_failing":
      return words.feed_failing(reason.minutesSinceSuccess, reason.error);
    case "points_out":
      return words.points_out(reason.minutesToReset);
    case "dead_letters":
      return words.dead_letters(reason.count);
    case "notifications_stopped":
      return words.notifications_stopped(reason.minutesSinceNotification, reason.minutesSinceCalls);
    case "report_stale":
      return words.report_stale(reason.minutesSinceSync);
    case "conversions_refused":
      return words.conversions_refused(reason.destination, reason.count);
  }
}
