export const RETRY_BASE_SECONDS = 2;
/** 15 minutes: long enough to ride out a Bitrix24 operating-limit window (10 min) without giving up. */
export const RETRY_CAP_SECONDS = 900;
/** Cloudflare Queues refuses delays above 12 hours. */
const QUEUE_MAX_DELAY_SECONDS = 43_200;

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
