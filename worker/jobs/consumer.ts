import type { CountryCode } from "libphonenumber-js/min";
import { BitrixError } from "../bitrix/errors";
import type { LeadStore, WriteOutcome } from "../bitrix/lead-store";
import { retryDelaySeconds } from "../domain/backoff";
import { identityKeys } from "../domain/lead-event";
import { planLeadWrite } from "../domain/lead-plan";
import { maskPhone } from "../domain/phone";
import { splitIntoRounds } from "../domain/rounds";
import { errorMessage, type Logger } from "../log";
import { queueMessageSchema, type DeadLetter, type LeadJob } from "./schema";

/**
 * The consumer gives up (dead-letters with a reason) on the 20th delivery, one short of wrangler.toml's
 * max_retries = 20, so the platform's own dead-lettering (which carries no reason) stays a backstop.
 */
export const MAX_DELIVERY_ATTEMPTS = 20;

export interface ConsumerDeps {
  store: LeadStore;
  deadLetters: { send(letter: DeadLetter, options?: QueueSendOptions): Promise<unknown> };
  log: Logger;
  now: () => Date;
  random: () => number;
  rules: { dedupDays: number; defaultRegion: CountryCode };
}

type Job = { message: Message<unknown>; job: LeadJob };

async function giveUp({ message, job }: Job, error: { code: string; message: string }, deps: ConsumerDeps): Promise<void> {
  const letter: DeadLetter = {
    type: "dead-letter",
    job,
    reason: error.message,
    code: error.code,
    attempts: message.attempts,
    failedAt: deps.now().toISOString(),
  };
  try {
    await deps.deadLetters.send(letter, { contentType: "json" });
    deps.log.error("job.dead_lettered", { key: job.event.key, code: error.code, reason: error.message, attempts: message.attempts });
    message.ack();
  } catch (sendError) {
    deps.log.error("job.dead_letter_failed", { key: job.event.key, error: errorMessage(sendError) });
    message.retry({ delaySeconds: retryDelaySeconds(message.attempts, deps.random()) });
  }
}

async function retryOrGiveUp(item: Job, error: unknown, deps: ConsumerDeps): Promise<void> {
  const failure = error instanceof BitrixError ? error : new BitrixError("UNEXPECTED", errorMessage(error), true, "unknown");
  if (!failure.transient || item.message.attempts >= MAX_DELIVERY_ATTEMPTS) {
    await giveUp(item, failure, deps);
    return;
  }
  const delaySeconds = retryDelaySeconds(item.message.attempts, deps.random(), failure.retryAfterSeconds);
  deps.log.warn("job.retry", { key: item.job.event.key, code: failure.code, reason: failure.message, attempts: item.message.attempts, delaySeconds });
  item.message.retry({ delaySeconds });
}

function settle(item: Job, outcome: WriteOutcome | undefined, deps: ConsumerDeps): Promise<void> | void {
  if (!outcome) return retryOrGiveUp(item, new BitrixError("UNEXPECTED", "no outcome for job", true, "unknown"), deps);
  if (!outcome.ok) return retryOrGiveUp(item, outcome.error, deps);
  const { event } = item.job;
  const eventName = { created: "lead.created", updated: "lead.updated", skipped: "lead.already_applied" }[outcome.action];
  deps.log.info(eventName, {
    key: event.key,
    kind: event.kind,
    leadId: outcome.leadId,
    phone: event.phone ? maskPhone(event.phone) : null,
    requestId: item.job.requestId,
    attempts: item.message.attempts,
  });
  item.message.ack();
}

/**
 * Writes a queue batch into Bitrix24: events about different people are looked up and written together,
 * events about the same person or session one after another. Never throws: every message is acked,
 * retried with backoff, or dead-lettered with its reason.
 */
export async function handleLeadBatch(batch: MessageBatch<unknown>, deps: ConsumerDeps): Promise<void> {
  const jobs: Job[] = [];
  for (const message of batch.messages) {
    const parsed = queueMessageSchema.safeParse(message.body);
    if (parsed.success) {
      jobs.push({ message, job: parsed.data });
    } else {
      deps.log.error("job.invalid", { messageId: message.id, issues: parsed.error.issues.slice(0, 5).map((i) => `${i.path.join(".")}: ${i.message}`) });
      message.ack();
    }
  }

  const rounds = splitIntoRounds(jobs, (item) => identityKeys(item.job.event));
  // Keys of events that failed in this batch: a later event about the same person waits for them.
  const failedKeys = new Set<string>();
  for (const [index, allInRound] of rounds.entries()) {
    const round: Job[] = [];
    for (const item of allInRound) {
      const keys = identityKeys(item.job.event);
      if (keys.some((k) => failedKeys.has(k))) {
        keys.forEach((k) => failedKeys.add(k));
        await retryOrGiveUp(item, new BitrixError("WAITING_FOR_EARLIER_EVENT", "an earlier event about the same person failed", true, "no"), deps);
      } else {
        round.push(item);
      }
    }
    if (round.length === 0) continue;
    try {
      const events = round.map((item) => item.job.event);
      const lookups = await deps.store.lookup(events);
      const writes = events.map((event) => {
        const lookup = lookups.get(event.key) ?? { appliedLeadId: null, candidates: [] };
        return { event, plan: planLeadWrite(event, lookup, { now: deps.now(), ...deps.rules }) };
      });
      const outcomes = await deps.store.apply(writes);
      for (const item of round) {
        const outcome = outcomes.get(item.job.event.key);
        if (!outcome?.ok) identityKeys(item.job.event).forEach((k) => failedKeys.add(k));
        await settle(item, outcome, deps);
      }
    } catch (error) {
      // Later rounds hold events about the same people: they wait too, so events keep their order.
      for (const item of [...round, ...rounds.slice(index + 1).flat()]) await retryOrGiveUp(item, error, deps);
      return;
    }
  }
}
