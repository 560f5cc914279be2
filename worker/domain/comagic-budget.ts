/*
 * CoMagic's points as its answers report them, and the rule that spends them. Every answer may carry
 * `metadata.limits` (`day_*`, `minute_*`, on newer methods `hour_*` or `{}`; `*_reset` is seconds until the reset:
 * comagic/docs/data_api.txt:127-144, 579-605, comagic/FACTS.md §1.4). Work that can wait (enrichment, cost import,
 * backfill, the CRM tab's journey) never takes the last tenth of the day: that tenth is kept for the feed that
 * makes leads. A snapshot is a hint (another isolate may have spent points since); CoMagic's answer stays the truth.
 * Pure: the client parses answers and passes the time in.
 */

import { COMAGIC_DAY_LIMIT_REPROBE_SECONDS, COMAGIC_HOUR_LIMIT_RETRY_SECONDS, COMAGIC_LIMIT_RETRY_SECONDS } from "./retry-policy";

/** "feed": reads that make or complete leads now. "deferrable": work that may wait for the next day's points. */
export type CoMagicPriority = "feed" | "deferrable";

export type LimitWindow = "day" | "hour" | "minute";
const WINDOWS: readonly LimitWindow[] = ["day", "hour", "minute"];

/** One window of points: `limit` is unknown when an answer gives only what remains. Times are epoch ms. */
export interface BudgetWindow {
  limit: number | null;
  remaining: number;
  resetAt: number;
}

export interface Budget {
  /** "Data API" or "Call API": each has its own points (comagic/FACTS.md §3, "Limits"). */
  api: string;
  seenAt: number;
  windows: Partial<Record<LimitWindow, BudgetWindow>>;
  /** Set by a limit_exceeded longer than an in-place wait: no deferrable call before this time (epoch ms). */
  pausedUntil?: number;
}

/** `metadata.limits` as parsed at the edge: any field may be missing. */
export type RawLimits = Partial<Record<`${LimitWindow}_${"limit" | "remaining" | "reset"}`, number>>;

/**
 * The rule: the last 10% of the day's points are kept for the feed. At 750 points that is 75, about four
 * hours of 10-minute feed runs at three reads each, so leads keep coming while everything else waits for the reset.
 */
export const COMAGIC_DAY_RESERVE = 0.1;

const DEFAULT_RESET_SECONDS: Record<LimitWindow, number> = {
  day: COMAGIC_DAY_LIMIT_REPROBE_SECONDS,
  hour: COMAGIC_HOUR_LIMIT_RETRY_SECONDS,
  minute: COMAGIC_LIMIT_RETRY_SECONDS,
};

/** A snapshot from one answer's limits, or null when they say nothing usable (`{}`, or limits not counted). */
export function budgetFromLimits(api: string, limits: RawLimits, now: number): Budget | null {
  const windows: Budget["windows"] = {};
  for (const window of WINDOWS) {
    const remaining = limits[`${window}_remaining`];
    const reset = limits[`${window}_reset`];
    if (remaining === undefined || reset === undefined) continue;
    windows[window] = { limit: limits[`${window}_limit`] ?? null, remaining, resetAt: now + Math.max(0, reset) * 1000 };
  }
  return Object.keys(windows).length ? { api, seenAt: now, windows } : null;
}

/** Which window a limit_exceeded names (`data.params.limit_type`, data_api.txt:169,225); null when it names none we know. */
export function limitWindowOf(limitType: unknown): LimitWindow | null {
  if (typeof limitType !== "string") return null;
  const named = limitType.toLowerCase();
  return WINDOWS.find((window) => named.includes(window)) ?? null;
}

/**
 * How long a limit_exceeded makes the work wait, in seconds: the named window's reset from the error's own
 * limits, else that window's default; with no window named, the longest spent window's reset, else a minute.
 */
export function limitWaitSeconds(window: LimitWindow | null, limits: RawLimits, now: number): number {
  if (window) {
    const reset = limits[`${window}_reset`];
    return reset === undefined ? DEFAULT_RESET_SECONDS[window] : Math.max(1, Math.ceil(reset));
  }
  const snapshot = budgetFromLimits("", limits, now)?.windows ?? {};
  const spent = WINDOWS.flatMap((w) => {
    const known = snapshot[w];
    return known && known.remaining <= 0 ? [secondsUntil(known.resetAt, now)] : [];
  });
  return Math.max(0, ...spent) || COMAGIC_LIMIT_RETRY_SECONDS;
}

/** The day's points deferrable work leaves alone; with no known limit only a spent day is kept. */
export function dayReserve(limit: number | null): number {
  return limit === null ? 0 : Math.ceil(limit * COMAGIC_DAY_RESERVE);
}

export interface Refusal {
  reason: "day_reserve" | "hour_spent" | "minute_spent" | "paused";
  waitSeconds: number;
}

/**
 * Whether a call of this priority must wait before it is sent, by the last snapshot. Deferrable work waits while
 * the day is within its reserve, an hour or minute window is spent, or a limit_exceeded paused the API; the feed
 * waits for nothing here (a refused read costs no points, and leads must not wait for enrichment's sake).
 * A window whose reset has passed says nothing any more.
 */
export function budgetRefusal(budget: Budget | null, priority: CoMagicPriority, now: number): Refusal | null {
  if (!budget || priority === "feed") return null;
  const refusals: Refusal[] = [];
  if (budget.pausedUntil !== undefined && budget.pausedUntil > now) refusals.push({ reason: "paused", waitSeconds: secondsUntil(budget.pausedUntil, now) });
  const { day, hour, minute } = budget.windows;
  if (day && day.resetAt > now && day.remaining <= dayReserve(day.limit)) refusals.push({ reason: "day_reserve", waitSeconds: secondsUntil(day.resetAt, now) });
  if (hour && hour.resetAt > now && hour.remaining <= 0) refusals.push({ reason: "hour_spent", waitSeconds: secondsUntil(hour.resetAt, now) });
  if (minute && minute.resetAt > now && minute.remaining <= 0) refusals.push({ reason: "minute_spent", waitSeconds: secondsUntil(minute.resetAt, now) });
  return refusals.reduce<Refusal | null>((longest, r) => (longest && longest.waitSeconds >= r.waitSeconds ? longest : r), null);
}

/** Seconds until a spent minute window resets, or 0 when it is not known to be spent. */
export function minuteWaitSeconds(budget: Budget | null, now: number): number {
  const minute = budget?.windows.minute;
  return minute && minute.remaining <= 0 && minute.resetAt > now ? secondsUntil(minute.resetAt, now) : 0;
}

function secondsUntil(at: number, now: number): number {
  return Math.max(0, Math.ceil((at - now) / 1000));
}
