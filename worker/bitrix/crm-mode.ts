import * as z from "zod";
import type { CrmMode } from "../domain/crm-entity";
import { kvJson } from "../storage/kv-json";
import type { BitrixClient } from "./client";
import { BitrixError } from "./errors";

/*
 * crm.settings.mode.get answers 1 (classic, with leads) or 2 (simple, without leads) (FACTS-portals §1). No
 * event announces a change of mode, so the answer is kept a few minutes in KV and asked again after.
 */
export const CRM_MODE_CACHE_SECONDS = 300;
const CACHE_KEY = "crm-mode:v1";
const cached = z.object({ mode: z.enum(["classic", "simple"]) });

/** The portal's mode: from KV when fresh, else from Bitrix24. A portal too old for the method has leads. */
export async function crmModeOf(client: BitrixClient, kv: KVNamespace | null): Promise<CrmMode> {
  const cache = kv ? kvJson(kv, cached) : null;
  const known = await cache?.get(CACHE_KEY).catch(() => null);
  if (known) return known.mode;
  let mode: CrmMode;
  try {
    mode = Number(await client.call("crm.settings.mode.get", {})) === 2 ? "simple" : "classic";
  } catch (error) {
    if (!(error instanceof BitrixError) || error.code !== "ERROR_METHOD_NOT_FOUND") throw error;
    mode = "classic";
  }
  await cache?.put(CACHE_KEY, { mode }, CRM_MODE_CACHE_SECONDS).catch(() => undefined);
  return mode;
}
