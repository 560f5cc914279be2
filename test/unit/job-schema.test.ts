import { describe, expect, it } from "vitest";
import { tabClaimsSchema } from "../../worker/bitrix-app/tab-token";
import { enrichJob, jobSchema } from "../../worker/jobs/schema";

/*
 * A queue keeps a message for days, so a deploy reads what the one before it sent (STYLE.md: zod on queue messages,
 * "a message may come from an older deploy"). Before issue #23 jobs named no portal and called the entity's id `leadId`.
 */
describe("jobs sent by an older deploy", () => {
  it("are the default portal's, with their leadId read as the entity's id", () => {
    const old = { type: "lead.enrich", v: 1, requestId: "r", leadId: "7", entity: "deal", visitorId: "42" };
    expect(jobSchema.parse(old)).toMatchObject({ portal: "default", entityId: "7", entity: "deal" });
    expect(jobSchema.parse(old)).not.toHaveProperty("leadId");
  });

  it("are refused when they name no entity at all", () => {
    expect(jobSchema.safeParse({ type: "call.record", v: 1, requestId: "r", sessionId: "1", calledAt: new Date().toISOString(), visitorId: null, recordingUrl: null }).success).toBe(false);
  });

  it("keep their portal and entity id as a builder makes them", () => {
    const job = enrichJob({ portal: "shop-msk", requestId: "r", entityId: "9", entity: "lead", visitorId: "1" });
    expect(jobSchema.parse(job)).toMatchObject({ portal: "shop-msk", entityId: "9" });
  });

  it("refuse a portal key that could not be one", () => {
    expect(jobSchema.safeParse({ type: "lead.enrich", v: 1, portal: "../x", requestId: "r", entityId: "7", visitorId: "42" }).success).toBe(false);
  });
});

describe("a Call button's token signed before the rename", () => {
  it("names its card by leadId, read as the entity's id", () => {
    const claims = tabClaimsSchema.parse({ memberId: "m", userId: "1", leadId: "5", phone: null, expiresAt: 1, nonce: "n" });
    expect(claims).toMatchObject({ entityType: "lead", entityId: "5" });
  });
});
