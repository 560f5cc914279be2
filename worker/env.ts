/// <reference path="./worker-configuration.d.ts" />

/** Secrets (`wrangler secret put`) and settings wrangler.toml does not set; each is read through `config.ts`. */
export interface WorkerSettings {
  BITRIX_WEBHOOK_URL?: string;
  BITRIX_TIMEOUT_MS?: string;
  LEAD_QUEUE_NAME?: string;
  ENRICH_QUEUE_NAME?: string;
  DEAD_LETTER_QUEUE_NAME?: string;
  COMAGIC_WEBHOOK_TOKEN?: string;
  COMAGIC_WEBHOOK_SECRET?: string;
  COMAGIC_API_TOKEN?: string;
  COMAGIC_LOGIN?: string;
  COMAGIC_PASSWORD?: string;
  ADMIN_TOKEN?: string;
  BITRIX_APP_CLIENT_ID?: string;
  BITRIX_APP_CLIENT_SECRET?: string;
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
  REPORT_SYNC_MAX_PAGES?: string;
  CRM_LANGUAGE?: string;
  /** Keys that seal stored portals' secrets: base64 of 32 random bytes each, comma-separated; the first seals (rotation). */
  SETTINGS_KEY?: string;
  /** Where a portal's change of health is posted as `{"text": …}` (Slack/Telegram-compatible): https. */
  ALERT_WEBHOOK_URL?: string;
  /** "true" only for the local sandboxes (npm start, tests, benchmarks): plain http to 127.0.0.1/localhost. */
  ALLOW_LOOPBACK_HTTP?: string;
}

/**
 * The worker's environment: the bindings and vars wrangler.toml declares, generated into
 * `worker-configuration.d.ts` by `npm run types` (`npm test` fails when it is out of date), plus WorkerSettings.
 * A deploy may leave out any binding but the lead queue and its dead letters, so the others are optional here.
 */
export type Env = Partial<Cloudflare.Env> & WorkerSettings & { LEAD_JOBS: Queue; DEAD_LETTERS: Queue };
