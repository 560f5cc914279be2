import { describe, expect, it } from "vitest";
import { CoMagicDeferredError, CoMagicError } from "../../worker/comagic/data-api";
import { asFailure, retryOrDeadLetter, type SettleDeps } from "../../worker/jobs/settle";
import { decide, followUpDelaySeconds, MAX_DELIVERY_ATTEMPTS, RETRY_CAP_SECONDS, retryDelaySeconds } from "../../worker/domain/retry-policy";
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

describe("a job CoMagic's points hold back", () => {
  it("is deferred for the reset it names however many attempts it has had, never dead-lettered, within the 12 hours Queues allow", () => {
    expect(decide({ transient: true, retryAfterSeconds: 30_000, deferred: true }, 1, 0.5)).toEqual({ action: "defer", delaySeconds: 30_000 });
    expect(decide({ transient: true, retryAfterSeconds: 60, deferred: true }, MAX_DELIVERY_ATTEMPTS + 5, 0.5)).toEqual({ action: "defer", delaySeconds: 60 });
    expect(decide({ transient: true, retryAfterSeconds: 86_400, deferred: true }, 1, 0.5)).toEqual({ action: "defer", delaySeconds: 43_200 });
  });

  it("counts limit_exceeded and a refused deferrable read as deferred, and no other CoMagic failure", () => {
    expect(asFailure(new CoMagicDeferredError("limit_exceeded", "limit per day", 900, "day"))).toMatchObject({ deferred: true, retryAfterSeconds: 900 });
    expect(asFailure(new CoMagicDeferredError("budget_day_reserve", "reserve", 3_600, "day"))).toMatchObject({ deferred: true });
    expect(asFailure(new CoMagicError("internal_error", "busy", true)).deferred).toBeFalsy();
  });

  function settle(attempts: number, resend: SettleDeps["resend"]) {
    const events: { level: string; event: string; fields?: Record<string, unknown> }[] = [];
    const deadLetters: unknown[] = [];
    const message = {
      id: "m1",
      timestamp: new Date(),
      body: { type: "lead.enrich", v: 1, leadId: "7", visitorId: "42" },
      attempts,
      acked: false,
      retried: null as null | { delaySeconds?: number },
      ack() {
        this.acked = true;
      },
      retry(options?: { delaySeconds?: number }) {
        this.retried = options ?? {};
      },
    };
    const log = {
      info: (event: string, fields?: Record<string, unknown>) => void events.push({ level: "info", event, fields }),
      warn: (event: string, fields?: Record<string, unknown>) => void events.push({ level: "warn", event, fields }),
      error: (event: string, fields?: Record<string, unknown>) => void events.push({ level: "error", event, fields }),
      child: () => log,
    };
    const deps: SettleDeps = { deadLetters: { send: async (body: unknown) => void deadLetters.push(body) }, log, now: () => new Date(0), random: () => 0.5, resend };
    const failure = asFailure(new CoMagicDeferredError("limit_exceeded", "CoMagic Data API: limit per day", 86_400, "day"));
    return { run: () => retryOrDeadLetter(message as unknown as Message<unknown>, "comagic-enrich-jobs", failure, { leadId: "7" }, deps), message, events, deadLetters };
  }

  it("goes back on its queue as a new message with the wait as its delay, and the old one is acked: its attempts do not grow", async () => {
    const sent: { body: unknown; delaySeconds: number }[] = [];
    const { run, message, events, deadLetters } = settle(MAX_DELIVERY_ATTEMPTS, async (body, delaySeconds) => void sent.push({ body, delaySeconds }));
    expect(await run()).toBe("deferred");
    expect(sent).toEqual([{ body: message.body, delaySeconds: 43_200 }]);
    expect(message).toMatchObject({ acked: true, retried: null });
    expect(deadLetters).toEqual([]);
    expect(events.find((e) => e.event === "comagic.deferred")?.fields).toMatchObject({ code: "limit_exceeded", waitSeconds: 86_400, delaySeconds: 43_200, resent: true });
  });

  it("waits as a retry, still not dead-lettered, when it cannot be sent again", async () => {
    const { run, message, deadLetters } = settle(MAX_DELIVERY_ATTEMPTS, async () => {
      throw new Error("Too Many Requests");
    });
    expect(await run()).toBe("deferred");
    expect(message).toMatchObject({ acked: false, retried: { delaySeconds: 43_200 } });
    expect(deadLetters).toEqual([]);
  });
});

describe("when a follow-up that reads the Data API is delivered", () => {
  const at = Date.parse("2026-12-06T10:03:20Z");
  it("waits at least ENRICH_DELAY_SECONDS, then for the next slot boundary, so a slot's follow-ups share one read", () => {
    // 10:03:20 + 60 s = 10:04:20 → the 10:10:00 boundary.
    expect(followUpDelaySeconds(at, 60, 600)).toBe(400);
    // Every write of the slot lands on the same boundary.
    expect(at / 1000 + followUpDelaySeconds(at, 60, 600)).toBe((at + 300_000) / 1000 + followUpDelaySeconds(at + 300_000, 60, 600));
  });

  it("waits only ENRICH_DELAY_SECONDS without slots, and never past the 12 hours Queues allow", () => {
    expect(followUpDelaySeconds(at, 60, 0)).toBe(60);
    expect(followUpDelaySeconds(at, 43_200, 3_600)).toBe(43_200);
  });
});
