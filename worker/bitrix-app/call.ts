/*
 * Click-to-call from a card: the card and its number read again (the number the tab showed must still be there),
 * the toll-fraud policy (domain/call-policy.ts), the caller's CoMagic employee, then the Call API's
 * start.employee_call and a timeline entry. routes/bitrix-call.ts guards the token and the daily caps around it.
 */
import { fullName, userRows } from "../bitrix/users";
import type { CountryCode } from "libphonenumber-js/core";
import { findEmployeeIdByEmail, startEmployeeCall } from "../comagic/call-api";
import { CoMagicError, type CoMagicRpcClient } from "../comagic/data-api";
import { checkCallNumber, type CallRefusal } from "../domain/call-policy";
import { batchBuilder } from "../bitrix/batch-builder";
import { addCardRead, readCard, type Card } from "../bitrix/crm-card";
import type { BitrixClient } from "../bitrix/client";
import type { TabClaims } from "./tab-token";
import type { CrmTexts } from "../i18n/crm-texts";

export type CallOutcome =
  | { ok: true; callSessionId: string; phone: string; timelineRecorded: boolean; telephonyEntity: Card["telephonyEntity"] }
  | {
      ok: false;
      refusal: CallRefusal;
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
  /** CRM_LANGUAGE's texts: the timeline comment is read by everyone who opens the card. */
  texts: CrmTexts;
}

const refuse = (refusal: CallRefusal): CallOutcome => ({ ok: false, refusal, askedCoMagic: false });

/**
 * Starts a click-to-call for a verified tab session: the manager's phone rings first (through CoMagic), then
 * the exact number the tab showed, if it is still the lead's and the call policy allows it. The lead's
 * timeline records who called and when.
 */
export async function startCall(claims: TabClaims, deps: CallDeps): Promise<CallOutcome> {
  if (!deps.callApi || !deps.virtualNumber) return refuse({ code: "not_configured" });
  if (!claims.phone) return refuse({ code: "no_phone", entity: claims.entityType });
  const policy = checkCallNumber(claims.phone, deps.callCountries);
  if (policy) return refuse({ code: "number_not_allowed", policy });

  const batch = batchBuilder();
  const cardHandle = addCardRead(batch, claims.entityType, claims.entityId);
  const userHandle = batch.add("user", { method: "user.get", params: { ID: claims.userId } }, userRows);
  const answers = await batch.send(deps.appClient, { readOnly: true });
  const card = await readCard(claims.entityType, answers.required(cardHandle), deps.appClient, deps.defaultRegion);
  if (!card.phones.includes(claims.phone)) {
    return refuse({ code: "number_changed", entity: claims.entityType });
  }

  const bitrixUser = answers.value(userHandle)?.[0];
  let employeeId: number | null = deps.employees[claims.userId] ?? null;
  if (employeeId === null && deps.matchByEmail && bitrixUser?.EMAIL && deps.dataApi) employeeId = await findEmployeeIdByEmail(deps.dataApi, bitrixUser.EMAIL);
  if (employeeId === null) {
    return refuse({ code: "user_not_mapped" });
  }

  const counted = await deps.countCall();
  if (counted !== "ok") return refuse({ code: "daily_limit", whose: counted });

  let callSessionId: string;
  try {
    callSessionId = await startEmployeeCall(deps.callApi, {
      employeeId,
      contactE164: claims.phone,
      virtualNumber: deps.virtualNumber,
      externalId: `bitrix24-${claims.entityType}-${claims.entityId}-${claims.nonce}`,
    });
  } catch (error) {
    if (!(error instanceof CoMagicError)) throw error;
    return { ok: false, refusal: { code: "comagic_refused", mnemonic: error.mnemonic }, askedCoMagic: true };
  }
  const who = fullName(bitrixUser) ?? `#${claims.userId}`;
  // The call is already ringing: a failed comment is reported (and logged by the caller), not a failed call.
  const timelineRecorded = await deps.appClient
    .call("crm.timeline.comment.add", {
      fields: { ENTITY_ID: Number(claims.entityId), ENTITY_TYPE: claims.entityType, COMMENT: deps.texts.clickToCall(who, deps.now().toISOString(), claims.phone, callSessionId) },
    })
    .then(
      () => true,
      () => false,
    );
  return { ok: true, callSessionId, phone: claims.phone, timelineRecorded, telephonyEntity: card.telephonyEntity };
}
