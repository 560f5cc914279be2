import * as z from "zod";
import type { Journey } from "../domain/touchpoints";
import { type KvCache, kvJson } from "./kv-json";

/** How long a visitor's touchpoints stay cached for the CRM tab: CoMagic's own 90-day report window. */
export const JOURNEY_RETENTION_SECONDS = 90 * 86_400;

const utm = z.object({ source: z.string().nullable(), medium: z.string().nullable(), campaign: z.string().nullable(), content: z.string().nullable(), term: z.string().nullable() });
const journeySchema = z.object({
  visitorId: z.string(),
  fetchedAt: z.string(),
  touchpoints: z.array(
    z.union([
      z.object({
        type: z.literal("session"),
        at: z.string(),
        sessionId: z.string(),
        channel: z.string().nullable(),
        source: z.string().nullable(),
        utm,
        referrer: z.string().nullable(),
        entrancePage: z.string().nullable(),
        campaignId: z.string().nullish(),
        campaignName: z.string().nullish(),
        siteId: z.string().nullish(),
      }),
      z.object({ type: z.enum(["call", "chat", "offline_message", "goal"]), at: z.string(), id: z.string(), sessionId: z.string().nullable() }),
    ]),
  ),
});

export interface JourneyStore {
  get(visitorId: string): Promise<Journey | null>;
  put(journey: Journey): Promise<void>;
}

/** Touchpoints in KV: rebuilt from CoMagic on a miss, so losing them costs a fetch, never data. */
export function kvJourneyStore(kv: KvCache): JourneyStore {
  const store = kvJson(kv, journeySchema);
  const key = (visitorId: string) => `journey:v1:${visitorId}`;
  return {
    get: (visitorId) => store.get(key(visitorId)),
    put: (journey) => store.put(key(journey.visitorId), journey, JOURNEY_RETENTION_SECONDS),
  };
}
