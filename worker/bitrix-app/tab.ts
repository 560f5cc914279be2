/*
 * Opening the CoMagic tab in a card: the user proved with Bitrix24 (app.info + profile + the card, one batch), the
 * visitor's journey (only the visitor the worker itself wrote to that card: storage/crm-visitors.ts), and the signed
 * token of the Call button. routes/bitrix-tab.ts renders it.
 */
import type { CountryCode } from "libphonenumber-js/core";
import { CoMagicError, type CoMagicRpcClient } from "../comagic/data-api";
import { loadJourney } from "../comagic/reports";
import { checkCallNumber, type CallNumberRefusal } from "../domain/call-policy";
import type { Journey } from "../domain/touchpoints";
import { errorMessage } from "../log";
import type { CrmVisitorStore } from "../storage/crm-visitors";
import type { JourneyStore } from "../storage/journeys";
import { type AccessRefusal, verifiedUser } from "../bitrix/app-auth";
import { batchBuilder } from "../bitrix/batch-builder";
import { addCardRead, CARD_ENTITY, readCard, type Card, type CardPlacement } from "../bitrix/crm-card";
import type { BitrixClient } from "../bitrix/client";
import { TAB_TOKEN_TTL_SECONDS, type TabClaims } from "./tab-token";

/** `not_ours`: the card's visitor id is not one the worker wrote there (typed in by hand), so no visits are shown. */
export type JourneyState =
  | { kind: "ready"; journey: Journey }
  | { kind: "no_visitor" }
  | { kind: "not_ours" }
  | { kind: "not_loaded"; reason: "no_data_api" | "no_visits" }
  | { kind: "unreachable"; reason: string };

export interface TabView {
  card: Card;
  userId: string;
  userName: string;
  journeyState: JourneyState;
  claims: TabClaims;
  /** The number Call would dial, shown before the call; `refusal` says why it may not be called. */
  callNumber: { phone: string; refusal: CallNumberRefusal | null } | null;
}

/** Everything the CoMagic tab shows, for a verified user, reading only what that user may read. */
export async function openTab(
  request: { memberId: string; placement: CardPlacement; entityId: string },
  deps: {
    userClient: BitrixClient;
    appCode: string;
    journeys: JourneyStore | null;
    /** Visitor ids the worker wrote: a visitor's visits are read with the worker's own Data API key, for its own ids only. */
    visitors: CrmVisitorStore;
    dataApi: CoMagicRpcClient | null;
    timeZone: string;
    defaultRegion: CountryCode;
    callCountries: ReadonlySet<string>;
    now: () => Date;
    nonce: () => string;
  },
): Promise<{ ok: true; view: TabView } | { ok: false; refusal: AccessRefusal }> {
  const entity = CARD_ENTITY[request.placement];
  const batch = batchBuilder();
  const own = addCardRead(batch, entity, request.entityId);
  const user = await verifiedUser(deps.userClient, deps.appCode, batch);
  if (!user.ok) return user;
  const { profile, answers } = user;
  const card = await readCard(entity, answers.required(own), deps.userClient, deps.defaultRegion);
  const visitorId = card.visitorId;
  let journeyState: JourneyState = { kind: "no_visitor" };
  const written = card.visitorOwner ? await deps.visitors.find(card.visitorOwner) : null;
  if (visitorId && written !== visitorId) journeyState = { kind: "not_ours" };
  else if (visitorId) {
    const cached = await deps.journeys?.get(visitorId);
    if (cached) journeyState = { kind: "ready", journey: cached };
    else if (!deps.dataApi) journeyState = { kind: "not_loaded", reason: "no_data_api" };
    else {
      try {
        const journey = await loadJourney(deps.dataApi, visitorId, deps.now(), deps.timeZone);
        const found = journey.touchpoints.length > 0;
        if (found) await deps.journeys?.put(journey);
        journeyState = found ? { kind: "ready", journey } : { kind: "not_loaded", reason: "no_visits" };
      } catch (error) {
        journeyState = { kind: "unreachable", reason: error instanceof CoMagicError ? error.message : errorMessage(error) };
      }
    }
  }
  const phone = card.phones[0] ?? null;
  const view: TabView = {
    card,
    userId: profile.ID,
    userName: [profile.NAME, profile.LAST_NAME].filter(Boolean).join(" ") || `user ${profile.ID}`,
    journeyState,
    callNumber: phone ? { phone, refusal: checkCallNumber(phone, deps.callCountries) } : null,
    claims: {
      memberId: request.memberId,
      userId: profile.ID,
      entityType: card.entity,
      entityId: card.id,
      phone,
      expiresAt: Math.floor(deps.now().getTime() / 1000) + TAB_TOKEN_TTL_SECONDS,
      nonce: deps.nonce(),
    },
  };
  return { ok: true, view };
}
