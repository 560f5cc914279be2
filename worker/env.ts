import type { QueueMessageBody } from "./jobs/schema";

/** Bindings, vars and secrets of the worker; kept by hand beside wrangler.toml. */
export interface Env {
  LEAD_JOBS: Queue<QueueMessageBody>;
  DEAD_LETTERS: Queue<unknown>;
  FORM_RATE_LIMITER?: RateLimit;
  CALL_RATE_LIMITER?: RateLimit;
  APP_RATE_LIMITER?: RateLimit;
  FORM_ENRICH_LIMITER?: RateLimit;
  ADMIN_RATE_LIMITER?: RateLimit;
  ENRICH_JOBS?: Queue<unknown>;
  COMAGIC_CACHE?: KVNamespace;
  DB?: D1Database;

  BITRIX_WEBHOOK_URL?: string;
  BITRIX_TIMEOUT_MS?: string;
  COMAGIC_WEBHOOK_TOKEN?: string;
  COMAGIC_WEBHOOK_SECRET?: string;
  DEFAULT_PHONE_REGION?: string;
  LEAD_DEDUP_DAYS?: string;
  MIN_LOST_CALL_SECONDS?: string;
  ALLOWED_ORIGINS?: string;
  COMAGIC_DATA_API_URL?: string;
  COMAGIC_API_TOKEN?: string;
  COMAGIC_LOGIN?: string;
  COMAGIC_PASSWORD?: string;
  COMAGIC_TIMEZONE?: string;
  RECONCILE_WINDOW_HOURS?: string;
  ENRICH_DELAY_SECONDS?: string;
  ADMIN_TOKEN?: string;
  BITRIX_APP_CLIENT_ID?: string;
  BITRIX_APP_CLIENT_SECRET?: string;
  BITRIX_OAUTH_URL?: string;
  COMAGIC_CALL_API_URL?: string;
  COMAGIC_VIRTUAL_NUMBER?: string;
  COMAGIC_EMPLOYEES?: string;
  COMAGIC_MATCH_BY_EMAIL?: string;
  CALL_COUNTRIES?: string;
  CALL_DAILY_LIMIT_PER_USER?: string;
  CALL_DAILY_LIMIT?: string;
  TAB_TOKEN_SECRET?: string;
  BITRIX_APP_CODE?: string;
  DEAD_LETTER_RETENTION_DAYS?: string;
  REQUIRED_FIELD_DEFAULTS?: string;
  DEFAULT_RESPONSIBLE_ID?: string;
  LOST_CALL_RESPONSIBLE_ID?: string;
  LOST_CALL_TODO_MINUTES?: string;
  REPORT_USER_IDS?: string;
  COMAGIC_SITE_IDS?: string;
  CRM_LANGUAGE?: string;
}
