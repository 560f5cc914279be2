/**
 * Sends the follow-ups of a written lead (telephony, call record, enrichment) to the enrichment queue. The lead is
 * in Bitrix24 by then and its event in the ledger, so a redelivery would not send them again: when the queue
 * refuses a slice twice, its jobs go straight into D1's dead letters (code ENQUEUE_FAILED, replayable with
 * `POST /admin/dead-letters/<id>/replay`) instead of being lost. Only when D1 refuses too does `send` throw, after
 * every slice was tried.
 */
import { comagicAuth, type Config } from "../config";
import { followUpDelaySeconds } from "../domain/retry-policy";
import type { Env } from "../env";
import { errorMessage, type Logger } from "../log";
import { storesFor } from "../wiring";
import type { FollowUpJob, FollowUpSender } from "./schema";

/** Cloudflare Queues take at most 100 messages a sendBatch. */
const SLICE = 100;

export function followUpSender(env: Env, config: Config, log: Logger): FollowUpSender | null {
  const queue = env.ENRICH_JOBS;
  if (!queue) return null;
  const { deadLetters } = storesFor(env, config.portal);
  const request = (body: FollowUpJob): MessageSendRequest => ({
    body,
    contentType: "json",
    delaySeconds: body.type === "call.telephony" ? 0 : followUpDelaySeconds(Date.now(), config.ENRICH_DELAY_SECONDS, config.ENRICH_SLOT_SECONDS),
  });
  const keep = async (jobs: readonly FollowUpJob[], error: unknown): Promise<void> => {
    if (!deadLetters) throw error;
    const failedAt = new Date().toISOString();
    const reason = `the enrichment queue refused this follow-up twice: ${errorMessage(error)}`;
    await deadLetters.record(
      jobs.map((job) => ({
        id: `enqueue-${crypto.randomUUID()}`,
        queue: "enrich",
        jobType: job.type,
        portal: config.portal,
        letter: { queue: "enrich", job, reason, code: "ENQUEUE_FAILED", attempts: 0, failedAt },
      })),
    );
    log.error("followup.dead_lettered", { jobs: jobs.length, types: [...new Set(jobs.map((j) => j.type))], error: errorMessage(error) });
  };
  return {
    enrichment: comagicAuth(config) !== null,
    send: async (jobs) => {
      // A round of 40 calls makes 120 follow-ups: more than one sendBatch takes. Every slice is tried whatever an
      // earlier one met; what could be neither queued nor kept is said at the end.
      const lost: { jobs: number; error: unknown }[] = [];
      for (let i = 0; i < jobs.length; i += SLICE) {
        const slice = jobs.slice(i, i + SLICE);
        const messages = slice.map(request);
        await queue
          .sendBatch(messages)
          .catch(() => queue.sendBatch(messages).catch((error: unknown) => keep(slice, error)))
          .catch((error: unknown) => void lost.push({ jobs: slice.length, error }));
      }
      if (lost.length) throw new Error(`${lost.reduce((n, l) => n + l.jobs, 0)} follow-ups were neither queued nor kept: ${errorMessage(lost[0]?.error)}`);
    },
  };
}
