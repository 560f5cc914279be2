import type { Model } from "./attribution";
import type { CreditedEntity } from "./attribution-credits";
import { formatComagicDateTime, parseComagicDateTime } from "./comagic-time";

/*
 * The marketer's report: conversions credited to groups under one model, joined with what became of them in
 * Bitrix24 (deals, won deals, revenue) and with CoMagic's ad cost. Pure: rows in, figures out.
 */

export const GROUPINGS = ["utm_source", "utm_medium", "source_medium", "utm_campaign", "comagic_campaign", "comagic_channel"] as const;
export type Grouping = (typeof GROUPINGS)[number];

/** The ad cost report speaks CoMagic campaigns only (it has no UTM: FACTS-calls §5), so only that grouping carries cost. */
export const COST_GROUPING: Grouping = "comagic_campaign";

export const PERIODS = ["7d", "30d", "90d", "this_month", "last_month", "custom"] as const;
export type Period = (typeof PERIODS)[number];

/** Days of the account's calendar, both inclusive (YYYY-MM-DD). */
export interface DayRange {
  from: string;
  to: string;
}

const DAY_MS = 86_400_000;
const dayOf = (ms: number) => new Date(ms).toISOString().slice(0, 10);

/** The days a preset covers on `now`'s date in the account's time zone; `custom` takes the given days (ordered, at most a year). */
export function periodDays(period: Period, now: Date, timeZone: string, custom?: Partial<DayRange>): DayRange {
  const today = formatComagicDateTime(now, timeZone).slice(0, 10);
  const todayMs = Date.parse(`${today}T00:00:00Z`);
  const [y, m] = today.split("-").map(Number) as [number, number];
  switch (period) {
    case "7d":
    case "30d":
    case "90d":
      return { from: dayOf(todayMs - (Number.parseInt(period, 10) - 1) * DAY_MS), to: today };
    case "this_month":
      return { from: `${today.slice(0, 7)}-01`, to: today };
    case "last_month":
      return { from: dayOf(Date.UTC(y, m - 2, 1)), to: dayOf(Date.UTC(y, m - 1, 0)) };
    case "custom": {
      const valid = (d: string | undefined) => (d && /^\d{4}-\d{2}-\d{2}$/.test(d) && !Number.isNaN(Date.parse(d)) ? d : null);
      const from = valid(custom?.from) ?? dayOf(todayMs - 29 * DAY_MS);
      let to = valid(custom?.to) ?? today;
      if (to < from) to = from;
      if (Date.parse(to) - Date.parse(from) > 366 * DAY_MS) to = dayOf(Date.parse(from) + 366 * DAY_MS);
      return { from, to };
    }
  }
}

/** The instants a day range covers in the account's time zone: [from, to). */
export function rangeInstants(days: DayRange, timeZone: string): { from: Date; to: Date } {
  const next = dayOf(Date.parse(`${days.to}T00:00:00Z`) + DAY_MS);
  return { from: parseComagicDateTime(`${days.from} 00:00:00`, timeZone) ?? new Date(days.from), to: parseComagicDateTime(`${next} 00:00:00`, timeZone) ?? new Date(next) };
}

export interface ReportFilters {
  period: Period;
  days: DayRange;
  model: Model;
  grouping: Grouping;
  entity: CreditedEntity;
}

/** One conversion's share in one group (a conversion's rows collapsed by group). */
export interface GroupCredit {
  entityId: string;
  /** null: the conversion's visit had no value for this grouping (no UTM, no campaign, or no visit at all). */
  key: string | null;
  label: string | null;
  share: number;
  /** A deal that came with a contact the worker made (portals without leads). */
  madeContact?: boolean;
}

export interface DealOutcome {
  /** The credited lead the deal came from, or the credited deal itself (portals without leads). */
  entityId: string;
  dealId: string;
  semantic: "P" | "S" | "F";
  amount: number;
  currency: string;
}

export interface CampaignCost {
  key: string;
  label: string | null;
  currency: string;
  cost: number;
}

export type Money = Record<string, number>;

export interface ReportRow {
  key: string | null;
  label: string | null;
  conversions: number;
  /** Contacts the worker made with the conversions (portals without leads), credited like them. */
  contacts: number;
  deals: number;
  won: number;
  revenue: Money;
  /** null: no cost is known for this group (shown as "—", never as 0). */
  cost: Money | null;
  dealRate: number | null;
  wonRate: number | null;
  costPerConversion: number | null;
  costPerWon: number | null;
  romi: number | null;
}

export interface Report {
  rows: ReportRow[];
  total: ReportRow;
}

const addMoney = (into: Money, currency: string, amount: number) => {
  into[currency] = (into[currency] ?? 0) + amount;
};

const ratio = (a: number, b: number) => (b > 0 ? a / b : null);

/** The single currency of a cost, or null when there is none or several (cost per lead and ROMI need one). */
function soleCurrency(money: Money | null): string | null {
  const currencies = Object.keys(money ?? {});
  return currencies.length === 1 ? (currencies[0] ?? null) : null;
}

function finish(row: Omit<ReportRow, "dealRate" | "wonRate" | "costPerConversion" | "costPerWon" | "romi">): ReportRow {
  const currency = soleCurrency(row.cost);
  const cost = currency && row.cost ? (row.cost[currency] ?? 0) : null;
  // ROMI compares like with like: revenue in another currency than the cost makes it unknown, never summed.
  const revenueCurrencies = Object.keys(row.revenue);
  const comparable = cost !== null && cost > 0 && revenueCurrencies.every((c) => c === currency);
  return {
    ...row,
    dealRate: ratio(row.deals, row.conversions),
    wonRate: ratio(row.won, row.deals),
    costPerConversion: cost === null ? null : ratio(cost, row.conversions),
    costPerWon: cost === null ? null : ratio(cost, row.won),
    romi: comparable && currency ? ((row.revenue[currency] ?? 0) - cost) / cost : null,
  };
}

/**
 * Credits deals, won deals and revenue to groups by each conversion's share; adds cost per group. Groups that
 * spent money without a conversion are listed too. Sorted by conversions, most first.
 */
export function buildReport(credits: readonly GroupCredit[], deals: readonly DealOutcome[], costs: readonly CampaignCost[] | null): Report {
  const dealsOf = new Map<string, DealOutcome[]>();
  for (const deal of deals) dealsOf.set(deal.entityId, [...(dealsOf.get(deal.entityId) ?? []), deal]);
  const groups = new Map<string, Omit<ReportRow, "dealRate" | "wonRate" | "costPerConversion" | "costPerWon" | "romi">>();
  const groupOf = (key: string | null, label: string | null) => {
    const id = key ?? "\u0000none";
    let group = groups.get(id);
    if (!group) {
      group = { key, label, conversions: 0, contacts: 0, deals: 0, won: 0, revenue: {}, cost: null };
      groups.set(id, group);
    }
    if (!group.label && label) group.label = label;
    return group;
  };
  const entities = new Set<string>();
  const total = { key: null, label: null, conversions: 0, contacts: 0, deals: 0, won: 0, revenue: {} as Money, cost: null as Money | null };
  for (const credit of credits) {
    const group = groupOf(credit.key, credit.label);
    group.conversions += credit.share;
    if (credit.madeContact) group.contacts += credit.share;
    for (const deal of dealsOf.get(credit.entityId) ?? []) {
      group.deals += credit.share;
      if (deal.semantic === "S") {
        group.won += credit.share;
        addMoney(group.revenue, deal.currency, deal.amount * credit.share);
      }
    }
    if (!entities.has(credit.entityId)) {
      entities.add(credit.entityId);
      if (credit.madeContact) total.contacts += 1;
      for (const deal of dealsOf.get(credit.entityId) ?? []) {
        total.deals += 1;
        if (deal.semantic === "S") {
          total.won += 1;
          addMoney(total.revenue, deal.currency, deal.amount);
        }
      }
    }
  }
  total.conversions = entities.size;
  for (const cost of costs ?? []) {
    const group = groupOf(cost.key, cost.label);
    group.cost ??= {};
    addMoney(group.cost, cost.currency, cost.cost);
    total.cost ??= {};
    addMoney(total.cost, cost.currency, cost.cost);
  }
  const rows = [...groups.values()].map(finish).sort((a, b) => b.conversions - a.conversions || (a.label ?? "").localeCompare(b.label ?? ""));
  return { rows, total: finish(total) };
}

/**
 * The report's currencies, the one most groups carry (in revenue or cost) first, then by code. Amounts in two
 * currencies are never compared, so sorting and the chart take them one currency at a time, in this order.
 */
export function currencyOrder(report: Report): string[] {
  const groups = new Map<string, number>();
  for (const row of report.rows) {
    for (const currency of new Set([...Object.keys(row.revenue), ...Object.keys(row.cost ?? {})])) groups.set(currency, (groups.get(currency) ?? 0) + 1);
  }
  return [...groups].sort((a, b) => b[1] - a[1] || a[0].localeCompare(b[0])).map(([currency]) => currency);
}
