/**
 * The deployment's portals, for its operator (behind ADMIN_TOKEN, mounted under /admin):
 *   GET    /admin/portals             every portal: settings (never a secret's value: only which are set) and its URLs
 *   PUT    /admin/portals/<key>       makes or changes a stored portal (settings by their env names; null removes one)
 *   DELETE /admin/portals/<key>       removes a stored portal and everything kept about it, and says what went
 *   POST   /admin/portals/migrate     migrates a database made before portals now (it also happens on first use)
 * The default portal's settings are env's: it is listed, not changed or removed here.
 */
import { Hono } from "hono/tiny";
import * as z from "zod";
import type { AppEnv } from "./app-env";
import { PORTAL_SETTINGS, SECRET_SETTINGS, readConfig } from "../config";
import { DEFAULT_PORTAL, portalKeySchema } from "../domain/portal-key";
import { AppError } from "../errors";
import { forgetPortalConfig, savePortal } from "../portal-config";
import { migrateSchema } from "../storage/d1-schema";
import { deletePortalData } from "../storage/portal-data";
import { d1PortalSettings, type StoredPortal } from "../storage/portal-settings";

const settingValue = z.union([z.string().max(5000), z.number(), z.boolean(), z.null()]).transform((v) => (v === null ? null : String(v)));
const changeBody = z
  .object({
    settings: z.record(z.string().regex(/^[A-Z][A-Z0-9_]*$/, { error: "is not a setting name like COMAGIC_LOGIN" }), settingValue).default({}),
    /** The Bitrix24 portal's member_id (the app's installs find their portal by it); null unlinks it. */
    memberId: z.string().trim().min(1).max(100).nullable().optional(),
  })
  .strict();

function portalParam(raw: string): string {
  const parsed = portalKeySchema.safeParse(raw);
  if (!parsed.success) throw new AppError(400, "invalid_portal_key", `The portal key ${parsed.error.issues[0]?.message ?? "is not valid"}`);
  if (parsed.data === DEFAULT_PORTAL) throw new AppError(409, "default_portal", "The default portal's settings are env's (wrangler.toml and wrangler secret put): change them there");
  return parsed.data;
}

/** Where the portal's CoMagic notifications and script tag point (tokens are the operator's to add). */
function urlsOf(origin: string, portal: string) {
  const named = portal !== DEFAULT_PORTAL;
  return {
    comagicWebhook: `${origin}/webhooks/comagic${named ? `/${portal}` : ""}?token=<COMAGIC_WEBHOOK_TOKEN>`,
    snippet: named ? `${origin}/s/${portal}.js` : `${origin}/snippet.js`,
    forms: `${origin}/forms${named ? `/${portal}` : ""}`,
  };
}

/** A stored portal as the operator may see it: its plain settings, and only the names of the secrets it has. */
function described(origin: string, p: StoredPortal) {
  return { portal: p.portal, memberId: p.memberId, settings: p.settings, secretsSet: Object.keys(p.secrets).sort(), createdAt: p.createdAt, updatedAt: p.updatedAt, urls: urlsOf(origin, p.portal) };
}

function settingsStore(env: AppEnv["Bindings"]) {
  if (!env.DB) throw new AppError(503, "no_database", "The DB binding (D1) is missing, so portals cannot be stored");
  return d1PortalSettings(env.DB);
}

export const adminPortalsRoute = new Hono<AppEnv>();

adminPortalsRoute.get("/", async (c) => {
  const origin = new URL(c.req.url).origin;
  const stored = await settingsStore(c.env).list();
  const fallback = readConfig(c.env);
  return c.json({
    portals: [
      ...(fallback.ok ? [{ portal: DEFAULT_PORTAL, settingsFrom: "env", urls: urlsOf(origin, DEFAULT_PORTAL) }] : []),
      ...stored.map((p) => ({ ...described(origin, p), settingsFrom: "storage" })),
    ],
    settings: { portal: PORTAL_SETTINGS, secret: SECRET_SETTINGS },
  });
});

adminPortalsRoute.post("/migrate", async (c) => {
  if (!c.env.DB) throw new AppError(503, "no_database", "The DB binding (D1) is missing");
  const { migrated } = await migrateSchema(c.env.DB);
  c.get("log").info("portals.migrated", { tables: migrated });
  return c.json({ migrated, portal: DEFAULT_PORTAL, note: migrated.length ? "rows made before portals are now the default portal's" : "nothing to migrate" });
});

adminPortalsRoute.put("/:portal", async (c) => {
  const portal = portalParam(c.req.param("portal"));
  const body = changeBody.parse(await c.req.json().catch(() => null));
  const store = settingsStore(c.env);
  if (body.memberId) {
    const owner = await store.byMember(body.memberId);
    if (owner && owner.portal !== portal) throw new AppError(409, "member_taken", `That Bitrix24 portal (member_id) is already the portal ${owner.portal}`);
  }
  const existed = (await store.get(portal)) !== null;
  const { stored, result } = await savePortal(c.env, portal, { settings: body.settings, ...(body.memberId === undefined ? {} : { memberId: body.memberId }) }, new Date());
  c.get("log").info(existed ? "portal.updated" : "portal.created", { portal, settings: Object.keys(body.settings) });
  return c.json({ ...described(new URL(c.req.url).origin, stored), warnings: result.warnings }, existed ? 200 : 201);
});

adminPortalsRoute.delete("/:portal", async (c) => {
  const portal = portalParam(c.req.param("portal"));
  const stored = await settingsStore(c.env).get(portal);
  if (!stored) throw new AppError(404, "unknown_portal", "No such portal");
  const deleted = await deletePortalData(c.env, portal, stored.memberId);
  forgetPortalConfig(portal);
  c.get("log").info("portal.deleted", { portal, ...deleted });
  return c.json({ status: "deleted", portal, deleted });
});
