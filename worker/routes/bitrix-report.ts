import type { Context } from "hono";
import { Hono } from "hono/tiny";
import * as z from "zod";
import type { AppEnv } from "./app-env";
import type { AppInstall } from "../bitrix/app-client";
import { crmModeOf } from "../bitrix/crm-mode";
import { comagicAuth } from "../config";
import { AppError } from "../errors";
import { dataApiClientFor, dealChangesFor } from "../wiring";
import { limitBody } from "./body-limit";
import { renderMessagePage } from "./bitrix-tab-page";
import { renderReportCsv, renderReportPage } from "./bitrix-report-page";
import { loadAttributionReport, REPORT_TOKEN_TTL_SECONDS, reportAccess, signReportToken, type ReportClaims } from "../bitrix-app/report";
import { MODELS } from "../domain/attribution";
import { GROUPINGS, PERIODS, periodDays, type ReportFilters } from "../domain/attribution-report";
import { languageOf, messagesFor, pageError, type Language } from "../i18n";
import { refreshReportData } from "../jobs/report-sync";
import { kvReportSessions } from "../storage/report-sessions";
import { APP_MAX_BYTES, type AppContext, appContext, appPageHeaders, checkApplicationToken, checkDomain, htmlError, limitByIp, refusedPage, text, pageSession } from "./bitrix-app-context";
import { installFrom, invalidInstall, servesMember } from "./bitrix-install";
import { renderSettings } from "./bitrix-settings";
import { verifiedUser } from "../bitrix/app-auth";

/*
 * The attribution report: the app's own page (PLACEMENT=DEFAULT, from the left menu or Applications) and CRM
 * Analytics' menu item (CRM_ANALYTICS_MENU) post to /app. Later requests (filters, CSV, refresh) carry the
 * signed report token the page was given, in the POST body only: a token in a URL would stay in logs and the
 * browser's history. Each is limited per user (REPORT_RATE_LIMITER), and access is re-checked with Bitrix24
 * once the token's last check is five minutes old (bitrix-app/report.ts).
 */

const appPageForm = z.object({ AUTH_ID: text, member_id: text, REFRESH_ID: text.optional(), APPLICATION_TOKEN: text.optional(), PLACEMENT: z.string().max(100).optional() });
const DEFAULT_FILTERS = { period: "30d", model: "last_non_direct", grouping: "source_medium" } as const;
/** Filters come from the page's own form: anything else falls back to a default rather than failing. */
const filterFields = z.object({
  period: z.enum(PERIODS).catch(DEFAULT_FILTERS.period),
  model: z.enum(MODELS).catch(DEFAULT_FILTERS.model),
  grouping: z.enum(GROUPINGS).catch(DEFAULT_FILTERS.grouping),
  entity: z.enum(["lead", "deal"]).optional().catch(undefined),
  from: z.string().max(10).optional().catch(undefined),
  to: z.string().max(10).optional().catch(undefined),
});
const tokenField = z.object({ token: z.string().min(10).max(2000) });

export const bitrixReportRoute = new Hono<AppEnv>();

bitrixReportRoute.use("*", limitBody(APP_MAX_BYTES));

const reportHeaders = (c: Context<AppEnv>, portalOrigin: string, nonce: string) => appPageHeaders(c, portalOrigin, nonce, "'self'");

/** The page's language before its token is read (the page sends it in the URL); expired tokens cannot say theirs. */
const requestLanguage = (c: Context<AppEnv>): Language => languageOf(c.req.query("LANG"));

/**
 * The request's report session (bitrix-app-context.ts pageSession): each request reads D1 (and a refresh, Bitrix24),
 * so a limit per user, the refresh apart from the views. A renewed token goes back in X-Report-Token (and in the page).
 */
const reportSession = (c: Context<AppEnv>, token: string | undefined, action: "view" | "refresh") =>
  pageSession(c, token, {
    purpose: "report",
    limit: `report-${action}`,
    allowed: (config) => config.REPORT_USER_IDS,
    expired: (language) => new AppError(401, "invalid_report_token", messagesFor(language).expired),
    denied: (claims) => new AccessLostError(claims),
    header: "X-Report-Token",
  });

/** A user who lost access since the page opened: a 403 that says why, in the page's language. */
class AccessLostError extends AppError {
  constructor(readonly claims: ReportClaims) {
    super(403, "report_access_denied", messagesFor(claims.lang).accessDenied(claims.userId));
  }
}

function accessDeniedPage(c: Context<AppEnv>, userId: string, language: Language) {
  const messages = messagesFor(language);
  c.header("Cache-Control", "no-store");
  return c.html(renderMessagePage(messages.accessDeniedTitle, messages.accessDenied(userId), language), 403);
}

async function reportView(ctx: AppContext, claims: ReportClaims, install: AppInstall, fields: Record<string, unknown>) {
  const { config, appClient, attribution, crmModeCache, loop } = ctx;
  const filters = filterFields.parse(fields);
  const mode = filters.entity ? null : await crmModeOf(appClient(install), crmModeCache).catch(() => null);
  const messages = messagesFor(claims.lang);
  const chosen: ReportFilters = {
    period: filters.period,
    days: periodDays(filters.period, new Date(), config.COMAGIC_TIMEZONE, { from: filters.from, to: filters.to }),
    model: filters.model,
    grouping: filters.grouping,
    entity: filters.entity ?? (mode === "simple" ? "deal" : "lead"),
  };
  const { report, notes } = await loadAttributionReport(chosen, { store: attribution, timeZone: config.COMAGIC_TIMEZONE, hasDataApi: comagicAuth(config) !== null, messages, loop });
  return { filters: chosen, report, notes, messages };
}

async function renderReport(c: Context<AppEnv>, ctx: AppContext, claims: ReportClaims, token: string, install: AppInstall, fields: Record<string, unknown>) {
  const { config } = ctx;
  const view = await reportView(ctx, claims, install, fields);
  const cspNonce = crypto.randomUUID().replace(/-/g, "");
  reportHeaders(c, install.origin, cspNonce);
  c.get("log").info("report.opened", { memberId: claims.memberId, userId: claims.userId, model: view.filters.model, grouping: view.filters.grouping, groups: view.report.rows.length });
  return c.html(renderReportPage({ ...view, token, language: claims.lang, timeZone: config.COMAGIC_TIMEZONE, entities: ["lead", "deal"], cspNonce }));
}

bitrixReportRoute.post("/app", async (c) => {
  try {
    await limitByIp(c);
    const language = requestLanguage(c);
    const raw = await c.req.parseBody();
    const form = appPageForm.safeParse(raw);
    if (!form.success) throw pageError(400, "invalid_app_page");
    // A portal the deployment does not serve yet: an administrator's first open installs it as a portal of its own.
    if (form.data.REFRESH_ID && !(await servesMember(c.env, form.data.member_id))) await installFrom(c, raw);
    const ctx = await appContext(c, form.data.member_id);
    const { app, origin, installs, config, kv } = ctx;
    checkDomain(c, origin, c.req.query("DOMAIN"));
    // An administrator's first open of the app installs it, as Bitrix24 expects of an app without an install page.
    const install = (await installs.get(form.data.member_id)) ?? (form.data.REFRESH_ID ? (await installFrom(c, raw)).install : null);
    if (!install) throw pageError(401, "not_installed");
    await checkApplicationToken(form.data.APPLICATION_TOKEN, install.applicationToken);
    // The app's own page (from the left menu or Applications) is the settings for an administrator; CRM Analytics' item is the report.
    const ownPage = (form.data.PLACEMENT ?? "DEFAULT") === "DEFAULT" && c.req.query("view") !== "report";
    if (ownPage) {
      const user = await verifiedUser(ctx.userClient(form.data.AUTH_ID), app.appCode);
      if (!user.ok) throw refusedPage(user.refusal);
      if (user.profile.ADMIN === true) {
        const sid = crypto.randomUUID();
        await kvReportSessions(kv).put(install.memberId, sid, form.data.AUTH_ID, REPORT_TOKEN_TTL_SECONDS);
        const { claims } = await signReportToken({ memberId: install.memberId, userId: user.profile.ID, lang: language, sid }, app.tabTokenKeys, new Date(), "settings");
        return await renderSettings(c, ctx, install, claims);
      }
    }
    const access = await reportAccess(ctx.userClient(form.data.AUTH_ID), app.appCode, config.REPORT_USER_IDS);
    if (access.kind === "refused") throw refusedPage(access.refusal);
    if (access.kind === "denied") {
      c.get("log").warn("report.refused", { memberId: install.memberId, userId: access.userId });
      return accessDeniedPage(c, access.userId, language);
    }
    // The user's token stays with the worker for the re-checks; the page gets only the report token naming it.
    const sid = crypto.randomUUID();
    await kvReportSessions(kv).put(install.memberId, sid, form.data.AUTH_ID, REPORT_TOKEN_TTL_SECONDS);
    const { token, claims } = await signReportToken({ memberId: install.memberId, userId: access.userId, lang: language, sid }, app.tabTokenKeys, new Date());
    return await renderReport(c, ctx, claims, token, install, c.req.query());
  } catch (error) {
    return htmlError(c, error instanceof z.ZodError ? invalidInstall() : error);
  }
});

/** The report for other filters: the page's filter form posts here, the token among its fields. */
bitrixReportRoute.post("/report", async (c) => {
  try {
    const fields = await c.req.parseBody();
    const session = await reportSession(c, typeof fields.token === "string" ? fields.token : undefined, "view");
    return await renderReport(c, session.ctx, session.claims, session.token, session.install, fields);
  } catch (error) {
    if (error instanceof AccessLostError) return accessDeniedPage(c, error.claims.userId, error.claims.lang);
    return htmlError(c, error);
  }
});

/** The table as CSV: fetched by the page's script with the token in the body, and saved from a Blob. */
bitrixReportRoute.post("/report.csv", async (c) => {
  const fields = await c.req.parseBody();
  const { claims, install, ctx } = await reportSession(c, typeof fields.token === "string" ? fields.token : undefined, "view");
  const view = await reportView(ctx, claims, install, fields);
  c.get("log").info("report.exported", { memberId: claims.memberId, userId: claims.userId });
  c.header("Content-Type", "text/csv; charset=utf-8");
  c.header("Content-Disposition", `attachment; filename="comagic-attribution-${view.filters.days.from}-${view.filters.days.to}.csv"`);
  c.header("Cache-Control", "no-store");
  return c.body(renderReportCsv(view.report, view.filters, claims.lang, view.messages));
});

/**
 * Syncs deals and cost now, or joins the sync already running (the cron's, another user's): `202` when that
 * one has not finished within the wait, `502` when Bitrix24 could not be read.
 */
bitrixReportRoute.post("/report/refresh", async (c) => {
  const body = tokenField.safeParse(await c.req.json().catch(() => null));
  const { install, ctx } = await reportSession(c, body.success ? body.data.token : undefined, "refresh");
  const { config, appClient, attribution } = ctx;
  const outcome = await refreshReportData({
    bitrix: appClient(install),
    dataApi: dataApiClientFor(config, c.env, "deferrable"),
    store: attribution,
    siteIds: config.COMAGIC_SITE_IDS,
    timeZone: config.COMAGIC_TIMEZONE,
    now: () => new Date(),
    log: c.get("log"),
    maxPages: config.REPORT_SYNC_MAX_PAGES,
    dealChanges: dealChangesFor(c.env, config),
  });
  if (outcome.joined) return c.json({ status: outcome.finished ? "joined" : "running" }, outcome.finished ? 200 : 202);
  const { deals, costDays, problems } = outcome;
  return c.json({ status: problems.length ? "partial" : "refreshed", deals, costDays, problems }, problems.includes("deals") ? 502 : 200);
});

/** The report once took its token in the query; such links are refused (405) and say where the report opens. */
for (const path of ["/report", "/report.csv"]) {
  bitrixReportRoute.get(path, (c) => {
    c.header("Allow", "POST");
    return htmlError(c, pageError(405, "invalid_app_page"));
  });
}
