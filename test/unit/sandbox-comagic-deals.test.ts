import { describe, expect, it } from "vitest";
import { SANDBOX_ACCOUNT_TIME_ZONE } from "../../sandbox/comagic/calls-report-row";
import { createDataApiSandbox } from "../../sandbox/comagic/data-api";
import type { StoredDeal } from "../../sandbox/comagic/deals";
import { formatComagicDateTime } from "../../worker/domain/comagic-time";

/*
 * The CoMagic funnel and deal stand-in (sandbox/comagic/deals.ts) must be as unkind as CoMagic: each test names the
 * line of ../shared/reference/FACTS-loop.md it holds the sandbox to.
 */

const KEY = "unit-test-key";
const START = Date.parse("2026-11-24T09:00:00Z");
const DAY = 86_400_000;

type Answer = { result?: { data: unknown; metadata: Record<string, unknown> }; error?: { code: number; message: string; data: Record<string, unknown> } };

function sandbox(connected = true) {
  let clock = START;
  const api = createDataApiSandbox({ now: () => clock });
  api.setSettings({ apiKeys: [KEY] });
  const post = (path: string, body: unknown) => api.app.request(path, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify(body) });
  const s = {
    request: async (path: string, init?: RequestInit) => api.app.request(path, init),
    call: async (method: string, params: Record<string, unknown> = {}): Promise<Answer> =>
      (await post("/comagic/dataapi/v2.0", { jsonrpc: "2.0", id: 1, method, params: { access_token: KEY, ...params } })).json(),
    seed: (rows: Record<string, unknown[]>) => post("/_sandbox/comagic/data", rows),
    connect: (body: Record<string, unknown> = { endToEndAnalytics: true }) => Promise.resolve(post("/_sandbox/comagic/deals/settings", body)),
    uploaded: async () => ((await (await api.app.request("/_sandbox/comagic/deals")).json()) as { deals: StoredDeal[] }).deals,
    deal: async (id: string) => (await api.app.request(`/_sandbox/comagic/deals/${id}`)).json() as Promise<StoredDeal>,
    points: async () => ((await (await api.app.request("/_sandbox/comagic/stats")).json()) as { points: { total: number } }).points.total,
    advance(ms: number) {
      clock += ms;
    },
    /** An account wall-clock time `ms` from now. */
    at: (ms = 0) => formatComagicDateTime(new Date(clock + ms), SANDBOX_ACCOUNT_TIME_ZONE),
  };
  return connected ? s.connect().then(() => s) : Promise.resolve(s);
}

const FUNNEL = {
  ext_id: "bitrix24-category-0",
  name: "Sales",
  stages: {
    success: { ext_id: "WON", name: "Won" },
    failed: { ext_id: "LOSE", name: "Lost" },
    in_process: [
      { ext_id: "NEW", name: "New", order: 10 },
      { ext_id: "PREPARATION", name: "Documents", order: 20 },
      { ext_id: "EXECUTING", name: "In progress", order: 30 },
    ],
  },
};

function record(extId: string, stage: string, stageTime: string, created: string, overrides: Record<string, unknown> = {}) {
  return { ext_id: extId, name: `Deal ${extId}`, created_date_time: created, modified_stage_date_time: stageTime, sales_funnel_ext_id: FUNNEL.ext_id, stage_ext_id: stage, ...overrides };
}

const mnemonic = (a: Answer) => a.error?.data.mnemonic;

describe("what the CoMagic admin must switch on first (FACTS-loop §1.1)", () => {
  it("refuses funnel and deal methods with -32008 method_component_disabled until end-to-end analytics is connected", async () => {
    const s = await sandbox(false);
    const refused = await s.call("create.sales_funnel", FUNNEL);
    expect(refused.error?.code).toBe(-32008);
    expect(mnemonic(refused)).toBe("method_component_disabled");
    expect(mnemonic(await s.call("upload.deals_history", { deals: [record("1", "NEW", s.at(-DAY), s.at(-DAY))] }))).toBe("method_component_disabled");
    await s.connect();
    expect((await s.call("create.sales_funnel", FUNNEL)).result?.data).toEqual({ ext_id: FUNNEL.ext_id });
  });

  it("can answer the refusal as tariff_restrictions instead, the other reading §1.1 leaves open", async () => {
    const s = await sandbox(false);
    await s.connect({ refusedAs: "tariff_restrictions" });
    expect(mnemonic(await s.call("get.sales_funnel"))).toBe("tariff_restrictions");
  });
});

describe("sales funnels (FACTS-loop §1.2, §6.7)", () => {
  it("returns the funnel's stages in order, success and failed after the in-process ones (§1.2 10010/10020)", async () => {
    const s = await sandbox();
    await s.call("create.sales_funnel", FUNNEL);
    const answer = await s.call("get.sales_funnel", { filter: { field: "ext_id", operator: "=", value: FUNNEL.ext_id } });
    const [funnel] = (answer.result?.data ?? []) as { stages: { stage_ext_id: string; stage_status: string; stage_order: number }[] }[];
    expect(funnel?.stages.map((st) => [st.stage_ext_id, st.stage_status, st.stage_order])).toEqual([
      ["NEW", "in_process", 10],
      ["PREPARATION", "in_process", 20],
      ["EXECUTING", "in_process", 30],
      ["WON", "success", 10010],
      ["LOSE", "failed", 10020],
    ]);
  });

  it("refuses a second funnel with the same ext_id as duplicate_entity (§6.7)", async () => {
    const s = await sandbox();
    await s.call("create.sales_funnel", FUNNEL);
    expect(mnemonic(await s.call("create.sales_funnel", FUNNEL))).toBe("duplicate_entity");
  });

  it.each([
    ["no in-process stage (§1.2 'Минимум 1')", { ...FUNNEL.stages, in_process: [] }, "data_limit_exceeded"],
    ["101 in-process stages (§1.2 'максимум 100')", { ...FUNNEL.stages, in_process: Array.from({ length: 101 }, (_, i) => ({ ext_id: `S${i}`, name: `S${i}`, order: i })) }, "data_limit_exceeded"],
    ["no failed stage (§1.2 one success and one failed)", { success: FUNNEL.stages.success, in_process: FUNNEL.stages.in_process }, "required_parameter_missed"],
    ["two failed stages as an array (§1.2: an object, not an array)", { ...FUNNEL.stages, failed: [FUNNEL.stages.failed, { ext_id: "APOLOGY", name: "Apology" }] }, "data_type_error"],
    ["an order above 10000 (§1.2)", { ...FUNNEL.stages, in_process: [{ ext_id: "NEW", name: "New", order: 10_001 }] }, "invalid_parameter_value"],
  ])("refuses a funnel with %s", async (_name, stages, expected) => {
    const s = await sandbox();
    expect(mnemonic(await s.call("create.sales_funnel", { ...FUNNEL, stages }))).toBe(expected);
  });

  it("adds a stage with create.sales_funnel_stages and refuses one for an unknown funnel (§1.2)", async () => {
    const s = await sandbox();
    await s.call("create.sales_funnel", FUNNEL);
    expect((await s.call("create.sales_funnel_stages", { sales_funnel_ext_id: FUNNEL.ext_id, ext_id: "INVOICE", name: "Invoice", order: 25 })).result?.data).toEqual({ ext_id: "INVOICE" });
    expect(mnemonic(await s.call("create.sales_funnel_stages", { sales_funnel_ext_id: "nope", ext_id: "X", name: "X", order: 1 }))).toBe("entity_not_found");
  });
});

describe("upload.deals_history (FACTS-loop §1.4, §1.5, §6)", () => {
  async function withFunnel() {
    const s = await sandbox();
    await s.call("create.sales_funnel", FUNNEL);
    return s;
  }

  it("stores a deal's stages in time order and upserts by ext_id: the same stage again is an update (§1.5, §6.3)", async () => {
    const s = await withFunnel();
    const created = s.at(-3 * DAY);
    expect((await s.call("upload.deals_history", { deals: [record("7", "NEW", created, created), record("7", "PREPARATION", s.at(-2 * DAY), created)] })).result?.data).toEqual({});
    await s.call("upload.deals_history", { deals: [record("7", "PREPARATION", s.at(-2 * DAY), created, { revenue: 1500 })] });
    const deal = await s.deal("7");
    expect(deal.history.map((h: StoredDeal["history"][number]) => h.stage_ext_id)).toEqual(["NEW", "PREPARATION"]);
    expect(deal.revenue).toBe(1500);
    expect(await s.uploaded()).toHaveLength(1);
  });

  it("fails the whole request for one invalid record and stores none of the others (§1.5, §6.1)", async () => {
    const s = await withFunnel();
    const created = s.at(-DAY);
    const answer = await s.call("upload.deals_history", {
      deals: [record("1", "NEW", created, created), record("2", "NO_SUCH_STAGE", created, created), record("3", "NEW", created, created)],
    });
    expect(mnemonic(answer)).toBe("entity_not_found");
    // The answer names no record (§1.4: nothing per deal), so a client must find the bad one itself.
    expect(JSON.stringify(answer.error)).not.toMatch(/deals\.\d|\[1\]/);
    expect(await s.uploaded()).toEqual([]);
  });

  it("refuses a stage time earlier than the deal's last uploaded stage, in a later request or in the same one (§1.4, §6.2)", async () => {
    const s = await withFunnel();
    const created = s.at(-3 * DAY);
    await s.call("upload.deals_history", { deals: [record("7", "PREPARATION", s.at(-DAY), created)] });
    expect(mnemonic(await s.call("upload.deals_history", { deals: [record("7", "EXECUTING", s.at(-2 * DAY), created)] }))).toBe("invalid_date_time");
    expect(mnemonic(await s.call("upload.deals_history", { deals: [record("8", "EXECUTING", s.at(-DAY), created), record("8", "NEW", s.at(-2 * DAY), created)] }))).toBe("invalid_date_time");
    expect((await s.deal("7")).stage_ext_id).toBe("PREPARATION");
  });

  it.each([
    ["a creation time in the future (§1.4, §6.2)", (at: (ms?: number) => string) => record("1", "NEW", at(DAY), at(DAY)), "invalid_date_time"],
    ["a closing time before the creation (§1.4, §6.2)", (at: (ms?: number) => string) => record("1", "WON", at(), at(-DAY), { closed_date_time: at(-2 * DAY) }), "invalid_date_time"],
    ["a stage time before the creation (§1.4)", (at: (ms?: number) => string) => record("1", "NEW", at(-2 * DAY), at(-DAY)), "invalid_date_time"],
    ["communication_id without communication_type (§6.2)", (at: (ms?: number) => string) => record("1", "NEW", at(), at(), { communication_id: 5 }), "required_parameter_missed"],
    ["contact_ext_ids without main_contact_ext_id (§6.2)", (at: (ms?: number) => string) => record("1", "NEW", at(), at(), { contact_ext_ids: ["C1"] }), "required_parameter_missed"],
    ["an unknown funnel (§6.2)", (at: (ms?: number) => string) => record("1", "NEW", at(), at(), { sales_funnel_ext_id: "other" }), "entity_not_found"],
  ])("refuses a record with %s", async (_name, make, expected) => {
    const s = await withFunnel();
    expect(mnemonic(await s.call("upload.deals_history", { deals: [make(s.at)] }))).toBe(expected);
  });

  it("refuses more than 1000 records in one request (§1.4 'Лимит 1000 сделок', §6.2)", async () => {
    const s = await withFunnel();
    const deals = Array.from({ length: 1001 }, (_, i) => record(String(i), "NEW", s.at(-DAY), s.at(-DAY)));
    expect(mnemonic(await s.call("upload.deals_history", { deals }))).toBe("data_limit_exceeded");
  });

  it("links a deal to a call from 10 days before it, and silently not to one from 31 days before (§1.5, §6.4)", async () => {
    const s = await withFunnel();
    await s.seed({
      calls: [
        { id: 1, communication_id: 501, start_time: s.at(-11 * DAY) },
        { id: 2, communication_id: 502, start_time: s.at(-32 * DAY) },
      ],
    });
    const created = s.at(-DAY);
    const answer = await s.call("upload.deals_history", {
      deals: [
        record("recent", "NEW", created, created, { communication_id: 501, communication_type: "call" }),
        record("old", "NEW", created, created, { communication_id: 502, communication_type: "call" }),
      ],
    });
    expect(answer.error).toBeUndefined();
    expect((await s.deal("recent")).linked).toEqual({ communication_id: 501, communication_type: "call" });
    const old = await s.deal("old");
    expect(old.linked).toBeNull();
    expect(old.not_linked_reason).toBe("older_than_30_days");
  });

  it("changes a deal's communication only when the stage time advances (§1.5)", async () => {
    const s = await withFunnel();
    await s.seed({ calls: [{ id: 1, communication_id: 501, start_time: s.at(-3 * DAY) }], chats: [{ id: 9, communication_id: 601, date_time: s.at(-3 * DAY) }] });
    const created = s.at(-2 * DAY);
    const t1 = s.at(-DAY);
    await s.call("upload.deals_history", { deals: [record("7", "NEW", t1, created, { communication_id: 501, communication_type: "call" })] });
    await s.call("upload.deals_history", { deals: [record("7", "NEW", t1, created, { communication_id: 601, communication_type: "chat" })] });
    expect((await s.deal("7")).linked?.communication_id).toBe(501);
    await s.call("upload.deals_history", { deals: [record("7", "PREPARATION", s.at(), created, { communication_id: 601, communication_type: "chat" })] });
    expect((await s.deal("7")).linked?.communication_id).toBe(601);
  });

  it("fills skipped in-process stages with is_generated entries (§1.5, §6.3)", async () => {
    const s = await withFunnel();
    await s.call("upload.deals_history", { deals: [record("7", "WON", s.at(), s.at(-DAY), { closed_date_time: s.at() })] });
    const deal = await s.deal("7");
    expect(deal.history.map((h: StoredDeal["history"][number]) => [h.stage_ext_id, h.is_generated])).toEqual([
      ["NEW", true],
      ["PREPARATION", true],
      ["EXECUTING", true],
      ["WON", false],
    ]);
  });

  it("charges one point per successful call whatever its size, none for a refused one (§1.5 'Все операции — 1', §6.6)", async () => {
    const s = await withFunnel();
    const before = await s.points();
    const created = s.at(-DAY);
    await s.call("upload.deals_history", { deals: Array.from({ length: 200 }, (_, i) => record(String(i), "NEW", created, created)) });
    await s.call("upload.deals_history", { deals: [record("x", "NOPE", created, created)] });
    expect((await s.points()) - before).toBe(1);
  });

  it("keeps a deal out of get.deals_history while it is in processing (§1.5, §6.5)", async () => {
    const s = await withFunnel();
    await s.connect({ processingMs: 60_000 });
    await s.call("upload.deals_history", { deals: [record("7", "NEW", s.at(-DAY), s.at(-DAY))] });
    expect((await s.call("get.deals_in_processing")).result?.data).toEqual({ count: 1 });
    expect((await s.call("get.deals_history")).result?.data).toEqual([]);
    s.advance(61_000);
    expect((await s.call("get.deals_history", { fields: ["ext_id", "stage_ext_id"] })).result?.data).toEqual([{ ext_id: "7", stage_ext_id: "NEW" }]);
  });
});

describe("worker/comagic/deals-upload.ts against the sandbox (FACTS-loop §1.2, §1.5, §6.1)", () => {
  async function client() {
    const s = await sandbox();
    let clock = START;
    const { createCoMagicRpcClient } = await import("../../worker/comagic/data-api");
    const api = createCoMagicRpcClient({
      url: "https://sandbox.test/comagic/dataapi/v2.0",
      auth: { kind: "key", token: KEY },
      tokens: { get: async () => null, put: async () => undefined, delete: async () => undefined },
      api: "Data API",
      fetch: ((input: RequestInfo | URL, init?: RequestInit) => s.request(new URL(String(input)).pathname, init)) as typeof fetch,
      now: () => clock,
      sleep: async (ms) => {
        clock += ms;
      },
    });
    return { s, api };
  }

  it("uploads 39 of 40 deals and returns the one invalid deal with CoMagic's reason (§1.5 whole-request failure)", async () => {
    const { s, api } = await client();
    const { ensureSalesFunnel, uploadDeals } = await import("../../worker/comagic/deals-upload");
    const { salesFunnelFromPipeline } = await import("../../worker/domain/deal-history");
    const funnel = salesFunnelFromPipeline({
      categoryId: "0",
      name: "Sales",
      stages: [
        { id: "NEW", name: "New", sort: 10, semantics: "P" },
        { id: "WON", name: "Won", sort: 60, semantics: "S" },
        { id: "LOSE", name: "Lost", sort: 70, semantics: "F" },
        { id: "APOLOGY", name: "Apology", sort: 80, semantics: "F" },
      ],
    });
    expect(await ensureSalesFunnel(api, funnel)).toEqual({ status: "created", addedStages: [] });
    const created = s.at(-DAY);
    const deals = Array.from({ length: 40 }, (_, i) => ({
      dealId: String(i),
      records: [{ ...record(String(i), "NEW", created, created), sales_funnel_ext_id: funnel.ext_id, ...(i === 17 ? { created_date_time: s.at(DAY) } : {}) }],
    }));
    const result = await uploadDeals(api, deals);
    expect(result.rejected).toEqual([{ dealId: "17", mnemonic: "invalid_date_time", reason: expect.stringContaining("invalid_date_time") }]);
    expect(result.sent).toHaveLength(39);
    expect((await s.uploaded()).map((d) => d.ext_id).sort()).toEqual(
      deals
        .map((d) => d.dealId)
        .filter((id) => id !== "17")
        .sort(),
    );
  });

  it("says the funnel cannot be made until end-to-end analytics is connected (§1.1)", async () => {
    const { s, api } = await client();
    await s.connect({ endToEndAnalytics: false });
    const { ensureSalesFunnel } = await import("../../worker/comagic/deals-upload");
    const { salesFunnelFromPipeline } = await import("../../worker/domain/deal-history");
    const funnel = salesFunnelFromPipeline({
      categoryId: "0",
      name: "Sales",
      stages: [
        { id: "NEW", name: "New", sort: 10, semantics: "P" },
        { id: "WON", name: "Won", sort: 20, semantics: "S" },
        { id: "LOSE", name: "Lost", sort: 30, semantics: "F" },
      ],
    });
    expect(await ensureSalesFunnel(api, funnel)).toEqual({ status: "not_connected", mnemonic: "method_component_disabled" });
  });

  it("adds a pipeline's new stage to a funnel that exists already (§1.2 duplicate_entity, create.sales_funnel_stages)", async () => {
    const { api } = await client();
    const { ensureSalesFunnel } = await import("../../worker/comagic/deals-upload");
    const { salesFunnelFromPipeline } = await import("../../worker/domain/deal-history");
    const stages = [
      { id: "NEW", name: "New", sort: 10, semantics: "P" as const },
      { id: "WON", name: "Won", sort: 20, semantics: "S" as const },
      { id: "LOSE", name: "Lost", sort: 30, semantics: "F" as const },
    ];
    await ensureSalesFunnel(api, salesFunnelFromPipeline({ categoryId: "0", name: "Sales", stages }));
    const grown = salesFunnelFromPipeline({ categoryId: "0", name: "Sales", stages: [...stages, { id: "INVOICE", name: "Invoice", sort: 15, semantics: "P" }] });
    expect(await ensureSalesFunnel(api, grown)).toEqual({ status: "updated", addedStages: ["INVOICE"] });
  });
});

describe('a deal\'s employee (FACTS-loop §1.3, §1.4 employee_ext_id "from create.deal_employees")', () => {
  it("refuses a deal naming an employee not made with create.deal_employees, takes it once made, and refuses making one twice", async () => {
    const s = await sandbox();
    await s.call("create.sales_funnel", FUNNEL);
    const deal = record("1", "NEW", s.at(-DAY), s.at(-DAY), { employee_ext_id: "7" });
    expect(mnemonic(await s.call("upload.deals_history", { deals: [deal] }))).toBe("entity_not_found");
    expect((await s.call("create.deal_employees", { ext_id: "7", name: "Maria Sales" })).result?.data).toEqual({ ext_id: "7" });
    expect(mnemonic(await s.call("create.deal_employees", { ext_id: "7", name: "Maria Sales" }))).toBe("duplicate_entity");
    expect((await s.call("upload.deals_history", { deals: [deal] })).error).toBeUndefined();
  });
});
