import { describe, expect, it } from "vitest";
import { decide, MAX_DELIVERY_ATTEMPTS, RETRY_CAP_SECONDS, retryDelaySeconds } from "../../worker/domain/retry-policy";
import { splitIntoRounds } from "../../worker/domain/rounds";

describe("splitIntoRounds", () => {
  const keys = (item: string) => item.split("+");

  it("keeps items without shared keys in one round", () => {
    expect(splitIntoRounds(["a", "b", "c"], keys)).toEqual([["a", "b", "c"]]);
  });

  it("moves an item sharing a key to a later round, keeping the order of the same person's items", () => {
    expect(splitIntoRounds(["a", "b", "a+c", "d", "c", "a"], keys)).toEqual([["a", "b", "d"], ["a+c"], ["c", "a"]]);
  });

  it("returns no rounds for no items", () => {
    expect(splitIntoRounds([], keys)).toEqual([]);
  });
});

describe("retryDelaySeconds", () => {
  it("doubles with each attempt, jittered between half and all of the step", () => {
    expect(retryDelaySeconds(1, 0)).toBe(1);
    expect(retryDelaySeconds(1, 1)).toBe(2);
    expect(retryDelaySeconds(4, 0)).toBe(8);
    expect(retryDelaySeconds(4, 1)).toBe(16);
  });

  it("never waits longer than the cap, however many attempts", () => {
    for (const attempt of [10, 20, 100, 1e6]) expect(retryDelaySeconds(attempt, 1)).toBeLessThanOrEqual(RETRY_CAP_SECONDS);
  });

  it("waits at least as long as the upstream asks", () => {
    expect(retryDelaySeconds(1, 0, 60)).toBe(60);
  });

  it("stays within the 12 hours Queues allow even for a huge hint", () => {
    expect(retryDelaySeconds(1, 0, 1e9)).toBe(43_200);
  });
});

describe("the retry policy's decision", () => {
  it("retries a transient failure with backoff (raised to the upstream's hint) until the attempts run out, and gives up a permanent one at once", () => {
    expect(decide({ transient: true, retryAfterSeconds: 0 }, 1, 0)).toEqual({ action: "retry", delaySeconds: 1 });
    expect(decide({ transient: true, retryAfterSeconds: 60 }, 1, 0)).toEqual({ action: "retry", delaySeconds: 60 });
    expect(decide({ transient: true, retryAfterSeconds: 0 }, MAX_DELIVERY_ATTEMPTS, 0.5)).toEqual({ action: "dead-letter" });
    expect(decide({ transient: false, retryAfterSeconds: 0 }, 1, 0.5)).toEqual({ action: "dead-letter" });
  });
});
