import * as z from "zod";
import { buildReport, COST_GROUPING, rangeInstants, type Report, type ReportFilters } from "../domain/attribution-report";
import type { Messages } from "../i18n";
import type { ConversionStore } from "../storage/conversions";
import type { DealJournalStore } from "../storage/deal-journal";
import type { AttributionStore } from "../storage/attribution-store";
import type { ReportSessionStore } from "../storage/report-sessions";
import { type AccessRefusal, verifiedUser } from "../bitrix/app-auth";
import type { BitrixClient } from "../bitrix/client";
import { signClaims, verifyClaims } from "./tab-token";

/*
 * Who may see the attribution report: company-wide figures, so the portal's administrators and the users in
 * REPORT_USER_IDS. The app page proves the user with Bitrix24 (app.info + profile); the page then carries a
 * signed report token (in POST bodies, never in a URL) for its filters, export and refresh. A token whose check
 * is older than REPORT_RECHECK_SECONDS is checked again with Bitrix24, with the token the page was opened
 * with (kept by the worker, see storage/report-sessions.ts), so a user who lost admin rights, left
 * REPORT_USER_IDS or left the company loses the report within minutes, not at the end of the hour.
 */

export const reportClaimsSchema = z.object({
  /** The page the token opens: the report (administrators and REPORT_USER_IDS), or the settings (administrators only). */
  purpose: z.enum(["report", "settings"]),
  memberId: z.string(),
  userId: z.string(),
  lang: z.enum(["ru", "en"]),
  /** The report session: where the worker keeps the user's Bitrix24 token for the re-checks. */
  sid: z.string().min(16),
  /** Unix seconds: when Bitrix24 last confirmed the user's access. */
  checkedAt: z.number(),
  expiresAt: z.number(),
});
export type ReportClaims = z.infer<typeof reportClaimsSchema>;

/** A marketer keeps the report open a while; an hour (the life of the placement's AUTH_ID), then the app is opened again. */
export const REPORT_TOKEN_TTL_SECONDS = 3600;
/** How long one confirmation of access is trusted (issue #21): a lost right takes effect within five minutes. */
export const REPORT_RECHECK_SECONDS = 5 * 60;

/** `denied`: a verified user who is neither an administrator nor in REPORT_USER_IDS. */
export type ReportAccess = { kind: "allowed"; userId: string } | { kind: "denied"; userId: string } | { kind: "refused"; refusal: AccessRefusal };

export async function reportAccess(userClient: BitrixClient, appCode: string, reportUserIds: readonly string[]): Promise<ReportAccess> {
  const user = await verifiedUser(userClient, appCode);
  if (!user.ok) return { kind: "refused", refusal: user.refusal };
  const allowed = user.profile.ADMIN === true || reportUserIds.includes(user.profile.ID);
  return { kind: allowed ? "allowed" : "denied", userId: user.profile.ID };
}

const seconds = (date: Date) => Math.floor(date.getTime() / 1000);

/** A new report token: access confirmed now, valid for an hour. */
export async function signReportToken(
  fields: Pick<ReportClaims, "memberId" | "userId" | "lang" | "sid">,
  keys: readonly string[],
  now: Date,
  purpose: ReportClaims["purpose"] = "report",
): Promise<{ token: string; claims: ReportClaims }> {
  const at = seconds(now);
  const claims: ReportClaims = { purpose, ...fields, checkedAt: at, expiresAt: at + REPORT_TOKEN_TTL_SECONDS };
  return { token: await signClaims(claims, keys), claims };
}

/** The token's claims when it is genuine, unexpired and for `purpose`: a report token opens no settings, and back. */
export async function verifyReportToken(token: string, keys: readonly string[], now: Date, purpose: ReportClaims["purpose"] = "report"): Promise<ReportClaims | null> {
  const claims = await verifyClaims(token, keys, now.getTime() / 1000, reportClaimsSchema, REPORT_TOKEN_TTL_SECONDS);
  return claims?.purpose === purpose ? claims : null;
}

/**
 * What a report request may do with its verified token: go on (with the token to give back, renewed after a
 * re-check), or not: `expired` (reopen the app from Bitrix24), `denied` (access lost), `unavailable` (Bitrix24 busy).
 */
export type ReportSession = { kind: "ok"; claims: ReportClaims; token: string; renewed: boolean } | { kind: "expired" } | { kind: "denied" } | { kind: "unavailable" };

/**
 * Once a token's check is REPORT_RECHECK_SECONDS old, asks Bitrix24 again, with the user's own token from
 * the app page, whether the user is still an administrator or in REPORT_USER_IDS. The renewed token keeps the
 * first one's expiry: re-checks never make a page live longer than an hour.
 */
export async function recheckReportAccess(
  claims: ReportClaims,
  token: string,
  deps: {
    keys: readonly string[];
    now: Date;
    sessions: ReportSessionStore;
    /** A client acting with the user's Bitrix24 token on the claims' portal. */
    userClient: (authId: string) => BitrixClient;
    appCode: string;
    reportUserIds: readonly string[];
  },
): Promise<ReportSession> {
  if (seconds(deps.now) - claims.checkedAt < REPORT_RECHECK_SECONDS) return { kind: "ok", claims, token, renewed: false };
  const authId = await deps.sessions.authIdOf(claims.memberId, claims.sid);
  if (!authId) return { kind: "expired" };
  const access = await reportAccess(deps.userClient(authId), deps.appCode, deps.reportUserIds);
  // Bitrix24 refusing the user's token (it expired, or the user was dismissed) sends the user back to Bitrix24.
  if (access.kind === "refused") return access.refusal === "bitrix_unavailable" ? { kind: "unavailable" } : { kind: "expired" };
  // Another user behind the same session cannot happen with a genuine token; treat it as a page to reopen.
  if (access.userId !== claims.userId) return { kind: "expired" };
  if (access.kind === "denied") {
    await deps.sessions.delete(claims.memberId, claims.sid);
    return { kind: "denied" };
  }
  const renewed: ReportClaims = { ...claims, checkedAt: seconds(deps.now) };
  return { kind: "ok", claims: renewed, token: await signClaims(renewed, deps.keys), renewed: true };
}

/** The report's figures for the filters, and what the page should say about missing data. */
export async function loadAttributionReport(
  filters: ReportFilters,
  deps: { store: AttributionStore; timeZone: string; hasDataApi: boolean; messages: Messages; loop?: LoopStores },
): Promise<{ report: Report; notes: string[] }> {
  const range = rangeInstants(filters.days, deps.timeZone);
  const withCost = filters.grouping === COST_GROUPING;
  const [credits, deals, costs, anyCredits, lastSync, resume, lastCostDay] = await Promise.all([
    deps.store.credits(filters.entity, range, filters.model, filters.grouping),
    deps.store.dealsOf(filters.entity, range),
    withCost ? deps.store.costs(filters.days) : Promise.resolve(null),
    deps.store.hasCredits(filters.entity),
    deps.store.getState("deals.modified_since"),
    deps.store.getState("deals.resume"),
    deps.store.getState("costs.last_day"),
  ]);
  const m = deps.messages;
  const notes: string[] = [];
  if (!anyCredits) notes.push(m.noCredits);
  else if (credits.length === 0) notes.push(m.noCreditsInPeriod);
  if (anyCredits && lastSync === null) notes.push(m.noDeals);
  // A sync stopped by its page cap: deals changed since it began are not all read yet.
  else if (resume) notes.push(m.dealsBehind);
  if (!withCost) notes.push(m.costOnlyCampaign);
  else if (!deps.hasDataApi) notes.push(m.noDataApi);
  else if (lastCostDay === null || (costs ?? []).length === 0) notes.push(m.costMissing);
  notes.push(...(await loopNotes(deps.loop, m)));
  return { report: buildReport(credits, deals, costs), notes };
}

/** Where the loop's outcome is read from: the deals sent to CoMagic, and Metrica's conversions (issue #25). */
export interface LoopStores {
  deals: DealJournalStore | null;
  conversions: ConversionStore | null;
}

/** A week of Metrica's outcome by day, and what became of the deals sent to CoMagic: the report's notes say it. */
async function loopNotes(loop: LoopStores | undefined, m: Messages): Promise<string[]> {
  const notes: string[] = [];
  const deals = await loop?.deals?.summary();
  if (deals && deals.sent + deals.waiting + deals.rejected > 0) {
    notes.push(m.dealsToComagic(deals.sent, deals.waiting, deals.rejected));
    if (deals.notLinked) notes.push(m.dealsNotLinked(deals.notLinked));
  }
  const days = (await loop?.conversions?.outcomes("metrica", new Date(Date.now() - 6 * 86_400_000))) ?? [];
  for (const day of days) notes.push(m.metricaDay(day.day, day));
  return notes;
}
