import * as z from "zod";
import { buildReport, COST_GROUPING, rangeInstants, type Report, type ReportFilters } from "../domain/attribution-report";
import type { Messages } from "../i18n";
import type { AttributionStore } from "../storage/attribution-store";
import { type AccessRefusal, verifiedUser } from "./app-auth";
import type { BitrixClient } from "./client";
import { signClaims, verifyClaims } from "./tab-token";

/*
 * Who may see the attribution report: company-wide figures, so the portal's administrators and the users in
 * REPORT_USER_IDS. The app page proves the user with Bitrix24 (app.info + profile); the page then carries a
 * signed report token for its filters, export and refresh, so later requests need no Bitrix24 call.
 */

export const reportClaimsSchema = z.object({
  purpose: z.literal("report"),
  memberId: z.string(),
  userId: z.string(),
  lang: z.enum(["ru", "en"]),
  expiresAt: z.number(),
});
export type ReportClaims = z.infer<typeof reportClaimsSchema>;

/** A marketer keeps the report open a while; an hour, then the app is opened again. */
export const REPORT_TOKEN_TTL_SECONDS = 3600;

/** `denied`: a verified user who is neither an administrator nor in REPORT_USER_IDS. */
export type ReportAccess = { kind: "allowed"; userId: string } | { kind: "denied"; userId: string } | { kind: "refused"; refusal: AccessRefusal };

export async function reportAccess(userClient: BitrixClient, appCode: string, reportUserIds: readonly string[]): Promise<ReportAccess> {
  const user = await verifiedUser(userClient, appCode);
  if (!user.ok) return { kind: "refused", refusal: user.refusal };
  const allowed = user.profile.ADMIN === true || reportUserIds.includes(user.profile.ID);
  return { kind: allowed ? "allowed" : "denied", userId: user.profile.ID };
}

export function signReportToken(claims: Omit<ReportClaims, "purpose" | "expiresAt">, keys: readonly string[], now: Date): Promise<string> {
  return signClaims({ purpose: "report", ...claims, expiresAt: Math.floor(now.getTime() / 1000) + REPORT_TOKEN_TTL_SECONDS }, keys);
}

export function verifyReportToken(token: string, keys: readonly string[], now: Date): Promise<ReportClaims | null> {
  return verifyClaims(token, keys, now.getTime() / 1000, reportClaimsSchema, REPORT_TOKEN_TTL_SECONDS);
}

/** The report's figures for the filters, and what the page should say about missing data. */
export async function loadAttributionReport(
  filters: ReportFilters,
  deps: { store: AttributionStore; timeZone: string; hasDataApi: boolean; messages: Messages },
): Promise<{ report: Report; notes: string[] }> {
  const range = rangeInstants(filters.days, deps.timeZone);
  const withCost = filters.grouping === COST_GROUPING;
  const [credits, deals, costs, anyCredits, lastSync, lastCostDay] = await Promise.all([
    deps.store.credits(filters.entity, range, filters.model, filters.grouping),
    deps.store.dealsOf(filters.entity, range),
    withCost ? deps.store.costs(filters.days) : Promise.resolve(null),
    deps.store.hasCredits(filters.entity),
    deps.store.getState("deals.modified_since"),
    deps.store.getState("costs.last_day"),
  ]);
  const m = deps.messages;
  const notes: string[] = [];
  if (!anyCredits) notes.push(m.noCredits);
  else if (credits.length === 0) notes.push(m.noCreditsInPeriod);
  if (anyCredits && lastSync === null) notes.push(m.noDeals);
  if (!withCost) notes.push(m.costOnlyCampaign);
  else if (!deps.hasDataApi) notes.push(m.noDataApi);
  else if (lastCostDay === null || (costs ?? []).length === 0) notes.push(m.costMissing);
  return { report: buildReport(credits, deals, costs), notes };
}
