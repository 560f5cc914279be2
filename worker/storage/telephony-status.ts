import * as z from "zod";
import { type KvCache, kvJson } from "./kv-json";

/** What /health shows when Bitrix24 refuses telephony to both the app and the webhook; kept an hour, then tried again. */
export interface TelephonyStatus {
  refusedBecause(): Promise<string | null>;
  refuse(reason: string): Promise<void>;
}

/** How long a refusal of telephony is believed: an admin may add the scope or install the app meanwhile. */
const REFUSAL_SECONDS = 3600;
const KEY = "telephony-refused:v1";
const refusal = z.object({ reason: z.string() });

/** Whether Bitrix24 refused telephony.externalCall.* lately, and why (KV: /health reads it too). */
export function kvTelephonyStatus(kv: KvCache): TelephonyStatus {
  const store = kvJson(kv, refusal);
  return {
    refusedBecause: async () => (await store.get(KEY))?.reason ?? null,
    refuse: (reason) => store.put(KEY, { reason }, REFUSAL_SECONDS),
  };
}
