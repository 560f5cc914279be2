import { describe, expect, it } from "vitest";
import { CoMagicDeferredError, CoMagicError, createCoMagicRpcClient, type CachedToken, type CoMagicAuth, type CoMagicRpcOptions, type TokenStore } from "../../worker/comagic/data-api";
import type { Budget } from "../../worker/domain/comagic-budget";
import type { BudgetStore } from "../../worker/storage/comagic-budget";
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

/** The shared points snapshot, one per API, as D1 keeps it. */
function memoryBudget(initial: Budget[] = []) {
  const items = new Map<string, Budget>(initial.map((b) => [b.api, b]));
  const store: BudgetStore = { get: async (api) => items.get(api) ?? null, put: async (budget) => void items.set(budget.api, budget) };
  return { store, items };
}

function scripted(replies: Reply[], auth: CoMagicAuth = { kind: "login", login: "user", password: "pw" }, tokens = memoryStore().store, extra: Partial<CoMagicRpcOptions> = {}) {
  const sent: { method: string; params: Record<string, unknown> }[] = [];
  const fetchStub = async (_url: unknown, init?: RequestInit) => {
    const body = JSON.parse(String(init?.body)) as { method: string; params: Record<string, unknown> };
    sent.push(body);
    const reply = replies.shift();
    if (!reply) throw new Error(`no scripted reply for ${body.method}`);
    if (reply instanceof Error) throw reply;
    return new Response(typeof reply.body === "string" ? reply.body : JSON.stringify(reply.body), { status: reply.status ?? 200 });
  };
  const client = createCoMagicRpcClient({ url: "https://dataapi.test/v2.0", auth, tokens, api: "Data API", fetch: fetchStub as typeof fetch, now: () => NOW, sleep: async () => {}, ...extra });
  return { client, sent };
}

const ok = (data: unknown, metadata: Record<string, unknown> = {}) => ({ body: { jsonrpc: "2.0", id: 1, result: { data, metadata } } });
const err = (code: number, mnemonic: string, extra: Record<string, unknown> = {}) => ({ body: { jsonrpc: "2.0", id: 1, error: { code, message: mnemonic, data: { mnemonic, ...extra } } } });
const login = (token: string, expireAt = NOW / 1000 + 3600) => ok({ access_token: token, expire_at: expireAt, app_id: 1 });

const failure = (promise: Promise<unknown>) => rejection(promise, CoMagicError);
const deferred = (promise: Promise<unknown>) => rejection(promise, CoMagicDeferredError);

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

  it("logs in once when two reads that started together both find the shared token refused", async () => {
    // A batch's enrichment reads two reports at once: each login.user is a login, and the new token is shared.
    const { store } = memoryStore();
    await store.put("any", { accessToken: "stale", expireAt: NOW / 1000 + 3600 }, 3600);
    const valid = new Set<string>();
    const methods: string[] = [];
    const server = async (_url: unknown, init?: RequestInit) => {
      const { method, params } = JSON.parse(String(init?.body)) as { method: string; params: Record<string, unknown> };
      methods.push(method);
      await new Promise((r) => setTimeout(r, 5));
      if (method === "login.user") {
        const token = `t${valid.size + 1}`;
        valid.add(token);
        return new Response(JSON.stringify(login(token).body));
      }
      const reply = valid.has(String(params.access_token)) ? ok([method]) : err(-32001, "access_token_expired");
      return new Response(JSON.stringify(reply.body));
    };
    const keyed: TokenStore = { get: async () => store.get("any"), put: (_k, t, ttl) => store.put("any", t, ttl), delete: () => store.delete("any") };
    const client = createCoMagicRpcClient({
      url: "https://dataapi.test/v2.0",
      auth: { kind: "login", login: "user", password: "pw" },
      tokens: keyed,
      api: "Data API",
      fetch: server as typeof fetch,
      now: () => NOW,
      sleep: async () => {},
    });
    const answers = await Promise.all([client.call("get.visitor_sessions_report"), client.call("get.communications_report")]);
    expect(answers.map((a) => a.data)).toEqual([["get.visitor_sessions_report"], ["get.communications_report"]]);
    expect(methods.filter((m) => m === "login.user")).toHaveLength(1);
  });

  it("takes the token another client stored instead of logging in again when its own is refused", async () => {
    // Two queue batches in flight, each its own client: the first to find the token dead logs in and stores a new one.
    const { store, items } = memoryStore();
    await scripted([login("t1"), ok([])], undefined, store).client.call("get.calls_report");
    const held = scripted([ok([]), err(-32001, "access_token_expired"), ok(["row"])], undefined, store);
    await held.client.call("get.calls_report");
    const key = [...items.keys()][0] as string;
    await store.put(key, { accessToken: "t2", expireAt: NOW / 1000 + 3600 }, 3540);
    expect((await held.client.call("get.calls_report")).data).toEqual(["row"]);
    expect(held.sent.map((s) => [s.method, s.params.access_token])).toEqual([
      ["get.calls_report", "t1"],
      ["get.calls_report", "t1"],
      ["get.calls_report", "t2"],
    ]);
    expect(items.get(key)?.token.accessToken).toBe("t2");
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

// CoMagic's points: metadata.limits in every answer (comagic/docs/data_api.txt:127-144, 579-605; error answers carry
// them in error.data.metadata, 173-197), limit_exceeded naming its window in data.params.limit_type (169, 225).
const FIXTURE_LIMITS = { day_limit: 750, day_remaining: 741, day_reset: 31_492, minute_limit: 150, minute_remaining: 149, minute_reset: 52 };
const dataBudget = (remaining: number, resetSeconds = 3_600): Budget => ({
  api: "Data API",
  seenAt: NOW - 60_000,
  windows: { day: { limit: 750, remaining, resetAt: NOW + resetSeconds * 1000 } },
});
const limited = (limitType: string | undefined, limits?: Record<string, number>) =>
  err(-32029, "limit_exceeded", { ...(limitType ? { params: { limit_type: limitType, limit_max_value: 750 } } : {}), ...(limits ? { metadata: { limits } } : {}) });

describe("the client's Data API points", () => {
  it("records the points a successful answer reports (comagic/FACTS.md §1.4 fixture) as the API's snapshot", async () => {
    const budget = memoryBudget();
    const { client } = scripted([login("t1"), ok([], { total_items: 0, limits: FIXTURE_LIMITS })], undefined, undefined, { budget: budget.store });
    await client.call("get.calls_report");
    expect(budget.items.get("Data API")).toEqual({
      api: "Data API",
      seenAt: NOW,
      windows: { day: { limit: 750, remaining: 741, resetAt: NOW + 31_492_000 }, minute: { limit: 150, remaining: 149, resetAt: NOW + 52_000 } },
    });
  });

  it("records the points an error answer reports in error.data.metadata", async () => {
    const budget = memoryBudget();
    const { client } = scripted([login("t1"), err(-32602, "filter_prohibited", { metadata: { limits: { ...FIXTURE_LIMITS, day_remaining: 700 } } })], undefined, undefined, {
      budget: budget.store,
    });
    await failure(client.call("get.calls_report"));
    expect(budget.items.get("Data API")?.windows.day?.remaining).toBe(700);
  });

  it.each([
    ["empty limits", {}],
    ["limits that are not an object", "n/a"],
  ])("answers normally and keeps the last snapshot when an answer has %s", async (_name, limits) => {
    const budget = memoryBudget([dataBudget(500)]);
    const { client } = scripted([login("t1"), ok(["row"], { limits })], undefined, undefined, { budget: budget.store });
    expect((await client.call("get.calls_report")).data).toEqual(["row"]);
    expect(budget.items.get("Data API")).toEqual(dataBudget(500));
  });

  it("skips a limit field it cannot read and keeps the rest", async () => {
    const budget = memoryBudget();
    const { client } = scripted([login("t1"), ok([], { limits: { day_limit: "750", day_remaining: 10, day_reset: 60 } })], undefined, undefined, { budget: budget.store });
    await client.call("get.calls_report");
    expect(budget.items.get("Data API")?.windows).toEqual({ day: { limit: null, remaining: 10, resetAt: NOW + 60_000 } });
  });

  it("reads the hour window newer methods report instead of day and minute", async () => {
    const budget = memoryBudget();
    const { client } = scripted([login("t1"), ok([], { limits: { hour_limit: 100_000, hour_remaining: 99_749, hour_reset: 58 } })], undefined, undefined, { budget: budget.store });
    await client.call("get.person_details");
    expect(budget.items.get("Data API")?.windows).toEqual({ hour: { limit: 100_000, remaining: 99_749, resetAt: NOW + 58_000 } });
  });

  it("waits for the day's reset when limit_exceeded names the day, though the minute also looks spent", async () => {
    const { client } = scripted([login("t1"), limited("day", { day_reset: 30_000, minute_remaining: 0, minute_reset: 5 })]);
    expect(await deferred(client.call("get.calls_report"))).toMatchObject({ mnemonic: "limit_exceeded", transient: true, retryAfterSeconds: 30_000, window: "day" });
  });

  it.each([
    ["day", 900],
    ["minute", 60],
    ["hour", 3_600],
  ])("without a reset in the answer, a spent %s is waited %i s", async (limitType, seconds) => {
    const { client } = scripted([login("t1"), limited(limitType)]);
    expect((await deferred(client.call("start.employee_call"))).retryAfterSeconds).toBe(seconds);
  });

  it("refuses a deferrable read without a request while 9% of the day's points are left, until the day's reset", async () => {
    const budget = memoryBudget([dataBudget(67, 7_200)]);
    const { client, sent } = scripted([login("t1"), ok([])], undefined, undefined, { budget: budget.store, priority: "deferrable" });
    const error = await deferred(client.call("get.visitor_sessions_report"));
    expect(error).toMatchObject({ mnemonic: "budget_day_reserve", retryAfterSeconds: 7_200, window: "day" });
    expect(error.message).toContain("67 of 750 points left");
    expect(sent).toEqual([]);
  });

  it("still sends a feed read while 9% of the day's points are left", async () => {
    const budget = memoryBudget([dataBudget(67)]);
    const { client, sent } = scripted([login("t1"), ok(["row"], { limits: { ...FIXTURE_LIMITS, day_remaining: 66 } })], undefined, undefined, { budget: budget.store, priority: "feed" });
    expect((await client.call("get.calls_report")).data).toEqual(["row"]);
    expect(sent.map((s) => s.method)).toEqual(["login.user", "get.calls_report"]);
    expect(budget.items.get("Data API")?.windows.day?.remaining).toBe(66);
  });

  it("stops deferrable work once its own answers reach the last tenth of the day", async () => {
    const budget = memoryBudget();
    const at = (remaining: number) => ok([], { limits: { ...FIXTURE_LIMITS, day_remaining: remaining } });
    const { client, sent } = scripted([login("t1"), at(76), at(75), ok([])], undefined, undefined, { budget: budget.store, priority: "deferrable" });
    await client.call("get.visitor_sessions_report");
    await client.call("get.visitor_sessions_report");
    expect((await deferred(client.call("get.visitor_sessions_report"))).mnemonic).toBe("budget_day_reserve");
    expect(sent).toHaveLength(3);
  });

  it("lets deferrable work go again once the day's reset has passed", async () => {
    const budget = memoryBudget([{ ...dataBudget(0), windows: { day: { limit: 750, remaining: 0, resetAt: NOW - 1 } } }]);
    const { client } = scripted([login("t1"), ok(["row"])], undefined, undefined, { budget: budget.store, priority: "deferrable" });
    expect((await client.call("get.visitor_sessions_report")).data).toEqual(["row"]);
  });

  it("holds back other clients' deferrable work after a limit_exceeded that came without limits", async () => {
    const budget = memoryBudget();
    const feed = scripted([login("t1"), limited("day")], undefined, undefined, { budget: budget.store });
    await deferred(feed.client.call("get.calls_report"));
    const later = scripted([ok([])], undefined, undefined, { budget: budget.store, priority: "deferrable" });
    expect(await deferred(later.client.call("get.visitor_sessions_report"))).toMatchObject({ mnemonic: "budget_paused", retryAfterSeconds: 900 });
    expect(later.sent).toEqual([]);
  });

  it("keeps the Call API's points apart from the Data API's", async () => {
    const budget = memoryBudget([dataBudget(10)]);
    const tokens = memoryStore().store;
    const callApi = createCoMagicRpcClient({
      url: "https://callapi.test/v4.0",
      auth: { kind: "key", token: "k" },
      tokens,
      api: "Call API",
      budget: budget.store,
      fetch: (async () => new Response(JSON.stringify({ jsonrpc: "2.0", id: 1, result: { data: {}, metadata: { limits: FIXTURE_LIMITS } } }))) as unknown as typeof fetch,
      now: () => NOW,
    });
    await callApi.call("start.employee_call");
    expect(budget.items.get("Call API")?.windows.day?.remaining).toBe(741);
    expect(budget.items.get("Data API")).toEqual(dataBudget(10));
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
