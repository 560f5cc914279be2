/*
 * The app's settings page, for the portal's administrators: the app's own page (PLACEMENT=DEFAULT, from the left
 * menu or Applications) opens it for an administrator (routes/bitrix-report.ts `/app`), with a signed settings
 * token that its actions post back (saving, checking the CoMagic account, checking a page of the site). The token
 * is the report's kind with purpose "settings" (bitrix-app/report.ts): in POST bodies only, an hour at most, the
 * user's administrator rights confirmed again with Bitrix24 every five minutes. Saving a changed GA4 setting asks
 * Google's validation server first (the one outside call a save makes).
 */
import type { Context } from "hono";
import { Hono } from "hono/tiny";
import * as z from "zod";
import type { AppEnv } from "./app-env";
import type { AppInstall } from "../bitrix/app-client";
import { crmModeOf } from "../bitrix/crm-mode";
import { ensureCrmUserFields } from "../bitrix/user-fields";
import { unfilledRequiredFields } from "../bitrix/required-fields";
import { type ReportClaims, signReportToken } from "../bitrix-app/report";
import {
  checkComagic,
  checkGa4,
  checkRefusal,
  type FunnelReport,
  ga4CheckOf,
  loadFunnels,
  loadLeadStatuses,
  loadManagers,
  makeSalesFunnels,
  PAGE_SECRETS,
  PAGE_SETTINGS,
  pageChangeSchema,
  pageHasSnippet,
  platformOf,
  secretHint,
  settingsOfChange,
} from "../bitrix-app/settings";
import { createCoMagicRpcClient } from "../comagic/data-api";
import { comagicAuth, type Config } from "../config";
import { DEFAULT_PORTAL } from "../domain/portal-key";
import { isLoopback, isSafeUpstream } from "../domain/upstream-url";
import { AppError } from "../errors";
import { messagesFor, pageError, type Language } from "../i18n";
import { settingsMessages } from "../i18n/settings";
import { errorMessage } from "../log";
import { savePortal } from "../portal-config";
import { d1PortalActivity } from "../storage/portal-activity";
import { d1PortalSettings } from "../storage/portal-settings";
import { cacheFor, dataApiClientFor, ga4For, memoryTokenStore, metricaFor, storesFor } from "../wiring";
import { employeeMap } from "../domain/employee-match";
import { limitBody } from "./body-limit";
import { type AppContext, APP_MAX_BYTES, appPageHeaders, htmlError, pageSession } from "./bitrix-app-context";
import { renderSettingsPage, type SettingsView } from "./bitrix-settings-page";

const tokenField = z.object({ token: z.string().min(10).max(2000) });
const checkComagicBody = tokenField.extend(pageChangeSchema.shape);
const checkPageBody = tokenField.extend({ url: z.string().trim().min(1).max(2000) });
/** A page of the site is read this far for the tag: it sits in the head or at the end of a normal page. */
const PAGE_MAX_BYTES = 512 * 1024;
const PAGE_TIMEOUT_MS = 5_000;

/** The deployment's own sandbox CoMagic, offered as a platform only where plain http to this machine is allowed. */
function localPlatform(c: Context<AppEnv>, config: Config): { data: string; call: string } | null {
  const data = c.env.COMAGIC_DATA_API_URL;
  const call = c.env.COMAGIC_CALL_API_URL;
  if (!config.ALLOW_LOOPBACK_HTTP || !data || !call) return null;
  return isLoopback(new URL(data)) ? { data, call } : null;
}

/**
 * The request's settings session (bitrix-app-context.ts pageSession): a settings token, each action under a limit per
 * user (it reads D1, or calls CoMagic or a site), and its user still an administrator of its portal. REPORT_USER_IDS
 * see the report, never the settings.
 */
const settingsSession = (c: Context<AppEnv>, token: string | undefined) =>
  pageSession(c, token, {
    purpose: "settings",
    limit: "settings",
    allowed: () => [],
    expired: (language) => new AppError(401, "invalid_settings_token", messagesFor(language).expired),
    denied: () => pageError(403, "not_admin"),
    header: "X-Settings-Token",
  });

/** What the page shows: every step's settings and state, read from the portal's settings, its activity and Bitrix24. */
async function settingsView(c: Context<AppEnv>, ctx: AppContext, install: AppInstall, language: Language): Promise<SettingsView> {
  const { config } = ctx;
  const workerOrigin = new URL(c.req.url).origin;
  const own = config.portal === DEFAULT_PORTAL;
  const client = ctx.appClient(install);
  const mode = await crmModeOf(client, ctx.crmModeCache).catch(() => null);
  // Only a portal without leads makes deals: the funnel and stage they start in are its to choose.
  const funnels = mode === "simple" ? await loadFunnels(client).catch(() => null) : null;
  // The install made the CoMagic fields; one deleted since is made again here, where an administrator is looking.
  const fields = await ensureCrmUserFields(client).catch(() => null);
  const unfilled = mode ? await unfilledRequiredFields(client, mode, config.REQUIRED_FIELD_DEFAULTS ?? {}).catch(() => null) : null;
  // A portal with leads chooses the status that makes one "qualified" among its own (one crm.status.list).
  const leadStatuses = mode === "classic" ? await loadLeadStatuses(client).catch(() => null) : null;
  const { dealJournal } = storesFor(c.env, config.portal);
  const deals = dealJournal ? await dealJournal.summary().catch(() => null) : null;
  const activity = c.env.DB
    ? await d1PortalActivity(c.env.DB, config.portal)
        .summary(new Date())
        .catch(() => null)
    : null;
  const webhookToken = config.COMAGIC_WEBHOOK_TOKEN?.[0];
  const local = localPlatform(c, config);
  const m = settingsMessages(language);
  const raw = await rawSettings(c, config.portal);
  const dataApi = dataApiClientFor(config, c.env, "deferrable");
  const managers = dataApi
    ? await loadManagers({ dataApi, bitrix: client, cache: cacheFor(c.env, config.portal) }, config.COMAGIC_EMPLOYEES ?? {}).catch((error: unknown) => {
        c.get("log").warn("settings.managers_unavailable", { error: errorMessage(error) });
        return null;
      })
    : null;
  return {
    language,
    editable: !own,
    portal: config.portal,
    platform: platformOf(config.COMAGIC_DATA_API_URL, local),
    localPlatform: local !== null,
    // A secret never goes back to the browser: only its hint.
    values: Object.fromEntries(PAGE_SETTINGS.map((name) => [name, (PAGE_SECRETS as readonly string[]).includes(name) ? "" : (raw[name] ?? effective(config[name]))])),
    hints: Object.fromEntries(PAGE_SECRETS.map((name) => [name, secretHint(config[name], m)])),
    comagicReady: comagicAuth(config) !== null,
    notificationUrl: webhookToken ? `${workerOrigin}/webhooks/comagic${own ? "" : `/${config.portal}`}?token=${encodeURIComponent(webhookToken)}` : null,
    scriptTag: `<script src="${workerOrigin}${own ? "/snippet.js" : `/s/${config.portal}.js`}" async></script>`,
    lastNotificationAt: activity?.lastNotificationAt ?? null,
    lastFormAt: activity?.last.form ?? null,
    crmMode: mode,
    unfilled: unfilled?.map((f) => `${f.entity} ${f.field} ("${f.title}")`) ?? null,
    timeZone: config.COMAGIC_TIMEZONE,
    managers,
    funnels,
    fields: fields ? { present: fields.existing.length + fields.created.length, remade: fields.created } : null,
    loop: {
      dealsOn: config.COMAGIC_DEALS,
      deals,
      leadStatuses: leadStatuses?.length ? leadStatuses : null,
      withoutLeads: mode === "simple",
      metricaOn: metricaFor(config) !== null,
      ga4On: ga4For(config) !== null,
    },
  };
}

/** A setting left at its default shows the default (a time zone, a limit); a parsed list or map shows nothing. */
const effective = (value: unknown): string => (typeof value === "string" || typeof value === "number" ? String(value) : "");

/** A portal's settings as written (env's strings for the default portal, the stored ones else), for the page's fields. */
async function rawSettings(c: Context<AppEnv>, portal: string): Promise<Record<string, string>> {
  if (portal === DEFAULT_PORTAL) return Object.fromEntries(Object.entries(c.env).filter((e): e is [string, string] => typeof e[1] === "string"));
  return (c.env.DB ? (await d1PortalSettings(c.env.DB).get(portal))?.settings : undefined) ?? {};
}

/**
 * Renders the page for a verified administrator (`/app` calls this with fresh claims): the settings token for its
 * actions, and a report token of the same session for its link to the report (an administrator may see it).
 */
export async function renderSettings(c: Context<AppEnv>, ctx: AppContext, install: AppInstall, claims: ReportClaims) {
  const fields = { memberId: claims.memberId, userId: claims.userId, lang: claims.lang, sid: claims.sid };
  const now = new Date();
  const [settings, report] = await Promise.all([signReportToken(fields, ctx.app.tabTokenKeys, now, "settings"), signReportToken(fields, ctx.app.tabTokenKeys, now)]);
  const view = await settingsView(c, ctx, install, claims.lang);
  const nonce = crypto.randomUUID().replace(/-/g, "");
  appPageHeaders(c, ctx.origin, nonce, "'self'");
  c.get("log").info("settings.opened", { memberId: install.memberId });
  return c.html(renderSettingsPage(view, { settings: settings.token, report: report.token }, nonce));
}

export const bitrixSettingsRoute = new Hono<AppEnv>();

bitrixSettingsRoute.use("*", limitBody(APP_MAX_BYTES));

/** The page again (after a save), from its token. */
bitrixSettingsRoute.post("/settings", async (c) => {
  try {
    const fields = await c.req.parseBody();
    const { claims, install, ctx } = await settingsSession(c, typeof fields.token === "string" ? fields.token : undefined);
    return await renderSettings(c, ctx, install, claims);
  } catch (error) {
    return htmlError(c, error);
  }
});

/** Saves what the page changed, validated as env's settings are; answers the problems in words, never a value. */
bitrixSettingsRoute.post("/settings/save", async (c) => {
  const body = tokenField.extend(pageChangeSchema.shape).safeParse(await c.req.json().catch(() => null));
  if (!body.success) throw new AppError(400, "invalid_settings", "The body is {token, platform?, settings: {name: value}}");
  const { claims, ctx } = await settingsSession(c, body.data.token);
  const m = settingsMessages(claims.lang);
  if (ctx.config.portal === DEFAULT_PORTAL) throw new AppError(409, "env_portal", m.envPortal);
  const change = settingsOfChange(body.data, localPlatform(c, ctx.config));
  if (body.data.employees) {
    const map = employeeMap(body.data.employees);
    if (!map.ok) return c.json({ ok: false, message: m.problems, problems: [{ setting: "COMAGIC_EMPLOYEES", problem: m.managers.twice(map.userId) }] }, 400);
    change.COMAGIC_EMPLOYEES = Object.keys(map.map).length ? JSON.stringify(map.map) : null;
  }
  // GA4 answers 2xx to anything it will drop (FACTS-loop §4): a changed setting is tried on its validation server first.
  const ga4 = ga4CheckOf(change, ctx.config);
  if (ga4) {
    const problems = await checkGa4(ga4, { baseUrl: ctx.config.GA4_API_URL, now: Date.now() }, m);
    c.get("log").info("settings.ga4_checked", { memberId: claims.memberId, ok: problems.length === 0 });
    if (problems.length) return c.json({ ok: false, message: m.problems, problems }, 400);
  }
  // Another account (or its employees) may be saved: the page reads them again.
  await cacheFor(c.env, ctx.config.portal)?.delete("settings-employees:v1");
  try {
    await savePortal(c.env, ctx.config.portal, { settings: change }, new Date());
  } catch (error) {
    if (error instanceof AppError && error.status === 400) return c.json({ ok: false, message: m.problems, problems: (error.details as { problems?: unknown } | undefined)?.problems ?? [] }, 400);
    throw error;
  }
  c.get("log").info("settings.saved", { memberId: claims.memberId, userId: claims.userId, settings: Object.keys(change) });
  return c.json({ ok: true, message: m.saved });
});

/** Checks the CoMagic account the page shows (the unsaved values over the saved ones): one Data API read. */
bitrixSettingsRoute.post("/settings/check-comagic", async (c) => {
  const body = checkComagicBody.safeParse(await c.req.json().catch(() => null));
  if (!body.success) throw new AppError(400, "invalid_check", "The body is {token, platform?, settings?}");
  const { claims, ctx } = await settingsSession(c, body.data.token);
  const m = settingsMessages(claims.lang);
  const change = settingsOfChange(body.data, localPlatform(c, ctx.config));
  const values = { ...ctx.config, ...Object.fromEntries(Object.entries(change).map(([k, v]) => [k, v ?? undefined])) } as Config;
  const auth = comagicAuth(values);
  const url = values.COMAGIC_DATA_API_URL;
  const safe = (() => {
    try {
      return isSafeUpstream(new URL(url), ctx.config.ALLOW_LOOPBACK_HTTP);
    } catch {
      return false;
    }
  })();
  // Unsaved credentials get a token store of their own: a check never replaces the portal's cached CoMagic token.
  const dataApi = auth && safe ? createCoMagicRpcClient({ url, auth, tokens: memoryTokenStore(), api: "Data API", timeoutMs: 10_000 }) : null;
  const outcome = await checkComagic(dataApi);
  if (outcome instanceof Error) {
    const refusal = checkRefusal(outcome, m);
    c.get("log").info("settings.comagic_checked", { memberId: claims.memberId, ok: false, mnemonic: refusal.mnemonic });
    return c.json({ ok: false, message: refusal.text });
  }
  c.get("log").info("settings.comagic_checked", { memberId: claims.memberId, ok: true });
  return c.json({ ok: true, message: m.comagic.ok(outcome.name ?? "?", outcome.timeZone ?? "?", outcome.pointsLeft === null ? "?" : String(outcome.pointsLeft)), timeZone: outcome.timeZone });
});

/**
 * Looks for this portal's tag on a page of the site. The worker fetches an address the administrator typed, so only
 * a page of a site in ALLOWED_ORIGINS (https; plain http to this machine only with ALLOW_LOOPBACK_HTTP), no
 * redirect, 5 s and 512 KiB at most.
 */
bitrixSettingsRoute.post("/settings/check-page", async (c) => {
  const body = checkPageBody.safeParse(await c.req.json().catch(() => null));
  if (!body.success) throw new AppError(400, "invalid_check", "The body is {token, url}");
  const { claims, ctx } = await settingsSession(c, body.data.token);
  const m = settingsMessages(claims.lang);
  const fresh = ctx.config;
  let url: URL;
  try {
    url = new URL(body.data.url);
  } catch {
    return c.json({ ok: false, message: m.website.notAllowed }, 400);
  }
  // The same administrator writes ALLOWED_ORIGINS: addresses that are no public site are refused whatever it lists.
  const internal = /^\[|^\d+(\.\d+){3}$|^localhost$|\.(internal|local|localhost)$/i.test(url.hostname) && !(fresh.ALLOW_LOOPBACK_HTTP && isLoopback(url));
  if (internal || url.origin === new URL(c.req.url).origin || !fresh.ALLOWED_ORIGINS.allows(url.origin) || !isSafeUpstream(url, fresh.ALLOW_LOOPBACK_HTTP))
    return c.json({ ok: false, message: m.website.notAllowed }, 400);
  let html: string;
  try {
    const response = await fetch(url, { redirect: "manual", signal: AbortSignal.timeout(PAGE_TIMEOUT_MS), headers: { accept: "text/html" } });
    if (!response.ok) return c.json({ ok: false, message: m.website.unreachable(`HTTP ${response.status}`) });
    html = await readAtMost(response, PAGE_MAX_BYTES);
  } catch (error) {
    return c.json({ ok: false, message: m.website.unreachable(errorMessage(error).slice(0, 100)) });
  }
  const found = pageHasSnippet(html, new URL(c.req.url).origin, fresh.portal, fresh.portal === DEFAULT_PORTAL);
  c.get("log").info("settings.page_checked", { memberId: claims.memberId, origin: url.origin, found });
  return c.json({ ok: found, message: found ? m.website.found : m.website.notFound });
});

/**
 * Makes the portal's CoMagic sales funnels from its deal pipelines (FACTS-loop §1.1–§1.2): the first step of sending
 * deals to CoMagic's end-to-end analytics. Answers each pipeline's outcome in words; when the account has not
 * connected end-to-end analytics, says what its admin must switch on.
 */
bitrixSettingsRoute.post("/settings/sales-funnels", async (c) => {
  const body = tokenField.safeParse(await c.req.json().catch(() => null));
  if (!body.success) throw new AppError(400, "invalid_request", "The body is {token}");
  const { claims, ctx, install } = await settingsSession(c, body.data.token);
  const m = settingsMessages(claims.lang);
  const dataApi = dataApiClientFor(ctx.config, c.env, "feed");
  if (!dataApi) return c.json({ ok: false, message: m.comagic.noCredentials }, 409);
  let reports: FunnelReport[];
  try {
    reports = await makeSalesFunnels({ bitrix: ctx.appClient(install), dataApi });
  } catch (error) {
    const refusal = checkRefusal(error instanceof Error ? error : new Error(String(error)), m);
    return c.json({ ok: false, message: refusal.text });
  }
  c.get("log").info("settings.sales_funnels", { memberId: claims.memberId, outcomes: reports.map((r) => r.outcome) });
  const refused = reports.find((r) => r.outcome === "not_connected");
  if (refused) return c.json({ ok: false, message: m.funnels.notConnected(refused.detail) });
  return c.json({ ok: reports.every((r) => r.outcome !== "unfit"), message: reports.map((r) => m.funnels[r.outcome](r.pipeline, r.detail)).join(" ") });
});

async function readAtMost(response: Response, limit: number): Promise<string> {
  const reader = response.body?.getReader();
  if (!reader) return "";
  const chunks: Uint8Array[] = [];
  let size = 0;
  while (size < limit) {
    const { done, value } = await reader.read();
    if (done) break;
    chunks.push(value);
    size += value.byteLength;
  }
  await reader.cancel().catch(() => {});
  return new TextDecoder().decode(concat(chunks).slice(0, limit));
}

function concat(chunks: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(chunks.reduce((n, c) => n + c.byteLength, 0));
  let at = 0;
  for (const chunk of chunks) {
    out.set(chunk, at);
    at += chunk.byteLength;
  }
  return out;
}
