import type { BitrixClient } from "../bitrix/client";
import { syncDeals, type DealSyncResult } from "../bitrix/deal-sync";
import { importMissingCosts } from "../comagic/ad-costs";
import type { CoMagicRpcClient } from "../comagic/data-api";
import { formatComagicDateTime } from "../domain/comagic-time";
import { errorMessage, type Logger } from "../log";
import type { AttributionStore } from "../storage/attribution-store";

/** Deals without CURRENCY_ID are in the portal's base currency (FACTS-portals §2, §11); Russian portals' is the rouble. */
export const FALLBACK_CURRENCY = "RUB";

export interface ReportSyncResult {
  deals: DealSyncResult | null;
  costDays: string[] | null;
  problems: string[];
}

/**
 * What the report needs from outside: deals changed in Bitrix24 since the last sync, and CoMagic's ad cost for
 * finished days not imported yet. Run by the cron and by the report's "refresh"; one failing part never stops the other.
 */
export async function syncReportData(deps: {
  bitrix: BitrixClient;
  dataApi: CoMagicRpcClient | null;
  store: AttributionStore;
  siteIds: readonly string[];
  timeZone: string;
  now: () => Date;
  log: Logger;
}): Promise<ReportSyncResult> {
  const result: ReportSyncResult = { deals: null, costDays: null, problems: [] };
  try {
    result.deals = await syncDeals({ bitrix: deps.bitrix, store: deps.store, now: deps.now, baseCurrency: FALLBACK_CURRENCY });
    deps.log.info("report.deals_synced", { ...result.deals });
  } catch (error) {
    result.problems.push("deals");
    deps.log.warn("report.deals_sync_failed", { error: errorMessage(error) });
  }
  if (deps.dataApi) {
    try {
      const today = formatComagicDateTime(deps.now(), deps.timeZone).slice(0, 10);
      result.costDays = await importMissingCosts({ dataApi: deps.dataApi, store: deps.store, siteIds: deps.siteIds, today, timeZone: deps.timeZone, fallbackCurrency: FALLBACK_CURRENCY });
      if (result.costDays.length) deps.log.info("report.costs_imported", { days: result.costDays });
    } catch (error) {
      result.problems.push("costs");
      deps.log.warn("report.costs_failed", { error: errorMessage(error) });
    }
  }
  return result;
}
