import { describe, expect, it } from "vitest";
import { BITRIX_ENTERPRISE_LIMITS, BITRIX_LIMITS, type BucketState, MAX_LEASE_MS, acquireLease, admit, drain, fullBucket, refill, releaseLease, take } from "../../worker/domain/request-budget";
import { RequestBudgetError } from "../../worker/bitrix/errors";
import { portalBudget } from "../../worker/bitrix/request-budget";
import type { PortalState } from "../../worker/portal-state";

const T0 = 1_800_000_000_000;
const bucket = (tokens: number, updatedMs = T0): BucketState => ({ tokens, updatedMs });

describe("the Bitrix24 request budget", () => {
  it("stays under Bitrix24's own limits (2/s and 50; Enterprise 5/s and 250)", () => {
    expect(BITRIX_LIMITS.perSecond).toBeLessThanOrEqual(2);
    expect(BITRIX_LIMITS.burst).toBeLessThan(50);
    expect(BITRIX_ENTERPRISE_LIMITS.perSecond).toBeLessThanOrEqual(5);
    expect(BITRIX_ENTERPRISE_LIMITS.burst).toBeLessThan(250);
  });

  it.each([
    ["a new portal has its whole burst", fullBucket(T0, BITRIX_LIMITS), 40, T0, true, 0, 0],
    ["a full bucket grants one and keeps the rest", bucket(40), 1, T0, true, 0, 39],
    ["an empty bucket refuses one for half a second (2 a second)", bucket(0), 1, T0, false, 500, 0],
    ["an empty bucket grants one half a second later", bucket(0), 1, T0 + 500, true, 0, 0],
    ["a batch of permits is all or none", bucket(3), 5, T0, false, 1000, 3],
    ["refills never pass the burst, however long the quiet", bucket(0, T0 - 86_400_000), 1, T0, true, 0, 39],
    ["a clock that went back adds nothing", bucket(0), 1, T0 - 60_000, false, 500, 0],
    ["a fraction accrued counts toward the wait", bucket(0.5), 1, T0, false, 250, 0.5],
  ])("%s", (_name, state, n, now, granted, waitMs, tokensAfter) => {
    const outcome = take(state, n, now, BITRIX_LIMITS);
    expect(outcome).toMatchObject({ granted, waitMs });
    expect(outcome.state.tokens).toBeCloseTo(tokensAfter, 9);
  });

  it("grants exactly the burst at once and then one permit per half second", () => {
    let state = fullBucket(T0, BITRIX_LIMITS);
    const outcomes = Array.from({ length: 60 }, () => {
      const outcome = take(state, 1, T0, BITRIX_LIMITS);
      state = outcome.state;
      return outcome;
    });
    expect(outcomes.filter((o) => o.granted)).toHaveLength(40);
    expect(new Set(outcomes.filter((o) => !o.granted).map((o) => o.waitMs))).toEqual(new Set([500]));
    expect(take(state, 1, T0 + 500, BITRIX_LIMITS).granted).toBe(true);
  });

  it("never lets more than the drain rate through over a minute, however often it is asked", () => {
    let state = bucket(0);
    let granted = 0;
    for (let t = 0; t <= 60_000; t += 5) {
      const outcome = take(state, 1, T0 + t, BITRIX_LIMITS);
      state = outcome.state;
      if (outcome.granted) granted += 1;
    }
    expect(granted).toBe(120);
  });

  it("grants a permit that accrued through floating-point steps (0.1 + 0.2 …)", () => {
    const limits = { perSecond: 1, burst: 5 };
    let state = bucket(0);
    for (let t = 100; t <= 1_000; t += 100) state = refill(state, T0 + t, limits);
    expect(state.tokens).toBeLessThan(1);
    expect(take(state, 1, T0 + 1_000, limits).granted).toBe(true);
  });

  it.each([
    ["zero permits", 0, BITRIX_LIMITS],
    ["a fraction of a permit", 1.5, BITRIX_LIMITS],
    ["more permits than the burst, which could never be granted", 41, BITRIX_LIMITS],
    ["a rate of zero", 1, { perSecond: 0, burst: 40 }],
    ["a burst of zero", 1, { perSecond: 2, burst: 0 }],
  ])("refuses %s as a bug", (_name, n, limits) => {
    expect(() => take(bucket(40), n, T0, limits)).toThrow(RangeError);
  });

  it("empties the bucket when Bitrix24 refused anyway, so the next permit waits a whole drain step", () => {
    const drained = drain(bucket(40), T0);
    expect(drained).toEqual({ tokens: 0, updatedMs: T0 });
    expect(take(drained, 1, T0, BITRIX_LIMITS)).toMatchObject({ granted: false, waitMs: 500 });
  });
});

describe("the serial lease", () => {
  const held = { owner: "consumer-1", untilMs: T0 + 30_000 };

  it.each([
    ["is taken when free", null, "consumer-2", T0, true, 0, { owner: "consumer-2", untilMs: T0 + 10_000 }],
    ["is taken when the holder's lease has ended", held, "consumer-2", T0 + 30_000, true, 0, { owner: "consumer-2", untilMs: T0 + 40_000 }],
    ["is renewed for its holder", held, "consumer-1", T0 + 20_000, true, 0, { owner: "consumer-1", untilMs: T0 + 30_000 }],
    ["is refused to another until the holder's lease ends", held, "consumer-2", T0 + 5_000, false, 25_000, held],
  ])("%s", (_name, current, owner, now, isHeld, waitMs, lease) => {
    expect(acquireLease(current, owner, 10_000, now)).toEqual({ held: isHeld, waitMs, lease });
  });

  it.each([
    ["no owner", "", 1_000],
    ["a lease of no time", "consumer-1", 0],
    ["a lease longer than any consumer runs", "consumer-1", MAX_LEASE_MS + 1],
  ])("refuses %s as a bug", (_name, owner, ttlMs) => {
    expect(() => acquireLease(null, owner, ttlMs, T0)).toThrow(RangeError);
  });

  it.each([
    ["its holder frees it", "consumer-1", null],
    ["anyone else leaves it held", "consumer-2", held],
  ])("when released, %s", (_name, owner, after) => {
    expect(releaseLease(held, owner)).toEqual(after);
  });
});

/** A fake namespace whose one object answers `take` from a script and records the calls. */
function fakeNamespace(answers: { granted: boolean; waitMs: number }[]) {
  const calls: string[] = [];
  const stub = {
    take: async (n: number) => {
      calls.push(`take(${n})`);
      const answer = answers.shift();
      if (!answer) throw new Error("no more scripted answers");
      return answer;
    },
    drain: async () => {
      calls.push("drain");
    },
  };
  const ns = {
    getByName: (name: string) => {
      calls.push(`getByName(${name})`);
      return stub;
    },
  };
  return { ns: ns as unknown as DurableObjectNamespace<PortalState>, calls };
}

describe("admission of a portal's work", () => {
  const limits = { perSecond: 2, burst: 40 };
  const idle = { horizonMs: 0, returnMs: 0 };

  it("admits work while the portal's budget is spoken for at most the wait a consumer sits through", () => {
    let admission = idle;
    const admitted: boolean[] = [];
    // Three permits a round at 2 a second: each admission books 1.5 s; 5 s ahead at most.
    for (let i = 0; i < 6; i++) {
      const outcome = admit(admission, 3, 1_000, 5_000, limits);
      admitted.push(outcome.admitted);
      admission = outcome.admission;
    }
    expect(admitted).toEqual([true, true, true, true, false, false]);
  });

  it("books no work for refused work, and gives each refused share a return slot of its own, a round apart", () => {
    const busy = { horizonMs: 20_000, returnMs: 0 };
    const first = admit(busy, 3, 1_000, 5_000, limits);
    expect(first).toEqual({ admitted: false, admission: { horizonMs: 20_000, returnMs: 16_500 }, waitMs: 14_000 });
    const second = admit(first.admission, 3, 1_000, 5_000, limits);
    expect(second).toEqual({ admitted: false, admission: { horizonMs: 20_000, returnMs: 18_000 }, waitMs: 15_500 });
  });

  it("starts a portal idle for a while from now, not from its old horizon", () => {
    expect(admit({ horizonMs: 500, returnMs: 0 }, 3, 10_000, 5_000, limits)).toEqual({ admitted: true, admission: { horizonMs: 11_500, returnMs: 0 }, waitMs: 0 });
  });
});

describe("portalBudget", () => {
  it("sleeps as long as the portal's object says, then asks again until granted", async () => {
    const { ns, calls } = fakeNamespace([
      { granted: false, waitMs: 500 },
      { granted: false, waitMs: 250 },
      { granted: true, waitMs: 0 },
    ]);
    const slept: number[] = [];
    await portalBudget(ns, "portal-a", async (ms) => void slept.push(ms)).acquire();
    expect(slept).toEqual([500, 250]);
    expect(calls).toEqual(["getByName(portal-a)", "take(1)", "take(1)", "take(1)"]);
  });

  it("gives up with a retryable QUERY_LIMIT_EXCEEDED instead of sleeping past its cap", async () => {
    const { ns } = fakeNamespace([
      { granted: false, waitMs: 40_000 },
      { granted: false, waitMs: 30_000 },
    ]);
    const slept: number[] = [];
    const error = await portalBudget(ns, "portal-a", async (ms) => void slept.push(ms))
      .acquire()
      .catch((e: unknown) => e);
    expect(error).toBeInstanceOf(RequestBudgetError);
    expect(error).toMatchObject({ code: "QUERY_LIMIT_EXCEEDED", transient: true, applied: "no", retryAfterSeconds: 30 });
    expect(slept).toEqual([40_000]);
  });

  it("tells the portal's object when Bitrix24 refused anyway", async () => {
    const { ns, calls } = fakeNamespace([]);
    await portalBudget(ns, "portal-a").refused();
    expect(calls).toEqual(["getByName(portal-a)", "drain"]);
  });
});
