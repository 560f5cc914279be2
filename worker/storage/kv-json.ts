import type * as z from "zod";

/** JSON values in Workers KV, checked with a schema on the way out (a value may predate the schema). */
export function kvJson<T>(kv: KVNamespace, schema: z.ZodType<T>) {
  return {
    async get(key: string): Promise<T | null> {
      const parsed = schema.safeParse(await kv.get(key, "json"));
      return parsed.success ? parsed.data : null;
    },
    put: (key: string, value: T, ttlSeconds?: number) => kv.put(key, JSON.stringify(value), ttlSeconds === undefined ? {} : { expirationTtl: ttlSeconds }),
    delete: (key: string) => kv.delete(key),
  };
}
