import type * as z from "zod";
import { portalKvKey } from "../domain/portal-key";

/** The part of Workers KV the worker's caches use. */
export interface KvCache {
  get(key: string, type: "json"): Promise<unknown>;
  put(key: string, value: string, options?: KVNamespacePutOptions): Promise<void>;
  delete(key: string): Promise<void>;
}

/** One portal's share of the cache: its keys get the portal's prefix (the default portal's stay as they were). */
export function portalKv(kv: KVNamespace, portal: string): KvCache {
  return {
    get: (key) => kv.get(portalKvKey(portal, key), "json"),
    put: (key, value, options) => kv.put(portalKvKey(portal, key), value, options),
    delete: (key) => kv.delete(portalKvKey(portal, key)),
  };
}

/** JSON values in Workers KV, checked with a schema on the way out (a value may predate the schema). */
export function kvJson<T>(kv: KvCache, schema: z.ZodType<T>) {
  return {
    async get(key: string): Promise<T | null> {
      const parsed = schema.safeParse(await kv.get(key, "json"));
      return parsed.success ? parsed.data : null;
    },
    put: (key: string, value: T, ttlSeconds?: number) => kv.put(key, JSON.stringify(value), ttlSeconds === undefined ? {} : { expirationTtl: ttlSeconds }),
    delete: (key: string) => kv.delete(key),
  };
}
