import { ensureSchema } from "./d1-schema";

/**
 * What must hold for click-to-call whatever runs in parallel, in D1 (strongly consistent; KV has no
 * compare-and-set): each tab token starts at most one call, and calls a day stay under the caps.
 */
export interface CallGuard {
  /** True only for the first caller with this nonce: the row is inserted, or nothing is. */
  claimToken(nonce: string, at: Date): Promise<boolean>;
  /** Frees a token whose call was refused before CoMagic was asked, so the same card may try again. */
  releaseToken(nonce: string): Promise<void>;
  /**
   * Counts one call for the user and for the portal on `day`. When either count would pass its limit,
   * nothing is counted and the scope that is full is named.
   */
  countCall(day: string, scopes: { user: string; portal: string }, limits: { user: number; portal: number }): Promise<"ok" | "user_limit" | "portal_limit">;
}

/** One portal's click-to-call guards: its tokens (random nonces, so one global table) and its daily counts. */
export function d1CallGuard(db: D1Database, portal: string): CallGuard {
  return {
    async claimToken(nonce, at) {
      await ensureSchema(db);
      const result = await db.prepare("INSERT INTO call_tokens (nonce, used_at) VALUES (?, ?) ON CONFLICT (nonce) DO NOTHING").bind(nonce, at.toISOString()).run();
      return result.meta.changes === 1;
    },
    async releaseToken(nonce) {
      await db.prepare("DELETE FROM call_tokens WHERE nonce = ?").bind(nonce).run();
    },
    async countCall(day, scopes, limits) {
      await ensureSchema(db);
      const bump = (scope: string) =>
        db.prepare("INSERT INTO call_counts (portal, day, scope, count) VALUES (?, ?, ?, 1) ON CONFLICT (portal, day, scope) DO UPDATE SET count = count + 1 RETURNING count").bind(portal, day, scope);
      // One batch is one transaction: both counts move together.
      const [userRow, portalRow] = await db.batch<{ count: number }>([bump(`user:${scopes.user}`), bump(`portal:${scopes.portal}`)]);
      const userCount = userRow?.results[0]?.count ?? Number.POSITIVE_INFINITY;
      const portalCount = portalRow?.results[0]?.count ?? Number.POSITIVE_INFINITY;
      if (userCount <= limits.user && portalCount <= limits.portal) return "ok";
      // Over a cap: take this call back out of both counts, so a refused call never uses up the day.
      const undo = (scope: string) => db.prepare("UPDATE call_counts SET count = count - 1 WHERE portal = ? AND day = ? AND scope = ?").bind(portal, day, scope);
      await db.batch([undo(`user:${scopes.user}`), undo(`portal:${scopes.portal}`)]);
      return userCount > limits.user ? "user_limit" : "portal_limit";
    },
  };
}
