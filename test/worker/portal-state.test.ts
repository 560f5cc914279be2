import { evictDurableObject, runInDurableObject } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { BITRIX_LIMITS } from "../../worker/domain/request-budget";

/*
 * The portal's Durable Object in workerd: its request budget and its serial lease, as the queue consumers of many
 * portals will use them side by side. This shard shares one Miniflare between files and runs: every test names its
 * own portals.
 */

/** A portal name no other test (or earlier run) has used. */
const portal = (label: string) => `${label}-${crypto.randomUUID()}.bitrix24.ru`;
const stubOf = (name: string) => env.PORTAL_STATE.getByName(name);

/** A refill so slow (one permit in 1,000 s) that no permit accrues while a test runs. */
const FROZEN = { perSecond: 0.001, burst: 40 };

/** What an RPC call rejected with (null if it did not): an RPC promise is settled once, here, so none goes unhandled. */
const failureOf = (call: Promise<unknown>): Promise<unknown> =>
  call.then(
    () => null,
    (error: unknown) => error,
  );

async function takeAll(stub: ReturnType<typeof stubOf>, count: number, limits = FROZEN) {
  return Promise.all(Array.from({ length: count }, () => stub.take(1, limits)));
}

describe("a portal's request budget", () => {
  it("grants exactly the burst to 60 concurrent requests and tells the rest how long to wait", async () => {
    const answers = await takeAll(stubOf(portal("busy")), 60);
    expect(answers.filter((a) => a.granted)).toHaveLength(40);
    const refused = answers.filter((a) => !a.granted);
    expect(refused).toHaveLength(20);
    for (const answer of refused) expect(answer.waitMs).toBeGreaterThan(0);
  });

  it("under Bitrix24's own limits lets 40 requests go at once and asks the next to wait at most 20 s for 40 more", async () => {
    const stub = stubOf(portal("defaults"));
    expect(await stub.take(BITRIX_LIMITS.burst)).toEqual({ granted: true, waitMs: 0 });
    const next = await stub.take(BITRIX_LIMITS.burst);
    expect(next.granted).toBe(false);
    expect(next.waitMs).toBeGreaterThan(0);
    expect(next.waitMs).toBeLessThanOrEqual(20_000);
  });

  it("keeps two portals' budgets apart: one portal spent does not slow the other", async () => {
    const [a, b] = [stubOf(portal("a")), stubOf(portal("b"))];
    await takeAll(a, 40);
    expect(await a.take(1, FROZEN)).toMatchObject({ granted: false });
    expect(await b.take(1, FROZEN)).toEqual({ granted: true, waitMs: 0 });
    expect(await b.stats()).toMatchObject({ granted: 1, refused: 0 });
  });

  it("survives the object's eviction: its budget lives in rows, not in memory", async () => {
    const name = portal("evicted");
    const stub = stubOf(name);
    await takeAll(stub, 41);
    // A mark in the instance's memory shows that the eviction really dropped it.
    await runInDurableObject(stub, async (instance) => void Object.assign(instance, { mark: "before eviction" }));
    await evictDurableObject(stub);
    const again = stubOf(name);
    expect(await runInDurableObject(again, async (instance) => (instance as unknown as { mark?: string }).mark)).toBeUndefined();
    expect(await again.take(1, FROZEN)).toMatchObject({ granted: false });
    expect(await again.stats()).toMatchObject({ granted: 40, permits: 40, refused: 2 });
  });

  it("empties the bucket when told Bitrix24 refused anyway, and counts it", async () => {
    const stub = stubOf(portal("drained"));
    await stub.drain();
    expect(await stub.take(1)).toMatchObject({ granted: false });
    expect(await stub.stats()).toMatchObject({ drained: 1, granted: 0, refused: 1 });
  });

  it("refuses a request for no permits, a fraction of one, or more than the burst", async () => {
    const stub = stubOf(portal("bad-input"));
    const failures = await Promise.all([0, 0.5, 41].map((n) => failureOf(stub.take(n))).concat(failureOf(stub.take(1, { perSecond: -1, burst: 40 }))));
    for (const failure of failures) expect(failure).toBeInstanceOf(Error);
    expect(await stub.stats()).toMatchObject({ granted: 0, refused: 0 });
  });
});

describe("a portal's serial lease", () => {
  it("is refused to another owner, with how long to wait, until its holder releases it", async () => {
    const stub = stubOf(portal("lease"));
    expect(await stub.lease("consumer-1", 30_000)).toEqual({ held: true, waitMs: 0 });
    const refused = await stub.lease("consumer-2", 30_000);
    expect(refused.held).toBe(false);
    expect(refused.waitMs).toBeGreaterThan(0);
    expect(refused.waitMs).toBeLessThanOrEqual(30_000);
    // Only the holder releases: consumer-2 cannot free it for itself.
    await stub.release("consumer-2");
    expect(await stub.lease("consumer-2", 30_000)).toMatchObject({ held: false });
    await stub.release("consumer-1");
    expect(await stub.lease("consumer-2", 30_000)).toEqual({ held: true, waitMs: 0 });
  });

  it("passes to another owner once its holder's lease has run out, however the holder ended", async () => {
    const stub = stubOf(portal("expired"));
    expect(await stub.lease("consumer-1", 50)).toMatchObject({ held: true });
    await new Promise((resolve) => setTimeout(resolve, 80));
    expect(await stub.lease("consumer-2", 30_000)).toEqual({ held: true, waitMs: 0 });
    expect(await stub.lease("consumer-1", 30_000)).toMatchObject({ held: false });
  });

  it("is renewed, not refused, when its holder asks again", async () => {
    const stub = stubOf(portal("renewed"));
    await stub.lease("consumer-1", 1_000);
    expect(await stub.lease("consumer-1", 60_000)).toEqual({ held: true, waitMs: 0 });
    expect((await stub.lease("consumer-2", 1_000)).waitMs).toBeGreaterThan(1_000);
  });
});

describe("admission of a portal's work", () => {
  it("refuses work once the portal's budget is spoken for further ahead than a consumer may go, and gives back what admitted rounds did not take", async () => {
    const stub = stubOf(portal("admission"));
    // 3 permits a round at 2 a second: 1.5 s booked each; 4.5 s ahead at most here.
    const marks: number[] = [];
    for (let i = 0; i < 4; i++) {
      const outcome = await stub.admit(3, 4_500);
      expect(outcome.admitted).toBe(true);
      marks.push(outcome.mark);
    }
    const refused = await stub.admit(3, 4_500);
    expect(refused.admitted).toBe(false);
    expect(refused.waitMs).toBeGreaterThan(0);
    // The rounds called Bitrix24 once in all: what they booked and did not take comes back, and work is admitted again.
    expect((await stub.take(1)).granted).toBe(true);
    for (const mark of marks) await stub.settle(mark, 3);
    expect((await stub.admit(3, 4_500)).admitted).toBe(true);
  });
});

describe("erasing a portal's object", () => {
  it("leaves nothing behind and says what it deleted", async () => {
    const stub = stubOf(portal("uninstalled"));
    await takeAll(stub, 5);
    await stub.lease("consumer-1", 30_000);
    expect(await stub.erase()).toEqual({ deleted: ["_schema", "admission", "budget", "lease"] });
    const tables = await runInDurableObject(stub, async (_instance, state) =>
      state.storage.sql
        .exec<{ name: string }>("SELECT name FROM sqlite_master WHERE type = 'table'")
        .toArray()
        .map((row) => row.name),
    );
    expect(tables.filter((name) => !name.startsWith("_cf_"))).toEqual([]);
    // Used again (a reinstall), it starts afresh.
    expect(await stub.stats()).toMatchObject({ granted: 0, refused: 0, lease: null });
    expect(await stub.lease("consumer-2", 30_000)).toMatchObject({ held: true });
  });
});
