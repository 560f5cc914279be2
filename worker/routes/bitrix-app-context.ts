/*
 * What every page and action of the Bitrix24 app shares: the portal a request is about (found by the Bitrix24
 * portal's member_id the request names: a stored portal with that member_id, else the default one), its settings and
 * stores, and the checks each request passes. Placement requests are posted by the user's browser, so nothing in
 * them is trusted until the portal this worker serves there (its BITRIX_WEBHOOK_URL's origin or the BITRIX_PORTAL_URL
 * its install was given, never the request's DOMAIN) accepts their token for our application.
 */
import type { Context } from "hono";
import * as z from "zod";
import type { AppEnv } from "./app-env";
import { type AccessRefusal, applicationTokenMatches } from "../bitrix/app-auth";
import { appClientFor, type AppInstall, userClientFor } from "../bitrix/app-client";
import { appSettings, deploymentSettings } from "../config";
import { AppError } from "../errors";
import { type Language, languageOf, messagesFor, pageError, pageErrorText } from "../i18n";
import { recheckReportAccess, type ReportClaims, verifyReportToken } from "../bitrix-app/report";
import { kvReportSessions } from "../storage/report-sessions";
import { portalOfMember, requirePortalConfig } from "../portal-config";
import { budgetFor, metricaFor, storesFor } from "../wiring";
import { renderMessagePage } from "./bitrix-tab-page";

/** Placement and install forms are a few hundred bytes; 16 KiB stops abuse before anything is read. */
export const APP_MAX_BYTES = 16 * 1024;
/** The rate-limit bindings' period in wrangler.toml; sent as Retry-After. */
export const RATE_LIMIT_PERIOD_SECONDS = 60;

/** A refused token, another app's token or a portal too busy to say; and a non-administrator installing. */
const REFUSAL_STATUS = { not_verified: 401, foreign_app: 401, bitrix_unavailable: 503, not_admin: 403 } as const satisfies Record<AccessRefusal | "not_admin", number>;
export const refusedPage = (refusal: keyof typeof REFUSAL_STATUS) => pageError(REFUSAL_STATUS[refusal], refusal);

/** FACTS.md §1.4: a request carrying another application's APPLICATION_TOKEN is refused before its token is tried. */
export async function checkApplicationToken(sent: string | undefined, stored: string | undefined): Promise<void> {
  if (!(await applicationTokenMatches(sent, stored))) throw refusedPage("foreign_app");
}

export const text = z.string().trim().min(1).max(500);

/** The keys that sign the app's page tokens (TAB_TOKEN_SECRET: the deployment's, so a token names its portal's member_id). */
export function tabTokenKeys(c: Context<AppEnv>): string[] {
  const keys = deploymentSettings(c.env).TAB_TOKEN_SECRET;
  if (!keys) throw new AppError(503, "app_not_configured", "The Bitrix24 app is not configured: set BITRIX_APP_CLIENT_ID, BITRIX_APP_CLIENT_SECRET and TAB_TOKEN_SECRET");
  return keys;
}

/** The portal of the Bitrix24 portal `memberId` names, its settings, the app's keys and the portal's stores. */
export async function appContext(c: Context<AppEnv>, memberId: string) {
  const config = await requirePortalConfig(c.env, await portalOfMember(c.env, memberId));
  const app = appSettings(config);
  if (!app) throw new AppError(503, "app_not_configured", "The Bitrix24 app is not configured: set BITRIX_APP_CLIENT_ID, BITRIX_APP_CLIENT_SECRET and TAB_TOKEN_SECRET");
  const { installs, attribution, callGuard, journeys, visitors, crmModeCache, dealJournal, conversions } = storesFor(c.env, config.portal);
  if (!c.env.COMAGIC_CACHE || !installs || !attribution || !callGuard || !journeys || !visitors) throw new AppError(503, "misconfigured", "The worker is misconfigured");
  const origin = config.portalOrigin;
  // The app's and the users' calls share the portal's Bitrix24 budget with the queues' (FACTS.md §4.1: per portal).
  const budget = budgetFor(c.env, config.portal);
  /** The app acting on the installed portal with its stored tokens. */
  const appClient = (install: AppInstall) => appClientFor(install, { oauth: app, store: installs, now: Date.now, timeoutMs: config.BITRIX_TIMEOUT_MS, ...(budget ? { budget } : {}) });
  /** A user's own token, from a page the portal opened (never refreshed). */
  const userClient = (authId: string) => userClientFor(origin, authId, config.BITRIX_TIMEOUT_MS, budget);
  c.set("log", c.get("log").child({ portal: config.portal }));
  // What the report says of the loop (issue #25): the deals sent to CoMagic and Metrica's conversions, when each is on.
  const loop = { deals: config.COMAGIC_DEALS ? dealJournal : null, conversions: metricaFor(config) ? conversions : null };
  return { config, app, origin, installs, attribution, callGuard, journeys, visitors, crmModeCache, loop, appClient, userClient, kv: c.env.COMAGIC_CACHE };
}
export type AppContext = Awaited<ReturnType<typeof appContext>>;

/** The request's DOMAIN, when given, must be the portal this worker serves. */
export function checkDomain(c: Context<AppEnv>, origin: string, domain: unknown): void {
  const claimed = typeof domain === "string" ? domain : c.req.query("DOMAIN");
  if (claimed && claimed.toLowerCase() !== new URL(origin).host.toLowerCase()) {
    // The operator links a Bitrix24 portal to a stored portal by its domain and member_id: say which one knocked.
    c.get("log").warn("bitrix.foreign_portal", { domain: claimed.slice(0, 200), servedOrigin: origin });
    throw pageError(403, "foreign_portal");
  }
}

/** Each tab or install request costs Bitrix24 calls: a per-IP limit keeps a stranger from spending the portal's budget. */
export async function limitByIp(c: Context<AppEnv>): Promise<void> {
  const limiter = c.env.APP_RATE_LIMITER;
  if (!limiter) throw new AppError(503, "misconfigured", "The worker is misconfigured");
  const ip = c.req.header("cf-connecting-ip") ?? "unknown";
  if (!(await limiter.limit({ key: `app:${ip}` })).success) {
    c.get("log").warn("bitrix.rejected", { code: "rate_limited", path: new URL(c.req.url).pathname });
    c.header("Retry-After", String(RATE_LIMIT_PERIOD_SECONDS));
    throw pageError(429, "rate_limited");
  }
}

export function htmlError(c: Context<AppEnv>, error: unknown) {
  if (!(error instanceof AppError)) throw error;
  if (error.status === 401 || error.status === 403) {
    c.get("log").warn("bitrix.rejected", { code: error.code, path: new URL(c.req.url).pathname });
    c.header("Cache-Control", "no-store");
  }
  const language = languageOf(c.req.query("LANG"));
  return c.html(renderMessagePage("CoMagic", pageErrorText(messagesFor(language), error.code) ?? error.message, language), error.status);
}

/**
 * An app page shown inside the portal (a card's tab, the report): only that portal may frame it, and the page may
 * load nothing but itself; `formAction` 'self' for a page whose forms post back to the worker.
 */
export function appPageHeaders(c: Context<AppEnv>, origin: string, nonce: string, formAction: "'none'" | "'self'" = "'none'"): void {
  c.header(
    "Content-Security-Policy",
    `default-src 'none'; script-src 'nonce-${nonce}'; style-src 'nonce-${nonce}'; connect-src 'self'; img-src 'self' data:; form-action ${formAction}; base-uri 'none'; frame-ancestors ${origin}`,
  );
  c.header("Cache-Control", "no-store");
  c.header("Referrer-Policy", "no-referrer");
}

/** How one of the app's token-carrying pages (the report, the settings) differs from the other. */
export interface PageRules {
  purpose: ReportClaims["purpose"];
  /** The per-user rate limit's key prefix (REPORT_RATE_LIMITER): `report-view`, `report-refresh`, `settings`. */
  limit: string;
  /** Who besides the portal's administrators may keep the page (REPORT_USER_IDS for the report, nobody for the settings). */
  allowed: (config: AppContext["config"]) => readonly string[];
  /** The 401 of a token that is missing, forged, expired, or no longer accepted by Bitrix24, in the page's language. */
  expired: (language: Language) => AppError;
  /** The 403 of a user whose access was taken away since the page opened. */
  denied: (claims: ReportClaims) => AppError;
  /** The response header a renewed token goes back in. */
  header: string;
}

/**
 * A request of a page opened from Bitrix24: a genuine token of the page's purpose within its hour, under the user's
 * rate limit, its portal's install, and access confirmed by Bitrix24 within five minutes (bitrix-app/report.ts). The
 * token names its portal (member_id): the page, its data and its checks are that portal's.
 */
export async function pageSession(c: Context<AppEnv>, token: string | undefined, rules: PageRules) {
  const now = new Date();
  const claims = token ? await verifyReportToken(token, tabTokenKeys(c), now, rules.purpose) : null;
  if (!token || !claims) throw rules.expired(claims?.lang ?? languageOf(c.req.query("LANG")));
  const log = c.get("log");
  const limiter = c.env.REPORT_RATE_LIMITER;
  if (!limiter) throw new AppError(503, "misconfigured", "The worker is misconfigured");
  if (!(await limiter.limit({ key: `${rules.limit}:${claims.memberId}:${claims.userId}` })).success) {
    log.warn(`${rules.purpose}.rejected`, { code: "rate_limited", memberId: claims.memberId, userId: claims.userId, limit: rules.limit });
    c.header("Retry-After", String(RATE_LIMIT_PERIOD_SECONDS));
    throw pageError(429, "report_rate_limited");
  }
  const ctx = await appContext(c, claims.memberId);
  const install = await ctx.installs.get(claims.memberId);
  if (!install) throw pageError(401, "not_installed");
  const session = await recheckReportAccess(claims, token, {
    keys: ctx.app.tabTokenKeys,
    now,
    sessions: kvReportSessions(ctx.kv),
    userClient: ctx.userClient,
    appCode: ctx.app.appCode,
    reportUserIds: rules.allowed(ctx.config),
  });
  if (session.kind === "expired") throw rules.expired(claims.lang);
  if (session.kind === "unavailable") throw pageError(503, "bitrix_unavailable");
  if (session.kind === "denied") {
    log.warn(`${rules.purpose}.refused`, { memberId: claims.memberId, userId: claims.userId, reason: "access_lost" });
    throw rules.denied(claims);
  }
  if (session.renewed) log.info(`${rules.purpose}.rechecked`, { memberId: claims.memberId, userId: claims.userId });
  c.header(rules.header, session.token);
  return { claims: session.claims, token: session.token, install, ctx };
}
