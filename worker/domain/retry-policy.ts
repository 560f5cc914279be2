/*
 * When a failed step is tried again, and when it is given up: the one home of retry timing. Queue consumers
 * ask `decide`; the Bitrix24 and CoMagic clients take their in-request pauses from here; nothing else writes a
 * delay.
 */

export const RETRY_BASE_SECONDS = 2;
/** 15 minutes: long enough to ride out a Bitrix24 operating-limit window (10 min) without giving up. */
export const RETRY_CAP_SECONDS = 900;
/** Cloudflare Queues refuses delays above 12 hours. */
const QUEUE_MAX_DELAY_SECONDS = 43_200;

/**
 * Consumers give up (dead-letter with a reason) on the 20th delivery, one short of wrangler.toml's
 * max_retries = 20, so the platform's own dead-lettering (which carries no reason) stays a backstop.
 */
export const MAX_DELIVERY_ATTEMPTS = 20;

/** Misconfiguration (a missing setting or binding) is fixed by a person: wait minutes, not seconds, keep every message. */
export const MISCONFIGURED_RETRY_SECONDS = 300;
/** Credentials and scope problems are fixed by an admin, not by the code: wait, and lose nothing. */
export const CREDENTIAL_RETRY_SECONDS = 300;
/** Bitrix24 counts method time in one-minute buckets over ten minutes; retrying sooner only fails again. */
export const OPERATION_LIMIT_RETRY_SECONDS = 60;
/**
 * When CoMagic's limit_exceeded names its window (minute, hour, day) but not when it resets: a minute window waits
 * its whole length, an hour likewise; a day is looked at again every 15 minutes (a refused read costs no points,
 * comagic/docs/data_api.txt:129), as waiting a whole day could lose most of the next one.
 */
export const COMAGIC_LIMIT_RETRY_SECONDS = 60;
export const COMAGIC_HOUR_LIMIT_RETRY_SECONDS = 3_600;
export const COMAGIC_DAY_LIMIT_REPROBE_SECONDS = 900;
/** CoMagic's reports lag behind its events: a visitor with no visits yet is asked again, this many times, this far apart. */
export const EMPTY_JOURNEY_RETRIES = 3;
export const EMPTY_JOURNEY_RETRY_SECONDS = 120;
/** D1 could not record dead letters: the letters wait on their queue. */
export const DEAD_LETTER_STORE_RETRY_SECONDS = 60;

/** In-request pauses: Bitrix drains its bucket at 2 requests/s, so a pause just over one drain step lets the next request in. */
export const BITRIX_RATE_LIMIT_PAUSE_MS = 600;
/** CoMagic reads (`get.*`) are tried this often in place, this far apart, before the failure goes back to the queue. */
export const COMAGIC_READ_TRIES = 3;
export const COMAGIC_READ_PAUSE_MS = 300;
/** A CoMagic limit that resets within this many seconds is waited out in place; a longer one goes back to the queue. */
export const COMAGIC_LIMIT_WAIT_IN_PLACE_SECONDS = 5;

/**
 * Capped exponential backoff with "equal jitter": attempt 1 waits 1–2 s, attempt 2 waits 2–4 s, …
 * A hint from the upstream (e.g. when its limit resets) raises the floor.
 */
export function retryDelaySeconds(attempt: number, random: number, hintSeconds = 0): number {
  const exponent = Math.max(0, Math.min(attempt - 1, 20));
  const ceiling = Math.min(RETRY_CAP_SECONDS, RETRY_BASE_SECONDS * 2 ** exponent);
  const jittered = ceiling / 2 + (ceiling / 2) * Math.min(Math.max(random, 0), 1);
  return Math.min(QUEUE_MAX_DELAY_SECONDS, Math.ceil(Math.max(jittered, hintSeconds)));
}

export type RetryDecision = { action: "retry"; delaySeconds: number } | { action: "defer"; delaySeconds: number } | { action: "dead-letter" };

/**
 * A deferred failure (CoMagic's points: limit_exceeded, or deferrable work refused before it was sent) waits for
 * the reset it names, as a new message, however many attempts it has had: waiting is not failing. A transient
 * failure is retried with backoff until the attempts run out; a permanent one is given up at once.
 */
export function decide(failure: { transient: boolean; retryAfterSeconds: number; deferred?: boolean }, attempts: number, random: number): RetryDecision {
  // A day's reset (~86,400 s) is longer than a queue delay may be: the job then waits twice, re-checking the points.
  if (failure.deferred) return { action: "defer", delaySeconds: Math.min(QUEUE_MAX_DELAY_SECONDS, Math.max(1, Math.ceil(failure.retryAfterSeconds))) };
  if (failure.transient && attempts < MAX_DELIVERY_ATTEMPTS) return { action: "retry", delaySeconds: retryDelaySeconds(attempts, random, failure.retryAfterSeconds) };
  return { action: "dead-letter" };
}

/**
 * When a follow-up that reads the Data API (a call's record, an enrichment) is delivered: at least `minSeconds` after
 * the write (CoMagic's reports lag), and then at the next boundary of `slotSeconds` of the wall clock, so that every
 * follow-up of a slot arrives at once and shares one read (one point) however few calls come in a minute. 0: no slots.
 */
export function followUpDelaySeconds(nowMs: number, minSeconds: number, slotSeconds: number): number {
  if (slotSeconds <= 0) return minSeconds;
  const earliest = nowMs / 1000 + minSeconds;
  const slot = Math.ceil(earliest / slotSeconds) * slotSeconds;
  return Math.min(QUEUE_MAX_DELAY_SECONDS, Math.max(minSeconds, Math.ceil(slot - nowMs / 1000)));
}
