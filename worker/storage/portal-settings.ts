/**
 * The deployment's stored portals (D1 `portal_settings`): each one's settings as the env strings they replace,
 * its secrets sealed (storage/sealed-secrets.ts; the rows never hold one in the clear), and the Bitrix24 portal
 * (`member_id`) it serves, unique, so an app install finds its portal. The default portal is not here: its
 * settings are env's.
 */
import * as z from "zod";
import { sealedSchema } from "./sealed-secrets";
import { ensureSchema } from "./d1-schema";

export const storedPortalSchema = z.object({
  portal: z.string(),
  memberId: z.string().nullable(),
  settings: z.record(z.string(), z.string()),
  secrets: z.record(z.string(), sealedSchema),
  createdAt: z.string(),
  updatedAt: z.string(),
});
export type StoredPortal = z.infer<typeof storedPortalSchema>;

interface Row {
  portal: string;
  member_id: string | null;
  settings: string;
  secrets: string;
  created_at: string;
  updated_at: string;
}

const toStored = (r: Row): StoredPortal | null => {
  const parsed = storedPortalSchema.safeParse({
    portal: r.portal,
    memberId: r.member_id,
    settings: JSON.parse(r.settings),
    secrets: JSON.parse(r.secrets),
    createdAt: r.created_at,
    updatedAt: r.updated_at,
  });
  return parsed.success ? parsed.data : null;
};

export interface PortalSettingsStore {
  get(portal: string): Promise<StoredPortal | null>;
  byMember(memberId: string): Promise<StoredPortal | null>;
  list(): Promise<StoredPortal[]>;
  put(portal: StoredPortal): Promise<void>;
  delete(portal: string): Promise<boolean>;
}

export function d1PortalSettings(db: D1Database): PortalSettingsStore {
  const one = async (sql: string, value: string) => {
    await ensureSchema(db);
    const row = await db.prepare(sql).bind(value).first<Row>();
    return row ? toStored(row) : null;
  };
  return {
    get: (portal) => one("SELECT * FROM portal_settings WHERE portal = ?", portal),
    byMember: (memberId) => one("SELECT * FROM portal_settings WHERE member_id = ?", memberId),
    async list() {
      await ensureSchema(db);
      const { results } = await db.prepare("SELECT * FROM portal_settings ORDER BY portal").all<Row>();
      return results.map(toStored).filter((p): p is StoredPortal => p !== null);
    },
    async put(p) {
      await ensureSchema(db);
      await db
        .prepare(
          `INSERT INTO portal_settings (portal, member_id, settings, secrets, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?)
           ON CONFLICT (portal) DO UPDATE SET member_id = excluded.member_id, settings = excluded.settings, secrets = excluded.secrets, updated_at = excluded.updated_at`,
        )
        .bind(p.portal, p.memberId, JSON.stringify(p.settings), JSON.stringify(p.secrets), p.createdAt, p.updatedAt)
        .run();
    },
    async delete(portal) {
      await ensureSchema(db);
      return (await db.prepare("DELETE FROM portal_settings WHERE portal = ?").bind(portal).run()).meta.changes > 0;
    },
  };
}
