import * as z from "zod";
import type { CountryCode } from "libphonenumber-js/min";
import { findEmployeeIdByEmail, startEmployeeCall } from "../comagic/call-api";
import { CoMagicError, type CoMagicRpcClient } from "../comagic/data-api";
import { loadJourney } from "../comagic/reports";
import { LEAD_FIELD } from "../domain/lead-plan";
import { normalizePhone } from "../domain/phone";
import type { Journey } from "../domain/touchpoints";
import { AppError } from "../errors";
import { errorMessage } from "../log";
import type { JourneyStore } from "../storage/journeys";
import type { BitrixClient } from "./client";
import { BitrixError } from "./errors";
import type { Portal, PortalStore } from "./portal";
import { TAB_TOKEN_TTL_SECONDS, type TabClaims } from "./tab-token";
import { ensureLeadUserFields } from "./user-fields";

export const TAB_PLACEMENTS = ["CRM_LEAD_DETAIL_TAB", "CRM_DEAL_DETAIL_TAB"] as const;
const TAB_TITLE = "CoMagic";

const idString = z.union([z.string(), z.number()]).transform(String);
const profileSchema = z.object({ ID: idString, ADMIN: z.boolean().optional(), NAME: z.string().nullish(), LAST_NAME: z.string().nullish() }).loose();
const leadSchema = z
  .object({
    ID: idString,
    TITLE: z.string().nullish(),
    DATE_CREATE: z.string().nullish(),
    PHONE: z.array(z.object({ VALUE: z.string() }).loose()).nullish(),
    [LEAD_FIELD.visitorId]: z.union([z.string(), z.number()]).nullish(),
  })
  .loose();
const dealSchema = z.object({ ID: idString, LEAD_ID: z.union([z.string(), z.number()]).nullish() }).loose();
const placementRows = z.union([z.array(z.object({ placement: z.string().optional(), PLACEMENT: z.string().optional(), handler: z.string().optional(), HANDLER: z.string().optional() }).loose()), z.array(z.never())]);
const userRows = z.array(z.object({ ID: idString, EMAIL: z.string().nullish(), NAME: z.string().nullish(), LAST_NAME: z.string().nullish() }).loose());

export type Lead = z.infer<typeof leadSchema>;

function outcome<T>(result: { ok: true; result: unknown } | { ok: false; error: BitrixError } | undefined, schema: z.ZodType<T>, what: string): T {
  if (!result) throw new BitrixError("ERROR_UNEXPECTED_ANSWER", `${what}: no answer`, true, "no");
  if (!result.ok) throw result.error;
  const parsed = schema.safeParse(result.result);
  if (!parsed.success) throw new BitrixError("ERROR_UNEXPECTED_ANSWER", `${what}: unexpected answer`, true, "no");
  return parsed.data;
}

const refused = (message: string) => new AppError(401, "not_verified", message);

/** The request's token must work on *our* portal as an app token of a signed-in user; anything else is refused. */
async function verifiedUser(userClient: BitrixClient, extra: Record<string, { method: string; params: Record<string, unknown> }> = {}) {
  const results = await userClient.batch({ app: { method: "app.info", params: {} }, me: { method: "profile", params: {} }, ...extra }, { readOnly: true });
  if (!results.app?.ok || !results.me?.ok) throw refused("Bitrix24 did not accept this request's token for this portal");
  return { profile: outcome(results.me, profileSchema, "profile"), results };
}

export interface InstallRequest {
  memberId: string;
  authId: string;
  refreshId: string;
  expiresInSeconds: number;
}

/**
 * Installs (or reinstalls) the app: checks the token against the configured portal, stores the portal with
 * its tokens, creates the lead fields, and binds the CoMagic tab to lead and deal cards. Idempotent.
 */
export async function installApp(
  request: InstallRequest,
  deps: { origin: string; handlerUrl: string; userClient: BitrixClient; appClient: (portal: Portal) => BitrixClient; portals: PortalStore; now: () => Date },
): Promise<{ portal: Portal; boundPlacements: string[]; createdFields: string[] }> {
  const { profile } = await verifiedUser(deps.userClient);
  if (profile.ADMIN !== true) throw new AppError(403, "not_admin", "Only a Bitrix24 administrator can install the app");
  const portal: Portal = {
    memberId: request.memberId,
    origin: deps.origin,
    accessToken: request.authId,
    refreshToken: request.refreshId,
    expiresAt: Math.floor(deps.now().getTime() / 1000) + request.expiresInSeconds,
    installedAt: deps.now().toISOString(),
    installedByUserId: profile.ID,
  };
  await deps.portals.put(portal);
  const client = deps.appClient(portal);
  const fields = await ensureLeadUserFields(client);
  const bound = outcome((await client.batch({ bound: { method: "placement.get", params: {} } }, { readOnly: true })).bound, placementRows, "placement.get");
  const already = new Set(bound.filter((b) => (b.handler ?? b.HANDLER) === deps.handlerUrl).map((b) => b.placement ?? b.PLACEMENT));
  const missing = TAB_PLACEMENTS.filter((p) => !already.has(p));
  for (const placement of missing) {
    await client.call("placement.bind", { PLACEMENT: placement, HANDLER: deps.handlerUrl, TITLE: TAB_TITLE, DESCRIPTION: "Touchpoints, attribution and click-to-call from CoMagic" });
  }
  return { portal, boundPlacements: missing, createdFields: fields.created };
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
  hasPhone: boolean;
}

/** Everything the CoMagic tab shows, for a verified user, reading only what that user may read. */
export async function openTab(
  request: { memberId: string; placement: (typeof TAB_PLACEMENTS)[number]; entityId: string },
  deps: {
    userClient: BitrixClient;
    journeys: JourneyStore | null;
    dataApi: CoMagicRpcClient | null;
    timeZone: string;
    defaultRegion: CountryCode;
    now: () => Date;
    nonce: () => string;
  },
): Promise<TabView> {
  const method = request.placement === "CRM_DEAL_DETAIL_TAB" ? "crm.deal.get" : "crm.lead.get";
  const { profile, results } = await verifiedUser(deps.userClient, { entity: { method, params: { id: request.entityId } } });
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
  const hasPhone = (lead.PHONE ?? []).some((p) => normalizePhone(p.VALUE, deps.defaultRegion) !== null);
  return {
    lead,
    userId: profile.ID,
    userName: [profile.NAME, profile.LAST_NAME].filter(Boolean).join(" ") || `user ${profile.ID}`,
    journeyState,
    hasPhone,
    claims: {
      memberId: request.memberId,
      userId: profile.ID,
      leadId: lead.ID,
      expiresAt: Math.floor(deps.now().getTime() / 1000) + TAB_TOKEN_TTL_SECONDS,
      nonce: deps.nonce(),
    },
  };
}

export type CallOutcome =
  | { ok: true; callSessionId: string; phone: string; timelineRecorded: boolean }
  | { ok: false; status: 409 | 422 | 502 | 503; code: "no_phone" | "user_not_mapped" | "comagic_refused" | "not_configured"; message: string };

/**
 * Starts a click-to-call for a verified tab session: the manager's phone rings first (through CoMagic),
 * then the lead's. The lead's timeline records who called and when.
 */
export async function startCall(
  claims: TabClaims,
  deps: {
    appClient: BitrixClient;
    employees: Record<string, number>;
    dataApi: CoMagicRpcClient | null;
    callApi: CoMagicRpcClient | null;
    virtualNumber: string | undefined;
    defaultRegion: CountryCode;
    now: () => Date;
  },
): Promise<CallOutcome> {
  if (!deps.callApi || !deps.virtualNumber) return { ok: false, status: 503, code: "not_configured", message: "Click-to-call is not configured on the worker (CoMagic credentials and COMAGIC_VIRTUAL_NUMBER)." };
  const results = await deps.appClient.batch(
    { lead: { method: "crm.lead.get", params: { id: claims.leadId } }, user: { method: "user.get", params: { ID: claims.userId } } },
    { readOnly: true },
  );
  const lead = outcome(results.lead, leadSchema, "crm.lead.get");
  const phone = (lead.PHONE ?? []).map((p) => normalizePhone(p.VALUE, deps.defaultRegion)).find((p): p is string => p !== null);
  if (!phone) return { ok: false, status: 422, code: "no_phone", message: "This lead has no phone number to call." };

  const user = results.user?.ok ? userRows.safeParse(results.user.result) : null;
  const bitrixUser = user?.success ? user.data[0] : undefined;
  let employeeId: number | null = deps.employees[claims.userId] ?? null;
  if (employeeId === null && bitrixUser?.EMAIL && deps.dataApi) employeeId = await findEmployeeIdByEmail(deps.dataApi, bitrixUser.EMAIL);
  if (employeeId === null) {
    return { ok: false, status: 422, code: "user_not_mapped", message: "Your Bitrix24 user is not linked to a CoMagic employee: ask an admin to add you to COMAGIC_EMPLOYEES, or use the same email in both." };
  }

  let callSessionId: string;
  try {
    callSessionId = await startEmployeeCall(deps.callApi, { employeeId, contactE164: phone, virtualNumber: deps.virtualNumber, externalId: `bitrix24-lead-${claims.leadId}-${claims.nonce}` });
  } catch (error) {
    if (!(error instanceof CoMagicError)) throw error;
    return { ok: false, status: 502, code: "comagic_refused", message: `CoMagic did not start the call: ${error.mnemonic}` };
  }
  const who = [bitrixUser?.NAME, bitrixUser?.LAST_NAME].filter(Boolean).join(" ") || `user ${claims.userId}`;
  // The call is already ringing: a failed comment is reported (and logged by the caller), not a failed call.
  const timelineRecorded = await deps.appClient
    .call("crm.timeline.comment.add", {
      fields: { ENTITY_ID: Number(claims.leadId), ENTITY_TYPE: "lead", COMMENT: `Click-to-call through CoMagic by ${who} at ${deps.now().toISOString()}: calling ${phone} (CoMagic call session ${callSessionId}).` },
    })
    .then(() => true, () => false);
  return { ok: true, callSessionId, phone, timelineRecorded };
}
