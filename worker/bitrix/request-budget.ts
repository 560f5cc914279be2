/*
 * The Bitrix24 client's side of a portal's request budget: before each HTTP request it asks the portal's Durable
 * Object (worker/portal-state.ts) for a permit and sleeps while told to wait; after a QUERY_LIMIT_EXCEEDED it tells
 * the object, which empties the bucket. The wait is capped: a portal whose budget stays spent does not keep a shared
 * queue consumer asleep; its job goes back to the queue with a retryable error instead.
 */
import type { BucketLimits } from "../domain/request-budget";
import type { PortalState } from "../portal-state";
import { RequestBudgetError, type RequestBudget } from "./errors";

/** A minute: a consumer may sleep this long in all for permits before its job goes back to the queue. */
export const MAX_BUDGET_WAIT_MS = 60_000;

export interface PortalBudgetOptions {
  /** The portal's plan limits (default: BITRIX_LIMITS, inside the object). */
  limits?: BucketLimits;
  maxWaitMs?: number;
}

const realSleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

/** The budget of `portal` (its object is named by it), for `createBitrixClient({ budget })`. */
export function portalBudget(ns: DurableObjectNamespace<PortalState>, portal: string, sleep: (ms: number) => Promise<void> = realSleep, options: PortalBudgetOptions = {}): RequestBudget {
  const maxWaitMs = options.maxWaitMs ?? MAX_BUDGET_WAIT_MS;
  // A stub may be reused for many calls, but one that threw may be broken for good: the next call makes a new one.
  let stub: DurableObjectStub<PortalState> | null = null;
  async function call<T>(use: (s: DurableObjectStub<PortalState>) => Promise<T>): Promise<T> {
    stub ??= ns.getByName(portal);
    try {
      return await use(stub);
    } catch (error) {
      stub = null;
      throw error;
    }
  }

  return {
    async acquire(n = 1) {
      let waitedMs = 0;
      for (;;) {
        const { granted, waitMs } = await call((s) => s.take(n, options.limits));
        if (granted) return;
        // Sleeping past the cap only to give up after it would waste the consumer's time: give up now.
        if (waitedMs + waitMs > maxWaitMs) throw new RequestBudgetError(portal, waitedMs, Math.ceil(waitMs / 1000));
        await sleep(waitMs);
        waitedMs += waitMs;
      }
    },
    async refused() {
      await call((s) => s.drain());
    },
  };
}
