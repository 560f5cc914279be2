import { afterEach, describe, expect, it, vi } from "vitest";
import { createSandbox, type SandboxPortal } from "../../sandbox/server";
import { sandboxInProcess } from "../helpers/sandbox-in-process";

/*
 * One sandbox serves many portals (issue #23): each named portal under `/p/<name>` is a Bitrix24 portal and a
 * CoMagic account of its own. Bitrix24 keeps its leaky bucket per portal (`../shared/reference/bitrix24/FACTS.md`
 * line 189, §4.1: "Tracked per Bitrix24", drain 2/s, burst 50), so a burst on one portal refuses nothing on
 * another. The app is called in-process (`app.request`), as if served at ORIGIN.
 */

const ORIGIN = "http://localhost";

function sandboxOf(portals: string[]) {
  const { app, view, json, portal } = sandboxInProcess(portals, ORIGIN);
  return {
    app,
    view,
    json,
    portal,
    rest: (p: SandboxPortal, method: string, params: Record<string, unknown> = {}) => json(`${p.bitrixWebhookUrl}${method}`, params),
    rpc: (url: string, method: string, params: Record<string, unknown>) => json(url, { jsonrpc: "2.0", id: 1, method, params }),
    leads: async (p: SandboxPortal) => (await json(`${p.url}/_sandbox/leads`)).body as unknown as { TITLE: string }[],
  };
}

afterEach(() => {
  vi.useRealTimers();
});

describe("the sandbox serves many portals side by side", () => {
  it("keeps each portal's leads to itself, and the root portal's apart from both", async () => {
    const s = sandboxOf(["a", "b"]);
    expect((await s.rest(s.portal("a"), "crm.lead.add", { fields: { TITLE: "Anna on a" } })).body.result).toBe(1);
    expect((await s.rest(s.portal("b"), "crm.lead.add", { fields: { TITLE: "Boris on b" } })).body.result).toBe(1);

    expect((await s.leads(s.portal("a"))).map((lead) => lead.TITLE)).toEqual(["Anna on a"]);
    expect((await s.leads(s.portal("b"))).map((lead) => lead.TITLE)).toEqual(["Boris on b"]);
    expect(await s.leads(s.view)).toEqual([]);
  });

  it("refuses portal a's burst past 50 requests with QUERY_LIMIT_EXCEEDED while portal b and the root portal answer (FACTS.md line 189)", async () => {
    // The clock stands still, so no bucket drains: exactly the burst of 50 goes through.
    vi.useFakeTimers({ toFake: ["Date"] });
    const s = sandboxOf(["a", "b"]);
    const answers = [];
    for (let i = 0; i < 51; i += 1) answers.push(await s.rest(s.portal("a"), "crm.lead.list"));
    expect(answers.slice(0, 50).every((answer) => answer.status === 200)).toBe(true);
    expect(answers[50]).toMatchObject({ status: 503, body: { error: "QUERY_LIMIT_EXCEEDED" } });

    expect(await s.rest(s.portal("b"), "crm.lead.list")).toMatchObject({ status: 200, body: { result: [] } });
    expect((await s.rest(s.view, "crm.lead.list")).status).toBe(200);
    expect((await s.json(`${s.portal("a").url}/_sandbox/stats`)).body).toMatchObject({ httpRequests: 51, rejectedByRateLimit: 1 });
    expect((await s.json(`${s.portal("b").url}/_sandbox/stats`)).body).toMatchObject({ httpRequests: 1, rejectedByRateLimit: 0 });
  });

  it("refuses a portal's webhook code on another portal's URL, and the root portal's code on a named portal", async () => {
    const s = sandboxOf(["a", "b"]);
    const a = s.portal("a");
    const b = s.portal("b");
    expect(a.bitrixWebhookUrl).toMatch(/^http:\/\/localhost\/p\/a\/rest\/1\/[0-9a-f]{24}\/$/);
    expect(a.bitrixWebhookUrl.replace("/p/a/", "/p/b/")).not.toBe(b.bitrixWebhookUrl);

    for (const url of [a.bitrixWebhookUrl.replace("/p/a/", "/p/b/"), s.view.bitrixWebhookUrl.replace(ORIGIN, `${ORIGIN}/p/a`)]) {
      expect(await s.json(`${url}crm.lead.list`, {})).toMatchObject({ status: 401, body: { error: "NO_AUTH_FOUND" } });
    }
  });

  it("refuses portal a's CoMagic login and session token on portal b's Data API and Call API, even after b is reset", async () => {
    const s = sandboxOf(["a", "b"]);
    const a = s.portal("a");
    const b = s.portal("b");
    expect(a.comagic.password).not.toBe(b.comagic.password);
    expect(a.comagic.login).not.toBe(b.comagic.login);

    const login = await s.rpc(a.dataApiUrl, "login.user", a.comagic);
    const token = (login.body.result as { data: { access_token: string } }).data.access_token;
    expect(typeof token).toBe("string");
    expect((await s.rpc(a.dataApiUrl, "get.employees", { access_token: token })).body.result).toBeDefined();

    expect((await s.rpc(b.dataApiUrl, "login.user", a.comagic)).body.error).toMatchObject({ code: -32001, data: { mnemonic: "auth_error" } });
    expect((await s.rpc(b.callApiUrl, "login.user", a.comagic)).body.error).toMatchObject({ code: -32001, data: { mnemonic: "auth_error" } });
    expect((await s.rpc(b.dataApiUrl, "get.employees", { access_token: token })).body.error).toMatchObject({ data: { mnemonic: "access_token_invalid" } });

    // A reset goes back to b's own account, not to the root portal's `sandbox` / `sandbox-password`.
    await s.json(`${b.url}/_sandbox/comagic/reset`, {});
    expect((await s.rpc(b.dataApiUrl, "login.user", s.view.comagic)).body.error).toMatchObject({ data: { mnemonic: "auth_error" } });
    expect((await s.rpc(b.dataApiUrl, "login.user", b.comagic)).body.result).toBeDefined();
  });

  it("refreshes a portal's app token at the one OAuth server, answering with that portal's member_id and REST address", async () => {
    const s = sandboxOf(["a", "b"]);
    const a = s.portal("a");
    const tokens = (await s.json(`${a.url}/_sandbox/bitrix/app/tokens`, { userId: 1 })).body;
    expect(tokens).toMatchObject({ member_id: "sandbox-member-a", SERVER_ENDPOINT: `${ORIGIN}/rest/` });

    const form = new URLSearchParams({ grant_type: "refresh_token", client_id: "local.sandbox-app", client_secret: "sandbox-app-secret", refresh_token: String(tokens.REFRESH_ID) });
    const refreshed = (await (await s.app.request(`${ORIGIN}/oauth/token/?${form}`)).json()) as Record<string, unknown>;
    expect(refreshed).toMatchObject({ member_id: "sandbox-member-a", client_endpoint: `${ORIGIN}/p/a/rest/`, server_endpoint: `${ORIGIN}/rest/` });

    // The new token is portal a's: a's app.info answers, b's refuses it.
    expect((await s.json(`${a.url}/rest/app.info`, { auth: refreshed.access_token })).status).toBe(200);
    expect(await s.json(`${s.portal("b").url}/rest/app.info`, { auth: refreshed.access_token })).toMatchObject({ status: 401, body: { error: "invalid_token" } });

    // The root portal's tokens refresh there as before.
    const rootTokens = (await s.json(`${ORIGIN}/_sandbox/bitrix/app/tokens`, { userId: 1 })).body;
    form.set("refresh_token", String(rootTokens.REFRESH_ID));
    expect(await (await s.app.request(`${ORIGIN}/oauth/token/`, { method: "POST", body: form })).json()).toMatchObject({
      member_id: "sandbox-member-0001",
      client_endpoint: `${ORIGIN}/rest/`,
    });
  });

  it("keeps an administrator's rights taken away on one portal to that portal", async () => {
    const s = sandboxOf(["a", "b"]);
    await s.json(`${s.portal("a").url}/_sandbox/bitrix/app/user`, { userId: 1, admin: false });
    const profile = async (p: SandboxPortal) => {
      const auth = (await s.json(`${p.url}/_sandbox/bitrix/app/tokens`, { userId: 1 })).body.AUTH_ID;
      return (await s.json(`${p.url}/rest/profile`, { auth })).body.result as { ADMIN: boolean };
    };
    expect((await profile(s.portal("a"))).ADMIN).toBe(false);
    expect((await profile(s.portal("b"))).ADMIN).toBe(true);
    expect((await profile(s.view)).ADMIN).toBe(true);
  });

  it("keeps the links a portal's pages and recording host make under its prefix", async () => {
    const s = sandboxOf(["a"]);
    const a = s.portal("a");
    const signIn = await s.app.request(`${a.url}/_sandbox/media/login/42.mp3`);
    expect(signIn.status).toBe(302);
    expect(signIn.headers.get("location")).toMatch(/^\/p\/a\/_sandbox\/media\/sign-in\?/);
    expect(await (await s.app.request(`${a.url}/_sandbox/media/sign-in`)).text()).toContain('action="/p/a/_sandbox/media/sign-in"');
    const audio = await s.app.request(`${a.url}/_sandbox/media/rec/42.mp3`);
    expect(audio.headers.get("content-type")).toBe("audio/mpeg");
    expect(await (await s.app.request(`${a.url}/_sandbox`)).text()).toContain('href="/p/a/_sandbox/leads"');
  });

  it("answers 404 for a portal nobody named, and refuses a name that is not one path segment", async () => {
    const s = sandboxOf(["a"]);
    expect((await s.json(`${ORIGIN}/p/zz/_sandbox/leads`)).status).toBe(404);
    for (const name of ["A", "a/b", "", "a b"]) expect(() => createSandbox({ portals: [name] })).toThrow(/path segment/);
    expect(() => createSandbox({ portals: ["a", "a"] })).toThrow(/named twice/);
  });

  it("serves 100 portals, each with its own webhook code and CoMagic password", async () => {
    const names = Array.from({ length: 100 }, (_, i) => `client-${i}`);
    const s = sandboxOf(names);
    const portals = names.map((name) => s.portal(name));
    expect(new Set(portals.map((p) => p.bitrixWebhookUrl.split("/").at(-2))).size).toBe(100);
    expect(new Set(portals.map((p) => p.comagic.password)).size).toBe(100);
    for (const p of portals) expect((await s.rest(p, "crm.lead.add", { fields: { TITLE: p.url } })).body.result).toBe(1);
    expect(await s.leads(s.portal("client-99"))).toMatchObject([{ TITLE: `${ORIGIN}/p/client-99` }]);
  });
});
