import { Hono } from "hono/tiny";
import * as z from "zod";
import type { AppEnv } from "./app-env";
import { crmModeOf } from "../bitrix/crm-mode";
import { messagesFor } from "../i18n";
import { unfilledRequiredFields, type UnfilledField } from "../bitrix/required-fields";
import type { CrmMode } from "../domain/crm-entity";
import { d1BudgetStore } from "../storage/comagic-budget";
import { d1FeedState } from "../storage/feed-state";
import { kvTelephonyStatus } from "../storage/telephony-status";
import { readConfig, type Config, type ConfigProblem } from "../config";
import type { Env } from "../env";
import { errorMessage } from "../log";
import { kvJson } from "../storage/kv-json";
import { DEFAULT_PORTAL, portalKeySchema } from "../domain/portal-key";
import { AppError } from "../errors";
import { configFor, portalKeys } from "../portal-config";
import { parseSettingsKeys } from "../storage/sealed-secrets";
import { bitrixClientFor, cacheFor, storesFor } from "../wiring";
import { bringsAdminToken } from "./admin-auth";

/** The portal's required fields change rarely; each admin look at /health need not ask Bitrix24 again. */
const REQUIRED_FIELDS_CACHE_SECONDS = 600;
/** Where /health keeps them, per CRM mode (a portal's mode decides which entities the worker adds). */
export const requiredFieldsCacheKey = (mode: CrmMode) => `required-fields:v2:${mode}`;
const cachedFields = z.object({ fields: z.array(z.object({ entity: z.enum(["lead", "deal", "contact"]), field: z.string(), title: z.string() })) });

/** What the portal requires that the worker does not fill, as a warning (checked on the admin's request only). */
async function requiredFieldWarnings(env: Env, config: Config, mode: CrmMode): Promise<ConfigProblem[]> {
  const kv = cacheFor(env, config.portal);
  const cache = kv ? kvJson(kv, cachedFields) : null;
  const key = requiredFieldsCacheKey(mode);
  try {
    let fields: UnfilledField[] | undefined = (await cache?.get(key))?.fields;
    if (!fields) {
      fields = await unfilledRequiredFields(bitrixClientFor(config, env), mode, config.REQUIRED_FIELD_DEFAULTS ?? {});
      await cache?.put(key, { fields }, REQUIRED_FIELDS_CACHE_SECONDS);
    }
    return fields.length ? [{ setting: "REQUIRED_FIELD_DEFAULTS", problem: messagesFor("en").install.requiredFields(fields) }] : [];
  } catch (error) {
    return [{ setting: "BITRIX_WEBHOOK_URL", problem: `could not read the portal's fields (crm.*.fields): ${errorMessage(error)}` }];
  }
}

/** Calls that Bitrix24 telephony refused lately stay timeline comments: the admin is told why and what fixes it. */
async function telephonyWarnings(env: Env, portal: string): Promise<ConfigProblem[]> {
  const kv = cacheFor(env, portal);
  const refused = kv
    ? await kvTelephonyStatus(kv)
        .refusedBecause()
        .catch(() => null)
    : null;
  if (!refused) return [];
  return [{ setting: "telephony", problem: `${refused}. Install the app (its token may use telephony) with the telephony scope, or give the webhook the telephony scope` }];
}

/** Feed reads that may fail in a row before /health warns: one failure is a passing fault, three are not. */
const FEED_STALE_INTERVALS = 3;

/**
 * The CoMagic feed as the operator needs it: when it last read and succeeded, its cursor and how far behind now it
 * is, what the last read found (per kind, ignored per reason), the last error in words, and the Data API's points.
 */
async function feedStatus(env: Env, config: Config, now: Date) {
  if (!env.DB) return { status: null, warnings: [] as ConfigProblem[] };
  const [state, budget] = await Promise.all([d1FeedState(env.DB, config.portal).get(), d1BudgetStore(env.DB, config.portal).get("Data API")]);
  const cursor = state.cursor ? Date.parse(state.cursor) : null;
  const day = budget?.windows.day;
  const status = {
    lastRunAt: state.lastRunAt,
    lastSuccessAt: state.lastSuccessAt,
    cursor: state.cursor,
    behindMinutes: cursor === null ? null : Math.max(0, Math.round((now.getTime() - cursor) / 60_000)),
    lastRead: state.lastReport,
    lastError: state.lastError,
    dataApiPoints: day ? { dayLimit: day.limit, dayRemaining: day.remaining, dayResetAt: new Date(day.resetAt).toISOString() } : null,
  };
  const lastSuccess = state.lastSuccessAt ? Date.parse(state.lastSuccessAt) : null;
  const stale = state.lastError !== null && (lastSuccess === null || now.getTime() - lastSuccess > FEED_STALE_INTERVALS * config.FEED_INTERVAL_MINUTES * 60_000);
  const warnings: ConfigProblem[] = stale ? [{ setting: "feed", problem: `the CoMagic feed has not read since ${state.lastSuccessAt ?? "it started"}: ${state.lastError}` }] : [];
  return { status, warnings };
}

/**
 * 200 when the worker can do its core job, 503 when not: all a stranger learns. With the admin bearer token,
 * the answer names each missing or invalid setting and each warning (never a value), the portal's CRM mode,
 * fields the portal requires that the worker does not fill, and a telephony refusal. A wrong bearer counts
 * towards the same lockout as /admin (admin-auth.ts), so /health is no faster a way to guess the token.
 */
export const healthRoute = new Hono<AppEnv>().get("/", async (c) => {
  c.header("Cache-Control", "no-store");
  const deployment = readConfig(c.env);
  // A deployment of stored portals alone has no default portal in env: it serves when it has some and can open them.
  const servesStored = !c.env.BITRIX_WEBHOOK_URL && c.env.DB !== undefined && !("problem" in parseSettingsKeys(c.env.SETTINGS_KEY)) && (await portalKeys(c.env)).length > 0;
  // ADMIN_TOKEN is read on its own: a worker missing other settings must still tell its operator what is wrong.
  if (!(await bringsAdminToken(c))) return c.json({ status: deployment.ok || servesStored ? "ok" : "unavailable" }, deployment.ok || servesStored ? 200 : 503);
  // The operator may ask about any portal: ?portal=<key> (the default one otherwise).
  const portal = portalKeySchema.parse(c.req.query("portal") ?? DEFAULT_PORTAL);
  const result = await configFor(c.env, portal);
  if (!result) throw new AppError(404, "unknown_portal", "No such portal");
  const status = result.ok ? "ok" : "unavailable";
  const code = result.ok ? 200 : 503;
  if (!result.ok) return c.json({ status, portal, problems: result.problems, warnings: result.warnings }, code);
  let crmMode: CrmMode | "unknown" = "unknown";
  const modeWarnings: ConfigProblem[] = [];
  try {
    crmMode = await crmModeOf(bitrixClientFor(result.config, c.env), storesFor(c.env, portal).crmModeCache);
  } catch (error) {
    modeWarnings.push({ setting: "BITRIX_WEBHOOK_URL", problem: `could not read the portal's CRM mode (crm.settings.mode.get): ${errorMessage(error)}` });
  }
  const fieldWarnings = crmMode === "unknown" ? [] : await requiredFieldWarnings(c.env, result.config, crmMode);
  const feed = await feedStatus(c.env, result.config, new Date());
  const warnings = [...result.warnings, ...modeWarnings, ...fieldWarnings, ...(await telephonyWarnings(c.env, portal)), ...feed.warnings];
  return c.json({ status, portal, crmMode, feed: feed.status, problems: [], warnings }, code);
});
