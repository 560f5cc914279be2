import type { CountryCode } from "libphonenumber-js/core";
import * as z from "zod";
import { findEmployeeIdByEmail, startEmployeeCall } from "../comagic/call-api";
import { CoMagicError, type CoMagicRpcClient } from "../comagic/data-api";
import { checkCallNumber } from "../domain/call-policy";
import { outcome } from "./command-outcome";
import { cardCommand, readCard, type Card } from "./crm-card";
import type { BitrixClient } from "./client";
import type { TabClaims } from "./tab-token";

const idString = z.union([z.string(), z.number()]).transform(String);
const userRows = z.array(z.object({ ID: idString, EMAIL: z.string().nullish(), NAME: z.string().nullish(), LAST_NAME: z.string().nullish() }).loose());

export type CallRefusalCode = "no_phone" | "number_not_allowed" | "number_changed" | "user_not_mapped" | "daily_limit" | "comagic_refused" | "not_configured";

export type CallOutcome =
  | { ok: true; callSessionId: string; phone: string; timelineRecorded: boolean; telephonyEntity: Card["telephonyEntity"] }
  | {
      ok: false;
      status: 409 | 422 | 429 | 502 | 503;
      code: CallRefusalCode;
      message: string;
      /** False when the refusal came before CoMagic was asked to call: the tab's token may then be used again. */
      askedCoMagic: boolean;
    };

export interface CallDeps {
  appClient: BitrixClient;
  employees: Record<string, number>;
  /** COMAGIC_MATCH_BY_EMAIL: a user can edit their own email, so matching by it is opt-in. */
  matchByEmail: boolean;
  dataApi: CoMagicRpcClient | null;
  callApi: CoMagicRpcClient | null;
  virtualNumber: string | undefined;
  defaultRegion: CountryCode;
  callCountries: ReadonlySet<string>;
  /** Counts the call against the daily caps; asked just before CoMagic is, so a refused call costs nothing. */
  countCall: () => Promise<"ok" | "user_limit" | "portal_limit">;
  now: () => Date;
}

const refuse = (status: 409 | 422 | 429 | 503, code: CallRefusalCode, message: string): CallOutcome => ({ ok: false, status, code, message, askedCoMagic: false });

/**
 * Starts a click-to-call for a verified tab session: the manager's phone rings first (through CoMagic), then
 * the exact number the tab showed, if it is still the lead's and the call policy allows it. The lead's
 * timeline records who called and when.
 */
export async function startCall(claims: TabClaims, deps: CallDeps): Promise<CallOutcome> {
  if (!deps.callApi || !deps.virtualNumber) return refuse(503, "not_configured", "Click-to-call is not configured on the worker (CoMagic credentials and COMAGIC_VIRTUAL_NUMBER).");
  if (!claims.phone) return refuse(422, "no_phone", `This ${claims.entityType} has no phone number to call.`);
  const policy = checkCallNumber(claims.phone, deps.callCountries);
  if (policy) return refuse(422, "number_not_allowed", policy.message);

  const results = await deps.appClient.batch({ card: cardCommand(claims.entityType, claims.leadId), user: { method: "user.get", params: { ID: claims.userId } } }, { readOnly: true });
  const card = await readCard(claims.entityType, results.card, deps.appClient, deps.defaultRegion);
  if (!card.phones.includes(claims.phone)) {
    return refuse(409, "number_changed", `The ${claims.entityType}'s phone number changed since the card was opened; reopen the card to see the number that will be called.`);
  }

  const user = results.user?.ok ? userRows.safeParse(results.user.result) : null;
  const bitrixUser = user?.success ? user.data[0] : undefined;
  let employeeId: number | null = deps.employees[claims.userId] ?? null;
  if (employeeId === null && deps.matchByEmail && bitrixUser?.EMAIL && deps.dataApi) employeeId = await findEmployeeIdByEmail(deps.dataApi, bitrixUser.EMAIL);
  if (employeeId === null) {
    return refuse(422, "user_not_mapped", "Your Bitrix24 user is not linked to a CoMagic employee: ask an admin to add you to COMAGIC_EMPLOYEES.");
  }

  const counted = await deps.countCall();
  if (counted !== "ok") {
    const whose = counted === "user_limit" ? "You have made" : "This portal has made";
    return refuse(429, "daily_limit", `${whose} as many calls today as the daily limit allows (a guard against toll fraud); ask an admin to raise ${counted === "user_limit" ? "CALL_DAILY_LIMIT_PER_USER" : "CALL_DAILY_LIMIT"} if this is real work.`);
  }

  let callSessionId: string;
  try {
    callSessionId = await startEmployeeCall(deps.callApi, { employeeId, contactE164: claims.phone, virtualNumber: deps.virtualNumber, externalId: `bitrix24-${claims.entityType}-${claims.leadId}-${claims.nonce}` });
  } catch (error) {
    if (!(error instanceof CoMagicError)) throw error;
    return { ok: false, status: 502, code: "comagic_refused", message: `CoMagic did not start the call: ${error.mnemonic}`, askedCoMagic: true };
  }
  const who = [bitrixUser?.NAME, bitrixUser?.LAST_NAME].filter(Boolean).join(" ") || `user ${claims.userId}`;
  // The call is already ringing: a failed comment is reported (and logged by the caller), not a failed call.
  const timelineRecorded = await deps.appClient
    .call("crm.timeline.comment.add", {
      fields: { ENTITY_ID: Number(claims.leadId), ENTITY_TYPE: claims.entityType, COMMENT: `Click-to-call through CoMagic by ${who} at ${deps.now().toISOString()}: calling ${claims.phone} (CoMagic call session ${callSessionId}).` },
    })
    .then(() => true, () => false);
  return { ok: true, callSessionId, phone: claims.phone, timelineRecorded, telephonyEntity: card.telephonyEntity };
}
