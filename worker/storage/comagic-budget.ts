import * as z from "zod";
import type { Budget } from "../domain/comagic-budget";
import { ensureSchema } from "./d1-schema";

/*
 * The last CoMagic points snapshot per API (Data API, Call API), shared by every isolate: one D1 `sync_state` row
 * each, `comagic_budget:<api>`, holding the Budget as JSON. D1, not KV: the row decides whether enrichment may
 * spend a point, so a pause written by one isolate must be read by the next at once (KV may serve a value up to
 * 60 s old and takes one write a second per key, fewer than a batch's answers). It is still a hint: isolates
 * write after every answer, the newest snapshot wins, and CoMagic's next answer corrects it.
 */

export interface BudgetStore {
  get(api: string): Promise<Budget | null>;
  put(budget: Budget): Promise<void>;
}

const windowSchema = z.object({ limit: z.number().nullable(), remaining: z.number(), resetAt: z.number() });
const budgetSchema = z.object({
  api: z.string(),
  seenAt: z.number(),
  windows: z.object({ day: windowSchema.optional(), hour: windowSchema.optional(), minute: windowSchema.optional() }),
  pausedUntil: z.number().optional(),
});

/** The sync_state name of an API's snapshot: "Data API" → `comagic_budget:data_api`. */
export function budgetStateName(api: string): string {
  return `comagic_budget:${api.toLowerCase().replace(/[^a-z0-9]+/g, "_")}`;
}

/** One portal's snapshots (each portal has its own CoMagic account, and so its own points). */
export function d1BudgetStore(db: D1Database, portal: string): BudgetStore {
  return {
    async get(api) {
      await ensureSchema(db);
      const row = await db.prepare("SELECT value FROM sync_state WHERE portal = ? AND name = ?").bind(portal, budgetStateName(api)).first<{ value: string }>();
      if (!row) return null;
      try {
        const parsed = budgetSchema.safeParse(JSON.parse(row.value));
        return parsed.success ? parsed.data : null;
      } catch {
        return null;
      }
    },
    async put(budget) {
      await ensureSchema(db);
      // An isolate answering late must not put back an older snapshot over a newer one.
      await db
        .prepare(
          `INSERT INTO sync_state (portal, name, value) VALUES (?4, ?1, ?2) ON CONFLICT (portal, name) DO UPDATE SET value = excluded.value
           WHERE coalesce(json_extract(sync_state.value, '$.seenAt'), 0) <= ?3`,
        )
        .bind(budgetStateName(budget.api), JSON.stringify(budget), budget.seenAt, portal)
        .run();
    },
  };
}
