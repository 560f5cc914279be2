import * as z from "zod";
import { kvJson } from "../storage/kv-json";
import { createBitrixClient, type BitrixClient } from "./client";
import { BitrixError } from "./errors";

/** The portal the app is installed on, with its OAuth tokens (KV, keyed by member_id). */
export const portalSchema = z.object({
  memberId: z.string().min(1),
  /** https://portal.bitrix24.ru, as configured for this worker; never taken from a request. */
  origin: z.string().url(),
  accessToken: z.string().min(1),
  refreshToken: z.string().min(1),
  /** Unix seconds. */
  expiresAt: z.number(),
  installedAt: z.string(),
  installedByUserId: z.string(),
  /** `application_token` from the install, compared with the one placement requests carry (FACTS.md §1.4). */
  applicationToken: z.string().optional(),
});
export type Portal = z.infer<typeof portalSchema>;

export interface PortalStore {
  get(memberId: string): Promise<Portal | null>;
  put(portal: Portal): Promise<void>;
}

export function kvPortalStore(kv: KVNamespace): PortalStore {
  const store = kvJson(kv, portalSchema);
  const key = (memberId: string) => `portal:v1:${memberId}`;
  return { get: (memberId) => store.get(key(memberId)), put: (portal) => store.put(key(portal.memberId), portal) };
}

export interface OAuthSettings {
  /** The OAuth server's token endpoint (BITRIX_OAUTH_URL). */
  tokenUrl: string;
  clientId: string;
  clientSecret: string;
}

const tokenAnswer = z.object({ access_token: z.string().min(1), refresh_token: z.string().min(1), expires_in: z.number().optional(), expires: z.number().optional() }).loose();
const oauthError = z.object({ error: z.string(), error_description: z.string().nullish() }).loose();

/** Trades the stored refresh token for a new pair; Bitrix issues a new refresh token each time, so both are stored. */
export async function refreshPortalTokens(portal: Portal, oauth: OAuthSettings, store: PortalStore, now: () => number, doFetch: typeof fetch = fetch): Promise<Portal> {
  const body = new URLSearchParams({ grant_type: "refresh_token", client_id: oauth.clientId, client_secret: oauth.clientSecret, refresh_token: portal.refreshToken });
  const response = await doFetch(oauth.tokenUrl, { method: "POST", headers: { "content-type": "application/x-www-form-urlencoded" }, body, signal: AbortSignal.timeout(15_000) }).catch(() => {
    throw new BitrixError("NETWORK_ERROR", "Bitrix24 OAuth server: network error", true, "unknown");
  });
  const json: unknown = await response.json().catch(() => null);
  const answer = tokenAnswer.safeParse(json);
  if (!answer.success) {
    const error = oauthError.safeParse(json);
    // invalid_grant: the refresh token is spent or older than 180 days; the app must be reinstalled.
    throw new BitrixError(error.success ? error.data.error : "ERROR_UNEXPECTED_ANSWER", `Bitrix24 OAuth refresh failed: ${error.success ? `${error.data.error} ${error.data.error_description ?? ""}` : `HTTP ${response.status}`}`, response.status >= 500, "no");
  }
  const seconds = Math.floor(now() / 1000);
  const fresh: Portal = {
    ...portal,
    accessToken: answer.data.access_token,
    refreshToken: answer.data.refresh_token,
    expiresAt: answer.data.expires ?? seconds + (answer.data.expires_in ?? 3600),
  };
  await store.put(fresh);
  return fresh;
}

/** A REST client acting as the app on the installed portal, refreshing its tokens when Bitrix says they expired. */
export function appClientFor(portal: Portal, deps: { oauth: OAuthSettings; store: PortalStore; now: () => number; timeoutMs: number }): BitrixClient {
  let current = portal;
  return createBitrixClient({
    baseUrl: `${portal.origin}/rest/`,
    timeoutMs: deps.timeoutMs,
    oauth: {
      token: async () => current.accessToken,
      refresh: async () => {
        current = await refreshPortalTokens(current, deps.oauth, deps.store, deps.now);
        return current.accessToken;
      },
    },
  });
}

/** A client for one call made with a token the browser brought (a placement's AUTH_ID): never refreshed. */
export function userClientFor(origin: string, authId: string, timeoutMs: number): BitrixClient {
  const expired = () => Promise.reject(new BitrixError("expired_token", "Bitrix24: the page's token expired; reopen the card", false, "no"));
  return createBitrixClient({ baseUrl: `${origin}/rest/`, timeoutMs, maxTries: 2, oauth: { token: async () => authId, refresh: expired } });
}
