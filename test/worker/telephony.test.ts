import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { install } from "./app-support";
import { adminHealth, forgetPortalSettings, makeCallSession, postWebhook, sandbox, sandboxCrm, uniquePhone, waitFor, waitForQuiet, type SandboxLead } from "./support";

/*
 * Calls as Bitrix24 telephony calls (FACTS.md §2.9, FACTS-portals §7): register (SHOW 0, CRM_CREATE 0, bound
 * to the lead), finish (200, or 304 for a lost call: the call activity appears on the timeline), attachRecord
 * after finish. The docs allow these methods only in an application's context (WRONG_AUTH_TYPE for a
 * webhook), the source allows webhooks too: the sandbox starts with the docs' reading.
 * COMAGIC_EMPLOYEES is {"1": 25}: CoMagic employee 25 is Bitrix24 user 1.
 */
beforeAll(async () => {
  await sandbox("/_sandbox/reset", {});
  await forgetPortalSettings();
});
afterAll(async () => {
  await sandbox("/_sandbox/reset", {});
  await forgetPortalSettings();
});

const leadWith = async (e164: string) => (await sandboxCrm()).leads.find((l) => l.PHONE?.some((p) => p.VALUE === e164));
type Call = { callId: string; type: number; userId: number; duration: number; statusCode: string; record: string | null };
const callsOn = (lead: SandboxLead | undefined) => (lead?.CALLS ?? []) as Call[];

describe("a written call in Bitrix24 telephony", () => {
  it("refused to the webhook: with the app installed, the app's token writes it; the answering manager is responsible; once under redelivery", async () => {
    expect((await install(1)).status).toBe(200);
    const phone = uniquePhone();
    // finish is carried out, then its answer is lost: the job comes back and must not finish (or register) again.
    await sandbox("/_sandbox/faults", { targeted: [{ method: "telephony.externalCall.finish", kind: "500", times: 1 }] });
    const body = makeCallSession({ visitor_phone_number: phone.local, employee_id: 25, talk_duration: 80, file_link: "https://media.comagic.ru/42/record.mp3" });
    expect((await postWebhook(body)).status).toBe(202);
    expect((await postWebhook(body)).status).toBe(202);
    const lead = await waitFor(
      async () => {
        const found = await leadWith(phone.e164);
        return callsOn(found)[0]?.record ? found : null;
      },
      "the call with its recording on the lead",
      40_000,
    );
    await waitForQuiet();
    const settled = await leadWith(phone.e164);
    expect(lead?.ASSIGNED_BY_ID).toBe("1");
    expect(callsOn(settled)).toEqual([{ callId: expect.any(String), type: 2, userId: 1, duration: expect.any(Number), statusCode: "200", record: "https://media.comagic.ru/42/record.mp3" }]);
    const registered = (await sandboxCrm()).calls.filter((c) => c.EXTERNAL_CALL_ID === String(body.call_session.id));
    expect(registered).toHaveLength(1);
  });

  it("a lost call is a missed call (304) with a call-back to-do, once", async () => {
    const phone = uniquePhone();
    const body = makeCallSession({ visitor_phone_number: phone.local, is_lost_call: true, duration_total: 40, file_link: null });
    expect((await postWebhook(body)).status).toBe(202);
    const lead = await waitFor(async () => {
      const found = await leadWith(phone.e164);
      return callsOn(found).length ? found : null;
    }, "the missed call");
    expect(callsOn(lead)[0]).toMatchObject({ statusCode: "304", record: null });
    expect(lead?.TODOS).toHaveLength(1);
  });

  it("refused to both the app and the webhook: the call stays a timeline comment, and /health says why", async () => {
    await sandbox("/_sandbox/portal", { telephony: { webhook: false, app: false } });
    const phone = uniquePhone();
    expect((await postWebhook(makeCallSession({ visitor_phone_number: phone.local }))).status).toBe(202);
    const health = await waitFor(async () => {
      return (await adminHealth()).warnings.find((w) => w.setting === "telephony");
    }, "the telephony warning");
    expect(health.problem).toContain("WRONG_AUTH_TYPE");
    expect(health.problem).toContain("insufficient_scope");
    const lead = await leadWith(phone.e164);
    expect(lead?.COMMENTS).toContain("CoMagic call");
    expect(callsOn(lead)).toEqual([]);
  });

  it("the webhook is used where Bitrix24 allows it (the source's reading)", async () => {
    await sandbox("/_sandbox/portal", { telephony: { webhook: true, app: false } });
    await forgetPortalSettings();
    const phone = uniquePhone();
    expect((await postWebhook(makeCallSession({ visitor_phone_number: phone.local }))).status).toBe(202);
    const lead = await waitFor(async () => {
      const found = await leadWith(phone.e164);
      return callsOn(found).length ? found : null;
    }, "the call written through the webhook");
    expect(callsOn(lead)[0]?.statusCode).toBe("200");
  });
});
