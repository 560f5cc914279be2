/**
 * The operator's bearer token (ADMIN_TOKEN) and the lockout that keeps it from being guessed, shared by
 * /admin/* and the detailed /health. A wrong token counts against the address (ADMIN_RATE_LIMITER, 10 a
 * minute); past the limit the address is turned away for a minute, right token or not, so guessing goes no
 * faster than the limit. The block is a KV mark, a hint and not a lock: it reaches other locations within a
 * minute at worst. Without the limiter or KV there is no lockout, and the admin's /health says so (config.ts).
 */
import type { Context } from "hono";
import type { AppEnv } from "./app-env";
import { ADMIN_TOKEN_TOO_SHORT, adminTokensOf } from "../config";
import { AppError } from "../errors";
import { matchesAnySecret } from "../security";

/** How long an address that failed too often is turned away, whatever token it brings. */
const BLOCK_SECONDS = 60;

const clientIp = (c: Context<AppEnv>) => c.req.header("cf-connecting-ip") ?? "unknown";
const blockKey = (c: Context<AppEnv>) => `admin-blocked:${clientIp(c)}`;

/** The admin tokens; a 403 that says why when ADMIN_TOKEN is unset or refused as too short. */
export function adminTokensOrRefuse(c: Context<AppEnv>): string[] {
  const admin = adminTokensOf(c.env);
  if (admin.state === "on") return admin.tokens;
  const why = admin.state === "unset" ? "set the ADMIN_TOKEN secret to use them" : `ADMIN_TOKEN ${ADMIN_TOKEN_TOO_SHORT}`;
  throw new AppError(403, "admin_disabled", `The admin routes are off: ${why}`);
}

/** A 429 for an address that failed too often within the last minute. */
export async function refuseLockedOut(c: Context<AppEnv>): Promise<void> {
  if (await c.env.COMAGIC_CACHE?.get(blockKey(c))) {
    c.header("Retry-After", String(BLOCK_SECONDS));
    c.header("Cache-Control", "no-store");
    throw new AppError(429, "too_many_failures", "Too many failed attempts from this address; try again in a minute");
  }
}

/** Whether `token` is one of the admin tokens, in constant time; a wrong one counts against the address. */
export async function isAdminToken(c: Context<AppEnv>, token: string, tokens: readonly string[]): Promise<boolean> {
  if (await matchesAnySecret(token, tokens)) return true;
  c.get("log").warn("admin.rejected", { path: new URL(c.req.url).pathname });
  const limiter = c.env.ADMIN_RATE_LIMITER;
  if (limiter && !(await limiter.limit({ key: `admin-failures:${clientIp(c)}` })).success) {
    await c.env.COMAGIC_CACHE?.put(blockKey(c), "1", { expirationTtl: BLOCK_SECONDS });
  }
  return false;
}

/**
 * For /health, which also answers strangers: whether the request brings the admin bearer token. No bearer, or
 * no ADMIN_TOKEN: false. A refused (too short) ADMIN_TOKEN: 403, so the operator learns why; a locked-out
 * address: 429; a wrong token counts, as on /admin.
 */
export async function bringsAdminToken(c: Context<AppEnv>): Promise<boolean> {
  const bearer = /^Bearer\s+(\S+)$/i.exec(c.req.header("authorization") ?? "")?.[1];
  if (!bearer || adminTokensOf(c.env).state === "unset") return false;
  const tokens = adminTokensOrRefuse(c);
  await refuseLockedOut(c);
  return isAdminToken(c, bearer, tokens);
}
