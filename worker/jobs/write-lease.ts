/**
 * One portal's lead writes run one batch at a time, whichever consumer holds them: the rules "one lead per person"
 * and "exactly once" read the ledger and Bitrix24, then write, and two batches of one portal side by side could
 * both read "no lead yet". The portal's Durable Object grants a lease (worker/portal-state.ts); a consumer that
 * finds it held sends its messages back to the queue a few seconds later as new messages (a busy portal is not a
 * failure: retries would count towards max_retries and end in dead letters while a noisy portal drains).
 */
import type { Env } from "../env";
import { errorMessage, type Logger } from "../log";

/** Longer than a lead batch takes (40 events, each waiting for permits at 2 requests a second), shorter than a consumer's 15 minutes. */
const WRITE_LEASE_MS = 10 * 60_000;
/** How soon a batch that found the lease held comes back: the holder's batch takes seconds. */
const BUSY_DELAY_SECONDS = { min: 2, max: 30 };

type Batch = { messages: readonly Message<unknown>[] };

export async function withWriteLease(env: Env, portal: string, batch: Batch, queue: Queue<unknown>, log: Logger, work: () => Promise<void>): Promise<void> {
  const ns = env.PORTAL_STATE;
  if (!ns) return work();
  const owner = crypto.randomUUID();
  const stub = ns.getByName(portal);
  const { held, waitMs } = await stub.lease(owner, WRITE_LEASE_MS);
  if (!held) {
    const delaySeconds = Math.min(BUSY_DELAY_SECONDS.max, Math.max(BUSY_DELAY_SECONDS.min, Math.ceil(waitMs / 1000)));
    // Sent before acked: a crash in between delivers the jobs twice, which the ledger makes harmless.
    await queue.sendBatch(batch.messages.map((m) => ({ body: m.body, contentType: "json" as const, delaySeconds })));
    for (const m of batch.messages) m.ack();
    log.info("queue.portal_busy", { count: batch.messages.length, delaySeconds });
    return;
  }
  try {
    await work();
  } finally {
    await stub.release(owner).catch((error: unknown) => log.warn("lease.release_failed", { error: errorMessage(error) }));
  }
}
