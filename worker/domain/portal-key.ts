/**
 * A portal key names one portal of the deployment (a Bitrix24 portal with its CoMagic account) in URLs
 * (`/webhooks/comagic/<key>`, `/s/<key>.js`, `/forms/<key>`), jobs, D1 rows, Durable Object names, KV keys and logs.
 * It is not a secret (it sits in the site's script tag): each portal's tokens are. The portal a deployment had
 * before portals (its settings in env) is `default`, so its jobs, rows and URLs keep working unchanged.
 */
import * as z from "zod";

export const DEFAULT_PORTAL = "default";

/** Lowercase letters, digits and dashes, 2 to 40: safe in a URL path, a KV key and a log line as it is. */
export const portalKeySchema = z.string().regex(/^[a-z0-9][a-z0-9-]{1,39}$/, { error: "is not a portal key: 2 to 40 lowercase letters, digits and dashes, like shop-msk" });

/** Jobs sent before portals name none: they are the default portal's. */
export const jobPortal = portalKeySchema.default(DEFAULT_PORTAL);

/** A KV key of this portal: the default portal's keys are as they were before portals, so its caches stay warm. */
export function portalKvKey(portal: string, key: string): string {
  return portal === DEFAULT_PORTAL ? key : `portal:${portal}:${key}`;
}

/** The portal a job names (any message body); a job from before portals, or one naming no valid key, is the default portal's. */
export function portalNamedBy(job: unknown): string {
  const named = job !== null && typeof job === "object" ? (job as { portal?: unknown }).portal : undefined;
  return portalKeySchema.safeParse(named).data ?? DEFAULT_PORTAL;
}
