import { parse } from "qs";
import { describe, expect, it } from "vitest";
import { createBitrixClient } from "../../worker/bitrix/client";
import { BitrixError } from "../../worker/bitrix/errors";
import { encodeBitrixQuery } from "../../worker/bitrix/query-string";
import { RequestBudgetError } from "../../worker/bitrix/errors";
import { rejection } from "../helpers/rejection";

type Reply = { status: number; body: unknown } | Error;

/** A fetch that plays back replies in order and records what was sent. */
function scripted(...replies: Reply[]) {
  const sent: { url: string; body: Record<string, unknown> }[] = [];
  const fetchStub = async (url: string | URL | Request, init?: RequestInit) => {
    sent.push({ url: String(url), body: JSON.parse(String(init?.body)) });
    const reply = replies.shift();
    if (!reply) throw new Error("no more scripted replies");
    if (reply instanceof Error) throw reply;
    return new Response(typeof reply.body === "string" ? reply.body : JSON.stringify(reply.body), { status: reply.status });
  };
  const client = createBitrixClient({ baseUrl: "https://p.bitrix24.ru/rest/1/code/", timeoutMs: 1000, fetch: fetchStub as typeof fetch, sleep: async () => {} });
  return { client, sent };
}

const failure = (promise: Promise<unknown>) => rejection(promise, BitrixError);

describe("BitrixClient.call", () => {
  it("posts JSON to <webhook base><method>.json and returns result", async () => {
    const { client, sent } = scripted({ status: 200, body: { result: 3465, time: {} } });
    expect(await client.call("crm.lead.add", { fields: { TITLE: "x" } })).toBe(3465);
    expect(sent).toEqual([{ url: "https://p.bitrix24.ru/rest/1/code/crm.lead.add.json", body: { fields: { TITLE: "x" } } }]);
  });

  it("keeps the description of an error with an empty code, as legacy crm.* methods send", async () => {
    const { client } = scripted({ status: 400, body: { error: "", error_description: "Access denied." } });
    const error = await failure(client.call("crm.lead.add", {}));
    expect(error).toMatchObject({ transient: false });
    expect(error.message).toContain("Access denied.");
  });

  it("waits and repeats a request refused with QUERY_LIMIT_EXCEEDED", async () => {
    const { client, sent } = scripted({ status: 503, body: { error: "QUERY_LIMIT_EXCEEDED", error_description: "Too many requests" } }, { status: 200, body: { result: true } });
    expect(await client.call("crm.lead.update", { id: 1 })).toBe(true);
    expect(sent).toHaveLength(2);
  });

  it("does not repeat a write that failed with 500, since Bitrix may have done it", async () => {
    const { client, sent } = scripted({ status: 500, body: { error: "INTERNAL_SERVER_ERROR", error_description: "" } });
    expect(await failure(client.call("crm.lead.add", {}))).toMatchObject({ transient: true, applied: "unknown" });
    expect(sent).toHaveLength(1);
  });

  it.each([
    ["a network error", new TypeError("fetch failed"), "NETWORK_ERROR"],
    ["a timeout", Object.assign(new Error("timed out"), { name: "TimeoutError" }), "TIMEOUT"],
    ["HTML from a proxy", { status: 502, body: "<html>Bad gateway</html>" }, "ERROR_UNEXPECTED_ANSWER"],
  ])("reports %s as transient", async (_name, reply, code) => {
    const { client } = scripted(reply as Reply);
    expect(await failure(client.call("crm.lead.add"))).toMatchObject({ code, transient: true });
  });

  it.each([
    ["NO_AUTH_FOUND", 401],
    ["expired_token", 401],
    ["insufficient_scope", 403],
    ["OPERATION_TIME_LIMIT", 429],
  ])("waits minutes, not seconds, after %s", async (code, status) => {
    const { client } = scripted({ status, body: { error: code, error_description: "" } });
    const error = await failure(client.call("crm.lead.list"));
    expect(error.transient).toBe(true);
    expect(error.retryAfterSeconds).toBeGreaterThanOrEqual(60);
  });
});

describe("BitrixClient.batch", () => {
  it("sends query-string commands and maps each result and error, with [] as an empty map", async () => {
    const { client, sent } = scripted({
      status: 200,
      body: { result: { result: { a: 5 }, result_error: { b: { error: "", error_description: "Not found" } }, result_total: [], result_next: [], result_time: [] } },
    });
    const out = await client.batch({ a: { method: "crm.lead.add", params: { fields: { PHONE: [{ VALUE: "+7912" }] } } }, b: { method: "crm.lead.update", params: { id: 9 } } }, { readOnly: false });
    expect(sent[0]?.body).toEqual({ halt: 0, cmd: { a: "crm.lead.add?fields[PHONE][0][VALUE]=%2B7912", b: "crm.lead.update?id=9" } });
    expect(out.a).toEqual({ ok: true, result: 5 });
    expect(out.b).toMatchObject({ ok: false, error: { transient: true } });
  });

  it("treats an empty-code sub-command error other than not-found as permanent", async () => {
    const { client } = scripted({ status: 200, body: { result: { result: [], result_error: { a: { error: "", error_description: "Access denied." } } } } });
    const out = await client.batch({ a: { method: "crm.lead.add", params: {} } }, { readOnly: false });
    expect(out.a).toMatchObject({ ok: false, error: { transient: false } });
  });

  it("gives every command the error when the whole request fails", async () => {
    const { client } = scripted({ status: 500, body: { error: "INTERNAL_SERVER_ERROR", error_description: "" } });
    const out = await client.batch({ a: { method: "crm.lead.add", params: {} }, b: { method: "crm.lead.add", params: {} } }, { readOnly: false });
    expect(out.a).toMatchObject({ ok: false, error: { code: "INTERNAL_SERVER_ERROR" } });
    expect(out.b).toMatchObject({ ok: false, error: { code: "INTERNAL_SERVER_ERROR" } });
  });

  it("repeats a read-only batch after a 500", async () => {
    const { client, sent } = scripted({ status: 500, body: { error: "INTERNAL_SERVER_ERROR" } }, { status: 200, body: { result: { result: { a: [] }, result_error: [] } } });
    const out = await client.batch({ a: { method: "crm.lead.list", params: {} } }, { readOnly: true });
    expect(out.a).toEqual({ ok: true, result: [] });
    expect(sent).toHaveLength(2);
  });

  it("splits more than 50 commands into several requests", async () => {
    const ok = (keys: string[]) => ({ status: 200, body: { result: { result: Object.fromEntries(keys.map((k) => [k, true])), result_error: [] } } });
    const keys = Array.from({ length: 60 }, (_, i) => `c${i}`);
    const { client, sent } = scripted(ok(keys.slice(0, 50)), ok(keys.slice(50)));
    const out = await client.batch(Object.fromEntries(keys.map((k) => [k, { method: "crm.lead.get", params: { id: 1 } }])), { readOnly: true });
    expect(sent.map((s) => Object.keys(s.body.cmd as object).length)).toEqual([50, 10]);
    expect(Object.values(out).every((o) => o.ok)).toBe(true);
  });
});

describe("BitrixClient with a request budget", () => {
  /** A budget that grants at once (or refuses with `acquireError`) and logs, with the requests, what happened in order. */
  function budgeted(acquireError: Error | null, ...replies: Reply[]) {
    const log: string[] = [];
    const budget = {
      acquire: async (n = 1) => {
        log.push(`acquire(${n})`);
        if (acquireError) throw acquireError;
      },
      refused: async () => void log.push("refused"),
    };
    const fetchStub = async (url: string | URL | Request) => {
      log.push(`POST ${String(url).split("/").pop()}`);
      const reply = replies.shift();
      if (!reply || reply instanceof Error) throw reply ?? new Error("no more scripted replies");
      return new Response(JSON.stringify(reply.body), { status: reply.status });
    };
    const client = createBitrixClient({ baseUrl: "https://p.bitrix24.ru/rest/1/code/", timeoutMs: 1000, fetch: fetchStub as typeof fetch, sleep: async () => {}, budget });
    return { client, log };
  }
  const ok = (keys: string[]) => ({ status: 200, body: { result: { result: Object.fromEntries(keys.map((k) => [k, true])), result_error: [] } } });

  it("takes one permit before every HTTP request, a batch of 60 commands being two", async () => {
    const keys = Array.from({ length: 60 }, (_, i) => `c${i}`);
    const { client, log } = budgeted(null, { status: 200, body: { result: 1 } }, ok(keys.slice(0, 50)), ok(keys.slice(50)));
    await client.call("crm.lead.get", { id: 1 });
    await client.batch(Object.fromEntries(keys.map((k) => [k, { method: "crm.lead.get", params: { id: 1 } }])), { readOnly: true });
    expect(log).toEqual(["acquire(1)", "POST crm.lead.get.json", "acquire(1)", "POST batch.json", "acquire(1)", "POST batch.json"]);
  });

  it("tells the budget when Bitrix24 refuses with QUERY_LIMIT_EXCEEDED anyway, and takes a new permit to repeat", async () => {
    const { client, log } = budgeted(null, { status: 503, body: { error: "QUERY_LIMIT_EXCEEDED", error_description: "Too many requests" } }, { status: 200, body: { result: 7 } });
    expect(await client.call("crm.lead.add", {})).toBe(7);
    expect(log).toEqual(["acquire(1)", "POST crm.lead.add.json", "refused", "acquire(1)", "POST crm.lead.add.json"]);
  });

  it("sends nothing and does not repeat in place when the budget gives no permit in time", async () => {
    const { client, log } = budgeted(new RequestBudgetError("p.bitrix24.ru", 60_000, 30));
    expect(await failure(client.call("crm.lead.add", {}))).toMatchObject({ code: "QUERY_LIMIT_EXCEEDED", transient: true, applied: "no", retryAfterSeconds: 30 });
    expect(log).toEqual(["acquire(1)"]);
  });
});

describe("encodeBitrixQuery", () => {
  it("round-trips through a PHP-style parser (qs) with nested arrays, plus signs and Cyrillic", () => {
    const params = {
      fields: { TITLE: "Звонок: +7 912 & co", PHONE: [{ VALUE: "+79123456789", VALUE_TYPE: "WORK" }], UTM_TERM: "a=b?c#d" },
      filter: { "@ID": ["1", "2"], ORIGINATOR_ID: "comagic" },
      params: { REGISTER_SONET_EVENT: "Y" },
    };
    expect(parse(encodeBitrixQuery(params), { depth: 20 })).toEqual(params);
  });

  it("leaves out null and undefined, as http_build_query does", () => {
    expect(encodeBitrixQuery({ a: null, b: undefined, c: true, d: 0 })).toBe("c=1&d=0");
  });
});
