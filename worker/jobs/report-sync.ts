import type { BitrixClient } from "../bitrix/client";
import { syncDeals, type DealSyncResult } from "../bitrix/deal-sync";
import { importMissingCosts } from "../comagic/ad-costs";
import type { CoMagicRpcClient } from "../comagic/data-api";
import { formatComagicDateTime } from "../domain/comagic-time";
import { errorMessage, type Logger } from "../log";
import type { AttributionStore, DealRecord } from "../storage/attribution-store";

/*
 * What the report needs from outside: deals changed in Bitrix24 since the last sync, and CoMagic's ad cost for
 * finished days not imported yet. Run by the cron and by the report's "refresh". One sync at a time (a lease in
 * D1, the cron's and every user's alike): each spends the portal's REST budget, and two at once would read the
 * same pages twice. One failing part never stops the other.
 */

/** Deals without CURRENCY_ID are in the portal's base currency (FACTS-portals §2, §11); Russian portals' is the rouble. */
export const FALLBACK_CURRENCY = "RUB";
/** Longer than any one sync takes (four `batch` requests and seven cost days at 25 s timeouts); a crashed one frees it then. */
export const SYNC_LEASE_MS = 3 * 60_000;

export interface ReportSyncResult {
  /** `busy`: another sync held the lease, so this one read nothing. */
  status: "done" | "busy";
  deals: DealSyncResult | null;
  costDays: string[] | null;
  problems: string[];
}

export interface ReportSyncDeps {
  bitrix: BitrixClient;
  dataApi: CoMagicRpcClient | null;
  store: AttributionStore;
  siteIds: readonly string[];
  timeZone: string;
  now: () => Date;
  log: Logger;
  /** Deal pages one sync may read (REPORT_SYNC_MAX_PAGES); the next sync goes on from where this one stopped. */
  maxPages?: number;
  /** Told of the deals this sync saw changed (wiring.ts dealChangesFor). */
  dealChanges?: ((deals: readonly DealRecord[], at: Date) => Promise<void>) | null;
}

export async function syncReportData(deps: ReportSyncDeps): Promise<ReportSyncResult> {
  const result: ReportSyncResult = { status: "done", deals: null, costDays: null, problems: [] };
  const started = deps.now();
  const lease = await deps.store.claimSync(started, new Date(started.getTime() + SYNC_LEASE_MS));
  if (!lease) {
    deps.log.info("report.sync_skipped", { reason: "another sync is running" });
    return { ...result, status: "busy" };
  }
  try {
    try {
      const { changed, ...counts } = await syncDeals({ bitrix: deps.bitrix, store: deps.store, now: deps.now, baseCurrency: FALLBACK_CURRENCY, maxPages: deps.maxPages });
      result.deals = counts;
      deps.log.info("report.deals_synced", { ...counts });
      // What else starts from a deal's change (CoMagic's deal loop, offline conversions): told here, as the sync
      // that saw the change will not see it again.
      await deps.dealChanges?.(changed, deps.now());
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
  } finally {
    await deps.store.releaseSync(lease);
  }
  return result;
}

/** How long a refresh waits for a sync already running, and how often it looks. */
const JOIN_WAIT_MS = 25_000;
const JOIN_POLL_MS = 500;

export type RefreshOutcome = ({ joined: false } & ReportSyncResult) | { joined: true; finished: boolean };

/**
 * The report's "refresh": a sync, or, while another one runs (the cron's, another user's), that one: the
 * refresh waits for it to finish instead of starting its own. `finished: false` when it is still running.
 */
export async function refreshReportData(deps: ReportSyncDeps & { sleep?: (ms: number) => Promise<void> }): Promise<RefreshOutcome> {
  const result = await syncReportData(deps);
  if (result.status === "done") return { joined: false, ...result };
  const sleep = deps.sleep ?? ((ms: number) => new Promise<void>((r) => setTimeout(r, ms)));
  for (let waited = 0; waited < JOIN_WAIT_MS; waited += JOIN_POLL_MS) {
    await sleep(JOIN_POLL_MS);
    if (!(await deps.store.syncRunning(deps.now()))) return { joined: true, finished: true };
  }
  return { joined: true, finished: false };
}
