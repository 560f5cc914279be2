import { callEvent } from "../fixtures/lead-event";
import { createExecutionContext, createMessageBatch, getQueueResult } from "cloudflare:test";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { handleLeadBatch } from "../../worker/jobs/consumer";
import { leadJob } from "../../worker/jobs/schema";
import { consumerDeps } from "./consumer-support";
import { ADMIN_TOKEN, admin, bitrixCall, deadLetterWhere, forgetPortalSettings, leadsWithPhone, makeCallSession, postWebhook, sandbox, sandboxLeads, uniquePhone, waitFor } from "./support";

/*
 * FACTS-portals §5: an admin can make lead fields required; REST skips the check unless "required fields for
 * applications" is on, and then crm.lead.add fails with an empty error code and "The required field '…' is
 * missing." The sandbox portal gets a required custom field, "Region".
 */

beforeAll(async () => {
  await sandbox("/_sandbox/reset", {});
  await bitrixCall("crm.lead.userfield.add", { fields: { FIELD_NAME: "REGION", USER_TYPE_ID: "string", LABEL: "Region" } });
  await sandbox("/_sandbox/required-fields", { fields: ["UF_CRM_REGION"], restCheck: true });
  await forgetPortalSettings();
});
afterAll(async () => {
  await sandbox("/_sandbox/required-fields", { fields: [], restCheck: false });
  await forgetPortalSettings();
});

describe("lead fields a portal requires", () => {
  it("are named in the admin's /health, with the two fixes", async () => {
    const { exports } = await import("cloudflare:workers");
    const health = await exports.default.fetch(new Request("http://worker.test/health", { headers: { authorization: `Bearer ${ADMIN_TOKEN}` } }));
    const { warnings } = (await health.json()) as { warnings: { setting: string; problem: string }[] };
    const warning = warnings.find((w) => w.setting === "REQUIRED_FIELD_DEFAULTS");
    expect(warning?.problem).toContain('UF_CRM_REGION ("Region")');
    expect(warning?.problem).toContain("turn them off");
  });

  it("make a refused lead a dead letter that says why and how to fix it; after the fix it replays into a lead", async () => {
    const phone = uniquePhone();
    const body = makeCallSession({ visitor_phone_number: phone.local });
    expect((await postWebhook(body)).status).toBe(202);
    const letter = await deadLetterWhere((l) => l.job.event?.key === String(body.call_session.id));
    expect(letter.code).toBe("REQUIRED_FIELD_MISSING");
    expect(letter.reason).toContain("The required field 'Region' is missing.");
    expect(letter.reason).toContain("REQUIRED_FIELD_DEFAULTS");
    expect(leadsWithPhone(await sandboxLeads(), phone.e164)).toEqual([]);

    await sandbox("/_sandbox/required-fields", { restCheck: false });
    expect((await admin(`/dead-letters/${letter.id}/replay`, { method: "POST" })).status).toBe(202);
    await waitFor(async () => leadsWithPhone(await sandboxLeads(), phone.e164).length === 1, "the replayed lead");
    await sandbox("/_sandbox/required-fields", { restCheck: true });
  });

  it("get REQUIRED_FIELD_DEFAULTS' values on every new lead, so adds pass the check", async () => {
    const phone = uniquePhone().e164;
    const key = String(Date.now());
    const job = leadJob("default", callEvent({ key, sessionId: key, receivedAt: new Date().toISOString(), phone }), "required");
    const batch = createMessageBatch("comagic-lead-jobs", [{ id: "r0", timestamp: new Date(), attempts: 1, body: job }]);
    await handleLeadBatch(batch, consumerDeps({ rules: { dedupDays: 30, defaultRegion: "RU", requiredFieldDefaults: { UF_CRM_REGION: "Moscow" } } }));
    expect((await getQueueResult(batch, createExecutionContext())).explicitAcks).toEqual(["r0"]);
    expect(leadsWithPhone(await sandboxLeads(), phone)[0]).toMatchObject({ UF_CRM_REGION: "Moscow" });
  });
});
