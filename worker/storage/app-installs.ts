/**
 * The Bitrix24 portals the app is installed on, with their OAuth tokens (D1 `app_installs`, by member_id): strongly
 * consistent, so a refreshed token pair is what every isolate reads next, never a spent one. With SETTINGS_KEY set,
 * the tokens are sealed at rest (storage/sealed-secrets.ts, bound to the member_id); rows written before it, or by a
 * deploy without it, hold them in the clear and are sealed at their next write (each refresh rewrites the row).
 */
import * as z from "zod";
import { appInstallSchema, type AppInstall, type InstallStore } from "../bitrix/app-client";
import { ensureSchema } from "./d1-schema";
import { open, SealedSecretError, seal, sealedSchema, type SettingsKeys } from "./sealed-secrets";

/** A row's record: the install, its tokens either in the clear (older rows) or sealed. */
const storedSchema = appInstallSchema.extend({
  accessToken: z.string().min(1).optional(),
  refreshToken: z.string().min(1).optional(),
  sealed: z.object({ accessToken: sealedSchema, refreshToken: sealedSchema }).optional(),
});

/** What the tokens are sealed to: this install, so a row's tokens pasted into another's do not open. */
const sealedTo = (memberId: string) => `install:${memberId}`;

async function fromRow(record: string, keys: SettingsKeys | null): Promise<AppInstall | null> {
  const parsed = storedSchema.safeParse(JSON.parse(record));
  if (!parsed.success) return null;
  const { sealed, ...install } = parsed.data;
  if (sealed) {
    if (!keys) return null;
    const to = sealedTo(install.memberId);
    try {
      return { ...install, accessToken: await open(keys, to, "accessToken", sealed.accessToken), refreshToken: await open(keys, to, "refreshToken", sealed.refreshToken) };
    } catch (error) {
      // Sealed with a key SETTINGS_KEY no longer lists (or tampered with): as good as not installed, so the next
      // install (or open of the app by an administrator) writes the row anew instead of failing on it for ever.
      if (error instanceof SealedSecretError) return null;
      throw error;
    }
  }
  return install.accessToken && install.refreshToken ? { ...install, accessToken: install.accessToken, refreshToken: install.refreshToken } : null;
}

async function toRow(install: AppInstall, keys: SettingsKeys | null): Promise<string> {
  if (!keys) return JSON.stringify(install);
  const to = sealedTo(install.memberId);
  const { accessToken, refreshToken, ...rest } = install;
  return JSON.stringify({ ...rest, sealed: { accessToken: await seal(keys, to, "accessToken", accessToken), refreshToken: await seal(keys, to, "refreshToken", refreshToken) } });
}

export function d1AppInstalls(db: D1Database, keys: SettingsKeys | null): InstallStore {
  return {
    async get(memberId) {
      await ensureSchema(db);
      const row = await db.prepare("SELECT record FROM app_installs WHERE member_id = ?").bind(memberId).first<{ record: string }>();
      return row ? fromRow(row.record, keys) : null;
    },
    async findByOrigin(origin) {
      await ensureSchema(db);
      const rows = await db.prepare("SELECT record FROM app_installs").all<{ record: string }>();
      for (const row of rows.results) {
        const parsed = storedSchema.safeParse(JSON.parse(row.record));
        if (parsed.success && parsed.data.origin === origin) return fromRow(row.record, keys);
      }
      return null;
    },
    async put(install: AppInstall) {
      await ensureSchema(db);
      await db
        .prepare("INSERT INTO app_installs (member_id, record) VALUES (?, ?) ON CONFLICT (member_id) DO UPDATE SET record = excluded.record")
        .bind(install.memberId, await toRow(install, keys))
        .run();
    },
    async lockRefresh(memberId, now, until) {
      await ensureSchema(db);
      const result = await db
        .prepare("UPDATE app_installs SET refreshing_until = ? WHERE member_id = ? AND (refreshing_until IS NULL OR refreshing_until < ?)")
        .bind(until.toISOString(), memberId, now.toISOString())
        .run();
      return result.meta.changes === 1;
    },
    async delete(memberId) {
      await ensureSchema(db);
      return (await db.prepare("DELETE FROM app_installs WHERE member_id = ?").bind(memberId).run()).meta.changes > 0;
    },
    async unlockRefresh(memberId) {
      await db.prepare("UPDATE app_installs SET refreshing_until = NULL WHERE member_id = ?").bind(memberId).run();
    },
  };
}
