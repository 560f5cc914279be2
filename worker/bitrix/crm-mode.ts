import type { CrmMode } from "../domain/crm-entity";
import type { BitrixClient } from "./client";
import { BitrixError } from "./errors";

/*
 * crm.settings.mode.get answers 1 (classic, with leads) or 2 (simple, without leads) (FACTS-portals §1). No
 * event announces a change of mode, so the answer is kept a few minutes (storage/crm-mode-cache.ts) and asked again after.
 */

/** Where the last answer is kept; null keeps nothing (setup asks once). */
export interface CrmModeCache {
  get(): Promise<CrmMode | null>;
  put(mode: CrmMode): Promise<void>;
}

/** The portal's mode: from the cache when fresh, else from Bitrix24. A portal too old for the method has leads. */
export async function crmModeOf(client: BitrixClient, cache: CrmModeCache | null): Promise<CrmMode> {
  const known = await cache?.get().catch(() => null);
  if (known) return known;
  let mode: CrmMode;
  try {
    mode = Number(await client.call("crm.settings.mode.get", {})) === 2 ? "simple" : "classic";
  } catch (error) {
    if (!(error instanceof BitrixError) || error.code !== "ERROR_METHOD_NOT_FOUND") throw error;
    mode = "classic";
  }
  await cache?.put(mode).catch(() => undefined);
  return mode;
}
