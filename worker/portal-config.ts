/**
 * Which portal a request or job belongs to, and its settings. The default portal's come from env (config.ts
 * `readConfig`, as before portals); every other portal's from D1 (storage/portal-settings.ts), its secrets opened
 * with SETTINGS_KEY, then validated by the same schema as env's. An isolate keeps a portal's settings 30 s, so a
 * burst of webhooks reads D1 once; a change made through /admin/portals is seen at once by the isolate that made it
 * and within 30 s by the others.
 */
import { PORTAL_SETTINGS, parsePortalSettings, readConfig, SECRET_SETTINGS, type Config, type ConfigResult } from "./config";
import { DEFAULT_PORTAL } from "./domain/portal-key";
import type { Env } from "./env";
import { AppError } from "./errors";
import { open, parseSettingsKeys, seal, type Sealed, type SettingsKeys } from "./storage/sealed-secrets";
import { d1PortalSettings, type StoredPortal } from "./storage/portal-settings";

const CACHE_MS = 30_000;
const cache = new Map<string, { result: ConfigResult | null; at: number }>();

function settingsKeys(env: Env): SettingsKeys {
  const parsed = parseSettingsKeys(env.SETTINGS_KEY);
  if ("problem" in parsed) throw new AppError(503, "misconfigured", `SETTINGS_KEY ${parsed.problem}`);
  return parsed.keys;
}

/** A stored portal's settings with its secrets opened: what parsePortalSettings reads. */
async function openedSettings(env: Env, stored: StoredPortal): Promise<Record<string, string>> {
  const keys = settingsKeys(env);
  const values = { ...stored.settings };
  for (const [name, sealed] of Object.entries(stored.secrets)) values[name] = await open(keys, stored.portal, name, sealed);
  return values;
}

/** The portal's settings, or null when the deployment has no such portal. */
export async function configFor(env: Env, portal: string): Promise<ConfigResult | null> {
  if (portal === DEFAULT_PORTAL) return readConfig(env);
  const cached = cache.get(portal);
  if (cached && Date.now() - cached.at < CACHE_MS) return cached.result;
  if (!env.DB) return null;
  const stored = await d1PortalSettings(env.DB).get(portal);
  const result = stored ? parsePortalSettings(env, portal, await openedSettings(env, stored), stored.memberId) : null;
  cache.set(portal, { result, at: Date.now() });
  return result;
}

/** For routes: the portal's parsed settings; 404 for a portal the deployment does not have, 503 (naming nothing) for a broken one. */
export async function requirePortalConfig(env: Env, portal: string): Promise<Config> {
  const result = await configFor(env, portal);
  if (!result) throw new AppError(404, "unknown_portal", "No such portal");
  if (!result.ok) throw new AppError(503, "misconfigured", "The worker is misconfigured");
  return result.config;
}

/** Every portal of the deployment: the default one (when env configures it) and the stored ones. */
export async function portalKeys(env: Env): Promise<string[]> {
  const stored = env.DB ? (await d1PortalSettings(env.DB).list()).map((p) => p.portal) : [];
  return [...(readConfig(env).ok ? [DEFAULT_PORTAL] : []), ...stored];
}

/**
 * The portal serving a Bitrix24 portal, by the member_id its app requests carry: the stored portal linked to it, else
 * the default one (whose own checks then refuse a Bitrix24 portal that is not its own).
 */
export async function portalOfMember(env: Env, memberId: string): Promise<string> {
  if (!env.DB) return DEFAULT_PORTAL;
  return (await d1PortalSettings(env.DB).byMember(memberId))?.portal ?? DEFAULT_PORTAL;
}

/** What an admin sends to make or change a stored portal: settings by their env names (secrets among them), and its member_id. */
export interface PortalChange {
  settings: Record<string, string | null>;
  memberId?: string | null;
}

/**
 * Makes or changes a stored portal: the settings are merged over what it had (null removes one), validated as env's
 * would be (a 400 lists what is wrong, never a value), and its secrets sealed. Returns the new settings' result.
 */
export async function savePortal(env: Env, portal: string, change: PortalChange, now: Date): Promise<{ stored: StoredPortal; result: ConfigResult & { ok: true } }> {
  if (!env.DB) throw new AppError(503, "no_database", "Stored portals need the DB binding");
  const store = d1PortalSettings(env.DB);
  const keys = settingsKeys(env);
  const unknown = Object.keys(change.settings).filter((name) => !PORTAL_SETTINGS.includes(name));
  if (unknown.length) throw new AppError(400, "unknown_setting", `Not a portal's setting: ${unknown.join(", ")} (the deployment's own settings stay in env)`);
  const before = await store.get(portal);
  const values = before ? await openedSettings(env, before) : {};
  for (const [name, value] of Object.entries(change.settings)) {
    if (value === null || value.trim() === "") delete values[name];
    else values[name] = value;
  }
  const memberId = change.memberId === undefined ? (before?.memberId ?? null) : change.memberId;
  const result = parsePortalSettings(env, portal, values, memberId);
  if (!result.ok) throw new AppError(400, "invalid_settings", "The portal's settings are not valid", { problems: result.problems });
  const secrets: Record<string, Sealed> = {};
  const settings: Record<string, string> = {};
  for (const [name, value] of Object.entries(values)) {
    if ((SECRET_SETTINGS as readonly string[]).includes(name)) secrets[name] = await seal(keys, portal, name, value);
    else settings[name] = value;
  }
  const stored: StoredPortal = { portal, memberId, settings, secrets, createdAt: before?.createdAt ?? now.toISOString(), updatedAt: now.toISOString() };
  await store.put(stored);
  cache.delete(portal);
  return { stored, result };
}

/** Drops this isolate's copy of a portal's settings (after a change or removal). */
export function forgetPortalConfig(portal: string): void {
  cache.delete(portal);
}
