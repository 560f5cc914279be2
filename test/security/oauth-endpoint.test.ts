import { env } from "cloudflare:workers";
import { beforeAll, describe, expect, it } from "vitest";
import { oauthTokenUrlOf, refreshCoalesced, type OAuthSettings, type AppInstall, type InstallStore } from "../../worker/bitrix/app-client";
import { ADMIN_TOKEN, sandbox, workerWithEnv } from "../worker/support";
import { install, installStore, MEMBER, storedPortal, tokensFor } from "../worker/app-support";

/*
 * Issue #21 item 9: the app's client secret is posted to the OAuth server on every token refresh. An install
 * that names http://127.0.0.1 or http://localhost as its server_endpoint must not send it there in clear text,
 * unless ALLOW_LOOPBACK_HTTP says the worker runs next to a local sandbox (test/vitest.config.ts sets it, as
 * npm start and the benchmarks do; wrangler.toml does not).
 */

const PRODUCTION_OAUTH = "https://oauth.bitrix.info/oauth/token/";
const CLIENT_SECRET = "sandbox-app-secret";
const LOOPBACK_ENDPOINTS = ["http://127.0.0.1/rest/", "http://127.0.0.1:8790/rest/", "http://localhost/rest/", "http://localhost:3000/rest/"];

const oauthSettings = (allowLoopbackHttp: boolean, tokenUrl = PRODUCTION_OAUTH): OAuthSettings => ({ tokenUrl, clientId: "local.sandbox-app", clientSecret: CLIENT_SECRET, allowLoopbackHttp });

/** An install store in memory: a refresh here must not touch the shared sandbox portal's record. */
function memoryStore(portal: AppInstall): InstallStore {
  let current = portal;
  return {
    get: async () => current,
    findByOrigin: async () => current,
    put: async (p) => {
      current = p;
    },
    lockRefresh: async () => true,
    unlockRefresh: async () => {},
    delete: async () => true,
  };
}

/** Records where each request went and what it carried, answering as an OAuth server would. */
function recordingFetch() {
  const posted: { url: string; body: string }[] = [];
  const fetcher = (async (input: RequestInfo | URL, init?: RequestInit) => {
    posted.push({ url: String(input), body: String(init?.body ?? "") });
    return Response.json({ access_token: "fresh-access", refresh_token: "fresh-refresh", expires_in: 3600 });
  }) as typeof fetch;
  return { posted, fetcher };
}

beforeAll(async () => {
  await sandbox("/_sandbox/reset", {});
});

describe("an install's server_endpoint on this machine over plain http", () => {
  it.each(LOOPBACK_ENDPOINTS)("is not taken as the OAuth server without ALLOW_LOOPBACK_HTTP: %s", (endpoint) => {
    expect(oauthTokenUrlOf(endpoint, oauthSettings(false))).toBeNull();
  });

  it.each(LOOPBACK_ENDPOINTS)("is taken with ALLOW_LOOPBACK_HTTP, as the sandbox needs: %s", (endpoint) => {
    expect(oauthTokenUrlOf(endpoint, oauthSettings(true))).toBe(`${new URL(endpoint).origin}/oauth/token/`);
  });

  it("is never a reason to take a plain-http or unknown host elsewhere, with or without the setting", () => {
    for (const allow of [false, true]) {
      expect(oauthTokenUrlOf("http://oauth.bitrix.info/rest/", oauthSettings(allow))).toBeNull();
      expect(oauthTokenUrlOf("https://oauth.evil.example/rest/", oauthSettings(allow))).toBeNull();
      expect(oauthTokenUrlOf("https://oauth.bitrix.info/rest/", oauthSettings(allow))).toBe(PRODUCTION_OAUTH);
    }
  });
});

describe("a token refresh for a portal whose stored OAuth server is on this machine", () => {
  it.each(["http://127.0.0.1:8790/oauth/token/", "http://localhost/oauth/token/"])("never posts the client secret to %s without ALLOW_LOOPBACK_HTTP: it goes to BITRIX_OAUTH_URL", async (stored) => {
    const portal: AppInstall = {
      memberId: "loopback-member",
      origin: "https://portal.bitrix24.ru",
      accessToken: "expired-access",
      refreshToken: "old-refresh",
      expiresAt: 0,
      installedAt: new Date().toISOString(),
      installedByUserId: "1",
      oauthTokenUrl: stored,
    };
    const store = memoryStore(portal);
    const { posted, fetcher } = recordingFetch();
    const fresh = await refreshCoalesced(portal, { oauth: oauthSettings(false), store, now: Date.now, fetch: fetcher });
    expect(posted.map((p) => p.url)).toEqual([PRODUCTION_OAUTH]);
    expect(posted.filter((p) => p.body.includes(CLIENT_SECRET)).every((p) => p.url.startsWith("https://"))).toBe(true);
    expect(fresh.accessToken).toBe("fresh-access");
  });

  it("refreshes at the local sandbox's OAuth server with ALLOW_LOOPBACK_HTTP, end to end", async () => {
    // The worker's own install, with the tests' settings: the sandbox names itself as server_endpoint.
    expect((await install()).status).toBe(200);
    const installed = await storedPortal();
    expect(installed?.oauthTokenUrl).toBe(`${env.SANDBOX_URL}/oauth/token/`);
    const before = ((await (await sandbox("/_sandbox/bitrix/app/state")).json()) as { refreshes: number }).refreshes;
    const store = installStore();
    // BITRIX_OAUTH_URL elsewhere: only the install's (allowed) server_endpoint can have been asked.
    const fresh = await refreshCoalesced(installed as AppInstall, { oauth: oauthSettings(true), store, now: Date.now });
    expect(fresh.memberId).toBe(MEMBER);
    expect(fresh.accessToken).not.toBe(installed?.accessToken);
    const after = ((await (await sandbox("/_sandbox/bitrix/app/state")).json()) as { refreshes: number }).refreshes;
    expect(after - before).toBe(1);
  });
});

describe("a deploy without ALLOW_LOOPBACK_HTTP", () => {
  it("refuses upstream URLs on 127.0.0.1 over plain http, telling the admin which setting is missing", async () => {
    const worker = workerWithEnv({ ALLOW_LOOPBACK_HTTP: undefined });
    const res = await worker(new Request("http://worker.test/health", { headers: { authorization: `Bearer ${ADMIN_TOKEN}` } }));
    expect(res.status).toBe(503);
    const { problems } = (await res.json()) as { problems: { setting: string; problem: string }[] };
    for (const setting of ["BITRIX_WEBHOOK_URL", "BITRIX_OAUTH_URL", "COMAGIC_DATA_API_URL", "COMAGIC_CALL_API_URL"]) {
      expect(problems.find((p) => p.setting === setting)?.problem).toContain('ALLOW_LOOPBACK_HTTP="true"');
    }
  });

  it("refuses an install that names the sandbox as server_endpoint, and keeps the stored portal as it was", async () => {
    const before = await storedPortal();
    expect((await tokensFor(1)).SERVER_ENDPOINT).toMatch(/^http:\/\/(127\.0\.0\.1|localhost)[:/]/);
    const res = await install(1, {}, "ours", workerWithEnv({ ALLOW_LOOPBACK_HTTP: undefined }));
    expect(res.status).toBe(503);
    expect(await storedPortal()).toEqual(before);
  });
});
