import { Hono } from "hono";
import type { AppEnv } from "../app";
import { readConfig, splitSecretList } from "../config";
import { matchesAnySecret } from "../security";

/**
 * 200 when the worker can do its core job, 503 when not: all a stranger learns. With the admin bearer token,
 * the answer names each missing or invalid setting and each warning (never a value).
 */
export const healthRoute = new Hono<AppEnv>().get("/", async (c) => {
  const result = readConfig(c.env);
  c.header("Cache-Control", "no-store");
  const status = result.ok ? "ok" : "unavailable";
  const code = result.ok ? 200 : 503;
  const bearer = /^Bearer\s+(\S+)$/i.exec(c.req.header("authorization") ?? "")?.[1];
  // Read on its own: a worker missing other settings must still tell its operator what is wrong.
  const adminTokens = splitSecretList(c.env.ADMIN_TOKEN);
  const admin = Boolean(bearer && adminTokens.length && (await matchesAnySecret(bearer, adminTokens)));
  if (!admin) return c.json({ status }, code);
  return c.json({ status, problems: result.ok ? [] : result.problems, warnings: result.warnings }, code);
});
