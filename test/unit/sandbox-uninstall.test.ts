import { parse as parseQuery } from "qs";
import { describe, expect, it } from "vitest";
import type { SandboxPortal } from "../../sandbox/server";
import { sandboxInProcess } from "../helpers/sandbox-in-process";

/*
 * The sandbox removes the Bitrix24 app as a portal does (issue #23, ONAPPUNINSTALL). The app binds its handlers with
 * event.bind (app context only, `event.get` lists, `event.unbind` removes: dev.1c-bitrix.ru/rest_help/general/
 * events_method/event_bind.php); removing the app takes its REST access away ("although the handler receives auth
 * data, it can no longer use the API", onappuninstall.php) and POSTs ONAPPUNINSTALL, form-encoded, to each bound
 * handler with the install's application_token: `../shared/reference/bitrix24/FACTS.md` line 50, "application_token:
 * stored from ONAPPINSTALL, then compared on every event (only proof of origin for ONAPPUNINSTALL)". Field names as in
 * `samples/event.ONAPPINSTALL.payload.json`. Unit tests have no network: each portal's delivery is captured here.
 */

const ORIGIN = "http://localhost";
const HANDLER = "https://worker.example/bitrix/uninstall";

interface Tokens {
  AUTH_ID: string;
  REFRESH_ID: string;
  member_id: string;
  APPLICATION_TOKEN: string;
}

function sandboxOf(portals: string[]) {
  const { app, view, json, portal } = sandboxInProcess(portals, ORIGIN);
  /** The requests a portal POSTs to event handlers, answered 200 (or `status`). */
  const capture = (p: SandboxPortal, status = 200) => {
    const sent: { url: string; method: string; type: string | null; form: Record<string, unknown> }[] = [];
    p.bitrix.oauth.setEventDelivery(async (request) => {
      sent.push({ url: request.url, method: request.method, type: request.headers.get("content-type"), form: parseQuery(await request.text()) as Record<string, unknown> });
      return new Response("ok", { status });
    });
    return sent;
  };
  return {
    app,
    view,
    json,
    portal,
    capture,
    tokens: async (p: SandboxPortal, userId = 1) => (await json(`${p.url}/_sandbox/bitrix/app/tokens`, { userId })).body as unknown as Tokens,
    /** An app call with the user's token, as the worker makes it. */
    appCall: (p: SandboxPortal, token: string, method: string, params: Record<string, unknown> = {}) => json(`${p.url}/rest/${method}`, { ...params, auth: token }),
    refresh: async (refreshToken: string) => {
      const res = await app.request("/oauth/token/", {
        method: "POST",
        headers: { "content-type": "application/x-www-form-urlencoded" },
        body: new URLSearchParams({ grant_type: "refresh_token", client_id: "local.sandbox-app", client_secret: "sandbox-app-secret", refresh_token: refreshToken }).toString(),
      });
      return { status: res.status, body: (await res.json()) as Record<string, unknown> };
    },
    uninstall: (p: SandboxPortal, body: unknown) => json(`${p.url}/_sandbox/bitrix/app/uninstall`, body),
  };
}

describe("the sandbox binds the app's event handlers as Bitrix24 does", () => {
  it("binds a handler with the app's token and lists it in event.get; event.unbind removes it", async () => {
    const s = sandboxOf(["a"]);
    const a = s.portal("a");
    const admin = await s.tokens(a, 1);

    expect(await s.appCall(a, admin.AUTH_ID, "event.bind", { event: "onAppUninstall", handler: HANDLER })).toMatchObject({ status: 200, body: { result: true } });
    expect((await s.appCall(a, admin.AUTH_ID, "event.get")).body.result).toEqual([{ event: "ONAPPUNINSTALL", handler: HANDLER, auth_type: "0", offline: 0 }]);

    expect(await s.appCall(a, admin.AUTH_ID, "event.unbind", { event: "ONAPPUNINSTALL", handler: HANDLER })).toMatchObject({ status: 200, body: { result: { count: 1 } } });
    expect((await s.appCall(a, admin.AUTH_ID, "event.get")).body.result).toEqual([]);
  });

  it("refuses a second binding of the same handler, an unknown event, a handler that is not an http(s) URL, and a webhook", async () => {
    const s = sandboxOf(["a"]);
    const a = s.portal("a");
    const admin = await s.tokens(a, 1);
    await s.appCall(a, admin.AUTH_ID, "event.bind", { event: "ONAPPUNINSTALL", handler: HANDLER });

    expect(await s.appCall(a, admin.AUTH_ID, "event.bind", { event: "ONAPPUNINSTALL", handler: HANDLER })).toMatchObject({
      status: 400,
      body: { error: "ERROR_CORE", error_description: "Unable to set event handler: Handler already binded" },
    });
    expect(await s.appCall(a, admin.AUTH_ID, "event.bind", { event: "ONNOSUCHTHING", handler: HANDLER })).toMatchObject({ status: 400, body: { error: "ERROR_EVENT_NOT_FOUND" } });
    expect(await s.appCall(a, admin.AUTH_ID, "event.bind", { event: "ONAPPUNINSTALL", handler: "ftp://worker.example/uninstall" })).toMatchObject({
      status: 400,
      body: { error: "ERROR_UNSUPPORTED_PROTOCOL" },
    });
    expect(await s.appCall(a, admin.AUTH_ID, "event.bind", { event: "ONAPPUNINSTALL", handler: "javascript:alert(1)" })).toMatchObject({ status: 400, body: { error: "ERROR_WRONG_HANDLER_URL" } });
    expect(await s.appCall(a, admin.AUTH_ID, "event.bind", { event: "ONAPPUNINSTALL" })).toMatchObject({ status: 400, body: { error: "ERROR_ARGUMENT" } });
    expect(await s.json(`${a.bitrixWebhookUrl}event.bind`, { event: "ONAPPUNINSTALL", handler: "https://other.example/x" })).toMatchObject({
      status: 403,
      body: { error: "WRONG_AUTH_TYPE" },
    });
    expect((await s.appCall(a, admin.AUTH_ID, "event.get")).body.result).toHaveLength(1);
  });

  it("binds a sales manager's handler under the manager's own id, and shows the manager only their own", async () => {
    const s = sandboxOf(["a"]);
    const a = s.portal("a");
    const admin = await s.tokens(a, 1);
    const maria = await s.tokens(a, 2);
    await s.appCall(a, admin.AUTH_ID, "event.bind", { event: "ONAPPUNINSTALL", handler: HANDLER });

    expect((await s.appCall(a, maria.AUTH_ID, "event.bind", { event: "ONCRMLEADADD", handler: HANDLER })).body.result).toBe(true);
    expect(await s.appCall(a, maria.AUTH_ID, "event.bind", { event: "ONCRMLEADADD", handler: "https://worker.example/other", auth_type: 1 })).toMatchObject({
      status: 403,
      body: { error: "ACCESS_DENIED" },
    });
    expect((await s.appCall(a, maria.AUTH_ID, "event.get")).body.result).toEqual([{ event: "ONCRMLEADADD", handler: HANDLER, auth_type: "2", offline: 0 }]);
    expect((await s.appCall(a, admin.AUTH_ID, "event.get")).body.result).toHaveLength(2);
  });
});

describe("removing the app from a portal", () => {
  it("POSTs ONAPPUNINSTALL form-encoded to the bound handler with the install's application_token and member_id (FACTS.md line 50)", async () => {
    const s = sandboxOf(["a"]);
    const a = s.portal("a");
    const admin = await s.tokens(a, 1);
    await s.appCall(a, admin.AUTH_ID, "event.bind", { event: "ONAPPUNINSTALL", handler: HANDLER });
    const sent = s.capture(a);
    const before = Math.floor(Date.now() / 1000);

    const answer = await s.uninstall(a, { clean: true });

    expect(answer).toMatchObject({ status: 200, body: { ok: true, clean: true, delivered: [{ handler: HANDLER, status: 200 }] } });
    expect(sent).toHaveLength(1);
    const [request] = sent;
    expect(request).toMatchObject({ url: HANDLER, method: "POST", type: "application/x-www-form-urlencoded" });
    expect(request?.form).toMatchObject({
      event: "ONAPPUNINSTALL",
      data: { CLEAN: "1" },
      auth: { domain: "localhost", member_id: "sandbox-member-a", application_token: admin.APPLICATION_TOKEN },
    });
    expect(Number(request?.form.ts)).toBeGreaterThanOrEqual(before);
    // Event handlers get no refresh token (only ONAPPINSTALL does: FACTS.md line 49), and the access token is dead.
    const auth = request?.form.auth as Record<string, string>;
    expect(auth.refresh_token).toBeUndefined();
    expect((await s.appCall(a, auth.access_token ?? "", "app.info")).status).toBe(401);
  });

  it("sends CLEAN=0 when the administrator keeps the app's data", async () => {
    const s = sandboxOf(["a"]);
    const a = s.portal("a");
    await s.appCall(a, (await s.tokens(a, 1)).AUTH_ID, "event.bind", { event: "ONAPPUNINSTALL", handler: HANDLER });
    const sent = s.capture(a);
    await s.uninstall(a, { clean: false });
    expect(sent[0]?.form.data).toEqual({ CLEAN: "0" });
  });

  it("revokes the app's tokens: its calls fail with invalid_token and its refresh token is refused", async () => {
    const s = sandboxOf(["a"]);
    const a = s.portal("a");
    const admin = await s.tokens(a, 1);
    const maria = await s.tokens(a, 2);
    s.capture(a);
    expect((await s.appCall(a, maria.AUTH_ID, "profile")).status).toBe(200);

    await s.uninstall(a, { clean: true });

    for (const token of [admin.AUTH_ID, maria.AUTH_ID]) {
      expect(await s.appCall(a, token, "crm.lead.list")).toMatchObject({ status: 401, body: { error: "invalid_token" } });
    }
    expect(await s.refresh(admin.REFRESH_ID)).toMatchObject({ status: 400, body: { error: "invalid_grant" } });
    // The portal hands out no new tokens to a removed app, cannot remove it twice, and its lead card has no tab left.
    expect(await s.json(`${a.url}/_sandbox/bitrix/app/tokens`, { userId: 1 })).toMatchObject({ status: 409 });
    expect((await s.json(`${a.url}/_sandbox/bitrix/app/uninstall`, { clean: true })).status).toBe(409);
    expect((await s.app.request(`${a.url}/_sandbox/lead-card/1?user=2`)).status).toBe(404);
  });

  it("answers a clear 400 when clean is not a boolean, and removes nothing", async () => {
    const s = sandboxOf(["a"]);
    const a = s.portal("a");
    const admin = await s.tokens(a, 1);
    const answer = await s.uninstall(a, { clean: "yes" });
    expect(answer.status).toBe(400);
    expect(String(answer.body.error)).toMatch(/clean/);
    expect((await s.appCall(a, admin.AUTH_ID, "profile")).status).toBe(200);
  });

  it("installs again on request: new tokens work, the handlers are gone and must be bound again", async () => {
    const s = sandboxOf(["a"]);
    const a = s.portal("a");
    const admin = await s.tokens(a, 1);
    await s.appCall(a, admin.AUTH_ID, "event.bind", { event: "ONAPPUNINSTALL", handler: HANDLER });
    s.capture(a);
    await s.uninstall(a, { clean: false });

    const again = (await s.json(`${a.url}/_sandbox/bitrix/app/install`, { userId: 1 })).body as unknown as Tokens;
    expect((await s.appCall(a, again.AUTH_ID, "profile")).status).toBe(200);
    expect((await s.appCall(a, again.AUTH_ID, "event.get")).body.result).toEqual([]);
  });

  it("keeps each portal's handlers and tokens its own: removing the app from a reaches neither b's handler nor b's tokens", async () => {
    const s = sandboxOf(["a", "b"]);
    const [a, b, root] = [s.portal("a"), s.portal("b"), s.portal("root")];
    const onA = await s.tokens(a, 1);
    const onB = await s.tokens(b, 1);
    const onRoot = await s.tokens(root, 1);
    expect(onA.APPLICATION_TOKEN).not.toBe(onB.APPLICATION_TOKEN);
    await s.appCall(a, onA.AUTH_ID, "event.bind", { event: "ONAPPUNINSTALL", handler: `${HANDLER}?portal=a` });
    await s.appCall(b, onB.AUTH_ID, "event.bind", { event: "ONAPPUNINSTALL", handler: `${HANDLER}?portal=b` });
    await s.appCall(root, onRoot.AUTH_ID, "event.bind", { event: "ONAPPUNINSTALL", handler: `${HANDLER}?portal=root` });
    // A token opens only the portal that issued it, so a's cannot list b's handlers.
    expect(await s.appCall(b, onA.AUTH_ID, "event.get")).toMatchObject({ status: 401, body: { error: "invalid_token" } });
    const [sentA, sentB, sentRoot] = [s.capture(a), s.capture(b), s.capture(root)];

    await s.uninstall(a, { clean: true });

    expect(sentA.map((r) => r.url)).toEqual([`${HANDLER}?portal=a`]);
    expect(sentA[0]?.form.auth).toMatchObject({ member_id: "sandbox-member-a", application_token: onA.APPLICATION_TOKEN });
    expect(sentB).toEqual([]);
    expect(sentRoot).toEqual([]);
    expect((await s.appCall(b, onB.AUTH_ID, "event.get")).body.result).toEqual([{ event: "ONAPPUNINSTALL", handler: `${HANDLER}?portal=b`, auth_type: "0", offline: 0 }]);
    expect((await s.appCall(root, onRoot.AUTH_ID, "profile")).status).toBe(200);
    expect((await s.refresh(onB.REFRESH_ID)).status).toBe(200);

    await s.uninstall(b, { clean: false });
    expect(sentB.map((r) => [r.url, (r.form.auth as Record<string, string>).member_id, (r.form.data as Record<string, string>).CLEAN])).toEqual([[`${HANDLER}?portal=b`, "sandbox-member-b", "0"]]);
  });

  it("reports a handler that does not answer, and still removes the app", async () => {
    const s = sandboxOf(["a"]);
    const a = s.portal("a");
    const admin = await s.tokens(a, 1);
    await s.appCall(a, admin.AUTH_ID, "event.bind", { event: "ONAPPUNINSTALL", handler: HANDLER });
    a.bitrix.oauth.setEventDelivery(async () => {
      throw new TypeError("fetch failed");
    });
    expect((await s.uninstall(a, { clean: true })).body).toMatchObject({ delivered: [{ handler: HANDLER, status: 0, error: "fetch failed" }] });
    expect((await s.appCall(a, admin.AUTH_ID, "profile")).status).toBe(401);
  });

  it("only builds the forms when deliver is false, for a test that posts them to the worker itself", async () => {
    const s = sandboxOf(["a"]);
    const a = s.portal("a");
    const admin = await s.tokens(a, 1);
    await s.appCall(a, admin.AUTH_ID, "event.bind", { event: "ONAPPUNINSTALL", handler: HANDLER });
    const sent = s.capture(a);
    const answer = await s.uninstall(a, { clean: true, deliver: false });
    expect(sent).toEqual([]);
    const [delivery] = answer.body.delivered as { handler: string; status: null; body: string }[];
    expect(delivery).toMatchObject({ handler: HANDLER, status: null });
    expect(parseQuery(delivery?.body ?? "")).toMatchObject({ event: "ONAPPUNINSTALL", data: { CLEAN: "1" }, auth: { application_token: admin.APPLICATION_TOKEN } });
    expect((await s.appCall(a, admin.AUTH_ID, "profile")).status).toBe(401);
  });

  it("has the app installed again after POST /_sandbox/reset", async () => {
    const s = sandboxOf(["a"]);
    const a = s.portal("a");
    s.capture(a);
    await s.uninstall(a, { clean: true });
    await s.json(`${a.url}/_sandbox/reset`, {});
    const tokens = await s.tokens(a, 1);
    expect((await s.appCall(a, tokens.AUTH_ID, "profile")).status).toBe(200);
  });
});
