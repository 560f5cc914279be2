import { portalSchema, type Portal, type PortalStore } from "../bitrix/portal";
import { ensureSchema } from "./d1-schema";

/** Installed portals in D1: a refreshed token pair is what every isolate reads next, never a spent one. */
export function d1PortalStore(db: D1Database): PortalStore {
  return {
    async get(memberId) {
      await ensureSchema(db);
      const row = await db.prepare("SELECT record FROM portals WHERE member_id = ?").bind(memberId).first<{ record: string }>();
      if (!row) return null;
      const parsed = portalSchema.safeParse(JSON.parse(row.record));
      return parsed.success ? parsed.data : null;
    },
    async findByOrigin(origin) {
      await ensureSchema(db);
      const rows = await db.prepare("SELECT record FROM portals").all<{ record: string }>();
      for (const row of rows.results) {
        const parsed = portalSchema.safeParse(JSON.parse(row.record));
        if (parsed.success && parsed.data.origin === origin) return parsed.data;
      }
      return null;
    },
    async put(portal: Portal) {
      await ensureSchema(db);
      await db.prepare("INSERT INTO portals (member_id, record) VALUES (?, ?) ON CONFLICT (member_id) DO UPDATE SET record = excluded.record").bind(portal.memberId, JSON.stringify(portal)).run();
    },
    async lockRefresh(memberId, now, until) {
      await ensureSchema(db);
      const result = await db
        .prepare("UPDATE portals SET refreshing_until = ? WHERE member_id = ? AND (refreshing_until IS NULL OR refreshing_until < ?)")
        .bind(until.toISOString(), memberId, now.toISOString())
        .run();
      return result.meta.changes === 1;
    },
    async unlockRefresh(memberId) {
      await db.prepare("UPDATE portals SET refreshing_until = NULL WHERE member_id = ?").bind(memberId).run();
    },
  };
}
