import { describe, expect, it } from "vitest";
import { CoMagicError, type CoMagicRpcClient } from "../../worker/comagic/data-api";
import { loadJourney, loadJourneys } from "../../worker/comagic/reports";
import { formatComagicDateTime, parseComagicDateTime } from "../../worker/domain/comagic-time";
import { EMPTY_UTM } from "../../worker/domain/lead-event";
import { buildJourney, summarizeJourney, type SessionTouch } from "../../worker/domain/touchpoints";

describe("CoMagic report times", () => {
  it.each([
    ["2026-11-24T09:30:05Z", "Europe/Moscow", "2026-11-24 12:30:05"],
    ["2026-07-01T00:00:00Z", "Europe/Berlin", "2026-07-01 02:00:00"],
    ["2026-01-01T00:00:00Z", "Asia/Yekaterinburg", "2026-01-01 05:00:00"],
  ])("%s is %s local time %s, and back", (iso, zone, local) => {
    expect(formatComagicDateTime(new Date(iso), zone)).toBe(local);
    expect(parseComagicDateTime(local, zone)?.toISOString()).toBe(new Date(iso).toISOString());
  });

  it("reads a time across a daylight-saving change", () => {
    expect(parseComagicDateTime("2026-03-29 03:30:00", "Europe/Berlin")?.toISOString()).toBe("2026-03-29T01:30:00.000Z");
  });

  it("refuses text that is not a CoMagic time", () => {
    expect(parseComagicDateTime("yesterday", "Europe/Moscow")).toBeNull();
  });
});

const session = (at: string, overrides: Partial<SessionTouch> = {}): SessionTouch => ({
  type: "session",
  at,
  sessionId: at,
  channel: null,
  source: null,
  utm: EMPTY_UTM,
  referrer: null,
  entrancePage: null,
  ...overrides,
});

describe("summarizeJourney", () => {
  it("counts sessions and names the first and last source: utm_source, else channel, else source name", () => {
    const journey = buildJourney("v", new Date(), [
      session("2026-11-03T00:00:00Z", { channel: "organic" }),
      { type: "call", at: "2026-11-04T00:00:00Z", id: "c1", sessionId: null },
      session("2026-11-01T00:00:00Z", { utm: { ...EMPTY_UTM, source: "yandex" }, channel: "paid" }),
      session("2026-11-05T00:00:00Z", { source: "Прямые заходы" }),
    ]);
    expect(journey.touchpoints.map((t) => t.at.slice(8, 10))).toEqual(["01", "03", "04", "05"]);
    expect(summarizeJourney(journey)).toEqual({ sessions: 3, firstSource: "yandex", lastSource: "Прямые заходы" });
  });

  it("has no sources for a visitor without sessions", () => {
    expect(summarizeJourney(buildJourney("v", new Date(), []))).toEqual({ sessions: 0, firstSource: null, lastSource: null });
  });
});

type Filter = { field?: string; operator?: string; value?: unknown; filters?: Filter[]; condition?: string };

/**
 * A Data API that answers reports from fixed rows, filtering like CoMagic; `refuseIn` makes it refuse the `in`
 * operator, which data_api.txt:513 says is "Доступно не для всех методов" (the error it then gives is not
 * documented: invalid_parameter_value, as for any operator a method lacks).
 */
function fakeDataApi(rows: Record<string, Record<string, unknown>[]>, options: { refuseIn?: boolean } = {}) {
  const sent: { method: string; filter: Filter }[] = [];
  const matches = (row: Record<string, unknown>, f: Filter): boolean => {
    if (f.filters) return f.condition === "or" ? f.filters.some((c) => matches(row, c)) : f.filters.every((c) => matches(row, c));
    if (f.operator === "in") {
      if (options.refuseIn) throw new CoMagicError("invalid_parameter_value", "Invalid parameter value", false);
      return (f.value as unknown[]).map(String).includes(String(row[f.field ?? ""]));
    }
    return String(row[f.field ?? ""]) === String(f.value);
  };
  const client: CoMagicRpcClient = {
    loginCount: 0,
    call: async (method, params = {}) => {
      const filter = params.filter as Filter;
      sent.push({ method, filter });
      const data = (rows[method] ?? []).filter((row) => matches(row, filter));
      return { data, metadata: { total_items: data.length } };
    },
  };
  return { client, sent };
}

const NOW = new Date("2026-11-24T12:00:00Z");
const visit = (id: number, visitorId: number, at: string, channel: string) => ({ id, visitor_id: visitorId, date_time: at, channel, utm_source: null });
const REPORT_ROWS = {
  "get.visitor_sessions_report": [
    visit(1, 701, "2026-11-01 10:00:00", "paid"),
    visit(2, 702, "2026-11-02 10:00:00", "organic"),
    visit(3, 701, "2026-11-03 10:00:00", "direct"),
    visit(4, 799, "2026-11-04 10:00:00", "social"),
  ],
  "get.communications_report": [
    { id: 55, communication_type: "call", date_time: "2026-11-03 10:05:00", visitor_id: 701, visitor_session_id: 3 },
    { id: 56, communication_type: "chat", date_time: "2026-11-02 10:05:00", visitor_id: 702, visitor_session_id: 2 },
  ],
};

describe("loadJourneys", () => {
  it("reads the visits and the contacts of every visitor once (visitor_id in […]) and gives each row to its visitor", async () => {
    const { client, sent } = fakeDataApi(REPORT_ROWS);
    const journeys = await loadJourneys(client, ["701", "702", "703", "701"], NOW, "Europe/Moscow");
    expect(sent).toEqual([
      { method: "get.visitor_sessions_report", filter: { field: "visitor_id", operator: "in", value: [701, 702, 703] } },
      { method: "get.communications_report", filter: { field: "visitor_id", operator: "in", value: [701, 702, 703] } },
    ]);
    expect(journeys.get("701")?.touchpoints.map((t) => `${t.type}@${t.at.slice(5, 10)}`)).toEqual(["session@11-01", "session@11-03", "call@11-03"]);
    expect(journeys.get("702")?.touchpoints.map((t) => t.type)).toEqual(["session", "chat"]);
    // A visitor CoMagic knows nothing of has an empty journey, not another visitor's.
    expect(journeys.get("703")?.touchpoints).toEqual([]);
    expect([...journeys.keys()].sort()).toEqual(["701", "702", "703"]);
  });

  it("asks again with an `or` tree of `=` filters when a report refuses `in` (data_api.txt:513), and straight away after that", async () => {
    const { client, sent } = fakeDataApi(REPORT_ROWS, { refuseIn: true });
    const journeys = await loadJourneys(client, ["701", "702"], NOW, "Europe/Moscow");
    expect(summarizeJourney(journeys.get("701") ?? buildJourney("701", NOW, []))).toEqual({ sessions: 2, firstSource: "paid", lastSource: "direct" });
    expect(journeys.get("702")?.touchpoints).toHaveLength(2);
    const tree = { filters: [701, 702].map((value) => ({ field: "visitor_id", operator: "=", value })), condition: "or" };
    expect(sent.map((s) => s.filter)).toEqual([{ field: "visitor_id", operator: "in", value: [701, 702] }, tree, { field: "visitor_id", operator: "in", value: [701, 702] }, tree]);

    // The refusal is remembered: the next batch asks with the tree at once (a refused read costs no point, but a request).
    const again = fakeDataApi(REPORT_ROWS, { refuseIn: true });
    await loadJourneys(again.client, ["701", "702"], NOW, "Europe/Moscow");
    expect(again.sent.map((s) => s.filter)).toEqual([tree, tree]);
  });

  it("reads one visitor, for the CRM tab, with `=`", async () => {
    const { client, sent } = fakeDataApi(REPORT_ROWS);
    expect((await loadJourney(client, "702", NOW, "Europe/Moscow")).touchpoints).toHaveLength(2);
    expect(sent.map((s) => s.filter)).toEqual([
      { field: "visitor_id", operator: "=", value: 702 },
      { field: "visitor_id", operator: "=", value: 702 },
    ]);
  });
});
