import { describe, expect, it } from "vitest";
import { createSandbox } from "../../sandbox/server";
import { type BitrixClient, type BitrixCommand, type CommandOutcome, createBitrixClient } from "../../worker/bitrix/client";
import { readCurrencyRates } from "../../worker/bitrix/currencies";
import { BitrixError } from "../../worker/bitrix/errors";
import { readStageHistories } from "../../worker/bitrix/stage-history";
import { rejection } from "../helpers/rejection";

/*
 * The deal sync's two Bitrix24 reads, worker/bitrix/stage-history.ts and currencies.ts, against the Bitrix24 sandbox
 * called in-process through the BitrixClient's `fetch` (real `batch` envelopes, both answer shapes of
 * crm.stagehistory.list), and against a stub client for the answers the sandbox does not give. HISTORY is
 * ../shared/reference/loop-docs/api-reference__crm__crm-stage-history-list.txt, PORTALS
 * ../shared/reference/bitrix24/FACTS-portals.md, FACTS ../shared/reference/bitrix24/FACTS.md.
 */

const ORIGIN = "http://sandbox.test";

/** A sandbox portal of the test's own, a client of its webhook, and its control routes. */
function portal() {
  const { app, describe: at } = createSandbox();
  const client = createBitrixClient({ baseUrl: at(ORIGIN).bitrixWebhookUrl, timeoutMs: 5_000, fetch: async (input, init) => app.request(input, init), sleep: async () => {} });
  const control = async (path: string, body: unknown) => {
    const res = await app.request(`${ORIGIN}/_sandbox/${path}`, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify(body) });
    if (!res.ok) throw new Error(`sandbox ${path}: HTTP ${res.status} ${await res.text()}`);
    return (await res.json()) as { id?: number };
  };
  return {
    client,
    control,
    /** A deal a manager made by hand (the control route: no REST budget spent). */
    deal: async (fields: Record<string, unknown> = {}) => String((await control("deals", { fields: { TITLE: "Sofa", ...fields } })).id),
  };
}

/** A client whose `batch` answers each command with `answer`; `call` with `calls[method]`. Counts its requests. */
function stubClient(answer: (command: BitrixCommand) => CommandOutcome, calls: Record<string, unknown> = {}) {
  const asked: string[] = [];
  const client: BitrixClient & { asked: string[] } = {
    asked,
    requestCount: 0,
    async call(method) {
      asked.push(method);
      return calls[method];
    },
    async batch(commands) {
      asked.push("batch");
      return Object.fromEntries(Object.entries(commands).map(([key, command]) => [key, answer(command)]));
    },
  };
  return client;
}

const row = (id: number | string, owner: number | string, stage = "NEW") => ({
  ID: id,
  TYPE_ID: 2,
  OWNER_ID: owner,
  CREATED_TIME: "2026-11-24T12:00:00+03:00",
  CATEGORY_ID: 0,
  STAGE_SEMANTIC_ID: "P",
  STAGE_ID: stage,
});

describe("readStageHistories", () => {
  it("reads each deal's rows oldest first, and an empty history for a deal without rows (HISTORY l.30-31, l.52-58)", async () => {
    const s = portal();
    const [sofa, table] = [await s.deal(), await s.deal({ CATEGORY_ID: 1 })];
    await s.client.call("crm.deal.update", { id: sofa, fields: { STAGE_ID: "PREPARATION" } });
    await s.client.call("crm.deal.update", { id: sofa, fields: { STAGE_ID: "WON" } });
    const before = s.client.requestCount;

    const histories = await readStageHistories(s.client, [sofa, table, "999"]);

    expect(s.client.requestCount - before).toBe(1);
    expect([...histories.keys()]).toEqual([sofa, table, "999"]);
    expect(histories.get(sofa)?.map((r) => [r.TYPE_ID, r.STAGE_ID, r.STAGE_SEMANTIC_ID, r.CATEGORY_ID])).toEqual([
      [1, "NEW", "P", 0],
      [2, "PREPARATION", "P", 0],
      [3, "WON", "S", 0],
    ]);
    expect(histories.get(table)).toEqual([{ ID: 2, TYPE_ID: 1, CREATED_TIME: expect.stringMatching(/\+03:00$/), CATEGORY_ID: 1, STAGE_SEMANTIC_ID: "P", STAGE_ID: "C1:NEW" }]);
    expect(histories.get("999")).toEqual([]);
  });

  it("reads a portal answering with the bare array as one answering with result.items (HISTORY l.48 against l.30-31)", async () => {
    const s = portal();
    const id = await s.deal();
    await s.client.call("crm.deal.update", { id, fields: { STAGE_ID: "LOSE" } });
    const nested = await readStageHistories(s.client, [id]);
    await s.control("bitrix/stage-history/shape", { shape: "array" });
    expect(await readStageHistories(s.client, [id])).toEqual(nested);
    expect(nested.get(id)).toHaveLength(2);
  });

  it("asks one batch request per 50 deals, and a deal's further pages of 50 in the batches after (FACTS l.100)", async () => {
    const s = portal();
    const ids: string[] = [];
    for (let i = 0; i < 60; i += 1) ids.push(await s.deal());
    const busy = ids[0] as string;
    // 120 changes after its creation: 121 rows, three pages.
    for (let i = 0; i < 120; i += 1) {
      await s.control("bitrix/stage-history", { ownerId: busy, stageId: i % 2 ? "EXECUTING" : "PREPARATION", at: new Date(Date.now() + i * 1000).toISOString() });
    }
    const before = s.client.requestCount;

    const histories = await readStageHistories(s.client, ids);

    // 60 first pages (50 + 10 commands), then the busy deal's second page, then its third.
    expect(s.client.requestCount - before).toBe(4);
    const busyIds = histories.get(busy)?.map((r) => r.ID) ?? [];
    expect(busyIds).toHaveLength(121);
    expect(busyIds).toEqual([...busyIds].sort((a, b) => Number(a) - Number(b)));
    expect(new Set(busyIds).size).toBe(121);
    expect(ids.slice(1).every((id) => histories.get(id)?.length === 1)).toBe(true);
  });

  it("reads ids given as strings, as a portal's PHP answers them (fast_bitrix24 tests/real_responses/stagehistory.py)", async () => {
    const client = stubClient(() => ({ ok: true, result: { items: [row("7365", "523", "UC_KW9988")] } }));
    expect((await readStageHistories(client, ["523"])).get("523")).toEqual([
      { ID: 7365, TYPE_ID: 2, CREATED_TIME: "2026-11-24T12:00:00+03:00", CATEGORY_ID: 0, STAGE_SEMANTIC_ID: "P", STAGE_ID: "UC_KW9988" },
    ]);
  });

  it("refuses an answer holding another deal's rows: a filter Bitrix24 did not apply would page through the whole portal", async () => {
    const client = stubClient(() => ({ ok: true, result: [row(1, 7), row(2, 8)] }));
    const error = await rejection(readStageHistories(client, ["7"]), BitrixError);
    expect(error.code).toBe("ERROR_UNEXPECTED_ANSWER");
  });

  it("stops at a next page that repeats the rows already read (a portal ignoring `start`), instead of reading forever", async () => {
    const client = stubClient(() => ({ ok: true, result: Array.from({ length: 50 }, (_, i) => row(i + 1, 7)) }));
    const error = await rejection(readStageHistories(client, ["7"]), BitrixError);
    expect(error.message).toMatch(/repeats rows already read/);
    expect(client.asked).toEqual(["batch", "batch"]);
  });

  it("fails the read with Bitrix24's own error when it refused a deal's command (HISTORY l.64)", async () => {
    const refused = new BitrixError("ENTITY_TYPE_NOT_SUPPORTED", "Entity type 2 is not supported", false, "no");
    const client = stubClient((command) => ((command.params.filter as { OWNER_ID: string }).OWNER_ID === "8" ? { ok: false, error: refused } : { ok: true, result: { items: [] } }));
    expect(await rejection(readStageHistories(client, ["7", "8"]), BitrixError)).toBe(refused);
  });
});

describe("readCurrencyRates", () => {
  it("prices one unit of each currency in the base: AMOUNT / AMOUNT_CNT, so 100 tenge at 18 roubles is 0.18 a tenge (PORTALS l.102)", async () => {
    const s = portal();
    expect(await readCurrencyRates(s.client)).toEqual({ base: "RUB", rates: { RUB: 1, USD: 90, EUR: 100, KZT: 0.18 } });
  });

  it("follows the portal's base currency when an admin changed it (PORTALS l.101-102)", async () => {
    const s = portal();
    await s.control("bitrix/currencies", {
      currencies: [
        { CURRENCY: "USD", AMOUNT: "1.0000", BASE: "Y" },
        { CURRENCY: "RUB", AMOUNT: "1.1000", AMOUNT_CNT: "100" },
      ],
    });
    expect(await readCurrencyRates(s.client)).toEqual({ base: "USD", rates: { USD: 1, RUB: expect.closeTo(0.011, 12) } });
  });

  it("leaves out a rate that does not parse rather than guess it", async () => {
    const s = portal();
    await s.control("bitrix/currencies", {
      currencies: [
        { CURRENCY: "RUB", AMOUNT: "1.0000", BASE: "Y" },
        { CURRENCY: "USD", AMOUNT: "n/a" },
        { CURRENCY: "EUR", AMOUNT: "100.0000", AMOUNT_CNT: "0" },
        { CURRENCY: "KZT", AMOUNT: "" },
        { CURRENCY: "BYN", AMOUNT: "28.5000" },
      ],
    });
    expect(await readCurrencyRates(s.client)).toEqual({ base: "RUB", rates: { RUB: 1, BYN: 28.5 } });
  });

  it("asks crm.currency.base.get only when no row of the list is the base (PORTALS l.101)", async () => {
    const rows = [
      { CURRENCY: "EUR", AMOUNT_CNT: "1", AMOUNT: "1.0000", BASE: "N" },
      { CURRENCY: "USD", AMOUNT_CNT: "1", AMOUNT: "0.9000", BASE: "N" },
    ];
    const without = stubClient(() => ({ ok: true, result: null }), { "crm.currency.list": rows, "crm.currency.base.get": "EUR" });
    expect(await readCurrencyRates(without)).toEqual({ base: "EUR", rates: { EUR: 1, USD: 0.9 } });
    expect(without.asked).toEqual(["crm.currency.list", "crm.currency.base.get"]);

    const withBase = stubClient(() => ({ ok: true, result: null }), { "crm.currency.list": rows.map((r, i) => ({ ...r, BASE: i === 0 ? "Y" : "N" })) });
    expect((await readCurrencyRates(withBase)).base).toBe("EUR");
    expect(withBase.asked).toEqual(["crm.currency.list"]);
  });

  it("refuses a list in another shape than an array of rows", async () => {
    const client = stubClient(() => ({ ok: true, result: null }), { "crm.currency.list": { RUB: "1" } });
    expect((await rejection(readCurrencyRates(client), BitrixError)).code).toBe("ERROR_UNEXPECTED_ANSWER");
  });
});
