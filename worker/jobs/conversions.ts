/**
 * Offline conversions to Yandex Metrica (issue #25 §3): CRM moments of leads and deals that came from CoMagic, sent
 * as conversions of JavaScript-event goals, so Direct bids for clients, not calls. The moments are recorded when they
 * are seen (a deal's change in the report's sync, a lead moved to the qualifying status) and each goes out once
 * (storage/conversions.ts); each portal tick sends the waiting ones: who the visitor is comes from CoMagic's visits of
 * the visitor the worker wrote to the lead (one read for all of them: ym_client_id, yclid, the last visit), the plan
 * from domain/offline-conversions.ts (21-day window, a DateTime fixed at the first try), one CSV file per identifier
 * column. Metrica's 200 only says "received": the tick also polls unfinished uploads until PROCESSED or
 * LINKAGE_FAILURE, and the report and the agency page show what became of each day's conversions.
 */
import * as z from "zod";
import type { BitrixClient } from "../bitrix/client";
import type { CoMagicRpcClient } from "../comagic/data-api";
import { fetchVisitorClickIds, type VisitorClickIds } from "../comagic/reports";
import { ledgerRef } from "../domain/crm-entity";
import {
  type ConversionCandidate,
  type ConversionGoal,
  type ConversionSettings,
  type CrmMoment,
  conversionFiles,
  conversionKey,
  conversionOf,
  entityOfConversionKey,
  planConversions,
  visitorIdOf,
} from "../domain/offline-conversions";
import { journeyWindow } from "../domain/report-window";
import { sendDue } from "../domain/send-window";
import { errorMessage, type Logger } from "../log";
import { isFinalStatus, MetricaError, type MetricaClient, type MetricaUploading } from "../metrica/client";
import { ga4ClientIdOf, ga4PayloadsOf } from "../domain/ga4-events";
import { Ga4Error, type Ga4Client } from "../ga4/client";
import type { AttributionStore, DealRecord } from "../storage/attribution-store";
import type { ConversionMoment, ConversionStore, Destination, WaitingConversion } from "../storage/conversions";
import type { CrmVisitorStore } from "../storage/crm-visitors";
import type { AppliedEvents } from "../storage/d1";
import type { FormVisitorStore } from "../storage/form-visitors";

/** Conversions one tick sends at most; the rest wait for the next tick. */
const MAX_CONVERSIONS = 500;
/** Uploads whose status one tick asks for (one Metrica request each). */
const MAX_POLLS = 20;
/** The first look for leads moved to the qualifying status: older ones could not link anyway (§3.4: 21 days). */
const FIRST_LOOK_DAYS = 21;
const LEADS_SINCE = "conversions.leads_since";

const at = (text: string | null) => {
  const ms = text ? Date.parse(text) : Number.NaN;
  return Number.isFinite(ms) ? ms : null;
};

function momentOf(moment: CrmMoment, visitorRef: string, settings: ConversionSettings): ConversionMoment | null {
  const conversion = conversionOf(moment, settings);
  if (!conversion) return null;
  return { key: conversionKey(conversion), goal: conversion.goal, visitorRef, at: new Date(conversion.at), revenue: conversion.revenue };
}

/** The moments of deals a sync saw changed: made (qualified, once per person) and won (with its revenue). */
export function momentsOfDeals(deals: readonly DealRecord[], settings: ConversionSettings): ConversionMoment[] {
  const moments: ConversionMoment[] = [];
  for (const deal of deals) {
    const source = { type: deal.sourceEntity, id: deal.sourceId } as const;
    const visitorRef = ledgerRef(source);
    const created = at(deal.createdAt);
    if (created !== null) {
      const from = deal.sourceEntity === "lead" ? source : null;
      const made = momentOf({ kind: "deal_created", deal: deal.dealId, from, at: created }, visitorRef, settings);
      if (made) moments.push(made);
    }
    const modified = at(deal.modifiedAt) ?? created;
    if (deal.semantic === "S" && modified !== null) {
      const revenue = deal.amount > 0 ? { amount: deal.amount, currency: deal.currency } : null;
      const won = momentOf({ kind: "deal_won", deal: deal.dealId, at: modified, revenue }, visitorRef, settings);
      if (won) moments.push(won);
    }
  }
  return moments;
}

const leadRows = z.array(z.object({ ID: z.union([z.string(), z.number()]).transform(String), STATUS_ID: z.string(), DATE_MODIFY: z.string().nullish() }).loose());
const bitrixTime = (date: Date) => `${date.toISOString().slice(0, 19)}+00:00`;

/**
 * Leads moved to the qualifying status since the last look (one crm.lead.list page of 50 a tick, by DATE_MODIFY),
 * those the report credits only (they came from CoMagic), recorded as "qualified" moments.
 */
export async function recordQualifiedLeads(deps: {
  bitrix: BitrixClient;
  attribution: AttributionStore;
  conversions: ConversionStore;
  destinations: Partial<Record<Destination, ConversionSettings>>;
  now: Date;
}): Promise<number> {
  const wanted = (Object.entries(deps.destinations) as [Destination, ConversionSettings][]).filter(([, s]) => s.qualifiedLeadStatus && s.goals.qualified !== null);
  const status = wanted[0]?.[1].qualifiedLeadStatus;
  if (!status) return 0;
  const since = (await deps.attribution.getState(LEADS_SINCE)) || new Date(deps.now.getTime() - FIRST_LOOK_DAYS * 86_400_000).toISOString();
  const rows = leadRows.parse(
    await deps.bitrix.call("crm.lead.list", { filter: { STATUS_ID: status, ">=DATE_MODIFY": bitrixTime(new Date(since)) }, order: { DATE_MODIFY: "ASC" }, select: ["ID", "STATUS_ID", "DATE_MODIFY"] }),
  );
  const credited = await deps.attribution.credited(
    "lead",
    rows.map((r) => r.ID),
  );
  let added = 0;
  for (const [destination, settings] of wanted) {
    const moments = rows.flatMap((r) => {
      const moment = credited.has(r.ID) ? momentOf({ kind: "lead_status", lead: r.ID, statusId: r.STATUS_ID, at: at(r.DATE_MODIFY ?? null) ?? deps.now.getTime() }, r.ID, settings) : null;
      return moment ? [moment] : [];
    });
    added += await deps.conversions.add(destination, moments, deps.now);
  }
  // A full page may have more behind it: the next look starts at the last one read (a repeated lead is ignored by key).
  const last = rows.at(-1)?.DATE_MODIFY;
  const next = rows.length >= 50 && last ? new Date(Date.parse(last)) : new Date(deps.now.getTime() - 5 * 60_000);
  await deps.attribution.setState(LEADS_SINCE, next.toISOString());
  return added;
}

/**
 * The click ids of each waiting conversion's visitor (by visitor ref): CoMagic's visits of the visitor the worker wrote
 * (one read), and what the snippet sent with the form that made the lead (`_ym_uid` first, as the issue orders them;
 * a visitor CoMagic does not know converts by it too). The last visit is the later of the two.
 */
async function clickIdsOf(
  deps: Pick<ConversionDeps, "visitors" | "dataApi" | "timeZone" | "ledger" | "formVisitors">,
  waiting: readonly WaitingConversion[],
  now: Date,
): Promise<Map<string, VisitorClickIds>> {
  const refs = waiting.map((w) => w.visitorRef);
  const visitorOf = await deps.visitors.findMany(refs);
  const clicks = visitorOf.size ? await fetchVisitorClickIds(deps.dataApi, [...new Set(visitorOf.values())], journeyWindow(now, deps.timeZone)) : new Map<string, VisitorClickIds>();
  const first = deps.ledger && deps.formVisitors ? await deps.ledger.firstEvents(refs) : new Map<string, { key: string }>();
  const forms = deps.formVisitors ? await deps.formVisitors.find([...first.values()].map((f) => f.key).filter((key) => key.startsWith("form-"))) : new Map<string, VisitorClickIds>();
  const found = new Map<string, VisitorClickIds>();
  for (const ref of new Set(refs)) {
    const visitor = visitorOf.get(ref);
    const comagic = visitor ? clicks.get(visitor) : undefined;
    const key = first.get(ref)?.key;
    const form = key ? forms.get(key) : undefined;
    if (!comagic && !form) continue;
    const last = Math.max(comagic?.lastVisitAt ?? 0, form?.lastVisitAt ?? 0);
    found.set(ref, {
      lastVisitAt: last || null,
      ymClientId: form?.ymClientId ?? comagic?.ymClientId ?? null,
      yclid: comagic?.yclid ?? form?.yclid ?? null,
      gaClientId: form?.gaClientId ?? comagic?.gaClientId ?? null,
    });
  }
  return found;
}

export interface ConversionDeps {
  dataApi: CoMagicRpcClient;
  /** The ledger and the snippet's ids of forms: a form lead's visitor CoMagic does not know (optional). */
  ledger?: AppliedEvents | null;
  formVisitors?: FormVisitorStore | null;
  /** CONVERSIONS_INTERVAL_MINUTES: conversions wait this long at most to go together (domain/send-window.ts). */
  intervalMinutes: number;
  metrica: MetricaClient;
  counterId: string;
  conversions: ConversionStore;
  visitors: CrmVisitorStore;
  goals: ConversionSettings["goals"];
  timeZone: string;
  now: () => Date;
  log: Logger;
}

export interface ConversionRunResult {
  sent: number;
  skipped: Record<"too_old" | "no_visitor" | "goal_off", number>;
  failed: number;
  uploads: number;
  polled: number;
}

/**
 * An upload's figures as Metrica gives them. The newer answer counts linked rows (§3.3); the older has only the
 * status, and LINKAGE_FAILURE then means none linked. Not linked: the rows Metrica kept less those it linked.
 */
function uploadRecord(upload: MetricaUploading, rows: number) {
  const done = isFinalStatus(upload.status);
  const linked = upload.linked ?? (upload.status === "LINKAGE_FAILURE" ? 0 : null);
  return { uploadId: upload.id, rows, status: upload.status, linked: done ? linked : null, notLinked: done && linked !== null ? Math.max(0, rows - linked) : null };
}

/** Sends the waiting conversions, then asks Metrica how its unfinished uploads went. Throws only what D1 throws. */
export async function sendConversions(deps: ConversionDeps): Promise<ConversionRunResult> {
  const result: ConversionRunResult = { sent: 0, skipped: { too_old: 0, no_visitor: 0, goal_off: 0 }, failed: 0, uploads: 0, polled: 0 };
  const now = deps.now();
  const waiting = await deps.conversions.waiting("metrica", MAX_CONVERSIONS);
  if (sendDue(waiting[0]?.recordedAt, waiting.length, MAX_CONVERSIONS, now, deps.intervalMinutes)) {
    const clicks = await clickIdsOf(deps, waiting, now);
    const candidates: ConversionCandidate[] = waiting.map((w) => {
      const ids = clicks.get(w.visitorRef);
      return {
        conversion: { goal: w.goal, entity: entityOfConversionKey(w.key), at: w.at.getTime(), revenue: w.revenue },
        visitor: ids ? visitorIdOf({ ymClientId: ids.ymClientId, yclid: ids.yclid }) : null,
        lastVisitAt: ids?.lastVisitAt ?? null,
      };
    });
    const fixed = new Map(waiting.flatMap((w) => (w.dateTime !== null ? [[w.key, w.dateTime] as const] : [])));
    const plan = planConversions({ candidates, goals: deps.goals, fixed, now: now.getTime() });
    // Fixed before sending: a retry after a lost answer re-sends the very same row (§3.5 overwrite).
    await deps.conversions.fix("metrica", plan.fixed);
    for (const reason of ["too_old", "no_visitor", "goal_off"] as const) {
      const keys = plan.skipped.filter((s) => s.reason === reason).map((s) => s.key);
      await deps.conversions.settle("metrica", keys, reason, now);
      result.skipped[reason] += keys.length;
    }
    for (const file of conversionFiles(plan.rows)) {
      try {
        const upload = await deps.metrica.uploadConversions(deps.counterId, file.csv, { comment: "comagic bitrix24" });
        result.uploads += 1;
        await deps.conversions.recordUpload(uploadRecord(upload, file.keys.length), now);
        await deps.conversions.settle("metrica", file.keys, "sent", now, { uploadId: upload.id });
        result.sent += file.keys.length;
      } catch (error) {
        if (error instanceof MetricaError && !error.transient) {
          // A token or counter a person must fix: said, and not tried again every tick.
          await deps.conversions.settle("metrica", file.keys, "failed", now, { reason: error.message });
          result.failed += file.keys.length;
          deps.log.error("conversions.refused", { error: error.message, rows: file.keys.length });
        } else {
          deps.log.warn("conversions.upload_failed", { error: errorMessage(error), rows: file.keys.length });
        }
      }
    }
  }
  for (const uploadId of await deps.conversions.unfinishedUploads(MAX_POLLS)) {
    try {
      const upload = await deps.metrica.uploadStatus(deps.counterId, uploadId);
      result.polled += 1;
      const rows = upload.lineQuantity ?? upload.sourceQuantity ?? 0;
      await deps.conversions.updateUpload(uploadRecord(upload, rows), now);
    } catch (error) {
      deps.log.warn("conversions.status_failed", { uploadId, error: errorMessage(error) });
      break;
    }
  }
  if (waiting.length || result.polled) deps.log.info("conversions.sent", { ...result });
  return result;
}

export interface Ga4Deps extends Pick<ConversionDeps, "dataApi" | "conversions" | "visitors" | "timeZone" | "now" | "log" | "intervalMinutes" | "ledger" | "formVisitors"> {
  ga4: Ga4Client;
  names: Record<ConversionGoal, string | null>;
}

/**
 * The waiting conversions as GA4 Measurement Protocol events (issue #25 §3, optional), by the visitor's `_ga` client id
 * from CoMagic's visits (`ua_client_id`). GA4 answers 2xx to anything and says nothing of what it kept (FACTS-loop §4):
 * "sent" is all that can be known; the setting was checked against /debug/mp/collect when it was saved.
 */
export async function sendGa4Events(deps: Ga4Deps): Promise<{ sent: number; skipped: number }> {
  const now = deps.now();
  const waiting = await deps.conversions.waiting("ga4", MAX_CONVERSIONS);
  if (!sendDue(waiting[0]?.recordedAt, waiting.length, MAX_CONVERSIONS, now, deps.intervalMinutes)) return { sent: 0, skipped: 0 };
  const clicks = await clickIdsOf(deps, waiting, now);
  const plan = ga4PayloadsOf(
    waiting.map((w) => ({
      conversion: { goal: w.goal, entity: entityOfConversionKey(w.key), at: w.at.getTime(), revenue: w.revenue },
      clientId: ga4ClientIdOf(clicks.get(w.visitorRef)?.gaClientId ?? null),
    })),
    deps.names,
    now.getTime(),
  );
  const reasons: Record<string, "no_visitor" | "too_old" | "goal_off"> = { no_client_id: "no_visitor", too_old: "too_old", goal_off: "goal_off" };
  for (const reason of Object.keys(reasons)) {
    await deps.conversions.settle(
      "ga4",
      plan.skipped.filter((s) => s.reason === reason).map((s) => s.key),
      reasons[reason] as "no_visitor",
      now,
    );
  }
  let sent = 0;
  for (const [i, payload] of plan.payloads.entries()) {
    const keys = plan.keys[i] ?? [];
    try {
      await deps.ga4.send(payload);
      await deps.conversions.settle("ga4", keys, "sent", now);
      sent += keys.length;
    } catch (error) {
      if (error instanceof Ga4Error && !error.transient) {
        await deps.conversions.settle("ga4", keys, "failed", now, { reason: error.message });
        deps.log.error("ga4.refused", { error: error.message, events: keys.length });
      } else {
        // GA4 keeps no key (FACTS-loop §6 "no dedup"): after a timeout the events may have arrived; the next tick sends them again.
        deps.log.warn("ga4.send_failed", { error: errorMessage(error), events: keys.length });
        break;
      }
    }
  }
  deps.log.info("ga4.sent", { sent, skipped: plan.skipped.length });
  return { sent, skipped: plan.skipped.length };
}
