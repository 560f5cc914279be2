/*
 * The Bitrix24 app's side of OAuth: an install of the app on a Bitrix24 portal (AppInstall: its member_id and tokens,
 * kept by storage/app-installs.ts in D1), the refresh of its tokens (one at a time per install, since each refresh
 * spends the refresh token), and the REST clients acting as the app or as a user who opened one of its pages.
 */
import * as z from "zod";
import { createBitrixClient, type BitrixClient } from "./client";
import { BitrixError, type RequestBudget } from "./errors";
import { isLoopback, isSafeUpstream } from "../domain/upstream-url";

/** The app's install on one Bitrix24 portal, with its OAuth tokens (D1 `app_installs`, by member_id). */
export const appInstallSchema = z.object({
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
  /** Where this portal's tokens are refreshed: the install's `server_endpoint` host + /oauth/token/ (FACTS-portals). */
  oauthTokenUrl: z.string().url().optional(),
});
export type AppInstall = z.infer<typeof appInstallSchema>;

/** Installed portals and their tokens, in a strongly consistent store (D1), with a lock for token refreshes. */
export interface InstallStore {
  get(memberId: string): Promise<AppInstall | null>;
  /** The portal installed at this origin (the webhook's portal), if the app is installed there. */
  findByOrigin(origin: string): Promise<AppInstall | null>;
  put(portal: AppInstall): Promise<void>;
  /** Takes the portal's refresh lock until `until`; false while another isolate holds it. */
  lockRefresh(memberId: string, now: Date, until: Date): Promise<boolean>;
  unlockRefresh(memberId: string): Promise<void>;
  /** Forgets the install (the app was removed): true when there was one. */
  delete(memberId: string): Promise<boolean>;
}

export interface OAuthSettings {
  /** The OAuth server's token endpoint (BITRIX_OAUTH_URL). */
  tokenUrl: string;
  clientId: string;
  clientSecret: string;
  /** ALLOW_LOOPBACK_HTTP: a local sandbox's OAuth server at http://127.0.0.1 may be named; never in production. */
  allowLoopbackHttp: boolean;
}

const tokenAnswer = z
  .object({
    access_token: z.string().min(1),
    refresh_token: z.string().min(1),
    expires_in: z.number().optional(),
    expires: z.number().optional(),
    member_id: z.string().optional(),
    client_endpoint: z.string().optional(),
  })
  .loose();
const oauthError = z.object({ error: z.string(), error_description: z.string().nullish() }).loose();

/** What Bitrix24's OAuth server answers for a refresh token: a new pair, and the portal the tokens belong to. */
export interface TradedTokens {
  accessToken: string;
  refreshToken: string;
  /** Unix seconds. */
  expiresAt: number;
  memberId: string | null;
  /** `https://<portal>/rest/`: where the portal is, in the OAuth server's own words (FACTS-portals §9). */
  clientEndpoint: string | null;
}

/** Trades a refresh token for a new pair at the OAuth server; Bitrix issues a new refresh token each time. */
export async function tradeRefreshToken(
  refreshToken: string,
  tokenUrl: string,
  oauth: Pick<OAuthSettings, "clientId" | "clientSecret">,
  now: () => number,
  doFetch: typeof fetch = fetch,
): Promise<TradedTokens> {
  const body = new URLSearchParams({ grant_type: "refresh_token", client_id: oauth.clientId, client_secret: oauth.clientSecret, refresh_token: refreshToken });
  const response = await doFetch(tokenUrl, {
    method: "POST",
    headers: { "content-type": "application/x-www-form-urlencoded" },
    body,
    signal: AbortSignal.timeout(15_000),
  }).catch(() => {
    throw new BitrixError("NETWORK_ERROR", "Bitrix24 OAuth server: network error", true, "unknown");
  });
  const json: unknown = await response.json().catch(() => null);
  const answer = tokenAnswer.safeParse(json);
  if (!answer.success) {
    const error = oauthError.safeParse(json);
    // invalid_grant: the refresh token is spent or older than 180 days; the app must be reinstalled.
    throw new BitrixError(
      error.success ? error.data.error : "ERROR_UNEXPECTED_ANSWER",
      `Bitrix24 OAuth refresh failed: ${error.success ? `${error.data.error} ${error.data.error_description ?? ""}` : `HTTP ${response.status}`}`,
      response.status >= 500,
      "no",
    );
  }
  const seconds = Math.floor(now() / 1000);
  return {
    accessToken: answer.data.access_token,
    refreshToken: answer.data.refresh_token,
    expiresAt: answer.data.expires ?? seconds + (answer.data.expires_in ?? 3600),
    memberId: answer.data.member_id ?? null,
    clientEndpoint: answer.data.client_endpoint ?? null,
  };
}

/** Trades the stored refresh token for a new pair; Bitrix issues a new refresh token each time, so both are stored. */
async function refreshPortalTokens(portal: AppInstall, oauth: OAuthSettings, store: InstallStore, now: () => number, doFetch: typeof fetch): Promise<AppInstall> {
  // A stored URL is checked again: it may date from a deploy whose rules (or settings) were looser.
  const tokenUrl = oauthTokenUrlOf(portal.oauthTokenUrl, oauth) ?? oauth.tokenUrl;
  const traded = await tradeRefreshToken(portal.refreshToken, tokenUrl, oauth, now, doFetch);
  const fresh: AppInstall = { ...portal, accessToken: traded.accessToken, refreshToken: traded.refreshToken, expiresAt: traded.expiresAt };
  await store.put(fresh);
  return fresh;
}

/** A refresh answers within seconds; the lock outlives a slow one so two isolates never refresh at once. */
const REFRESH_LOCK_MS = 20_000;
const REFRESH_POLL_MS = 200;

/**
 * The portal's tokens after `expired` was refused: refreshed here, or by whichever isolate holds the refresh
 * lock (each refresh spends the refresh token, so two at once would leave one isolate with a dead token).
 */
export async function refreshCoalesced(
  expired: AppInstall,
  deps: { oauth: OAuthSettings; store: InstallStore; now: () => number; fetch?: typeof fetch; sleep?: (ms: number) => Promise<void> },
): Promise<AppInstall> {
  const sleep = deps.sleep ?? ((ms: number) => new Promise<void>((r) => setTimeout(r, ms)));
  const renewed = (p: AppInstall | null): p is AppInstall => p !== null && p.accessToken !== expired.accessToken;
  for (let waited = 0; waited <= REFRESH_LOCK_MS; waited += REFRESH_POLL_MS) {
    const current = await deps.store.get(expired.memberId);
    if (renewed(current)) return current;
    const now = new Date(deps.now());
    if (await deps.store.lockRefresh(expired.memberId, now, new Date(now.getTime() + REFRESH_LOCK_MS))) {
      try {
        const latest = await deps.store.get(expired.memberId);
        if (renewed(latest)) return latest;
        return await refreshPortalTokens(latest ?? expired, deps.oauth, deps.store, deps.now, deps.fetch ?? fetch);
      } finally {
        await deps.store.unlockRefresh(expired.memberId);
      }
    }
    await sleep(REFRESH_POLL_MS);
  }
  throw new BitrixError("REFRESH_BUSY", "Bitrix24 OAuth: another refresh of this portal's tokens did not finish", true, "no");
}

/** A REST client acting as the app on the installed portal, refreshing its tokens when Bitrix says they expired. */
export function appClientFor(portal: AppInstall, deps: { oauth: OAuthSettings; store: InstallStore; now: () => number; timeoutMs: number; budget?: RequestBudget }): BitrixClient {
  let current = portal;
  return createBitrixClient({
    baseUrl: `${portal.origin}/rest/`,
    timeoutMs: deps.timeoutMs,
    ...(deps.budget ? { budget: deps.budget } : {}),
    oauth: {
      token: async () => current.accessToken,
      refresh: async () => {
        current = await refreshCoalesced(current, deps);
        return current.accessToken;
      },
    },
  });
}

/** OAuth servers Bitrix24 uses (FACTS-portals: the host is moving). */
const OAUTH_HOSTS = new Set(["oauth.bitrix.info", "oauth.bitrix24.tech"]);

/**
 * The token URL for an install's `server_endpoint` (`https://oauth.bitrix.info/rest/` → `…/oauth/token/`), or
 * null when it is not a Bitrix24 OAuth server over https: the refresh sends the client secret there. A local
 * sandbox's server on 127.0.0.1/localhost counts only with ALLOW_LOOPBACK_HTTP.
 */
export function oauthTokenUrlOf(serverEndpoint: string | undefined, oauth: Pick<OAuthSettings, "tokenUrl" | "allowLoopbackHttp">): string | null {
  if (!serverEndpoint) return null;
  try {
    const url = new URL(serverEndpoint);
    const known = OAUTH_HOSTS.has(url.hostname) || url.host === new URL(oauth.tokenUrl).host;
    const sandbox = oauth.allowLoopbackHttp && isLoopback(url);
    if (!isSafeUpstream(url, oauth.allowLoopbackHttp) || !(known || sandbox)) return null;
    return `${url.origin}/oauth/token/`;
  } catch {
    return null;
  }
}

/** A client for one call made with a token the browser brought (a placement's AUTH_ID): never refreshed. */
export function userClientFor(origin: string, authId: string, timeoutMs: number, budget?: RequestBudget): BitrixClient {
  const expired = () => Promise.reject(new BitrixError("expired_token", "Bitrix24: the page's token expired; reopen the card", false, "no"));
  return createBitrixClient({ baseUrl: `${origin}/rest/`, timeoutMs, maxTries: 2, oauth: { token: async () => authId, refresh: expired }, ...(budget ? { budget } : {}) });
}
