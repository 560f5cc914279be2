import { describe, expect, it } from "vitest";
import { bitrixDate, ControlError, Portal, RestError } from "../../sandbox/bitrix/portal";
import { createSandbox } from "../../sandbox/server";

/*
 * The Bitrix24 portal stand-in's stage journal and currencies (issue #25): the Portal class is called directly, its
 * clock in the test's hands. Each test names the line it holds the sandbox to: HISTORY is
 * ../shared/reference/loop-docs/api-reference__crm__crm-stage-history-list.txt, PORTALS
 * ../shared/reference/bitrix24/FACTS-portals.md, SOURCE Bitrix24's crm module as the code index holds it
 * (crm/lib/history/stagehistory/abstractstagehistory.php, id 15212350949).
 */

const START = Date.parse("2026-11-24T09:00:00Z");
const HOUR = 3_600_000;

type Row = Record<string, unknown>;
type Page = { result: unknown; total?: number; next?: number };

function portal() {
  let clock = START;
  const p = new Portal(() => new Date(clock));
  return {
    p,
    advance(ms: number) {
      clock += ms;
    },
    at: (ms = 0) => bitrixDate(new Date(START + ms)),
    dealAdd: (fields: Row = {}) => Number(p.call("crm.deal.add", { fields: { TITLE: "Sofa", ...fields } }).result),
    dealUpdate: (id: number, fields: Row) => p.call("crm.deal.update", { id, fields }),
    list: (params: Row = {}): Page => p.call("crm.stagehistory.list", { entityTypeId: 2, ...params }),
    /** The rows of a list answer in the default shape (`result.items`). */
    rows: (params: Row = {}): Row[] => (p.call("crm.stagehistory.list", { entityTypeId: 2, ...params }).result as { items: Row[] }).items,
  };
}

function restError(run: () => unknown): RestError {
  try {
    run();
  } catch (error) {
    if (error instanceof RestError) return error;
    throw error;
  }
  throw new Error("no RestError was thrown");
}

describe("the stage journal a deal leaves", () => {
  it("writes a deal's creation as TYPE_ID 1 with its first stage, at the portal's clock with its offset (HISTORY l.53, l.56)", () => {
    const s = portal();
    const sofa = s.dealAdd();
    const wholesale = s.dealAdd({ CATEGORY_ID: 1 });
    expect(s.rows()).toEqual([
      { ID: 1, TYPE_ID: 1, OWNER_ID: sofa, CREATED_TIME: s.at(), CATEGORY_ID: 0, STAGE_SEMANTIC_ID: "P", STAGE_ID: "NEW" },
      { ID: 2, TYPE_ID: 1, OWNER_ID: wholesale, CREATED_TIME: s.at(), CATEGORY_ID: 1, STAGE_SEMANTIC_ID: "P", STAGE_ID: "C1:NEW" },
    ]);
    expect(s.at()).toBe("2026-11-24T12:00:00+03:00");
  });

  it("writes a move to a stage in progress as TYPE_ID 2 and to a final stage as 3, with the stage's semantics (HISTORY l.53-54, l.58)", () => {
    const s = portal();
    const id = s.dealAdd();
    s.advance(HOUR);
    s.dealUpdate(id, { STAGE_ID: "PREPARATION" });
    s.advance(HOUR);
    s.dealUpdate(id, { STAGE_ID: "LOSE" });
    s.advance(HOUR);
    s.dealUpdate(id, { STAGE_ID: "WON" });
    expect(s.rows().map((r) => [r.TYPE_ID, r.STAGE_ID, r.STAGE_SEMANTIC_ID, r.CREATED_TIME])).toEqual([
      [1, "NEW", "P", s.at()],
      [2, "PREPARATION", "P", s.at(HOUR)],
      [3, "LOSE", "F", s.at(2 * HOUR)],
      [3, "WON", "S", s.at(3 * HOUR)],
    ]);
  });

  it("writes no row for an update that leaves the stage where it was, nor for a stage the latest row names (SOURCE hasTransitionOccurred, isTransitionRegistered)", () => {
    const s = portal();
    const id = s.dealAdd();
    s.dealUpdate(id, { TITLE: "Sofa, blue" });
    s.dealUpdate(id, { STAGE_ID: "NEW", OPPORTUNITY: "1000" });
    expect(s.rows()).toHaveLength(1);
    // A row the deal's own stage does not match (written late): an update that moves nothing still writes none.
    s.p.addStageHistory({ ownerId: id, stageId: "PREPARATION", at: new Date(START) });
    s.dealUpdate(id, { TITLE: "Sofa, red" });
    expect(s.rows()).toHaveLength(2);
    // The deal moves to the stage the latest row already names: registered, no second row.
    s.dealUpdate(id, { STAGE_ID: "PREPARATION" });
    expect(s.rows().map((r) => r.STAGE_ID)).toEqual(["NEW", "PREPARATION"]);
  });

  it("writes a deal added straight into a final stage as TYPE_ID 3, not 1 (SOURCE registerItemCreate)", () => {
    const s = portal();
    s.dealAdd({ STAGE_ID: "WON" });
    expect(s.rows()).toMatchObject([{ TYPE_ID: 3, STAGE_ID: "WON", STAGE_SEMANTIC_ID: "S" }]);
  });

  it("writes a move to another funnel as TYPE_ID 5, the deal landing on that funnel's first stage (HISTORY l.54)", () => {
    const s = portal();
    const id = s.dealAdd();
    s.advance(HOUR);
    s.dealUpdate(id, { CATEGORY_ID: 1 });
    expect(s.rows().at(-1)).toEqual({ ID: 2, TYPE_ID: 5, OWNER_ID: id, CREATED_TIME: s.at(HOUR), CATEGORY_ID: 1, STAGE_SEMANTIC_ID: "P", STAGE_ID: "C1:NEW" });
    expect(s.p.call("crm.deal.get", { id }).result).toMatchObject({ CATEGORY_ID: "1", STAGE_ID: "C1:NEW" });
  });

  it("drops a stage that is not in the deal's funnel, writing no row (PORTALS l.30)", () => {
    const s = portal();
    const id = s.dealAdd();
    s.dealUpdate(id, { STAGE_ID: "C1:WON" });
    expect(s.p.call("crm.deal.get", { id }).result).toMatchObject({ STAGE_ID: "NEW" });
    expect(s.rows()).toHaveLength(1);
  });

  it("deletes a deal's rows with the deal (SOURCE registerItemDelete)", () => {
    const s = portal();
    const gone = s.dealAdd();
    const kept = s.dealAdd();
    s.dealUpdate(gone, { STAGE_ID: "WON" });
    s.p.call("crm.deal.delete", { id: gone });
    expect(s.rows().map((r) => r.OWNER_ID)).toEqual([kept]);
  });

  it("keeps a lead's journal apart under entityTypeId 1, with STATUS_ID and STATUS_SEMANTIC_ID and no funnel (HISTORY l.14, l.57)", () => {
    const s = portal();
    const lead = Number(s.p.call("crm.lead.add", { fields: { TITLE: "Call" } }).result);
    s.p.call("crm.lead.update", { id: lead, fields: { STATUS_ID: "JUNK" } });
    s.dealAdd();
    expect(s.rows({ entityTypeId: 1 })).toEqual([
      { ID: 1, TYPE_ID: 1, OWNER_ID: lead, CREATED_TIME: s.at(), STATUS_SEMANTIC_ID: "P", STATUS_ID: "NEW" },
      { ID: 2, TYPE_ID: 3, OWNER_ID: lead, CREATED_TIME: s.at(), STATUS_SEMANTIC_ID: "F", STATUS_ID: "JUNK" },
    ]);
    expect(s.rows().map((r) => r.ID)).toEqual([3]);
  });
});

describe("crm.stagehistory.list", () => {
  it("nests the rows in result.items by default, as the sample does (HISTORY l.30-31, l.43)", () => {
    const s = portal();
    s.dealAdd();
    expect(s.list()).toEqual({ result: { items: [expect.objectContaining({ ID: 1 })] }, total: 1 });
  });

  it("answers with the bare array on a portal switched to it, as the field table reads (HISTORY l.48)", () => {
    const s = portal();
    s.dealAdd();
    s.p.setStageHistoryShape("array");
    expect(s.list()).toEqual({ result: [expect.objectContaining({ ID: 1 })], total: 1 });
    s.p.reset();
    expect(s.p.stageHistoryShape).toBe("items");
  });

  it("pages 50 rows from `start`, with total and next as every list method (HISTORY l.20; FACTS.md l.100)", () => {
    const s = portal();
    const id = s.dealAdd();
    for (let i = 0; i < 60; i += 1) s.dealUpdate(id, { STAGE_ID: i % 2 === 0 ? "PREPARATION" : "EXECUTING" });
    const first = s.list({ filter: { OWNER_ID: id } });
    expect(first).toMatchObject({ total: 61, next: 50 });
    expect((first.result as { items: Row[] }).items.map((r) => r.ID)).toEqual(Array.from({ length: 50 }, (_, i) => i + 1));
    const last = s.list({ filter: { OWNER_ID: id }, start: 50 });
    expect(last.next).toBeUndefined();
    expect((last.result as { items: Row[] }).items.map((r) => r.ID)).toEqual(Array.from({ length: 11 }, (_, i) => i + 51));
  });

  it("filters by OWNER_ID given as a number, a string, an array (any of) or with @ (IN), and by time (HISTORY l.17)", () => {
    const s = portal();
    const [a, b, c] = [s.dealAdd(), s.dealAdd(), s.dealAdd()];
    s.advance(HOUR);
    s.dealUpdate(b, { STAGE_ID: "WON" });
    const owners = (filter: Row) => s.rows({ filter }).map((r) => r.OWNER_ID);
    expect(owners({ OWNER_ID: a })).toEqual([a]);
    expect(owners({ OWNER_ID: String(b) })).toEqual([b, b]);
    expect(owners({ OWNER_ID: [a, c] })).toEqual([a, c]);
    expect(owners({ "@OWNER_ID": [String(c), String(b)] })).toEqual([b, c, b]);
    expect(owners({ ">=CREATED_TIME": s.at(HOUR) })).toEqual([b]);
  });

  it("orders by ID descending when asked, and selects only the fields named (HISTORY l.16, l.19, l.24)", () => {
    const s = portal();
    const id = s.dealAdd();
    s.dealUpdate(id, { STAGE_ID: "PREPARATION" });
    expect(s.rows({ order: { ID: "DESC" }, select: ["ID", "STAGE_ID", "CREATED_TIME"] })).toEqual([
      { ID: 2, STAGE_ID: "PREPARATION", CREATED_TIME: s.at() },
      { ID: 1, STAGE_ID: "NEW", CREATED_TIME: s.at() },
    ]);
  });

  it("answers an empty list for old and new invoices, which the method covers and this portal has none of (HISTORY l.14)", () => {
    const s = portal();
    s.dealAdd();
    expect(s.list({ entityTypeId: 5 })).toEqual({ result: { items: [] }, total: 0 });
    expect(s.list({ entityTypeId: "31" })).toEqual({ result: { items: [] }, total: 0 });
  });

  it.each([
    ["no entityTypeId (Bitrix24's action binder, [inference])", { entityTypeId: undefined }, "100", /Could not find value for parameter \{entityTypeId\}/],
    ["an entityTypeId that is no integer", { entityTypeId: "deal" }, "100", /Should be value of type int/],
    ["a contact (HISTORY l.64)", { entityTypeId: 3 }, "ENTITY_TYPE_NOT_SUPPORTED", /Entity type CONTACT is not supported/],
    ["an entity type that does not exist (HISTORY l.64)", { entityTypeId: 999 }, "ENTITY_TYPE_NOT_SUPPORTED", /Entity type 999 is not supported/],
    ["a filter on a field the rows lack (HISTORY l.65)", { filter: { TITLE: "Sofa" } }, "INVALID_ARG_VALUE", /Invalid filter: field 'TITLE' is not allowed in filter/],
    ["a deal's field in a lead's filter (HISTORY l.57-58, l.65)", { entityTypeId: 1, filter: { STAGE_ID: "NEW" } }, "INVALID_ARG_VALUE", /field 'STAGE_ID' is not allowed/],
    ["an order on a field the rows lack (HISTORY l.66)", { order: { DATE_CREATE: "ASC" } }, "INVALID_ARG_VALUE", /Invalid order: field 'DATE_CREATE' is not allowed in order/],
    ["an order direction other than ASC or DESC (HISTORY l.66)", { order: { ID: "UP" } }, "INVALID_ARG_VALUE", /allowed sort directions are ASC, DESC/],
  ])("refuses %s with HTTP 400", (_, params, code, description) => {
    const s = portal();
    s.dealAdd();
    const error = restError(() => s.list(params));
    expect({ status: error.status, code: error.code }).toEqual({ status: 400, code });
    expect(error.description).toMatch(description);
  });
});

describe("the portal's currencies", () => {
  it("lists RUB as the base, USD, EUR and KZT priced per 100 tenge, every field a string (PORTALS l.102)", () => {
    const { p } = portal();
    const rows = p.call("crm.currency.list", {}).result as Record<string, unknown>[];
    expect(rows.map((r) => [r.CURRENCY, r.AMOUNT_CNT, r.AMOUNT, r.BASE])).toEqual([
      ["RUB", "1", "1.0000", "Y"],
      ["USD", "1", "90.0000", "N"],
      ["EUR", "1", "100.0000", "N"],
      ["KZT", "100", "18.0000", "N"],
    ]);
    for (const row of rows) {
      expect(Object.keys(row).sort()).toEqual(["AMOUNT", "AMOUNT_CNT", "BASE", "CURRENCY", "DATE_UPDATE", "DECIMALS", "DEC_POINT", "FORMAT_STRING", "FULL_NAME", "LID", "SORT", "THOUSANDS_SEP"]);
      expect(Object.values(row).every((v) => typeof v === "string")).toBe(true);
    }
  });

  it("sorts by the docs' lower-case order keys and answers total 0, as its docs say it always does (crm-currency-list.md)", () => {
    const { p } = portal();
    const answer = p.call("crm.currency.list", { order: { currency: "desc" } });
    expect((answer.result as { CURRENCY: string }[]).map((r) => r.CURRENCY)).toEqual(["USD", "RUB", "KZT", "EUR"]);
    expect(answer.total).toBe(0);
  });

  it("names the base currency as a bare string in crm.currency.base.get (PORTALS l.101)", () => {
    const { p } = portal();
    expect(p.call("crm.currency.base.get", {})).toEqual({ result: "RUB" });
    p.setCurrencies([
      { CURRENCY: "USD", AMOUNT: "1.0000", BASE: "Y" },
      { CURRENCY: "RUB", AMOUNT: "0.0110" },
    ]);
    expect(p.call("crm.currency.base.get", {})).toEqual({ result: "USD" });
  });

  it("puts a deal added without CURRENCY_ID in the base currency, whichever it is (PORTALS l.32, l.103)", () => {
    const s = portal();
    expect(s.p.call("crm.deal.get", { id: s.dealAdd() }).result).toMatchObject({ CURRENCY_ID: "RUB" });
    s.p.setCurrencies([{ CURRENCY: "KZT", AMOUNT: "1.0000", BASE: "Y" }]);
    expect(s.p.call("crm.deal.get", { id: s.dealAdd() }).result).toMatchObject({ CURRENCY_ID: "KZT" });
  });

  it("replaces the list as a whole, filling the fields not given, and refuses a list without exactly one base", () => {
    const s = portal();
    s.p.setCurrencies([
      { CURRENCY: "RUB", AMOUNT: "1.0000", BASE: "Y" },
      { CURRENCY: "BYN", AMOUNT: "28.1000" },
    ]);
    expect(s.p.call("crm.currency.list", {}).result).toEqual([
      expect.objectContaining({ CURRENCY: "RUB", AMOUNT_CNT: "1", SORT: "100", BASE: "Y" }),
      expect.objectContaining({ CURRENCY: "BYN", AMOUNT_CNT: "1", SORT: "200", BASE: "N", DATE_UPDATE: s.at() }),
    ]);
    expect(() => s.p.setCurrencies([{ CURRENCY: "RUB", AMOUNT: "1" }])).toThrow(ControlError);
    expect(() =>
      s.p.setCurrencies([
        { CURRENCY: "RUB", AMOUNT: "1", BASE: "Y" },
        { CURRENCY: "USD", AMOUNT: "1", BASE: "Y" },
      ]),
    ).toThrow(/exactly one/);
    s.p.reset();
    expect((s.p.call("crm.currency.list", {}).result as unknown[]).length).toBe(4);
  });
});

describe("the sandbox's controls", () => {
  it("adds a backdated row after every row there is, the deal staying where it is (a late write as a reader meets it)", () => {
    const s = portal();
    const id = s.dealAdd();
    s.advance(2 * HOUR);
    s.dealUpdate(id, { STAGE_ID: "WON" });
    const late = s.p.addStageHistory({ ownerId: id, stageId: "EXECUTING", at: new Date(START + HOUR) });
    expect(late).toBe(3);
    expect(s.rows().at(-1)).toEqual({ ID: 3, TYPE_ID: 2, OWNER_ID: id, CREATED_TIME: s.at(HOUR), CATEGORY_ID: 0, STAGE_SEMANTIC_ID: "P", STAGE_ID: "EXECUTING" });
    expect(s.p.call("crm.deal.get", { id }).result).toMatchObject({ STAGE_ID: "WON" });
    s.p.addStageHistory({ ownerId: id, stageId: "APOLOGY", at: new Date(START) });
    expect(s.rows().at(-1)).toMatchObject({ TYPE_ID: 3, STAGE_SEMANTIC_ID: "F" });
    s.p.addStageHistory({ ownerId: id, stageId: "C1:LOSE", at: new Date(START), typeId: 5 });
    expect(s.rows().at(-1)).toMatchObject({ TYPE_ID: 5, CATEGORY_ID: 1, STAGE_SEMANTIC_ID: "F" });
    expect(() => s.p.addStageHistory({ ownerId: 99, stageId: "NEW", at: new Date(START) })).toThrow(/no deal 99/);
    expect(() => s.p.addStageHistory({ ownerId: id, stageId: "NOPE", at: new Date(START) })).toThrow(/no funnel has the stage NOPE/);
  });

  it("backdates a deal's DATE_CREATE and DATE_MODIFY, its creation row moving along (PORTALS l.38: dates with offset)", () => {
    const s = portal();
    const id = s.dealAdd();
    s.dealUpdate(id, { STAGE_ID: "PREPARATION" });
    const created = new Date(START - 48 * HOUR);
    s.p.setDealDates(id, { DATE_CREATE: created, DATE_MODIFY: new Date(START - HOUR) });
    expect(s.p.call("crm.deal.get", { id }).result).toMatchObject({ DATE_CREATE: bitrixDate(created), DATE_MODIFY: s.at(-HOUR) });
    expect(s.rows().map((r) => r.CREATED_TIME)).toEqual([bitrixDate(created), s.at()]);
    expect(() => s.p.setDealDates(99, { DATE_CREATE: created })).toThrow(ControlError);
  });

  it("serves the controls per portal under /_sandbox/bitrix/…, answering 400 with the reason for a bad body", async () => {
    const { app } = createSandbox({ portals: ["a"] });
    const post = async (path: string, body: unknown) => {
      const res = await app.request(path, { method: "POST", headers: { "content-type": "application/json" }, body: typeof body === "string" ? body : JSON.stringify(body) });
      return { status: res.status, body: (await res.json()) as Record<string, unknown> };
    };
    const deal = (await post("/p/a/_sandbox/deals", { fields: { TITLE: "Sofa" } })).body.id;
    expect(await post("/p/a/_sandbox/bitrix/stage-history", { ownerId: deal, stageId: "WON", at: "2026-11-20T10:00:00+03:00" })).toEqual({ status: 201, body: { id: 2 } });
    expect(await post("/p/a/_sandbox/bitrix/stage-history/shape", { shape: "array" })).toEqual({ status: 200, body: { ok: true, shape: "array" } });
    expect(await post("/p/a/_sandbox/bitrix/deals/1/dates", { DATE_CREATE: "2026-11-01T09:00:00Z" })).toMatchObject({ status: 200, body: { DATE_CREATE: "2026-11-01T12:00:00+03:00" } });
    expect(await post("/p/a/_sandbox/bitrix/currencies", { currencies: [{ CURRENCY: "USD", AMOUNT: "1", BASE: "Y" }] })).toMatchObject({ status: 200, body: { ok: true } });
    // The root portal is another portal: none of that reached it.
    expect(await post("/_sandbox/bitrix/deals/1/dates", { DATE_CREATE: "2026-11-01T09:00:00Z" })).toEqual({ status: 400, body: { error: "no deal 1" } });

    const refused = [
      await post("/p/a/_sandbox/bitrix/stage-history", { ownerId: deal, stageId: "WON", at: "2026-11-20 10:00" }),
      await post("/p/a/_sandbox/bitrix/stage-history", { ownerId: deal, stageId: "WON", at: "2026-11-20T10:00:00Z", typeId: 4 }),
      await post("/p/a/_sandbox/bitrix/stage-history", { ownerId: 42, stageId: "WON", at: "2026-11-20T10:00:00Z" }),
      await post("/p/a/_sandbox/bitrix/stage-history/shape", { shape: "result" }),
      await post("/p/a/_sandbox/bitrix/deals/1/dates", {}),
      await post("/p/a/_sandbox/bitrix/deals/x/dates", { DATE_CREATE: "2026-11-01T09:00:00Z" }),
      await post("/p/a/_sandbox/bitrix/currencies", { currencies: [{ CURRENCY: "USD", AMOUNT: "1", BASE: "Y", RATE: "1" }] }),
      await post("/p/a/_sandbox/bitrix/currencies", { currencies: [{ CURRENCY: "USD", AMOUNT: "1" }] }),
      await post("/p/a/_sandbox/bitrix/currencies", "{not json"),
    ];
    expect(refused.map((r) => r.status)).toEqual(Array(refused.length).fill(400));
    expect(refused.map((r) => r.body.error)).toEqual([
      expect.stringMatching(/Invalid ISO datetime[\s\S]*→ at at/),
      expect.stringMatching(/typeId/),
      "no deal 42",
      expect.stringMatching(/shape/),
      expect.stringMatching(/DATE_CREATE, DATE_MODIFY or both/),
      expect.stringMatching(/positive integer/),
      expect.stringMatching(/RATE/),
      expect.stringMatching(/exactly one currency must be the base/),
      "the body is not JSON",
    ]);
  });
});
