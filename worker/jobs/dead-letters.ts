import { portalNamedBy } from "../domain/portal-key";
import { DEAD_LETTER_STORE_RETRY_SECONDS } from "../domain/retry-policy";
import * as z from "zod";
import { errorMessage, type Logger } from "../log";
import type { DeadLetterStore } from "../storage/d1";

const letterSchema = z.object({
  type: z.literal("dead-letter"),
  queue: z.string(),
  job: z.unknown(),
  reason: z.string(),
  code: z.string(),
  attempts: z.number(),
  failedAt: z.string(),
});
const jobType = z.object({ type: z.string() }).loose();

/**
 * Records dead letters in D1: the ones our consumers send (with Bitrix's or CoMagic's reason) and raw jobs
 * the platform moved here after max_retries (no reason is known for those; the logs have it).
 */
export async function handleDeadLetters(batch: Pick<MessageBatch<unknown>, "messages" | "ackAll" | "retryAll">, deps: { store: DeadLetterStore; log: Logger }): Promise<void> {
  const letters = batch.messages.map((message) => {
    const letter = letterSchema.safeParse(message.body);
    if (letter.success) {
      const { type: _type, ...rest } = letter.data;
      const kind = jobType.safeParse(rest.job);
      return { id: message.id, queue: rest.queue, jobType: kind.success ? kind.data.type : "unknown", portal: portalNamedBy(rest.job), letter: rest };
    }
    const kind = jobType.safeParse(message.body);
    return {
      id: message.id,
      queue: "unknown",
      jobType: kind.success ? kind.data.type : "unknown",
      portal: portalNamedBy(message.body),
      letter: {
        queue: "unknown",
        job: message.body,
        reason: "retries exhausted; moved by Cloudflare Queues (see the job.retry log lines)",
        code: "RETRIES_EXHAUSTED",
        attempts: message.attempts,
        failedAt: message.timestamp.toISOString(),
      },
    };
  });
  try {
    await deps.store.record(letters);
    for (const l of letters) deps.log.error("dead_letter.recorded", { id: l.id, jobType: l.jobType, code: l.letter.code, reason: l.letter.reason });
    batch.ackAll();
  } catch (error) {
    deps.log.error("dead_letter.record_failed", { error: errorMessage(error) });
    batch.retryAll({ delaySeconds: DEAD_LETTER_STORE_RETRY_SECONDS });
  }
}
