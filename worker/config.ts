import type { CountryCode } from "libphonenumber-js/core";
import * as z from "zod";
import type { Env } from "./env";
import type { CoMagicAuth } from "./comagic/data-api";
import { DEFAULT_PORTAL } from "./domain/portal-key";
import { parseAllowedOrigins } from "./domain/origins";
import { untypedCallCountries } from "./domain/call-policy";
import { knownRegions } from "./domain/phone";
import { isSafeUpstream } from "./domain/upstream-url";
import { parseSettingsKeys } from "./storage/sealed-secrets";
import { AppError } from "./errors";
import { goalIdentifierSchema } from "./domain/offline-conversions";
import { METRICA_API_URL } from "./metrica/client";
import { ga4EventNameSchema } from "./domain/ga4-events";
import { GA4_API_URL, ga4MeasurementIdSchema } from "./ga4/client";

const KNOWN_REGIONS = new Set<string>(knownRegions());

// The webhook base must look like `<portal>/rest/<user id>/<code>/` (or the v3 `/rest/api/<id>/<code>/`).
const BITRIX_WEBHOOK_PATH = /\/rest\/(?:api\/)?\d+\/[^/]+\/?$/;

/** A comma-separated list of secrets (for rotation), without blanks. */
export function splitSecretList(raw: string | undefined): string[] {
  return (raw ?? "")
    .split(",")
    .map((s) => s.trim())
    .filter(Boolean);
}

const secretList = z.string().transform(splitSecretList).pipe(z.array(z.string()).min(1, "has no non-empty value"));

/** A "true"/"false" setting, off unless set. */
const flag = z
  .enum(["true", "false"], { error: 'is not "true" or "false"' })
  .default("false")
  .transform((v) => v === "true");
const plainHttpProblem = 'must be https:// (plain http only to 127.0.0.1 or localhost, and only with ALLOW_LOOPBACK_HTTP="true", for a local sandbox)';

/**
 * An upstream the worker sends secrets to (webhook codes, tokens, passwords): HTTPS only, except the local
 * sandboxes on this machine, and those only with ALLOW_LOOPBACK_HTTP (checked in parseConfig: a field cannot
 * see that setting). Every setting made with it is listed in UPSTREAM_URL_SETTINGS.
 */
const upstreamUrl = z.url({ protocol: /^https?$/, error: "is not an http(s) URL" }).refine((raw) => isSafeUpstream(new URL(raw), true), { error: plainHttpProblem });
const UPSTREAM_URL_SETTINGS = ["BITRIX_WEBHOOK_URL", "BITRIX_PORTAL_URL", "COMAGIC_DATA_API_URL", "BITRIX_OAUTH_URL", "COMAGIC_CALL_API_URL", "METRICA_API_URL", "GA4_API_URL"] as const;

const positiveInt = (fallback: number) => z.coerce.number().int().positive().default(fallback);

const configSchema = z.object({
  BITRIX_WEBHOOK_URL: upstreamUrl
    .refine((url) => BITRIX_WEBHOOK_PATH.test(new URL(url).pathname), {
      error: "must end with /rest/<user id>/<webhook code>/",
    })
    .transform((url) => (url.endsWith("/") ? url : `${url}/`))
    .optional(),
  /**
   * A portal reached through the app instead of a webhook: its address, as Bitrix24's OAuth server named it at the
   * install (`client_endpoint`); never typed, never taken from a browser. Set by the install (routes/bitrix-install.ts).
   */
  BITRIX_PORTAL_URL: upstreamUrl.transform((url) => new URL(url).origin).optional(),
  BITRIX_TIMEOUT_MS: positiveInt(25_000),
  COMAGIC_WEBHOOK_TOKEN: secretList.optional(),
  COMAGIC_WEBHOOK_SECRET: secretList.optional(),
  DEFAULT_PHONE_REGION: z
    .string()
    .default("RU")
    .transform((r) => r.toUpperCase())
    .refine((r) => KNOWN_REGIONS.has(r), { error: "is not an ISO 3166 region code known to libphonenumber" })
    .transform((r) => r as CountryCode),
  LEAD_DEDUP_DAYS: positiveInt(30),
  MIN_LOST_CALL_SECONDS: z.coerce.number().int().nonnegative().default(10),
  ALLOWED_ORIGINS: z.string().optional().transform(parseAllowedOrigins),
  COMAGIC_DATA_API_URL: upstreamUrl.default("https://dataapi.comagic.ru/v2.0"),
  COMAGIC_API_TOKEN: z.string().optional(),
  COMAGIC_LOGIN: z.string().optional(),
  COMAGIC_PASSWORD: z.string().optional(),
  COMAGIC_TIMEZONE: z.string().default("Europe/Moscow").refine(isTimeZone, { error: "is not an IANA time zone such as Europe/Moscow" }),
  /** Before the feed (issue #22): how far back reconciliation looked. Still honoured as the overlap when FEED_OVERLAP_MINUTES is unset. */
  RECONCILE_WINDOW_HOURS: z.coerce
    .number()
    .positive()
    .max(24 * 30)
    .optional(),
  /** How often the CoMagic feed reads (each read costs 3+ Data API points: docs/performance.md). */
  FEED_INTERVAL_MINUTES: z.coerce.number().int().min(1).max(1440).default(10),
  /** How far before its cursor each feed read reaches, for rows CoMagic's reports add late. */
  FEED_OVERLAP_MINUTES: z.coerce
    .number()
    .int()
    .min(0)
    .max(7 * 1440)
    .optional(),
  /** CoMagic's technical requests (not a client's) make leads too: include_tech_offline_messages. */
  COMAGIC_TECH_REQUESTS: flag,
  ENRICH_DELAY_SECONDS: z.coerce.number().int().nonnegative().max(43_200).default(60),
  /** Follow-ups that read the Data API are delivered at boundaries this far apart, so a slot's share one read. 0: off. */
  ENRICH_SLOT_SECONDS: z.coerce.number().int().nonnegative().max(3_600).default(600),
  // Which consumer a queue feeds, by its name in wrangler.toml: set these when an environment renames the queues.
  LEAD_QUEUE_NAME: z.string().min(1).default("comagic-lead-jobs"),
  ENRICH_QUEUE_NAME: z.string().min(1).default("comagic-enrich-jobs"),
  DEAD_LETTER_QUEUE_NAME: z.string().min(1).default("comagic-dead-letters"),
  BITRIX_APP_CLIENT_ID: z.string().optional(),
  BITRIX_APP_CLIENT_SECRET: z.string().optional(),
  BITRIX_OAUTH_URL: upstreamUrl.default("https://oauth.bitrix.info/oauth/token/"),
  COMAGIC_CALL_API_URL: upstreamUrl.default("https://callapi.comagic.ru/v4.0"),
  /** "true" only where the worker talks to the local sandboxes: plain http to 127.0.0.1/localhost. Never in production. */
  ALLOW_LOOPBACK_HTTP: flag,
  COMAGIC_VIRTUAL_NUMBER: z
    .string()
    .transform((n) => n.replace(/[\s()+-]/g, ""))
    .refine((n) => /^\d{10,15}$/.test(n), { error: "is not a phone number in E.164 digits, like 74993720692" })
    .optional(),
  /** JSON object: Bitrix24 user id → CoMagic employee id. A broken value is a warning, not a failure. */
  COMAGIC_EMPLOYEES: z.string().optional().transform(parseEmployeeMap),
  /** Users not in COMAGIC_EMPLOYEES are matched by email only when this is "true": a user can edit their own email. */
  COMAGIC_MATCH_BY_EMAIL: flag,
  /** Countries click-to-call may dial (ISO codes, comma-separated); unset, DEFAULT_PHONE_REGION alone. */
  CALL_COUNTRIES: z
    .string()
    .optional()
    .transform((raw) =>
      raw
        ? raw
            .split(",")
            .map((c) => c.trim().toUpperCase())
            .filter(Boolean)
        : null,
    )
    .refine((list) => !list || list.every((c) => KNOWN_REGIONS.has(c)), { error: "has a code that is not an ISO 3166 region, like RU or KZ" }),
  CALL_DAILY_LIMIT_PER_USER: positiveInt(50),
  CALL_DAILY_LIMIT: positiveInt(500),
  /** Keys that sign the tab's Call tokens, comma-separated: the first signs, all verify (rotation). */
  TAB_TOKEN_SECRET: secretList.refine((keys) => keys.every((k) => k.length >= 32), { error: "each key must be at least 32 characters (e.g. openssl rand -hex 32)" }).optional(),
  /** app.info's CODE of our application, when it is not the client id (Marketplace apps). */
  BITRIX_APP_CODE: z.string().optional(),
  DEAD_LETTER_RETENTION_DAYS: positiveInt(30),
  /**
   * Days the ledger (applied events, contact keys) keeps a row. It must outlive every redelivery (a queue keeps a
   * message 14 days at most) and Bitrix24's duplicate-search lag (seconds); after it, Bitrix24's own fields say what was written.
   */
  LEDGER_RETENTION_DAYS: positiveInt(90).refine((days) => days >= 14, { error: "must be at least 14: a queue may redeliver a message for 14 days" }),
  /** Days the report keeps its conversions' visits, visitors and ad costs: a year back and a month more, so a month compares with the same month last year. */
  REPORT_RETENTION_DAYS: positiveInt(400).refine((days) => days >= 90, { error: "must be at least 90: the report's longest preset period is 90 days" }),
  /** Portals without leads: the funnel (deal category, 0 the general one) a new deal goes to, and its stage (else the funnel's first). */
  DEAL_CATEGORY_ID: z.coerce.number().int().min(0, { error: "is not a deal funnel id (0 is the general funnel)" }).optional(),
  DEAL_STAGE_ID: z
    .string()
    .regex(/^(C\d+:)?[A-Z0-9_]{1,40}$/, { error: "is not a deal stage id, like NEW or C1:NEW" })
    .optional(),
  /** Bitrix24 user ids: who gets a new lead when no answering employee maps to a user, and who gets lost calls. */
  DEFAULT_RESPONSIBLE_ID: z.string().regex(/^\d+$/, { error: "is not a Bitrix24 user id (a number)" }).optional(),
  LOST_CALL_RESPONSIBLE_ID: z.string().regex(/^\d+$/, { error: "is not a Bitrix24 user id (a number)" }).optional(),
  /** When the call-back to-do of a lost call is due, in minutes after the call. */
  LOST_CALL_TODO_MINUTES: positiveInt(60),
  /** JSON object: a required lead field → the value every new lead gets (FACTS-portals §5). A broken value is a warning. */
  REQUIRED_FIELD_DEFAULTS: z.string().optional().transform(parseFieldDefaults),
  /** Bitrix24 users (ids, comma-separated) who see the attribution report besides the portal's administrators. */
  REPORT_USER_IDS: idList("is not a list of Bitrix24 user ids, like 7,12"),
  /** CoMagic sites whose ad cost is imported (ids, comma-separated); sites seen in credited visits are added. */
  COMAGIC_SITE_IDS: idList("is not a list of CoMagic site ids, like 1234,5678"),
  /** Deal pages (50 deals each) one report sync may read; the next sync goes on from where it stopped. */
  REPORT_SYNC_MAX_PAGES: positiveInt(100),
  /** The language of titles, comments and timeline entries the worker writes into Bitrix24. */
  CRM_LANGUAGE: z.enum(["ru", "en"], { error: 'is not "ru" or "en"' }).default("ru"),
  /**
   * Where a portal's change of health is posted (`{"text": …}`, Slack/Telegram-compatible). Read through
   * alertWebhookUrl: a value that is not a safe URL turns alerts off with a warning, never the worker.
   */
  ALERT_WEBHOOK_URL: z.string().optional(),
  /**
   * Issue #25: send deals that came from CoMagic into its end-to-end analytics (upload.deals_history). Off until the
   * CoMagic admin connected "Другая CRM" and the funnels were made (the settings page's step, docs/deals-to-comagic.md).
   */
  COMAGIC_DEALS: flag,
  /**
   * Issue #25 §2: our website forms also go to CoMagic as offline messages (upload.offline_messages). Off until the
   * CoMagic admin enabled the component «Загрузка офлайн-заявок из внешней системы».
   */
  COMAGIC_FORMS: flag,
  /** The CoMagic site a form belongs to when it came without CoMagic's session id (a message needs one of them). */
  COMAGIC_FORM_SITE_ID: z.coerce.number().int().positive({ error: "is not a CoMagic site id" }).optional(),
  /** The CoMagic account's currency: deal revenue is converted to it with Bitrix24's rates (CoMagic's revenue has none). */
  COMAGIC_CURRENCY: z
    .string()
    .default("RUB")
    .transform((c) => c.toUpperCase())
    .refine((c) => /^[A-Z]{3}$/.test(c), { error: "is not a three-letter currency code, like RUB" }),
  /** Yandex Metrica offline conversions (issue #25 §3): the counter, and an OAuth token with metrika:write. */
  METRICA_COUNTER_ID: z
    .string()
    .regex(/^\d{1,12}$/, { error: "is not a Metrica counter number" })
    .optional(),
  METRICA_TOKEN: z.string().min(1).optional(),
  /** Each goal's JavaScript-event identifier (not its number); `off` turns that conversion off. */
  METRICA_GOAL_QUALIFIED: goalSetting("crm_qualified"),
  METRICA_GOAL_WON: goalSetting("crm_won"),
  /** The lead status (Bitrix24 STATUS_ID) that makes a lead "qualified"; unset: only a deal made from it does. */
  QUALIFIED_LEAD_STATUS: z
    .string()
    .regex(/^[A-Z0-9_:]{1,50}$/, { error: "is not a Bitrix24 status id, like IN_PROCESS" })
    .optional(),
  METRICA_API_URL: upstreamUrl.default(METRICA_API_URL),
  /**
   * How long conversions wait to go together (Metrica and GA4): Metrica processes an upload over hours (FACTS-loop
   * §3.3), so an hour's conversions in one upload cost one CoMagic read and one Metrica request instead of twelve.
   */
  CONVERSIONS_INTERVAL_MINUTES: z.coerce.number().int().min(5).max(1440).default(60),
  /** Google Analytics 4 (issue #25 §3, optional): the same moments as Measurement Protocol events, by the visitor's `_ga` client id. */
  GA4_MEASUREMENT_ID: ga4MeasurementIdSchema.optional(),
  GA4_API_SECRET: z.string().min(1).optional(),
  GA4_EVENT_QUALIFIED: eventSetting("crm_qualified"),
  GA4_EVENT_WON: eventSetting("crm_won"),
  GA4_API_URL: upstreamUrl.default(GA4_API_URL),
});

/** A GA4 event name setting: the default, or `off` for none (null), as goalSetting. */
function eventSetting(fallback: string) {
  return z
    .string()
    .default(fallback)
    .transform((v) => (v.trim().toLowerCase() === "off" ? null : v))
    .pipe(ga4EventNameSchema.nullable());
}

/**
 * A Metrica goal identifier setting: the default, or `off` for none (null). Not empty: an empty setting is an unset
 * one (a stored portal's page drops it), which would bring the default back.
 */
function goalSetting(fallback: string) {
  return z
    .string()
    .default(fallback)
    .transform((v) => (v.trim().toLowerCase() === "off" ? null : v))
    .pipe(goalIdentifierSchema.nullable());
}

function idList(error: string) {
  return z
    .string()
    .optional()
    .transform((raw) =>
      (raw ?? "")
        .split(",")
        .map((v) => v.trim())
        .filter(Boolean),
    )
    .refine((ids) => ids.every((v) => /^\d+$/.test(v)), { error });
}

/** A JSON object setting: {} when unset, null (a warning, never a failure) when it is not what `schema` wants. */
function parseJsonSetting<T>(raw: string | undefined, schema: z.ZodType<Record<string, T>>): Record<string, T> | null {
  if (raw === undefined) return {};
  try {
    const parsed = schema.safeParse(JSON.parse(raw));
    return parsed.success ? parsed.data : null;
  } catch {
    return null;
  }
}

const fieldDefaults = z.record(z.string().regex(/^[A-Z][A-Z0-9_]*$/), z.union([z.string(), z.number()]));
function parseFieldDefaults(raw: string | undefined) {
  return parseJsonSetting(raw, fieldDefaults);
}

const employeeMap = z.record(z.string().regex(/^\d+$/), z.coerce.number().int().positive());
function parseEmployeeMap(raw: string | undefined) {
  return parseJsonSetting(raw, employeeMap);
}

function isTimeZone(zone: string): boolean {
  try {
    new Intl.DateTimeFormat("en-US", { timeZone: zone });
    return true;
  } catch {
    return false;
  }
}

/** Admin tokens shorter than this are refused: 32 random characters cannot be guessed at 10 tries a minute. */
export const MIN_ADMIN_TOKEN_LENGTH = 32;
export const ADMIN_TOKEN_TOO_SHORT = `has a value shorter than ${MIN_ADMIN_TOKEN_LENGTH} characters, which could be guessed: the /admin routes and the detailed /health refuse every token until each value is ${MIN_ADMIN_TOKEN_LENGTH}+ random characters (openssl rand -hex 32)`;

/**
 * ADMIN_TOKEN (comma-separated for rotation), read on its own: a worker missing other settings must still tell
 * its operator what is wrong. A value too short to be safe turns the admin routes off rather than the worker.
 */
export function adminTokensOf(env: Env): { state: "on"; tokens: string[] } | { state: "unset" | "too_short" } {
  const tokens = splitSecretList(env.ADMIN_TOKEN);
  if (!tokens.length) return { state: "unset" };
  return tokens.every((t) => t.length >= MIN_ADMIN_TOKEN_LENGTH) ? { state: "on", tokens } : { state: "too_short" };
}

/** Data API credentials: a permanent or dated API key, or a user's login and password for login.user. */
export function appSettings(config: Config): { clientId: string; clientSecret: string; tokenUrl: string; allowLoopbackHttp: boolean; appCode: string; tabTokenKeys: string[] } | null {
  if (!config.BITRIX_APP_CLIENT_ID || !config.BITRIX_APP_CLIENT_SECRET || !config.TAB_TOKEN_SECRET) return null;
  return {
    clientId: config.BITRIX_APP_CLIENT_ID,
    clientSecret: config.BITRIX_APP_CLIENT_SECRET,
    tokenUrl: config.BITRIX_OAUTH_URL,
    allowLoopbackHttp: config.ALLOW_LOOPBACK_HTTP,
    // FACTS-portals: a local app's app.info CODE is likely its client id; a Marketplace app has a code of its own.
    appCode: config.BITRIX_APP_CODE ?? config.BITRIX_APP_CLIENT_ID,
    tabTokenKeys: config.TAB_TOKEN_SECRET,
  };
}

export function comagicAuth(config: Config): CoMagicAuth | null {
  if (config.COMAGIC_API_TOKEN) return { kind: "key", token: config.COMAGIC_API_TOKEN };
  if (config.COMAGIC_LOGIN && config.COMAGIC_PASSWORD) return { kind: "login", login: config.COMAGIC_LOGIN, password: config.COMAGIC_PASSWORD };
  return null;
}

/** One portal's settings: `portal` names it (domain/portal-key.ts), and so every store and log line built from it. */
export type Config = z.infer<typeof configSchema> & {
  portal: string;
  /** The Bitrix24 portal's origin: BITRIX_WEBHOOK_URL's, else BITRIX_PORTAL_URL. The app's pages may be framed only by it. */
  portalOrigin: string;
  /** The Bitrix24 portal's member_id when a stored portal is linked to one (its app install); null for the default portal. */
  memberId: string | null;
};

/**
 * Settings of the deployment, not of a portal: the queues, the Bitrix24 app's keys, the sandbox switch. A portal
 * kept in storage takes these from env; every other setting is the portal's own.
 */
export const DEPLOYMENT_SETTINGS = [
  "BITRIX_TIMEOUT_MS",
  "LEAD_QUEUE_NAME",
  "ENRICH_QUEUE_NAME",
  "DEAD_LETTER_QUEUE_NAME",
  "BITRIX_APP_CLIENT_ID",
  "BITRIX_APP_CLIENT_SECRET",
  "BITRIX_OAUTH_URL",
  "BITRIX_APP_CODE",
  "ALLOW_LOOPBACK_HTTP",
  "TAB_TOKEN_SECRET",
  "DEAD_LETTER_RETENTION_DAYS",
  "LEDGER_RETENTION_DAYS",
  "REPORT_RETENTION_DAYS",
  "ALERT_WEBHOOK_URL",
] as const satisfies readonly (keyof z.infer<typeof configSchema>)[];

/**
 * ALERT_WEBHOOK_URL when alerts may go there: https, or plain http to this machine under ALLOW_LOOPBACK_HTTP (the
 * sandbox's receiver); null when unset or not such a URL (the admin's /health warns). The URL itself may hold a
 * token (a Slack hook's path, a Telegram bot's), so it is never logged.
 */
export function alertWebhookUrl(settings: Pick<DeploymentSettings, "ALERT_WEBHOOK_URL" | "ALLOW_LOOPBACK_HTTP">): string | null {
  const raw = settings.ALERT_WEBHOOK_URL?.trim();
  if (!raw) return null;
  try {
    return isSafeUpstream(new URL(raw), settings.ALLOW_LOOPBACK_HTTP) ? raw : null;
  } catch {
    return null;
  }
}

/** A portal's settings that are secrets: sealed at rest (storage/sealed-secrets.ts), never listed back. */
export const SECRET_SETTINGS = ["BITRIX_WEBHOOK_URL", "COMAGIC_WEBHOOK_TOKEN", "COMAGIC_WEBHOOK_SECRET", "COMAGIC_API_TOKEN", "COMAGIC_PASSWORD", "METRICA_TOKEN", "GA4_API_SECRET"] as const;

/** Every setting a portal in storage may have: all but the deployment's. */
export const PORTAL_SETTINGS: readonly string[] = Object.keys(configSchema.shape).filter((name) => !(DEPLOYMENT_SETTINGS as readonly string[]).includes(name));

/** The countries click-to-call may dial. */
export function callCountries(config: Pick<Config, "CALL_COUNTRIES" | "DEFAULT_PHONE_REGION">): Set<string> {
  return new Set(config.CALL_COUNTRIES ?? [config.DEFAULT_PHONE_REGION]);
}

export interface ConfigProblem {
  setting: string;
  problem: string;
}

/** Empty strings count as unset: `wrangler secret put` and .dev.vars make those easily. */
function presentValues(env: Env): Record<string, string> {
  return Object.fromEntries(Object.entries(env).filter(([, v]) => typeof v === "string" && v.trim() !== ""));
}

export type ConfigResult = { ok: true; config: Config; warnings: ConfigProblem[] } | { ok: false; problems: ConfigProblem[]; warnings: ConfigProblem[] };

// Bindings do not change while an isolate lives: parse each env object once.
const parsedConfigs = new WeakMap<Env, ConfigResult>();

/**
 * The default portal's settings, from env (once per env object); never echoes a value, only the names and what is
 * wrong with them. Other portals' settings live in storage: portal-config.ts.
 */
export function readConfig(env: Env): ConfigResult {
  let result = parsedConfigs.get(env);
  if (!result) {
    result = parseSettings(presentValues(env), env, DEFAULT_PORTAL);
    parsedConfigs.set(env, result);
  }
  return result;
}

const deploymentSchema = configSchema.pick(Object.fromEntries(DEPLOYMENT_SETTINGS.map((name) => [name, true])) as { [K in (typeof DEPLOYMENT_SETTINGS)[number]]: true });
export type DeploymentSettings = z.infer<typeof deploymentSchema>;
const parsedDeployments = new WeakMap<Env, DeploymentSettings>();

/**
 * The deployment's own settings (queue names, retention, the app's keys), which hold whether or not env configures
 * a default portal. A broken value falls back to its default here; /health names it through readConfig.
 */
export function deploymentSettings(env: Env): DeploymentSettings {
  let settings = parsedDeployments.get(env);
  if (!settings) {
    const values = presentValues(env);
    const parsed = deploymentSchema.safeParse(values);
    settings = parsed.success ? parsed.data : deploymentSchema.parse({});
    parsedDeployments.set(env, settings);
  }
  return settings;
}

/** A stored portal's settings: its own values over the deployment's (DEPLOYMENT_SETTINGS from env). */
export function parsePortalSettings(env: Env, portal: string, own: Record<string, string>, memberId: string | null = null): ConfigResult {
  const deployment = presentValues(env);
  const values: Record<string, string> = {};
  for (const name of DEPLOYMENT_SETTINGS) {
    const value = deployment[name];
    if (value !== undefined) values[name] = value;
  }
  for (const [name, value] of Object.entries(own)) if (PORTAL_SETTINGS.includes(name) && value.trim() !== "") values[name] = value;
  return parseSettings(values, env, portal, memberId);
}

function parseSettings(values: Record<string, string>, env: Env, portal: string, memberId: string | null = null): ConfigResult {
  const parsed = configSchema.safeParse(values);
  const problems: ConfigProblem[] = parsed.success
    ? []
    : parsed.error.issues.map((issue) => ({
        setting: String(issue.path[0] ?? "config"),
        problem: issue.code === "invalid_type" && issue.input === undefined ? "is not set" : issue.message,
      }));
  const warnings: ConfigProblem[] = [];
  // The fields accept plain http to loopback; only a local setup (ALLOW_LOOPBACK_HTTP) may use it.
  if (values.ALLOW_LOOPBACK_HTTP !== "true") {
    for (const setting of UPSTREAM_URL_SETTINGS) {
      const raw = values[setting];
      // A value zod refused already has its problem (and may not parse as a URL).
      if (raw && !problems.some((p) => p.setting === setting) && !isSafeUpstream(new URL(raw), false)) problems.push({ setting, problem: plainHttpProblem });
    }
  }
  // A webhook of another portal than the one the app's install found would send this portal's leads elsewhere.
  if (parsed.success && parsed.data.BITRIX_WEBHOOK_URL && parsed.data.BITRIX_PORTAL_URL && new URL(parsed.data.BITRIX_WEBHOOK_URL).origin !== parsed.data.BITRIX_PORTAL_URL) {
    problems.push({ setting: "BITRIX_WEBHOOK_URL", problem: "is on another Bitrix24 portal than the one the app was installed on (BITRIX_PORTAL_URL)" });
  }
  if (!values.BITRIX_WEBHOOK_URL && !(values.BITRIX_PORTAL_URL && memberId)) {
    problems.push({ setting: "BITRIX_WEBHOOK_URL", problem: "is not set, and the portal is not reached through the app (install the app on it, or set a webhook URL)" });
  }
  const hasToken = values.COMAGIC_WEBHOOK_TOKEN !== undefined;
  const hasSecret = values.COMAGIC_WEBHOOK_SECRET !== undefined;
  if (!hasToken && !hasSecret) {
    problems.push({
      setting: "COMAGIC_WEBHOOK_TOKEN",
      problem: "neither COMAGIC_WEBHOOK_TOKEN nor COMAGIC_WEBHOOK_SECRET is set, so every webhook is refused",
    });
  } else if (!hasToken) {
    warnings.push({ setting: "COMAGIC_WEBHOOK_TOKEN", problem: "is not set: only signed (X-CoMagic-Signature) webhooks are accepted" });
  } else if (!hasSecret) {
    warnings.push({ setting: "COMAGIC_WEBHOOK_SECRET", problem: "is not set: signatures are not checked, the token alone authenticates" });
  }
  // Website forms are not the core job: their settings warn instead of failing /health and the webhooks.
  const origins = parseAllowedOrigins(values.ALLOWED_ORIGINS);
  if (!values.ALLOWED_ORIGINS) {
    warnings.push({ setting: "ALLOWED_ORIGINS", problem: "is not set: browsers on other sites cannot send forms to /forms" });
  } else if (origins.invalid.length) {
    warnings.push({
      setting: "ALLOWED_ORIGINS",
      problem: `has ${origins.invalid.length} entr${origins.invalid.length === 1 ? "y" : "ies"} that are not origins like https://shop.example.ru, ignored`,
    });
  }
  if (!values.COMAGIC_API_TOKEN && !(values.COMAGIC_LOGIN && values.COMAGIC_PASSWORD)) {
    const half = values.COMAGIC_LOGIN ? "COMAGIC_PASSWORD is not set" : values.COMAGIC_PASSWORD ? "COMAGIC_LOGIN is not set" : "neither COMAGIC_API_TOKEN nor COMAGIC_LOGIN/COMAGIC_PASSWORD is set";
    warnings.push({
      setting: "COMAGIC_API_TOKEN",
      problem: `${half}: attribution is limited to what the notification template sends (no UTMs, visitor or recording from CoMagic's call record), leads are not enriched and missed calls are not reconciled`,
    });
  }
  if (!values.BITRIX_APP_CLIENT_ID || !values.BITRIX_APP_CLIENT_SECRET) {
    warnings.push({ setting: "BITRIX_APP_CLIENT_SECRET", problem: "BITRIX_APP_CLIENT_ID and BITRIX_APP_CLIENT_SECRET are not both set: the Bitrix24 app (CoMagic tab, click-to-call) is off" });
  } else if (!values.TAB_TOKEN_SECRET) {
    warnings.push({ setting: "TAB_TOKEN_SECRET", problem: "is not set: the Bitrix24 app (CoMagic tab, click-to-call) is off; set a random key of 32+ characters" });
  } else if (!values.COMAGIC_VIRTUAL_NUMBER) {
    warnings.push({ setting: "COMAGIC_VIRTUAL_NUMBER", problem: "is not set: the tab's Call button is off" });
  }
  if (parsed.success) {
    const untyped = untypedCallCountries(callCountries(parsed.data));
    if (untyped.length) warnings.push({ setting: "CALL_COUNTRIES", problem: `names ${untyped.join(", ")}, whose number types the worker cannot tell apart: every call there is refused` });
  }
  if (values.REQUIRED_FIELD_DEFAULTS && parseFieldDefaults(values.REQUIRED_FIELD_DEFAULTS) === null) {
    warnings.push({ setting: "REQUIRED_FIELD_DEFAULTS", problem: 'is not a JSON object of Bitrix24 field code to value, like {"UF_CRM_REGION": "Moscow"}; ignored' });
  }
  // FACTS-portals §2: funnel N's stages are `CN:…`, the general funnel's have no prefix; another funnel's stage is dropped.
  if (parsed.success && parsed.data.DEAL_STAGE_ID) {
    const category = parsed.data.DEAL_CATEGORY_ID ?? 0;
    const prefix = /^C(\d+):/.exec(parsed.data.DEAL_STAGE_ID)?.[1];
    if ((prefix === undefined ? 0 : Number(prefix)) !== category) problems.push({ setting: "DEAL_STAGE_ID", problem: `is a stage of another funnel than DEAL_CATEGORY_ID (${category})` });
  }
  if (values.ALERT_WEBHOOK_URL && !alertWebhookUrl({ ALERT_WEBHOOK_URL: values.ALERT_WEBHOOK_URL, ALLOW_LOOPBACK_HTTP: values.ALLOW_LOOPBACK_HTTP === "true" })) {
    warnings.push({ setting: "ALERT_WEBHOOK_URL", problem: `${plainHttpProblem}: until then, portals' alerts are only logged (portal.alert)` });
  }
  if (values.COMAGIC_EMPLOYEES && parseEmployeeMap(values.COMAGIC_EMPLOYEES) === null) {
    warnings.push({ setting: "COMAGIC_EMPLOYEES", problem: 'is not a JSON object of Bitrix24 user id to CoMagic employee id, like {"1": 25}; users are matched by email instead' });
  }
  // The deployment's, read from env whichever portal is parsed.
  if (!env.SETTINGS_KEY?.trim()) {
    warnings.push({ setting: "SETTINGS_KEY", problem: "is not set: the app's OAuth tokens are stored in the clear, and no other portal can be stored (PUT /admin/portals)" });
  } else {
    const keys = parseSettingsKeys(env.SETTINGS_KEY);
    if ("problem" in keys) warnings.push({ setting: "SETTINGS_KEY", problem: keys.problem });
  }
  const admin = adminTokensOf(env);
  if (admin.state === "unset") warnings.push({ setting: "ADMIN_TOKEN", problem: "is not set: the /admin routes are off" });
  if (admin.state === "too_short") warnings.push({ setting: "ADMIN_TOKEN", problem: ADMIN_TOKEN_TOO_SHORT });
  if (admin.state === "on" && !env.ADMIN_RATE_LIMITER) {
    warnings.push({ setting: "ADMIN_RATE_LIMITER", problem: "binding is missing: wrong admin tokens are not counted, so nothing stops a stranger guessing ADMIN_TOKEN on /health and /admin" });
  }
  for (const [binding, feature] of [
    ["ENRICH_JOBS", "enrichment"],
    ["COMAGIC_CACHE", "token caching, touchpoints, the Bitrix24 app and the lockout of addresses that guess ADMIN_TOKEN"],
    ["DB", "dead letters and the applied-events ledger"],
    ["CALL_RATE_LIMITER", "the per-user limit on click-to-call, so the Call button"],
    ["APP_RATE_LIMITER", "the per-IP limit on the Bitrix24 app's pages, so the app"],
    ["REPORT_RATE_LIMITER", "the per-user limit on the attribution report, so the report"],
  ] as const) {
    if (!env[binding]) warnings.push({ setting: binding, problem: `binding is missing: ${feature} off` });
  }
  if (!env.FORM_RATE_LIMITER) warnings.push({ setting: "FORM_RATE_LIMITER", problem: "rate-limit binding is missing: /forms refuses every form (503)" });
  if (!env.LEAD_JOBS) problems.push({ setting: "LEAD_JOBS", problem: "queue binding is missing" });
  if (!env.DEAD_LETTERS) problems.push({ setting: "DEAD_LETTERS", problem: "queue binding is missing" });
  if (problems.length > 0 || !parsed.success) return { ok: false, problems, warnings };
  const portalOrigin = new URL(parsed.data.BITRIX_WEBHOOK_URL ?? parsed.data.BITRIX_PORTAL_URL ?? "").origin;
  return { ok: true, config: { ...parsed.data, portal, portalOrigin, memberId }, warnings };
}

/** For routes: the parsed config, or a 503 that names nothing (GET /health with the admin token does). */
export function requireConfig(env: Env): Config {
  const result = readConfig(env);
  if (!result.ok) throw new AppError(503, "misconfigured", "The worker is misconfigured");
  return result.config;
}

/** The feed's overlap: FEED_OVERLAP_MINUTES, else a deploy's older RECONCILE_WINDOW_HOURS, else two hours. */
export function feedOverlapMinutes(config: Pick<Config, "FEED_OVERLAP_MINUTES" | "RECONCILE_WINDOW_HOURS">): number {
  return config.FEED_OVERLAP_MINUTES ?? Math.round((config.RECONCILE_WINDOW_HOURS ?? 2) * 60);
}
