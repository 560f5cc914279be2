import { type AppInstall, refreshCoalesced } from "./bitrix/app-client";
import { createBitrixClient, type BitrixClient } from "./bitrix/client";
import { BitrixError, type RequestBudget } from "./bitrix/errors";
import { portalBudget } from "./bitrix/request-budget";
import { createCoMagicRpcClient, kvTokenStore, type CoMagicRpcClient, type TokenStore } from "./comagic/data-api";
import { appSettings, comagicAuth, type Config } from "./config";
import type { CoMagicPriority } from "./domain/comagic-budget";
import type { Env } from "./env";
import { d1AttributionStore } from "./storage/attribution";
import { d1BudgetStore } from "./storage/comagic-budget";
import { d1CallGuard } from "./storage/call-guard";
import { d1CrmVisitorStore } from "./storage/crm-visitors";
import { kvCrmModeCache } from "./storage/crm-mode-cache";
import { d1DealJournal } from "./storage/deal-journal";
import { d1FormUploads } from "./storage/form-uploads";
import { d1CrmCommunications } from "./storage/crm-communications";
import { d1FormVisitors } from "./storage/form-visitors";
import { d1ConversionStore, type Destination } from "./storage/conversions";
import { ga4Client, type Ga4Client } from "./ga4/client";
import type { DealRecord } from "./storage/attribution-store";
import type { ConversionSettings } from "./domain/offline-conversions";
import { momentsOfDeals } from "./jobs/conversions";
import { metricaClient, type MetricaClient } from "./metrica/client";
import { d1AppliedEvents, deadLetterStore } from "./storage/d1";
import { kvJourneyStore } from "./storage/journeys";
import { type KvCache, portalKv } from "./storage/kv-json";
import { d1AppInstalls } from "./storage/app-installs";
import { parseSettingsKeys, type SettingsKeys } from "./storage/sealed-secrets";

/** SETTINGS_KEY's keys, or null when it is unset or broken (/health says which; stored portals then answer 503). */
export function settingsKeysOf(env: Env): SettingsKeys | null {
  const parsed = parseSettingsKeys(env.SETTINGS_KEY);
  return "keys" in parsed ? parsed.keys : null;
}

/** Adapters built from settings and bindings; everything below takes these, never the whole Env. */
/**
 * The portal's REST client: over its webhook, or, for a portal reached through the app (no webhook), as the app
 * with its install's tokens. Every request takes a permit from the portal's Durable Object first
 * (bitrix/request-budget.ts), so the consumers of all queues, running side by side, stay inside the portal's
 * 2 requests a second together (a deploy without the binding sends as before, and may meet QUERY_LIMIT_EXCEEDED).
 */
export function bitrixClientFor(config: Config, env: Env): BitrixClient {
  const budget = budgetFor(env, config.portal);
  if (config.BITRIX_WEBHOOK_URL) return createBitrixClient({ baseUrl: config.BITRIX_WEBHOOK_URL, timeoutMs: config.BITRIX_TIMEOUT_MS, ...(budget ? { budget } : {}) });
  return installClient(config, env, budget);
}

/** The app's install on the portal: by the member_id a stored portal is linked to, else at the default portal's origin. */
export async function installOf(env: Env, config: Config): Promise<AppInstall | null> {
  const { installs } = storesFor(env, config.portal);
  if (!installs) return null;
  return config.memberId ? installs.get(config.memberId) : installs.findByOrigin(config.portalOrigin);
}

/** The app acting on a portal without a webhook: its install is read from D1 when the first request needs it. */
function installClient(config: Config, env: Env, budget: RequestBudget | undefined): BitrixClient {
  const oauth = appSettings(config);
  const { installs } = storesFor(env, config.portal);
  let install: AppInstall | null = null;
  const current = async (): Promise<AppInstall> => {
    install ??= oauth ? await installOf(env, config) : null;
    // Not transient: a removed app comes back only when an administrator installs it again.
    if (!install) throw new BitrixError("APP_NOT_INSTALLED", "Bitrix24: the CoMagic app is not installed on this portal (install it again)", false, "no");
    return install;
  };
  return createBitrixClient({
    baseUrl: `${config.portalOrigin}/rest/`,
    timeoutMs: config.BITRIX_TIMEOUT_MS,
    ...(budget ? { budget } : {}),
    oauth: {
      token: async () => (await current()).accessToken,
      refresh: async () => {
        const expired = await current();
        if (!oauth || !installs) return expired.accessToken;
        install = await refreshCoalesced(expired, { oauth, store: installs, now: Date.now });
        return install.accessToken;
      },
    },
  });
}

/** The portal's Bitrix24 request budget, shared by its webhook, app and users' clients (FACTS.md §4.1: one limit per portal). */
export function budgetFor(env: Env, portal: string): RequestBudget | undefined {
  return env.PORTAL_STATE ? portalBudget(env.PORTAL_STATE, portal) : undefined;
}

/** Without KV, tokens live only as long as the isolate: still correct, only more login.user calls. */
export function memoryTokenStore(): TokenStore {
  const tokens = new Map<string, { accessToken: string; expireAt: number }>();
  return {
    get: async (key) => tokens.get(key) ?? null,
    put: async (key, token) => void tokens.set(key, token),
    delete: async (key) => void tokens.delete(key),
  };
}

/** A rate limit counted per portal: one portal's spam never spends another's allowance. */
export function portalLimiter(limiter: RateLimit | undefined, portal: string): Pick<RateLimit, "limit"> | null {
  return limiter ? { limit: ({ key }) => limiter.limit({ key: `${portal}:${key}` }) } : null;
}

/** The portal's share of the KV cache, or null without the binding. */
export function cacheFor(env: Env, portal: string): KvCache | null {
  return env.COMAGIC_CACHE ? portalKv(env.COMAGIC_CACHE, portal) : null;
}

export function tokenStoreFor(env: Env, portal: string): TokenStore {
  const kv = cacheFor(env, portal);
  return kv ? kvTokenStore(kv) : memoryTokenStore();
}

/** A click-to-call is a person waiting: the Call API's own points are recorded but never held back. */
export function callApiClientFor(config: Config, env: Env): CoMagicRpcClient | null {
  const auth = comagicAuth(config);
  const budget = env.DB ? d1BudgetStore(env.DB, config.portal) : null;
  return auth ? createCoMagicRpcClient({ url: config.COMAGIC_CALL_API_URL, auth, tokens: tokenStoreFor(env, config.portal), api: "Call API", priority: "feed", budget }) : null;
}

/**
 * A Data API client for one kind of work: "feed" for reads that make or complete leads (the feed, call records,
 * the responsible's email), "deferrable" for what may wait a day (enrichment, cost import, backfill, the tab's
 * journey), which leaves the last 10% of the day's points to the feed (domain/comagic-budget.ts).
 */
export function dataApiClientFor(config: Config, env: Env, priority: CoMagicPriority): CoMagicRpcClient | null {
  const auth = comagicAuth(config);
  const budget = env.DB ? d1BudgetStore(env.DB, config.portal) : null;
  return auth ? createCoMagicRpcClient({ url: config.COMAGIC_DATA_API_URL, auth, tokens: tokenStoreFor(env, config.portal), api: "Data API", priority, budget }) : null;
}

/**
 * One portal's stores (and the deployment's dead letters and app installs), over the bindings this deploy has:
 * null where its binding is missing, so each caller decides whether that is a 503 or a degraded path.
 */
export function storesFor(env: Env, portal: string) {
  const db = env.DB;
  const kv = cacheFor(env, portal);
  return {
    ledger: db ? d1AppliedEvents(db, portal) : null,
    deadLetters: db ? deadLetterStore(db) : null,
    attribution: db ? d1AttributionStore(db, portal) : null,
    installs: db ? d1AppInstalls(db, settingsKeysOf(env)) : null,
    callGuard: db ? d1CallGuard(db, portal) : null,
    visitors: db ? d1CrmVisitorStore(db, portal) : null,
    dealJournal: db ? d1DealJournal(db, portal) : null,
    conversions: db ? d1ConversionStore(db, portal) : null,
    formUploads: db ? d1FormUploads(db, portal) : null,
    communications: db ? d1CrmCommunications(db, portal) : null,
    formVisitors: db ? d1FormVisitors(db, portal) : null,
    journeys: kv ? kvJourneyStore(kv) : null,
    crmModeCache: kvCrmModeCache(kv),
  };
}

/** The portal's Metrica client and counter, when offline conversions are set up (METRICA_COUNTER_ID and METRICA_TOKEN). */
export function metricaFor(config: Config): { client: MetricaClient; counterId: string } | null {
  if (!config.METRICA_COUNTER_ID || !config.METRICA_TOKEN) return null;
  return { client: metricaClient({ token: config.METRICA_TOKEN, baseUrl: config.METRICA_API_URL }), counterId: config.METRICA_COUNTER_ID };
}

/** The portal's GA4 client, when its events are set up (GA4_MEASUREMENT_ID and GA4_API_SECRET). */
export function ga4For(config: Config): Ga4Client | null {
  if (!config.GA4_MEASUREMENT_ID || !config.GA4_API_SECRET) return null;
  return ga4Client({ measurementId: config.GA4_MEASUREMENT_ID, apiSecret: config.GA4_API_SECRET, baseUrl: config.GA4_API_URL });
}

/** Which CRM moments are conversions for each destination set up: Metrica's goals, GA4's event names. */
export function conversionSettingsOf(config: Config): Partial<Record<Destination, ConversionSettings>> {
  const qualifiedLeadStatus = config.QUALIFIED_LEAD_STATUS ?? null;
  return {
    ...(metricaFor(config) ? { metrica: { goals: { qualified: config.METRICA_GOAL_QUALIFIED, won: config.METRICA_GOAL_WON }, qualifiedLeadStatus } } : {}),
    ...(ga4For(config) ? { ga4: { goals: { qualified: config.GA4_EVENT_QUALIFIED, won: config.GA4_EVENT_WON }, qualifiedLeadStatus } } : {}),
  };
}

/**
 * What starts from the deals a report sync saw changed: each waits for CoMagic's deal loop (COMAGIC_DEALS), and its
 * moments wait to go to Metrica as conversions (when set up). Null when neither is on.
 */
export function dealChangesFor(env: Env, config: Config): ((deals: readonly DealRecord[], at: Date) => Promise<void>) | null {
  const { dealJournal } = storesFor(env, config.portal);
  const journal = config.COMAGIC_DEALS ? dealJournal : null;
  const destinations = Object.entries(conversionSettingsOf(config)) as [Destination, ConversionSettings][];
  const conversions = destinations.length ? storesFor(env, config.portal).conversions : null;
  if (!journal && !conversions) return null;
  return async (deals, at) => {
    await journal?.markChanged(deals, at);
    for (const [destination, settings] of destinations) await conversions?.add(destination, momentsOfDeals(deals, settings), at);
  };
}
