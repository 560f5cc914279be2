import { formatComagicDateTime, parseComagicDateTime } from "./comagic-time";

/** A span of a CoMagic report, read in the account's time zone (reports speak local wall-clock time). */
export interface ReportWindow {
  from: Date;
  to: Date;
  timeZone: string;
}

/**
 * CoMagic refuses report intervals over "3 months" (one page) or "90 days" (two others): FACTS-calls §2.
 * Three calendar months can be as short as 89 days (1 Feb → 1 May), so 89 days satisfies both readings.
 */
export const JOURNEY_WINDOW_DAYS = 89;

const DAY_MS = 86_400_000;

/**
 * The visitor-journey window ending at `now`: exactly JOURNEY_WINDOW_DAYS of the account's wall clock, so a
 * daylight-saving change inside it can never stretch the interval CoMagic measures past the limit.
 */
export function journeyWindow(now: Date, timeZone: string): ReportWindow {
  const localTo = formatComagicDateTime(now, timeZone);
  const asUtc = Date.parse(`${localTo.replace(" ", "T")}Z`) - JOURNEY_WINDOW_DAYS * DAY_MS;
  const localFrom = new Date(asUtc).toISOString().slice(0, 19).replace("T", " ");
  const from = parseComagicDateTime(localFrom, timeZone) ?? new Date(now.getTime() - JOURNEY_WINDOW_DAYS * DAY_MS);
  return { from, to: now, timeZone };
}
