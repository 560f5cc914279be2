import { describe, expect, it } from "vitest";
import {
  type ConversionCandidate,
  type ConversionSettings,
  conversionFiles,
  conversionKey,
  conversionOf,
  entityOfConversionKey,
  goalIdentifierSchema,
  planConversions,
  visitorIdOf,
} from "../../worker/domain/offline-conversions";

/*
 * Offline conversions for Yandex Metrica, decided in pure code (issue #25 §3). FACTS-loop lines: §3.2 (CSV columns,
 * Target = the JavaScript-event goal's identifier, DateTime only in the past), §3.4 (21-day window), §3.5 (a re-sent
 * row overwrites), §7 (a stable DateTime per entity and goal).
 */

const DAY = 86_400_000;
const NOW = Date.parse("2026-12-10T12:00:00Z");
const GOALS = { qualified: "crm_qualified", won: "crm_won" };
const SETTINGS: ConversionSettings = { goals: GOALS, qualifiedLeadStatus: "IN_PROCESS" };
const CLIENT = { column: "ClientId", value: "133591247640966458" } as const;

function wonDeal(id: string, at = NOW - DAY, lastVisitAt: number | null = NOW - 3 * DAY): ConversionCandidate {
  return {
    conversion: { goal: "won", entity: { type: "deal", id }, at, revenue: { amount: 123.456, currency: "rub" } },
    visitor: CLIENT,
    lastVisitAt,
  };
}

describe("which CRM moments are conversions (issue #25 §3)", () => {
  it("makes a lead moved to the chosen status a qualified conversion, and a lead moved elsewhere none", () => {
    expect(conversionOf({ kind: "lead_status", lead: "7", statusId: "IN_PROCESS", at: NOW }, SETTINGS)).toEqual({
      goal: "qualified",
      entity: { type: "lead", id: "7" },
      at: NOW,
      revenue: null,
    });
    expect(conversionOf({ kind: "lead_status", lead: "7", statusId: "NEW", at: NOW }, SETTINGS)).toBeNull();
    expect(conversionOf({ kind: "lead_status", lead: "7", statusId: "IN_PROCESS", at: NOW }, { ...SETTINGS, qualifiedLeadStatus: null })).toBeNull();
  });

  it("makes a new deal a qualified conversion and a won deal a won conversion with its revenue", () => {
    expect(conversionOf({ kind: "deal_created", deal: "9", from: null, at: NOW }, SETTINGS)).toMatchObject({ goal: "qualified", entity: { type: "deal", id: "9" } });
    // A deal made from a lead qualifies that lead, once: the same key as the lead's own status move.
    const fromLead = conversionOf({ kind: "deal_created", deal: "9", from: { type: "lead", id: "4" }, at: NOW }, SETTINGS);
    const leadMoved = conversionOf({ kind: "lead_status", lead: "4", statusId: "IN_PROCESS", at: NOW }, SETTINGS);
    expect(fromLead && conversionKey(fromLead)).toBe(leadMoved && conversionKey(leadMoved));
    expect(conversionOf({ kind: "deal_won", deal: "9", at: NOW, revenue: { amount: 5000, currency: "RUB" } }, SETTINGS)).toEqual({
      goal: "won",
      entity: { type: "deal", id: "9" },
      at: NOW,
      revenue: { amount: 5000, currency: "RUB" },
    });
  });

  it("makes no conversion for a goal whose identifier is not set", () => {
    const off: ConversionSettings = { goals: { qualified: null, won: null }, qualifiedLeadStatus: "IN_PROCESS" };
    expect(conversionOf({ kind: "deal_created", deal: "9", from: null, at: NOW }, off)).toBeNull();
    expect(conversionOf({ kind: "deal_won", deal: "9", at: NOW, revenue: null }, off)).toBeNull();
  });
});

describe("a goal is named by its JavaScript-event identifier, not its number (FACTS-loop §3.2)", () => {
  it.each([
    ["a goal's number", "123456789", /goal's number/],
    ["a comma that would break the CSV", "crm,won", /letters, digits/],
    ["a line break", "crm\nwon", /letters, digits/],
    ["nothing", "  ", /required/],
  ])("refuses %s with a reason", (_, value, reason) => {
    const parsed = goalIdentifierSchema.safeParse(value);
    expect(parsed.success).toBe(false);
    expect(parsed.error?.issues[0]?.message).toMatch(reason);
  });

  it("takes an identifier such as order_confirmed or a Cyrillic one", () => {
    expect(goalIdentifierSchema.parse(" order_confirmed ")).toBe("order_confirmed");
    expect(goalIdentifierSchema.parse("сделка-выиграна")).toBe("сделка-выиграна");
  });

  it("does not send a conversion whose goal identifier is a number, even if the settings let one through", () => {
    const plan = planConversions({ candidates: [wonDeal("9")], goals: { qualified: null, won: "4021" }, fixed: new Map(), now: NOW });
    expect(plan.rows).toEqual([]);
    expect(plan.counts.goal_off).toBe(1);
  });
});

describe("who the visitor is (issue #25 §3, FACTS-loop §3.2 and §3.7)", () => {
  it("uses the ClientID from _ym_uid first, then CoMagic's ym_client_id, then yclid", () => {
    expect(visitorIdOf({ ymUid: "1700000000123456789", ymClientId: "42", yclid: "777" })).toEqual({ column: "ClientId", value: "1700000000123456789" });
    expect(visitorIdOf({ ymUid: null, ymClientId: "133591247640966458", yclid: "777" })).toEqual({ column: "ClientId", value: "133591247640966458" });
    expect(visitorIdOf({ yclid: "6234567890123456789" })).toEqual({ column: "Yclid", value: "6234567890123456789" });
  });

  it("ignores an id that is not a ClientID (not digits) and falls back to yclid, or to nobody", () => {
    expect(visitorIdOf({ ymUid: "abc,1", yclid: "555" })).toEqual({ column: "Yclid", value: "555" });
    expect(visitorIdOf({ ymUid: "", ymClientId: "x", yclid: "a\nb" })).toBeNull();
  });
});

describe("planning the rows to send", () => {
  it("keeps a conversion's DateTime from the first attempt, so a retry overwrites instead of adding (FACTS-loop §3.5, §7)", () => {
    const first = planConversions({ candidates: [wonDeal("9", NOW - DAY)], goals: GOALS, fixed: new Map(), now: NOW });
    expect(first.rows[0]?.dateTime).toBe(Math.floor((NOW - DAY) / 1000));
    expect([...first.fixed]).toEqual([["deal:9:won", Math.floor((NOW - DAY) / 1000)]]);

    // The deal is won again later (reopened and won): the row is still the same one.
    const retry = planConversions({ candidates: [wonDeal("9", NOW - 1000)], goals: GOALS, fixed: first.fixed, now: NOW + DAY });
    expect(retry.rows[0]?.dateTime).toBe(first.rows[0]?.dateTime);
    expect(retry.fixed.size).toBe(0);
  });

  it("never dates a conversion in the future, which fails the upload (FACTS-loop §3.2)", () => {
    const plan = planConversions({ candidates: [wonDeal("9", NOW + 60_000)], goals: GOALS, fixed: new Map(), now: NOW });
    expect(plan.rows[0]?.dateTime).toBe(Math.floor(NOW / 1000));
  });

  it("does not send a conversion whose visitor was last seen more than 21 days ago, and counts it too_old (FACTS-loop §3.4)", () => {
    const plan = planConversions({
      candidates: [wonDeal("1", NOW - DAY, NOW - 25 * DAY), wonDeal("2", NOW - DAY, NOW - 21 * DAY), wonDeal("3", NOW - DAY, null)],
      goals: GOALS,
      fixed: new Map(),
      now: NOW,
    });
    expect(plan.rows.map((r) => r.key)).toEqual(["deal:2:won", "deal:3:won"]);
    expect(plan.skipped).toEqual([{ key: "deal:1:won", reason: "too_old" }]);
    expect(plan.counts).toEqual({ sent: 2, too_old: 1, no_visitor: 0, goal_off: 0 });
    expect(plan.fixed.has("deal:1:won")).toBe(false);
  });

  it("counts a conversion without a usable visitor id as no_visitor and sends one row per conversion key", () => {
    const plan = planConversions({ candidates: [{ ...wonDeal("1"), visitor: null }, wonDeal("2"), wonDeal("2")], goals: GOALS, fixed: new Map(), now: NOW });
    expect(plan.rows).toHaveLength(1);
    expect(plan.counts).toMatchObject({ sent: 1, no_visitor: 1 });
  });
});

describe("the CSV file Metrica takes (FACTS-loop §3.2)", () => {
  it("renders a header line and one row per conversion, price with a dot, currency upper case, qualified rows without money", () => {
    const plan = planConversions({
      candidates: [wonDeal("9"), { conversion: { goal: "qualified", entity: { type: "lead", id: "7" }, at: NOW - DAY, revenue: null }, visitor: CLIENT, lastVisitAt: null }],
      goals: GOALS,
      fixed: new Map(),
      now: NOW,
    });
    const seconds = Math.floor((NOW - DAY) / 1000);
    expect(conversionFiles(plan.rows)).toEqual([
      {
        column: "ClientId",
        csv: `ClientId,Target,DateTime,Price,Currency\n133591247640966458,crm_won,${seconds},123.46,RUB\n133591247640966458,crm_qualified,${seconds},,\n`,
        keys: ["deal:9:won", "lead:7:qualified"],
      },
    ]);
  });

  it("puts ClientId rows and Yclid rows in separate files, one identifier column each (FACTS-loop §3.1 client_id_type)", () => {
    const byClick: ConversionCandidate = { ...wonDeal("5"), visitor: { column: "Yclid", value: "6234567890" } };
    const files = conversionFiles(planConversions({ candidates: [wonDeal("4"), byClick], goals: GOALS, fixed: new Map(), now: NOW }).rows);
    expect(files.map((f) => [f.column, f.csv.split("\n")[0], f.keys])).toEqual([
      ["ClientId", "ClientId,Target,DateTime,Price,Currency", ["deal:4:won"]],
      ["Yclid", "Yclid,Target,DateTime,Price,Currency", ["deal:5:won"]],
    ]);
  });
});

describe("a stored conversion key", () => {
  it("names the lead or deal it was made from", () => {
    for (const entity of [
      { type: "lead", id: "12" },
      { type: "deal", id: "7" },
    ] as const) {
      expect(entityOfConversionKey(conversionKey({ goal: "won", entity }))).toEqual(entity);
    }
  });
});
