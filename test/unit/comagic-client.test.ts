import { describe, expect, it } from "vitest";
import { CoMagicError, createCoMagicRpcClient, type CachedToken, type CoMagicAuth, type TokenStore } from "../../worker/comagic/data-api";
import { fetchReport } from "../../worker/comagic/reports";
import * as z from "zod";
import { rejection } from "../helpers/rejection";

type Reply = { status?: number; body: unknown } | Error;

function memoryStore() {
  const items = new Map<string, { token: CachedToken; ttl: number }>();
  const store: TokenStore = {
    get: async (key) => items.get(key)?.token ?? null,
    put: async (key, token, ttl) => void items.set(key, { token, ttl }),
    delete: async (key) => void items.delete(key),
  };
  return { store, items };
}

const NOW = 1_780_000_000_000;

function scripted(replies: Reply[], auth: CoMagicAuth = { kind: "login", login: "user", password: "pw" }, tokens = memoryStore().store) {
  const sent: { method: string; params: Record<string, unknown> }[] = [];
  const fetchStub = async (_url: unknown, init?: RequestInit) => {
    const body = JSON.parse(String(init?.body)) as { method: string; params: Record<string, unknown> };
    sent.push(body);
    const reply = replies.shift();
    if (!reply) throw new Error(`no scripted reply for ${body.method}`);
    if (reply instanceof Error) throw reply;
    return new Response(typeof reply.body === "string" ? reply.body : JSON.stringify(reply.body), { status: reply.status ?? 200 });
  };
  const client = createCoMagicRpcClient({ url: "https://dataapi.test/v2.0", auth, tokens, api: "Data API", fetch: fetchStub as typeof fetch, now: () => NOW, sleep: async () => {} });
  return { client, sent };
}

const ok = (data: unknown, metadata: Record<string, unknown> = {}) => ({ body: { jsonrpc: "2.0", id: 1, result: { data, metadata } } });
const err = (code: number, mnemonic: string, extra: Record<string, unknown> = {}) => ({ body: { jsonrpc: "2.0", id: 1, error: { code, message: mnemonic, data: { mnemonic, ...extra } } } });
const login = (token: string, expireAt = NOW / 1000 + 3600) => ok({ access_token: token, expire_at: expireAt, app_id: 1 });

const failure = (promise: Promise<unknown>) => rejection(promise, CoMagicError);

describe("the CoMagic JSON-RPC client", () => {
  it("logs in once, puts the token in params, and shares it through the store until shortly before expiry", async () => {
    const { store, items } = memoryStore();
    const { client, sent } = scripted([login("t1"), ok([]), ok([])], undefined, store);
    await client.call("get.calls_report", { limit: 1 });
    await client.call("get.calls_report", { limit: 1 });
    expect(sent.map((s) => s.method)).toEqual(["login.user", "get.calls_report", "get.calls_report"]);
    expect(sent[1]?.params).toEqual({ limit: 1, access_token: "t1" });
    expect([...items.values()][0]).toEqual({ token: { accessToken: "t1", expireAt: NOW / 1000 + 3600 }, ttl: 3540 });

    // Another isolate with the same store does not log in again.
    const second = scripted([ok([])], undefined, store);
    await second.client.call("get.calls_report");
    expect(second.sent.map((s) => s.method)).toEqual(["get.calls_report"]);
  });

  it("accepts `expire` where the documentation shows it instead of `expire_at`", async () => {
    const { store, items } = memoryStore();
    const { client } = scripted([ok({ access_token: "t1", expire: NOW / 1000 + 600 }), ok([])], undefined, store);
    await client.call("get.calls_report");
    expect([...items.values()][0]?.token.expireAt).toBe(NOW / 1000 + 600);
  });

  it("logs in again once when CoMagic says the token expired, and repeats the call", async () => {
    const { client, sent } = scripted([login("t1"), err(-32001, "access_token_expired"), login("t2"), ok(["row"])]);
    expect((await client.call("get.calls_report")).data).toEqual(["row"]);
    expect(sent.map((s) => s.method)).toEqual(["login.user", "get.calls_report", "login.user", "get.calls_report"]);
    expect(sent[3]?.params.access_token).toBe("t2");
    expect(client.loginCount).toBe(2);
  });

  it("does not log in twice in a row when the fresh token is refused too", async () => {
    const { client, sent } = scripted([login("t1"), err(-32001, "access_token_invalid"), login("t2"), err(-32001, "access_token_invalid")]);
    expect((await failure(client.call("start.employee_call"))).mnemonic).toBe("access_token_invalid");
    expect(sent.filter((s) => s.method === "login.user")).toHaveLength(2);
  });

  it("uses an API key as it is, without login.user, and treats its rejection as permanent", async () => {
    const { client, sent } = scripted([err(-32001, "access_token_expired")], { kind: "key", token: "key-1" });
    const error = await failure(client.call("start.employee_call"));
    expect(error.transient).toBe(false);
    expect(sent).toEqual([{ jsonrpc: "2.0", id: 1, method: "start.employee_call", params: { access_token: "key-1" } }]);
  });

  it("waits for the reset CoMagic gives with limit_exceeded", async () => {
    const { client } = scripted([login("t1"), err(-32029, "limit_exceeded", { metadata: { limits: { minute_remaining: 0, minute_reset: 42 } } })]);
    expect(await failure(client.call("start.employee_call"))).toMatchObject({ mnemonic: "limit_exceeded", transient: true, retryAfterSeconds: 42 });
  });

  it("waits for the day limit when that is the one used up", async () => {
    const { client } = scripted([login("t1"), err(-32029, "limit_exceeded", { metadata: { limits: { day_remaining: 0, day_reset: 30_000, minute_remaining: 10, minute_reset: 5 } } })]);
    expect((await failure(client.call("start.employee_call"))).retryAfterSeconds).toBe(30_000);
  });

  it.each([
    ["ip_not_whitelisted", -32003, "Правила и настройки безопасности"],
    ["forbidden", -32003, "rights"],
    ["auth_error", -32001, "COMAGIC_LOGIN"],
    ["date_interval_limit_reached", -32602, "date_interval_limit_reached"],
    ["unexpected_parameters", -32602, "unexpected_parameters"],
  ])("treats %s as permanent and says what to change", async (mnemonic, code, hint) => {
    const replies: Reply[] = mnemonic === "auth_error" ? [err(code, mnemonic)] : [login("t1"), err(code, mnemonic)];
    const error = await failure(scripted(replies).client.call("start.employee_call"));
    expect(error.transient).toBe(false);
    expect(error.message).toContain(hint);
  });

  it("tries a read again in place after internal_error or a 503, but never a write", async () => {
    const read = scripted([login("t1"), err(-32603, "internal_error"), { status: 503, body: "<html>busy</html>" }, ok(["row"])]);
    expect((await read.client.call("get.calls_report")).data).toEqual(["row"]);
    const write = scripted([login("t1"), err(-32603, "internal_error")]);
    expect(await failure(write.client.call("start.employee_call"))).toMatchObject({ mnemonic: "internal_error", transient: true });
    expect(write.sent).toHaveLength(2);
  });

  it.each([
    ["a timeout", Object.assign(new Error("timed out"), { name: "TimeoutError" }), "timeout"],
    ["a network error", new TypeError("fetch failed"), "network_error"],
  ])("reports %s as transient", async (_name, error, mnemonic) => {
    const { client } = scripted([login("t1"), error, error, error]);
    expect(await failure(client.call("get.calls_report"))).toMatchObject({ mnemonic, transient: true });
  });
});

describe("fetchReport", () => {
  it("names the fields, sends CoMagic's date format in the account zone, and reads every page", async () => {
    const page = (n: number, from: number) => Array.from({ length: n }, (_, i) => ({ id: from + i }));
    const { client, sent } = scripted([login("t1"), ok(page(1000, 0), { total_items: 1500 }), ok(page(500, 1000), { total_items: 1500 })]);
    const rows = await fetchReport(client, "get.calls_report", ["id"], z.object({ id: z.number() }), {
      from: new Date("2026-11-24T09:00:00Z"),
      to: new Date("2026-11-24T11:00:00Z"),
      timeZone: "Europe/Moscow",
    });
    expect(rows).toHaveLength(1500);
    expect(sent[1]?.params).toMatchObject({ date_from: "2026-11-24 12:00:00", date_till: "2026-11-24 14:00:00", fields: ["id"], limit: 1000, offset: 0 });
    expect(sent[2]?.params).toMatchObject({ offset: 1000 });
  });
});
