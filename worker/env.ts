import type { QueueMessageBody } from "./jobs/schema";

/** Bindings, vars and secrets of the worker; kept by hand beside wrangler.toml. */
export interface Env {
  LEAD_JOBS: Queue<QueueMessageBody>;
  DEAD_LETTERS: Queue<unknown>;
  FORM_RATE_LIMITER?: RateLimit;

  BITRIX_WEBHOOK_URL?: string;
  BITRIX_TIMEOUT_MS?: string;
  COMAGIC_WEBHOOK_TOKEN?: string;
  COMAGIC_WEBHOOK_SECRET?: string;
  DEFAULT_PHONE_REGION?: string;
  LEAD_DEDUP_DAYS?: string;
  MIN_LOST_CALL_SECONDS?: string;
  ALLOWED_ORIGINS?: string;
}
