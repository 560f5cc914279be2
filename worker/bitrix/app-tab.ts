import type { CountryCode } from "libphonenumber-js/core";
import * as z from "zod";
import { CoMagicError, type CoMagicRpcClient } from "../comagic/data-api";
import { loadJourney } from "../comagic/reports";
import { checkCallNumber } from "../domain/call-policy";
import { LEAD_FIELD } from "../domain/lead-plan";
import { normalizePhone } from "../domain/phone";
import type { Journey } from "../domain/touchpoints";
import { AppError } from "../errors";
import { errorMessage } from "../log";
import type { JourneyStore } from "../storage/journeys";
import { outcome, verifiedUser } from "./app-auth";
import type { TAB_PLACEMENTS } from "./app-install";
import type { BitrixClient } from "./client";
import { TAB_TOKEN_TTL_SECONDS, type TabClaims } from "./tab-token";

const idString = z.union([z.string(), z.number()]).transform(String);
export const leadSchema = z
  .object({
    ID: idString,
    TITLE: z.string().nullish(),
    DATE_CREATE: z.string().nullish(),
    PHONE: z.array(z.object({ VALUE: z.string() }).loose()).nullish(),
    [LEAD_FIELD.visitorId]: z.union([z.string(), z.number()]).nullish(),
  })
  .loose();
const dealSchema = z.object({ ID: idString, LEAD_ID: z.union([z.string(), z.number()]).nullish() }).loose();

export type Lead = z.infer<typeof leadSchema>;

/** The lead's phones, in E.164, in the order the card lists them. */
export function leadPhones(lead: Lead, region: CountryCode): string[] {
  return (lead.PHONE ?? []).flatMap((p) => normalizePhone(p.VALUE, region) ?? []);
}

export type JourneyState =
  | { kind: "ready"; journey: Journey }
  | { kind: "no_visitor" }
  | { kind: "not_loaded"; reason: string }
  | { kind: "unreachable"; reason: string };

export interface TabView {
  lead: Lead;
  userId: string;
  userName: string;
  journeyState: JourneyState;
  claims: TabClaims;
  /** The number Call would dial, shown before the call; `refusal` says in words why it may not be called. */
  callNumber: { phone: string; refusal: string | null } | null;
}

/** Everything the CoMagic tab shows, for a verified user, reading only what that user may read. */
export async function openTab(
  request: { memberId: string; placement: (typeof TAB_PLACEMENTS)[number]; entityId: string },
  deps: {
    userClient: BitrixClient;
    appCode: string;
    journeys: JourneyStore | null;
    dataApi: CoMagicRpcClient | null;
    timeZone: string;
    defaultRegion: CountryCode;
    callCountries: ReadonlySet<string>;
    now: () => Date;
    nonce: () => string;
  },
): Promise<TabView> {
  const method = request.placement === "CRM_DEAL_DETAIL_TAB" ? "crm.deal.get" : "crm.lead.get";
  const { profile, results } = await verifiedUser(deps.userClient, deps.appCode, { entity: { method, params: { id: request.entityId } } });
  let lead: Lead;
  if (request.placement === "CRM_DEAL_DETAIL_TAB") {
    const deal = outcome(results.entity, dealSchema, "crm.deal.get");
    if (!deal.LEAD_ID || String(deal.LEAD_ID) === "0") throw new AppError(404, "no_lead", "This deal did not come from a lead, so it has no CoMagic journey");
    lead = outcome((await deps.userClient.batch({ lead: { method: "crm.lead.get", params: { id: String(deal.LEAD_ID) } } }, { readOnly: true })).lead, leadSchema, "crm.lead.get");
  } else {
    lead = outcome(results.entity, leadSchema, "crm.lead.get");
  }

  const visitorId = lead[LEAD_FIELD.visitorId] ? String(lead[LEAD_FIELD.visitorId]) : null;
  let journeyState: JourneyState = { kind: "no_visitor" };
  if (visitorId) {
    const cached = await deps.journeys?.get(visitorId);
    if (cached) journeyState = { kind: "ready", journey: cached };
    else if (!deps.dataApi) journeyState = { kind: "not_loaded", reason: "The CoMagic Data API is not configured on the worker, so touchpoints cannot be loaded." };
    else {
      try {
        const journey = await loadJourney(deps.dataApi, visitorId, deps.now(), deps.timeZone);
        const found = journey.touchpoints.length > 0;
        if (found) await deps.journeys?.put(journey);
        journeyState = found ? { kind: "ready", journey } : { kind: "not_loaded", reason: "CoMagic has no visits for this visitor yet; its reports lag a few minutes behind." };
      } catch (error) {
        journeyState = { kind: "unreachable", reason: error instanceof CoMagicError ? error.message : errorMessage(error) };
      }
    }
  }
  const phone = leadPhones(lead, deps.defaultRegion)[0] ?? null;
  return {
    lead,
    userId: profile.ID,
    userName: [profile.NAME, profile.LAST_NAME].filter(Boolean).join(" ") || `user ${profile.ID}`,
    journeyState,
    callNumber: phone ? { phone, refusal: checkCallNumber(phone, deps.callCountries)?.message ?? null } : null,
    claims: {
      memberId: request.memberId,
      userId: profile.ID,
      leadId: lead.ID,
      phone,
      expiresAt: Math.floor(deps.now().getTime() / 1000) + TAB_TOKEN_TTL_SECONDS,
      nonce: deps.nonce(),
    },
  };
}
