import type { Context } from "hono";
import { Hono } from "hono/tiny";
import * as z from "zod";
import type { AppEnv } from "./app-env";
import { type AccessRefusal, applicationTokenMatches } from "../bitrix/app-auth";
import { installApp } from "../bitrix/app-install";
import { CARD_PLACEMENTS } from "../bitrix/crm-card";
import { openTab } from "../bitrix/app-tab";
import { crmModeOf } from "../bitrix/crm-mode";
import { unfilledRequiredFields } from "../bitrix/required-fields";
import { startCall } from "../bitrix/click-to-call";
import type { CallRefusal } from "../domain/call-policy";
import { BitrixError } from "../bitrix/errors";
import { appClientFor, oauthTokenUrlOf, userClientFor, type Portal } from "../bitrix/portal";
import { signTabToken, verifyTabToken } from "../bitrix/tab-token";
import { appSettings, callCountries, comagicAuth, requireConfig } from "../config";
import { formatComagicDateTime } from "../domain/comagic-time";
import { AppError } from "../errors";
import { callRecordJob } from "../jobs/schema";
import { errorMessage } from "../log";
import { callApiClientFor, dataApiClientFor, storesFor } from "../wiring";
import { limitBody } from "./body-limit";
import { callRefusalText, renderInstalledPage, renderMessagePage, renderTabPage } from "./bitrix-tab-page";
import { languageOf, messagesFor, pageError, pageErrorText } from "../i18n";
import { crmTexts } from "../i18n/crm-texts";

/*
 * The Bitrix24 local application: install handler, the "CoMagic" tab in lead and deal cards, and
 * click-to-call (the attribution report's routes are in bitrix-report.ts and share the helpers exported here). Placement requests are posted by the user's browser, so nothing in them is trusted until
 * the portal this worker serves (never the request's DOMAIN) accepts their token for our application.
 */

/** Placement and install forms are a few hundred bytes; 16 KiB stops abuse before anything is read. */
export const APP_MAX_BYTES = 16 * 1024;
/** The rate-limit bindings' period in wrangler.toml; sent as Retry-After. */
export const RATE_LIMIT_PERIOD_SECONDS = 60;

/** A refused token, another app's token or a portal too busy to say; and a non-administrator installing. */
const REFUSAL_STATUS = { not_verified: 401, foreign_app: 401, bitrix_unavailable: 503, not_admin: 403 } as const satisfies Record<AccessRefusal | "not_admin", number>;
export const refusedPage = (refusal: keyof typeof REFUSAL_STATUS) => pageError(REFUSAL_STATUS[refusal], refusal);

/** Each click-to-call refusal as the tab's script sees it: 409 asks for a reopen, 429 to wait, 502/503 that a service failed. */
const CALL_REFUSAL_STATUS = {
  not_configured: 503,
  no_phone: 422,
  number_not_allowed: 422,
  number_changed: 409,
  user_not_mapped: 422,
  daily_limit: 429,
  comagic_refused: 502,
} as const satisfies Record<CallRefusal["code"], number>;

/** FACTS.md §1.4: a request carrying another application's APPLICATION_TOKEN is refused before its token is tried. */
export async function checkApplicationToken(sent: string | undefined, stored: string | undefined): Promise<void> {
  if (!(await applicationTokenMatches(sent, stored))) throw refusedPage("foreign_app");
}

export const text = z.string().trim().min(1).max(500);
const installForm = z.object({
  AUTH_ID: text,
  REFRESH_ID: text,
  member_id: text,
  AUTH_EXPIRES: z.coerce.number().int().positive().max(86_400).default(3600),
  APPLICATION_TOKEN: text.optional(),
  SERVER_ENDPOINT: text.optional(),
});
const tabForm = z.object({ AUTH_ID: text, member_id: text, PLACEMENT: z.enum(CARD_PLACEMENTS), PLACEMENT_OPTIONS: z.string().max(5000), APPLICATION_TOKEN: text.optional() });
const placementOptions = z.object({ ID: z.union([z.string(), z.number()]).transform(String).pipe(z.string().regex(/^\d+$/)) }).loose();
const callBody = z.object({ token: z.string().min(10).max(2000), lang: z.string().max(10).optional() });

export function appContext(c: Context<AppEnv>) {
  const config = requireConfig(c.env);
  const app = appSettings(config);
  if (!app) throw new AppError(503, "app_not_configured", "The Bitrix24 app is not configured: set BITRIX_APP_CLIENT_ID, BITRIX_APP_CLIENT_SECRET and TAB_TOKEN_SECRET");
  // The app serves the default portal (env's BITRIX_WEBHOOK_URL) for now; stored portals reach it in issue #24.
  const { portals, attribution, callGuard, journeys, visitors, crmModeCache } = storesFor(c.env, config.portal);
  if (!c.env.COMAGIC_CACHE || !portals || !attribution || !callGuard || !journeys || !visitors) throw new AppError(503, "misconfigured", "The worker is misconfigured");
  const origin = new URL(config.BITRIX_WEBHOOK_URL).origin;
  /** The app acting on the installed portal with its stored tokens. */
  const appClient = (portal: Portal) => appClientFor(portal, { oauth: app, store: portals, now: Date.now, timeoutMs: config.BITRIX_TIMEOUT_MS });
  return { config, app, origin, portals, attribution, callGuard, journeys, visitors, crmModeCache, appClient, kv: c.env.COMAGIC_CACHE };
}

/** Install events post `auth[access_token]` …; the install page posts AUTH_ID …: read either. */
function installFields(form: Record<string, string | File | (string | File)[]>): Record<string, unknown> {
  const get = (key: string) => (typeof form[key] === "string" ? form[key] : undefined);
  return {
    AUTH_ID: get("AUTH_ID") ?? get("auth[access_token]"),
    REFRESH_ID: get("REFRESH_ID") ?? get("auth[refresh_token]"),
    member_id: get("member_id") ?? get("auth[member_id]"),
    AUTH_EXPIRES: get("AUTH_EXPIRES") ?? get("auth[expires_in]"),
    APPLICATION_TOKEN: get("APPLICATION_TOKEN") ?? get("auth[application_token]"),
    SERVER_ENDPOINT: get("SERVER_ENDPOINT") ?? get("auth[server_endpoint]"),
  };
}

/** The request's DOMAIN, when given, must be the portal this worker serves. */
export function checkDomain(c: Context<AppEnv>, origin: string, domain: unknown): void {
  const claimed = typeof domain === "string" ? domain : c.req.query("DOMAIN");
  if (claimed && claimed.toLowerCase() !== new URL(origin).host.toLowerCase()) {
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

export const bitrixAppRoute = new Hono<AppEnv>();

bitrixAppRoute.use("*", limitBody(APP_MAX_BYTES));

/** Installs from an install POST or an administrator's first open of the app; returns the stored portal and what to fix. */
export async function installFrom(c: Context<AppEnv>, form: Record<string, string | File | (string | File)[]>) {
  const { origin, portals, config, app, appClient, crmModeCache } = appContext(c);
  checkDomain(c, origin, form.DOMAIN ?? form["auth[domain]"]);
  const request = installForm.parse(installFields(form));
  const now = () => new Date();
  const workerOrigin = new URL(c.req.url).origin;
  const result = await installApp(
    {
      memberId: request.member_id,
      authId: request.AUTH_ID,
      refreshId: request.REFRESH_ID,
      expiresInSeconds: request.AUTH_EXPIRES,
      applicationToken: request.APPLICATION_TOKEN,
      oauthTokenUrl: oauthTokenUrlOf(request.SERVER_ENDPOINT, app),
    },
    {
      origin,
      handlerUrl: `${workerOrigin}/bitrix/tab`,
      reportUrl: `${workerOrigin}/bitrix/app`,
      appCode: app.appCode,
      language: config.CRM_LANGUAGE,
      userClient: userClientFor(origin, request.AUTH_ID, config.BITRIX_TIMEOUT_MS),
      appClient,
      portals,
      now,
    },
  );
  if (!result.ok) throw refusedPage(result.refusal);
  c.get("log").info("app.installed", { memberId: request.member_id, boundPlacements: result.boundPlacements, createdFields: result.createdFields });
  const client = appClient(result.portal);
  const unfilled = await crmModeOf(client, crmModeCache)
    .then((mode) => unfilledRequiredFields(client, mode, config.REQUIRED_FIELD_DEFAULTS ?? {}))
    .catch(() => []);
  if (unfilled.length) c.get("log").warn("app.required_fields", { fields: unfilled.map((f) => f.field), advice: messagesFor("en").install.requiredFields(unfilled) });
  return { portal: result.portal, unfilled };
}

export const invalidInstall = () => pageError(400, "invalid_install");

bitrixAppRoute.post("/install", async (c) => {
  try {
    await limitByIp(c);
    const { unfilled } = await installFrom(c, await c.req.parseBody());
    const language = languageOf(c.req.query("LANG"));
    const messages = messagesFor(language);
    return c.html(renderInstalledPage(messages, language, unfilled.length ? messages.install.requiredFields(unfilled) : null));
  } catch (error) {
    return htmlError(c, error instanceof z.ZodError ? invalidInstall() : error);
  }
});

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

bitrixAppRoute.post("/tab", async (c) => {
  try {
    await limitByIp(c);
    const { app, origin, portals, config, journeys, visitors } = appContext(c);
    const form = tabForm.safeParse(await c.req.parseBody());
    if (!form.success) throw pageError(400, "invalid_placement");
    checkDomain(c, origin, c.req.query("DOMAIN"));
    const portal = await portals.get(form.data.member_id);
    if (!portal) throw pageError(401, "not_installed");
    await checkApplicationToken(form.data.APPLICATION_TOKEN, portal.applicationToken);
    let entity: z.infer<typeof placementOptions>;
    try {
      entity = placementOptions.parse(JSON.parse(form.data.PLACEMENT_OPTIONS));
    } catch {
      throw pageError(400, "invalid_card");
    }
    const opened = await openTab(
      { memberId: portal.memberId, placement: form.data.PLACEMENT, entityId: entity.ID },
      {
        userClient: userClientFor(portal.origin, form.data.AUTH_ID, config.BITRIX_TIMEOUT_MS),
        appCode: app.appCode,
        journeys,
        visitors,
        // A journey the tab has not cached can wait; the day's last points are the feed's.
        dataApi: dataApiClientFor(config, c.env, "deferrable"),
        timeZone: config.COMAGIC_TIMEZONE,
        defaultRegion: config.DEFAULT_PHONE_REGION,
        callCountries: callCountries(config),
        now: () => new Date(),
        nonce: () => crypto.randomUUID(),
      },
    );
    if (!opened.ok) throw refusedPage(opened.refusal);
    const { view } = opened;
    const workerOrigin = new URL(c.req.url).origin;
    const language = languageOf(c.req.query("LANG"));
    const cspNonce = crypto.randomUUID().replace(/-/g, "");
    appPageHeaders(c, portal.origin, cspNonce);
    c.get("log").info("tab.opened", { memberId: portal.memberId, userId: view.userId, entity: view.card.entity, entityId: view.card.id, journey: view.journeyState.kind });
    return c.html(
      renderTabPage({
        view,
        token: await signTabToken(view.claims, app.tabTokenKeys),
        callUrl: `${workerOrigin}/bitrix/call`,
        snippetUrl: `${workerOrigin}/snippet.js`,
        timeZone: config.COMAGIC_TIMEZONE,
        canCall: Boolean(config.COMAGIC_VIRTUAL_NUMBER && c.env.CALL_RATE_LIMITER),
        cspNonce,
        language,
        messages: messagesFor(language),
      }),
    );
  } catch (error) {
    return htmlError(c, error);
  }
});

bitrixAppRoute.post("/call", async (c) => {
  const { app, config, portals, appClient, callGuard } = appContext(c);
  const log = c.get("log");
  const body = callBody.safeParse(await c.req.json().catch(() => null));
  const messages = messagesFor(languageOf(body.data?.lang));
  const say = messages.callRefusals;
  const claims = body.success ? await verifyTabToken(body.data.token, app.tabTokenKeys, Date.now() / 1000) : null;
  if (!claims) {
    log.warn("call.refused", { reason: "invalid_token" });
    throw new AppError(401, "invalid_token", say.invalid_token);
  }
  const audit = { memberId: claims.memberId, userId: claims.userId, leadId: claims.leadId };
  log.info("call.requested", audit);
  if (!c.env.CALL_RATE_LIMITER) throw new AppError(503, "not_configured", say.not_configured);
  if (!(await c.env.CALL_RATE_LIMITER.limit({ key: `call:${claims.memberId}:${claims.userId}` })).success) {
    log.warn("call.refused", { ...audit, reason: "rate_limited" });
    c.header("Retry-After", String(RATE_LIMIT_PERIOD_SECONDS));
    throw new AppError(429, "rate_limited", say.rate_limited);
  }
  const guard = callGuard;
  // D1's unique key makes this atomic: of any number of parallel requests with one token, one goes on.
  if (!(await guard.claimToken(claims.nonce, new Date()))) {
    log.warn("call.refused", { ...audit, reason: "already_started" });
    throw new AppError(409, "already_started", say.already_started);
  }
  const portal = await portals.get(claims.memberId);
  if (!portal) throw new AppError(401, "not_installed", say.not_installed);
  const now = new Date();
  const day = formatComagicDateTime(now, config.COMAGIC_TIMEZONE).slice(0, 10);
  const outcome = await startCall(claims, {
    appClient: appClient(portal),
    employees: config.COMAGIC_EMPLOYEES ?? {},
    matchByEmail: config.COMAGIC_MATCH_BY_EMAIL,
    dataApi: dataApiClientFor(config, c.env, "feed"),
    callApi: callApiClientFor(config, c.env),
    virtualNumber: config.COMAGIC_VIRTUAL_NUMBER,
    defaultRegion: config.DEFAULT_PHONE_REGION,
    callCountries: callCountries(config),
    countCall: () => guard.countCall(day, { user: `${claims.memberId}:${claims.userId}`, portal: claims.memberId }, { user: config.CALL_DAILY_LIMIT_PER_USER, portal: config.CALL_DAILY_LIMIT }),
    now: () => now,
    texts: crmTexts(config.CRM_LANGUAGE),
  }).catch(async (error: unknown) => {
    // Bitrix24 busy or down while reading the lead: CoMagic was not asked, so the same button may try again.
    if (!(error instanceof BitrixError)) throw error;
    await guard.releaseToken(claims.nonce);
    log.warn("call.refused", { ...audit, reason: "bitrix_unavailable", code: error.code });
    throw new AppError(503, "bitrix_unavailable", say.bitrix_unavailable);
  });
  if (!outcome.ok) {
    // Never after CoMagic was asked: a second request with this token must not dial again.
    if (!outcome.askedCoMagic) await guard.releaseToken(claims.nonce);
    log.warn("call.refused", { ...audit, reason: outcome.refusal.code });
    throw new AppError(CALL_REFUSAL_STATUS[outcome.refusal.code], outcome.refusal.code, callRefusalText(messages, outcome.refusal));
  }
  log.info("call.started", { ...audit, callSessionId: outcome.callSessionId, timelineRecorded: outcome.timelineRecorded });
  // Once CoMagic's report has the call (its duration and recording), it becomes an outbound Bitrix24 call.
  if (c.env.ENRICH_JOBS && outcome.telephonyEntity && comagicAuth(config)) {
    const job = callRecordJob({
      portal: config.portal,
      requestId: c.get("requestId"),
      leadId: claims.leadId,
      sessionId: outcome.callSessionId,
      calledAt: now.toISOString(),
      visitorId: null,
      recordingUrl: null,
      outbound: { crmEntity: outcome.telephonyEntity, userId: claims.userId, phone: outcome.phone },
    });
    await c.env.ENRICH_JOBS.send(job, { contentType: "json", delaySeconds: config.ENRICH_DELAY_SECONDS }).catch((error: unknown) =>
      log.warn("telephony.enqueue_failed", { ...audit, error: errorMessage(error) }),
    );
  }
  return c.json({ status: "started", callSessionId: outcome.callSessionId });
});
