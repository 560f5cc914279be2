/**
 * What a consumer checks with a portal's Durable Object (worker/portal-state.ts) before it works on that portal's
 * messages of a batch:
 * - Lead writes run one batch at a time per portal, whichever consumer holds them: "one lead per person" and
 *   "exactly once" read the ledger and Bitrix24, then write, and two batches of one portal side by side could both
 *   read "no lead yet". The object grants a lease; a consumer that finds it held sends the messages back.
 * - A portal whose Bitrix24 budget is spent for longer than a short wait (a backlog draining, Bitrix24 refusing)
 *   waits in its own object, not in a shared consumer: its messages go back to the queue until the object says the
 *   permits will be there, so the consumer moves on to other portals' messages.
 * Messages sent back are new messages (sent before acked: a crash in between delivers a job twice, which the ledger
 * makes harmless); a busy portal is not a failure, and retries would count towards max_retries and end in dead letters.
 */
import type { Env } from "../env";
import { errorMessage, type Logger } from "../log";

/** Longer than a lead batch takes (40 events, each round waiting for permits), shorter than a consumer's 15 minutes. */
const WRITE_LEASE_MS = 10 * 60_000;
/** Permits a round of a batch takes, about: the lookup `batch`, the write `batch`, one more read or to-do. */
const ROUND_PERMITS = 3;
/**
 * How far ahead a portal's budget may be spoken for and a consumer still take its messages; further, they come back:
 * the burst the bucket lends (40 permits, 20 s of refill) and 5 s a consumer may sit waiting for permits.
 */
const ADMISSION_AHEAD_MS = 25_000;
/**
 * How soon messages sent back return: not at once (the portal is busy); at their return slot, up to 15 minutes (a
 * queue takes delays of up to 12 hours, cloudflare/FACTS.md §2; later ones come back and get a new slot).
 */
const BACK_DELAY_SECONDS = { min: 2, max: 900 };
/** How soon a batch that found the portal's lease held comes back. */
const LEASE_BACK_MS = 30_000;

type Batch = { messages: readonly Message<unknown>[] };

async function sendBack(batch: Batch, queue: Pick<Queue<unknown>, "sendBatch">, waitMs: number, log: Logger, reason: "lease_held" | "budget_spent"): Promise<void> {
  const delaySeconds = Math.min(BACK_DELAY_SECONDS.max, Math.max(BACK_DELAY_SECONDS.min, Math.ceil(waitMs / 1000)));
  await queue.sendBatch(batch.messages.map((m) => ({ body: m.body, contentType: "json" as const, delaySeconds })));
  for (const m of batch.messages) m.ack();
  log.info("queue.portal_busy", { reason, count: batch.messages.length, delaySeconds });
}

/** Runs `work` on one portal's messages when its object lets it (`lease`: lead writes); else sends them back. */
export async function throughPortalGate(
  env: Env,
  portal: string,
  batch: Batch,
  queue: Pick<Queue<unknown>, "sendBatch">,
  options: { lease: boolean },
  log: Logger,
  work: () => Promise<void>,
): Promise<void> {
  const ns = env.PORTAL_STATE;
  if (!ns) return work();
  const stub = ns.getByName(portal);
  const owner = crypto.randomUUID();
  if (options.lease) {
    const { held, waitMs } = await stub.lease(owner, WRITE_LEASE_MS);
    // The lease lasts 10 minutes in case its holder dies, but the holder's batch takes seconds: come back soon.
    if (!held) return sendBack(batch, queue, Math.min(waitMs, LEASE_BACK_MS), log, "lease_held");
  }
  try {
    const { admitted, waitMs, mark } = await stub.admit(ROUND_PERMITS, ADMISSION_AHEAD_MS);
    if (!admitted) return await sendBack(batch, queue, waitMs, log, "budget_spent");
    try {
      await work();
    } finally {
      await stub.settle(mark, ROUND_PERMITS).catch((error: unknown) => log.warn("admission.settle_failed", { error: errorMessage(error) }));
    }
  } finally {
    if (options.lease) await stub.release(owner).catch((error: unknown) => log.warn("lease.release_failed", { error: errorMessage(error) }));
  }
}
