/**
 * Offline conversions for Yandex Metrica (issue #25 §3), decided without I/O: which CRM moments are conversions, which
 * goal each one reaches, who the visitor is, the conversion's fixed `DateTime`, which ones are not sent (and why), and
 * the CSV file Metrica takes. Facts: `../shared/reference/FACTS-loop.md` §3 (cited as "§3.x" below).
 *
 * Trade-off accepted: Metrica says only that a re-sent row overwrites (§3.5); which columns make rows "the same" is not
 * documented (§8.2). We keep the identifier, `Target` and `DateTime` of a conversion stable across retries (the caller
 * stores the first `DateTime` per conversion key and passes it back), so a retry can only ever overwrite.
 */
import * as z from "zod";
import type { CrmEntityRef } from "./crm-entity";

const DAY_MS = 86_400_000;
/**
 * §3.4: a conversion is added to a visit only when at most 21 days passed between the visitor's last visit and the
 * processing of the file; later ones are silently not linked, so we do not send them.
 */
export const METRICA_LINK_WINDOW_DAYS = 21;

/** The business moments we report (§7: one goal per business event). */
export type ConversionGoal = "qualified" | "won";

/**
 * A goal's identifier as the CSV's `Target` takes it: the identifier of a "JavaScript event" goal (§3.2, e.g.
 * `order_confirmed`, what `reachGoal` is given), never the goal's number. A bare number is almost surely that number
 * pasted from the goal list, so it is refused with a reason. Commas, quotes and line breaks would break the CSV.
 */
export const goalIdentifierSchema = z
  .string()
  .trim()
  .min(1, "A goal identifier is required")
  .max(255, "A goal identifier has at most 255 characters")
  .refine((s) => !/^\d+$/.test(s), "This looks like the goal's number: give the JavaScript-event goal's identifier (e.g. crm_won)")
  .refine((s) => /^[\p{L}\p{N}_.:\-/]+$/u.test(s), "A goal identifier has letters, digits and _ . : - / only");

/** What a portal reports (issue #25 §3; each goal off when its identifier is null). */
export interface ConversionSettings {
  goals: Record<ConversionGoal, string | null>;
  /** The lead status (Bitrix24 STATUS_ID) that makes a lead "qualified"; null: only a new deal does. */
  qualifiedLeadStatus: string | null;
}

/** A CRM moment as the worker learns it; `at` is when it happened in the CRM (ms). */
export type CrmMoment =
  | { kind: "lead_status"; lead: string; statusId: string; at: number }
  /** `from`: the lead the deal was made from (its qualification already counted, or counted now), else the deal itself. */
  | { kind: "deal_created"; deal: string; from: CrmEntityRef | null; at: number }
  | { kind: "deal_won"; deal: string; at: number; revenue: { amount: number; currency: string } | null };

export interface Conversion {
  goal: ConversionGoal;
  entity: CrmEntityRef;
  at: number;
  revenue: { amount: number; currency: string } | null;
}

/**
 * The conversion a CRM moment makes, or null when it makes none: a lead moved to the chosen status or a deal created
 * is "qualified", a deal won is "won" with its revenue (issue #25 §3). A goal without an identifier is off.
 */
export function conversionOf(moment: CrmMoment, settings: ConversionSettings): Conversion | null {
  switch (moment.kind) {
    case "lead_status":
      if (settings.goals.qualified === null || settings.qualifiedLeadStatus === null || moment.statusId !== settings.qualifiedLeadStatus) return null;
      return { goal: "qualified", entity: { type: "lead", id: moment.lead }, at: moment.at, revenue: null };
    case "deal_created":
      if (settings.goals.qualified === null) return null;
      // One person qualifies once: a deal made from a lead is that lead's qualification, not a second one.
      return { goal: "qualified", entity: moment.from ?? { type: "deal", id: moment.deal }, at: moment.at, revenue: null };
    case "deal_won":
      if (settings.goals.won === null) return null;
      return { goal: "won", entity: { type: "deal", id: moment.deal }, at: moment.at, revenue: moment.revenue };
  }
}

/** One conversion is sent under one key, whatever the retries: the ledger's and the fixed DateTime's key. */
export function conversionKey(conversion: Pick<Conversion, "goal" | "entity">): string {
  return `${conversion.entity.type}:${conversion.entity.id}:${conversion.goal}`;
}

/** The lead or deal a stored conversionKey names (`lead:12:qualified` → lead 12): the key's own format, read back. */
export function entityOfConversionKey(key: string): { type: "lead" | "deal"; id: string } {
  const [type, id = ""] = key.split(":");
  return { type: type === "deal" ? "deal" : "lead", id };
}

/** The visitor as a CSV identifier column names them (§3.2). */
export type VisitorId = { column: "ClientId"; value: string } | { column: "Yclid"; value: string };

// A Metrica ClientID is a string of digits (§3.2 example `133591247640966458`; `_ym_uid` has the same form).
const CLIENT_ID = /^\d{1,32}$/;
// yclid's form is not documented (§3.2 says only "from the ad URL"): any token that cannot break a CSV line.
const YCLID = /^[A-Za-z0-9_-]{1,128}$/;

/**
 * Who the visitor is (issue #25 §3): the Metrica ClientID from the snippet's `_ym_uid` or from CoMagic's
 * `ym_client_id`, else the Direct click id `yclid`; null when none is usable. Which id Metrica prefers when a row has
 * several is not documented (§3.4, §8.2), so a row carries one.
 */
export function visitorIdOf(ids: { ymUid?: string | null; ymClientId?: string | null; yclid?: string | null }): VisitorId | null {
  for (const value of [ids.ymUid, ids.ymClientId]) {
    const v = value?.trim();
    if (v && CLIENT_ID.test(v)) return { column: "ClientId", value: v };
  }
  const yclid = ids.yclid?.trim();
  return yclid && YCLID.test(yclid) ? { column: "Yclid", value: yclid } : null;
}

/** A conversion about to be planned: what it is, who, and when that visitor was last seen on the site (ms, if known). */
export interface ConversionCandidate {
  conversion: Conversion;
  visitor: VisitorId | null;
  lastVisitAt: number | null;
}

/** A CSV row (§3.2): `dateTime` in Unix seconds. */
export interface ConversionRow {
  key: string;
  visitor: VisitorId;
  target: string;
  dateTime: number;
  price: number | null;
  currency: string | null;
}

export type SkipReason = "too_old" | "no_visitor" | "goal_off";

export interface ConversionPlan {
  rows: ConversionRow[];
  /** The DateTimes fixed by this plan, to store before sending (key → Unix seconds). */
  fixed: Map<string, number>;
  skipped: { key: string; reason: SkipReason }[];
  counts: Record<"sent" | SkipReason, number>;
}

/**
 * The rows to send now. `fixed` holds each conversion's DateTime from an earlier attempt: it is reused, so a retry
 * re-sends the very same row and overwrites (§3.5); a new conversion takes the moment it happened, never later than
 * `now`, since a DateTime in the future fails the upload (§3.2). A visitor last seen more than 21 days before `now`
 * is not sent and counted `too_old` (§3.4); an unknown last visit is sent, as it may well link. Duplicates of one key
 * in the input yield one row.
 */
export function planConversions(input: { candidates: ConversionCandidate[]; goals: Record<ConversionGoal, string | null>; fixed: ReadonlyMap<string, number>; now: number }): ConversionPlan {
  const plan: ConversionPlan = { rows: [], fixed: new Map(), skipped: [], counts: { sent: 0, too_old: 0, no_visitor: 0, goal_off: 0 } };
  const seen = new Set<string>();
  const nowSeconds = Math.floor(input.now / 1000);
  const skip = (key: string, reason: SkipReason) => {
    plan.skipped.push({ key, reason });
    plan.counts[reason] += 1;
  };
  for (const { conversion, visitor, lastVisitAt } of input.candidates) {
    const key = conversionKey(conversion);
    if (seen.has(key)) continue;
    seen.add(key);
    // An identifier the settings would refuse (a number, a comma) is treated as no goal at all: it cannot be sent.
    const target = goalIdentifierSchema.safeParse(input.goals[conversion.goal]).data;
    if (!target) {
      skip(key, "goal_off");
      continue;
    }
    if (!visitor) {
      skip(key, "no_visitor");
      continue;
    }
    if (lastVisitAt !== null && input.now - lastVisitAt > METRICA_LINK_WINDOW_DAYS * DAY_MS) {
      skip(key, "too_old");
      continue;
    }
    const earlier = input.fixed.get(key);
    const dateTime = earlier ?? Math.min(Math.floor(conversion.at / 1000), nowSeconds);
    if (earlier === undefined) plan.fixed.set(key, dateTime);
    const revenue = conversion.revenue && Number.isFinite(conversion.revenue.amount) && conversion.revenue.amount >= 0 ? conversion.revenue : null;
    plan.rows.push({ key, visitor, target, dateTime, price: revenue?.amount ?? null, currency: revenue?.currency.toUpperCase() ?? null });
    plan.counts.sent += 1;
  }
  return plan;
}

/** Price with a dot as the decimal separator (§3.2), to the kopeck/cent. */
function priceText(price: number): string {
  return String(Math.round(price * 100) / 100);
}

/**
 * The CSV files of a plan's rows (§3.2: first line the column names, UTF-8, `ClientId`/`Yclid`, `Target`, `DateTime`,
 * `Price`, `Currency`), one file per identifier column: older API versions require `client_id_type` and a file with
 * that one column, newer ones take any (§3.1 [CONFLICT]); one column per file suits both. Rows without revenue leave
 * `Price` and `Currency` empty (they are optional columns). A currency that is not three letters drops both.
 */
export function conversionFiles(rows: ConversionRow[]): { column: VisitorId["column"]; csv: string; keys: string[] }[] {
  const files: { column: VisitorId["column"]; csv: string; keys: string[] }[] = [];
  for (const column of ["ClientId", "Yclid"] as const) {
    const mine = rows.filter((row) => row.visitor.column === column);
    if (mine.length === 0) continue;
    const lines = [`${column},Target,DateTime,Price,Currency`];
    for (const row of mine) {
      const money = row.price !== null && row.currency && /^[A-Z]{3}$/.test(row.currency) ? [priceText(row.price), row.currency] : ["", ""];
      lines.push([row.visitor.value, row.target, String(row.dateTime), ...money].join(","));
    }
    files.push({ column, csv: `${lines.join("\n")}\n`, keys: mine.map((row) => row.key) });
  }
  return files;
}
