import type { CountryCode } from "libphonenumber-js/core";
import type { CrmStore } from "../bitrix/crm-store";
import type { CoMagicRpcClient } from "../comagic/data-api";
import { fetchInboundCalls } from "../comagic/reports";
import { classifySession } from "../domain/comagic-session";
import { contactKeys } from "../domain/lead-event";
import type { Logger } from "../log";
import { sendInBatches } from "./send-in-batches";
import { recordInLedger, type AppliedEvents } from "../storage/d1";
import { leadJob, type LeadJob } from "./schema";

export interface ReconcileReport {
  from: string;
  to: string;
  calls: number;
  targeted: number;
  alreadyInBitrix: number;
  enqueued: number;
}

export interface ReconcileDeps {
  dataApi: CoMagicRpcClient;
  store: CrmStore;
  ledger: AppliedEvents | null;
  leadJobs: Pick<Queue<LeadJob>, "sendBatch">;
  log: Logger;
  now: () => Date;
  rules: { defaultRegion: CountryCode; minLostCallSeconds: number; timeZone: string };
}

/**
 * Finds targeted inbound calls in CoMagic's calls report that never became a lead (a notification lost,
 * misconfigured, or sent while the worker was down) and queues them like a webhook would. Running twice,
 * or while the webhook for the same call arrives, is harmless: the consumer is idempotent per session.
 */
export async function reconcileCalls(window: { from: Date; to: Date }, deps: ReconcileDeps): Promise<ReconcileReport> {
  const sessions = await fetchInboundCalls(deps.dataApi, { ...window, timeZone: deps.rules.timeZone });
  const events = sessions.flatMap((session) => {
    const c = classifySession(session, { defaultRegion: deps.rules.defaultRegion, minLostCallSeconds: deps.rules.minLostCallSeconds, receivedAt: deps.now() });
    return c.status === "accepted" ? [c.event] : [];
  });
  const keys = events.map((e) => e.key);
  const known = new Set((await deps.ledger?.find(keys))?.keys() ?? []);
  const inBitrix = await deps.store.findAppliedKeys(keys.filter((k) => !known.has(k)));
  const missing = events.filter((e) => !known.has(e.key) && !inBitrix.has(e.key));
  // Written to Bitrix24 by a consumer stopped before its ledger write: record them as the consumer would have.
  const byKey = new Map(events.map((e) => [e.key, e]));
  await recordInLedger(
    deps.ledger,
    [...inBitrix].map(([key, leadId]) => ({ key, leadId, contacts: contactKeys(byKey.get(key) ?? { phone: null, email: null }) })),
    deps.now(),
    deps.log,
  );

  const requestId = `reconcile-${deps.now().toISOString()}`;
  await sendInBatches(
    deps.leadJobs,
    missing.map((event) => ({ body: leadJob(event, requestId), contentType: "json" })),
  );
  const report = {
    from: window.from.toISOString(),
    to: window.to.toISOString(),
    calls: sessions.length,
    targeted: events.length,
    alreadyInBitrix: events.length - missing.length,
    enqueued: missing.length,
  };
  deps.log.info("reconcile.done", { ...report, missingKeys: missing.slice(0, 20).map((e) => e.key) });
  return report;
}
