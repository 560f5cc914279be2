import * as z from "zod";
import type { CrmModeCache } from "../bitrix/crm-mode";
import { type KvCache, kvJson } from "./kv-json";

/** Five minutes: a portal switched to or from leads is followed within that. */
export const CRM_MODE_CACHE_SECONDS = 300;
const KEY = "crm-mode:v1";
const cached = z.object({ mode: z.enum(["classic", "simple"]) });

export function kvCrmModeCache(kv: KvCache | null): CrmModeCache | null {
  if (!kv) return null;
  const store = kvJson(kv, cached);
  return {
    get: async () => (await store.get(KEY))?.mode ?? null,
    put: (mode) => store.put(KEY, { mode }, CRM_MODE_CACHE_SECONDS),
  };
}
