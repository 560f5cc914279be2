import type { CrmEntityRef } from "./crm-entity";
import { parseLedgerRef } from "./crm-entity";
import { identityKeys, type LeadEvent } from "./lead-event";
import { splitIntoRounds } from "./rounds";

/*
 * The lead consumer's batch rules, without I/O: which events the ledger already settles, the rounds in which
 * the rest are written (no two events about one person in a round, order kept), and which events of a round
 * wait because an earlier event about the same person failed or has a create in doubt.
 */

export interface BatchPlan<T> {
  /** Events the ledger knows were written, and where: acked as already applied, with no Bitrix24 lookup. */
  alreadyApplied: { item: T; target: CrmEntityRef }[];
  rounds: T[][];
}

export function planBatch<T>(items: readonly T[], eventOf: (item: T) => LeadEvent, ledgered: ReadonlyMap<string, string>): BatchPlan<T> {
  const alreadyApplied: BatchPlan<T>["alreadyApplied"] = [];
  const pending: T[] = [];
  for (const item of items) {
    const target = parseLedgerRef(ledgered.get(eventOf(item).key) ?? "");
    if (target) alreadyApplied.push({ item, target });
    else pending.push(item);
  }
  return { alreadyApplied, rounds: splitIntoRounds(pending, (item) => identityKeys(eventOf(item))) };
}

export type WaitReason = "earlier_event_failed" | "create_in_doubt";

export interface RoundPlan<T> {
  write: T[];
  wait: { item: T; reason: WaitReason }[];
  /** The people (identity keys) failed so far, including those whose event now waits behind a failure. */
  failedKeys: Set<string>;
}

/**
 * Which events of a round are written now. `failedKeys`: people whose earlier event in this batch failed (a
 * later event about them waits, so events keep their order). `held`: events whose contact another event's
 * create in doubt holds; they wait without marking the person failed, since the holding event may come later
 * in this very batch and must go on.
 */
export function planRound<T>(round: readonly T[], eventOf: (item: T) => LeadEvent, failedKeys: ReadonlySet<string>, held: ReadonlySet<string>): RoundPlan<T> {
  const failed = new Set(failedKeys);
  const plan: RoundPlan<T> = { write: [], wait: [], failedKeys: failed };
  for (const item of round) {
    const event = eventOf(item);
    const keys = identityKeys(event);
    if (keys.some((k) => failed.has(k))) {
      for (const k of keys) failed.add(k);
      plan.wait.push({ item, reason: "earlier_event_failed" });
    } else if (held.has(event.key)) {
      plan.wait.push({ item, reason: "create_in_doubt" });
    } else {
      plan.write.push(item);
    }
  }
  return plan;
}
