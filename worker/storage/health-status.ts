import * as z from "zod";
import { HEALTH_STATUSES, type HealthStatus } from "../domain/portal-health";
import { ensureSchema } from "./d1-schema";

/*
 * The health each portal was last alerted as (one D1 `sync_state` row, `health.status`), so a change is posted once:
 * the cron's next look compares with it. D1, not KV: two looks a minute apart must not both see the old status
 * (KV may answer up to 60 s stale). The row is written only once the change is told (posted, or logged when no
 * ALERT_WEBHOOK_URL is set), so a post that failed is tried again at the next look.
 */

const STATE_NAME = "health.status";
const stored = z.object({ status: z.enum(HEALTH_STATUSES), since: z.string() });
export type StoredHealth = z.infer<typeof stored>;

export interface HealthStatusStore {
  get(): Promise<StoredHealth | null>;
  put(status: HealthStatus, since: Date): Promise<void>;
}

export function d1HealthStatus(db: D1Database, portal: string): HealthStatusStore {
  return {
    async get() {
      await ensureSchema(db);
      const row = await db.prepare("SELECT value FROM sync_state WHERE portal = ? AND name = ?").bind(portal, STATE_NAME).first<{ value: string }>();
      if (!row) return null;
      try {
        return stored.safeParse(JSON.parse(row.value)).data ?? null;
      } catch {
        return null;
      }
    },
    async put(status, since) {
      await ensureSchema(db);
      await db
        .prepare("INSERT INTO sync_state (portal, name, value) VALUES (?, ?, ?) ON CONFLICT (portal, name) DO UPDATE SET value = excluded.value")
        .bind(portal, STATE_NAME, JSON.stringify({ status, since: since.toISOString() }))
        .run();
    },
  };
}
