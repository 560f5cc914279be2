import * as z from "zod";
import { ensureSchema } from "./d1-schema";

/*
 * Where the CoMagic feed stands (one D1 `sync_state` row, `comagic_feed`): the cursor (everything CoMagic recorded
 * before it was read at least once), when it last read, what that read found, and the last error in words. D1, not
 * KV: a cursor read stale would skip, or spend points reading again, what another isolate already read.
 */

const STATE_NAME = "comagic_feed";

export const feedStateSchema = z.object({
  /** ISO instant: the next read starts here, less the overlap. */
  cursor: z.string().nullable(),
  lastRunAt: z.string().nullable(),
  lastSuccessAt: z.string().nullable(),
  /** The last read's counts (FeedReport), for /health. */
  lastReport: z.record(z.string(), z.unknown()).nullable(),
  /** The last failure's message, cleared by a successful read. */
  lastError: z.string().nullable(),
  /** When a read last found calls: what "notifications stopped while CoMagic's reports show calls" compares with (older rows lack it). */
  lastCallsSeenAt: z.string().nullable().default(null),
});
export type FeedState = z.infer<typeof feedStateSchema>;

export const EMPTY_FEED_STATE: FeedState = { cursor: null, lastRunAt: null, lastSuccessAt: null, lastReport: null, lastError: null, lastCallsSeenAt: null };

export interface FeedStateStore {
  get(): Promise<FeedState>;
  put(state: FeedState): Promise<void>;
}

export function d1FeedState(db: D1Database, portal: string): FeedStateStore {
  return {
    async get() {
      await ensureSchema(db);
      const row = await db.prepare("SELECT value FROM sync_state WHERE portal = ? AND name = ?").bind(portal, STATE_NAME).first<{ value: string }>();
      if (!row) return EMPTY_FEED_STATE;
      const parsed = feedStateSchema.safeParse(JSON.parse(row.value));
      return parsed.success ? parsed.data : EMPTY_FEED_STATE;
    },
    async put(state) {
      await ensureSchema(db);
      await db
        .prepare("INSERT INTO sync_state (portal, name, value) VALUES (?, ?, ?) ON CONFLICT (portal, name) DO UPDATE SET value = excluded.value")
        .bind(portal, STATE_NAME, JSON.stringify(state))
        .run();
    },
  };
}
