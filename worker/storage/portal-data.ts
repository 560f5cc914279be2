/**
 * Everything the deployment keeps about one portal, for its removal (`DELETE /admin/portals/<key>`, the app's
 * ONAPPUNINSTALL): its D1 rows in every per-portal table, its dead letters, its stored settings, the app's tokens on
 * its Bitrix24 portal (`memberId`), its Durable Object, and its KV cache entries.
 * Returns what went, table by table, so the operator can say what was deleted.
 */
import { portalKvKey } from "../domain/portal-key";
import { ensureSchema, PORTAL_TABLES } from "./d1-schema";

export interface DeletedPortal {
  /** Rows deleted per D1 table (tables with none are left out). */
  rows: Record<string, number>;
  /** The Durable Object's tables, emptied. */
  portalState: string[];
  /** KV cache entries deleted. */
  cacheKeys: number;
}

/** KV lists at most 1,000 keys a call. */
const KV_PAGE = 1000;

export async function deletePortalData(
  env: { DB?: D1Database; COMAGIC_CACHE?: KVNamespace; PORTAL_STATE?: DurableObjectNamespace<import("../portal-state").PortalState> },
  portal: string,
  memberId: string | null,
): Promise<DeletedPortal> {
  const rows: Record<string, number> = {};
  if (env.DB) {
    const db = env.DB;
    await ensureSchema(db);
    const tables = [...PORTAL_TABLES, "dead_letters", "portal_settings"];
    // One batch is one transaction: the portal's rows go together or not at all.
    const results = await db.batch([
      ...tables.map((table) => db.prepare(`DELETE FROM ${table} WHERE portal = ?`).bind(portal)),
      db.prepare("DELETE FROM app_installs WHERE member_id = ?").bind(memberId ?? ""),
    ]);
    tables.push("app_installs");
    tables.forEach((table, i) => {
      const changes = results[i]?.meta.changes ?? 0;
      if (changes > 0) rows[table] = changes;
    });
  }
  const portalState = env.PORTAL_STATE ? (await env.PORTAL_STATE.getByName(portal).erase()).deleted : [];
  let cacheKeys = 0;
  const kv = env.COMAGIC_CACHE;
  // The default portal's keys have no prefix and share the namespace with the deployment's: only a named portal's are listed.
  if (kv && portalKvKey(portal, "") !== "") {
    let cursor: string | undefined;
    do {
      const page: KVNamespaceListResult<unknown> = await kv.list({ prefix: portalKvKey(portal, ""), limit: KV_PAGE, ...(cursor ? { cursor } : {}) });
      await Promise.all(page.keys.map((k) => kv.delete(k.name)));
      cacheKeys += page.keys.length;
      cursor = page.list_complete ? undefined : page.cursor;
    } while (cursor);
  }
  return { rows, portalState, cacheKeys };
}
