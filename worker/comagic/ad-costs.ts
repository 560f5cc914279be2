import * as z from "zod";
import { parseComagicDateTime } from "../domain/comagic-time";
import type { AttributionStore, CostRecord } from "../storage/attribution-store";
import type { CoMagicRpcClient } from "./data-api";
import { fetchReport } from "./reports";

/*
 * CoMagic's ad spend (get.campaign_daily_stat, FACTS-calls §5): one request per site and day (site_id is
 * required), `cost_sum` a string in the ad system's currency, `currency` per row with no documented values.
 * Rows are per keyword and banner; D1 keeps them summed per day, site, CoMagic campaign and currency.
 */

const FIELDS = ["date", "site_id", "campaign_id", "campaign_name", "cost_sum", "currency"];
const text = z
  .union([z.string(), z.number()])
  .nullish()
  .transform((v) => (v === null || v === undefined || v === "" ? null : String(v)));
const costRow = z.object({ date: z.string(), campaign_id: text, campaign_name: text, cost_sum: text, currency: text }).loose();
/** Days a missed cron catches up on at most: each is one request per site against CoMagic's per-minute points. */
const MAX_CATCH_UP_DAYS = 7;
const STATE_KEY = "costs.last_day";

/** CoMagic's currency enum is undocumented: "rub", "RUR" and "RUB" are one currency. */
export function currencyCode(raw: string | null, fallback: string): string {
  const code = (raw ?? "").trim().toUpperCase();
  if (!code) return fallback;
  return code === "RUR" || code === "РУБ" ? "RUB" : code;
}

export async function importDayCost(dataApi: CoMagicRpcClient, day: string, siteIds: readonly string[], timeZone: string, fallbackCurrency: string): Promise<CostRecord[]> {
  const from = parseComagicDateTime(`${day} 00:00:00`, timeZone) ?? new Date(day);
  const window = { from, to: parseComagicDateTime(`${day} 23:59:59`, timeZone) ?? from, timeZone };
  const sums = new Map<string, CostRecord>();
  for (const siteId of siteIds) {
    const rows = await fetchReport(dataApi, "get.campaign_daily_stat", FIELDS, costRow, window, undefined, { site_id: Number(siteId) });
    for (const row of rows) {
      const cost = Number(String(row.cost_sum ?? "0").replace(",", "."));
      if (!Number.isFinite(cost) || cost === 0 || !row.campaign_id) continue;
      const currency = currencyCode(row.currency, fallbackCurrency);
      const key = `${siteId}|${row.campaign_id}|${currency}`;
      const sum = sums.get(key) ?? { day, siteId, campaignId: row.campaign_id, campaignName: row.campaign_name, currency, cost: 0 };
      sum.cost += cost;
      sums.set(key, sum);
    }
  }
  return [...sums.values()];
}

const DAY_MS = 86_400_000;

/** Imports every finished day not imported yet (yesterday, and a few missed before it), in the account's calendar. */
export async function importMissingCosts(deps: {
  dataApi: CoMagicRpcClient;
  store: AttributionStore;
  siteIds: readonly string[];
  today: string;
  timeZone: string;
  fallbackCurrency: string;
}): Promise<string[]> {
  const sites = [...new Set([...deps.siteIds, ...(await deps.store.siteIds())])];
  if (sites.length === 0) return [];
  const yesterday = new Date(Date.parse(`${deps.today}T00:00:00Z`) - DAY_MS).toISOString().slice(0, 10);
  const last = await deps.store.getState(STATE_KEY);
  const earliest = new Date(Date.parse(`${yesterday}T00:00:00Z`) - (MAX_CATCH_UP_DAYS - 1) * DAY_MS).toISOString().slice(0, 10);
  let day = last && last >= earliest ? new Date(Date.parse(`${last}T00:00:00Z`) + DAY_MS).toISOString().slice(0, 10) : earliest;
  const imported: string[] = [];
  while (day <= yesterday) {
    await deps.store.putCosts(day, sites, await importDayCost(deps.dataApi, day, sites, deps.timeZone, deps.fallbackCurrency));
    await deps.store.setState(STATE_KEY, day);
    imported.push(day);
    day = new Date(Date.parse(`${day}T00:00:00Z`) + DAY_MS).toISOString().slice(0, 10);
  }
  return imported;
}
