import { createExecutionContext, createMessageBatch, getQueueResult } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { afterEach, beforeAll, describe, expect, it, vi } from "vitest";
import { handleLeadBatch, MAX_DELIVERY_ATTEMPTS, type ConsumerDeps } from "../../worker/jobs/consumer";
import { type DeadLetter, type LeadJob, leadJob } from "../../worker/jobs/schema";
import { callEvent } from "../fixtures/lead-event";
import worker from "../../worker/index";
import { consumerDeps } from "./consumer-support";
import { admin, type DeadLetterView, leadsWithPhone, sandbox, sandboxLeads, uniquePhone, uniqueSessionId } from "./support";

function job(overrides: Partial<LeadJob["event"]> = {}): LeadJob {
  const id = String(uniqueSessionId());
  return leadJob("default", callEvent({ key: id, sessionId: id, receivedAt: new Date().toISOString(), phone: uniquePhone().e164, employee: "Ivan", ...overrides }), "test");
}

function batchOf(bodies: unknown[], attempts = 1, queue = "comagic-lead-jobs") {
  return createMessageBatch(
    queue,
    bodies.map((body, i) => ({ id: `m${i}`, timestamp: new Date(), attempts, body })),
  );
}

function deps(deadLetters: DeadLetter[]): ConsumerDeps {
  return consumerDeps({ deadLetters: { send: async (letter: DeadLetter) => void deadLetters.push(letter) } });
}

beforeAll(async () => {
  await sandbox("/_sandbox/reset", {});
});
afterEach(async () => {
  await sandbox("/_sandbox/faults", { rate: 0 });
});

describe("the queue consumer", () => {
  it("acks a message it cannot read instead of retrying it forever", async () => {
    const batch = batchOf([{ type: "lead.ingest", v: 99, nonsense: true }]);
    const ctx = createExecutionContext();
    await worker.queue(batch, env);
    const result = await getQueueResult(batch, ctx);
    expect(result.explicitAcks).toEqual(["m0"]);
    expect(result.retryMessages).toEqual([]);
  });

  it("keeps every message of a queue no *_QUEUE_NAME setting names, rather than guessing its consumer", async () => {
    // An environment that renamed its queues without LEAD_QUEUE_NAME: the lead must not be dropped or misread.
    const batch = batchOf([job()], 1, "staging-lead-jobs");
    const ctx = createExecutionContext();
    await worker.queue(batch, env);
    const result = await getQueueResult(batch, ctx);
    expect(result.retryBatch.retry).toBe(true);
    expect(result.explicitAcks).toEqual([]);
  });

  it("retries with a delay while Bitrix24 refuses every request, and writes nothing", async () => {
    await sandbox("/_sandbox/faults", { rate: 1, kinds: ["503"] });
    const body = job();
    const batch = batchOf([body]);
    // getQueueResult does not report delays, so the call itself is watched.
    const retry = vi.spyOn(batch.messages[0] as Message<unknown>, "retry");
    const ctx = createExecutionContext();
    await worker.queue(batch, env);
    const result = await getQueueResult(batch, ctx);
    expect(result.explicitAcks).toEqual([]);
    expect(result.retryMessages).toHaveLength(1);
    expect(retry.mock.calls[0]?.[0]?.delaySeconds).toBeGreaterThanOrEqual(1);
    expect(leadsWithPhone(await sandboxLeads(), body.event.phone ?? "")).toEqual([]);
  });

  it("keeps a written lead's follow-ups as replayable dead letters when the enrichment queue refuses them twice", async () => {
    // The lead is in Bitrix24 and its event in the ledger, so a redelivery would skip it: its telephony call and
    // call record must not vanish with the queue's refusal.
    const requestId = `enqueue-refused-${crypto.randomUUID()}`;
    const id = String(uniqueSessionId());
    const body = leadJob("default", callEvent({ key: id, sessionId: id, receivedAt: new Date().toISOString(), phone: uniquePhone().e164 }), requestId);
    let refusals = 0;
    const refusing = {
      send: async () => Promise.reject(new Error("Queue send failed: internal error")),
      sendBatch: async () => {
        refusals += 1;
        throw new Error("Queue sendBatch failed: internal error");
      },
    };
    const batch = batchOf([body]);
    await worker.queue(batch, { ...env, ENRICH_JOBS: refusing as unknown as Queue });
    const result = await getQueueResult(batch, createExecutionContext());
    expect(result.explicitAcks).toEqual(["m0"]);
    expect(refusals).toBe(2);
    expect(leadsWithPhone(await sandboxLeads(), body.event.phone ?? "")).toHaveLength(1);
    const { deadLetters } = (await (await admin("/dead-letters?pending=1")).json()) as { deadLetters: (DeadLetterView & { job: { requestId?: string } })[] };
    const kept = deadLetters.filter((l) => l.job.requestId === requestId);
    expect(kept.map((l) => l.jobType).sort()).toEqual(["call.record", "call.telephony"]);
    for (const letter of kept) expect(letter).toMatchObject({ code: "ENQUEUE_FAILED" });
    const replay = await admin(`/dead-letters/${kept[0]?.id}/replay`, { method: "POST" });
    expect(replay.status).toBe(202);
  });

  it("dead-letters a job Bitrix24 rejects for good, with Bitrix's reason, and acks it", async () => {
    const letters: DeadLetter[] = [];
    const bad = job({ email: "not-an-address" });
    const batch = batchOf([bad]);
    await handleLeadBatch(batch, deps(letters));
    const result = await getQueueResult(batch, createExecutionContext());
    expect(result.explicitAcks).toEqual(["m0"]);
    expect(letters).toHaveLength(1);
    expect(letters[0]).toMatchObject({ type: "dead-letter", queue: "comagic-lead-jobs", job: bad, attempts: 1 });
    expect(letters[0]?.reason).toContain("Invalid e-mail address");
  });

  it("dead-letters a job still failing on its last allowed delivery", async () => {
    await sandbox("/_sandbox/faults", { rate: 1, kinds: ["500"] });
    const letters: DeadLetter[] = [];
    const batch = batchOf([job()], MAX_DELIVERY_ATTEMPTS);
    await handleLeadBatch(batch, deps(letters));
    const result = await getQueueResult(batch, createExecutionContext());
    expect(result.explicitAcks).toEqual(["m0"]);
    expect(letters[0]).toMatchObject({ code: "INTERNAL_SERVER_ERROR", attempts: MAX_DELIVERY_ATTEMPTS });
  });

  it("writes two events about one person in one batch to one lead, in order", async () => {
    const first = job();
    const second = job({ phone: first.event.phone, employee: "Second operator" });
    const batch = batchOf([first, second]);
    await handleLeadBatch(batch, deps([]));
    const result = await getQueueResult(batch, createExecutionContext());
    expect(result.explicitAcks.sort()).toEqual(["m0", "m1"]);
    const leads = leadsWithPhone(await sandboxLeads(), first.event.phone ?? "");
    expect(leads).toHaveLength(1);
    expect(leads[0]?.ORIGIN_ID).toBe(first.event.key);
    expect(leads[0]?.UF_CRM_COMAGIC_ID).toBe(second.event.key);
    expect(leads[0]?.TIMELINE_COMMENTS[0]).toContain("Second operator");
  });

  it("spends a handful of Bitrix24 requests on a batch of 40 new leads", async () => {
    const before = (await (await sandbox("/_sandbox/stats")).json()) as { httpRequests: number };
    const batch = batchOf(Array.from({ length: 40 }, () => job()));
    await handleLeadBatch(batch, deps([]));
    const result = await getQueueResult(batch, createExecutionContext());
    expect(result.explicitAcks).toHaveLength(40);
    const after = (await (await sandbox("/_sandbox/stats")).json()) as { httpRequests: number };
    // One lookup batch and one write batch: no candidate leads exist for fresh numbers.
    expect(after.httpRequests - before.httpRequests).toBe(2);
  });
});
