import { exports } from "cloudflare:workers";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { bitrixCall, leadsWithPhone, makeCallSession, postWebhook, sandbox, sandboxLeads, sandboxStats, uniquePhone, waitFor, waitForQuiet, type SandboxLead } from "./support";

/*
 * FACTS.md §7: whether Bitrix24 indexes a new lead's phone for crm.duplicate.findbycomm synchronously is
 * [UNCERTAIN]; "Don't rely on findbycomm to dedupe two requests arriving milliseconds apart". The sandbox
 * hides every phone and email from findbycomm for 30 s after it is written, longer than any test here.
 */
const INDEX_LAG_MS = 30_000;

beforeAll(async () => {
  await sandbox("/_sandbox/reset", {});
  await sandbox("/_sandbox/faults", { findbycommLagMs: INDEX_LAG_MS });
});

afterAll(async () => {
  await sandbox("/_sandbox/faults", { findbycommLagMs: 0 });
});

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function leadsFor(phone: string, count = 1): Promise<SandboxLead[]> {
  return waitFor(async () => {
    const leads = leadsWithPhone(await sandboxLeads(), phone);
    return leads.length >= count ? leads : null;
  }, `${count} lead(s) with ${phone}`);
}

/** Everything the worker will write has been written: one lead and, for a repeat contact, its comment. */
async function settledLeads(phone: string): Promise<SandboxLead[]> {
  await waitForQuiet();
  return leadsWithPhone(await sandboxLeads(), phone);
}

function postForm(fields: Record<string, unknown>): Promise<Response> {
  return exports.default.fetch(
    new Request("http://worker.test/forms", {
      method: "POST",
      headers: { origin: "https://shop.example.ru", "cf-connecting-ip": "203.0.113.77", "content-type": "application/json" },
      body: JSON.stringify(fields),
    }),
  );
}

describe("one lead per person while Bitrix24's duplicate search lags 30 s behind its writes", () => {
  it("two calls from a new number 0.3 s apart", async () => {
    const phone = uniquePhone();
    expect((await postWebhook(makeCallSession({ visitor_phone_number: phone.local }))).status).toBe(202);
    await sleep(300);
    expect((await postWebhook(makeCallSession({ visitor_phone_number: phone.local }))).status).toBe(202);
    await leadsFor(phone.e164);
    const leads = await settledLeads(phone.e164);
    expect(leads).toHaveLength(1);
    expect(leads[0]?.TIMELINE_COMMENTS).toHaveLength(1);
  });

  it("two calls in two different queue batches, 5 s apart", async () => {
    const phone = uniquePhone();
    expect((await postWebhook(makeCallSession({ visitor_phone_number: phone.local }))).status).toBe(202);
    await leadsFor(phone.e164);
    await sleep(5_000);
    expect((await postWebhook(makeCallSession({ visitor_phone_number: phone.local }))).status).toBe(202);
    await waitFor(async () => (leadsWithPhone(await sandboxLeads(), phone.e164)[0]?.TIMELINE_COMMENTS.length ?? 0) > 0, "the second call's comment");
    expect(await settledLeads(phone.e164)).toHaveLength(1);
  });

  it("a website form, then a call from the same number 2 s later", async () => {
    const phone = uniquePhone();
    expect((await postForm({ name: "Olga", phone: phone.local, form_name: "Callback", submission_id: `lag-${phone.e164}` })).status).toBe(202);
    await sleep(2_000);
    expect((await postWebhook(makeCallSession({ visitor_phone_number: phone.local }))).status).toBe(202);
    await leadsFor(phone.e164);
    const leads = await settledLeads(phone.e164);
    expect(leads).toHaveLength(1);
    expect(leads[0]).toMatchObject({ SOURCE_ID: "WEB" });
  });

  it("a second call while the first one's lead write is in doubt (Bitrix24 created it, the answer was lost)", async () => {
    const phone = uniquePhone();
    // The next request that runs crm.lead.add does the work, then answers 500: the worker cannot know.
    await sandbox("/_sandbox/faults", { targeted: [{ method: "crm.lead.add", kind: "500", times: 1 }] });
    const before = (await sandboxStats()).faultsInjected["500"] ?? 0;
    expect((await postWebhook(makeCallSession({ visitor_phone_number: phone.local }))).status).toBe(202);
    await waitFor(async () => ((await sandboxStats()).faultsInjected["500"] ?? 0) > before, "the lost answer to crm.lead.add");
    expect((await postWebhook(makeCallSession({ visitor_phone_number: phone.local }))).status).toBe(202);
    await waitFor(async () => (leadsWithPhone(await sandboxLeads(), phone.e164)[0]?.TIMELINE_COMMENTS.length ?? 0) > 0, "the second call's comment");
    expect(await settledLeads(phone.e164)).toHaveLength(1);
  });

  it("never updates a lead deleted in Bitrix24 since: the next call makes a new lead", async () => {
    const phone = uniquePhone();
    expect((await postWebhook(makeCallSession({ visitor_phone_number: phone.local }))).status).toBe(202);
    const [first] = await leadsFor(phone.e164);
    await bitrixCall("crm.lead.delete", { id: Number(first?.ID) });
    expect((await postWebhook(makeCallSession({ visitor_phone_number: phone.local }))).status).toBe(202);
    const [second] = await leadsFor(phone.e164);
    expect(second?.ID).not.toBe(first?.ID);
  });

  it("never updates a lead closed in Bitrix24 since: the next call makes a new lead", async () => {
    const phone = uniquePhone();
    expect((await postWebhook(makeCallSession({ visitor_phone_number: phone.local }))).status).toBe(202);
    const [first] = await leadsFor(phone.e164);
    await bitrixCall("crm.lead.update", { id: Number(first?.ID), fields: { STATUS_ID: "JUNK" } });
    expect((await postWebhook(makeCallSession({ visitor_phone_number: phone.local }))).status).toBe(202);
    const leads = await leadsFor(phone.e164, 2);
    expect(leads.find((l) => l.ID === first?.ID)).toMatchObject({ STATUS_ID: "JUNK", TIMELINE_COMMENTS: [] });
  });
});
