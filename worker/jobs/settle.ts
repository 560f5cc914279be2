/*
 * How a queue job's failure ends: deferred while CoMagic's points say "not now", retried with backoff while it is
 * transient, or dead-lettered with its reason. Every consumer settles its failures here.
 */
import type * as z from "zod";
import { BitrixError } from "../bitrix/errors";
import { CoMagicDeferredError, CoMagicError } from "../comagic/data-api";
import { decide, retryDelaySeconds } from "../domain/retry-policy";
import { errorMessage, type Logger } from "../log";
import type { DeadLetterSender } from "./schema";

export interface Failure {
  code: string;
  message: string;
  transient: boolean;
  retryAfterSeconds: number;
  /** CoMagic's points said "not now": the job waits for the reset as a new message and never counts as failed. */
  deferred?: boolean;
}

export interface SettleDeps {
  deadLetters: DeadLetterSender;
  log: Logger;
  now: () => Date;
  random: () => number;
  /**
   * Puts a job back on its own queue as a new message (its attempts start again at 1) after `delaySeconds`;
   * absent where the queue has no producer binding, and then a deferred job waits as a retry.
   */
  resend?: ((body: unknown, delaySeconds: number) => Promise<void>) | null;
}

/** Any error thrown by an adapter, as a failure the retry policy understands; unknown ones are transient. */
export function asFailure(error: unknown): Failure {
  if (error instanceof CoMagicDeferredError) return { code: error.mnemonic, message: error.message, transient: true, retryAfterSeconds: error.retryAfterSeconds, deferred: true };
  if (error instanceof CoMagicError) return { code: error.mnemonic, message: error.message, transient: error.transient, retryAfterSeconds: error.retryAfterSeconds };
  if (error instanceof BitrixError) return error;
  return { code: "UNEXPECTED", message: errorMessage(error), transient: true, retryAfterSeconds: 0 };
}

/**
 * Defers a job CoMagic's points hold back; retries a transient failure with backoff; dead-letters a permanent one,
 * or one out of attempts. Says which.
 */
export async function retryOrDeadLetter(
  message: Message<unknown>,
  queue: string,
  failure: Failure,
  context: Record<string, unknown>,
  deps: SettleDeps,
): Promise<"retried" | "dead-lettered" | "deferred"> {
  const decision = decide(failure, message.attempts, deps.random());
  if (decision.action === "defer") {
    await defer(message, decision.delaySeconds, failure, context, deps);
    return "deferred";
  }
  if (decision.action === "retry") {
    const { delaySeconds } = decision;
    deps.log.warn("job.retry", { ...context, code: failure.code, reason: failure.message, attempts: message.attempts, delaySeconds });
    message.retry({ delaySeconds });
    return "retried";
  }
  try {
    await deps.deadLetters.send(
      { type: "dead-letter", queue, job: message.body, reason: failure.message, code: failure.code, attempts: message.attempts, failedAt: deps.now().toISOString() },
      { contentType: "json" },
    );
    deps.log.error("job.dead_lettered", { ...context, code: failure.code, reason: failure.message, attempts: message.attempts });
    message.ack();
    return "dead-lettered";
  } catch (sendError) {
    deps.log.error("job.dead_letter_failed", { ...context, error: errorMessage(sendError) });
    message.retry({ delaySeconds: retryDelaySeconds(message.attempts, deps.random()) });
    return "retried";
  }
}

/**
 * Acks the message and sends its body again with the delay: a retry() would count an attempt, and after
 * max_retries the platform dead-letters (cloudflare/FACTS.md §2: `msg.attempts` only grows with retries). When the
 * send fails or no producer exists the message waits as a retry instead: then it does count, once per wait.
 */
async function defer(message: Message<unknown>, delaySeconds: number, failure: Failure, context: Record<string, unknown>, deps: SettleDeps): Promise<void> {
  const fields = { ...context, code: failure.code, reason: failure.message, waitSeconds: failure.retryAfterSeconds, delaySeconds, attempts: message.attempts };
  if (deps.resend) {
    try {
      await deps.resend(message.body, delaySeconds);
      deps.log.warn("comagic.deferred", { ...fields, resent: true });
      message.ack();
      return;
    } catch (error) {
      deps.log.error("comagic.defer_failed", { ...context, error: errorMessage(error) });
    }
  }
  deps.log.warn("comagic.deferred", { ...fields, resent: false });
  message.retry({ delaySeconds });
}

/**
 * Reads each message with the job's schema. A message no version of the worker can read (or one from a
 * future one) is logged and acked: retrying it would never help.
 */
export function readJobs<T>(messages: readonly Message<unknown>[], schema: z.ZodType<T>, log: Logger): { message: Message<unknown>; job: T }[] {
  const jobs: { message: Message<unknown>; job: T }[] = [];
  for (const message of messages) {
    const parsed = schema.safeParse(message.body);
    if (parsed.success) {
      jobs.push({ message, job: parsed.data });
    } else {
      log.error("job.invalid", { messageId: message.id, issues: parsed.error.issues.slice(0, 5).map((i) => `${i.path.join(".")}: ${i.message}`) });
      message.ack();
    }
  }
  return jobs;
}
