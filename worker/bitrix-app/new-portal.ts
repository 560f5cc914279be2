/*
 * A Bitrix24 portal that installs the app while no portal of the deployment serves it gets a portal of its own, set
 * up from then on by its administrator on the app's settings page: no webhook, no env var. Its address and member_id
 * come from Bitrix24's OAuth server (the install's refresh token traded there with our client secret answers
 * `member_id` and `client_endpoint`, FACTS-portals §9), never from the browser's form: a forged install (a refresh
 * token our app was not given, or one of another portal) makes nothing.
 */
import { isSafeUpstream } from "../domain/upstream-url";
import type { TradedTokens } from "../bitrix/app-client";
import { BitrixError } from "../bitrix/errors";
import type { Language } from "../i18n";

export type NewPortalOutcome =
  /** `opened`: a new stored portal; else the portal of the deployment already at that address, now linked to the member_id. */
  { ok: true; portal: string; origin: string; tokens: TradedTokens; opened: boolean } | { ok: false; refusal: "not_verified" | "bitrix_unavailable" | "not_admin" };

/** The settings a new portal starts with; everything else waits for its administrator (the settings page). */
export interface NewPortalSettings {
  BITRIX_PORTAL_URL: string;
  COMAGIC_WEBHOOK_TOKEN: string;
  CRM_LANGUAGE: Language;
}

const MAX_SUFFIX = 99;

/**
 * A portal key from the portal's host: its first label (`shop-msk` for shop-msk.bitrix24.ru), or the whole host
 * for an address (`127-0-0-1-8801`), as lowercase letters, digits and dashes (domain/portal-key.ts).
 */
export function portalKeyFromHost(host: string): string {
  const label = host.split(".")[0] ?? "";
  const base = /^\d+$/.test(label) || label.length < 2 ? host : label;
  const key = base
    .toLowerCase()
    .replace(/[^a-z0-9]+/g, "-")
    .replace(/^-+|-+$/g, "")
    .slice(0, 36);
  return key.length >= 2 ? key : "portal";
}

export async function openNewPortal(
  request: { memberId: string; refreshId: string; language: Language },
  deps: {
    /** The OAuth server's answer for the refresh token (bitrix/app-client.ts tradeRefreshToken). */
    trade: (refreshToken: string) => Promise<TradedTokens>;
    /** Whether a portal key is in use already. */
    taken: (portal: string) => Promise<boolean>;
    save: (portal: string, settings: NewPortalSettings, memberId: string) => Promise<void>;
    /** The deployment's portal already at this origin (its webhook's, or an earlier install's), if any. */
    portalAt: (origin: string) => Promise<string | null>;
    /** Links an existing portal to the member_id the OAuth server named. */
    link: (portal: string, memberId: string) => Promise<void>;
    /** Whether the installing user is an administrator of the portal at that origin (their own token, there). */
    isAdmin: (origin: string) => Promise<boolean | "unavailable">;
    randomToken: () => string;
    allowLoopbackHttp: boolean;
  },
): Promise<NewPortalOutcome> {
  let tokens: TradedTokens;
  try {
    tokens = await deps.trade(request.refreshId);
  } catch (error) {
    if (error instanceof BitrixError && error.transient) return { ok: false, refusal: "bitrix_unavailable" };
    return { ok: false, refusal: "not_verified" };
  }
  const origin = endpointOrigin(tokens.clientEndpoint, deps.allowLoopbackHttp);
  if (tokens.memberId !== request.memberId || !origin) return { ok: false, refusal: "not_verified" };
  // Only an administrator installs; a manager's first open of an app nobody installed opens nothing.
  const admin = await deps.isAdmin(origin);
  if (admin === "unavailable") return { ok: false, refusal: "bitrix_unavailable" };
  if (!admin) return { ok: false, refusal: "not_admin" };
  // A portal the deployment serves already (by its webhook's address) is linked, never doubled.
  const existing = await deps.portalAt(origin);
  if (existing) {
    await deps.link(existing, request.memberId);
    return { ok: true, portal: existing, origin, tokens, opened: false };
  }
  const base = portalKeyFromHost(new URL(origin).host);
  let portal = base;
  for (let n = 2; await deps.taken(portal); n++) {
    if (n > MAX_SUFFIX) throw new Error(`No free portal key for ${base}`);
    portal = `${base}-${n}`;
  }
  await deps.save(portal, { BITRIX_PORTAL_URL: origin, COMAGIC_WEBHOOK_TOKEN: deps.randomToken(), CRM_LANGUAGE: request.language }, request.memberId);
  return { ok: true, portal, origin, tokens, opened: true };
}

/** `https://<portal>/rest/` → its origin; null for anything else (another path, plain http outside a local sandbox). */
function endpointOrigin(endpoint: string | null, allowLoopbackHttp: boolean): string | null {
  if (!endpoint) return null;
  try {
    const url = new URL(endpoint);
    return url.pathname === "/rest/" && isSafeUpstream(url, allowLoopbackHttp) ? url.origin : null;
  } catch {
    return null;
  }
}
