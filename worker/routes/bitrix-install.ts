/*
 * The app's install: Bitrix24's install POST (or an administrator's first open of the app, from bitrix-report.ts)
 * stores the portal's tokens and binds the card tab and the report's menu item (bitrix-app/install.ts).
 */
import type { Context } from "hono";
import { Hono } from "hono/tiny";
import * as z from "zod";
import type { AppEnv } from "./app-env";
import { oauthTokenUrlOf, tradeRefreshToken, userClientFor } from "../bitrix/app-client";
import { verifiedUser } from "../bitrix/app-auth";
import { openNewPortal } from "../bitrix-app/new-portal";
import { deploymentSettings, readConfig } from "../config";
import { DEFAULT_PORTAL } from "../domain/portal-key";
import type { Env } from "../env";
import { d1PortalSettings } from "../storage/portal-settings";
import { parseSettingsKeys } from "../storage/sealed-secrets";
import { installApp } from "../bitrix-app/install";
import { crmModeOf } from "../bitrix/crm-mode";
import { unfilledRequiredFields } from "../bitrix/required-fields";
import { languageOf, messagesFor, pageError } from "../i18n";
import { limitBody } from "./body-limit";
import { renderInstalledPage } from "./bitrix-tab-page";
import { APP_MAX_BYTES, appContext, checkDomain, htmlError, limitByIp, refusedPage, text } from "./bitrix-app-context";
import { AppError } from "../errors";
import { configFor, forgetPortalConfig, portalOfMember, savePortal } from "../portal-config";
import { matchesAnySecret } from "../security";
import { deletePortalData } from "../storage/portal-data";
import { storesFor } from "../wiring";

const installForm = z.object({
  AUTH_ID: text,
  REFRESH_ID: text,
  member_id: text,
  AUTH_EXPIRES: z.coerce.number().int().positive().max(86_400).default(3600),
  APPLICATION_TOKEN: text.optional(),
  SERVER_ENDPOINT: text.optional(),
});
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

/** Whether a portal of the deployment serves this Bitrix24 portal already: one linked to its member_id, or an install of it. */
export async function servesMember(env: Env, memberId: string): Promise<boolean> {
  if (!env.DB) return true;
  if (await d1PortalSettings(env.DB).byMember(memberId)) return true;
  return (await storesFor(env, DEFAULT_PORTAL).installs?.get(memberId)) != null;
}

/**
 * A Bitrix24 portal no portal of the deployment serves, installing: a new stored portal, when the deployment can keep
 * one (D1, SETTINGS_KEY, the app's keys) and the install is not the default portal's (its DOMAIN). Null when the
 * install is for a portal served already (or the deployment keeps none): appContext then finds it, or refuses.
 */
async function openPortalFor(c: Context<AppEnv>, request: z.infer<typeof installForm>, domain: unknown) {
  const env = c.env;
  const deployment = deploymentSettings(env);
  const { BITRIX_APP_CLIENT_ID: clientId, BITRIX_APP_CLIENT_SECRET: clientSecret } = deployment;
  if (!env.DB || !clientId || !clientSecret || "problem" in parseSettingsKeys(env.SETTINGS_KEY)) return null;
  if (await servesMember(env, request.member_id)) return null;
  const defaultPortal = readConfig(env);
  // Bitrix24 names the portal's host in the form (install events) or the page's query (DOMAIN), as checkDomain reads it.
  const claimed = typeof domain === "string" ? domain : c.req.query("DOMAIN");
  if (defaultPortal.ok && claimed?.toLowerCase() === new URL(defaultPortal.config.portalOrigin).host.toLowerCase()) return null;
  const oauth = { clientId, clientSecret, tokenUrl: deployment.BITRIX_OAUTH_URL, allowLoopbackHttp: deployment.ALLOW_LOOPBACK_HTTP };
  const settings = d1PortalSettings(env.DB);
  const outcome = await openNewPortal(
    { memberId: request.member_id, refreshId: request.REFRESH_ID, language: languageOf(c.req.query("LANG")) },
    {
      trade: (refreshToken) => tradeRefreshToken(refreshToken, oauthTokenUrlOf(request.SERVER_ENDPOINT, oauth) ?? oauth.tokenUrl, oauth, Date.now),
      taken: async (portal) => portal === DEFAULT_PORTAL || (await settings.get(portal)) !== null,
      save: async (portal, values, memberId) => void (await savePortal(env, portal, { settings: { ...values }, memberId }, new Date())),
      randomToken: () => [...crypto.getRandomValues(new Uint8Array(24))].map((b) => b.toString(16).padStart(2, "0")).join(""),
      allowLoopbackHttp: deployment.ALLOW_LOOPBACK_HTTP,
      portalAt: async (origin) => {
        if (defaultPortal.ok && defaultPortal.config.portalOrigin === origin) return DEFAULT_PORTAL;
        for (const stored of await settings.list()) {
          const values = (await configFor(env, stored.portal).catch(() => null)) ?? null;
          if (values?.ok && values.config.portalOrigin === origin) return stored.portal;
        }
        return null;
      },
      // The default portal's install is found by its origin; a stored one is linked by its member_id.
      link: async (portal, memberId) => void (portal === DEFAULT_PORTAL ? undefined : await savePortal(env, portal, { settings: {}, memberId }, new Date())),
      isAdmin: async (origin) => {
        // The app's code: BITRIX_APP_CODE, else its client id (config.ts appSettings).
        const user = await verifiedUser(userClientFor(origin, request.AUTH_ID, deployment.BITRIX_TIMEOUT_MS), deployment.BITRIX_APP_CODE ?? clientId);
        if (!user.ok) return user.refusal === "bitrix_unavailable" ? "unavailable" : false;
        return user.profile.ADMIN === true;
      },
    },
  );
  if (!outcome.ok) throw refusedPage(outcome.refusal);
  c.get("log").info(outcome.opened ? "portal.opened" : "portal.linked", { portal: outcome.portal, memberId: request.member_id });
  return outcome;
}

/** Installs from an install POST or an administrator's first open of the app; returns the stored install and what to fix. */
export async function installFrom(c: Context<AppEnv>, form: Record<string, string | File | (string | File)[]>) {
  const request = installForm.parse(installFields(form));
  const domain = form.DOMAIN ?? form["auth[domain]"];
  // A new portal's REFRESH_ID was traded for a new pair at the OAuth server: the install keeps those.
  const opened = await openPortalFor(c, request, domain);
  const { origin, installs, config, app, appClient, userClient, crmModeCache } = await appContext(c, request.member_id);
  checkDomain(c, origin, domain);
  const now = () => new Date();
  const workerOrigin = new URL(c.req.url).origin;
  const result = await installApp(
    {
      memberId: request.member_id,
      authId: opened?.tokens.accessToken ?? request.AUTH_ID,
      refreshId: opened?.tokens.refreshToken ?? request.REFRESH_ID,
      expiresInSeconds: opened ? Math.max(60, opened.tokens.expiresAt - Math.floor(Date.now() / 1000)) : request.AUTH_EXPIRES,
      applicationToken: request.APPLICATION_TOKEN,
      oauthTokenUrl: oauthTokenUrlOf(request.SERVER_ENDPOINT, app),
    },
    {
      origin,
      handlerUrl: `${workerOrigin}/bitrix/tab`,
      reportUrl: `${workerOrigin}/bitrix/app`,
      uninstallUrl: `${workerOrigin}/bitrix/uninstall`,
      appCode: app.appCode,
      language: config.CRM_LANGUAGE,
      userClient: userClient(request.AUTH_ID),
      appClient,
      installs,
      now,
    },
  );
  if (!result.ok) throw refusedPage(result.refusal);
  c.get("log").info("app.installed", { memberId: request.member_id, boundPlacements: result.boundPlacements, createdFields: result.createdFields });
  const client = appClient(result.install);
  const unfilled = await crmModeOf(client, crmModeCache)
    .then((mode) => unfilledRequiredFields(client, mode, config.REQUIRED_FIELD_DEFAULTS ?? {}))
    .catch(() => []);
  if (unfilled.length) c.get("log").warn("app.required_fields", { fields: unfilled.map((f) => f.field), advice: messagesFor("en").install.requiredFields(unfilled) });
  return { install: result.install, unfilled };
}

export const invalidInstall = () => pageError(400, "invalid_install");

export const bitrixInstallRoute = new Hono<AppEnv>();

bitrixInstallRoute.use("*", limitBody(APP_MAX_BYTES));

/** ONAPPUNINSTALL as Bitrix24 posts it to the handler the install bound (event.bind), form-encoded. */
const uninstallForm = z.object({
  event: z.string().refine((e) => e.toUpperCase() === "ONAPPUNINSTALL"),
  "auth[member_id]": text,
  "auth[application_token]": text,
  /** The user's "delete the app's data" choice (OnAppUninstall's CLEAN). */
  "data[CLEAN]": z.enum(["0", "1"]).default("0"),
});

/**
 * The app was removed from a Bitrix24 portal. Its tokens are dead (Bitrix24 revokes them), so they are deleted;
 * when the admin chose to delete the app's data (CLEAN=1), everything the deployment keeps about the portal goes too,
 * a stored portal's settings with it. The application_token kept from the install is the only proof the event is
 * Bitrix24's (FACTS.md §1, safe event handlers): without a match nothing is deleted.
 */
bitrixInstallRoute.post("/uninstall", async (c) => {
  await limitByIp(c);
  const form = uninstallForm.safeParse(await c.req.parseBody());
  if (!form.success) throw new AppError(400, "invalid_event", "Not an ONAPPUNINSTALL event with auth[member_id] and auth[application_token]");
  const memberId = form.data["auth[member_id]"];
  const portal = await portalOfMember(c.env, memberId);
  const { installs } = storesFor(c.env, portal);
  if (!installs) throw new AppError(503, "no_database", "The DB binding (D1) is missing");
  const install = await installs.get(memberId);
  const stored = install?.applicationToken;
  if (!stored || !(await matchesAnySecret(form.data["auth[application_token]"], [stored]))) {
    c.get("log").warn("app.uninstall_refused", { portal, memberId, reason: install ? "application_token" : "not_installed" });
    throw new AppError(401, "not_verified", "The event's application_token is not the one the install gave");
  }
  const clean = form.data["data[CLEAN]"] === "1";
  const deleted = clean ? await deletePortalData(c.env, portal, memberId) : { rows: { app_installs: (await installs.delete(memberId)) ? 1 : 0 }, portalState: [], cacheKeys: 0 };
  forgetPortalConfig(portal);
  c.get("log").info("app.uninstalled", { portal, memberId, clean, ...deleted });
  return c.json({ status: "uninstalled", portal, clean, deleted });
});

bitrixInstallRoute.post("/install", async (c) => {
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
