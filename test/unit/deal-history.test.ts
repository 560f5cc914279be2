import { describe, expect, it } from "vitest";
import { type BitrixDeal, convertRevenue, type DealSyncInput, planDealSync, salesFunnelFromPipeline, type StageHistoryItem } from "../../worker/domain/deal-history";

/* The per-deal journal and what it lets through to CoMagic; each test names its ../shared/reference/FACTS-loop.md line. */

const TZ = "Europe/Moscow";
const NOW = Date.parse("2026-11-24T12:00:00Z");
const HOUR = 3_600_000;
const DAY = 24 * HOUR;

const FUNNEL = salesFunnelFromPipeline({
  categoryId: "0",
  name: "Sales",
  stages: [
    { id: "PREPARATION", name: "Documents", sort: 20, semantics: "P" },
    { id: "NEW", name: "New", sort: 10, semantics: "P" },
    { id: "WON", name: "Won", sort: 60, semantics: "S" },
    { id: "LOSE", name: "Lost", sort: 70, semantics: "F" },
    { id: "APOLOGY", name: "Apology", sort: 80, semantics: "F" },
  ],
});

const iso = (ms: number) => new Date(ms).toISOString().replace(".000Z", "+00:00");
const item = (id: number, stage: string, at: number, semantic = "P"): StageHistoryItem => ({ ID: id, TYPE_ID: 2, CREATED_TIME: iso(at), CATEGORY_ID: 0, STAGE_SEMANTIC_ID: semantic, STAGE_ID: stage });

function input(overrides: Partial<Omit<DealSyncInput, "deal">> & { deal?: Partial<BitrixDeal> } = {}): DealSyncInput {
  const { deal, ...rest } = overrides;
  return {
    deal: { ID: "7", TITLE: "Sofa", CATEGORY_ID: "0", STAGE_ID: "PREPARATION", DATE_CREATE: iso(NOW - 2 * DAY), OPPORTUNITY: "1000", CURRENCY_ID: "RUB", ...deal },
    history: [item(1, "NEW", NOW - 2 * DAY), item(2, "PREPARATION", NOW - DAY)],
    journal: null,
    funnel: FUNNEL,
    communication: null,
    accountCurrency: "RUB",
    rates: { RUB: 1, USD: 90 },
    timeZone: TZ,
    now: NOW,
    ...rest,
  };
}

describe("the funnel from a Bitrix24 pipeline (FACTS-loop §1.2)", () => {
  it("keeps in-process stages in Bitrix24's order numbered 10, 20 and folds every failure stage into the one failed stage", () => {
    expect(FUNNEL.stages).toEqual({
      success: { ext_id: "WON", name: "Won" },
      failed: { ext_id: "LOSE", name: "Lost" },
      in_process: [
        { ext_id: "NEW", name: "New", order: 10 },
        { ext_id: "PREPARATION", name: "Documents", order: 20 },
      ],
    });
    expect(FUNNEL.stageMap.APOLOGY).toBe("LOSE");
  });

  it("refuses a pipeline without a failure stage, which CoMagic could not take", () => {
    expect(() =>
      salesFunnelFromPipeline({
        categoryId: "1",
        name: "X",
        stages: [
          { id: "C1:NEW", name: "New", sort: 10, semantics: "P" },
          { id: "C1:WON", name: "Won", sort: 20, semantics: "S" },
        ],
      }),
    ).toThrow(/failure stage/);
  });
});

describe("planDealSync: only what is new, never a time before the last sent (FACTS-loop §1.4, §1.7, §6 Bitrix24 side)", () => {
  it("sends the whole history in time order the first time, in the account's time zone (§1.5 'все этапы')", () => {
    const plan = planDealSync(input());
    expect(plan.records.map((r) => [r.stage_ext_id, r.modified_stage_date_time])).toEqual([
      ["NEW", "2026-11-22 15:00:00"],
      ["PREPARATION", "2026-11-23 15:00:00"],
    ]);
    expect(plan.records[0]).toMatchObject({ ext_id: "7", created_date_time: "2026-11-22 15:00:00", sales_funnel_ext_id: FUNNEL.ext_id, revenue: 1000 });
  });

  it("sends nothing when the same event is delivered again after the journal was stored (§6 repeated events)", () => {
    const first = planDealSync(input());
    const again = planDealSync(input({ journal: first.journal }));
    expect(again.records).toEqual([]);
    expect(again.journal).toEqual(first.journal);
  });

  it("sends only the new stage when the deal moves on", () => {
    const first = planDealSync(input());
    const next = planDealSync(input({ journal: first.journal, deal: { STAGE_ID: "WON" }, history: [...input().history, item(3, "WON", NOW - HOUR, "S")] }));
    expect(next.records.map((r) => [r.stage_ext_id, r.closed_date_time])).toEqual([["WON", "2026-11-24 14:00:00"]]);
  });

  it("drops a late stage change timed before the last sent one, which CoMagic would refuse for the whole batch (§1.4, §6.2)", () => {
    const first = planDealSync(input({ deal: { STAGE_ID: "WON" }, history: [item(1, "NEW", NOW - 2 * DAY), item(3, "WON", NOW - HOUR, "S")] }));
    // The history read later shows a change that happened before WON but reached Bitrix24's history late.
    const late = planDealSync(
      input({ journal: first.journal, deal: { STAGE_ID: "WON" }, history: [item(1, "NEW", NOW - 2 * DAY), item(2, "PREPARATION", NOW - DAY), item(3, "WON", NOW - HOUR, "S")] }),
    );
    expect(late.records).toEqual([]);
    expect(late.skipped.late).toBe(1);
  });

  it("orders history rows that arrive out of order by their time", () => {
    const plan = planDealSync(input({ history: [item(2, "PREPARATION", NOW - DAY), item(1, "NEW", NOW - 2 * DAY)] }));
    expect(plan.records.map((r) => r.stage_ext_id)).toEqual(["NEW", "PREPARATION"]);
  });

  it("clamps a stage time ahead of now (clock skew) to now, so CoMagic does not see the future (§1.5 Time zone)", () => {
    const plan = planDealSync(input({ history: [item(1, "NEW", NOW - DAY), item(2, "PREPARATION", NOW + HOUR)] }));
    expect(plan.records.at(-1)?.modified_stage_date_time).toBe("2026-11-24 15:00:00");
  });

  it("sends the current stage when the stage history has not caught up with the deal", () => {
    const first = planDealSync(input());
    const next = planDealSync(input({ journal: first.journal, deal: { STAGE_ID: "APOLOGY" } }));
    expect(next.records.map((r) => [r.stage_ext_id, r.comments])).toEqual([["LOSE", "Bitrix24 stage APOLOGY"]]);
  });

  it("re-sends the last stage at its own time when only the revenue changed (§1.5 upsert)", () => {
    const first = planDealSync(input());
    const next = planDealSync(input({ journal: first.journal, deal: { OPPORTUNITY: "2500" } }));
    expect(next.records.map((r) => [r.stage_ext_id, r.modified_stage_date_time, r.revenue])).toEqual([["PREPARATION", "2026-11-23 15:00:00", 2500]]);
  });
});

describe("revenue in the account's currency (FACTS-loop §1.4 no currency field, §1.7)", () => {
  it("converts USD to RUB with Bitrix24's rates", () => {
    expect(convertRevenue(100, "USD", "RUB", { RUB: 1, USD: 90.5 })).toEqual({ revenue: 9050, flag: null });
  });

  it("sends a deal in a currency without a rate without revenue, flagged", () => {
    const plan = planDealSync(input({ deal: { CURRENCY_ID: "KZT" } }));
    expect(plan.records.every((r) => !("revenue" in r))).toBe(true);
    expect(plan.flags).toContain("currency_not_convertible");
  });
});

describe("communications older than 30 days before the deal (FACTS-loop §1.5, §6.4)", () => {
  it("links a call from 29 days before the deal", () => {
    const plan = planDealSync(input({ communication: { id: 501, type: "call", at: NOW - 2 * DAY - 29 * DAY } }));
    expect(plan.records[0]).toMatchObject({ communication_id: 501, communication_type: "call" });
    expect(plan.flags).toEqual([]);
  });

  it("flags a call from 31 days before the deal as not linkable and does not send it", () => {
    const plan = planDealSync(input({ communication: { id: 501, type: "call", at: NOW - 2 * DAY - 31 * DAY } }));
    expect(plan.records[0]).not.toHaveProperty("communication_id");
    expect(plan.flags).toContain("communication_older_than_30_days");
  });
});
