import { describe, expect, it } from "vitest";
import { planBatch, planRound } from "../../worker/domain/batch-plan";
import type { LeadEvent } from "../../worker/domain/lead-event";

/** The planner reads only an event's key and contacts. */
const ev = (key: string, phone: string | null, email: string | null = null) => ({ key, phone, email }) as LeadEvent;
const same = (e: LeadEvent) => e;

describe("the lead consumer's batch plan", () => {
  it("settles what the ledger knows, and puts two events about one person in successive rounds, in order", () => {
    const first = ev("c1", "+79120000001");
    const other = ev("c2", "+79120000002");
    const again = ev("f1", "+79120000001", "a@example.ru");
    const byEmail = ev("f2", null, "a@example.ru");
    const known = ev("c3", "+79120000003");
    const plan = planBatch([first, other, again, byEmail, known], same, new Map([["c3", "deal:7"]]));
    expect(plan.alreadyApplied).toEqual([{ item: known, target: { type: "deal", id: "7" } }]);
    expect(plan.rounds).toEqual([[first, other], [again], [byEmail]]);
  });

  it("holds a later event about a person whose earlier event failed, and spreads the wait to that person's other contacts", () => {
    const again = ev("f1", "+79120000001", "a@example.ru");
    const unrelated = ev("c2", "+79120000002");
    const round = planRound([again, unrelated], same, new Set(["phone:+79120000001"]), new Set());
    expect(round.write).toEqual([unrelated]);
    expect(round.wait).toEqual([{ item: again, reason: "earlier_event_failed" }]);
    expect(round.failedKeys.has("email:a@example.ru")).toBe(true);
  });

  it("holds an event whose contact another event's create in doubt holds, without marking the person failed", () => {
    const held = ev("c5", "+79120000005");
    const round = planRound([held], same, new Set(), new Set(["c5"]));
    expect(round.write).toEqual([]);
    expect(round.wait).toEqual([{ item: held, reason: "create_in_doubt" }]);
    expect(round.failedKeys.size).toBe(0);
  });
});
