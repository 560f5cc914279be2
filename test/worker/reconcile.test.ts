import { createScheduledController } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { beforeAll, describe, expect, it } from "vitest";
import worker from "../../worker/index";
import { admin, bitrixCall, comagicTime, leadsWithPhone, postWebhook, sandbox, sandboxLeads, uniquePhone, uniqueSessionId, waitFor, waitForQuiet } from "./support";

interface SeededCall {
  id: number;
  phone: string;
  local: string;
  start: Date;
  isLost: boolean;
  talk: number;
  total: number;
}

function seededCall(overrides: Partial<SeededCall> = {}): SeededCall {
  const phone = uniquePhone();
  return { id: uniqueSessionId(), phone: phone.e164, local: phone.local, start: new Date(Date.now() - 30 * 60_000), isLost: false, talk: 60, total: 75, ...overrides };
}

/** The call as get.calls_report returns it. */
function reportRow(call: SeededCall) {
  return {
    id: call.id,
    start_time: comagicTime(call.start),
    direction: "in",
    is_lost: call.isLost,
    contact_phone_number: call.phone.slice(1),
    total_duration: call.total,
    talk_duration: call.talk,
    wait_duration: call.total - call.talk,
    visitor_id: null,
    channel: "organic",
    site_domain_name: "shop.example.ru",
    entrance_page: null,
    tags: [{ tag_name: "target" }],
    last_answered_employee_full_name: "Ivan Petrov",
    full_record_file_link: null,
    utm_source: "google",
    utm_medium: null,
    utm_campaign: null,
    utm_content: null,
    utm_term: null,
  };
}

/** The same call as CoMagic's notification (the docs/ template) would carry it. */
function notification(call: SeededCall) {
  return {
    event_type: "call_session_completed",
    call_session_id: call.id,
    contact_phone_number: call.local,
    talk_time_duration: call.talk,
    total_time_duration: call.total,
    employee_full_name: "Ivan Petrov",
    utm_source: "google",
  };
}

async function reconcileLastHour(): Promise<{ calls: number; targeted: number; alreadyInBitrix: number; enqueued: number }> {
  const res = await admin("/reconcile", {
    method: "POST",
    body: JSON.stringify({ from: new Date(Date.now() - 3_600_000).toISOString(), to: new Date().toISOString() }),
  });
  expect(res.status).toBe(200);
  return res.json();
}

beforeAll(async () => {
  await sandbox("/_sandbox/reset", {});
  await sandbox("/_sandbox/comagic/reset", {});
});

describe("reconciliation with CoMagic's calls report", () => {
  it("brings in the 10 of 50 targeted calls whose notifications never arrived, each once", async () => {
    const calls = Array.from({ length: 50 }, () => seededCall());
    const untargeted = seededCall({ isLost: true, talk: 0, total: 4 });
    await sandbox("/_sandbox/comagic/data", { calls: [...calls, untargeted].map(reportRow) });
    const delivered = calls.slice(0, 40);
    for (const call of delivered) expect((await postWebhook(notification(call))).status).toBe(202);
    await waitFor(async () => {
      const leads = await sandboxLeads();
      return delivered.every((c) => leadsWithPhone(leads, c.phone).length === 1);
    }, "the 40 delivered calls as leads");

    const report = await reconcileLastHour();
    expect(report).toMatchObject({ calls: 51, targeted: 50, alreadyInBitrix: 40, enqueued: 10 });

    await waitFor(async () => {
      const leads = await sandboxLeads();
      return calls.every((c) => leadsWithPhone(leads, c.phone).length > 0);
    }, "all 50 calls as leads");
    await waitForQuiet();
    const leads = await sandboxLeads();
    expect(calls.filter((c) => leadsWithPhone(leads, c.phone).length !== 1)).toEqual([]);
    expect(leadsWithPhone(leads, untargeted.phone)).toEqual([]);
    const recovered = leadsWithPhone(leads, calls[45]?.phone ?? "")[0];
    expect(recovered).toMatchObject({ ORIGIN_ID: String(calls[45]?.id), UTM_SOURCE: "google" });
    expect(String(recovered?.COMMENTS)).toContain("Operator: Ivan Petrov");

    // A second run finds nothing left to do.
    expect((await reconcileLastHour()).enqueued).toBe(0);
  });

  it("leaves alone a repeat call that updated a lead, even after a later call moved the lead's CoMagic id on", async () => {
    const first = seededCall({ start: new Date(Date.now() - 40 * 60_000) });
    const second = seededCall({ phone: first.phone, local: first.local, start: new Date(Date.now() - 30 * 60_000) });
    const third = seededCall({ phone: first.phone, local: first.local, start: new Date(Date.now() - 20 * 60_000) });
    await sandbox("/_sandbox/comagic/data", { calls: [first, second, third].map(reportRow) });
    for (const call of [first, second, third]) {
      await postWebhook(notification(call));
      await waitFor(async () => leadsWithPhone(await sandboxLeads(), first.phone)[0]?.UF_CRM_COMAGIC_ID === String(call.id), `call ${call.id} applied`);
    }
    const report = await reconcileLastHour();
    expect(report.enqueued).toBe(0);
    await waitForQuiet();
    const [lead] = leadsWithPhone(await sandboxLeads(), first.phone);
    expect(lead?.TIMELINE_COMMENTS).toHaveLength(2);
    expect(lead?.UF_CRM_COMAGIC_ID).toBe(String(third.id));
  });

  // FACTS-calls §1.2: direction is in/out; call_api_external_id marks a call started through the Call API.
  it("takes only inbound calls, and never one the worker started through the Call API", async () => {
    const outbound = seededCall();
    const clickToCall = seededCall();
    const inbound = seededCall();
    await sandbox("/_sandbox/comagic/data", {
      calls: [{ ...reportRow(outbound), direction: "out" }, { ...reportRow(clickToCall), call_api_external_id: "bitrix24-lead-7-abc" }, reportRow(inbound)],
    });
    const report = await reconcileLastHour();
    expect(report).toMatchObject({ calls: expect.any(Number), enqueued: 1 });
    await waitFor(async () => leadsWithPhone(await sandboxLeads(), inbound.phone).length > 0, "the inbound call's lead");
    await waitForQuiet();
    const leads = await sandboxLeads();
    expect(leadsWithPhone(leads, outbound.phone)).toEqual([]);
    expect(leadsWithPhone(leads, clickToCall.phone)).toEqual([]);
  });

  it("records in the ledger a call Bitrix24 has but the ledger missed (a consumer stopped between the two writes)", async () => {
    const call = seededCall();
    await sandbox("/_sandbox/comagic/data", { calls: [reportRow(call)] });
    const leadId = String(
      await bitrixCall("crm.lead.add", { fields: { TITLE: "written before a restart", ORIGINATOR_ID: "comagic", ORIGIN_ID: String(call.id), PHONE: [{ VALUE: call.phone, VALUE_TYPE: "WORK" }] } }),
    );
    const ledger = async () => ((await (await admin("/applied", { method: "POST", body: JSON.stringify({ keys: [String(call.id)] }) })).json()) as { applied: Record<string, string> }).applied;
    expect(await ledger()).toEqual({});

    expect((await reconcileLastHour()).enqueued).toBe(0);
    expect(await ledger()).toEqual({ [String(call.id)]: leadId });
  });

  it("makes one lead when the late webhook for a call arrives while reconciliation queues it", async () => {
    const call = seededCall();
    await sandbox("/_sandbox/comagic/data", { calls: [reportRow(call)] });
    const [, webhook] = await Promise.all([reconcileLastHour(), postWebhook(notification(call))]);
    expect(webhook.status).toBe(202);
    await waitFor(async () => leadsWithPhone(await sandboxLeads(), call.phone).length > 0, "the lead");
    await waitForQuiet();
    expect(leadsWithPhone(await sandboxLeads(), call.phone)).toHaveLength(1);
  });

  it("runs from the Cron Trigger: its first feed read reaches FEED_OVERLAP_MINUTES back", async () => {
    const call = seededCall({ start: new Date(Date.now() - 90 * 60_000) });
    const tooOld = seededCall({ start: new Date(Date.now() - 3 * 3_600_000) });
    await sandbox("/_sandbox/comagic/data", { calls: [reportRow(call), reportRow(tooOld)] });
    await worker.scheduled(createScheduledController({ scheduledTime: Date.now(), cron: "*/10 * * * *" }), env);
    await waitFor(async () => leadsWithPhone(await sandboxLeads(), call.phone).length > 0, "the lead from the cron run");
    await waitForQuiet();
    expect(leadsWithPhone(await sandboxLeads(), tooOld.phone)).toEqual([]);
  });
});
