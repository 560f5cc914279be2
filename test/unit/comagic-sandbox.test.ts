import { existsSync, readdirSync, readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";
import { SANDBOX_ACCOUNT_TIME_ZONE } from "../../sandbox/comagic/calls-report-row";
import { createDataApiSandbox, type DataApiSettings, type PointControls } from "../../sandbox/comagic/data-api";
import { formatComagicDateTime } from "../../worker/domain/comagic-time";

/*
 * The CoMagic Data API stand-in is what the worker's tests meet instead of CoMagic, so it must be as unkind as
 * CoMagic: each test names the reference line it holds the sandbox to. `RD/` is
 * ../shared/reference/comagic/docs/, `R/` ../shared/reference/comagic/.
 */

const KEY = "unit-test-key";
const START = Date.parse("2026-11-24T09:00:00Z");

type Answer = { result?: { data: Record<string, unknown>[]; metadata: Record<string, unknown> }; error?: { code: number; message: string; data: Record<string, unknown> } };

/** A fresh sandbox on a clock the test moves, with an API key (no login needed). */
function sandbox(settings: Partial<DataApiSettings> & PointControls = {}) {
  let clock = START;
  const api = createDataApiSandbox({ now: () => clock });
  api.setSettings({ apiKeys: [KEY], ...settings });
  const post = (path: string, body: unknown) => api.app.request(path, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify(body) });
  const rpc = async (method: string, params: Record<string, unknown>): Promise<Answer> => (await post("/comagic/dataapi/v2.0", { jsonrpc: "2.0", id: 1, method, params })).json();
  return {
    rpc,
    call: (method: string, params: Record<string, unknown> = {}) => rpc(method, { access_token: KEY, ...params }),
    seed: (rows: Record<string, unknown[]>) => post("/_sandbox/comagic/data", rows),
    settings: (body: Partial<DataApiSettings> & PointControls) => post("/_sandbox/comagic/settings", body),
    reset: () => post("/_sandbox/comagic/reset", {}),
    stats: async () => (await api.app.request("/_sandbox/comagic/stats")).json() as Promise<{ points: { total: number; methods: Record<string, number> }; methods: Record<string, number> }>,
    advance(ms: number) {
      clock += ms;
    },
    /** A report time (account wall clock) `ms` from the sandbox's now. */
    at: (ms = 0) => formatComagicDateTime(new Date(clock + ms), SANDBOX_ACCOUNT_TIME_ZONE),
  };
}

const DAY_WINDOW = { date_from: "2026-11-24 00:00:00", date_till: "2026-11-24 23:59:59" };

const mnemonic = (answer: Answer) => answer.error?.data.mnemonic;
const ids = (answer: Answer) => answer.result?.data.map((row) => row.id);

function chat(id: number, overrides: Record<string, unknown> = {}) {
  return { id, status: "succeed", initiator: "visitor", date_time: "2026-11-24 11:00:00", chat_channel_type: "whatsapp", communication_id: id + 1000, visitor_id: 7001, ...overrides };
}

function request(id: number, overrides: Record<string, unknown> = {}) {
  return {
    id,
    date_time: "2026-11-24 11:00:00",
    text: "Call me back",
    form_name: "Callback",
    status: "processing",
    visitor_phone_number: 79123456789,
    visitor_email: "a@example.ru",
    visitor_name: "Anna",
    ...overrides,
  };
}

describe("the sandbox's field tables are the reference's", () => {
  const reference = fileURLToPath(new URL("../../../shared/reference/comagic/samples/", import.meta.url));
  const copies = fileURLToPath(new URL("../../sandbox/comagic/fields/", import.meta.url));
  // The reference sits beside the repository on the project's machines, not in a clone: nothing to compare there.
  it.skipIf(!existsSync(reference))("sandbox/comagic/fields/*.tsv are verbatim copies of R/samples/fields_get_*_report.tsv", () => {
    const files = readdirSync(copies);
    expect(files.length).toBeGreaterThanOrEqual(5);
    for (const file of files) expect(readFileSync(`${copies}${file}`, "utf8"), file).toBe(readFileSync(`${reference}${file}`, "utf8"));
  });
});

describe("get.chats_report (RD/data_api__report__get_chats_report.txt, R/samples/fields_get_chats_report.tsv)", () => {
  it("returns the table's default fields when `fields` is omitted, an empty array as [] (tsv default_in_response; R/FACTS.md:26)", async () => {
    const s = sandbox();
    await s.seed({ chats: [chat(1)] });
    const answer = await s.call("get.chats_report", DAY_WINDOW);
    // R/FACTS.md §2.4 lists the same defaults.
    expect(Object.keys(answer.result?.data[0] ?? {})).toEqual([
      "id",
      "status",
      "initiator",
      "date_time",
      "duration",
      "answer_time",
      "communication_id",
      "chat_ad_url",
      "is_group_chat",
      "is_transfer",
      "release_cause",
      "employee_id",
      "employee_raiting",
      "site_id",
      "campaign_id",
      "visitor_phone_number",
      "visitor_id",
      "visitor_ids",
    ]);
    expect(answer.result?.data[0]).toMatchObject({ id: 1, status: "succeed", visitor_ids: [], employee_id: null });
  });

  it("returns named fields that are no defaults (chat_channel_type l.51-74, communication_page_url l.45) and refuses a field it lacks or an array's member (RD/data_api.txt:635-639)", async () => {
    const s = sandbox();
    await s.seed({ chats: [chat(1, { communication_page_url: "https://shop.example.ru/" })] });
    expect((await s.call("get.chats_report", { ...DAY_WINDOW, fields: ["id", "chat_channel_type", "communication_page_url"] })).result?.data).toEqual([
      { id: 1, chat_channel_type: "whatsapp", communication_page_url: "https://shop.example.ru/" },
    ]);
    // No email field in the chats report (design brief §0.5), and tag_name is a member of `tags` (l.115-123).
    for (const field of ["visitor_email", "tag_name"]) {
      const answer = await s.call("get.chats_report", { ...DAY_WINDOW, fields: ["id", field] });
      expect(answer.error).toMatchObject({ code: -32602, data: { mnemonic: "unexpected_parameters", field: `fields.${field}` } });
    }
  });

  it("selects chats by their start, date_time, between date_from and date_till, which are both required (l.23-24, l.41)", async () => {
    const s = sandbox();
    await s.seed({ chats: [chat(1, { date_time: "2026-11-23 23:59:59" }), chat(2), chat(3, { date_time: "2026-11-25 00:00:00" })] });
    expect(ids(await s.call("get.chats_report", DAY_WINDOW))).toEqual([2]);
    expect((await s.call("get.chats_report", { date_from: DAY_WINDOW.date_from })).error?.data).toMatchObject({ mnemonic: "required_parameter_missed", field: "date_till" });
  });

  it("filters on id, communication_id and chat_channel_type, and refuses date_time, which is not filterable (l.30, l.41, l.46, l.73; RD/data_api.txt:318-322)", async () => {
    const s = sandbox();
    await s.seed({ chats: [chat(1), chat(2, { chat_channel_type: "comagic" }), chat(3)] });
    expect(ids(await s.call("get.chats_report", { ...DAY_WINDOW, filter: { field: "chat_channel_type", operator: "=", value: "comagic" } }))).toEqual([2]);
    expect(ids(await s.call("get.chats_report", { ...DAY_WINDOW, filter: { field: "communication_id", operator: "in", value: [1001, 1003] } }))).toEqual([1, 3]);
    const refused = await s.call("get.chats_report", { ...DAY_WINDOW, filter: { field: "date_time", operator: "=", value: "2026-11-24 11:00:00" } });
    expect(refused.error).toMatchObject({ code: -32602, message: "Filter by parameter is prohibited", data: { mnemonic: "filter_prohibited" } });
  });

  it("refuses a parameter the method does not take, such as another report's include_tech_offline_messages (RD/data_api.txt:240; l.23-24)", async () => {
    const s = sandbox();
    expect(mnemonic(await s.call("get.chats_report", { ...DAY_WINDOW, include_tech_offline_messages: true }))).toBe("unexpected_parameters");
  });
});

describe("get.offline_messages_report (RD/data_api__report__get_offline_messages_report.txt, R/samples/fields_get_offline_messages_report.tsv)", () => {
  it("hides technical requests unless include_tech_offline_messages is true, and no field tells them apart (l.25)", async () => {
    const s = sandbox();
    await s.seed({ offline_messages: [request(1), request(2, { tech: true })] });
    expect(ids(await s.call("get.offline_messages_report", DAY_WINDOW))).toEqual([1]);
    expect(ids(await s.call("get.offline_messages_report", { ...DAY_WINDOW, include_tech_offline_messages: false }))).toEqual([1]);
    const all = await s.call("get.offline_messages_report", { ...DAY_WINDOW, include_tech_offline_messages: true });
    expect(ids(all)).toEqual([1, 2]);
    expect(all.result?.data[1]).not.toHaveProperty("tech");
    expect(mnemonic(await s.call("get.offline_messages_report", { ...DAY_WINDOW, fields: ["id", "tech"] }))).toBe("unexpected_parameters");
    expect(mnemonic(await s.call("get.offline_messages_report", { ...DAY_WINDOW, include_tech_offline_messages: "yes" }))).toBe("data_type_error");
  });

  it("dates requests by date_time, which is returned only when named (l.32; tsv l.3), with the contact the visitor left (l.104-106)", async () => {
    const s = sandbox();
    await s.seed({ offline_messages: [request(1), request(2, { date_time: "2026-11-25 08:00:00" })] });
    const defaults = await s.call("get.offline_messages_report", DAY_WINDOW);
    expect(defaults.result?.data).toHaveLength(1);
    expect(defaults.result?.data[0]).not.toHaveProperty("date_time");
    expect(defaults.result?.data[0]).toMatchObject({ id: 1, text: "Call me back", visitor_phone_number: 79123456789, visitor_email: "a@example.ru", visitor_name: "Anna" });
    expect((await s.call("get.offline_messages_report", { ...DAY_WINDOW, fields: ["id", "date_time", "form_name"] })).result?.data).toEqual([
      { id: 1, date_time: "2026-11-24 11:00:00", form_name: "Callback" },
    ]);
    // date_time is not filterable either (l.32).
    expect(mnemonic(await s.call("get.offline_messages_report", { ...DAY_WINDOW, filter: { field: "date_time", operator: "=", value: "x" } }))).toBe("filter_prohibited");
  });
});

describe("get.chat_messages_report (RD/data_api__report__get_chat_messages_report.txt)", () => {
  const messages = [
    { id: 12, chat_id: 2, date_time: "2026-11-24 11:00:05", text: "hello", source: "visitor" },
    { id: 11, chat_id: 1, date_time: "2026-11-24 11:00:02", text: "hi", source: "visitor" },
    { id: 13, chat_id: 1, date_time: "2026-11-24 11:01:00", text: "Anna, +7 912 345-67-89", source: "form_text" },
    { id: 14, chat_id: 3, date_time: "2026-11-24 11:02:00", text: "other", source: "operator" },
    { id: 15, chat_id: 1, date_time: "2026-10-01 10:00:00", text: "long ago", source: "visitor" },
  ];

  it("reads the messages of many chats in one request by chat_ids, without dates, in the order they were sent (l.25-26, l.58)", async () => {
    const s = sandbox();
    await s.seed({ chat_messages: messages });
    expect(ids(await s.call("get.chat_messages_report", { chat_ids: [1, 2] }))).toEqual([15, 11, 12, 13]);
    expect(ids(await s.call("get.chat_messages_report", { chat_id: 3 }))).toEqual([14]);
  });

  it("reads by dates, alone or together with ids (l.27-32)", async () => {
    const s = sandbox();
    await s.seed({ chat_messages: messages });
    expect(ids(await s.call("get.chat_messages_report", DAY_WINDOW))).toEqual([11, 12, 13, 14]);
    expect(ids(await s.call("get.chat_messages_report", { ...DAY_WINDOW, chat_ids: [1] }))).toEqual([11, 13]);
  });

  it("refuses a request with neither ids nor dates, dates more than 30 days apart, and chat_ids that is no array (l.23-31)", async () => {
    const s = sandbox();
    expect((await s.call("get.chat_messages_report", {})).error?.data).toMatchObject({ mnemonic: "required_parameter_missed" });
    expect(mnemonic(await s.call("get.chat_messages_report", { date_from: "2026-10-01 00:00:00", date_till: "2026-11-24 00:00:00" }))).toBe("date_interval_limit_reached");
    expect(mnemonic(await s.call("get.chat_messages_report", { chat_ids: [1], date_from: "2026-10-01 00:00:00", date_till: "2026-11-24 00:00:00" }))).toBe("date_interval_limit_reached");
    expect(mnemonic(await s.call("get.chat_messages_report", { chat_ids: 1 }))).toBe("data_type_error");
  });
});

describe("get.visitors (RD/data_api__person__get_visitors.txt)", () => {
  it("returns name, phones, emails and usernames of the ids asked, for one point however many (l.12, l.20, l.26-30)", async () => {
    const s = sandbox();
    await s.seed({ visitors: [{ id: 7001, name: "Anna", emails: ["a@example.ru"] }, { id: 7002, name: "Boris", phones: ["79123456789"], usernames: ["boris"] }, { id: 7003 }] });
    const answer = await s.call("get.visitors", { ids: [7001, 7002, 9999] });
    expect(answer.result?.data).toEqual([
      { id: 7001, name: "Anna", phones: [], emails: ["a@example.ru"], usernames: [] },
      { id: 7002, name: "Boris", phones: ["79123456789"], emails: [], usernames: ["boris"] },
    ]);
    expect(answer.result?.metadata.limits).toMatchObject({ day_remaining: 99_999 });
    expect((await s.stats()).points.methods["get.visitors"]).toBe(1);
  });

  it("requires ids as an array and takes no other parameter (l.17-20; RD/data_api.txt:238-240)", async () => {
    const s = sandbox();
    expect((await s.call("get.visitors", {})).error?.data).toMatchObject({ mnemonic: "required_parameter_missed", field: "ids" });
    expect(mnemonic(await s.call("get.visitors", { ids: 7001 }))).toBe("data_type_error");
    expect(mnemonic(await s.call("get.visitors", { ids: [7001], fields: ["id"] }))).toBe("unexpected_parameters");
  });
});

describe("filters (RD/data_api.txt:303-518)", () => {
  it("takes the filterable fields from the tables for every report: visits refuse id and date_time, contacts refuse ua_client_id (fields_get_visitor_sessions_report.tsv:2-3, fields_get_communications_report.tsv:7)", async () => {
    const s = sandbox();
    for (const field of ["id", "date_time"]) expect(mnemonic(await s.call("get.visitor_sessions_report", { ...DAY_WINDOW, filter: { field, operator: "=", value: 1 } }))).toBe("filter_prohibited");
    expect(mnemonic(await s.call("get.communications_report", { ...DAY_WINDOW, filter: { field: "ua_client_id", operator: "=", value: "x" } }))).toBe("filter_prohibited");
    // start_time is sortable but not filterable (R/FACTS.md §2.1).
    expect(mnemonic(await s.call("get.calls_report", { ...DAY_WINDOW, filter: { field: "start_time", operator: "=", value: "x" } }))).toBe("filter_prohibited");
    expect(mnemonic(await s.call("get.communications_report", { ...DAY_WINDOW, filter: { field: "communication_type", operator: "in", value: ["chat", "offline_message"] } }))).toBeUndefined();
  });

  it("checks every leaf of an and/or tree, and a field the report lacks is unexpected_parameters (l.240, l.316, l.323)", async () => {
    const s = sandbox();
    const tree = (leaf: Record<string, unknown>) => ({ ...DAY_WINDOW, filter: { filters: [{ field: "visitor_id", operator: "=", value: 1 }, leaf], condition: "or" } });
    expect(mnemonic(await s.call("get.visitor_sessions_report", tree({ field: "date_time", operator: "=", value: "x" })))).toBe("filter_prohibited");
    expect(mnemonic(await s.call("get.visitor_sessions_report", tree({ field: "no_such_field", operator: "=", value: "x" })))).toBe("unexpected_parameters");
  });

  it("selects rows with =, != (null included, l.497), in and nested and/or trees (l.345-491, l.501-513)", async () => {
    const s = sandbox();
    await s.seed({ chats: [chat(1, { visitor_id: 7001 }), chat(2, { visitor_id: 7002, status: "lost" }), chat(3, { visitor_id: null }), chat(4, { visitor_id: 7004 })] });
    const select = async (filter: unknown) => ids(await s.call("get.chats_report", { ...DAY_WINDOW, filter }));
    expect(await select({ field: "visitor_id", operator: "=", value: 7001 })).toEqual([1]);
    expect(await select({ field: "visitor_id", operator: "=", value: null })).toEqual([3]);
    expect(await select({ field: "visitor_id", operator: "!=", value: 7001 })).toEqual([2, 3, 4]);
    expect(await select({ field: "visitor_id", operator: "in", value: [7002, 7004] })).toEqual([2, 4]);
    expect(
      await select({
        filters: [
          {
            filters: [
              { field: "visitor_id", operator: "=", value: 7001 },
              { field: "visitor_id", operator: "=", value: 7002 },
            ],
            condition: "or",
          },
          { field: "status", operator: "!=", value: "lost" },
        ],
        condition: "and",
      }),
    ).toEqual([1]);
    expect(mnemonic(await s.call("get.chats_report", { ...DAY_WINDOW, filter: { field: "visitor_id", operator: "in", value: 7001 } }))).toBe("invalid_parameter_value");
  });

  it("refuses `in` on the methods set to refuse it, as invalid_parameter_value or filter_prohibited, while an or-tree still selects (l.513: 'Доступно не для всех методов')", async () => {
    const s = sandbox({ inRefused: ["get.calls_report"] });
    await s.seed({
      calls: [
        { id: 1, start_time: "2026-11-24 10:00:00" },
        { id: 2, start_time: "2026-11-24 10:05:00" },
      ],
    });
    const inFilter = { ...DAY_WINDOW, filter: { field: "id", operator: "in", value: [1, 2] } };
    expect((await s.call("get.calls_report", inFilter)).error).toMatchObject({ code: -32602, data: { mnemonic: "invalid_parameter_value", field: "filter.operator" } });
    const orTree = { filters: [1, 2].map((value) => ({ field: "id", operator: "=", value })), condition: "or" };
    expect(ids(await s.call("get.calls_report", { ...DAY_WINDOW, filter: orTree }))).toEqual([1, 2]);
    // Other methods still take it.
    expect(mnemonic(await s.call("get.chats_report", { ...DAY_WINDOW, filter: { field: "id", operator: "in", value: [1] } }))).toBeUndefined();
    await s.settings({ inRefusedAs: "filter_prohibited" });
    expect(mnemonic(await s.call("get.calls_report", inFilter))).toBe("filter_prohibited");
  });

  it("sorts only on sortable fields (l.520-534; chats tsv: status sortable, communication_id not)", async () => {
    const s = sandbox();
    await s.seed({ chats: [chat(1, { status: "succeed" }), chat(2, { status: "lost", date_time: "2026-11-24 12:00:00" })] });
    expect(ids(await s.call("get.chats_report", { ...DAY_WINDOW, sort: [{ field: "status", order: "asc" }] }))).toEqual([2, 1]);
    expect(mnemonic(await s.call("get.chats_report", { ...DAY_WINDOW, sort: [{ field: "communication_id" }] }))).toBe("sort_prohibited");
  });
});

describe("report lag (R/FACTS-calls.md:55-56: no source states one, [UNCERTAIN])", () => {
  it("keeps each row out of its report until that report's lag has passed since the row's own time, per report", async () => {
    const s = sandbox({ reportLagMs: { chats: 60_000, offline_messages: 120_000 } });
    await s.seed({ chats: [chat(1, { date_time: s.at(-30_000) })], offline_messages: [request(1, { date_time: s.at(-30_000) })], chat_messages: [{ id: 1, chat_id: 1, date_time: s.at(-30_000) }] });
    const window = { date_from: s.at(-3_600_000), date_till: s.at(3_600_000) };
    const read = async () => [ids(await s.call("get.chats_report", window)), ids(await s.call("get.offline_messages_report", window)), ids(await s.call("get.chat_messages_report", window))];
    // Messages have no lag set: at once.
    expect(await read()).toEqual([[], [], [1]]);
    s.advance(30_000);
    expect(await read()).toEqual([[1], [], [1]]);
    s.advance(60_000);
    expect(await read()).toEqual([[1], [1], [1]]);
  });

  it("counts a call's lag from its start_time, while callsReportLagMs still counts from when it was seeded", async () => {
    const s = sandbox({ reportLagMs: { calls: 60_000 } });
    await s.seed({
      calls: [
        { id: 1, start_time: s.at(-120_000) },
        { id: 2, start_time: s.at(-10_000) },
      ],
    });
    const window = { date_from: s.at(-3_600_000), date_till: s.at(3_600_000) };
    expect(ids(await s.call("get.calls_report", window))).toEqual([1]);
    s.advance(50_000);
    expect(ids(await s.call("get.calls_report", window))).toEqual([1, 2]);
    await s.settings({ callsReportLagMs: 5_000 });
    await s.seed({ calls: [{ id: 3, start_time: s.at(-200_000) }] });
    expect(ids(await s.call("get.calls_report", window))).toEqual([1, 2]);
    s.advance(5_000);
    expect(ids(await s.call("get.calls_report", window))).toEqual([3, 1, 2]);
  });

  it("leaves a call still going on out of get.calls_report unless include_ongoing_calls, with no finish_time yet (R/FACTS-calls.md:53)", async () => {
    const s = sandbox();
    await s.seed({ calls: [{ id: 1, start_time: s.at(-30_000), finish_time: s.at(60_000) }] });
    const window = { ...DAY_WINDOW, fields: ["id", "finish_time"] };
    expect(ids(await s.call("get.calls_report", window))).toEqual([]);
    expect((await s.call("get.calls_report", { ...window, include_ongoing_calls: true })).result?.data).toEqual([{ id: 1, finish_time: null }]);
    s.advance(60_000);
    expect((await s.call("get.calls_report", window)).result?.data).toEqual([{ id: 1, finish_time: s.at(0) }]);
  });
});

describe("points (RD/data_api.txt:127-150, 173-225; R/FACTS.md:101-117)", () => {
  it("answers metadata.limits with every success: the day's and the minute's points, and seconds until each resets (l.135-144, l.597-604)", async () => {
    const s = sandbox({ dayLimit: 750, minuteLimit: 150 });
    s.advance(8_000);
    const answer = await s.call("get.chats_report", DAY_WINDOW);
    expect(answer.result?.metadata).toEqual({
      total_items: 0,
      limits: { day_limit: 750, day_remaining: 749, day_reset: 86_392, minute_limit: 150, minute_remaining: 149, minute_reset: 52 },
    });
  });

  it("charges only successful requests: a refused filter, an unknown method and a bad token cost nothing (l.129)", async () => {
    const s = sandbox();
    await s.call("get.chats_report", { ...DAY_WINDOW, filter: { field: "date_time", operator: "=", value: "x" } });
    await s.call("get.nothing", {});
    await s.call("get.chats_report", { ...DAY_WINDOW, access_token: "wrong" });
    expect((await s.stats()).points).toEqual({ total: 0, methods: {} });
    const refused = await s.call("get.chats_report", {});
    expect(refused.error?.data).toMatchObject({ mnemonic: "required_parameter_missed", metadata: { limits: { day_remaining: 100_000 } } });
    await s.call("get.chats_report", DAY_WINDOW);
    await s.call("get.visitors", { ids: [1] });
    expect((await s.stats()).points).toEqual({ total: 2, methods: { "get.chats_report": 1, "get.visitors": 1 } });
  });

  it("refuses with -32029 limit_exceeded naming limit_type day once the day's points are spent, limits in error.data.metadata (l.169, l.173-197, l.225)", async () => {
    const s = sandbox({ dayLimit: 750, dayRemaining: 1, minuteLimit: 150 });
    expect((await s.call("get.chats_report", DAY_WINDOW)).result?.metadata.limits).toMatchObject({ day_remaining: 0 });
    const refused = await s.call("get.chats_report", DAY_WINDOW);
    expect(refused.error).toMatchObject({
      code: -32029,
      message: "Limit per day has been exceeded. Value of current limit per day is 750",
      data: { mnemonic: "limit_exceeded", params: { limit_type: "day", limit_max_value: 750 }, metadata: { limits: { day_limit: 750, day_remaining: 0 } } },
    });
    expect((await s.stats()).points.total).toBe(1);
  });

  it("refuses per minute as well, and answers again once the minute is over", async () => {
    const s = sandbox({ minuteLimit: 2 });
    expect(mnemonic(await s.call("get.chats_report", DAY_WINDOW))).toBeUndefined();
    expect(mnemonic(await s.call("get.visitors", { ids: [1] }))).toBeUndefined();
    const refused = await s.call("get.chats_report", DAY_WINDOW);
    expect(refused.error).toMatchObject({ code: -32029, data: { params: { limit_type: "minute", limit_max_value: 2 }, metadata: { limits: { minute_remaining: 0 } } } });
    s.advance(60_000);
    expect(mnemonic(await s.call("get.chats_report", DAY_WINDOW))).toBeUndefined();
  });

  it("scripts when the day resets: day_reset says so, and the points come back after it", async () => {
    const s = sandbox({ dayLimit: 750, dayRemaining: 0, dayResetSeconds: 90 });
    const refused = await s.call("get.chats_report", DAY_WINDOW);
    expect(refused.error?.data).toMatchObject({ params: { limit_type: "day" }, metadata: { limits: { day_remaining: 0, day_reset: 90 } } });
    s.advance(90_000);
    expect((await s.call("get.chats_report", DAY_WINDOW)).result?.metadata.limits).toMatchObject({ day_remaining: 749, day_reset: 86_400 });
  });

  it("starts a new day on /_sandbox/comagic/reset", async () => {
    const s = sandbox({ dayRemaining: 0 });
    expect(mnemonic(await s.call("get.chats_report", DAY_WINDOW))).toBe("limit_exceeded");
    await s.reset();
    await s.settings({ apiKeys: [KEY] });
    expect((await s.call("get.chats_report", DAY_WINDOW)).result?.metadata.limits).toMatchObject({ day_limit: 100_000, day_remaining: 99_999 });
  });

  it("by default allows 1,000 points a minute and 100,000 a day, so no test runs short unless it sets limits", async () => {
    const s = sandbox();
    expect((await s.call("get.chats_report", DAY_WINDOW)).result?.metadata.limits).toMatchObject({ minute_limit: 1000, day_limit: 100_000 });
  });

  it("answers an injected limit fault with minute, the configured limit and limitResetSeconds, and charges nothing", async () => {
    const s = sandbox({ minuteLimit: 150, faultRate: 1, faultKinds: ["limit"], limitResetSeconds: 2 });
    const refused = await s.call("get.calls_report", DAY_WINDOW);
    expect(refused.error).toMatchObject({
      code: -32029,
      message: "Limit per minute has been exceeded. Value of current limit per minute is 150",
      data: { mnemonic: "limit_exceeded", params: { limit_type: "minute", limit_max_value: 150 }, metadata: { limits: { minute_remaining: 0, minute_reset: 2 } } },
    });
    expect((await s.stats()).points.total).toBe(0);
  });

  it("does not charge login.user, whose answer carries no limits (l.131: 'кроме случаев когда лимиты не учитываются')", async () => {
    const s = sandbox();
    const answer = await s.rpc("login.user", { login: "sandbox", password: "sandbox-password" });
    expect(answer.result?.data).toHaveProperty("access_token");
    expect(answer.result).not.toHaveProperty("metadata");
    expect((await s.stats()).points.total).toBe(0);
  });
});
